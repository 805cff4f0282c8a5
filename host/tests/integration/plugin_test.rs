//! `coffer plugin test` and `coffer plugin new`, from the command line: the contract's checks
//! on component files, against real services, and a new provider crate built and tested.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use coffer::conformance::{OBJECT_STORE_CHECKS, VOLUME_SNAPSHOTTER_CHECKS};
use serde_json::Value;

use crate::common::{Cli, Run, dir, files, s};
use crate::ebs::{boto3, create_volume, pv};
use crate::servers::{moto, moto_tls, s3s_fs, venv_bin};

const AWS_CREDENTIALS: &str = "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n";

/// Where the components are built: the first-party providers and the test components.
fn components() -> &'static Path {
    Path::new(env!("COFFER_TEST_COMPONENTS_DIR"))
}

fn wasm(name: &str) -> String {
    s(&components().join(format!("{name}.wasm")))
}

/// `coffer plugin test ARGS -o json`: whether it passed, and the report.
fn plugin_test(cli: &Cli, args: &[&str]) -> (Run, Value) {
    let mut all = vec!["plugin", "test"];
    all.extend(args);
    all.extend(["-o", "json"]);
    let run = cli.run(&all);
    let report = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {} {}", run.stdout, run.stderr));
    (run, report)
}

/// The names of the checks of `report` whose result is `result`.
fn named(report: &Value, result: &str) -> Vec<String> {
    report["checks"].as_array().unwrap().iter().filter(|c| c["result"] == result).map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

/// What the check `name` got, where it failed.
fn got(report: &Value, name: &str) -> String {
    let check = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
    check["got"].as_str().unwrap_or_default().to_owned()
}

fn all_names(report: &Value) -> Vec<String> {
    report["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn the_filesystem_provider_passes_prints_a_line_per_check_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let root = dir(tmp.path(), "root");
    std::fs::create_dir_all(root.join("b/mine")).unwrap();
    std::fs::write(root.join("b/mine/keep.txt"), "the user's own object").unwrap();
    let cli = Cli::new(&tmp.path().join("never-created"));
    let config = format!("root={}", s(&root));
    let base = ["plugin", "test", &wasm("coffer_provider_filesystem"), "--config", &config, "--bucket", "b"];

    // A line per check, in the suite's order, then a summary; exit status 0.
    let out = cli.ok(&[&base[..], &["--prefix", "run"]].concat());
    let lines: Vec<&str> = out.lines().collect();
    for (line, name) in lines.iter().zip(OBJECT_STORE_CHECKS) {
        let word = line.split_whitespace().nth(1);
        assert_eq!(word, Some(*name), "{out}");
    }
    assert!(lines.iter().filter(|l| l.starts_with("ok ")).count() == OBJECT_STORE_CHECKS.len() - 2, "{out}");
    assert!(out.contains("skip  signed-url-expires"), "{out}");
    assert!(lines.last().unwrap().starts_with("velero.io/filesystem: 25 ok, 0 failed, 2 skipped (ObjectStore, contract 0.3.0)"), "{out}");
    assert_eq!(files(&root), BTreeMap::from([("b/mine/keep.txt".to_owned(), b"the user's own object".to_vec())]), "nothing left behind");
    assert!(!tmp.path().join("never-created").exists(), "plugin test needs no data directory");

    // The same as a JSON report, with a 1 GiB round trip through a host that holds little of it.
    let mut args = base.to_vec();
    args.extend(["--prefix", "run", "--large", "-o", "json"]);
    let (out, peak) = peak_memory(cli.command(&args));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(peak < 256 << 20, "the host peaked at {} MiB moving 1 GiB", peak >> 20);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all_names(&report), OBJECT_STORE_CHECKS);
    assert_eq!(report["summary"], serde_json::json!({"ok": 26, "failed": 0, "skipped": 1}));
    assert_eq!((report["provider"].as_str(), report["kind"].as_str()), (Some("velero.io/filesystem"), Some("ObjectStore")));

    // A prefix that holds objects is refused, naming it; with --force the run goes ahead and
    // deletes only its own objects.
    let err = cli.fails(&[&base[..], &["--prefix", "/mine/"]].concat());
    assert!(err.contains("prefix \"mine\" already holds 1 object(s) (first: \"mine/keep.txt\")") && err.contains("--force"), "{err}");
    cli.ok(&[&base[..], &["--prefix", "mine", "--force"]].concat());
    assert_eq!(files(&root), BTreeMap::from([("b/mine/keep.txt".to_owned(), b"the user's own object".to_vec())]));

    // A component built against contract 0.1.0 passes; the checks of calls it lacks are skipped.
    let older = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/filesystem-contract-0.1.0.wasm");
    let (run, report) = plugin_test(&cli, &[&s(&older), "--config", &config, "--bucket", "b", "--prefix", "older"]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(report["contract"], "0.1.0");
    assert_eq!(named(&report, "skip"), ["missing-object-range", "round-trip-1GiB", "ranged-reads", "signed-url-expires"]);

    // An object store needs a bucket; a missing file is named.
    let err = cli.fails(&base[..5]);
    assert!(err.contains("is an object store: give the --bucket"), "{err}");
    let err = cli.fails(&["plugin", "test", "/nonexistent/x.wasm", "--bucket", "b"]);
    assert!(err.contains("/nonexistent/x.wasm"), "{err}");
}

/// Runs `command` to its end; its output and the peak resident memory seen (`VmHWM`, read
/// every 20 ms while it runs).
fn peak_memory(mut command: std::process::Command) -> (std::process::Output, u64) {
    let child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    while let Ok(text) = std::fs::read_to_string(&status) {
        let Some(kib) = text.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok()) else {
            break; // exited: a zombie has no memory figures
        };
        peak = peak.max(kib << 10);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), peak)
}

