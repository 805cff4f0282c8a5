//! `coffer server` as tenants and the CLI use it: every route acts as the token's tenant,
//! one tenant never sees or reaches another's objects, and the CLI works the same through it.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::common::{Cli, dir, s};
use crate::servers::{coffer_server, eventually, http, venv_bin};

/// Creates a token for `tenant` with the local CLI on the server's data directory.
pub fn token(data: &std::path::Path, tenant: &str, name: &str) -> String {
    Cli::new(data).ok(&["tenant", "token", "create", name, "--tenant", tenant]).trim().to_owned()
}

/// A server with one tenant, `acme`, and a CLI acting as it.
pub struct Tenancy {
    /// The server's data directory.
    pub data: std::path::PathBuf,
    /// acme's token.
    pub token: String,
    /// The server.
    pub server: crate::servers::CofferServer,
    /// The CLI, through the server.
    pub cli: Cli,
    /// acme's directory on the server.
    pub home: std::path::PathBuf,
}

impl Tenancy {
    /// Starts a server under `tmp` with `args`.
    pub fn start(tmp: &std::path::Path, args: &[&str]) -> Tenancy {
        let data = tmp.join("data");
        let token = token(&data, "acme", "a");
        let server = coffer_server(&data, args);
        let cli = Cli::remote(&server.server.url, &token);
        let home = data.join("tenants/acme");
        Tenancy { data, token, server, cli, home }
    }
}

/// Under `home`: a directory volume with a file, and a source holding its PersistentVolume.
/// Returns the volume root, a snapshot directory and the source.
pub fn pv_source(home: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let (volumes, snapshots, src) = (dir(home, "volumes"), dir(home, "snapshots"), dir(home, "src"));
    let vol = dir(&volumes, "vol-a");
    std::fs::write(vol.join("f"), b"bytes").unwrap();
    std::fs::write(
        src.join("pv.json"),
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-a"}, "spec": {"hostPath": {"path": s(&vol)}}}).to_string(),
    )
    .unwrap();
    (volumes, snapshots, src)
}

fn manifests(dir: &std::path::Path) {
    std::fs::write(dir.join("app.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\ndata: {k: v}\n").unwrap();
}

fn bsl(name: &str, root: &std::path::Path) -> Value {
    json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation", "metadata": {"name": name},
           "spec": {"provider": "filesystem", "objectStorage": {"bucket": "b"}, "config": {"root": s(root)}, "default": true}})
}

fn backup(name: &str, source: &str) -> Value {
    json!({"apiVersion": "velero.io/v1", "kind": "Backup",
           "metadata": {"name": name, "annotations": {"coffer.io/source-directory": source}}, "spec": {}})
}

fn wait_phase(url: &str, token: &str, path: &str) -> Value {
    eventually(Duration::from_secs(60), path, || {
        let (status, body) = http("GET", &format!("{url}{path}"), Some(token), None);
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        (!matches!(v["status"]["phase"].as_str(), None | Some("New" | "InProgress"))).then_some(v)
    })
}

