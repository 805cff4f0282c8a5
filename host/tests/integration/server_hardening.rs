//! A shared server attacked from outside and by its tenants: tokens over the network, bad
//! tokens at speed, tenant endpoints aimed at the host's own network, and buckets holding
//! documents built to exhaust memory. The server must stay up, bounded, and answering.

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::common::{Cli, bulky_manifests, dir, s, tarball};
use crate::server_api::{Tenancy, token};
use crate::servers::{coffer_server, eventually, http, rss, test_certs};

/// A CLI acting as `token` on the HTTPS server at `url`, trusting `ca`.
fn tls_cli(url: &str, token: &str, ca: Option<&std::path::Path>) -> Cli {
    let mut cli = Cli::remote(url, token);
    if let Some(ca) = ca {
        cli.env.push(("COFFER_CACERT".into(), s(ca)));
    }
    cli
}

#[test]
fn the_api_is_served_over_tls_with_a_reloaded_certificate_and_bad_tokens_are_throttled() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (ca, cert, key) = test_certs(&tmp.path().join("certs"));
    let serving = (tmp.path().join("serving.pem"), tmp.path().join("serving.key"));
    std::fs::copy(&cert, &serving.0).unwrap();
    std::fs::copy(&key, &serving.1).unwrap();
    let acme = token(&data, "acme", "a");
    let server = coffer_server(&data, &["--tls-cert-file", &s(&serving.0), "--tls-private-key-file", &s(&serving.1)]);
    let url = &server.server.url;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let mode = |p: &std::path::Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777;
    assert_eq!(mode(&data.join("admin.sock")), 0o600, "the operator's socket is the owner's only");
    assert_eq!(mode(&data), 0o700);

    tls_cli(url, &acme, Some(&ca)).ok(&["backup", "get"]);
    let err = tls_cli(url, &acme, None).fails(&["backup", "get"]);
    assert!(err.contains("TLS") && err.to_lowercase().contains("certificate"), "an unknown issuer is refused: {err}");
    let plain = url.replace("https://", "http://");
    assert!(!Cli::remote(&plain, &acme).run(&["backup", "get"]).ok, "no plain HTTP on the TLS port");

    // A renewed certificate (from another CA) applies to the next connection.
    let (ca2, cert2, key2) = test_certs(&tmp.path().join("certs2"));
    std::fs::copy(&key2, &serving.1).unwrap();
    std::fs::copy(&cert2, &serving.0).unwrap();
    eventually(Duration::from_secs(10), "the renewed certificate", || tls_cli(url, &acme, Some(&ca2)).run(&["backup", "get"]).ok.then_some(()));
    assert!(!tls_cli(url, &acme, Some(&ca)).run(&["backup", "get"]).ok, "the old CA no longer verifies it");

    // Bad tokens from one address: refused, then throttled.
    let mut answers = Vec::new();
    for _ in 0..12 {
        answers.push(tls_cli(url, "coffer_guess", Some(&ca2)).fails(&["backup", "get"]));
    }
    assert!(answers[0].contains("refused the token"), "{}", answers[0]);
    assert!(answers[11].contains("too many requests with bad tokens"), "{}", answers[11]);
}

#[test]
fn a_server_will_not_serve_tokens_in_clear_beyond_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["server", "--listen", "0.0.0.0:0", "--metrics-listen", "off"])
        .env("COFFER_DATA_DIR", tmp.path().join("data"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--tls-cert-file") && err.contains("--insecure-listen"), "{err}");
}

/// A TCP listener on loopback that counts the connections made to it.
fn counting_listener() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (url, count)
}

