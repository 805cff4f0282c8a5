//! The state's stores side by side: the embedded redb file against etcd (one member, its data
//! on the same disk), each creating, reading and listing 10,000 backups across 100 tenants, one
//! transaction per operation, with throughput and p99 latency and the ratio etcd/redb; the
//! leader's look for interrupted runs, reading every backup against reading the runs marked
//! running. Then API requests per second (GET of a backup, 8 clients on fresh connections) through one
//! `coffer server` on etcd against three, the clients spread over them.
//!
//! Run: `cargo bench -p coffer --bench state` (`COFFER_BENCH_BACKUPS=2000` to change the count;
//! etcd comes from `scripts/setup`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coffer::model::Backup;
use coffer::state::{State, StateLocation};

const TENANTS: usize = 100;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A one-member etcd on fresh ports with its data in `data`; killed on drop.
struct Etcd(Child, String);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn etcd(data: &Path) -> Etcd {
    let (port, peer) = (free_port(), free_port());
    let (client, peer) = (format!("http://127.0.0.1:{port}"), format!("http://127.0.0.1:{peer}"));
    let child = Command::new("etcd")
        .args(["--name", "bench", "--data-dir"])
        .arg(data)
        .args(["--listen-client-urls", &client, "--advertise-client-urls", &client, "--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer, "--initial-cluster", &format!("bench={peer}"), "--log-level", "error"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd is installed by scripts/setup");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "etcd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Etcd(child, format!("etcd://127.0.0.1:{port}"))
}

/// A completed backup as the state keeps one (about 700 bytes of JSON).
fn backup(tenant: usize, i: usize) -> Backup {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": format!("nightly-{i:05}"), "namespace": format!("tenant-{tenant:03}"),
            "creationTimestamp": "2026-11-30T01:00:00Z", "labels": {"velero.io/storage-location": "default", "velero.io/schedule-name": "nightly"}},
        "spec": {"includedNamespaces": ["*"], "storageLocation": "default", "ttl": "720h0m0s", "snapshotVolumes": true},
        "status": {"phase": "Completed", "startTimestamp": "2026-11-30T01:00:00Z", "completionTimestamp": "2026-11-30T01:00:09Z",
            "expiration": "2026-12-30T01:00:00Z", "progress": {"totalItems": 1234, "itemsBackedUp": 1234}, "formatVersion": "1.1.0"}
    }))
    .expect("a backup")
}

/// Operations per second and the 99th percentile of `latencies`.
fn summary(latencies: &mut [Duration], total: Duration) -> (f64, Duration) {
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    (latencies.len() as f64 / total.as_secs_f64(), p99)
}

/// Runs `op` for each of `count` indexes, timing each.
fn timed(count: usize, mut op: impl FnMut(usize)) -> (f64, Duration) {
    let mut latencies = Vec::with_capacity(count);
    let started = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        op(i);
        latencies.push(t.elapsed());
    }
    summary(&mut latencies, started.elapsed())
}

/// Create, get and list figures of one store: `[(ops/s, p99); 3]`.
fn measure(state: &State, backups: usize) -> [(f64, Duration); 3] {
    let per = backups / TENANTS;
    let create = timed(backups, |i| state.write(|t| t.put(&mut backup(i % TENANTS, i / TENANTS))).unwrap());
    let get = timed(backups, |i| {
        let name = format!("nightly-{:05}", i / TENANTS);
        assert!(state.read().unwrap().get::<Backup>(&format!("tenant-{:03}", i % TENANTS), &name).unwrap().is_some());
    });
    let list = timed(TENANTS, |tenant| {
        assert_eq!(state.read().unwrap().list::<Backup>(&format!("tenant-{tenant:03}")).unwrap().len(), per);
    });
    [create, get, list]
}

/// GET `path` from the API at `port` with `token`, on a fresh connection; whether it answered 200.
fn get(port: u16, path: &str, token: &str) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    let mut answer = Vec::new();
    conn.write_all(request.as_bytes()).is_ok() && conn.read_to_end(&mut answer).is_ok() && answer.starts_with(b"HTTP/1.1 200")
}

