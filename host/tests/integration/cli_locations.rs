//! The location, secret and plugin commands, run as a user runs them.

use std::time::Duration;

use crate::common::{Cli, dir, s, test_component};

struct Env {
    _tmp: tempfile::TempDir,
    cli: Cli,
    store: String,
    volumes: String,
    snapshots: String,
    root: std::path::PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    Env {
        cli: Cli::new(&root.join("data")),
        store: s(&dir(&root, "store")),
        volumes: s(&dir(&root, "volumes")),
        snapshots: s(&dir(&root, "snapshots")),
        root,
        _tmp: tmp,
    }
}

impl Env {
    fn create_bsl(&self, name: &str, extra: &[&str]) -> String {
        let config = format!("root={}", self.store);
        let mut args = vec!["backup-location", "create", name, "--provider", "filesystem", "--bucket", "backups", "--config", &config];
        args.extend(extra);
        self.cli.ok(&args)
    }
}

#[test]
fn defaults_show_available_and_only_one_default() {
    let e = env();
    e.create_bsl("default", &["--default"]);
    let config = format!("volumeRoot={},snapshotDir={}", e.volumes, e.snapshots);
    e.cli.ok(&["snapshot-location", "create", "local", "--provider", "local", "--config", &config]);
    let bsl = e.cli.json(&["backup-location", "get", "default"]);
    assert_eq!(bsl["kind"], "BackupStorageLocation");
    assert_eq!(bsl["status"]["phase"], "Available");
    assert_eq!(bsl["spec"]["default"], true);
    assert_eq!(e.cli.json(&["snapshot-location", "get", "local"])["status"]["phase"], "Available");

    let err = e.cli.fails(&["backup-location", "create", "second", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", e.store), "--default"]);
    assert!(err.contains("\"default\" is already the default") && err.contains("`coffer backup-location set second --default`"), "{err}");
    e.create_bsl("second", &[]);
    e.cli.ok(&["backup-location", "set", "second", "--default"]);
    let defaults = e.cli.json(&["backup-location", "get", "--default"]);
    let names: Vec<&str> = defaults["items"].as_array().unwrap().iter().map(|b| b["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["second"], "set --default moves the default");
    let table = e.cli.ok(&["backup-location", "get"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("Available"), "{table}");
}

#[test]
fn bad_definitions_are_refused_naming_the_culprit() {
    let e = env();
    let root = format!("root={}", e.store);
    let bad_key = format!("{root},regoin=us-east-1");
    let err = e.cli.fails(&["bsl", "create", "a", "--provider", "filesystem", "--bucket", "b", "--config", &bad_key]);
    assert!(err.contains("\"regoin\"") && err.contains("backup-location \"a\""), "{err}");
    let err = e.cli.fails(&["bsl", "create", "a", "--provider", "nosuch", "--bucket", "b"]);
    assert!(err.contains("unknown provider \"nosuch\""), "{err}");
    let err = e.cli.fails(&["bsl", "create", "a", "--provider", "filesystem", "--bucket", "b", "--config", &root, "--credential", "missing=cloud"]);
    assert!(err.contains("secret \"missing\" not found"), "{err}");
    let err = e.cli.fails(&["bsl", "create", "a", "--provider", "filesystem", "--bucket", "b/c", "--config", &root]);
    assert!(err.contains("--bucket: bucket name \"b/c\" must not contain a '/'") && err.contains("--prefix"), "{err}");
    let err = e.cli.fails(&["bsl", "create", "a", "--provider", "filesystem", "--bucket", "b"]);
    assert!(err.contains("config key \"root\" is required"), "{err}");
    let err = e.cli.fails(&["bsl", "create", "Bad_Name", "--provider", "filesystem", "--bucket", "b", "--config", &root]);
    assert!(err.contains("\"Bad_Name\" is invalid"), "{err}");
    let err = e.cli.fails(&["vsl", "create", "v", "--provider", "local", "--config", "volumeRoot=/tmp"]);
    assert!(err.contains("\"snapshotDir\""), "{err}");
    let err = e.cli.fails(&["vsl", "create", "v", "--provider", "filesystem"]);
    assert!(err.contains("is an object store, not a volume snapshotter"), "{err}");
    assert!(e.cli.json(&["bsl", "get"])["items"].as_array().unwrap().is_empty(), "nothing was created");
    e.create_bsl("a", &[]);
    let err = e.cli.fails(&["bsl", "create", "a", "--provider", "filesystem", "--bucket", "b", "--config", &root]);
    assert!(err.contains("\"a\" already exists"), "{err}");
}

#[test]
fn foreign_top_level_directories_make_a_location_unavailable() {
    let e = env();
    for d in ["backups", "restores", "junk1", "junk2", "junk3", "junk4"] {
        std::fs::create_dir_all(e.root.join("store/backups").join(d)).unwrap();
        std::fs::write(e.root.join("store/backups").join(d).join("f"), b"x").unwrap();
    }
    e.create_bsl("full", &[]);
    let bsl = e.cli.json(&["bsl", "get", "full"]);
    assert_eq!(bsl["status"]["phase"], "Unavailable");
    assert_eq!(
        bsl["status"]["message"],
        "BackupStorageLocation \"full\" is unavailable: Backup store contains 4 invalid top-level directories: [junk1 junk2 junk3 ...]"
    );
    let config = format!("root={}", e.store);
    e.cli.ok(&["bsl", "create", "prefixed", "--provider", "filesystem", "--bucket", "backups", "--prefix", "junk1", "--config", &config]);
    // Under the prefix there is only a loose file, which Velero's rule ignores.
    assert_eq!(e.cli.json(&["bsl", "get", "prefixed"])["status"]["phase"], "Available");
    std::fs::create_dir_all(e.root.join("store/backups/junk1/other")).unwrap();
    std::fs::write(e.root.join("store/backups/junk1/other/x"), b"x").unwrap();
    e.cli.ok(&["bsl", "create", "prefixed2", "--provider", "filesystem", "--bucket", "backups", "--prefix", "/junk1/", "--config", &config]);
    let bsl = e.cli.json(&["bsl", "get", "prefixed2"]);
    assert_eq!(bsl["spec"]["objectStorage"]["prefix"], "junk1", "slashes are trimmed");
    assert_eq!(
        bsl["status"]["message"],
        "BackupStorageLocation \"prefixed2\" is unavailable: Backup store contains invalid top-level directories: [other]"
    );
}

#[test]
fn validation_runs_when_due_and_never_with_zero_frequency() {
    let e = env();
    let store2 = dir(&e.root, "store2");
    let config2 = format!("root={}", s(&store2));
    e.cli.ok(&["bsl", "create", "often", "--provider", "filesystem", "--bucket", "b", "--config", &config2, "--validation-frequency", "1s"]);
    e.cli.ok(&["bsl", "create", "never", "--provider", "filesystem", "--bucket", "b", "--config", &config2, "--validation-frequency", "0s"]);
    std::fs::remove_dir_all(&store2).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let often = e.cli.json(&["bsl", "get", "often"]);
    assert_eq!(often["status"]["phase"], "Unavailable");
    assert!(often["status"]["message"].as_str().unwrap().contains("config key \"root\""), "{often}");
    assert_eq!(e.cli.json(&["bsl", "get", "never"])["status"]["phase"], "Available");
    assert_eq!(e.cli.json(&["bsl", "get", "never"])["spec"]["validationFrequency"], "0s");
}

#[test]
fn secret_values_are_never_printed_nor_stored_in_clear() {
    let e = env();
    let value = e.root.join("value");
    std::fs::write(&value, b"aws_secret_access_key=TOPSECRET-1234").unwrap();
    let spec = format!("cloud={}", s(&value));
    e.cli.ok(&["secret", "create", "creds", "--from-file", &spec]);
    let mut printed = String::new();
    for args in [&["secret", "get"][..], &["secret", "get", "creds", "-o", "json"], &["secret", "get", "-o", "yaml"]] {
        printed.push_str(&e.cli.ok(args));
    }
    assert!(printed.contains("creds") && printed.contains("cloud"), "{printed}");
    e.create_bsl("withcred", &["--credential", "creds=cloud"]);
    printed.push_str(&e.cli.ok(&["bsl", "get", "-o", "yaml"]));
    assert!(!printed.contains("TOPSECRET"), "{printed}");
    let state = std::fs::read(e.root.join("data/coffer.redb")).unwrap();
    assert!(!state.windows(9).any(|w| w == b"TOPSECRET"), "the state holds the secret in clear");
    let err = e.cli.fails(&["secret", "create", "creds", "--from-file", &spec]);
    assert!(err.contains("\"creds\" already exists"), "{err}");
    let err = e.cli.fails(&["bsl", "set", "withcred", "--credential", "creds=other"]);
    assert!(err.contains("has no key \"other\""), "{err}");
    e.cli.ok(&["secret", "delete", "creds"]);
    let err = e.cli.fails(&["secret", "get", "creds"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn plugins_are_checked_added_and_listed() {
    let e = env();
    let wasm = e.root.join("probe.wasm");
    std::fs::write(&wasm, test_component("probe")).unwrap();
    let out = e.cli.ok(&["plugin", "add", &s(&wasm)]);
    assert!(out.contains("coffer.test/probe"), "{out}");
    let listed = e.cli.ok(&["plugin", "get"]);
    for name in ["velero.io/filesystem", "velero.io/local", "coffer.test/probe"] {
        assert!(listed.contains(name), "{listed}");
    }
    let err = e.cli.fails(&["plugin", "add", &s(&wasm)]);
    assert!(err.contains("already installed"), "{err}");
    let junk = e.root.join("junk.wasm");
    std::fs::write(&junk, b"\0asm not really").unwrap();
    let err = e.cli.fails(&["plugin", "add", &s(&junk)]);
    assert!(err.contains("junk.wasm") && err.contains("not a valid WebAssembly component"), "{err}");
    e.cli.ok(&["bsl", "create", "probe", "--provider", "coffer.test/probe", "--bucket", "b"]);
    assert_eq!(e.cli.json(&["bsl", "get", "probe"])["status"]["phase"], "Available");
}

#[test]
fn delete_needs_names_or_all_and_confirmation() {
    let e = env();
    e.create_bsl("a", &[]);
    e.create_bsl("b", &[]);
    let err = e.cli.fails(&["bsl", "delete", "a"]);
    assert!(err.contains("--confirm"), "{err}");
    let err = e.cli.fails(&["bsl", "delete", "--confirm"]);
    assert!(err.contains("exactly one of"), "{err}");
    let err = e.cli.fails(&["bsl", "delete", "nope", "--confirm"]);
    assert!(err.contains("\"nope\" not found"), "{err}");
    e.cli.ok(&["bsl", "delete", "a", "--confirm"]);
    e.cli.ok(&["bsl", "delete", "--all", "--confirm"]);
    assert!(e.cli.json(&["bsl", "get"])["items"].as_array().unwrap().is_empty());
}
