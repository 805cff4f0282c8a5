//! Load test, bounded and on this host only: 100 tenants, each with its own backup storage
//! location (the filesystem provider in its own directory), back up at the same time through
//! the engine. Prints throughput with a ratio against native `object_store` writing the same
//! objects from as many tasks, the memory an idle location's live provider instance costs,
//! and provider-call latency percentiles.
//!
//! Then the same as a shared host lives it: `coffer server` with 50 tenants asking 5 backups of
//! 2,000 items each at once, printing an idle tenant's and `/healthz`'s latencies during the
//! burst and the server's memory before, at its peak and 30 s after.
//!
//! Run: `cargo bench -p coffer --bench tenants` (`COFFER_BENCH_TENANTS`, `COFFER_BENCH_ITEMS`,
//! `COFFER_BENCH_BURST_TENANTS`, `COFFER_BENCH_BURST_BACKUPS`, `COFFER_BENCH_BURST_ITEMS` change
//! the sizes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use coffer::backup::{self, BackupRequest};
use coffer::coffer::Coffer;
use coffer::locations::{self, NewBackupStorageLocation, object_store_for};
use coffer::model::{BackupSpec, Phase};
use coffer::sandbox::{Histogram, Limits};
use object_store::ObjectStoreExt as _;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Resident memory of this process, bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn write_source(dir: &Path, items: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let list: Vec<serde_json::Value> = (0..items)
        .map(|i| {
            serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{i}"), "namespace": format!("ns-{}", i % 10)},
                "data": {"config.yaml": "key: value\n".repeat(40)},
            })
        })
        .collect();
    std::fs::write(dir.join("items.json"), serde_json::json!({"apiVersion": "v1", "kind": "List", "items": list}).to_string()).unwrap();
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
}

fn since(after: &Histogram, before: &Histogram) -> Histogram {
    let counts = after.counts.iter().enumerate().map(|(i, c)| c - before.counts.get(i).copied().unwrap_or(0)).collect();
    Histogram { counts, sum: after.sum - before.sum }
}

fn main() {
    let tenants = env_usize("COFFER_BENCH_TENANTS", 100);
    let items = env_usize("COFFER_BENCH_ITEMS", 200);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let source = root.join("source");
    write_source(&source, items);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let coffer = Arc::new(Coffer::open(&root.join("data"), Limits::default()).await.unwrap());
        let names: Vec<String> = (0..tenants).map(|i| format!("tenant-{i:03}")).collect();
        for name in &names {
            let store = root.join("stores").join(name);
            std::fs::create_dir_all(&store).unwrap();
            let new = NewBackupStorageLocation {
                name: "default".into(),
                provider: "filesystem".into(),
                bucket: "bucket".into(),
                config: BTreeMap::from([("root".into(), store.display().to_string())]),
                default: true,
                ..Default::default()
            };
            locations::create_backup_storage_location(&coffer, name, new).await.unwrap();
        }

        // Memory of idle locations: one live, initialised provider instance each.
        let before = rss();
        let mut idle = Vec::new();
        for name in &names {
            let bsl = coffer.state.read().unwrap().get::<coffer::model::BackupStorageLocation>(name, "default").unwrap().unwrap();
            idle.push(object_store_for(&coffer, &bsl).await.unwrap());
        }
        let per_location = (rss().saturating_sub(before)) / tenants as u64;
        drop(idle);

        let calls_before = coffer.sandbox.call_stats().all_calls();
        let started = Instant::now();
        let runs = names.iter().map(|name| {
            let (coffer, name, source) = (coffer.clone(), name.clone(), source.clone());
            tokio::spawn(async move {
                let request = BackupRequest {
                    name: "nightly".into(),
                    source,
                    spec: BackupSpec::default(),
                    labels: BTreeMap::new(),
                    default_snapshot_locations: BTreeMap::new(),
                };
                backup::create_backup(&coffer, &name, request, &mut |_| {}).await.unwrap()
            })
        });
        let done = futures::future::join_all(runs).await;
        let elapsed = started.elapsed();
        let completed = done.iter().filter(|b| b.as_ref().is_ok_and(|b| b.status.phase == Some(Phase::Completed))).count();
        let calls = since(&coffer.sandbox.call_stats().all_calls(), &calls_before);

        let mut objects = Vec::new();
        files(&root.join("stores"), &mut objects);
        let bytes: u64 = objects.iter().map(|(_, b)| b.len() as u64).sum();
        let object_count = objects.len();

        // The peer: the same objects written by native object_store from as many tasks.
        let peer_root = root.join("peer");
        std::fs::create_dir_all(&peer_root).unwrap();
        let peer = Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&peer_root).unwrap());
        let peer_started = Instant::now();
        let writes = objects.into_iter().map(|(path, body)| {
            let peer = peer.clone();
            let key = object_store::path::Path::from(path.strip_prefix(root.join("stores")).unwrap().to_str().unwrap());
            tokio::spawn(async move { peer.put(&key, body.into()).await.unwrap() })
        });
        futures::future::join_all(writes).await;
        let peer_elapsed = peer_started.elapsed();

        let total_items = (tenants * items) as f64;
        println!("{tenants} tenants, each backing up {items} items to its own location, all at once");
        println!("  completed: {completed}/{tenants} in {:.2} s", elapsed.as_secs_f64());
        println!(
            "  throughput: {:.0} items/s, {:.1} MiB/s stored ({} objects, {:.1} MiB)",
            total_items / elapsed.as_secs_f64(),
            bytes as f64 / (1 << 20) as f64 / elapsed.as_secs_f64(),
            object_count,
            bytes as f64 / (1 << 20) as f64
        );
        println!(
            "  native object_store writing the same objects from {tenants} tasks: {:.3} s; coffer/native time {:.1}",
            peer_elapsed.as_secs_f64(),
            elapsed.as_secs_f64() / peer_elapsed.as_secs_f64()
        );
        println!("  memory per idle location (a live provider instance): {:.0} KiB resident", per_location as f64 / 1024.0);
        let ms = |q: f64| calls.quantile(q).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        println!("  provider calls: {}, p50 {:.2} ms, p99 {:.2} ms (bucket upper bounds)", calls.count(), ms(0.5), ms(0.99));
    });
    drop(rt);
    server_burst(root);
}

