//! The host around the sandbox, attacked as a hostile provider or tenant would: paths built
//! from provider answers, paths swapped for symbolic links between check and use, oversized
//! documents in a bucket, components that never answer, host functions used to dodge the CPU
//! limit, huge error messages. Each attack is made, then the test checks that nothing outside
//! the allowed root changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coffer::backup::{self, Accepted, BackupRequest, RestoreRequest};
use coffer::coffer::Coffer;
use coffer::locations::{self, NewBackupStorageLocation, NewVolumeSnapshotLocation};
use coffer::model::{BackupSpec, Phase};
use coffer::sandbox::{ErrorKind, Limits, ObjectStoreHandle, grants_for};
use serde_json::json;

use crate::common::{Cli, dir, filesystem_bsl, grants, load, s, sandbox, tarball, test_component};

/// Every file, directory and link under `root` with its contents (links not followed).
pub fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if meta.is_symlink() {
                out.insert(rel, format!("-> {}", std::fs::read_link(&path).unwrap().display()));
            } else if meta.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &path, out);
            } else {
                out.insert(rel, String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// A shared host: tenants `acme` and `globex` under `<tmp>/tenants`, each with a filesystem
/// BSL in its own tree; globex has some files an attacker would like to reach.
struct Host {
    coffer: Coffer,
    tenants: PathBuf,
}

impl Host {
    async fn new(tmp: &Path) -> Host {
        let mut coffer = Coffer::open(&tmp.join("data"), Limits::default()).await.unwrap();
        let tenants = tmp.join("tenants");
        coffer.confine_tenants(&tenants).unwrap();
        let tenants = tenants.canonicalize().unwrap();
        for tenant in ["acme", "globex"] {
            let store = dir(&tenants.join(tenant), "store");
            locations::create_backup_storage_location(&coffer, tenant, filesystem_bsl("default", &store)).await.unwrap();
        }
        let secrets = dir(&tenants.join("globex"), "manifests");
        std::fs::write(secrets.join("secret.yaml"), "apiVersion: v1\nkind: Secret\nmetadata: {name: crown-jewels, namespace: globex}\n").unwrap();
        Host { coffer, tenants }
    }

    fn home(&self, tenant: &str) -> PathBuf {
        self.tenants.join(tenant)
    }

    /// acme's backup `name` of a source `src` holding a PV and a ConfigMap, completed.
    async fn acme_backup(&self, name: &str) {
        write_pv(&dir(&self.home("acme"), "src"));
        let done = backup::create_backup(&self.coffer, "acme", backup_request(name, "src"), &mut |_| {}).await.unwrap();
        assert_eq!(done.status.phase, Some(Phase::Completed));
    }
}

fn backup_request(name: &str, source: &str) -> BackupRequest {
    BackupRequest {
        name: name.into(),
        source: source.into(),
        spec: BackupSpec::default(),
        labels: BTreeMap::new(),
        default_snapshot_locations: BTreeMap::new(),
    }
}

fn restore_request(name: &str, backup: &str, target: &str) -> RestoreRequest {
    RestoreRequest::new(name, backup, target.into())
}

fn write_pv(source: &Path) {
    let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-a"}, "spec": {"hostPath": {"path": "/vol"}}});
    std::fs::write(source.join("pv.json"), pv.to_string()).unwrap();
    std::fs::write(source.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n").unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshotter_cannot_steer_restore_writes_outside_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::new(tmp.path()).await;
    let wasm = tmp.path().join("hostile.wasm");
    std::fs::write(&wasm, test_component("hostile_snapshotter")).unwrap();
    host.coffer.registry.add(&host.coffer.sandbox, &wasm, &host.coffer.state).await.unwrap();
    write_pv(&dir(&host.home("acme"), "src"));
    let globex_before = tree(&host.home("globex"));

    for (n, rewrite, expected) in [
        (1, "kind=../../../globex/escaped", "not a valid Kubernetes kind"),
        (2, "kind=Secret", "only the volume ID may change"),
        (3, "name=../../globex", "not a valid Kubernetes name"),
    ] {
        let vsl = NewVolumeSnapshotLocation {
            name: format!("hostile{n}"),
            provider: "coffer.test/hostile-snapshotter".into(),
            config: BTreeMap::from([("rewrite".into(), rewrite.into())]),
            ..Default::default()
        };
        locations::create_volume_snapshot_location(&host.coffer, "acme", vsl).await.unwrap();
        let mut request = backup_request(&format!("b{n}"), "src");
        request.spec.volume_snapshot_locations = vec![format!("hostile{n}")];
        let backup = backup::create_backup(&host.coffer, "acme", request, &mut |_| {}).await.unwrap();
        assert_eq!(backup.status.phase, Some(Phase::Completed), "{:?}", backup.status);

        let target = format!("out{n}");
        let restore = backup::create_restore(&host.coffer, "acme", restore_request(&format!("r{n}"), &format!("b{n}"), &target), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(restore.status.phase, Some(Phase::PartiallyFailed), "{rewrite}: {:?}", restore.status);
        let log = String::from_utf8(backup::restore_log(&host.coffer, "acme", &format!("r{n}")).await.unwrap()).unwrap();
        assert!(log.contains(expected), "{rewrite}: {log}");
        // The other object was restored; the PV was not, anywhere.
        let written = tree(&host.home("acme").join(&target));
        assert!(written.keys().any(|p| p.ends_with("c.json")), "{written:?}");
        assert!(!written.keys().any(|p| p.to_string_lossy().contains("persistentvolume")), "{written:?}");
    }
    assert_eq!(tree(&host.home("globex")), globex_before, "nothing appeared in or changed in another tenant's tree");
    assert!(!tmp.path().join("escaped").exists() && !host.tenants.join("escaped").exists());
}

/// A hostile snapshotter lent another location's snapshot directory for `copy-snapshot`
/// tries to plant, delete and rename there: the directory is mounted read-only, so nothing in
/// it changes, and its answer (a zone that looks like a path) is only ever recorded as text.
#[tokio::test(flavor = "multi_thread")]
async fn a_copying_snapshotter_cannot_change_the_source_location_it_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::new(tmp.path()).await;
    let wasm = tmp.path().join("hostile.wasm");
    std::fs::write(&wasm, test_component("hostile_snapshotter")).unwrap();
    host.coffer.registry.add(&host.coffer.sandbox, &wasm, &host.coffer.state).await.unwrap();
    write_pv(&dir(&host.home("acme"), "src"));
    let source = dir(&host.home("acme"), "snapshots-src");
    std::fs::write(dir(&source, "snap-1").join("data"), b"the source's snapshot").unwrap();
    let before = (tree(&source), tree(&host.home("globex")));
    for (name, snapshots) in [("src", "snapshots-src"), ("dst", "snapshots-dst")] {
        let vsl = NewVolumeSnapshotLocation {
            name: name.into(),
            provider: "coffer.test/hostile-snapshotter".into(),
            config: BTreeMap::from([("snapshotDir".into(), s(&dir(&host.home("acme"), snapshots)))]),
            ..Default::default()
        };
        locations::create_volume_snapshot_location(&host.coffer, "acme", vsl).await.unwrap();
    }
    let mut request = backup_request("b1", "src");
    request.spec.volume_snapshot_locations = vec!["src".into()];
    request.spec.copy_snapshots_to = vec!["dst".into()];
    let backup = backup::create_backup(&host.coffer, "acme", request, &mut |_| {}).await.unwrap();
    let log = String::from_utf8(backup::backup_log(&host.coffer, "acme", "b1").await.unwrap()).unwrap();
    assert_eq!(backup.status.phase, Some(Phase::Completed), "no attack worked: {log}");
    assert!(log.contains("copied to volume snapshot location dst: snap-copy"), "{log}");
    assert_eq!((tree(&source), tree(&host.home("globex"))), before, "nothing in the source or another tenant's tree changed");
    // The host still answers, and the hostile zone is text in a record, not a path.
    assert_eq!(backup::get_backup(&host.coffer, "acme", "b1").unwrap().status.phase, Some(Phase::Completed));
    assert!(!tmp.path().join("elsewhere").exists() && !host.tenants.join("elsewhere").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_swapped_for_links_between_check_and_use_lead_nowhere() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::new(tmp.path()).await;
    let acme = host.home("acme");
    host.acme_backup("good").await;
    let globex_before = tree(&host.home("globex"));
    let swap = |path: &Path, to: &Path| {
        std::fs::rename(path, path.with_extension("moved")).unwrap();
        std::os::unix::fs::symlink(to, path).unwrap();
    };

    // A backup source checked when accepted, then swapped for a link to another tenant's
    // manifests before it runs (as a schedule's stored source would be).
    let accepted = backup::accept_backup(&host.coffer, "acme", backup_request("stolen", "src")).unwrap();
    let Accepted::Started(started) = accepted else { panic!("accepted") };
    swap(&acme.join("src"), &host.home("globex").join("manifests"));
    let stolen = started.run(&host.coffer, &mut |_| {}).await.unwrap();
    assert_eq!(stolen.status.phase, Some(Phase::Failed), "{:?}", stolen.status);
    assert!(stolen.status.failure_reason.contains("outside"), "{}", stolen.status.failure_reason);
    assert!(!acme.join("store/b/backups/stolen").exists(), "no backup of another tenant's manifests");

    // A restore target checked when accepted, then swapped for a link into another tenant's tree.
    let Accepted::Started(started) = backup::accept_restore(&host.coffer, "acme", restore_request("r", "good", "out")).unwrap() else { panic!("accepted") };
    assert_eq!(started.restore().status.phase, Some(Phase::InProgress));
    std::os::unix::fs::symlink(host.home("globex"), acme.join("out")).unwrap();
    let restore = started.run(&host.coffer, &mut |_| {}).await.unwrap();
    assert_eq!(restore.status.phase, Some(Phase::Failed), "{:?}", restore.status);
    assert!(restore.status.failure_reason.contains("outside"), "{}", restore.status.failure_reason);

    // A link planted inside a fresh target (as a provider sharing the directory could) is not
    // followed out either: the target is written through its handle, beneath it.
    let Accepted::Started(started) = backup::accept_restore(&host.coffer, "acme", restore_request("r2", "good", "out2")).unwrap() else { panic!("accepted") };
    let out2 = dir(&acme, "out2");
    std::os::unix::fs::symlink("../../globex", out2.join("resources")).unwrap();
    let restore = started.run(&host.coffer, &mut |_| {}).await.unwrap();
    assert_eq!(restore.status.phase, Some(Phase::Failed), "a non-empty target is refused at use: {:?}", restore.status);
    assert_eq!(tree(&host.home("globex")), globex_before);

    // A target inside a location's directory (whose provider could rewrite what is restored).
    let restore = backup::create_restore(&host.coffer, "acme", restore_request("r3", "good", "store/restored"), &mut |_| {}).await.unwrap();
    assert_eq!(restore.status.phase, Some(Phase::Failed), "{:?}", restore.status);
    assert!(restore.status.failure_reason.contains("overlaps the directory") && restore.status.failure_reason.contains("backup-location \"default\""), "{}", restore.status.failure_reason);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_location_directory_is_mounted_from_the_handle_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::new(tmp.path()).await;
    let (acme, globex) = (host.home("acme"), host.home("globex"));
    let sb = sandbox(Limits::default());
    let fs = load(&sb, coffer::embedded::FILESYSTEM).await;
    let acme_tenant = host.coffer.tenant("acme").unwrap();
    let paths = acme_tenant.paths();
    let config = BTreeMap::from([("root".to_owned(), s(&acme.join("store")))]);
    let grants = grants_for("bsl acme", fs.manifest(), config, None, paths).unwrap();
    let globex_before = tree(&globex);

    // Between the check and every instantiation, the directory is exchanged for a link to the
    // other tenant's store: the instance still gets the directory that was checked.
    std::fs::rename(acme.join("store"), acme.join("checked")).unwrap();
    std::os::unix::fs::symlink(globex.join("store"), acme.join("store")).unwrap();
    let mut store = ObjectStoreHandle::new(&sb, &fs, grants).await.unwrap();
    for i in 0..30 {
        store.put_bytes("b", &format!("backups/x{i}/velero-backup.json"), b"{}".to_vec()).await.unwrap();
    }
    assert_eq!(std::fs::read_dir(acme.join("checked/b/backups")).unwrap().count(), 30);
    assert_eq!(tree(&globex), globex_before);

    // Named now, the link is refused: it leads out of acme's tree.
    let config = BTreeMap::from([("root".to_owned(), s(&acme.join("store")))]);
    let err = grants_for("bsl acme", fs.manifest(), config, None, paths).unwrap_err().to_string();
    assert!(err.contains("outside") && err.contains("\"root\""), "{err}");
    let config = BTreeMap::from([("root".to_owned(), s(&globex.join("store")))]);
    assert!(grants_for("bsl acme", fs.manifest(), config, None, paths).unwrap_err().to_string().contains("outside"));
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_in_a_bucket_are_read_within_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::new(tmp.path()).await;
    let acme = host.home("acme");
    host.acme_backup("b").await;
    let objects = acme.join("store/b/backups/b");

    // A log that inflates to 100 MiB (a gzip bomb of 100 KiB).
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut bomb, &vec![0u8; 100 << 20]).unwrap();
    std::fs::write(objects.join("b-logs.gz"), bomb.finish().unwrap()).unwrap();
    let err = backup::backup_log(&host.coffer, "acme", "b").await.unwrap_err().to_string();
    assert!(err.contains("b-logs.gz") && err.contains("inflates beyond 64 MiB"), "{err}");

    // Endless documents: a 64 GiB sparse resource list is refused after 16 MiB.
    let list = std::fs::File::create(objects.join("b-resource-list.json.gz")).unwrap();
    list.set_len(64 << 30).unwrap();
    let started = Instant::now();
    let err = backup::backup_details(&host.coffer, "acme", "b").await.unwrap_err().to_string();
    assert!(err.contains("b-resource-list.json.gz") && err.contains("larger than the 16777216 bytes"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "refused early, not after reading 64 GiB");

    // A tarball entry beyond 4 MiB, and one whose JSON would balloon in memory, are refused
    // before anything is written.
    let zeros = format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"z","namespace":"shop"}},"data":[{}0]}}"#, "0,".repeat(3 << 20));
    let tarball = tarball(&[
        ("metadata/version", b"1.1.0\n"),
        ("resources/configmaps/namespaces/shop/a.json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"shop"}}"#),
        ("resources/configmaps/namespaces/shop/z.json", zeros.as_bytes()),
    ]);
    std::fs::write(objects.join("b.tar.gz"), &tarball).unwrap();
    let restore = backup::create_restore(&host.coffer, "acme", restore_request("r", "b", "out"), &mut |_| {}).await.unwrap();
    assert_eq!(restore.status.phase, Some(Phase::Failed), "{:?}", restore.status);
    assert!(restore.status.failure_reason.contains("expands beyond 4194304 bytes"), "{}", restore.status.failure_reason);
    assert!(!acme.join("out/resources").exists(), "nothing written from a refused tarball");
}

#[tokio::test(flavor = "multi_thread")]
async fn host_computation_counts_against_the_cpu_limit_and_messages_are_bounded() {
    let limits = Limits { cpu_per_call: Duration::from_secs(1), ..Limits::default() };
    let sb = sandbox(limits);
    let probe = load(&sb, &test_component("probe")).await;
    let mut p = ObjectStoreHandle::new(&sb, &probe, grants("bsl digest", &probe, &[], None)).await.unwrap();
    let started = Instant::now();
    // 1,000 host digests of 64 MiB would take over a minute.
    let err = p.object_exists("b", "digest:1000").await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::CpuLimit(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "stopped near its 1 s limit, after {:?}", started.elapsed());

    let err = p.object_exists("b", "error:104857600").await.unwrap_err().to_string();
    assert!(err.len() < 5000 && err.ends_with("more bytes cut)"), "{} bytes", err.len());
    assert!(p.object_exists("b", "noop").await.unwrap(), "the instance still answers");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_that_never_describes_itself_is_refused_and_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mute = tmp.path().join("mute.wasm");
    std::fs::write(&mute, test_component("mute")).unwrap();
    let cli = Cli::new(&data);
    let started = Instant::now();
    let err = cli.fails(&["plugin", "add", &s(&mute)]);
    assert!(err.contains("did not describe itself within 10s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    // Dropped into the plugins directory by hand, it is skipped (and logged) at start.
    std::fs::create_dir_all(data.join("plugins")).unwrap();
    std::fs::copy(&mute, data.join("plugins/mute.wasm")).unwrap();
    let run = cli.run(&["plugin", "get"]);
    assert!(run.ok && run.stdout.contains("velero.io/filesystem") && !run.stdout.contains("mute"), "{run:?}");
}

#[tokio::test]
async fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut coffer = Coffer::open(&data, Limits::default()).await.unwrap();
    coffer.confine_tenants(&data.join("tenants")).unwrap();
    coffer.tenant("acme").unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("coffer.redb")), 0o600);
    assert_eq!(mode(&data.join("master.key")), 0o600);
    assert_eq!(mode(&data.join("tenants")), 0o700);
    assert_eq!(mode(&data.join("tenants/acme")), 0o700);
}

