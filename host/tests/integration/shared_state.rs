//! The state in etcd (`--state etcd://…`), shared by several processes: the same objects
//! through each, writes serialized across them (listings included), secrets readable by every
//! process given the same master key and by none given another; and the embedded file and
//! etcd keeping objects alike.

use std::path::Path;

use serde::{Deserialize, Serialize};

use coffer::state::{Resource, State, StateError, StateLocation};

use crate::common::{Cli, dir, example_source, files, s};
use crate::copies::{AWS_CREDENTIALS, moto_bucket};
use crate::servers::{Server, coffer_server, etcd, etcd_on, etcd_tls, free_port, http};

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
                t.put(&mut thing("a", "x", 1))?;
                t.put(&mut thing("a", "y", 2))?;
                t.put(&mut thing("ab", "z", 3))?;
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
        let refused = r.put(&mut thing("a", "r", 0)).unwrap_err().to_string();
        assert!(refused.contains("write in a read transaction"), "{store}: {refused}");
        drop(r);

        // A transaction reads what it wrote, listings included, and deletes say what was there.
        state
            .write(|t| {
                t.put(&mut thing("a", "w", 4))?;
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
            t.put(&mut thing("a", "v", 9))?;
            t.delete::<Thing>("a", "y")?;
            Err(StateError::Database { path: String::new(), message: "boom".into() })
        });
        assert!(failed.is_err());
        assert_eq!(state.read().unwrap().list::<Thing>("a").unwrap(), [thing("a", "w", 4), thing("a", "y", 2)], "{store}");
    }
}