#[test]
fn tenants_see_and_reach_only_their_own_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (acme, globex) = (token(&data, "acme", "api"), token(&data, "globex", "api"));
    let server = coffer_server(&data, &[]);
    let url = &server.server.url;
    let acme_dir = data.join("tenants/acme");
    let (store, src) = (dir(&acme_dir, "store"), dir(&acme_dir, "src"));
    manifests(&src);

    // Who may ask.
    assert_eq!(http("GET", &format!("{url}/healthz"), None, None).0, 200);
    let (status, body) = http("GET", &format!("{url}/v1/backups"), None, None);
    assert!(status == 401 && body.contains("Bearer"), "{status} {body}");
    let (status, body) = http("GET", &format!("{url}/v1/backups"), Some("coffer_forged"), None);
    assert!(status == 401 && body.contains("not valid"), "{status} {body}");
    let (_, body) = http("GET", &format!("{url}/v1/whoami"), Some(&acme), None);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["tenant"], "acme");

    // acme: a secret, a location, a backup.
    let secret = json!({"metadata": {"name": "creds"}, "data": {"cloud": STANDARD.encode("hunter2-value")}});
    assert_eq!(http("POST", &format!("{url}/v1/secrets"), Some(&acme), Some(&secret)).0, 201);
    let (status, body) = http("GET", &format!("{url}/v1/secrets/creds"), Some(&acme), None);
    assert!(status == 200 && body.contains("\"cloud\"") && !body.contains(&STANDARD.encode("hunter2-value")), "{body}");
    // An API client is told about the object's fields, not the CLI's flags.
    let mut slashed = bsl("default", &store);
    slashed["spec"]["objectStorage"]["bucket"] = json!("b/c");
    let (status, body) = http("POST", &format!("{url}/v1/backup-storage-locations"), Some(&acme), Some(&slashed));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("spec.objectStorage.bucket") && body.contains("spec.objectStorage.prefix") && !body.contains("--"), "{body}");
    let (status, body) = http("POST", &format!("{url}/v1/backup-storage-locations"), Some(&acme), Some(&bsl("default", &store)));
    assert_eq!(status, 201, "{body}");
    let (status, body) = http("POST", &format!("{url}/v1/backups"), Some(&acme), Some(&backup("b1", "src")));
    assert_eq!(status, 202, "{body}");
    let done = wait_phase(url, &acme, "/v1/backups/b1");
    assert_eq!(done["status"]["phase"], "Completed", "{done}");
    assert!(store.join("b/backups/b1/b1.tar.gz").exists());

    // globex sees none of it and cannot reach it by name, path, directory or credential.
    for path in ["/v1/backups", "/v1/secrets", "/v1/backup-storage-locations", "/v1/restores", "/v1/schedules"] {
        let (status, body) = http("GET", &format!("{url}{path}"), Some(&globex), None);
        assert_eq!((status, body.as_str()), (200, "[]"), "{path}");
    }
    for path in ["/v1/backups/b1", "/v1/backups/b1/logs", "/v1/backups/b1/download", "/v1/secrets/creds", "/v1/backup-storage-locations/default"] {
        let (status, body) = http("GET", &format!("{url}{path}"), Some(&globex), None);
        assert!(status == 404 && body.contains("not found"), "{path}: {status} {body}");
    }
    assert_eq!(http("DELETE", &format!("{url}/v1/backups/b1"), Some(&globex), None).0, 404);
    let (status, body) = http("POST", &format!("{url}/v1/backup-storage-locations"), Some(&globex), Some(&bsl("steal", &store)));
    assert!(status == 400 && body.contains("outside") && body.contains("tenants/globex"), "{status} {body}");
    let mut with_creds = bsl("creds", &dir(&data.join("tenants/globex"), "store"));
    with_creds["spec"]["credential"] = json!({"name": "creds", "key": "cloud"});
    let (status, body) = http("POST", &format!("{url}/v1/backup-storage-locations"), Some(&globex), Some(&with_creds));
    assert!(status == 400 && body.contains("secret \\\"creds\\\" not found"), "{status} {body}");
    for source in ["../acme/src", "/etc", &s(&src)] {
        let (status, body) = http("POST", &format!("{url}/v1/backups"), Some(&globex), Some(&backup("x", source)));
        assert!(status == 400 && body.contains("inside the tenant's directory"), "{source}: {status} {body}");
    }
    let (status, _) = http("GET", &format!("{url}/v1/backups/b1"), Some(&acme), None);
    assert_eq!(status, 200, "acme's backup is untouched");

    // Bad requests name what is wrong.
    let (status, body) = http("POST", &format!("{url}/v1/backups"), Some(&acme), Some(&json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": "y"}, "spec": {}})));
    assert!(status == 400 && body.contains("coffer.io/source-directory"), "{status} {body}");
    let (status, body) = http("POST", &format!("{url}/v1/backups"), Some(&acme), Some(&backup("b1", "src")));
    assert!(status == 409 && body.contains("already exists"), "{status} {body}");

    // The operator manages tenants through the running server's socket.
    let operator = Cli::new(&data);
    let err = operator.fails(&["tenant", "quota", "acme", "--memory", "4Gi"]);
    assert!(err.contains("the host's limit per instance"), "{err}");
    assert!(operator.ok(&["tenant", "quota", "acme", "--concurrent-calls", "2", "--call-deadline", "5m"]).contains("concurrent provider calls 2"));
    assert!(operator.ok(&["tenant", "token", "get", "--tenant", "acme"]).contains("api"));
    let err = operator.fails(&["backup", "get"]);
    assert!(err.contains("a coffer server is running") && err.contains("--server"), "{err}");

    // A revoked token stops working at once, on the running server.
    Cli::new(&data).ok(&["tenant", "token", "revoke", "api", "--tenant", "acme"]);
    assert_eq!(http("GET", &format!("{url}/v1/backups"), Some(&acme), None).0, 401);
}

#[test]
fn the_cli_works_through_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let Tenancy { token, server, cli, home, .. } = Tenancy::start(tmp.path(), &[]);
    let store = dir(&home, "store");
    let (volumes, snapshots, _) = pv_source(&home);
    let vol = volumes.join("vol-a");

    let out = cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    assert!(out.contains("Available"), "{out}");
    cli.ok(&["vsl", "create", "local", "--provider", "local", "--config", &format!("volumeRoot={},snapshotDir={}", s(&volumes), s(&snapshots))]);
    assert_eq!(cli.json(&["bsl", "get", "default"])["spec"]["default"], true);
    cli.ok(&["secret", "create", "creds", "--from-file", &format!("cloud={}", s(&vol.join("f")))]);
    assert!(cli.ok(&["secret", "set", "creds", "--from-file", &format!("other={}", s(&vol.join("f")))]).contains("cloud, other"));

    let run = cli.run(&["backup", "create", "b1", "--source", "src", "--wait"]);
    assert!(run.ok && run.stdout.contains("Completed"), "{run:?}");
    let described = cli.ok(&["backup", "describe", "b1", "--details"]);
    assert!(described.contains("v1/PersistentVolume:") && described.contains("Snapshot ID:        snap-"), "{described}");
    assert!(cli.ok(&["backup", "logs", "b1"]).contains("Backed up a total of 1 items"));
    let tarball = tmp.path().join("b1.tar.gz");
    cli.ok(&["backup", "download", "b1", "-o", &s(&tarball)]);
    assert_eq!(std::fs::read(&tarball).unwrap(), std::fs::read(store.join("b/backups/b1/b1.tar.gz")).unwrap());
    let run = cli.run(&["backup", "create", "quick", "--source", "src"]);
    assert!(run.ok && run.stdout.contains("running on the server"), "{run:?}");

    let run = cli.run(&["restore", "create", "r1", "--from-backup", "b1", "--target", "out", "--wait"]);
    assert!(run.ok && run.stdout.contains("Restore completed with status: Completed"), "{run:?}");
    assert!(home.join("out/resources/persistentvolumes/cluster/pv-a.json").exists());
    assert!(cli.ok(&["restore", "logs", "r1"]).contains("Restored persistent volume pv-a"));

    let err = cli.fails(&["backup", "create", "abs", "--source", &s(tmp.path())]);
    assert!(err.contains("inside the tenant's directory"), "{err}");
    let err = cli.fails(&["plugin", "get"]);
    assert!(err.contains("runs on the server's host"), "{err}");
    let file = tmp.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let from_file = Cli {
        data_dir: cli.data_dir.clone(),
        env: vec![("COFFER_SERVER".into(), server.server.url.clone()), ("COFFER_TOKEN_FILE".into(), s(&file))],
    };
    assert!(from_file.ok(&["backup", "get"]).contains("b1"), "the token read from --token-file's variable");
    let err = Cli::remote(&server.server.url, "coffer_nope").fails(&["backup", "get"]);
    assert!(err.contains("the server refused the token"), "{err}");

    cli.ok(&["schedule", "create", "nightly", "--schedule", "0 1 * * *", "--source", "src", "--skip-immediately"]);
    let err = cli.fails(&["schedule", "create", "bad", "--schedule", "every day", "--source", "src"]);
    assert!(err.contains("invalid schedule \"every day\""), "{err}");
    assert!(cli.ok(&["schedule", "get"]).contains("0 1 * * *"));
    eventually(Duration::from_secs(30), "the quick backup", || (cli.json(&["backup", "get", "quick"])["status"]["phase"] == "Completed").then_some(()));
    assert_eq!(std::fs::read_dir(&snapshots).unwrap().count(), 2);
    cli.ok(&["backup", "delete", "b1", "--confirm"]);
    assert!(!store.join("b/backups/b1").exists());
    assert_eq!(std::fs::read_dir(&snapshots).unwrap().count(), 1, "its snapshot deleted, the other backup's kept");
}

