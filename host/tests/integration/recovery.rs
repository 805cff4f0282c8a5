//! A process that dies in the middle of a backup leaves it `InProgress` in the state; the
//! next process to open the state sets it straight against its location: complete in the
//! bucket (the crash came after `velero-backup.json`) → as the bucket has it; partial →
//! `Failed`, with the partial objects removed, in its own location and in its copies'.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use coffer::backup::{self, BackupRequest};
use coffer::coffer::Coffer;
use coffer::controllers::{Opener, Scan, recover_interrupted};
use coffer::locations;
use coffer::model::{Backup, BackupSpec, Phase};
use coffer::sandbox::Limits;

use crate::common::{Cli, bulky_manifests, dir, filesystem_bsl, s};

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_backups_are_reconciled_with_their_location() {
    let tmp = tempfile::tempdir().unwrap();
    let coffer = Coffer::open(&tmp.path().join("data"), Limits::default()).await.unwrap();
    let store = dir(tmp.path(), "store");
    let src = dir(tmp.path(), "src");
    std::fs::write(src.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n").unwrap();
    locations::create_backup_storage_location(&coffer, "ns", filesystem_bsl("default", &store)).await.unwrap();
    for name in ["uploaded", "partial"] {
        let request = BackupRequest {
            name: name.into(),
            source: src.clone(),
            spec: BackupSpec::default(),
            labels: BTreeMap::new(),
            default_snapshot_locations: BTreeMap::new(),
        };
        let done = backup::create_backup(&coffer, "ns", request, &mut |_| {}).await.unwrap();
        assert_eq!(done.status.phase, Some(Phase::Completed));
        // The crash: the state still says InProgress.
        let mut record = done.clone();
        record.status.phase = Some(Phase::InProgress);
        record.status.completion_timestamp = None;
        coffer.state.write(|txn| txn.put(&mut record)).unwrap();
    }
    // "partial" died before its last upload, in the middle of a put.
    std::fs::remove_file(store.join("b/backups/partial/velero-backup.json")).unwrap();
    std::fs::write(store.join("b/backups/partial/.coffer-tmp-0123456789abcdef"), b"half a file").unwrap();
    assert!(store.join("b/backups/partial/partial.tar.gz").exists());

    let (backups, restores) = recover_interrupted(&coffer, Opener::Command, Scan::All).await.unwrap();
    assert_eq!((backups, restores), (2, 0));
    let get = |name: &str| coffer.state.read().unwrap().get::<Backup>("ns", name).unwrap().unwrap();
    let uploaded = get("uploaded");
    assert_eq!(uploaded.status.phase, Some(Phase::Completed), "{:?}", uploaded.status);
    assert!(uploaded.status.completion_timestamp.is_some());
    let partial = get("partial");
    assert_eq!(partial.status.phase, Some(Phase::Failed), "{:?}", partial.status);
    assert!(partial.status.failure_reason.contains("ended before it finished"), "{}", partial.status.failure_reason);
    assert!(!store.join("b/backups/partial").exists(), "partial objects and the interrupted put's file removed");
    backup::delete_backup(&coffer, "ns", "partial").await.unwrap();

    // A backup copied to `copy` died before its own location got velero-backup.json (copies
    // get theirs first): the whole copy is taken back. `elsewhere` held another backup of that
    // name, which the copy did not replace, and which stays.
    let (copy, elsewhere) = (dir(tmp.path(), "copy"), dir(tmp.path(), "elsewhere"));
    for (name, root) in [("copy", &copy), ("elsewhere", &elsewhere)] {
        let new = coffer::locations::NewBackupStorageLocation { default: false, ..filesystem_bsl(name, root) };
        locations::create_backup_storage_location(&coffer, "ns", new).await.unwrap();
    }
    let foreign = dir(&elsewhere, "b/backups/copied").join("velero-backup.json");
    std::fs::write(&foreign, br#"{"metadata": {"name": "copied"}, "status": {"phase": "Completed"}}"#).unwrap();
    let request = BackupRequest {
        name: "copied".into(),
        source: src.clone(),
        spec: BackupSpec { copy_to: vec!["copy".into(), "elsewhere".into()], ..Default::default() },
        labels: BTreeMap::new(),
        default_snapshot_locations: BTreeMap::new(),
    };
    let done = backup::create_backup(&coffer, "ns", request, &mut |_| {}).await.unwrap();
    assert_eq!(done.status.phase, Some(Phase::PartiallyFailed), "the copy to elsewhere failed: {:?}", done.status);
    assert!(copy.join("b/backups/copied/velero-backup.json").exists());
    let mut record = done.clone();
    record.status.phase = Some(Phase::InProgress);
    coffer.state.write(|txn| txn.put(&mut record)).unwrap();
    std::fs::remove_file(store.join("b/backups/copied/velero-backup.json")).unwrap();
    assert_eq!(recover_interrupted(&coffer, Opener::Command, Scan::All).await.unwrap(), (1, 0));
    assert_eq!(get("copied").status.phase, Some(Phase::Failed));
    assert!(!copy.join("b/backups/copied").exists(), "the copy is taken back whole");
    assert!(!store.join("b/backups/copied").exists());
    assert!(foreign.exists(), "another backup of that name is left alone");
}

/// The CLI on a data directory under `tmp`, with a default filesystem location in `store`:
/// `(cli, store, src)`, `src` an empty source directory.
fn cli_with_store(tmp: &std::path::Path) -> (Cli, std::path::PathBuf, std::path::PathBuf) {
    let cli = Cli::new(&tmp.join("data"));
    let (store, src) = (dir(tmp, "store"), dir(tmp, "src"));
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    (cli, store, src)
}

/// Every file under `dir` whose name starts with the filesystem provider's temporary prefix.
fn temp_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(temp_files(&path));
        } else if entry.file_name().to_string_lossy().starts_with(".coffer-tmp-") {
            found.push(path);
        }
    }
    found
}

