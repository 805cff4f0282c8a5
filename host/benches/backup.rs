//! Backup and restore throughput for 10,000 and 100,000 small resources on the embedded
//! providers, each with a ratio against GNU tar (`tar -czf` / `tar -xzf`) on the same data in
//! the same run: the minimum work of packing and unpacking the same files. Then the cost of a
//! copy (`--copy-to` a second filesystem location on the same disk): the same backup with one
//! copy against the one without; and the cost of encryption: the same backup into a location
//! with an encryption key (age) against one without, on the same disk.
//!
//! Run: `cargo bench -p coffer --bench backup` (`COFFER_BENCH_COUNTS=1000,5000` to change sizes).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use coffer::backup::{self, BackupRequest, RestoreRequest};
use coffer::coffer::Coffer;
use coffer::locations::{self, NewBackupStorageLocation};
use coffer::model::{BackupSpec, Phase};
use coffer::sandbox::Limits;

/// Writes `count` ConfigMaps (about 400 bytes each) as 100 JSON `List` files.
fn write_source(dir: &Path, count: usize) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    let mut bytes = 0;
    for file in 0..100 {
        let items: Vec<serde_json::Value> = (0..count / 100)
            .map(|i| {
                serde_json::json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("cm-{file}-{i}"), "namespace": format!("ns-{}", i % 20), "labels": {"app": "bench", "shard": file.to_string()}},
                    "data": {"config.yaml": "key: value\nother: 12345\nlist: [a, b, c]\n", "owner": "team-x"},
                })
            })
            .collect();
        let text = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
        bytes += text.len() as u64;
        std::fs::write(dir.join(format!("part-{file:03}.json")), text).unwrap();
    }
    bytes
}

fn tar(args: &[&str], cwd: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new("tar").args(args).current_dir(cwd).status().expect("tar runs");
    assert!(status.success(), "tar {args:?}");
    started.elapsed()
}

fn line(what: &str, count: usize, ours: Duration, peer: Duration, peer_name: &str) {
    let rate = |d: Duration| count as f64 / d.as_secs_f64();
    println!(
        "{what:<8} {count:>7} items  coffer {:>9.0} items/s ({:>6.2} s)   {peer_name} {:>9.0} items/s ({:>6.2} s)   ratio coffer/peer {:.2}",
        rate(ours),
        ours.as_secs_f64(),
        rate(peer),
        peer.as_secs_f64(),
        rate(ours) / rate(peer)
    );
}