#[test]
fn runs_a_dead_process_left_are_found_without_listing_every_object() {
    let tmp = tempfile::tempdir().unwrap();
    let server = etcd(&tmp.path().join("etcd"));
    let runner = etcd_state(&server);
    runner
        .write(|t| {
            for name in ["done", "running", "ended", "deleted"] {
                t.put(&mut thing("a", name, 0))?;
            }
            t.put(&mut thing("b", "running", 0))?;
            for (ns, name) in [("a", "running"), ("a", "ended"), ("a", "deleted"), ("b", "running")] {
                t.hold::<Thing>(ns, name)?;
            }
            Ok::<_, StateError>(())
        })
        .unwrap();
    runner.write(|t| t.release::<Thing>("a", "ended")).unwrap();
    runner.write(|t| t.delete::<Thing>("a", "deleted").map(drop)).unwrap();
    // The runner's process ends without ending its runs: its holds go with its lease.
    let leader = etcd_state(&server);
    let held = leader.read().unwrap().unheld(leader.read().unwrap().runs_to_check::<Thing>().unwrap()).unwrap();
    assert!(held.is_empty(), "still held while the runner lives: {held:?}");
    drop(runner);
    let left = crate::servers::eventually(std::time::Duration::from_secs(10), "the runner's lease to end", || {
        let txn = leader.read().unwrap();
        let left = txn.unheld(txn.runs_to_check::<Thing>().unwrap()).unwrap();
        (!left.is_empty()).then_some(left)
    });
    assert_eq!(left, [thing("a", "running", 0), thing("b", "running", 0)], "neither the ended run, nor the deleted one, nor one never marked");
    // The embedded state marks nothing: every object is one to check.
    let embedded = State::open(&tmp.path().join("data")).unwrap();
    embedded.write(|t| t.put(&mut thing("a", "x", 0))).unwrap();
    assert_eq!(embedded.read().unwrap().runs_to_check::<Thing>().unwrap(), [thing("a", "x", 0)]);
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
                            t.put(&mut thing("c", "counter", n + 1))
                        })
                        .unwrap();
                }
                for _ in 0..5 {
                    // Named after how many there are: two writers that listed the same
                    // objects would both take the same name.
                    state
                        .write(|t| {
                            let n = t.list::<Thing>("seq")?.len() as u32;
                            t.put(&mut thing("seq", &format!("{n:03}"), n))
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

#[tokio::test(flavor = "multi_thread")]
async fn a_process_whose_lease_lapsed_writes_nothing_more_and_learns_it() {
    let tmp = tempfile::tempdir().unwrap();
    let server = etcd(&tmp.path().join("etcd"));
    let state = etcd_state(&server);
    state.write(|t| t.put(&mut thing("a", "before", 1))).unwrap();
    // Its lease ends, as when the process is paused past it: here revoked from outside.
    let member = state.member().unwrap().to_owned();
    let mut client = etcd_client::Client::connect([server.url.replace("etcd://", "http://")], None).await.unwrap();
    let held = client.get(format!("coffer/members/{member}"), None).await.unwrap();
    client.lease_revoke(held.kvs()[0].lease()).await.unwrap();
    let err = state.write(|t| t.put(&mut thing("a", "after", 2))).unwrap_err();
    assert!(matches!(err, StateError::Fenced { .. }), "{err}");
    assert!(err.to_string().contains(&member) && err.to_string().contains("may write nothing more"), "{err}");
    assert_eq!(etcd_state(&server).read().unwrap().list::<Thing>("a").unwrap(), [thing("a", "before", 1)]);
    tokio::time::timeout(std::time::Duration::from_secs(10), state.lost()).await.expect("it learns that its lease is gone");
}

/// A CLI on its own data directory under `tmp`, on the state at `state` with master key `key`.
fn cli_on(tmp: &Path, name: &str, state: &str, key: &Path) -> Cli {
    let mut cli = Cli::new(&tmp.join(name));
    cli.env.push(("COFFER_STATE".into(), state.into()));
    cli.env.push(("COFFER_MASTER_KEY_FILE".into(), s(key)));
    cli
}

/// Through `cli`: secret `aws-creds` (moto's credentials, in a file under `root`) and the
/// default location `s3`, on bucket `velero` of `s3`.
fn s3_location(cli: &Cli, root: &Path, s3: &Server) {
    let credentials = dir(root, "files").join("aws");
    std::fs::write(&credentials, AWS_CREDENTIALS).unwrap();
    cli.ok(&["secret", "create", "aws-creds", "--from-file", &format!("cloud={}", s(&credentials))]);
    let config = format!("region=us-east-1,s3Url={}", s3.url);
    cli.ok(&["bsl", "create", "s3", "--provider", "aws", "--bucket", "velero", "--config", &config, "--credential", "aws-creds=cloud", "--default"]);
}

/// Through `cli`: the default location `main`, a filesystem one in `store`.
fn filesystem_location(cli: &Cli, store: &Path) {
    cli.ok(&["bsl", "create", "main", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(store)), "--default"]);
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
    let (server, s3) = (etcd(&root.join("etcd")), moto_bucket());
    let keys = dir(root, "keys");
    let key = key_file(&keys, "master.key");
    let (a, b) = (cli_on(root, "a", &server.url, &key), cli_on(root, "b", &server.url, &key));
    s3_location(&a, root, &s3);
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

/// TLS to [`etcd_tls`] with the test CA and client certificate.
fn test_tls(certs: &Path) -> etcd_client::TlsOptions {
    let pem = |name: &str| std::fs::read(certs.join(name)).unwrap();
    etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(pem("ca.pem")))
        .identity(etcd_client::Identity::from_pem(pem("client.pem"), pem("client.key")))
}

/// The operator's set-up of etcd's authentication, as `etcdctl user/role add` would do it:
/// `root`, and user `a` (password `a_password`) who may reach only keys under `team-a/`.
async fn users_on(endpoint: String, certs: &Path, a_password: &str) -> Result<(), etcd_client::Error> {
    use etcd_client::{Client, ConnectOptions, Permission};
    let mut etcd = Client::connect([endpoint], Some(ConnectOptions::new().with_tls(test_tls(certs)))).await?;
    etcd.user_add("root", "root-password", None).await?;
    etcd.user_grant_role("root", "root").await?;
    etcd.role_add("team-a").await?;
    etcd.role_grant_permission("team-a", Permission::read_write("team-a/").with_prefix()).await?;
    etcd.user_add("a", a_password, None).await?;
    etcd.user_grant_role("a", "team-a").await?;
    etcd.auth_enable().await?;
    Ok(())
}

#[test]
fn etcd_is_reached_over_tls_as_a_user_kept_to_its_own_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let certs = root.join("certs");
    crate::servers::test_certs(&certs);
    let server = etcd_tls(&root.join("etcd"), &certs);
    let password = "correct-horse-battery";
    let endpoint = format!("https://127.0.0.1:{}", server.port);
    tokio::runtime::Runtime::new().unwrap().block_on(users_on(endpoint, &certs, password)).unwrap();
    std::fs::write(root.join("a.password"), format!("{password}\n")).unwrap();
    std::fs::write(root.join("wrong.password"), "hunter2-wrong\n").unwrap();
    let key = key_file(&dir(root, "keys"), "master.key");
    // A process of team a: TLS with the test CA and a client certificate, as user `a`.
    let team = |name: &str, prefix: &str, tls: bool, password_file: Option<&str>| {
        let mut cli = cli_on(root, name, &format!("{}/{prefix}", server.url), &key);
        if tls {
            for (var, file) in [("COFFER_ETCD_CACERT", "ca.pem"), ("COFFER_ETCD_CERT", "client.pem"), ("COFFER_ETCD_KEY", "client.key")] {
                cli.env.push((var.into(), s(&certs.join(file))));
            }
        }
        if let Some(file) = password_file {
            cli.env.push(("COFFER_ETCD_USER".into(), "a".into()));
            cli.env.push(("COFFER_ETCD_PASSWORD_FILE".into(), s(&root.join(file))));
        }
        cli
    };
    let (a, b) = (team("a", "team-a", true, Some("a.password")), team("b", "team-a", true, Some("a.password")));
    let store = dir(root, "store");
    filesystem_location(&a, &store);
    assert!(b.ok(&["bsl", "get"]).contains("main"), "another process of the team sees the location");

    // Each missing piece is refused by etcd, and said so; the password is never repeated.
    let err = team("c", "team-a", false, Some("a.password")).fails(&["bsl", "get"]);
    assert!(err.contains("etcd://127.0.0.1") && err.contains("team-a") && err.contains("does not answer over plain HTTP"), "plain HTTP to a TLS etcd: {err}");
    let err = team("c", "team-a", true, None).fails(&["bsl", "get"]);
    assert!(err.contains("user name is empty") || err.contains("permission denied"), "no user: {err}");
    let err = team("c", "team-a", true, Some("wrong.password")).fails(&["bsl", "get"]);
    assert!(err.contains("authentication failed") && !err.contains("hunter2"), "a wrong password: {err}");
    let err = team("c", "team-b", true, Some("a.password")).fails(&["bsl", "get"]);
    assert!(err.contains("permission denied") && err.contains("team-b"), "another team's prefix: {err}");
    let err = Cli::new(&root.join("c")).run(&["--etcd-cacert", &s(&certs.join("ca.pem")), "bsl", "get"]).stderr;
    assert!(err.contains("--etcd-cacert applies only to a state in etcd"), "{err}");
    let mut no_ca = team("c", "team-a", true, Some("a.password"));
    no_ca.env.retain(|(var, _)| var != "COFFER_ETCD_CACERT");
    let err = no_ca.fails(&["bsl", "get"]);
    assert!(err.contains("--etcd-cert needs --etcd-cacert"), "{err}");

    // Everything the team's processes wrote is under its prefix.
    let keys = tokio::runtime::Runtime::new().unwrap().block_on(etcd_keys(format!("https://127.0.0.1:{}", server.port), &certs)).unwrap();
    assert!(keys.iter().any(|k| k.starts_with("team-a/objects/BackupStorageLocation")), "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("team-a/")), "{keys:?}");
}

/// Every key in the etcd of [`users_on`], read as root.
async fn etcd_keys(endpoint: String, certs: &Path) -> Result<Vec<String>, etcd_client::Error> {
    use etcd_client::{Client, ConnectOptions, GetOptions};
    let options = ConnectOptions::new().with_tls(test_tls(certs)).with_user("root", "root-password");
    let mut etcd = Client::connect([endpoint], Some(options)).await?;
    let all = etcd.get(vec![0u8], Some(GetOptions::new().with_from_key().with_keys_only())).await?;
    Ok(all.kvs().iter().map(|kv| String::from_utf8_lossy(kv.key()).into_owned()).collect())
}

#[test]
fn what_a_tenant_makes_through_one_server_is_seen_and_used_through_another() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (server, s3) = (etcd(&root.join("etcd")), moto_bucket());
    let key = key_file(&dir(root, "keys"), "master.key");
    let tenants = dir(root, "tenants");
    let args = ["--state", &server.url, "--master-key-file", &s(&key), "--tenant-root", &s(&tenants), "--allow-endpoint", "127.0.0.1"];
    // The token is made once, in the shared state, and works on both.
    let operator = cli_on(root, "operator", &server.url, &key);
    let token = operator.ok(&["tenant", "token", "create", "t1", "--tenant", "acme"]).trim().to_owned();
    let (one, two) = (coffer_server(&root.join("one"), &args), coffer_server(&root.join("two"), &args));
    let (a, b) = (Cli::remote(&one.server.url, &token), Cli::remote(&two.server.url, &token));
    s3_location(&a, root, &s3);
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

#[test]
fn of_two_changes_made_through_two_servers_against_one_version_exactly_one_applies() {
    let replicas = Replicas::new();
    let (one, two) = (replicas.start("one"), replicas.start("two"));
    crate::server_api::racing_updates_apply_once([&one.server.url, &two.server.url], &replicas.token);
}

/// Servers sharing one etcd, with a shared master key and tenants' root, and a token for
/// tenant `acme` made by the operator.
struct Replicas {
    tmp: tempfile::TempDir,
    etcd: Server,
    /// etcd's peer port, to start it again where it was.
    peer: u16,
    args: Vec<String>,
    token: String,
}

impl Replicas {
    fn new() -> Replicas {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let peer = free_port();
        let etcd = etcd_on(&root.join("etcd"), free_port(), peer);
        let key = key_file(&dir(root, "keys"), "master.key");
        let tenants = dir(root, "tenants");
        let args = ["--state", &etcd.url, "--master-key-file", &s(&key), "--tenant-root", &s(&tenants), "--allow-endpoint", "127.0.0.1"];
        let operator = cli_on(root, "operator", &etcd.url, &key);
        let token = operator.ok(&["tenant", "token", "create", "t1", "--tenant", "acme"]).trim().to_owned();
        Replicas { args: args.iter().map(|a| a.to_string()).collect(), tmp, etcd, peer, token }
    }

    /// Stops etcd for `down`, then starts it again on its data and ports.
    fn restart_etcd(&mut self, down: std::time::Duration) {
        self.etcd.signal("KILL");
        assert!(self.etcd.exited(std::time::Duration::from_secs(10)).is_some());
        std::thread::sleep(down);
        self.etcd = etcd_on(&self.tmp.path().join("etcd"), self.etcd.port, self.peer);
    }

    /// Starts server `name`.
    fn start(&self, name: &str) -> crate::servers::CofferServer {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        coffer_server(&self.tmp.path().join(name), &args)
    }

    /// Whether server `name` has said it leads.
    fn leads(&self, name: &str) -> bool {
        self.log(name).contains("leading: this server runs the controllers")
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.tmp.path().join(name).join("server.log")).unwrap_or_default()
    }

    /// The tenant's directory.
    fn home(&self) -> std::path::PathBuf {
        self.tmp.path().join("tenants/acme")
    }

    fn backups(&self, server: &crate::servers::CofferServer) -> Vec<serde_json::Value> {
        let (status, body) = http("GET", &format!("{}/v1/backups", server.server.url), Some(&self.token), None);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap().as_array().unwrap().clone()
    }
}

#[test]
fn a_plugin_added_to_the_shared_state_is_used_by_every_running_server_and_a_damaged_one_by_none() {
    let replicas = Replicas::new();
    let root = replicas.tmp.path();
    let key = root.join("keys/master.key");
    let wasm = root.join("probe.wasm");
    std::fs::write(&wasm, crate::common::test_component("probe")).unwrap();
    // One server runs before the plugin is added, one starts after: neither restarts, and
    // neither data directory ever holds the file.
    let one = replicas.start("one");
    let unknown = Cli::remote(&one.server.url, &replicas.token).fails(&["bsl", "create", "p0", "--provider", "coffer.test/probe", "--bucket", "b"]);
    assert!(unknown.contains("unknown provider"), "{unknown}");
    let out = cli_on(root, "operator", &replicas.etcd.url, &key).ok(&["plugin", "add", &s(&wasm)]);
    assert!(out.contains("coffer.test/probe") && out.contains("kept in the shared state"), "{out}");
    let two = replicas.start("two");
    for (server, name) in [(&one, "p1"), (&two, "p2")] {
        let tenant = Cli::remote(&server.server.url, &replicas.token);
        let create = ["bsl", "create", name, "--provider", "coffer.test/probe", "--bucket", "b"];
        crate::servers::eventually(std::time::Duration::from_secs(10), "the plugin in use", || tenant.run(&create).ok.then_some(()));
        assert_eq!(tenant.json(&["bsl", "get", name])["status"]["phase"], "Available", "through {}", server.server.url);
    }
    // Another build of it replaces it only when asked, and both servers load it, still running.
    let operator = cli_on(root, "operator", &replicas.etcd.url, &key);
    let rebuilt = root.join("probe-2.wasm");
    std::fs::write(&rebuilt, [crate::common::test_component("probe").as_slice(), &[0, 2, 1, b'v']].concat()).unwrap();
    let refused = operator.fails(&["plugin", "add", &s(&rebuilt)]);
    assert!(refused.contains("already installed") && refused.contains("--replace"), "{refused}");
    operator.ok(&["plugin", "add", "--replace", &s(&rebuilt)]);
    let sha = operator.json(&["plugin", "get"])["items"].as_array().unwrap().iter().find(|p| p["name"] == "coffer.test/probe").unwrap()["sha256"].as_str().unwrap().to_owned();
    for server in ["one", "two"] {
        crate::servers::eventually(std::time::Duration::from_secs(10), "the new build loaded", || replicas.log(server).contains(&sha).then_some(()));
    }
    let viewer = cli_on(root, "viewer", &replicas.etcd.url, &key);
    let listed = viewer.json(&["plugin", "get"]);
    let probe = listed["items"].as_array().unwrap().iter().find(|p| p["name"] == "coffer.test/probe").expect("listed").clone();
    assert!(probe["source"].as_str().unwrap().starts_with("shared state: "), "{probe}");
    assert!(!root.join("viewer/plugins").exists(), "nothing written to a data directory");

    // A chunk altered in etcd: the component no longer has its digest, and no process loads it.
    let sha = probe["sha256"].as_str().unwrap().to_owned();
    let endpoint = format!("http://127.0.0.1:{}", replicas.etcd.port);
    tokio::runtime::Runtime::new().unwrap().block_on(async move {
        let mut etcd = etcd_client::Client::connect([endpoint], None).await.unwrap();
        let forged = serde_json::json!({"name": format!("{sha}.0"), "data": "AGFzbQ0AAQA="}).to_string();
        etcd.put(format!("coffer/objects/PluginChunk\u{0}\u{0}{sha}.0"), forged, None).await.unwrap();
    });
    let listed = viewer.run(&["plugin", "get"]);
    assert!(listed.ok && !listed.stdout.contains("coffer.test/probe"), "{listed:?}");
    let _three = replicas.start("three");
    let log = replicas.log("three");
    assert!(log.contains("skipping plugin") && log.contains("damaged") && log.contains("digest"), "{log}");
}

#[test]
fn one_of_three_servers_leads_and_another_takes_over_within_a_lease_when_it_is_killed() {
    let replicas = Replicas::new();
    let mut servers: Vec<(String, crate::servers::CofferServer)> = ["one", "two", "three"].iter().map(|n| (n.to_string(), replicas.start(n))).collect();
    let leader = crate::servers::eventually(std::time::Duration::from_secs(15), "a leader", || {
        let leading: Vec<usize> = (0..3).filter(|i| replicas.leads(&servers[*i].0)).collect();
        (leading.len() == 1).then(|| leading[0])
    });
    // The tenant's schedule fires on the leader, once a period, and every server shows its runs.
    let cli = Cli::remote(&servers[(leader + 1) % 3].1.server.url, &replicas.token);
    let store = dir(&replicas.home(), "store");
    filesystem_location(&cli, &store);
    example_source(&replicas.home());
    cli.ok(&["schedule", "create", "often", "--schedule", "@every 2s", "--source", "source"]);
    crate::servers::eventually(std::time::Duration::from_secs(20), "two scheduled runs", || (replicas.backups(&servers[2].1).len() >= 2).then_some(()));

    // The leader dies: another leads within a lease (5 s) and a little, and the schedule goes on.
    let (dead_name, dead) = servers.remove(leader);
    dead.server.signal("KILL");
    let killed = std::time::Instant::now();
    let before = replicas.backups(&servers[0].1).len();
    let next = crate::servers::eventually(std::time::Duration::from_secs(15), "a new leader", || servers.iter().position(|(n, _)| replicas.leads(n)));
    let handover = killed.elapsed();
    assert!(handover < std::time::Duration::from_secs(9), "took {handover:?}");
    assert!(!replicas.leads(&dead_name) || replicas.log(&dead_name).matches("leading").count() == 1);
    crate::servers::eventually(std::time::Duration::from_secs(20), "runs after the handover", || (replicas.backups(&servers[next].1).len() >= before + 2).then_some(()));
    // Never two runs for one period: each run's name is its period's.
    let names: Vec<String> = replicas.backups(&servers[0].1).iter().map(|b| b["metadata"]["name"].as_str().unwrap().to_owned()).collect();
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");

    // A leader stopped on purpose leaves at once: the last one leads without waiting out a lease.
    let (_, mut stopped) = servers.remove(next);
    let asked = std::time::Instant::now();
    assert!(stopped.server.terminate(std::time::Duration::from_secs(20)), "stops on SIGTERM");
    crate::servers::eventually(std::time::Duration::from_secs(15), "the last leads", || replicas.leads(&servers[0].0).then_some(()));
    let planned = asked.elapsed();
    assert!(planned < std::time::Duration::from_secs(4), "took {planned:?}");
    eprintln!("handover took {handover:?} after a kill, {planned:?} after a stop");
}

#[test]
fn a_backup_whose_server_dies_is_failed_by_the_leader_and_a_paused_server_stops() {
    let replicas = Replicas::new();
    let leader = replicas.start("one");
    crate::servers::eventually(std::time::Duration::from_secs(15), "one leads", || replicas.leads("one").then_some(()));
    let runner = replicas.start("two");
    let cli = Cli::remote(&runner.server.url, &replicas.token);
    let store = dir(&replicas.home(), "store");
    filesystem_location(&cli, &store);
    crate::common::bulky_manifests(&dir(&replicas.home(), "bulk"), 48);
    // A backup accepted by the server that does not lead, which dies while running it.
    let running = cli.command(&["backup", "create", "big", "--source", "bulk", "--wait"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    crate::servers::eventually(std::time::Duration::from_secs(20), "the backup runs", || {
        let (status, body) = http("GET", &format!("{}/v1/backups/big", leader.server.url), Some(&replicas.token), None);
        (status == 200 && body.contains("\"InProgress\"")).then_some(())
    });
    runner.server.signal("KILL");
    let killed = std::time::Instant::now();
    drop(running);
    let failed = crate::servers::eventually(std::time::Duration::from_secs(20), "the leader fails it", || {
        let (_, body) = http("GET", &format!("{}/v1/backups/big", leader.server.url), Some(&replicas.token), None);
        let backup: serde_json::Value = serde_json::from_str(&body).ok()?;
        (backup["status"]["phase"] == "Failed").then_some(backup)
    });
    assert!(killed.elapsed() < std::time::Duration::from_secs(12), "{:?}", killed.elapsed());
    let reason = failed["status"]["failureReason"].as_str().unwrap_or_default();
    assert!(reason.contains("no live process runs any more"), "{reason}");
    assert!(!store.join("b/backups/big").exists(), "nothing of it left in the location");

    // A server paused for longer than its lease is fenced: when it resumes, it stops, saying
    // why, and the other has taken over.
    let mut second = replicas.start("three");
    let mut leader = leader;
    leader.server.signal("STOP");
    crate::servers::eventually(std::time::Duration::from_secs(15), "three leads", || replicas.leads("three").then_some(()));
    leader.server.signal("CONT");
    let status = leader.server.exited(std::time::Duration::from_secs(15)).expect("the fenced server stops");
    assert!(!status.success());
    assert!(replicas.log("one").contains("lease in the shared state lapsed"), "{}", replicas.log("one"));
    // The other goes on serving.
    assert_eq!(replicas.backups(&second).len(), 1);
    second.server.signal("TERM");
    assert!(second.server.exited(std::time::Duration::from_secs(15)).is_some_and(|s| s.success()));
}

#[test]
fn servers_ride_out_a_restart_of_etcd_and_lose_nothing() {
    let mut replicas = Replicas::new();
    let servers = [replicas.start("one"), replicas.start("two")];
    crate::servers::eventually(std::time::Duration::from_secs(15), "a leader", || (replicas.leads("one") || replicas.leads("two")).then_some(()));
    let cli = Cli::remote(&servers[1].server.url, &replicas.token);
    let store = dir(&replicas.home(), "store");
    filesystem_location(&cli, &store);
    example_source(&replicas.home());
    cli.ok(&["backup", "create", "before", "--source", "source", "--wait"]);
    cli.ok(&["schedule", "create", "often", "--schedule", "@every 2s", "--source", "source"]);
    crate::servers::eventually(std::time::Duration::from_secs(20), "a scheduled run", || (replicas.backups(&servers[0]).len() >= 2).then_some(()));

    // etcd goes away for two seconds (less than a lease) and comes back on its data.
    replicas.restart_etcd(std::time::Duration::from_secs(2));
    let after = replicas.backups(&servers[0]).len();
    // Both servers answer again, with everything made before; the schedule goes on, and a
    // backup made through either after the restart is seen through the other.
    crate::servers::eventually(std::time::Duration::from_secs(30), "runs after the restart", || (replicas.backups(&servers[1]).len() >= after + 2).then_some(()));
    cli.ok(&["backup", "create", "after", "--source", "source", "--wait"]);
    let names: Vec<String> = replicas.backups(&servers[0]).iter().map(|b| b["metadata"]["name"].as_str().unwrap().to_owned()).collect();
    assert!(names.contains(&"before".to_owned()) && names.contains(&"after".to_owned()), "{names:?}");
    for name in ["one", "two"] {
        assert!(!replicas.log(name).contains("lapsed"), "{name} kept its lease: {}", replicas.log(name));
    }
}

#[test]
fn a_data_directory_moves_into_etcd_and_back_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let server = etcd(&root.join("etcd"));
    let single = Cli::new(&root.join("single"));
    let store = dir(root, "store");
    filesystem_location(&single, &store);
    let secret = dir(root, "files").join("token");
    std::fs::write(&secret, "sekrit").unwrap();
    single.ok(&["secret", "create", "app", "--from-file", &format!("token={}", s(&secret))]);
    let source = s(&example_source(root));
    single.ok(&["backup", "create", "b1", "--source", &source, "--wait"]);
    let before = root.join("restored-before");
    single.ok(&["restore", "create", "r0", "--from-backup", "b1", "--target", &s(&before), "--wait"]);

    // Into etcd: everything, with the secrets sealed as they were.
    let moved = single.ok(&["state", "migrate", "--from", &s(&root.join("single")), "--to", &server.url]);
    assert!(moved.starts_with("Copied ") && moved.contains(&server.url), "{moved}");
    let key = root.join("single/master.key");
    let shared = cli_on(root, "shared", &server.url, &key);
    assert_eq!(shared.json(&["backup", "get", "b1"])["status"]["phase"], "Completed");
    assert!(shared.ok(&["secret", "get"]).contains("app"));
    shared.ok(&["backup", "create", "b2", "--source", &source, "--wait"]);
    // A second migration into a state that holds objects is refused, naming it.
    let err = single.fails(&["state", "migrate", "--from", &s(&root.join("single")), "--to", &server.url]);
    assert!(err.contains(&format!("state {}/coffer already holds", server.url)), "{err}");

    // And back into a new data directory, with the master key copied as it says.
    let back = root.join("back");
    let said = single.run(&["state", "migrate", "--from", &server.url, "--to", &s(&back)]);
    assert!(said.ok && said.stderr.contains(&s(&back.join("master.key"))), "{said:?}");
    std::fs::copy(&key, back.join("master.key")).unwrap();
    let again = Cli::new(&back);
    assert!(again.ok(&["backup", "get"]).contains("b2"), "made in etcd, moved back");
    assert!(again.ok(&["restore", "get"]).contains("r0"), "made before, moved there and back");
    let after = root.join("restored-after");
    again.ok(&["restore", "create", "r1", "--from-backup", "b1", "--target", &s(&after), "--wait"]);
    assert!(!files(&before).is_empty());
    assert_eq!(files(&after), files(&before), "the same backup restores the same");
    // A directory without a state is named.
    let err = single.fails(&["state", "migrate", "--from", &s(&root.join("nothing")), "--to", &server.url]);
    assert!(err.contains("nothing") && err.contains("holds no state"), "{err}");
}

/// The period a scheduled backup named `<schedule>-<YYYYMMDDhhmmss>` is for.
fn period_of(name: &str) -> time::OffsetDateTime {
    let stamp = name.rsplit('-').next().unwrap();
    let format = time::macros::format_description!("[year][month][day][hour][minute][second]");
    time::PrimitiveDateTime::parse(stamp, &format).unwrap().assume_utc()
}

/// 200 tenants, each with an `@every 2s` schedule, on three servers for 30 s: every schedule
/// runs once in every period, never twice and never skipping one, while a server that does
/// not lead is killed and started again; and every server shows every run.
#[test]
fn two_hundred_schedules_on_three_servers_run_once_every_period_across_a_restart() {
    const TENANTS: usize = 200;
    let mut replicas = Replicas::new();
    // 100 runs a second: more at once than the default 4, as an operator of such a host sets.
    replicas.args.extend(["--concurrent-backups".into(), "16".into()]);
    let names = ["one", "two", "three"];
    let mut servers: Vec<crate::servers::CofferServer> = names.iter().map(|n| replicas.start(n)).collect();
    let leader = crate::servers::eventually(std::time::Duration::from_secs(15), "a leader", || {
        let leading: Vec<usize> = (0..3).filter(|i| replicas.leads(names[*i])).collect();
        (leading.len() == 1).then(|| leading[0])
    });
    // The operator makes the tenants' tokens; each tenant makes its location and schedule
    // through one of the servers.
    let tokens: Vec<String> = {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let state = StateLocation::parse(&replicas.etcd.url).unwrap();
        let key = replicas.tmp.path().join("keys/master.key");
        let operator = runtime
            .block_on(coffer::coffer::Coffer::open_with(&replicas.tmp.path().join("tokens"), coffer::sandbox::Limits::default(), &state, Some(&key)))
            .unwrap();
        (0..TENANTS)
            .map(|i| {
                let (token, _) = coffer::tokens::create_token(&operator, &format!("t{i:03}"), "t").unwrap();
                String::from_utf8(token.expose().to_vec()).unwrap()
            })
            .collect()
    };
    let tenants = replicas.tmp.path().join("tenants");
    std::thread::scope(|scope| {
        for worker in 0..6 {
            let (servers, tokens, tenants) = (&servers, &tokens, &tenants);
            scope.spawn(move || {
                for i in (worker..TENANTS).step_by(6) {
                    let home = dir(tenants, &format!("t{i:03}"));
                    example_source(&home);
                    let url = &servers[i % 3].server.url;
                    let bsl = serde_json::json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation", "metadata": {"name": "main"},
                        "spec": {"provider": "filesystem", "objectStorage": {"bucket": "b"}, "config": {"root": s(&dir(&home, "store"))}, "default": true}});
                    let (status, body) = http("POST", &format!("{url}/v1/backup-storage-locations"), Some(&tokens[i]), Some(&bsl));
                    assert_eq!(status, 201, "{body}");
                    let schedule = serde_json::json!({"apiVersion": "velero.io/v1", "kind": "Schedule",
                        "metadata": {"name": "often", "annotations": {"coffer.io/source-directory": "source"}},
                        "spec": {"schedule": "@every 2s", "template": {}}});
                    let (status, body) = http("POST", &format!("{url}/v1/schedules"), Some(&tokens[i]), Some(&schedule));
                    assert_eq!(status, 201, "{body}");
                }
            });
        }
    });
    let started = std::time::Instant::now();
    let at = |seconds: u64| std::thread::sleep(std::time::Duration::from_secs(seconds).saturating_sub(started.elapsed()));

    // A server that does not lead dies 8 s in and is started again 8 s later.
    let victim = (leader + 1) % 3;
    at(8);
    servers[victim].server.signal("KILL");
    assert!(servers[victim].server.exited(std::time::Duration::from_secs(10)).is_some());
    at(16);
    servers[victim] = replicas.start(names[victim]);
    at(30);
    let end = time::OffsetDateTime::now_utc();

    // Each schedule's runs, through the server its tenant used, once the period `end` falls in
    // has its run; every run is for a period of its own, one period after another.
    let (mut lateness, mut durations) = (Vec::new(), Vec::new());
    for (i, token) in tokens.iter().enumerate() {
        let url = &servers[i % 3].server.url;
        let backups = crate::servers::eventually(std::time::Duration::from_secs(30), "the last period's run", || {
            let (status, body) = http("GET", &format!("{url}/v1/backups"), Some(token), None);
            assert_eq!(status, 200, "{body}");
            let backups: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
            let done = backups.iter().all(|b| b["status"]["phase"] == "Completed" || period_of(b["metadata"]["name"].as_str().unwrap()) > end - time::Duration::seconds(2));
            let last = backups.iter().map(|b| period_of(b["metadata"]["name"].as_str().unwrap())).max()?;
            (done && last + time::Duration::seconds(2) > end).then_some(backups)
        });
        let mut periods: Vec<time::OffsetDateTime> = backups.iter().map(|b| period_of(b["metadata"]["name"].as_str().unwrap())).collect();
        periods.sort();
        let steps: Vec<i64> = periods.windows(2).map(|w| (w[1] - w[0]).whole_seconds()).collect();
        assert!(steps.iter().all(|s| *s == 2), "tenant t{i:03}: runs for {periods:?}");
        assert!(periods.len() >= 14, "tenant t{i:03}: {} runs", periods.len());
        let (status, body) = http("GET", &format!("{url}/v1/schedules/often"), Some(token), None);
        assert_eq!(status, 200, "{body}");
        let schedule: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(schedule["status"]["lastFailure"].is_null(), "tenant t{i:03}: {schedule}");
        for b in backups.iter().filter(|b| b["status"]["phase"] == "Completed") {
            let start = time::OffsetDateTime::parse(b["status"]["startTimestamp"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
            let completed = time::OffsetDateTime::parse(b["status"]["completionTimestamp"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
            lateness.push((start - period_of(b["metadata"]["name"].as_str().unwrap())).as_seconds_f64());
            durations.push((completed - start).as_seconds_f64());
        }
    }
    // Every server shows every run up to the end (runs go on meanwhile).
    let first: Vec<String> = (0..3)
        .map(|k| {
            let (_, body) = http("GET", &format!("{}/v1/backups", servers[k].server.url), Some(&tokens[0]), None);
            let mut names: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&body)
                .unwrap()
                .iter()
                .map(|b| b["metadata"]["name"].as_str().unwrap().to_owned())
                .filter(|name| period_of(name) <= end)
                .collect();
            names.sort();
            names.join(",")
        })
        .collect();
    assert!(first[0] == first[1] && first[1] == first[2], "{first:?}");
    assert!(!replicas.leads(names[victim]), "the restarted server follows");
    // No run was set straight as interrupted: the leader runs them all, and lives. (Runs that
    // ended between its looking for running ones and for held ones were, before both were
    // read at one revision.)
    for name in names {
        let log = replicas.log(name);
        assert!(!log.contains("could not start") && !log.contains("set straight"), "{name}: {log}");
    }
    let percentiles = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() * 99 / 100], v[v.len() - 1])
    };
    let (late, ran) = (percentiles(&mut lateness), percentiles(&mut durations));
    eprintln!(
        "{} scheduled runs of {TENANTS} tenants: started after their period p50 {:.0} s, p99 {:.0} s, max {:.0} s; ran p50 {:.0} s, p99 {:.0} s, max {:.0} s",
        lateness.len(),
        late.0,
        late.1,
        late.2,
        ran.0,
        ran.1,
        ran.2
    );
}