#[test]
fn the_openapi_document_is_valid_and_describes_the_routes_served() {
    let tmp = tempfile::tempdir().unwrap();
    let server = coffer_server(&tmp.path().join("data"), &[]);
    let url = &server.server.url;
    let (status, doc) = http("GET", &format!("{url}/openapi.json"), None, None);
    assert_eq!(status, 200);
    let file = tmp.path().join("openapi.json");
    std::fs::write(&file, &doc).unwrap();
    let script = "import json,sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1])))";
    let out = std::process::Command::new(venv_bin().join("python3")).args(["-c", script]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let doc: Value = serde_json::from_str(&doc).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let (status, body) = http(&method.to_uppercase(), &format!("{url}{}", path.replace("{name}", "x")), None, None);
            let public = item[method].get("security").is_some_and(|s| s.as_array().is_some_and(Vec::is_empty));
            // Served and guarded: an API route without a token is refused, not unknown.
            assert_eq!(status, if public { 200 } else { 401 }, "{method} {path}: {body}");
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} operations");
    let (status, body) = http("GET", &format!("{url}/v1/nothing"), None, None);
    assert!(status == 404 && body.contains("/openapi.json"), "{body}");
}

#[test]
fn metrics_are_for_the_operator_and_logs_are_structured() {
    let tmp = tempfile::tempdir().unwrap();
    let Tenancy { data, token: acme, server, home, .. } = Tenancy::start(tmp.path(), &["--log-format", "json"]);
    let url = &server.server.url;
    let (store, src) = (dir(&home, "store"), dir(&home, "src"));
    manifests(&src);
    assert_eq!(http("POST", &format!("{url}/v1/backup-storage-locations"), Some(&acme), Some(&bsl("default", &store))).0, 201);
    assert_eq!(http("POST", &format!("{url}/v1/backups"), Some(&acme), Some(&backup("b1", "src"))).0, 202);
    wait_phase(url, &acme, "/v1/backups/b1");

    let (status, metrics) = http("GET", &server.metrics_url, None, None);
    assert_eq!(status, 200);
    assert!(metrics.contains("coffer_provider_call_duration_seconds_bucket{operation=\"put_object\",outcome=\"ok\",le=\"+Inf\"}"), "{metrics}");
    assert!(metrics.contains("coffer_backups{namespace=\"acme\",phase=\"Completed\"} 1"), "{metrics}");
    assert!(metrics.contains("coffer_backup_storage_location_available{namespace=\"acme\",location=\"default\"} 1"), "{metrics}");
    assert_eq!(http("GET", &format!("{url}/metrics"), Some(&acme), None).0, 404, "tenants do not get the metrics");

    let log = std::fs::read_to_string(data.join("server.log")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "backup finished" && l["fields"]["namespace"] == "acme"),
        "{log}"
    );
}