#[tokio::main]
async fn main() {
    let counts: Vec<usize> = std::env::var("COFFER_BENCH_COUNTS")
        .ok()
        .map(|v| v.split(',').map(|c| c.trim().parse().expect("a count")).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    for count in counts {
        let tmp = tempfile::tempdir_in(std::env::var("COFFER_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
        let root = tmp.path();
        let source = root.join("source");
        let bytes = write_source(&source, count);
        std::fs::create_dir_all(root.join("store")).unwrap();
        let coffer = Coffer::open(&root.join("data"), Limits::default()).await.unwrap();
        let bsl = NewBackupStorageLocation {
            name: "default".into(),
            provider: "filesystem".into(),
            bucket: "b".into(),
            config: BTreeMap::from([("root".into(), root.join("store").display().to_string())]),
            default: true,
            ..Default::default()
        };
        locations::create_backup_storage_location(&coffer, "velero", bsl).await.unwrap();

        let started = Instant::now();
        let request = BackupRequest {
            name: "bench".into(),
            source: source.clone(),
            spec: BackupSpec::default(),
            labels: BTreeMap::new(),
            default_snapshot_locations: BTreeMap::new(),
        };
        let b = backup::create_backup(&coffer, "velero", request, &mut |_| {}).await.unwrap();
        let backup_time = started.elapsed();
        assert_eq!(b.status.phase, Some(Phase::Completed), "{b:?}");
        let tar_create = tar(&["-czf", "../peer.tar.gz", "."], &source);

        let started = Instant::now();
        let request = RestoreRequest::new("bench", "bench", root.join("restored"));
        let r = backup::create_restore(&coffer, "velero", request, &mut |_| {}).await.unwrap();
        let restore_time = started.elapsed();
        assert_eq!(r.status.phase, Some(Phase::Completed), "{r:?}");
        std::fs::create_dir_all(root.join("peer-out")).unwrap();
        let tarball = root.join("store/b/backups/bench/bench.tar.gz");
        let tar_extract = tar(&["-xzf", tarball.to_str().unwrap()], &root.join("peer-out"));

        std::fs::create_dir_all(root.join("copies")).unwrap();
        let copy = NewBackupStorageLocation {
            name: "copy".into(),
            provider: "filesystem".into(),
            bucket: "b".into(),
            config: BTreeMap::from([("root".into(), root.join("copies").display().to_string())]),
            ..Default::default()
        };
        locations::create_backup_storage_location(&coffer, "velero", copy).await.unwrap();
        // Both warm (the first backup above paid for compiling the provider), in turns.
        let (mut plain_time, mut copied_time) = (Duration::ZERO, Duration::ZERO);
        for round in 0..3 {
            for (name, copy_to, total) in [("plain", vec![], &mut plain_time), ("copied", vec!["copy".to_owned()], &mut copied_time)] {
                let started = Instant::now();
                let request = BackupRequest {
                    name: format!("bench-{name}-{round}"),
                    source: source.clone(),
                    spec: BackupSpec { copy_to, ..BackupSpec::default() },
                    labels: BTreeMap::new(),
                    default_snapshot_locations: BTreeMap::new(),
                };
                let b = backup::create_backup(&coffer, "velero", request, &mut |_| {}).await.unwrap();
                *total += started.elapsed();
                assert_eq!(b.status.phase, Some(Phase::Completed), "{b:?}");
            }
        }

        // Encryption: the same backup into a location with a key and into one without, in turns.
        use age::secrecy::ExposeSecret;
        let identity = age::x25519::Identity::generate().to_string().expose_secret().to_owned();
        coffer::secrets::create_secret(&coffer, "velero", "keys", vec![("age".into(), identity.into_bytes())]).unwrap();
        std::fs::create_dir_all(root.join("vault")).unwrap();
        let vault = NewBackupStorageLocation {
            name: "vault".into(),
            provider: "filesystem".into(),
            bucket: "b".into(),
            config: BTreeMap::from([("root".into(), root.join("vault").display().to_string())]),
            encryption_key: Some(coffer::model::SecretKeySelector { name: "keys".into(), key: "age".into() }),
            ..Default::default()
        };
        locations::create_backup_storage_location(&coffer, "velero", vault).await.unwrap();
        let (mut clear_time, mut sealed_time) = (Duration::ZERO, Duration::ZERO);
        for round in 0..3 {
            for (name, location, total) in [("clear", "default", &mut clear_time), ("sealed", "vault", &mut sealed_time)] {
                let started = Instant::now();
                let request = BackupRequest {
                    name: format!("bench-{name}-{round}"),
                    source: source.clone(),
                    spec: BackupSpec { storage_location: location.into(), ..BackupSpec::default() },
                    labels: BTreeMap::new(),
                    default_snapshot_locations: BTreeMap::new(),
                };
                let b = backup::create_backup(&coffer, "velero", request, &mut |_| {}).await.unwrap();
                *total += started.elapsed();
                assert_eq!(b.status.phase, Some(Phase::Completed), "{b:?}");
                assert_eq!(b.status.encryption.is_some(), location == "vault");
            }
        }

        println!("{count} ConfigMaps, {:.1} MiB of manifests", bytes as f64 / (1 << 20) as f64);
        line("backup", count, backup_time, tar_create, "tar -czf (manifests)");
        line("restore", count, restore_time, tar_extract, "tar -xzf (backup tarball)");
        println!(
            "copy     {count:>7} items  with one copy {:>6.2} s   without {:>6.2} s   time ratio with/without {:.2} (3 rounds each)",
            copied_time.as_secs_f64() / 3.0,
            plain_time.as_secs_f64() / 3.0,
            copied_time.as_secs_f64() / plain_time.as_secs_f64()
        );
        println!(
            "encrypt  {count:>7} items  encrypted {:>6.2} s   clear {:>6.2} s   time ratio encrypted/clear {:.2} (3 rounds each)",
            sealed_time.as_secs_f64() / 3.0,
            clear_time.as_secs_f64() / 3.0,
            sealed_time.as_secs_f64() / clear_time.as_secs_f64()
        );
    }
}