#[test]
fn tenants_reach_public_endpoints_only_unless_the_operator_allows_more() {
    let tmp = tempfile::tempdir().unwrap();
    let (inner, connections) = counting_listener();
    let creds = tmp.path().join("creds");
    std::fs::write(&creds, "[default]\naws_access_key_id = a\naws_secret_access_key = b\n").unwrap();
    let create = |cli: &Cli, name: &str, s3_url: &str| {
        cli.ok(&["secret", "create", name, "--from-file", &format!("cloud={}", s(&creds))]);
        let args = ["bsl", "create", name, "--provider", "aws", "--bucket", "b", "--credential", &format!("{name}=cloud")];
        cli.ok(&[&args[..], &["--config", &format!("region=us-east-1,s3Url={s3_url}")]].concat());
        cli.json(&["bsl", "get", name])
    };

    let shared = Tenancy::start(&tmp.path().join("shared"), &[]);
    for (name, target) in [("loopback", inner.as_str()), ("metadata", "http://169.254.169.254"), ("private", "http://10.255.255.1:9")] {
        let bsl = create(&shared.cli, name, target);
        assert_eq!(bsl["status"]["phase"], "Unavailable", "{name}: {bsl}");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 0, "no connection reached the host's own network");
    let log = std::fs::read_to_string(shared.data.join("server.log")).unwrap();
    assert!(log.contains("denied an outbound connection to a non-public address"), "{log}");

    let allowed = Tenancy::start(&tmp.path().join("allowed"), &["--allow-endpoint", "127.0.0.1"]);
    create(&allowed.cli, "loopback", &inner);
    assert!(connections.load(Ordering::SeqCst) > 0, "the operator's exception lets it through");
}

/// The most resident memory `pid` reaches while it is watched.
struct Watchdog {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(pid: u32) -> Watchdog {
        let (peak, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                p.fetch_max(rss(pid), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Watchdog { peak, stop }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A gzipped tarball of `n` ConfigMaps each holding a 4 MiB array of zeros (about 64 MiB
/// apiece once parsed), and last an entry that belongs elsewhere, so the whole is refused.
fn zero_array_tarball(n: usize) -> Vec<u8> {
    let zeros = "0,".repeat((4 << 20) / 2 - 64);
    let objects: Vec<(String, String)> = (0..n)
        .map(|i| {
            let object = format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"z{i}","namespace":"shop"}},"data":[{zeros}0]}}"#);
            (format!("resources/configmaps/namespaces/shop/z{i}.json"), object)
        })
        .collect();
    let mut entries: Vec<(&str, &[u8])> = vec![("metadata/version", b"1.1.0\n")];
    entries.extend(objects.iter().map(|(path, object)| (path.as_str(), object.as_bytes())));
    entries.push(("resources/configmaps/namespaces/shop/elsewhere.json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other","namespace":"shop"}}"#));
    tarball(&entries)
}

#[test]
fn documents_built_to_exhaust_memory_leave_the_server_bounded_and_answering() {
    let tmp = tempfile::tempdir().unwrap();
    let Tenancy { data, server, cli, home, .. } = Tenancy::start(tmp.path(), &["--backup-sync-period", "1s"]);
    let url = server.server.url.clone();
    let store = dir(&home, "store");
    let src = dir(&home, "src");
    std::fs::write(src.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n").unwrap();
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    cli.ok(&["backup", "create", "b", "--source", "src", "--wait"]);
    let objects = store.join("b/backups/b");
    let watchdog = Watchdog::start(server.server.pid());

    // 1. A tarball whose objects parse to about 64 MiB each, 40 of them (2.5 GiB if held).
    std::fs::write(objects.join("b.tar.gz"), zero_array_tarball(40)).unwrap();
    let run = cli.run(&["restore", "create", "r", "--from-backup", "b", "--target", "out", "--wait"]);
    assert!(!run.ok && run.stdout.contains("Failed"), "{run:?}");
    let restore = cli.json(&["restore", "get", "r"]);
    assert!(restore["status"]["failureReason"].as_str().unwrap().contains("which belongs elsewhere"), "{restore}");
    assert!(!home.join("out/resources").exists(), "nothing written from a refused tarball");

    // 2. A log that inflates to 1 GiB.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..1024 {
        bomb.write_all(&[0u8; 1 << 20]).unwrap();
    }
    std::fs::write(objects.join("b-logs.gz"), bomb.finish().unwrap()).unwrap();
    let err = cli.fails(&["backup", "logs", "b"]);
    assert!(err.contains("b-logs.gz") && err.contains("inflates beyond"), "{err}");

    // 3. A 64 GiB (sparse) velero-backup.json for the sync controller to find.
    let evil = dir(&store, "b/backups/evil");
    std::fs::File::create(evil.join("velero-backup.json")).unwrap().set_len(64 << 30).unwrap();
    eventually(Duration::from_secs(30), "the sync to refuse it", || {
        std::fs::read_to_string(data.join("server.log")).unwrap().contains("velero-backup.json").then_some(())
    });

    let peak = watchdog.peak();
    eprintln!("the server's peak resident memory during the attacks: {} MiB", peak >> 20);
    assert!(peak < 1 << 30, "the server's memory stayed bounded: peak {} MiB", peak >> 20);
    let (status, _) = http("GET", &format!("{url}/healthz"), None, None);
    assert_eq!(status, 200, "the server still answers");
    // Another tenant still backs up.
    let globex = token(&data, "globex", "g");
    let other = Cli::remote(&url, &globex);
    let globex_store = dir(&data.join("tenants/globex"), "store");
    let globex_src = dir(&data.join("tenants/globex"), "src");
    std::fs::write(globex_src.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: g, namespace: shop}\n").unwrap();
    other.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&globex_store)), "--default"]);
    assert!(other.ok(&["backup", "create", "g", "--source", "src", "--wait"]).contains("Completed"));
}

