//! Every tenant command as a user runs it, from one list of scenarios, each run twice: on a
//! data directory, and through a server as a tenant (whose files are in its tree there). The
//! same commands must print and do the same in both.

use std::path::{Path, PathBuf};

use crate::common::{Cli, dir, s};
use crate::server_api::Tenancy;

/// Where a scenario runs: the CLI a user runs, and a directory for the scenario's files.
struct Place {
    cli: Cli,
    home: PathBuf,
    _server: Option<Tenancy>,
    _tmp: tempfile::TempDir,
}

impl Place {
    /// A CLI on its own data directory.
    fn local() -> Place {
        let tmp = tempfile::tempdir().unwrap();
        Place { cli: Cli::new(&tmp.path().join("data")), home: dir(tmp.path(), "home"), _server: None, _tmp: tmp }
    }

    /// A CLI acting through a server as tenant `acme`, with files in acme's tree.
    fn remote() -> Place {
        let tmp = tempfile::tempdir().unwrap();
        let tenancy = Tenancy::start(tmp.path(), &[]);
        let home = dir(&tenancy.home, "home");
        Place { cli: Cli { data_dir: tenancy.cli.data_dir.clone(), env: tenancy.cli.env.clone() }, home, _server: Some(tenancy), _tmp: tmp }
    }
}

/// The scenarios, each run locally and through a server.
macro_rules! everywhere {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[test]
                fn on_a_data_directory() {
                    let place = super::Place::local();
                    super::$scenario(&place.cli, &place.home);
                }

                #[test]
                fn through_a_server() {
                    let place = super::Place::remote();
                    super::$scenario(&place.cli, &place.home);
                }
            }
        )*
    };
}

everywhere!(locations, secrets, backups, schedules, file_system_backups);

/// `backup-location` and `snapshot-location`: create, get, set, delete.
fn locations(cli: &Cli, home: &Path) {
    let (ca, _, _) = crate::servers::test_certs(&home.join("certs"));
    let value = dir(home, "files").join("cloud");
    std::fs::write(&value, b"[default]\n").unwrap();
    cli.ok(&["secret", "create", "creds", "--from-file", &format!("cloud={}", s(&value))]);
    let store = format!("root={}", s(&dir(home, "store")));
    let out = cli.ok(&["bsl", "create", "a", "--provider", "filesystem", "--bucket", "a", "--config", &store, "--default"]);
    assert!(out.contains("configured successfully") && out.contains("Available"), "{out}");
    let err = cli.fails(&["bsl", "create", "second", "--provider", "filesystem", "--bucket", "s", "--config", &store, "--default"]);
    assert!(err.contains("\"a\" is already the default") && err.contains("`coffer backup-location set second --default`"), "{err}");
    let err = cli.fails(&["bsl", "create", "bad", "--provider", "filesystem", "--bucket", "b/c", "--config", &store]);
    assert!(err.contains("--bucket: bucket name \"b/c\" must not contain a '/'") && err.contains("--prefix"), "{err}");
    cli.ok(&["bsl", "create", "b", "--provider", "filesystem", "--bucket", "b", "--config", &store]);

    let default = |name: &str| cli.json(&["bsl", "get", name])["spec"]["default"].as_bool().unwrap_or(false);
    cli.ok(&["bsl", "set", "b", "--default"]);
    assert_eq!((default("a"), default("b")), (false, true));
    let defaults = cli.json(&["bsl", "get", "--default"]);
    assert_eq!(defaults["items"].as_array().map(Vec::len), Some(1), "{defaults}");
    cli.ok(&["bsl", "set", "b", "--default=false"]);
    assert!(!default("b"));
    let table = cli.ok(&["bsl", "get"]);
    assert!(table.starts_with("NAME") && table.contains("Available"), "{table}");

    cli.ok(&["bsl", "set", "a", "--credential", "creds=cloud", "--cacert", &s(&ca)]);
    let a = cli.json(&["bsl", "get", "a"]);
    assert_eq!(a["spec"]["credential"], serde_json::json!({"name": "creds", "key": "cloud"}), "{a}");
    use base64::Engine as _;
    assert_eq!(a["spec"]["objectStorage"]["caCert"].as_str(), Some(base64::engine::general_purpose::STANDARD.encode(std::fs::read(&ca).unwrap()).as_str()));
    let err = cli.fails(&["bsl", "set", "a", "--credential", "creds=missing"]);
    assert!(err.contains("missing"), "{err}");

    let config = format!("volumeRoot={},snapshotDir={}", s(&dir(home, "volumes")), s(&dir(home, "snapshots")));
    cli.ok(&["vsl", "create", "v", "--provider", "local", "--config", &config]);
    assert_eq!(cli.json(&["vsl", "get", "v"])["status"]["phase"], "Available");
    cli.ok(&["vsl", "set", "v", "--credential", "creds=cloud"]);
    assert_eq!(cli.json(&["vsl", "get", "v"])["spec"]["credential"], serde_json::json!({"name": "creds", "key": "cloud"}));
    assert!(cli.fails(&["vsl", "set", "nope", "--credential", "creds=cloud"]).contains("not found"));
    assert!(cli.ok(&["vsl", "get"]).contains("local"));

    let err = cli.fails(&["bsl", "delete", "a", "nope", "--confirm"]);
    assert!(err.contains("\"nope\" not found"), "{err}");
    assert_eq!(cli.json(&["bsl", "get", "a"])["metadata"]["name"], "a", "a delete naming a missing location deletes none");
    assert!(cli.ok(&["bsl", "delete", "a", "--confirm"]).contains("\"a\" deleted"));
    assert!(cli.ok(&["bsl", "delete", "--all", "--confirm"]).contains("\"b\" deleted"));
    assert!(cli.json(&["bsl", "get"])["items"].as_array().unwrap().is_empty());
    assert!(cli.ok(&["vsl", "delete", "--all", "--confirm"]).contains("\"v\" deleted"));
}