#[test]
fn the_aws_provider_passes_on_s3s_fs_and_over_tls_on_moto_with_the_given_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(&tmp.path().join("data"));
    let credentials = tmp.path().join("credentials");
    std::fs::write(&credentials, AWS_CREDENTIALS).unwrap();
    let aws = wasm("coffer_provider_aws");

    // s3s-fs checks every signature, a signed URL's expiry included.
    let s3s = s3s_fs(&dir(tmp.path(), "s3s"), &["velero"]);
    let config = format!("s3Url={},region=us-east-1", s3s.url);
    let (run, report) = plugin_test(&cli, &[&aws, "--config", &config, "--bucket", "velero", "--credential-file", &s(&credentials)]);
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert_eq!(named(&report, "skip"), ["round-trip-1GiB"]);

    // Over TLS, trusting the test CA given with --cacert; without it, the calls fail on the
    // certificate, naming it.
    let certs = tmp.path().join("certs");
    let server = moto_tls(&certs);
    let ca = certs.join("ca.pem");
    boto3_s3(&server.url, &ca, "s3.create_bucket(Bucket='velero')");
    let config = format!("s3Url={},region=us-east-1", server.url);
    let args = [aws.as_str(), "--config", &config, "--bucket", "velero", "--credential-file", &s(&credentials)];
    let (run, report) = plugin_test(&cli, &[&args[..], &["--cacert", &s(&ca)]].concat());
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert_eq!(named(&report, "skip"), ["round-trip-1GiB", "signed-url-expires"], "moto checks no signed URL");
    let (run, report) = plugin_test(&cli, &args);
    assert!(!run.ok);
    assert!(got(&report, "missing-object-exists").contains("certificate"), "{report:#}");
}