#[test]
fn a_frozen_endpoint_never_freezes_reads_and_its_location_goes_unavailable() {
    let tmp = tempfile::tempdir().unwrap();
    let s3 = crate::servers::moto();
    assert!(crate::servers::raw_http(s3.port, "PUT", "/velero").contains("200"), "bucket created");
    let Tenancy { cli, server: _server, .. } = Tenancy::start(tmp.path(), &["--allow-endpoint", "127.0.0.1"]);
    let creds = tmp.path().join("creds");
    std::fs::write(&creds, "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n").unwrap();
    cli.ok(&["secret", "create", "s3", "--from-file", &format!("cloud={}", s(&creds))]);
    let config = format!("region=us-east-1,s3Url={}", s3.url);
    let out = cli.ok(&["bsl", "create", "frozen", "--provider", "aws", "--bucket", "velero", "--credential", "s3=cloud", "--validation-frequency", "1s", "--config", &config]);
    assert!(out.contains("Available"), "{out}");

    // The endpoint freezes: it accepts connections and never answers.
    let stop = |signal: &str| assert!(std::process::Command::new("kill").args([signal, &s3.pid().to_string()]).status().unwrap().success());
    stop("-STOP");
    for _ in 0..5 {
        let started = std::time::Instant::now();
        cli.ok(&["bsl", "get", "frozen"]);
        assert!(started.elapsed() < Duration::from_secs(3), "a read answered at once, not after the endpoint: {:?}", started.elapsed());
        std::thread::sleep(Duration::from_millis(500));
    }
    let bsl = eventually(Duration::from_secs(90), "the frozen location to go Unavailable", || {
        let bsl = cli.json(&["bsl", "get", "frozen"]);
        (bsl["status"]["phase"] == "Unavailable").then_some(bsl)
    });
    assert!(bsl["status"]["message"].as_str().unwrap().contains("timed out after 30 s"), "{bsl}");
    stop("-CONT");
    eventually(Duration::from_secs(60), "the location to recover", || (cli.json(&["bsl", "get", "frozen"])["status"]["phase"] == "Available").then_some(()));
}