/// `secret`: create, set, get, delete; values never printed.
fn secrets(cli: &Cli, home: &Path) {
    let value = dir(home, "files").join("value");
    std::fs::write(&value, b"aws_secret_access_key=TOPSECRET-1234").unwrap();
    let spec = format!("cloud={}", s(&value));
    assert!(cli.ok(&["secret", "create", "creds", "--from-file", &spec]).contains("created with keys: cloud"));
    assert!(cli.ok(&["secret", "set", "creds", "--from-file", &format!("other={}", s(&value))]).contains("keys: cloud, other"));
    let mut printed = String::new();
    for args in [&["secret", "get"][..], &["secret", "get", "creds", "-o", "json"], &["secret", "get", "-o", "yaml"]] {
        printed.push_str(&cli.ok(args));
    }
    assert!(printed.contains("creds") && printed.contains("other"), "{printed}");
    assert!(!printed.contains("TOPSECRET"), "{printed}");
    let err = cli.fails(&["secret", "create", "creds", "--from-file", &spec]);
    assert!(err.contains("\"creds\" already exists"), "{err}");
    let err = cli.fails(&["secret", "delete", "creds", "nope"]);
    assert!(err.contains("\"nope\" not found"), "{err}");
    cli.ok(&["secret", "delete", "creds"]);
    assert!(cli.fails(&["secret", "get", "creds"]).contains("not found"));
}

/// `backup` and `restore`: create (waiting), get, describe, logs, download, delete.
fn backups(cli: &Cli, home: &Path) {
    let (store, volumes, snapshots, source) = (dir(home, "store"), dir(home, "volumes"), dir(home, "snapshots"), dir(home, "source"));
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
    assert!(cli.ok(&["backup", "get"]).contains("b1"));
    let described = cli.ok(&["backup", "describe", "b1", "--details"]);
    assert!(described.contains("Phase:  Completed") && described.contains("v1/Pod:") && described.contains("    - n/p"), "{described}");
    assert!(described.contains("Snapshot ID:        snap-"), "{described}");
    assert!(cli.ok(&["backup", "logs", "b1"]).contains("Backed up a total of 2 items"));
    let download = home.join("b1.tar.gz");
    cli.ok(&["backup", "download", "b1", "-o", &s(&download)]);
    assert_eq!(std::fs::read(&download).unwrap(), std::fs::read(store.join("b/backups/b1/b1.tar.gz")).unwrap());
    let err = cli.fails(&["backup", "download", "b1", "-o", &s(&download)]);
    assert!(err.contains("--force"), "{err}");
    cli.ok(&["backup", "download", "b1", "-o", &s(&download), "--force"]);
    let err = cli.fails(&["backup", "download", "nope", "-o", &s(&home.join("nope.tar.gz"))]);
    assert!(err.contains("backup \"nope\" not found") && !home.join("nope.tar.gz").exists(), "{err}");

    let err = cli.fails(&["backup", "create", "bad", "--source", &s(&source), "--storage-location", "nope"]);
    assert!(err.contains("failed validation") && err.contains("the default nope was not found"), "{err}");
    assert_eq!(cli.json(&["backup", "get", "bad"])["status"]["phase"], "FailedValidation");
    let err = cli.fails(&["backup", "create", "missing", "--source", &s(&home.join("missing"))]);
    assert!(err.contains("--source") && err.contains("No such file"), "{err}");

    let target = home.join("out");
    let run = cli.run(&["restore", "create", "r1", "--from-backup", "b1", "--target", &s(&target), "--wait"]);
    assert!(run.ok && run.stdout.contains("Restore completed with status: Completed"), "{run:?}");
    assert!(target.join("resources/pods/namespaces/n/p.json").exists());
    assert!(cli.ok(&["restore", "describe", "r1"]).contains("Backup:  b1"));
    assert!(cli.ok(&["restore", "get"]).contains("r1"));
    assert_eq!(cli.json(&["restore", "get", "r1"])["status"]["phase"], "Completed");
    assert!(cli.ok(&["restore", "logs", "r1"]).contains("Restored persistent volume pv-a"));
    let err = cli.fails(&["restore", "create", "r2", "--from-backup", "b1", "--target", &s(&target)]);
    assert!(err.contains("is not empty"), "{err}");

    cli.ok(&["backup", "delete", "b1", "--confirm"]);
    assert!(!store.join("b/backups/b1").exists());
    assert_eq!(std::fs::read_dir(&snapshots).unwrap().count(), 0);
    let err = cli.fails(&["backup", "describe", "b1"]);
    assert!(err.contains("backup \"b1\" not found"), "{err}");
}

