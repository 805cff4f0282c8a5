//! The state in etcd (`--state etcd://…`), shared by several processes: the same objects
//! through each, writes serialized across them (listings included), secrets readable by every
//! process given the same master key and by none given another; and the embedded file and
//! etcd keeping objects alike.

use std::path::Path;

use serde::{Deserialize, Serialize};

use coffer::state::{Resource, State, StateError, StateLocation};

use crate::common::{Cli, dir, example_source, files, s};
use crate::servers::{Server, coffer_server, etcd, free_port, http, moto, raw_http};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Thing {
    ns: String,
    name: String,
    n: u32,
}

impl Resource for Thing {
    const KIND: &'static str = "Thing";
    fn namespace(&self) -> &str {
        &self.ns
    }
    fn name(&self) -> &str {
        &self.name
    }
}

fn thing(ns: &str, name: &str, n: u32) -> Thing {
    Thing { ns: ns.into(), name: name.into(), n }
}

fn etcd_state(server: &Server) -> State {
    State::open_at(Path::new("/nonexistent"), &StateLocation::parse(&server.url).unwrap()).unwrap()
}

#[test]
fn the_embedded_file_and_etcd_keep_objects_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let server = etcd(&tmp.path().join("etcd"));
    for (store, state) in [("embedded", State::open(&tmp.path().join("data")).unwrap()), ("etcd", etcd_state(&server))] {
        state
            .write(|t| {
                t.put(&thing("a", "x", 1))?;
                t.put(&thing("a", "y", 2))?;
                t.put(&thing("ab", "z", 3))?;
                Ok::<_, StateError>(())
            })
            .unwrap();
        let r = state.read().unwrap();
        assert_eq!(r.list::<Thing>("a").unwrap(), [thing("a", "x", 1), thing("a", "y", 2)], "{store}");
        assert_eq!(r.get::<Thing>("ab", "z").unwrap(), Some(thing("ab", "z", 3)), "{store}");
        assert_eq!(r.get::<Thing>("a", "z").unwrap(), None, "{store}");
        assert_eq!(r.list_all::<Thing>().unwrap(), [thing("a", "x", 1), thing("a", "y", 2), thing("ab", "z", 3)], "{store}");
        // A read transaction does not write.
        let mut r = r;
        let refused = r.put(&thing("a", "r", 0)).unwrap_err().to_string();
        assert!(refused.contains("write in a read transaction"), "{store}: {refused}");
        drop(r);

        // A transaction reads what it wrote, listings included, and deletes say what was there.
        state
            .write(|t| {
                t.put(&thing("a", "w", 4))?;
                assert_eq!(t.get::<Thing>("a", "w")?, Some(thing("a", "w", 4)), "{store}");
                assert!(t.delete::<Thing>("a", "x")?, "{store}");
                assert!(!t.delete::<Thing>("a", "x")?, "{store}");
                assert_eq!(t.list::<Thing>("a")?, [thing("a", "w", 4), thing("a", "y", 2)], "{store}");
                Ok::<_, StateError>(())
            })
            .unwrap();
        assert_eq!(state.read().unwrap().list::<Thing>("a").unwrap(), [thing("a", "w", 4), thing("a", "y", 2)], "{store}");

        // A transaction that fails leaves nothing.
        let failed: Result<(), StateError> = state.write(|t| {
            t.put(&thing("a", "v", 9))?;
            t.delete::<Thing>("a", "y")?;
            Err(StateError::Database { path: String::new(), message: "boom".into() })
        });
        assert!(failed.is_err());
        assert_eq!(state.read().unwrap().list::<Thing>("a").unwrap(), [thing("a", "w", 4), thing("a", "y", 2)], "{store}");
    }
}

#[test]
fn writers_in_two_processes_never_lose_an_update_nor_miss_a_listed_object() {
    let tmp = tempfile::tempdir().unwrap();
    let server = etcd(&tmp.path().join("etcd"));
    let states = [etcd_state(&server), etcd_state(&server)];
    std::thread::scope(|scope| {
        for i in 0..8 {
            let state = &states[i % 2];
            scope.spawn(move || {
                for _ in 0..25 {
                    // Read, add one, write back: a lost update would show in the total.
                    state
                        .write(|t| {
                            let n = t.get::<Thing>("c", "counter")?.map_or(0, |c| c.n);
                            t.put(&thing("c", "counter", n + 1))
                        })
                        .unwrap();
                }
                for _ in 0..5 {
                    // Named after how many there are: two writers that listed the same
                    // objects would both take the same name.
                    state
                        .write(|t| {
                            let n = t.list::<Thing>("seq")?.len() as u32;
                            t.put(&thing("seq", &format!("{n:03}"), n))
                        })
                        .unwrap();
                }
            });
        }
    });
    let r = states[1].read().unwrap();
    assert_eq!(r.get::<Thing>("c", "counter").unwrap().map(|c| c.n), Some(200));
    let seq = r.list::<Thing>("seq").unwrap();
    assert_eq!(seq.len(), 40);
    assert!(seq.iter().enumerate().all(|(i, t)| t.n == i as u32 && t.name == format!("{i:03}")), "{seq:?}");
}