#[test]
fn backups_killed_at_any_point_are_complete_or_failed_and_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let (cli, store, src) = cli_with_store(tmp.path());
    bulky_manifests(&src, 12);
    let started = Instant::now();
    cli.ok(&["backup", "create", "whole", "--source", &s(&src), "--wait"]);
    let whole = started.elapsed();

    let mut phases = BTreeMap::new();
    for i in 0..16u32 {
        let name = format!("k{i}");
        let metadata = store.join(format!("b/backups/{name}/velero-backup.json"));
        let mut running = cli.command(&["backup", "create", &name, "--source", &s(&src), "--wait"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        if i % 4 == 3 {
            // Right after velero-backup.json reached the bucket, before or while the state
            // records the end.
            let watching = Instant::now();
            while !metadata.exists() && watching.elapsed() < Duration::from_secs(120) {
                std::thread::sleep(Duration::from_millis(1));
            }
        } else {
            // Anywhere from start-up to the end.
            std::thread::sleep(whole.mul_f64(f64::from(i) / 16.0));
        }
        running.kill().unwrap(); // SIGKILL
        running.wait().unwrap();
        // The next command sets it straight against the bucket.
        let Some(backup) = cli.run(&["backup", "get", &name, "-o", "json"]).ok.then(|| cli.json(&["backup", "get", &name])) else {
            *phases.entry("never recorded".to_owned()).or_insert(0) += 1;
            continue;
        };
        let phase = backup["status"]["phase"].as_str().unwrap().to_owned();
        let in_bucket = metadata.exists();
        match phase.as_str() {
            "Completed" => assert!(in_bucket, "{name}: Completed in the state but not in the bucket"),
            "Failed" => {
                assert!(!in_bucket, "{name}: Failed in the state but complete in the bucket");
                let left: Vec<_> = std::fs::read_dir(store.join(format!("b/backups/{name}"))).into_iter().flatten().flatten().map(|e| e.path()).collect();
                assert!(left.is_empty(), "{name}: a failed backup left {left:?}");
                let logs = cli.run(&["backup", "logs", &name]);
                assert!(logs.stderr.contains("ended before it finished") || logs.stdout.contains("ended before it finished"), "{name}: {}{}", logs.stdout, logs.stderr);
            }
            other => panic!("{name}: left {other}"),
        }
        *phases.entry(phase).or_insert(0) += 1;
    }
    assert!(phases.get("Completed").is_some_and(|n| *n >= 4), "every kill after velero-backup.json was reconciled as Completed: {phases:?}");
    assert!(temp_files(&store).is_empty(), "{:?}", temp_files(&store));
    // Failed ones delete cleanly.
    for i in 0..16 {
        let name = format!("k{i}");
        if cli.run(&["backup", "get", &name]).ok {
            cli.ok(&["backup", "delete", &name, "--confirm"]);
            assert!(!store.join(format!("b/backups/{name}")).exists(), "{name}'s directory is gone");
        }
    }
    eprintln!("kills: {phases:?} (a whole backup took {whole:?})");
}

#[test]
fn a_restore_log_that_cannot_reach_its_location_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (cli, store, src) = cli_with_store(tmp.path());
    std::fs::write(src.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n").unwrap();
    cli.ok(&["backup", "create", "b1", "--source", &s(&src), "--wait"]);
    // Where the restore's files would go is taken by a file: uploading them fails.
    std::fs::write(store.join("b/restores"), b"in the way").unwrap();
    let run = cli.run(&["restore", "create", "r1", "--from-backup", "b1", "--target", &s(&tmp.path().join("out")), "--wait"]);
    assert!(run.stdout.contains("Completed"), "{}{}", run.stdout, run.stderr);
    let log = cli.ok(&["restore", "logs", "r1"]);
    assert!(log.contains("restore=velero/r1") && log.contains("b/restores/r1"), "{log}");
    // Deleting the backup forgets its restores' kept logs with them.
    cli.ok(&["backup", "delete", "b1", "--confirm"]);
    assert!(cli.fails(&["restore", "logs", "r1"]).contains("not found"));
}
