//! `backup` and `restore` as a user runs them.

use crate::common::{Cli, dir, s};

#[test]
fn backup_restore_describe_logs_download_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cli = Cli::new(&root.join("data"));
    let (store, volumes, snapshots, source) = (dir(root, "store"), dir(root, "volumes"), dir(root, "snapshots"), dir(root, "source"));
    let data = dir(&volumes, "vol-a");
    std::fs::write(data.join("f"), b"bytes").unwrap();
    std::fs::write(
        source.join("pv.json"),
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-a"}, "spec": {"hostPath": {"path": s(&data)}}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}},
        ]})
        .to_string(),
    )
    .unwrap();
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    cli.ok(&["vsl", "create", "local", "--provider", "local", "--config", &format!("volumeRoot={},snapshotDir={}", s(&volumes), s(&snapshots))]);

    let run = cli.run(&["backup", "create", "b1", "--source", &s(&source), "--wait", "--ttl", "72h"]);
    assert!(run.ok, "{run:?}");
    assert!(run.stdout.contains("Backup completed with status: Completed"), "{}", run.stdout);
    assert!(run.stderr.contains("100% 2/2 items"), "progress bar: {}", run.stderr);
    let b = cli.json(&["backup", "get", "b1"]);
    assert_eq!(b["spec"]["ttl"], "72h0m0s");
    assert_eq!(b["status"]["volumeSnapshotsCompleted"], 1);
    let described = cli.ok(&["backup", "describe", "b1", "--details"]);
    assert!(described.contains("Phase:  Completed") && described.contains("v1/Pod:") && described.contains("    - n/p"), "{described}");
    assert!(described.contains("Snapshot ID:        snap-"), "{described}");
    assert!(cli.ok(&["backup", "logs", "b1"]).contains("Backed up a total of 2 items"));
    let download = root.join("b1.tar.gz");
    cli.ok(&["backup", "download", "b1", "-o", &s(&download)]);
    assert_eq!(std::fs::read(&download).unwrap(), std::fs::read(store.join("b/backups/b1/b1.tar.gz")).unwrap());
    let err = cli.fails(&["backup", "download", "b1", "-o", &s(&download)]);
    assert!(err.contains("--force"), "{err}");

    let err = cli.fails(&["backup", "create", "bad", "--source", &s(&source), "--storage-location", "nope"]);
    assert!(err.contains("failed validation") && err.contains("the default nope was not found"), "{err}");
    assert_eq!(cli.json(&["backup", "get", "bad"])["status"]["phase"], "FailedValidation");

    let target = root.join("out");
    let run = cli.run(&["restore", "create", "r1", "--from-backup", "b1", "--target", &s(&target), "--wait"]);
    assert!(run.ok && run.stdout.contains("Restore completed with status: Completed"), "{run:?}");
    assert!(target.join("resources/pods/namespaces/n/p.json").exists());
    assert!(cli.ok(&["restore", "describe", "r1"]).contains("Backup:  b1"));
    assert!(cli.ok(&["restore", "get"]).contains("r1"));
    assert!(cli.ok(&["restore", "logs", "r1"]).contains("Restored persistent volume pv-a"));

    cli.ok(&["backup", "delete", "b1", "--confirm"]);
    assert!(!store.join("b/backups/b1").exists());
    assert_eq!(std::fs::read_dir(&snapshots).unwrap().count(), 0);
    let err = cli.fails(&["backup", "describe", "b1"]);
    assert!(err.contains("backup \"b1\" not found"), "{err}");
}
