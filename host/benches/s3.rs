//! 1 GiB put and get through the wasm `aws` provider against native `object_store`'s
//! `AmazonS3`, both on the same s3s-fs server (which checks every signature) in the same run;
//! the ratio is wasm / native throughput. The two take turns, three rounds (the best of each
//! counts), and both get the same object; the client's CPU time per GiB is printed too, since
//! on a small machine the server competes with the client for it.
//!
//! Run: `scripts/setup && cargo bench -p coffer --bench s3` (`COFFER_BENCH_MIB` changes the size).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use coffer::embedded;
use coffer::confine::PathRoot;
use coffer::sandbox::{Limits, ObjectStoreHandle, Sandbox, grants_for};
use coffer::secret::SecretBytes;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, WriteMultipart};

/// The upload part size of both sides.
const PART: usize = 8 << 20;

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// This process's CPU time (user and system) so far, in seconds.
fn cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid for writes.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// One side's best time of the rounds, and its CPU time over all of them.
#[derive(Default)]
struct Measured {
    best: Option<Duration>,
    cpu: f64,
}

impl Measured {
    fn time(&mut self, f: impl FnOnce()) {
        let (started, cpu) = (Instant::now(), cpu_seconds());
        f();
        let took = started.elapsed();
        self.cpu += cpu_seconds() - cpu;
        self.best = Some(self.best.map_or(took, |b| b.min(took)));
    }
}

/// Three rounds in which `wasm` and `native` take turns.
fn rounds(mut wasm: impl FnMut(), mut native: impl FnMut()) -> (Measured, Measured) {
    let (mut w, mut n) = (Measured::default(), Measured::default());
    for _ in 0..3 {
        w.time(&mut wasm);
        n.time(&mut native);
    }
    (w, n)
}

#[tokio::main]
async fn main() {
    let mib: usize = std::env::var("COFFER_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir_in(std::env::var("COFFER_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    std::fs::create_dir_all(tmp.path().join("bench")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(root.join("target/test-tools/bin/s3s-fs"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", "testing", "--secret-key", "testing"])
        .arg(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s3s-fs (run scripts/setup first)");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}");

    let sandbox = Sandbox::new(None, Limits::default()).unwrap();
    let aws = sandbox.load(embedded::AWS).await.unwrap();
    let config = BTreeMap::from([("s3Url".to_owned(), url.clone()), ("region".to_owned(), "us-east-1".to_owned())]);
    let credential = SecretBytes::new(b"[default]\naws_access_key_id=testing\naws_secret_access_key=testing\n".to_vec());
    let grants = grants_for("bench", aws.manifest(), config, Some(credential), &PathRoot::Anywhere).unwrap();
    let mut wasm = ObjectStoreHandle::new(&sandbox, &aws, grants).await.unwrap();
    let native = AmazonS3Builder::new()
        .with_endpoint(&url)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region("us-east-1")
        .with_bucket_name("bench")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .build()
        .unwrap();

    let body = Bytes::from((0..mib << 20).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
    let len = (mib << 20) as u64;
    let native_key = ObjectPath::from("native");
    let put = rounds(
        || assert_eq!(block_on(wasm.put_object("bench", "wasm", std::io::Cursor::new(body.clone()))).unwrap(), len),
        || {
            block_on(async {
                let upload = native.put_multipart(&native_key).await.unwrap();
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
                for chunk in body.chunks(PART) {
                    writer.write(chunk);
                }
                writer.finish().await.unwrap();
            })
        },
    );
    // Both read the object the wasm provider wrote.
    let get = rounds(
        || assert_eq!(block_on(wasm.get_object("bench", "wasm", std::io::sink())).unwrap(), len),
        || {
            block_on(async {
                let mut stream = native.get(&ObjectPath::from("wasm")).await.unwrap().into_stream();
                let mut total = 0u64;
                while let Some(chunk) = stream.next().await {
                    total += chunk.unwrap().len() as u64;
                }
                assert_eq!(total, len);
            })
        },
    );
    let rate = |m: &Measured| mib as f64 / m.best.unwrap().as_secs_f64();
    let cpu = |m: &Measured| m.cpu / 3.0 / (mib as f64 / 1024.0);
    for (what, (w, n)) in [("put", &put), ("get", &get)] {
        println!(
            "{what} {mib} MiB via s3s-fs (best of 3, in turns)   wasm aws provider {:>5.0} MiB/s ({:.2} s CPU/GiB)   object_store AmazonS3 {:>5.0} MiB/s ({:.2} s CPU/GiB)   ratio wasm/native {:.2}",
            rate(w),
            cpu(w),
            rate(n),
            cpu(n),
            rate(w) / rate(n)
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}