#[test]
fn a_tenant_stalling_downloads_holds_only_its_own_share_of_instances() {
    let tmp = tempfile::tempdir().unwrap();
    let Tenancy { data, token: acme, server, cli, home } = Tenancy::start(tmp.path(), &["--tenant-instances", "2"]);
    let url = server.server.url.clone();
    let src = dir(&home, "src");
    bulky_manifests(&src, 24);
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&dir(&home, "store"))), "--default"]);
    cli.ok(&["backup", "create", "big", "--source", "src", "--wait"]);

    // Two downloads whose client never reads: each holds a provider instance, stalled.
    let authority = url.trim_start_matches("http://").to_owned();
    let stalled: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut conn = std::net::TcpStream::connect(&authority).unwrap();
            write!(conn, "GET /v1/backups/big/download HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {acme}\r\n\r\n").unwrap();
            conn
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));

    // The tenant's next download waits for one of its own instances...
    let out = tmp.path().join("big.tar.gz");
    let mut third = cli.command(&["backup", "download", "big", "-o", &s(&out)]).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(third.try_wait().unwrap().is_none(), "the tenant's third download waits for room in its own cap");

    // ...while another tenant works as usual.
    let globex = token(&data, "globex", "g");
    let other = Cli::remote(&url, &globex);
    let globex_home = data.join("tenants/globex");
    let globex_src = dir(&globex_home, "src");
    std::fs::write(globex_src.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: g, namespace: shop}\n").unwrap();
    other.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&dir(&globex_home, "store"))), "--default"]);
    let started = std::time::Instant::now();
    assert!(other.ok(&["backup", "create", "g", "--source", "src", "--wait"]).contains("Completed"));
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());

    // Once the stalled clients go, their instances are freed and the waiting download runs.
    drop(stalled);
    let status = third.wait().unwrap();
    assert!(status.success(), "the third download finished once room was freed");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(home.join("store/b/backups/big/big.tar.gz")).unwrap());
}

#[test]
fn slow_and_silent_clients_hold_nothing_for_long_and_never_block_a_restart() {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = coffer_server(&data, &["--request-header-timeout", "1s", "--max-connections", "3", "--shutdown-grace", "2s"]);
    let authority = server.server.url.trim_start_matches("http://").to_owned();
    let closed_within = |mut conn: std::net::TcpStream, limit: Duration| {
        conn.set_read_timeout(Some(limit)).unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 256];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return started.elapsed(),
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => return started.elapsed(),
                Err(e) => panic!("the connection was still open after {limit:?}: {e}"),
            }
        }
    };

    // A client that sends half a request head and stops.
    let mut slow = std::net::TcpStream::connect(&authority).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    assert!(closed_within(slow, Duration::from_secs(5)) < Duration::from_secs(4));

    // Silent clients fill the connection cap; the next one is closed on arrival, and the cap
    // frees itself once the silent ones time out.
    let silent: Vec<std::net::TcpStream> = (0..3).map(|_| std::net::TcpStream::connect(&authority).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let extra = std::net::TcpStream::connect(&authority).unwrap();
    assert!(closed_within(extra, Duration::from_secs(2)) < Duration::from_secs(1), "over the cap: closed at once");
    for conn in silent {
        assert!(closed_within(conn, Duration::from_secs(5)) < Duration::from_secs(4));
    }
    let (status, _) = http("GET", &format!("{}/healthz", server.server.url), None, None);
    assert_eq!(status, 200);

    // SIGTERM with a client still connected: the server goes within its grace.
    let _lingering = std::net::TcpStream::connect(&authority).unwrap();
    assert!(server.server.terminate(Duration::from_secs(8)), "the server exited within its shutdown grace");
}