/// Runs boto3 `code` with `s3` a client of the S3 server at `url` trusting `ca`.
fn boto3_s3(url: &str, ca: &Path, code: &str) {
    let script = format!(
        "import boto3\ns3 = boto3.client('s3', endpoint_url='{url}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing', verify='{}')\n{code}",
        ca.display()
    );
    let out = std::process::Command::new(venv_bin().join("python3")).args(["-c", &script]).env_remove("AWS_CA_BUNDLE").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_local_and_ebs_snapshotters_pass_and_delete_their_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(&tmp.path().join("data"));

    let volumes = dir(tmp.path(), "volumes");
    let snapshots = dir(tmp.path(), "snapshots");
    std::fs::create_dir_all(volumes.join("vol1")).unwrap();
    std::fs::write(volumes.join("vol1/data.txt"), "volume data").unwrap();
    let pv_file = tmp.path().join("pv.json");
    let host_path = serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "p"}, "spec": {"hostPath": {"path": s(&volumes.join("vol1"))}}});
    std::fs::write(&pv_file, host_path.to_string()).unwrap();
    let config = format!("volumeRoot={},snapshotDir={}", s(&volumes), s(&snapshots));
    let (run, report) = plugin_test(&cli, &[&wasm("coffer_provider_local"), "--config", &config, "--volume-id", "vol1", "--pv", &s(&pv_file)]);
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert_eq!(all_names(&report), VOLUME_SNAPSHOTTER_CHECKS);
    assert!(named(&report, "skip").is_empty(), "{report:#}");
    assert!(files(&snapshots).is_empty(), "the snapshot was deleted");
    let note = report["notes"][0].as_str().unwrap();
    let created = note.split('"').nth(1).unwrap();
    assert!(note.contains("left for you to delete"), "{note}");
    assert_eq!(std::fs::read_to_string(volumes.join(created).join("data.txt")).unwrap(), "volume data", "the volume made from the snapshot");
    let note = report["notes"][1].as_str().unwrap();
    assert!(note.contains("from the copy"), "{note}");
    let created = note.split('"').nth(1).unwrap();
    assert_eq!(std::fs::read_to_string(volumes.join(created).join("data.txt")).unwrap(), "volume data", "the volume made from the copy");

    let server = moto();
    let volume = create_volume(&server);
    let credentials = tmp.path().join("credentials");
    std::fs::write(&credentials, AWS_CREDENTIALS).unwrap();
    std::fs::write(&pv_file, pv(&volume).to_string()).unwrap();
    let config = format!("region=us-east-1,ec2Url={}", server.url);
    let args = [&wasm("coffer_provider_aws_ebs"), "--config", &config, "--credential-file", &s(&credentials)];
    let (run, report) = plugin_test(&cli, &[&args[..], &["--volume-id", &volume, "--volume-az", "us-east-1a", "--pv", &s(&pv_file)]].concat());
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert!(named(&report, "skip").is_empty(), "{report:#}");
    assert_eq!(boto3(&server, "print(len(ec2.describe_snapshots(OwnerIds=['self'])['Snapshots']))"), "0", "the snapshot was deleted");

    // Without a volume, the round trips are skipped, saying what would let them run.
    let (run, report) = plugin_test(&cli, &args);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(named(&report, "skip"), ["volume-id-round-trip", "volume-info", "snapshot-round-trip", "delete-missing-snapshot", "snapshot-copy"]);
}

#[test]
fn broken_components_fail_by_the_name_of_the_check_they_break() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(&tmp.path().join("data"));
    let flawed = wasm("coffer_test_flawed_store");
    let round_trips = ["round-trip-1-byte", "round-trip-8MiB-minus-1", "round-trip-8MiB", "round-trip-8MiB-plus-1"];
    let cases: [(&str, &[&str], &str); 4] = [
        ("lie-length", &round_trips, "reported 2 bytes but 1 crossed the stream"),
        ("list-outside", &["list-objects"], "outside the prefix"),
        ("torn-put", &["atomic-replace"], "a reader saw "),
        ("other-for-missing", &["missing-object-get", "missing-object-range"], "other: no such file"),
    ];
    for (flaw, breaks, provider_said) in cases {
        let root = dir(tmp.path(), flaw);
        let config = format!("root={},flaw={flaw}", s(&root));
        let (run, report) = plugin_test(&cli, &[&flawed, "--config", &config, "--bucket", "b", "--prefix", "p"]);
        assert!(!run.ok, "{flaw}: {report:#}");
        let failed = named(&report, "fail");
        for name in breaks {
            assert!(failed.contains(&name.to_string()), "{flaw} should fail {name}: {failed:?}");
        }
        assert!(got(&report, breaks[0]).contains(provider_said), "{flaw}: {}", got(&report, breaks[0]));
        assert!(run.stderr.contains(&format!("check(s) failed: {}", failed.join(", "))), "{}", run.stderr);
        for passes in ["describe-stable", "grants", "init", "missing-object-exists", "round-trip-0-bytes"] {
            assert!(named(&report, "ok").contains(&passes.to_string()), "{flaw}: {passes} should pass: {report:#}");
        }
    }
    // The one flaw fails exactly its own check.
    let root = dir(tmp.path(), "torn-only");
    let (_, report) = plugin_test(&cli, &[&flawed, "--config", &format!("root={},flaw=torn-put", s(&root)), "--bucket", "b"]);
    assert_eq!(named(&report, "fail"), ["atomic-replace"]);

    // A call that hangs is stopped at the deadline, and the check says so; the run goes on.
    let root = dir(tmp.path(), "hangs");
    let config = format!("root={},flaw=hang-on-missing", s(&root));
    let (_, report) = plugin_test(&cli, &[&flawed, "--config", &config, "--bucket", "b", "--call-deadline", "2s"]);
    assert_eq!(named(&report, "fail"), ["missing-object-get", "missing-object-range", "delete-object", "calls-within-deadline"]);
    assert!(got(&report, "missing-object-get").contains("call deadline of 2s"), "{report:#}");
    assert_eq!(got(&report, "calls-within-deadline"), "the sandbox stopped a call during missing-object-get, missing-object-range, delete-object");

    // A snapshotter that claims every volume.
    let (run, report) = plugin_test(&cli, &[&wasm("coffer_test_hostile_snapshotter")]);
    assert!(!run.ok);
    assert_eq!(named(&report, "fail"), ["foreign-volume-ids"]);
    assert!(got(&report, "foreign-volume-ids").contains("some("), "{report:#}");
}

