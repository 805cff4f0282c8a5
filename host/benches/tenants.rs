//! Load test, bounded and on this host only: 100 tenants, each with its own backup storage
//! location (the filesystem provider in its own directory), back up at the same time through
//! the engine. Prints throughput with a ratio against native `object_store` writing the same
//! objects from as many tasks, the memory an idle location's live provider instance costs,
//! and provider-call latency percentiles.
//!
//! Run: `cargo bench -p coffer --bench tenants` (`COFFER_BENCH_TENANTS`, `COFFER_BENCH_ITEMS`
//! change the sizes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

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
}