/// One HTTP/1.1 exchange with the server at `authority`: the status, and how long it took.
fn http(authority: &str, method: &str, path: &str, token: Option<&str>, body: Option<&serde_json::Value>) -> (u16, String, Duration) {
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut conn = std::net::TcpStream::connect(authority).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body, started.elapsed())
}

/// The resident memory of process `pid`, bytes.
fn rss_of(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn quantile(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort();
    let at = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples.get(at).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// The server under a burst: `tenants` tenants each ask `COFFER_BENCH_BURST_BACKUPS` backups of
/// `items` items at once through `coffer server`, while an idle tenant lists its backups and
/// a probe asks `/healthz`. Prints their latencies during the burst and the server's memory.
fn server_burst(root: &Path) {
    let tenants = env_usize("COFFER_BENCH_BURST_TENANTS", 50);
    let per_tenant = env_usize("COFFER_BENCH_BURST_BACKUPS", 5);
    let items = env_usize("COFFER_BENCH_BURST_ITEMS", 2000);
    let data = root.join("server");
    let coffer_bin = env!("CARGO_BIN_EXE_coffer");
    let cli = |args: &[&str]| {
        let out = Command::new(coffer_bin).args(args).env("COFFER_DATA_DIR", &data).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let names: Vec<String> = (0..tenants).map(|i| format!("t{i:02}")).collect();
    let tokens: Vec<String> = names.iter().map(|n| cli(&["tenant", "token", "create", "bench", "--tenant", n])).collect();
    let idle_token = cli(&["tenant", "token", "create", "bench", "--tenant", "idle"]);
    for name in names.iter().chain(["idle".to_owned()].iter()) {
        write_source(&data.join("tenants").join(name).join("src"), items);
        std::fs::create_dir_all(data.join("tenants").join(name).join("store")).unwrap();
    }
    let log_path = root.join("server.log");
    let mut server = Command::new(coffer_bin)
        .args(["server", "--listen", "127.0.0.1:0", "--metrics-listen", "off"])
        .env("COFFER_DATA_DIR", &data)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let authority = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(at) = log.find("api=http://") {
            break log[at + "api=http://".len()..].split_whitespace().next().unwrap().to_owned();
        }
        assert!(server.try_wait().unwrap().is_none(), "the server exited: {log}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let bsl = |tenant: &str| serde_json::json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation", "metadata": {"name": "default"},
        "spec": {"provider": "filesystem", "objectStorage": {"bucket": "b"}, "default": true,
                 "config": {"root": data.join("tenants").join(tenant).join("store").display().to_string()}}});
    let backup = |name: &str| serde_json::json!({"apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": name, "annotations": {"coffer.io/source-directory": "src"}}, "spec": {}});
    for (tenant, token) in names.iter().zip(&tokens).chain([(&"idle".to_owned(), &idle_token)]) {
        let (status, body, _) = http(&authority, "POST", "/v1/backup-storage-locations", Some(token), Some(&bsl(tenant)));
        assert_eq!(status, 201, "{body}");
    }
    let done = |token: &str, count: usize| {
        let (_, body, _) = http(&authority, "GET", "/v1/backups", Some(token), None);
        let items: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
        items.len() == count && items.iter().all(|b| !matches!(b["status"]["phase"].as_str(), Some("New" | "InProgress")))
    };
    http(&authority, "POST", "/v1/backups", Some(&idle_token), Some(&backup("before")));
    while !done(&idle_token, 1) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let pid = server.id();
    let idle_rss = rss_of(pid);

    // The idle tenant and a liveness probe, every 50 ms, and the server's memory, throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (stop, authority, token) = (stop.clone(), authority.clone(), idle_token.clone());
        std::thread::spawn(move || {
            let (mut lists, mut health, mut peak) = (Vec::new(), Vec::new(), 0);
            while !stop.load(Ordering::Relaxed) {
                lists.push(http(&authority, "GET", "/v1/backups", Some(&token), None).2);
                health.push(http(&authority, "GET", "/healthz", None, None).2);
                peak = peak.max(rss_of(pid));
                std::thread::sleep(Duration::from_millis(50));
            }
            (lists, health, peak)
        })
    };
    let started = Instant::now();
    for i in 0..per_tenant {
        for token in &tokens {
            let (status, body, _) = http(&authority, "POST", "/v1/backups", Some(token), Some(&backup(&format!("b{i}"))));
            assert_eq!(status, 202, "{body}");
        }
    }
    let accepted = started.elapsed();
    for token in &tokens {
        while !done(token, per_tenant) {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let burst = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (mut lists, mut health, peak) = prober.join().unwrap();
    std::thread::sleep(Duration::from_secs(30));
    let after = rss_of(pid);
    let completed: usize = tokens
        .iter()
        .map(|t| {
            let (_, body, _) = http(&authority, "GET", "/v1/backups", Some(t), None);
            body.matches("\"phase\":\"Completed\"").count()
        })
        .sum();
    let _ = server.kill();
    let _ = server.wait();

    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    let total = tenants * per_tenant;
    println!("coffer server: {tenants} tenants × {per_tenant} backups of {items} items, all asked at once ({total} backups)");
    println!("  accepted all in {:.2} s; {completed}/{total} Completed after {:.1} s ({:.0} items/s)", accepted.as_secs_f64(), burst.as_secs_f64(), (total * items) as f64 / burst.as_secs_f64());
    let (l50, l99, h50, h99) = (quantile(&mut lists, 0.5), quantile(&mut lists, 0.99), quantile(&mut health, 0.5), quantile(&mut health, 0.99));
    println!("  idle tenant's GET /v1/backups during the burst: p50 {l50:.1} ms, p99 {l99:.1} ms ({} requests; target p99 ≤ 100 ms)", lists.len());
    println!("  GET /healthz during the burst: p50 {h50:.1} ms, p99 {h99:.1} ms ({} requests)", health.len());
    println!(
        "  server memory: idle {:.0} MiB, peak {:.0} MiB, 30 s after the burst {:.0} MiB = {:.2}× idle (target ≤ 2×)",
        mib(idle_rss),
        mib(peak),
        mib(after),
        after as f64 / idle_rss as f64
    );
}