/// Builds the crate in `dir` for wasm32-wasip2, sharing the components' target directory
/// (and their lock file, so that its dependencies are the ones already built).
fn build_crate(dir: &Path) -> PathBuf {
    let providers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../providers");
    std::fs::copy(providers.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target_dir = components().parent().and_then(Path::parent).unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["build", "--release"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "the new crate builds without warnings: {stderr}");
    target_dir.join("wasm32-wasip2/release")
}

#[test]
fn a_new_provider_crate_builds_and_fails_every_unwritten_call_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(&tmp.path().join("data"));

    let store = tmp.path().join("conformance-template-store");
    let out = cli.ok(&["plugin", "new", "conformance-template-store", "--kind", "object-store", "--dir", &s(&store)]);
    assert!(out.contains("README.md"), "{out}");
    let readme = std::fs::read_to_string(store.join("README.md")).unwrap();
    assert!(readme.contains("coffer plugin test target/wasm32-wasip2/release/conformance_template_store.wasm --bucket"), "{readme}");
    let built = build_crate(&store);
    let file = s(&built.join("conformance_template_store.wasm"));
    let (run, report) = plugin_test(&cli, &[&file, "--bucket", "b"]);
    assert!(!run.ok);
    assert_eq!(report["provider"], "example.com/conformance-template-store");
    let ok = ["describe-stable", "grants", "manifest-coherent", "init", "calls-within-deadline"];
    assert_eq!(named(&report, "ok"), ok);
    assert_eq!(named(&report, "skip"), ["round-trip-1GiB", "signed-url-expires"]);
    let failed = named(&report, "fail");
    assert_eq!(failed.len(), OBJECT_STORE_CHECKS.len() - ok.len() - 2);
    for name in &failed {
        assert!(got(&report, name).contains("unsupported: ") && got(&report, name).contains("is not written yet"), "{name}: {report:#}");
    }
    assert!(got(&report, "missing-object-get").contains("get-object is not written yet"), "{report:#}");

    let snapshotter = tmp.path().join("conformance-template-snapshotter");
    cli.ok(&["plugin", "new", "conformance-template-snapshotter", "--kind", "volume-snapshotter", "--dir", &s(&snapshotter)]);
    let built = build_crate(&snapshotter);
    let pv_file = tmp.path().join("pv.json");
    std::fs::write(&pv_file, r#"{"apiVersion":"v1","kind":"PersistentVolume","spec":{"hostPath":{"path":"/x"}}}"#).unwrap();
    let file = s(&built.join("conformance_template_snapshotter.wasm"));
    let (run, report) = plugin_test(&cli, &[&file, "--volume-id", "vol-1", "--pv", &s(&pv_file)]);
    assert!(!run.ok);
    assert_eq!(named(&report, "fail"), ["foreign-volume-ids", "volume-id-round-trip", "volume-info"]);
    assert!(got(&report, "volume-info").contains("unsupported: get-volume-info is not written yet"), "{report:#}");

    // An existing directory is never written into; a name that cannot be a crate's is named.
    let before = files(&store);
    let err = cli.fails(&["plugin", "new", "other", "--kind", "object-store", "--dir", &s(&store)]);
    assert!(err.contains(&s(&store)) && err.contains("exists"), "{err}");
    assert_eq!(files(&store), before);
    let err = cli.fails(&["plugin", "new", "Bad Name", "--kind", "object-store", "--dir", &s(&tmp.path().join("bad"))]);
    assert!(err.contains("\"Bad Name\""), "{err}");
}