/// A server under `tmp` whose tenant runs one backup or restore at a time, with a provider
/// call deadline of `deadline` and the probe component installed (a location of it with
/// `onPut=spin` takes the deadline per upload), and a source `src` of one ConfigMap.
fn one_run_at_a_time(tmp: &std::path::Path, deadline: &str, args: &[&str]) -> Tenancy {
    let probe = tmp.join("probe.wasm");
    std::fs::write(&probe, crate::common::test_component("probe")).unwrap();
    let operator = Cli::new(&tmp.join("data"));
    operator.ok(&["plugin", "add", &s(&probe)]);
    operator.ok(&["tenant", "quota", "acme", "--call-deadline", deadline]);
    let tenancy = Tenancy::start(tmp, &[&["--tenant-concurrent-backups", "1"], args].concat());
    let src = dir(&tenancy.home, "src");
    std::fs::write(src.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n").unwrap();
    tenancy
}

#[test]
fn restores_whose_backup_goes_while_they_wait_their_turn_end_and_a_deleted_one_stays_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let Tenancy { cli, home, server: _server, .. } = one_run_at_a_time(tmp.path(), "10s", &["--backup-sync-period", "1s"]);
    let store = dir(&home, "store");
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    cli.ok(&["bsl", "create", "slow", "--provider", "coffer.test/probe", "--bucket", "b", "--config", "onPut=spin"]);
    for name in ["forgotten", "deleted"] {
        cli.ok(&["backup", "create", name, "--source", "src", "--wait"]);
    }
    // A run of about 10 s holds the tenant's one turn; both restores wait behind it.
    cli.ok(&["backup", "create", "slow", "--source", "src", "--storage-location", "slow"]);
    cli.ok(&["restore", "create", "r1", "--from-backup", "forgotten", "--target", "out1"]);
    cli.ok(&["restore", "create", "r2", "--from-backup", "deleted", "--target", "out2"]);
    // Meanwhile one backup's objects vanish from the bucket (the sync forgets it) and the
    // other is deleted, with its restores, as Velero deletes them.
    std::fs::remove_dir_all(store.join("b/backups/forgotten")).unwrap();
    cli.ok(&["backup", "delete", "deleted", "--confirm"]);
    eventually(Duration::from_secs(8), "the sync to forget the backup", || (!cli.run(&["backup", "get", "forgotten"]).ok).then_some(()));
    assert!(!cli.run(&["restore", "get", "r2"]).ok, "deleted with its backup");

    let r1 = eventually(Duration::from_secs(60), "the restore to end", || {
        let r = cli.json(&["restore", "get", "r1"]);
        (r["status"]["phase"] != "InProgress").then_some(r)
    });
    assert_eq!(r1["status"]["phase"], "Failed", "{r1}");
    let reason = r1["status"]["failureReason"].as_str().unwrap();
    assert!(reason.contains("backup") && reason.contains("forgotten") && reason.contains("not found"), "{reason}");
    assert!(cli.ok(&["restore", "logs", "r1"]).contains("forgotten"), "its log is kept");
    // Once the slow backup ended, both restores have had their turn: the deleted one is not
    // made again, and neither wrote anything.
    eventually(Duration::from_secs(60), "the slow backup to end", || (cli.json(&["backup", "get", "slow"])["status"]["phase"] != "InProgress").then_some(()));
    std::thread::sleep(Duration::from_secs(1));
    assert!(!cli.run(&["restore", "get", "r2"]).ok, "the deleted restore stays deleted");
    assert!(!home.join("out1").exists() && !home.join("out2").exists());
    assert!(!store.join("b/restores").exists(), "no restore files left in the location");
}

#[test]
fn a_tenants_runs_take_turns_within_its_share() {
    let tmp = tempfile::tempdir().unwrap();
    // Every upload of this tenant to `slow` spins until its 3 s call deadline: each run takes ~3 s.
    let Tenancy { cli, server: _server, .. } = one_run_at_a_time(tmp.path(), "3s", &[]);
    cli.ok(&["bsl", "create", "slow", "--provider", "coffer.test/probe", "--bucket", "b", "--config", "onPut=spin", "--default"]);
    cli.ok(&["backup", "create", "first", "--source", "src"]);
    cli.ok(&["backup", "create", "second", "--source", "src"]);
    std::thread::sleep(Duration::from_millis(1500));
    let (first, second) = (cli.json(&["backup", "get", "first"]), cli.json(&["backup", "get", "second"]));
    assert!(first["status"]["progress"].is_object(), "the first runs: {first}");
    assert!(second["status"]["progress"].is_null() && second["status"]["phase"] == "InProgress", "the second waits its turn: {second}");
    for name in ["first", "second"] {
        let done = eventually(Duration::from_secs(60), name, || {
            let b = cli.json(&["backup", "get", name]);
            (b["status"]["phase"] != "InProgress").then_some(b)
        });
        assert!(done["status"]["failureReason"].as_str().unwrap().contains("call deadline"), "{done}");
    }
}