/// A CLI on its own data directory under `tmp`, on the state at `state` with master key `key`.
fn cli_on(tmp: &Path, name: &str, state: &str, key: &Path) -> Cli {
    let mut cli = Cli::new(&tmp.join(name));
    cli.env.push(("COFFER_STATE".into(), state.into()));
    cli.env.push(("COFFER_MASTER_KEY_FILE".into(), s(key)));
    cli
}

fn key_file(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, rand::random::<[u8; 32]>()).unwrap();
    path
}

#[test]
fn processes_on_one_etcd_with_one_master_key_share_everything_and_another_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (server, s3) = (etcd(&root.join("etcd")), moto());
    assert!(raw_http(s3.port, "PUT", "/velero").contains("200"), "bucket created");
    let keys = dir(root, "keys");
    let key = key_file(&keys, "master.key");
    let (a, b) = (cli_on(root, "a", &server.url, &key), cli_on(root, "b", &server.url, &key));
    let credentials = dir(root, "files").join("aws");
    std::fs::write(&credentials, "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n").unwrap();
    a.ok(&["secret", "create", "aws-creds", "--from-file", &format!("cloud={}", s(&credentials))]);
    let config = format!("region=us-east-1,s3Url={}", s3.url);
    a.ok(&["bsl", "create", "s3", "--provider", "aws", "--bucket", "velero", "--config", &config, "--credential", "aws-creds=cloud", "--default"]);
    let source = s(&example_source(root));
    a.ok(&["backup", "create", "b1", "--source", &source, "--wait"]);
    assert!(!root.join("a/coffer.redb").exists(), "nothing in a file of the data directory");

    // Another process sees it all, and opens the secret with the same key.
    assert_eq!(b.json(&["backup", "get", "b1"])["status"]["phase"], "Completed");
    assert!(b.ok(&["bsl", "get"]).contains("s3"));
    b.ok(&["backup", "create", "b2", "--source", &source, "--wait"]);
    assert_eq!(a.json(&["backup", "get", "b2"])["status"]["phase"], "Completed", "made through b, seen through a");
    let target = root.join("restored");
    b.ok(&["restore", "create", "r1", "--from-backup", "b1", "--target", &s(&target), "--wait"]);
    assert!(files(&target).keys().any(|f| f.ends_with(".json")), "{:?}", files(&target).keys());

    // Another key is refused at the start, by name, and reads nothing.
    let other = key_file(&keys, "other.key");
    let err = cli_on(root, "c", &server.url, &other).fails(&["bsl", "get"]);
    assert!(err.contains(&format!("master key {} is not the key this state's secrets are sealed with", s(&other))), "{err}");
    // The embedded state of a data directory is another state.
    assert!(Cli::new(&root.join("d")).fails(&["backup", "get", "b1"]).contains("not found"));
    // A --state that is no etcd URL, or an etcd that does not answer, is named.
    let err = cli_on(root, "e", "redis://127.0.0.1:6379", &key).fails(&["bsl", "get"]);
    assert!(err.contains("--state") && err.contains("redis://127.0.0.1:6379"), "{err}");
    let nobody = format!("etcd://127.0.0.1:{}", free_port());
    let err = cli_on(root, "e", &nobody, &key).fails(&["bsl", "get"]);
    assert!(err.contains(&nobody) && err.contains("does not answer"), "{err}");
}

#[test]
fn what_a_tenant_makes_through_one_server_is_seen_and_used_through_another() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (server, s3) = (etcd(&root.join("etcd")), moto());
    assert!(raw_http(s3.port, "PUT", "/velero").contains("200"), "bucket created");
    let key = key_file(&dir(root, "keys"), "master.key");
    let tenants = dir(root, "tenants");
    let args = ["--state", &server.url, "--master-key-file", &s(&key), "--tenant-root", &s(&tenants), "--allow-endpoint", "127.0.0.1"];
    // The token is made once, in the shared state, and works on both.
    let operator = cli_on(root, "operator", &server.url, &key);
    let token = operator.ok(&["tenant", "token", "create", "t1", "--tenant", "acme"]).trim().to_owned();
    let (one, two) = (coffer_server(&root.join("one"), &args), coffer_server(&root.join("two"), &args));
    let (a, b) = (Cli::remote(&one.server.url, &token), Cli::remote(&two.server.url, &token));
    let credentials = dir(root, "files").join("aws");
    std::fs::write(&credentials, "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n").unwrap();
    a.ok(&["secret", "create", "aws-creds", "--from-file", &format!("cloud={}", s(&credentials))]);
    let config = format!("region=us-east-1,s3Url={}", s3.url);
    a.ok(&["bsl", "create", "s3", "--provider", "aws", "--bucket", "velero", "--config", &config, "--credential", "aws-creds=cloud", "--default"]);
    example_source(&tenants.join("acme"));
    a.ok(&["backup", "create", "b1", "--source", "source", "--wait"]);
    let (status, body) = http("GET", &format!("{}/v1/backups/b1", two.server.url), Some(&token), None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"Completed\""), "{body}");
    b.ok(&["restore", "create", "r1", "--from-backup", "b1", "--target", "restored", "--wait"]);
    assert!(!files(&tenants.join("acme/restored")).is_empty());
    // The operator's view, from a third process, has both.
    assert!(operator.ok(&["-n", "acme", "restore", "get"]).contains("r1"));
}