/// Two clients change secret `creds` of the token's tenant at once, each through its own
/// server of `urls`, both against the version they read: exactly one of the two changes
/// applies, and the other is refused with 409 naming `metadata.resourceVersion`; a few rounds.
pub fn racing_updates_apply_once(urls: [&str; 2], token: &str) {
    let secret = |value: &str, version: Option<&str>| {
        let mut body = json!({"metadata": {"name": "creds"}, "data": {"cloud": STANDARD.encode(value)}});
        if let Some(version) = version {
            body["metadata"]["resourceVersion"] = json!(version);
        }
        body
    };
    let (status, body) = http("POST", &format!("{}/v1/secrets", urls[0]), Some(token), Some(&secret("first", None)));
    assert_eq!(status, 201, "{body}");
    let version_at = |url: &str| -> String {
        let (status, body) = http("GET", &format!("{url}/v1/secrets/creds"), Some(token), None);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["metadata"]["resourceVersion"].as_str().expect("a resourceVersion").to_owned()
    };
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..8 {
        let read = version_at(urls[round % 2]);
        assert_eq!(read, version_at(urls[(round + 1) % 2]), "both servers show one version");
        assert!(seen.insert(read.clone()), "version {read} given twice");
        let barrier = std::sync::Barrier::new(2);
        let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
            let racers: Vec<_> = urls
                .iter()
                .enumerate()
                .map(|(i, url)| {
                    let (barrier, body) = (&barrier, secret(&format!("round {round} by {i}"), Some(&read)));
                    scope.spawn(move || {
                        barrier.wait();
                        http("PUT", &format!("{url}/v1/secrets/creds"), Some(token), Some(&body))
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let won: Vec<&(u16, String)> = answers.iter().filter(|(status, _)| *status == 200).collect();
        let lost: Vec<&(u16, String)> = answers.iter().filter(|(status, _)| *status == 409).collect();
        assert!(won.len() == 1 && lost.len() == 1, "round {round}: {answers:?}");
        let refusal: Value = serde_json::from_str(&lost[0].1).unwrap();
        assert_eq!(refusal["field"], "metadata.resourceVersion", "{refusal}");
        assert!(refusal["error"].as_str().unwrap().contains(&format!("creds was changed since resourceVersion {read:?}")), "{refusal}");
        let winner: Value = serde_json::from_str(&won[0].1).unwrap();
        let now = version_at(urls[0]);
        assert_eq!(winner["metadata"]["resourceVersion"], json!(now), "the answer gives the version stored");
        assert_ne!(now, read);
    }
    // Without a version a change applies to whatever is stored; deleted and made again, the
    // secret never gets a version it had before.
    let (status, body) = http("PUT", &format!("{}/v1/secrets/creds", urls[1]), Some(token), Some(&secret("blind", None)));
    assert_eq!(status, 200, "{body}");
    assert_eq!(http("DELETE", &format!("{}/v1/secrets/creds", urls[0]), Some(token), None).0, 204);
    let (status, body) = http("POST", &format!("{}/v1/secrets", urls[1]), Some(token), Some(&secret("again", None)));
    assert_eq!(status, 201, "{body}");
    let again = version_at(urls[0]);
    assert!(seen.iter().all(|old| *old != again), "{again} was given before: {seen:?}");
    let (status, body) = http("PUT", &format!("{}/v1/secrets/creds", urls[0]), Some(token), Some(&secret("stale", seen.first().map(String::as_str))));
    assert_eq!(status, 409, "{body}");
}

#[test]
fn a_change_made_against_an_old_version_is_refused_with_409() {
    let tmp = tempfile::tempdir().unwrap();
    let Tenancy { token, server, cli, home, .. } = Tenancy::start(tmp.path(), &[]);
    let url = server.server.url.as_str();
    racing_updates_apply_once([url, url], &token);

    // Locations and schedules take a version too; the CLI changes whatever is stored.
    let (store, src) = (dir(&home, "store"), dir(&home, "src"));
    manifests(&src);
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store))]);
    let read = cli.json(&["bsl", "get", "default"])["metadata"]["resourceVersion"].as_str().unwrap().to_owned();
    cli.ok(&["bsl", "set", "default", "--default"]);
    let patch = json!({"metadata": {"resourceVersion": read}, "default": false});
    let (status, body) = http("PATCH", &format!("{url}/v1/backup-storage-locations/default"), Some(&token), Some(&patch));
    assert!(status == 409 && body.contains("BackupStorageLocation acme/default was changed"), "{status} {body}");
    assert_eq!(cli.json(&["bsl", "get", "default"])["spec"]["default"], true, "the stale change did nothing");
    cli.ok(&["schedule", "create", "nightly", "--schedule", "0 1 * * *", "--source", "src", "--skip-immediately"]);
    let read = cli.json(&["schedule", "get", "nightly"])["metadata"]["resourceVersion"].as_str().unwrap().to_owned();
    let patch = json!({"metadata": {"resourceVersion": read}, "paused": true});
    let (status, body) = http("PATCH", &format!("{url}/v1/schedules/nightly"), Some(&token), Some(&patch));
    assert_eq!(status, 200, "{body}");
    let (status, body) = http("PATCH", &format!("{url}/v1/schedules/nightly"), Some(&token), Some(&patch));
    assert_eq!(status, 409, "{body}");
}