#[test]
fn a_backup_whose_command_was_killed_is_failed_by_the_next_command() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cli = Cli::new(&data);
    let probe = tmp.path().join("probe.wasm");
    std::fs::write(&probe, test_component("probe")).unwrap();
    cli.ok(&["plugin", "add", &s(&probe)]);
    // A store whose uploads spin for the whole CPU limit: the run is surely under way when killed.
    cli.ok(&["bsl", "create", "slow", "--provider", "coffer.test/probe", "--bucket", "b", "--config", "onPut=spin", "--default"]);
    let src = dir(tmp.path(), "src");
    write_pv(&src);
    let mut running = cli.command(&["backup", "create", "killed", "--source", &s(&src), "--wait"]).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    running.kill().unwrap();
    running.wait().unwrap();

    let backup = cli.json(&["backup", "get", "killed"]);
    assert_eq!(backup["status"]["phase"], "Failed", "{backup}");
    assert!(backup["status"]["failureReason"].as_str().unwrap().contains("the process running it ended before it finished"), "{backup}");
    cli.ok(&["backup", "delete", "killed", "--confirm"]);
    assert!(cli.fails(&["backup", "get", "killed"]).contains("not found"));
}

#[tokio::test(flavor = "multi_thread")]
async fn locations_may_share_a_directory_but_not_nest() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::new(tmp.path()).await;
    let acme = host.home("acme");
    let inner = dir(&acme, "store/b/volumes");
    let vsl = NewVolumeSnapshotLocation {
        name: "inside".into(),
        provider: "local".into(),
        config: BTreeMap::from([("volumeRoot".into(), s(&inner)), ("snapshotDir".into(), s(&dir(&acme, "snapshots")))]),
        ..Default::default()
    };
    let err = locations::create_volume_snapshot_location(&host.coffer, "acme", vsl).await.unwrap_err().to_string();
    assert!(err.contains("\"volumeRoot\"") && err.contains("nests with") && err.contains("backup-location \"default\""), "{err}");
    let outer = NewBackupStorageLocation {
        name: "outer".into(),
        provider: "filesystem".into(),
        bucket: "b".into(),
        config: BTreeMap::from([("root".into(), s(&acme))]),
        ..Default::default()
    };
    let err = locations::create_backup_storage_location(&host.coffer, "acme", outer).await.unwrap_err().to_string();
    assert!(err.contains("nests with"), "{err}");
    // The same directory, as several buckets share one server, is fine.
    let same = NewBackupStorageLocation {
        name: "same".into(),
        provider: "filesystem".into(),
        bucket: "other".into(),
        config: BTreeMap::from([("root".into(), s(&acme.join("store")))]),
        ..Default::default()
    };
    locations::create_backup_storage_location(&host.coffer, "acme", same).await.unwrap();
}
