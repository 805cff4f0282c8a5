//! What a running server does by itself: validation on each location's frequency, backup
//! sync into a second host (from a ReadOnly location), schedules, TTL garbage collection,
//! and backups a crash left InProgress marked Failed at start; and a rotated credential used
//! by the next provider call without a restart.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::common::{Cli, dir, s};
use crate::server_api::{Tenancy, pv_source, token};
use crate::servers::{coffer_server, eventually, http, s3s_fs};

fn manifests(dir: &std::path::Path) {
    std::fs::write(dir.join("app.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\ndata: {k: v}\n").unwrap();
}

fn get(url: &str, token: &str, path: &str) -> Value {
    let (status, body) = http("GET", &format!("{url}{path}"), Some(token), None);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|b| b["metadata"]["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_second_host_syncs_backups_from_a_read_only_location() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let tenants = dir(tmp.path(), "tenants");
    let root = ["--tenant-root", &s(&tenants)];
    let first = coffer_server(&one, &root);
    let a = Cli::remote(&first.server.url, &token(&one, "acme", "a"));
    let (store, src) = (dir(&tenants.join("acme"), "store"), dir(&tenants.join("acme"), "src"));
    manifests(&src);
    a.ok(&["bsl", "create", "main", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    a.ok(&["backup", "create", "b1", "--source", "src", "--wait"]);

    let second = coffer_server(&two, &[&root[..], &["--backup-sync-period", "1s"]].concat());
    let t = token(&two, "acme", "b");
    let b = Cli::remote(&second.server.url, &t);
    b.ok(&["bsl", "create", "dr", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--access-mode", "ReadOnly"]);
    let synced = eventually(Duration::from_secs(30), "sync", || {
        let list = get(&second.server.url, &t, "/v1/backups");
        (names(&list) == ["b1"]).then(|| list[0].clone())
    });
    assert_eq!(synced["status"]["phase"], "Completed");
    assert_eq!(synced["spec"]["storageLocation"], "dr", "rewritten to this host's location");
    assert_eq!(synced["metadata"]["labels"]["velero.io/storage-location"], "dr");
    let err = b.fails(&["backup", "delete", "b1", "--confirm"]);
    assert!(err.contains("read-only mode"), "{err}");
    let run = b.run(&["restore", "create", "r1", "--from-backup", "b1", "--target", "restored", "--wait"]);
    assert!(run.ok && run.stdout.contains("Completed"), "{run:?}");
    assert!(tenants.join("acme/restored/resources/configmaps/namespaces/shop/c.json").exists());
    assert!(get(&second.server.url, &t, "/v1/backup-storage-locations/dr")["status"]["lastSyncedTime"].is_string());

    // Deleted on the first host, forgotten by the second.
    a.ok(&["backup", "delete", "b1", "--confirm"]);
    eventually(Duration::from_secs(30), "orphan removal", || names(&get(&second.server.url, &t, "/v1/backups")).is_empty().then_some(()));
}

#[test]
fn locations_are_validated_on_their_own_frequency() {
    let tmp = tempfile::tempdir().unwrap();
    let Tenancy { token: t, server, cli, home, .. } = Tenancy::start(tmp.path(), &[]);
    let (often, never) = (dir(&home, "often"), dir(&home, "never"));
    for (name, root, frequency) in [("often", &often, "1s"), ("never", &never, "0s")] {
        cli.ok(&["bsl", "create", name, "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(root)), "--validation-frequency", frequency]);
    }
    let before = get(&server.server.url, &t, "/v1/backup-storage-locations/never")["status"].clone();
    assert_eq!(before["phase"], "Available");
    std::fs::remove_dir_all(&often).unwrap();
    std::fs::remove_dir_all(&never).unwrap();
    let status = eventually(Duration::from_secs(30), "revalidation", || {
        let st = get(&server.server.url, &t, "/v1/backup-storage-locations/often")["status"].clone();
        (st["phase"] == "Unavailable").then_some(st)
    });
    assert!(status["message"].as_str().unwrap().contains("often"), "{status}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(get(&server.server.url, &t, "/v1/backup-storage-locations/never")["status"], before, "0s never revalidates");
}

#[test]
fn a_servers_controllers_run_schedules() {
    let tmp = tempfile::tempdir().unwrap();
    let Tenancy { token: t, server, cli, home, .. } = Tenancy::start(tmp.path(), &[]);
    let (store, src) = (dir(&home, "store"), dir(&home, "src"));
    manifests(&src);
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    // The first run is at once; the cadence itself is tested by the clock
    // (controller_clock.rs).
    cli.ok(&["schedule", "create", "often", "--schedule", "@every 1h", "--source", "src", "--ttl", "10m", "--labels", "team=shop"]);
    let made = eventually(Duration::from_secs(30), "a scheduled backup", || {
        let list = get(&server.server.url, &t, "/v1/backups");
        let done: Vec<Value> = list.as_array().unwrap().iter().filter(|b| b["status"]["phase"] == "Completed").cloned().collect();
        (!done.is_empty()).then_some(done)
    });
    for b in &made {
        assert!(b["metadata"]["name"].as_str().unwrap().starts_with("often-2"), "{b}");
        assert_eq!(b["metadata"]["labels"]["velero.io/schedule-name"], "often");
        assert_eq!(b["metadata"]["labels"]["team"], "shop");
        assert_eq!(b["spec"]["ttl"], "10m0s");
    }
    cli.ok(&["schedule", "pause", "often"]);
    assert_eq!(get(&server.server.url, &t, "/v1/schedules/often")["spec"]["paused"], true);
    let often = get(&server.server.url, &t, "/v1/schedules/often");
    assert!(often["status"]["lastBackup"].is_string() && often["status"]["lastFailure"].is_null(), "{often}");
}

#[test]
fn a_schedule_whose_runs_make_no_backup_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let Tenancy { token: t, server, cli, home, .. } = Tenancy::start(tmp.path(), &[]);
    let (store, src) = (dir(&home, "store"), dir(&home, "src"));
    manifests(&src);
    // The only location is ReadOnly: every run's backup fails validation.
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default", "--access-mode", "ReadOnly"]);
    cli.ok(&["schedule", "create", "doomed", "--schedule", "@every 1h", "--source", "src"]);
    let doomed = eventually(Duration::from_secs(30), "a failed run recorded", || {
        let doomed = get(&server.server.url, &t, "/v1/schedules/doomed");
        doomed["status"]["lastFailure"].is_string().then_some(doomed)
    });
    assert!(doomed["status"]["lastBackup"].is_null(), "no backup was made: {doomed}");
    assert!(doomed["status"]["lastFailure"].as_str().unwrap().contains("FailedValidation"), "{doomed}");
    assert!(cli.ok(&["schedule", "get", "doomed"]).contains("FailedValidation"));
    let metrics = crate::servers::http("GET", &server.metrics_url, None, None).1;
    let failures = metrics.lines().find_map(|l| l.strip_prefix("coffer_scheduled_backup_failures_total ")).unwrap_or("0");
    assert!(failures.parse::<u64>().unwrap() >= 1, "{metrics}");
}

#[test]
fn expired_backups_are_deleted_with_their_objects_and_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let Tenancy { token: t, server, cli, home, .. } = Tenancy::start(tmp.path(), &["--garbage-collection-frequency", "1s"]);
    let store = dir(&home, "store");
    let (volumes, snapshots, _) = pv_source(&home);
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    cli.ok(&["vsl", "create", "local", "--provider", "local", "--config", &format!("volumeRoot={},snapshotDir={}", s(&volumes), s(&snapshots))]);
    cli.ok(&["backup", "create", "keep", "--source", "src", "--wait"]);
    cli.ok(&["backup", "create", "brief", "--source", "src", "--wait", "--ttl", "2s"]);
    assert_eq!(std::fs::read_dir(&snapshots).unwrap().count(), 2);
    eventually(Duration::from_secs(30), "collection", || (names(&get(&server.server.url, &t, "/v1/backups")) == ["keep"]).then_some(()));
    assert!(!store.join("b/backups/brief").exists(), "its objects are gone");
    assert!(store.join("b/backups/keep/keep.tar.gz").exists());
    assert_eq!(std::fs::read_dir(&snapshots).unwrap().count(), 1, "its snapshot is gone, the other's kept");
}

#[test]
fn backups_a_crash_left_running_are_failed_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let t = token(&data, "acme", "a");
    let (store, src) = (dir(tmp.path(), "store"), dir(tmp.path(), "src"));
    manifests(&src);
    // A backup recorded InProgress whose process then died.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let coffer = crate::common::open_coffer(&data).await;
        coffer::locations::create_backup_storage_location(&coffer, "acme", crate::common::filesystem_bsl("default", &store)).await.unwrap();
        let request = coffer::backup::BackupRequest {
            name: "cut".into(),
            source: src.clone(),
            spec: Default::default(),
            labels: BTreeMap::new(),
            default_snapshot_locations: BTreeMap::new(),
        };
        let accepted = coffer::backup::accept_backup(&coffer, "acme", request).unwrap();
        assert!(matches!(accepted, coffer::backup::Accepted::Started(_)));
    });
    let server = coffer_server(&data, &[]);
    if crate::common::test_state(&data).is_none() {
        // The server recovers its own state before it answers.
        let b = get(&server.server.url, &t, "/v1/backups/cut");
        assert_eq!(b["status"]["phase"], "Failed");
        assert_eq!(b["status"]["failureReason"], "found a backup with status \"InProgress\" during the server starting, mark it as \"Failed\"");
    } else {
        // A shared state: the leading server fails the run as soon as no live process holds it.
        let b = eventually(Duration::from_secs(15), "the interrupted backup failed", || {
            Some(get(&server.server.url, &t, "/v1/backups/cut")).filter(|b| b["status"]["phase"] == "Failed")
        });
        assert!(b["status"]["failureReason"].as_str().unwrap().contains("no live process runs any more"), "{b}");
    }
}

#[test]
fn a_rotated_credential_is_used_by_the_next_call_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket_root = tmp.path().join("s3");
    let s3 = s3s_fs(&bucket_root, &["velero"]);
    // The test's S3 is on loopback, which tenants reach only when the operator allows it.
    let Tenancy { token: t, server, cli, home, .. } = Tenancy::start(tmp.path(), &["--allow-endpoint", "127.0.0.1"]);
    let src = dir(&home, "src");
    manifests(&src);
    let wrong = home.join("wrong");
    std::fs::write(&wrong, "[default]\naws_access_key_id = testing\naws_secret_access_key = wrong\n").unwrap();
    let right = home.join("right");
    std::fs::write(&right, "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n").unwrap();
    cli.ok(&["secret", "create", "s3", "--from-file", &format!("cloud={}", s(&wrong))]);
    let out = cli.ok(&["bsl", "create", "default", "--provider", "aws", "--bucket", "velero", "--default", "--credential", "s3=cloud", "--config", &format!("region=us-east-1,s3Url={}", s3.url)]);
    assert!(out.contains("Unavailable"), "{out}");
    let status = get(&server.server.url, &t, "/v1/backup-storage-locations/default")["status"].clone();
    assert!(status["message"].as_str().unwrap().contains("SignatureDoesNotMatch"), "{status}");
    let run = cli.run(&["backup", "create", "before", "--source", "src", "--wait"]);
    assert!(!run.ok && run.stderr.contains("is in Unavailable status"), "{run:?}");

    // The new value is used by the next provider call: the revalidation setting it triggers.
    cli.ok(&["secret", "set", "s3", "--from-file", &format!("cloud={}", s(&right))]);
    eventually(Duration::from_secs(30), "revalidation with the new credential", || {
        (get(&server.server.url, &t, "/v1/backup-storage-locations/default")["status"]["phase"] == "Available").then_some(())
    });
    let run = cli.run(&["backup", "create", "after", "--source", "src", "--wait"]);
    assert!(run.ok && run.stdout.contains("Completed"), "{run:?}");
    assert!(bucket_root.join("velero/backups/after/after.tar.gz").exists());
}

#[test]
fn the_servers_default_snapshot_location_settles_a_provider_with_several() {
    let tmp = tempfile::tempdir().unwrap();
    // The server lives as long as `_server`.
    let Tenancy { cli, home, server: _server, .. } = Tenancy::start(tmp.path(), &["--default-volume-snapshot-locations", "local:second"]);
    let store = dir(&home, "store");
    let (volumes, snapshots, _) = pv_source(&home);
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    for name in ["first", "second"] {
        cli.ok(&["vsl", "create", name, "--provider", "local", "--config", &format!("volumeRoot={},snapshotDir={}", s(&volumes), s(&snapshots))]);
    }
    let run = cli.run(&["backup", "create", "b1", "--source", "src", "--wait"]);
    assert!(run.ok, "{run:?}");
    assert_eq!(cli.json(&["backup", "get", "b1"])["spec"]["volumeSnapshotLocations"], serde_json::json!(["second"]));
}
