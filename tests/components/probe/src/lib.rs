//! A hostile object store for the sandbox tests. `object-exists(bucket, command)` runs one
//! attempt and answers `true` when it succeeded (a sandbox escape) or the error it met:
//!
//! - `read:PATH`, `list:PATH`, `write:PATH`: file access through std;
//! - `env`: true when any environment variable or argument is visible;
//! - `tcp:ADDR`: a TCP connection;
//! - `http:URL`: a GET through wasi:http;
//! - `spin`: loops forever; `alloc:MIB`: allocates and touches that much memory;
//! - `trap`: traps; `noop`: does nothing (for call-latency benchmarks);
//! - `digest:ROUNDS`: has the host hash 64 MiB ROUNDS times (host time against the CPU limit);
//! - `error:BYTES`: fails with a message of BYTES bytes.
//!
//! `get-object(_, "credential")` writes whatever credential `init` delivered.
//!
//! Config `onPut` makes every other put hostile: `trap` traps after reading part of the body,
//! `recurse` overflows the stack, `spin` loops forever, `lie` reads the body and reports a
//! different length. Config `onList=garbage` makes `list-objects` and `list-common-prefixes`
//! answer keys outside the prefix they were asked for; otherwise they answer nothing.
//! `put-object(_, "stash")` and `get-object(_, "stash")` keep the stream they were given and
//! return at once, as a provider that tries to hold the host's transfer open would.

use std::hint::black_box;
use std::time::Duration;

use coffer_guest_sdk::streams::{InputStream, OutputStream, read_up_to, write_all};
use coffer_guest_sdk::{Config, Credential, Error, Manifest, ObjectEntry, ObjectStore, Result};

struct Probe {
    credential: Option<Credential>,
    on_put: Option<String>,
    garbage_lists: bool,
}

/// Recurses until the stack runs out.
#[allow(unconditional_recursion, reason = "it is meant to overflow the stack")]
fn recurse(depth: u64) -> u64 {
    black_box(recurse(black_box(depth + 1)) + 1)
}

thread_local! {
    static STASHED_INPUT: std::cell::RefCell<Vec<InputStream>> = const { std::cell::RefCell::new(Vec::new()) };
    static STASHED_OUTPUT: std::cell::RefCell<Vec<OutputStream>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn io(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::from_io(what, &e)
}

fn http_get(url: &str) -> Result<bool> {
    use wasip2::http::outgoing_handler::handle;
    use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
    let (scheme, rest) = url.split_once("://").ok_or_else(|| Error::InvalidArgument(url.into()))?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&if scheme == "https" { Scheme::Https } else { Scheme::Http })).ok();
    request.set_authority(Some(authority)).ok();
    request.set_path_with_query(Some(&path)).ok();
    let response = handle(request, None).map_err(|e| Error::PermissionDenied(format!("{e:?}")))?;
    response.subscribe().block();
    match response.get() {
        Some(Ok(Ok(_))) => Ok(true),
        Some(Ok(Err(e))) => Err(Error::PermissionDenied(format!("{e:?}"))),
        other => Err(Error::Other(format!("{other:?}"))),
    }
}

impl ObjectStore for Probe {
    fn manifest() -> Manifest {
        Manifest::new("coffer.test/probe", "test component that probes its sandbox")
            .directory("root", "/data", true, true)
            .endpoint_key("url")
    }

    fn init(config: Vec<(String, String)>, credential: Option<Credential>) -> Result<Self> {
        let config = Config::parse_object_store(config, &["root", "url", "onPut", "onList"])?;
        let garbage_lists = config.get("onList") == Some("garbage");
        Ok(Probe { credential, on_put: config.get("onPut").map(str::to_owned), garbage_lists })
    }