/// A `coffer server` on the state at `url`; its API port. Killed on drop.
struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server(data: &Path, args: &[&str]) -> Server {
    std::fs::create_dir_all(data).unwrap();
    let log = data.join("server.log");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["server", "--listen", &format!("127.0.0.1:{port}"), "--metrics-listen", "off"])
        .args(args)
        .env("COFFER_DATA_DIR", data)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "coffer server did not start: {}", std::fs::read_to_string(&log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(50));
    }
    Server(child, port)
}

/// Requests per second of 8 clients for 5 s, client `c` on `ports[c % len]`.
fn requests_per_second(ports: &[u16], token: &str) -> f64 {
    let until = Instant::now() + Duration::from_secs(5);
    let done: usize = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..8)
            .map(|c| {
                let port = ports[c % ports.len()];
                scope.spawn(move || {
                    let mut n = 0;
                    while Instant::now() < until {
                        assert!(get(port, "/v1/backups/nightly-00001", token), "the API answers");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).sum()
    });
    done as f64 / 5.0
}

fn main() {
    let backups = std::env::var("COFFER_BENCH_BACKUPS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let root = tmp.path();
    let etcd = etcd(&root.join("etcd"));
    let embedded = State::open(&root.join("redb")).unwrap();
    let shared = State::open_at(root, &StateLocation::parse(&etcd.1).unwrap()).unwrap();
    println!("{backups} backups across {TENANTS} tenants, one transaction per operation");
    let (ours, theirs) = (measure(&embedded, backups), measure(&shared, backups));
    for (what, (redb, etcd)) in ["create", "get", "list"].iter().zip(ours.iter().zip(theirs.iter())) {
        println!(
            "{what:<7} redb {:>9.0} ops/s (p99 {:>8.2?})   etcd {:>9.0} ops/s (p99 {:>8.2?})   ratio etcd/redb {:.2}",
            redb.0,
            redb.1,
            etcd.0,
            etcd.1,
            etcd.0 / redb.0
        );
    }

    // The leader's look for runs a dead process left, every 2 s: every backup read, or only
    // the runs marked running (here 10 of them).
    let running = 10;
    shared
        .write(|t| (0..running).try_for_each(|i| t.hold::<Backup>(&format!("tenant-{:03}", i % TENANTS), &format!("nightly-{:05}", i / TENANTS))))
        .unwrap();
    let look = |marked: bool| {
        let looks = 20;
        let started = Instant::now();
        for _ in 0..looks {
            let txn = shared.read().unwrap();
            let found = if marked { txn.runs_to_check::<Backup>() } else { txn.list_all::<Backup>() };
            assert!(found.unwrap().len() >= running);
        }
        started.elapsed() / looks
    };
    let (all, marked) = (look(false), look(true));
    println!(
        "look    all {backups} backups {all:>8.2?}   the {running} marked running {marked:>8.2?}   ratio all/marked {:.0}",
        all.as_secs_f64() / marked.as_secs_f64()
    );

    // The API over etcd: one server, then three sharing it.
    let key = root.join("master.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let operator = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["tenant", "token", "create", "bench", "--tenant", "tenant-001", "--state", &etcd.1, "--master-key-file"])
        .arg(&key)
        .env("COFFER_DATA_DIR", root.join("operator"))
        .output()
        .unwrap();
    assert!(operator.status.success(), "{}", String::from_utf8_lossy(&operator.stderr));
    let token = String::from_utf8(operator.stdout).unwrap().trim().to_owned();
    let key = key.display().to_string();
    let args = ["--state", &etcd.1, "--master-key-file", &key];
    let one = [server(&root.join("one"), &args)];
    let single = requests_per_second(&[one[0].1], &token);
    let three = [server(&root.join("two"), &args), server(&root.join("three"), &args)];
    let spread = requests_per_second(&[one[0].1, three[0].1, three[1].1], &token);
    println!("api     1 server {single:>7.0} requests/s   3 servers {spread:>7.0} requests/s   ratio 3/1 {:.2}", spread / single);
    drop((three, one, shared));
}