/// File-system backup of a pod volume, its repository (`repo get`, `password`, `maintain`),
/// and its restore.
fn file_system_backups(cli: &Cli, home: &Path) {
    let (store, volume, source) = (dir(home, "store"), dir(home, "volume"), dir(home, "source"));
    std::fs::write(volume.join("db"), vec![3u8; 50_000]).unwrap();
    std::fs::write(
        source.join("app.json"),
        serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"}, "spec": {"hostPath": {"path": s(&volume)}}},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "n"}, "spec": {"volumeName": "pv"}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n", "annotations": {"backup.velero.io/backup-volumes": "data"}},
             "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}},
        ]})
        .to_string(),
    )
    .unwrap();
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    cli.ok(&["backup", "create", "b1", "--source", &s(&source), "--wait"]);
    let described = cli.ok(&["backup", "describe", "b1", "--details"]);
    assert!(described.contains("Pod Volume Backups - restic:") && described.contains("n/p: data") && described.contains("Completed"), "{described}");
    let listed = cli.ok(&["repo", "get"]);
    assert!(listed.contains("n-default-restic") && listed.contains("Ready"), "{listed}");
    assert_eq!(cli.json(&["repo", "get", "n-default-restic"])["spec"]["resticIdentifier"], s(&store.join("b/restic/n")));
    let password = cli.ok(&["repo", "password", "n-default-restic"]);
    assert_eq!(password.trim_end().len(), 64, "a random password: {password}");
    assert!(cli.ok(&["repo", "maintain", "n-default-restic"]).contains("maintained: pruned"));
    let err = cli.fails(&["repo", "maintain", "nope"]);
    assert!(err.contains("backup repository \"nope\" not found"), "{err}");
    let target = home.join("out");
    cli.ok(&["restore", "create", "r1", "--from-backup", "b1", "--target", &s(&target), "--wait"]);
    assert_eq!(std::fs::read(target.join("volumes/n/data/db")).unwrap(), vec![3u8; 50_000]);
}

/// `schedule`: create, get, pause, unpause, delete.
fn schedules(cli: &Cli, home: &Path) {
    let src = dir(home, "src");
    std::fs::write(src.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n").unwrap();
    let source = s(&src);
    let created = cli.ok(&["schedule", "create", "nightly", "--schedule", "0 1 * * *", "--source", &source, "--skip-immediately", "--ttl", "24h"]);
    assert!(created.contains("\"nightly\" created"), "{created}");
    let err = cli.fails(&["schedule", "create", "bad", "--schedule", "every day", "--source", &source]);
    assert!(err.contains("invalid schedule \"every day\""), "{err}");
    let err = cli.fails(&["schedule", "create", "waits", "--schedule", "@daily", "--source", &source, "--wait"]);
    assert!(err.contains("--wait applies to `backup create`"), "{err}");
    let table = cli.ok(&["schedule", "get"]);
    assert!(table.contains("0 1 * * *") && table.contains("24h0m0s"), "{table}");
    assert!(cli.ok(&["schedule", "pause", "nightly"]).contains("paused"));
    assert_eq!(cli.json(&["schedule", "get", "nightly"])["spec"]["paused"], true);
    cli.ok(&["schedule", "unpause", "nightly"]);
    assert_eq!(cli.json(&["schedule", "get", "nightly"])["spec"]["paused"].as_bool(), None, "unpaused: absent, as Velero writes it");
    assert!(cli.fails(&["schedule", "pause", "nope"]).contains("not found"));
    assert!(cli.ok(&["schedule", "delete", "nightly"]).contains("its backups are kept"));
    assert!(cli.fails(&["schedule", "get", "nightly"]).contains("not found"));
}