    fn put_object(&self, _: &str, key: &str, body: InputStream) -> Result<u64> {
        if key == "stash" {
            STASHED_INPUT.with(|s| s.borrow_mut().push(body));
            return Ok(0);
        }
        match self.on_put.as_deref() {
            Some("trap") => {
                read_up_to(&body, 1024)?;
                std::process::abort()
            }
            Some("recurse") => Ok(recurse(0)),
            Some("spin") => loop {
                black_box(&body);
            },
            Some("lie") => Ok(read_up_to(&body, usize::MAX)?.len() as u64 + 1),
            _ => Err(Error::Unsupported("put".into())),
        }
    }

    fn object_exists(&self, _bucket: &str, command: &str) -> Result<bool> {
        let (verb, arg) = command.split_once(':').unwrap_or((command, ""));
        match verb {
            "read" => std::fs::read(arg).map(|_| true).map_err(io(arg)),
            "list" => std::fs::read_dir(arg).map(|_| true).map_err(io(arg)),
            "write" => std::fs::write(arg, b"escaped").map(|_| true).map_err(io(arg)),
            "env" => Ok(std::env::vars().next().is_some() || std::env::args().next().is_some()),
            "tcp" => std::net::TcpStream::connect(arg).map(|_| true).map_err(io(arg)),
            "http" => http_get(arg),
            "spin" => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mib: usize = arg.parse().map_err(|_| Error::InvalidArgument(arg.into()))?;
                let mut v: Vec<u8> = Vec::new();
                v.try_reserve_exact(mib << 20).map_err(|e| Error::Unavailable(e.to_string()))?;
                v.resize(mib << 20, 1);
                Ok(black_box(v).len() == mib << 20)
            }
            "trap" => std::process::abort(),
            "noop" => Ok(true),
            "digest" => {
                // Host computation: 64 MiB hashed by the host, ROUNDS times, in one call.
                let rounds: u64 = arg.parse().map_err(|_| Error::InvalidArgument(arg.into()))?;
                let data = vec![7u8; 64 << 20];
                for _ in 0..rounds {
                    black_box(coffer_guest_sdk::sigv4::sha256_hex(&data));
                }
                Ok(true)
            }
            "error" => {
                let bytes: usize = arg.parse().map_err(|_| Error::InvalidArgument(arg.into()))?;
                Err(Error::Other("x".repeat(bytes)))
            }
            // A hostile store under test of its puts: nothing exists there yet.
            _ if self.on_put.is_some() => Ok(false),
            _ => Err(Error::InvalidArgument(format!("unknown probe {command:?}"))),
        }
    }

    fn get_object(&self, _: &str, key: &str, sink: OutputStream) -> Result<u64> {
        if key == "stash" {
            STASHED_OUTPUT.with(|s| s.borrow_mut().push(sink));
            return Ok(0);
        }
        if key != "credential" {
            return Err(Error::NotFound(key.into()));
        }
        let bytes = self.credential.as_ref().map_or(&b"<none>"[..], Credential::expose_bytes);
        write_all(&sink, bytes)?;
        Ok(bytes.len() as u64)
    }

    fn list_common_prefixes(&self, _: &str, _: &str, _: &str) -> Result<Vec<String>> {
        Ok(if self.garbage_lists { vec!["../../elsewhere/".into()] } else { Vec::new() })
    }

    fn get_object_range(&self, _: &str, key: &str, _: u64, length: u64, sink: OutputStream) -> Result<u64> {
        // A hostile store: more bytes than were asked for, or a length that did not cross.
        match key {
            "overlong" => {
                write_all(&sink, &vec![b'x'; length as usize + 1])?;
                Ok(length + 1)
            }
            "lying" => Ok(length),
            _ => Err(Error::NotFound(key.into())),
        }
    }

    fn list_objects(&self, _: &str, _: &str) -> Result<Vec<ObjectEntry>> {
        Ok(if self.garbage_lists { vec![ObjectEntry { key: "/etc/passwd".into(), size: 1 }] } else { Vec::new() })
    }

    fn delete_object(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }

    fn create_signed_url(&self, _: &str, _: &str, _: Duration) -> Result<String> {
        Err(Error::Unsupported("signed URLs".into()))
    }
}

coffer_guest_sdk::export_object_store!(Probe);
