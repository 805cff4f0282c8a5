//! File-system backup into restic repositories: what Coffer writes, the real `restic` checks
//! and restores byte for byte (on a filesystem location, and on S3 (moto) through restic's own
//! S3 backend); what Coffer writes it restores itself; unchanged data is not uploaded twice; a
//! wrong password is refused naming repository and secret; a tenth changed uploads about a
//! tenth; a file that changes while read is kept with a warning.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use coffer::coffer::Coffer;
use coffer::fsb::{DataCounter, REPO_CREDENTIALS, REPO_PASSWORD_KEY, VolumeRepository, repository_password};
use coffer::locations::{NewBackupStorageLocation, create_backup_storage_location};
use coffer::model::BackupStorageLocation;
use coffer::sandbox::Limits;
use coffer::secrets::{create_secret, set_secret};

use crate::common::{dir, filesystem_bsl, s};
use crate::servers::{moto, raw_http};

/// A volume with what a real one holds: nested directories, files of several sizes (some
/// compressible, one larger than a pack's chunk), an empty file, modes, a symbolic link
/// pointing outside the volume (kept as a link, never followed), and a pipe (skipped).
fn volume(root: &Path) -> PathBuf {
    let v = dir(root, "volume");
    std::fs::create_dir_all(v.join("db/wal")).unwrap();
    std::fs::write(v.join("db/table"), vec![b'a'; 300_000]).unwrap();
    let noise: Vec<u8> = (0..5_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(v.join("db/wal/000001.log"), &noise).unwrap();
    std::fs::write(v.join("empty"), b"").unwrap();
    std::fs::write(v.join("script.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(v.join("script.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::write(v.join("name with spaces & ünïcode"), b"odd names").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", v.join("link-out")).unwrap();
    let fifo = std::ffi::CString::new(v.join("pipe").as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    v
}

/// Every entry of `root`: path → kind, mode, content (or link target) and mtime.
fn tree(root: &Path) -> BTreeMap<String, (String, u32, Vec<u8>, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let (kind, content) = if meta.file_type().is_symlink() {
                ("link", std::fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes())
            } else if meta.is_dir() {
                stack.push(path.clone());
                ("dir", Vec::new())
            } else if meta.is_file() {
                ("file", std::fs::read(&path).unwrap())
            } else {
                ("special", Vec::new())
            };
            let mtime = if meta.is_dir() { 0 } else { meta.mtime() };
            out.insert(rel, (kind.to_owned(), meta.mode() & 0o7777, content, mtime));
        }
    }
    out
}

fn without_specials(mut t: BTreeMap<String, (String, u32, Vec<u8>, i64)>) -> BTreeMap<String, (String, u32, Vec<u8>, i64)> {
    t.retain(|_, (kind, ..)| kind != "special");
    t
}

/// Runs `restic ARGS` on `repository` with `password` (and `env`); returns stdout.
pub(crate) fn restic(repository: &str, password: &[u8], env: &[(&str, &str)], args: &[&str]) -> String {
    let out = Command::new("restic")
        .args(["--no-cache", "-r", repository])
        .args(args)
        .env("RESTIC_PASSWORD", String::from_utf8(password.to_vec()).unwrap())
        .envs(env.iter().copied())
        .output()
        .expect("restic is installed by scripts/setup");
    assert!(out.status.success(), "restic {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn location(coffer: &Coffer, new: NewBackupStorageLocation) -> BackupStorageLocation {
    create_backup_storage_location(coffer, "velero", new).await.unwrap()
}

/// Backs up `volume` twice (the second uploads almost nothing), then checks the repository
/// with restic, all data read, and restores it with restic and with Coffer.
async fn round_trip(coffer: &Coffer, bsl: &BackupStorageLocation, tmp: &Path, restic_repo: &str, restic_env: &[(&str, &str)]) {
    let volume = volume(tmp);
    let expected = without_specials(tree(&volume));
    let repo = VolumeRepository::new(coffer, bsl, "app").await.unwrap();
    let open = || Dir::open_ambient_dir(&volume, ambient_authority()).unwrap();
    let counter = DataCounter::new();
    let first = repo.backup(open(), "/data", &["backup=first".into()], &counter).await.unwrap();
    // Five files and the link; the pipe is skipped.
    assert_eq!((first.files, first.bytes, first.id.len()), (6, 5_300_000 + 18 + 9, 64), "{first:?}");
    assert_eq!((counter.done(), counter.total()), (first.bytes, first.bytes), "the progress counts every byte read, of the total counted first");
    assert!(first.warnings.iter().any(|w| w.contains("data/pipe") && w.contains("skipped")), "{:?}", first.warnings);
    assert!(first.uploaded > 300_000 && first.uploaded < 5_300_000, "compressed: {first:?}");

    // Unchanged data: the second backup uploads under 1% of the first.
    let second = repo.backup(open(), "/data", &["backup=second".into()], &DataCounter::new()).await.unwrap();
    assert!(second.uploaded * 100 < first.uploaded, "second upload {} vs first {}", second.uploaded, first.uploaded);

    // restic checks what Coffer wrote, and restores it byte for byte.
    let password = repository_password(coffer, "velero", "test").unwrap();
    let password = password.expose();
    let checked = restic(restic_repo, password, restic_env, &["check", "--read-data"]);
    assert!(checked.contains("no errors were found"), "{checked}");
    let listed = restic(restic_repo, password, restic_env, &["snapshots", "--json"]);
    assert!(listed.contains(&first.id) && listed.contains(&second.id), "{listed}");
    let by_restic = dir(tmp, "by-restic");
    restic(restic_repo, password, restic_env, &["restore", &first.id, "--target", &s(&by_restic)]);
    assert!(tree(&by_restic.join("data")) == expected, "restic's restore differs");

    // Coffer restores it too, into a directory of its own.
    let by_coffer = dir(tmp, "by-coffer");
    let target = Dir::open_ambient_dir(&by_coffer, ambient_authority()).unwrap();
    let counter = DataCounter::new();
    let restored = repo.restore(&second.id, target, &counter).await.unwrap();
    assert_eq!(restored.files, 5, "the regular files: {restored:?}");
    assert_eq!((counter.done(), counter.total()), (restored.bytes, restored.bytes), "{restored:?}");
    assert!(tree(&by_coffer) == expected, "Coffer's restore differs: {:?}", tree(&by_coffer).keys().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn restic_checks_and_restores_what_coffer_wrote_on_a_filesystem_location() {
    let tmp = tempfile::tempdir().unwrap();
    let coffer = Coffer::open(&tmp.path().join("data"), Limits::default()).await.unwrap();
    let store = dir(tmp.path(), "store");
    let bsl = location(&coffer, filesystem_bsl("default", &store)).await;
    let repository = s(&store.join("b/restic/app"));
    round_trip(&coffer, &bsl, tmp.path(), &repository, &[]).await;
    assert!(store.join("b/restic/app/config").is_file(), "Velero's layout: <prefix>/restic/<namespace>");
}

/// `len` bytes that do not compress, different for each `seed`.
fn incompressible(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_uploads_what_changed_and_warns_of_files_that_change_while_read() {
    let tmp = tempfile::tempdir().unwrap();
    let coffer = Coffer::open(&tmp.path().join("data"), Limits::default()).await.unwrap();
    let bsl = location(&coffer, filesystem_bsl("default", &dir(tmp.path(), "store"))).await;
    let volume = dir(tmp.path(), "volume");
    for i in 0..40 {
        std::fs::write(volume.join(format!("file-{i:02}")), incompressible(i, 250_000)).unwrap();
    }
    let repo = VolumeRepository::new(&coffer, &bsl, "app").await.unwrap();
    let open = || Dir::open_ambient_dir(&volume, ambient_authority()).unwrap();
    let first = repo.backup(open(), "/data", &[], &DataCounter::new()).await.unwrap();
    assert!(first.uploaded > 9_000_000, "{first:?}");

    // A tenth of the files change (and their sizes): about a tenth is uploaded.
    for i in 0..4 {
        std::fs::write(volume.join(format!("file-{i:02}")), incompressible(100 + i, 250_001)).unwrap();
    }
    let second = repo.backup(open(), "/data", &[], &DataCounter::new()).await.unwrap();
    let share = second.uploaded as f64 / first.uploaded as f64;
    assert!((0.08..0.13).contains(&share), "uploaded {share:.3} of the first backup: {second:?}");
    assert!(second.warnings.is_empty(), "{:?}", second.warnings);

    // A log appended to throughout the backup is kept as read, with a warning.
    std::fs::write(volume.join("growing.log"), incompressible(7, 20_000_000)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, path) = (stop.clone(), volume.join("growing.log"));
        std::thread::spawn(move || {
            let mut log = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::io::Write::write_all(&mut log, b"another line\n").unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let third = repo.backup(open(), "/data", &[], &DataCounter::new()).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let third = third.unwrap();
    assert!(third.warnings.iter().any(|w| w.contains("/data/growing.log: changed while it was read")), "{:?}", third.warnings);
    assert_eq!(third.warnings.len(), 1, "{:?}", third.warnings);
}

#[tokio::test(flavor = "multi_thread")]
async fn restic_checks_and_restores_what_coffer_wrote_on_s3() {
    let tmp = tempfile::tempdir().unwrap();
    let server = moto();
    assert!(raw_http(server.port, "PUT", "/velero").contains("200"), "bucket created");
    let coffer = Coffer::open(&tmp.path().join("data"), Limits::default()).await.unwrap();
    let credentials = b"[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n".to_vec();
    create_secret(&coffer, "velero", "cloud-credentials", vec![("cloud".into(), credentials)]).unwrap();
    let new = NewBackupStorageLocation {
        name: "s3".into(),
        provider: "aws".into(),
        bucket: "velero".into(),
        prefix: "cluster-1".into(),
        config: BTreeMap::from([("s3Url".into(), server.url.clone()), ("region".into(), "us-east-1".into())]),
        default: true,
        ..Default::default()
    };
    let bsl = location(&coffer, new).await;
    let repository = format!("s3:{}/velero/cluster-1/restic/app", server.url);
    let env = [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")];
    round_trip(&coffer, &bsl, tmp.path(), &repository, &env).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_users_own_password_is_used_and_a_wrong_one_names_repository_and_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let coffer = Coffer::open(&tmp.path().join("data"), Limits::default()).await.unwrap();
    create_secret(&coffer, "velero", REPO_CREDENTIALS, vec![(REPO_PASSWORD_KEY.into(), b"my own password".to_vec())]).unwrap();
    let store = dir(tmp.path(), "store");
    let bsl = location(&coffer, filesystem_bsl("default", &store)).await;
    let volume = dir(tmp.path(), "volume");
    std::fs::write(volume.join("f"), b"data").unwrap();
    let repo = VolumeRepository::new(&coffer, &bsl, "app").await.unwrap();
    let snap = repo.backup(Dir::open_ambient_dir(&volume, ambient_authority()).unwrap(), "/data", &[], &DataCounter::new()).await.unwrap();
    // restic opens it with the user's password.
    let listed = restic(&s(&store.join("b/restic/app")), b"my own password", &[], &["snapshots", "--json"]);
    assert!(listed.contains(&snap.id), "{listed}");

    // Opened again, with the key kept from the first opening (no key derivation).
    let again = VolumeRepository::new(&coffer, &bsl, "app").await.unwrap();
    again.backup(Dir::open_ambient_dir(&volume, ambient_authority()).unwrap(), "/data", &[], &DataCounter::new()).await.unwrap();

    // The secret changed under the repository: the kept key is not used, and the repository
    // is refused, naming both, the password not shown.
    set_secret(&coffer, "velero", REPO_CREDENTIALS, None, vec![(REPO_PASSWORD_KEY.into(), b"another password".to_vec())]).unwrap();
    let err = VolumeRepository::new(&coffer, &bsl, "app").await.err().unwrap().to_string();
    assert!(err.contains("b/restic/app") && err.contains("velero-repo-credentials") && err.contains("repository-password"), "{err}");
    assert!(err.contains("does not open the repository") && !err.contains("another password"), "{err}");
}

/// A namespace `app` with pod `web` mounting claims `data` and `logs`, each bound to a
/// hostPath persistent volume under `volumes`, and a pod annotated with `annotations`.
pub(crate) fn manifests(root: &Path, volumes: &Path, annotations: serde_json::Value) -> PathBuf {
    let m = dir(root, "manifests");
    let pv = |name: &str, dir: &str| serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "hostPath": {"path": s(&volumes.join(dir))}}});
    let pvc = |name: &str, pv: &str| serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": "app"},
        "spec": {"volumeName": pv}});
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "app", "annotations": annotations},
        "spec": {"volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "logs", "persistentVolumeClaim": {"claimName": "logs"}},
            {"name": "scratch", "emptyDir": {}},
        ]}});
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [pv("pv-data", "data"), pv("pv-logs", "logs"), pvc("data", "pv-data"), pvc("logs", "pv-logs"), pod]});
    std::fs::write(m.join("app.json"), list.to_string()).unwrap();
    m
}

#[test]
fn a_backup_reads_the_volumes_pods_opt_in_and_records_them_as_velero_does() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let cli = crate::common::Cli::new(&root.join("data"));
    let (store, volumes, snapshots) = (dir(root, "store"), dir(root, "volumes"), dir(root, "snapshots"));
    std::fs::write(dir(&volumes, "data").join("db"), vec![7u8; 100_000]).unwrap();
    std::fs::write(dir(&volumes, "logs").join("today.log"), b"log lines").unwrap();
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    // A snapshotter that claims both volumes: the one backed up from its files is not snapshotted.
    cli.ok(&["vsl", "create", "local", "--provider", "local", "--config", &format!("volumeRoot={},snapshotDir={}", s(&volumes), s(&snapshots))]);
    let source = manifests(root, &volumes, serde_json::json!({"backup.velero.io/backup-volumes": "data"}));
    let created = cli.run(&["backup", "create", "one", "--source", &s(&source), "--wait"]);
    assert!(created.ok, "{created:?}");
    // --wait shows the volume data's progress: bytes read, in all, and the rate.
    let shown = created.stderr.lines().find(|l| l.starts_with("backup volume data: 97.7 KiB of 97.7 KiB, ")).unwrap_or_else(|| panic!("{created:?}"));
    assert!(shown.ends_with(" MB/s"), "{shown}");
    let backup = cli.json(&["backup", "get", "one"]);
    assert!(backup["status"]["progress"].get("podVolumeData").is_none(), "only while it runs: {backup}");
    assert_eq!(backup["status"]["phase"], "Completed", "{backup}");
    assert_eq!(backup["status"]["volumeSnapshotsCompleted"], 1, "only logs is snapshotted: {backup}");

    // The records, in Velero's layout and shape.
    let gz = std::fs::read(store.join("b/backups/one/one-podvolumebackups.json.gz")).unwrap();
    let records: serde_json::Value = serde_json::from_reader(flate2::read::GzDecoder::new(&gz[..])).unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let pvb = &records[0];
    assert_eq!((pvb["apiVersion"].as_str(), pvb["kind"].as_str()), (Some("velero.io/v1"), Some("PodVolumeBackup")));
    assert_eq!(pvb["spec"]["pod"], serde_json::json!({"kind": "Pod", "namespace": "app", "name": "web"}));
    assert_eq!((pvb["spec"]["volume"].as_str(), pvb["spec"]["uploaderType"].as_str()), (Some("data"), Some("restic")));
    assert_eq!(pvb["spec"]["repoIdentifier"].as_str(), Some(s(&store.join("b/restic/app")).as_str()));
    assert_eq!((pvb["status"]["phase"].as_str(), pvb["status"]["progress"]["totalBytes"].as_u64()), (Some("Completed"), Some(100_000)));
    assert_eq!(pvb["metadata"]["labels"]["velero.io/backup-name"], "one");
    let snapshot = pvb["status"]["snapshotID"].as_str().unwrap().to_owned();

    // describe --details shows it; the log says the snapshot was skipped for file-system backup.
    let described = cli.ok(&["backup", "describe", "one", "--details"]);
    assert!(described.contains("Pod Volume Backups - restic:") && described.contains("app/web: data") && described.contains(&snapshot), "{described}");
    let log = cli.ok(&["backup", "logs", "one"]);
    assert!(log.contains("Skipping snapshot of persistent volume pv-data because volume is being backed up with file system backup"), "{log}");

    // A restore writes the volume's files under volumes/<namespace>/<claim>/ and records it.
    let target = root.join("restored");
    let restored = cli.run(&["restore", "create", "r1", "--from-backup", "one", "--target", &s(&target), "--wait"]);
    assert!(restored.stderr.contains("restore volume data: 97.7 KiB of 97.7 KiB, "), "{restored:?}");
    assert_eq!(cli.json(&["restore", "get", "r1"])["status"]["phase"], "Completed");
    assert_eq!(std::fs::read(target.join("volumes/app/data/db")).unwrap(), vec![7u8; 100_000]);
    assert!(!target.join("volumes/app/logs").exists(), "logs was snapshotted, not backed up from its files");
    let gz = std::fs::read(store.join("b/restores/r1/restore-r1-podvolumerestores.json.gz")).unwrap();
    let restores: serde_json::Value = serde_json::from_reader(flate2::read::GzDecoder::new(&gz[..])).unwrap();
    assert_eq!(restores[0]["kind"], "PodVolumeRestore");
    assert_eq!((restores[0]["spec"]["snapshotID"].as_str(), restores[0]["status"]["phase"].as_str()), (Some(snapshot.as_str()), Some("Completed")));
    let described = cli.ok(&["restore", "describe", "r1", "--details"]);
    assert!(described.contains("Pod Volume Restores - restic:") && described.contains("app/web: data") && described.contains(&snapshot), "{described}");
    assert!(described.contains("v1/Pod:\n    - app/web") && described.contains("Excluded:  nodes, events,"), "{described}");

    // Restore filters choose what is written, and a volume is restored only with its pod.
    let written = |target: &Path| -> Vec<String> {
        let mut files: Vec<String> = files_under(target).iter().map(|f| f.strip_prefix(target).unwrap().display().to_string()).collect();
        files.sort();
        files
    };
    let no_pods = root.join("no-pods");
    cli.ok(&["restore", "create", "r2", "--from-backup", "one", "--target", &s(&no_pods), "--exclude-resources", "pods", "--wait"]);
    assert_eq!(
        written(&no_pods),
        [
            "resources/persistentvolumeclaims/namespaces/app/data.json",
            "resources/persistentvolumeclaims/namespaces/app/logs.json",
            "resources/persistentvolumes/cluster/pv-data.json",
            "resources/persistentvolumes/cluster/pv-logs.json",
        ]
    );
    let other = root.join("other");
    cli.ok(&["restore", "create", "r3", "--from-backup", "one", "--target", &s(&other), "--include-namespaces", "other", "--wait"]);
    assert_eq!(written(&other), Vec::<String>::new(), "nothing of namespace app, nor the volumes its claims bind");
    assert_eq!(cli.json(&["restore", "get", "r3"])["status"]["progress"]["totalItems"], 0);
    let selected = root.join("selected");
    cli.ok(&["restore", "create", "r4", "--from-backup", "one", "--target", &s(&selected), "--include-namespaces", "app", "--include-resources", "pods,persistentvolumeclaims,persistentvolumes", "--wait"]);
    assert_eq!(written(&selected).len(), 6, "the pod, claims, the volumes they bind, and data's file: {:?}", written(&selected));
    let refused = cli.fails(&["restore", "create", "r5", "--from-backup", "one", "--target", &s(&root.join("r5")), "--include-resources", "nodes", "--wait"]);
    assert!(refused.contains("excludes list cannot contain an item in the includes list: nodes"), "{refused}");

    // Every volume by default, but what the pod opts out; the emptyDir is said and left out.
    let source = manifests(&dir(root, "second"), &volumes, serde_json::json!({"backup.velero.io/backup-volumes-excludes": "logs"}));
    cli.ok(&["backup", "create", "two", "--source", &s(&source), "--default-volumes-to-fs-backup", "--wait"]);
    let details = cli.ok(&["backup", "describe", "two", "--details"]);
    assert!(details.contains("app/web: data") && !details.contains("app/web: logs"), "{details}");
    let log = cli.ok(&["backup", "logs", "two"]);
    assert!(log.contains("volume scratch of pod app/web: not backed up: it is not a persistent volume claim"), "{log}");

    // Opting in a volume Coffer cannot read is an error, and the backup partially fails.
    let source = manifests(&dir(root, "third"), &volumes, serde_json::json!({"backup.velero.io/backup-volumes": "data,scratch"}));
    cli.ok(&["backup", "create", "three", "--source", &s(&source), "--wait"]);
    assert_eq!(cli.json(&["backup", "get", "three"])["status"]["phase"], "PartiallyFailed");
}

/// A CLI on a data directory under `root`, with a default filesystem location (bucket `b`)
/// in `root/store`, and a directory for volumes, `root/volumes`.
fn cli_with_location(root: &Path) -> (crate::common::Cli, PathBuf, PathBuf) {
    let cli = crate::common::Cli::new(&root.join("data"));
    let (store, volumes) = (dir(root, "store"), dir(root, "volumes"));
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    (cli, store, volumes)
}

/// The files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(files_under(&path)) } else { out.push(path) }
    }
    out
}

#[test]
fn a_missing_pack_fails_its_volume_naming_the_file_and_the_other_volumes_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (cli, store, volumes) = cli_with_location(root);
    std::fs::write(dir(&volumes, "data").join("db"), vec![7u8; 100_000]).unwrap();
    std::fs::write(dir(&volumes, "logs").join("today.log"), b"log lines").unwrap();
    // The first backup writes data's packs; the second adds only logs' and reuses data's.
    let source = manifests(root, &volumes, serde_json::json!({"backup.velero.io/backup-volumes": "data"}));
    cli.ok(&["backup", "create", "first", "--source", &s(&source), "--wait"]);
    let packs = files_under(&store.join("b/restic/app/data"));
    assert!(!packs.is_empty());
    let source = manifests(&dir(root, "both"), &volumes, serde_json::json!({"backup.velero.io/backup-volumes": "data,logs"}));
    cli.ok(&["backup", "create", "both", "--source", &s(&source), "--wait"]);
    assert_eq!(cli.json(&["backup", "get", "both"])["status"]["phase"], "Completed");

    // The bucket loses data's packs.
    for pack in &packs {
        std::fs::remove_file(pack).unwrap();
    }
    let target = root.join("restored");
    cli.ok(&["restore", "create", "r", "--from-backup", "both", "--target", &s(&target), "--wait"]);
    assert_eq!(cli.json(&["restore", "get", "r"])["status"]["phase"], "PartiallyFailed");
    assert_eq!(std::fs::read(target.join("volumes/app/logs/today.log")).unwrap(), b"log lines", "the other volume is restored");
    let log = cli.ok(&["restore", "logs", "r"]);
    let named = packs.iter().any(|p| log.contains(&p.strip_prefix(store.join("b")).unwrap().display().to_string()));
    assert!(log.contains("error restoring volume data of pod app/web") && named, "names a missing pack of {packs:?}: {log}");
}

/// The total size of the files under `dir`.
fn size_under(dir: &Path) -> u64 {
    files_under(dir).iter().map(|f| std::fs::metadata(f).unwrap().len()).sum()
}

#[test]
fn repositories_are_listed_opened_by_restic_with_their_password_forgotten_and_pruned() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (cli, store, volumes) = cli_with_location(root);
    let noise: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect();
    std::fs::write(dir(&volumes, "data").join("db"), &noise).unwrap();
    std::fs::write(dir(&volumes, "logs").join("today.log"), b"log lines").unwrap();
    let source = manifests(root, &volumes, serde_json::json!({"backup.velero.io/backup-volumes": "data"}));
    cli.ok(&["backup", "create", "old", "--source", &s(&source), "--wait"]);
    // The data changes entirely (and its size: a rewrite within the same timestamp tick is
    // otherwise taken as unchanged, as restic does): the second backup shares nothing.
    let changed: Vec<u8> = noise.iter().map(|b| b ^ 0x5a).chain([1]).collect();
    std::fs::write(volumes.join("data/db"), &changed).unwrap();
    cli.ok(&["backup", "create", "new", "--source", &s(&source), "--wait"]);

    // One record per location and namespace, Ready, naming the repository as restic does.
    let repository = s(&store.join("b/restic/app"));
    let listed = cli.json(&["repo", "get", "app-default-restic"]);
    assert_eq!((listed["kind"].as_str(), listed["status"]["phase"].as_str()), (Some("BackupRepository"), Some("Ready")), "{listed}");
    assert_eq!(listed["spec"]["resticIdentifier"].as_str(), Some(repository.as_str()));
    assert_eq!((listed["spec"]["volumeNamespace"].as_str(), listed["spec"]["repositoryType"].as_str()), (Some("app"), Some("restic")));
    assert!(cli.ok(&["repo", "get"]).contains("app-default-restic"));
    let err = cli.fails(&["repo", "password", "nope"]);
    assert!(err.contains("\"nope\"") && err.contains("not found"), "{err}");

    // The password, asked for, opens it with restic; the secret's value is shown nowhere else.
    let password = cli.ok(&["repo", "password", "app-default-restic"]).trim_end().to_owned();
    assert!(!cli.ok(&["secret", "get", "velero-repo-credentials"]).contains(&password));
    // The master key Coffer keeps unlocked is sealed in the state, as the password is.
    let master: serde_json::Value = serde_json::from_str(&restic(&repository, password.as_bytes(), &[], &["cat", "masterkey"])).unwrap();
    let state = std::fs::read(root.join("data/coffer.redb")).unwrap();
    for plain in [master["encrypt"].as_str().unwrap(), master["mac"]["k"].as_str().unwrap(), password.as_str()] {
        assert!(!state.windows(plain.len()).any(|w| w == plain.as_bytes()), "{plain} is in the state in the clear");
    }
    let snapshots = |password: &str| restic(&repository, password.as_bytes(), &[], &["snapshots", "--json"]);
    let both = snapshots(&password);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&both).unwrap().as_array().unwrap().len(), 2, "{both}");

    // Deleting a backup forgets its snapshot; maintenance marks its data for removal (rustic
    // removes marked data on a run at least 23 hours later, so that a backup running meanwhile
    // never loses data it reuses).
    cli.ok(&["backup", "delete", "old", "--confirm"]);
    let left = snapshots(&password);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&left).unwrap().as_array().unwrap().len(), 1, "{left}");
    let out = cli.ok(&["repo", "maintain", "app-default-restic"]);
    let marked: u64 = out.split("pruned: ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    // The old version compresses to a few hundred KB; how much depends on the repository's
    // random chunker polynomial.
    assert!(marked > 100_000, "the old data is marked: {out}");
    let maintained = cli.json(&["repo", "get", "app-default-restic"]);
    assert!(maintained["status"]["lastMaintenanceTime"].is_string(), "{maintained}");
    assert_eq!(maintained["status"]["recentMaintenance"][0]["result"], "Succeeded");
    let checked = restic(&repository, password.as_bytes(), &[], &["check", "--read-data"]);
    assert!(checked.contains("no errors were found"), "{checked}");

    // restic's own prune removes what Coffer marked, and leaves a repository Coffer still
    // restores from.
    let before = size_under(&store.join("b/restic/app/data"));
    restic(&repository, password.as_bytes(), &[], &["prune"]);
    let after = size_under(&store.join("b/restic/app/data"));
    assert!(after + marked / 2 < before, "restic removed the marked data: {before} -> {after}");
    let target = root.join("restored");
    cli.ok(&["restore", "create", "r", "--from-backup", "new", "--target", &s(&target), "--wait"]);
    assert_eq!(cli.json(&["restore", "get", "r"])["status"]["phase"], "Completed");
    assert!(std::fs::read(target.join("volumes/app/data/db")).unwrap() == changed);
}

#[test]
fn a_tenant_cannot_back_up_a_volume_outside_its_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let tenancy = crate::server_api::Tenancy::start(tmp.path(), &[]);
    let (cli, home) = (&tenancy.cli, &tenancy.home);
    // What the attacker wants: another tenant's volume, and the host's files.
    let victim = dir(&tmp.path().join("data/tenants"), "globex");
    std::fs::write(dir(&victim, "volume").join("secret"), b"globex's data").unwrap();
    let store = dir(home, "store");
    cli.ok(&["bsl", "create", "default", "--provider", "filesystem", "--bucket", "b", "--config", &format!("root={}", s(&store)), "--default"]);
    std::os::unix::fs::symlink(victim.join("volume"), home.join("planted")).unwrap();
    for (n, path) in [s(&victim.join("volume")), s(&home.join("planted")), s(&home.join("../globex/volume")), "/etc".to_owned()].iter().enumerate() {
        let source = dir(home, &format!("attack-{n}"));
        let pv = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"}, "spec": {"hostPath": {"path": path}}},
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "n"}, "spec": {"volumeName": "pv"}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n", "annotations": {"backup.velero.io/backup-volumes": "data"}},
             "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}},
        ]});
        std::fs::write(source.join("app.json"), pv.to_string()).unwrap();
        let name = format!("steal-{n}");
        cli.ok(&["backup", "create", &name, "--source", &s(&source), "--wait"]);
        assert_eq!(cli.json(&["backup", "get", &name])["status"]["phase"], "PartiallyFailed", "{path}");
        let log = cli.ok(&["backup", "logs", &name]);
        assert!(log.contains("volume data of pod n/p") && log.contains("outside"), "{path}: {log}");
    }
    // Nothing was read into the tenant's repository, the victim's files are as they were, and
    // the server still answers.
    assert!(files_under(&store.join("b/restic/n/snapshots")).is_empty(), "no snapshot was made");
    assert_eq!(std::fs::read(victim.join("volume/secret")).unwrap(), b"globex's data");
    assert!(cli.ok(&["backup", "get"]).contains("steal-0"));
}

/// The packs in a filesystem location's repository directory `data`: name → size.
fn packs_in(data: &Path) -> BTreeMap<String, u64> {
    files_under(data)
        .into_iter()
        .filter_map(|f| {
            let name = f.file_name()?.to_str()?.to_owned();
            (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())).then(|| (name, std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0)))
        })
        .collect()
}

#[test]
fn a_backup_killed_midway_leaves_a_repository_restic_checks_and_the_next_backup_reuses_its_packs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (cli, store, volumes) = cli_with_location(root);
    let data = dir(&volumes, "data");
    for i in 0..40 {
        std::fs::write(data.join(format!("file-{i:02}")), incompressible(i, 4_000_000)).unwrap();
    }
    let source = manifests(root, &volumes, serde_json::json!({"backup.velero.io/backup-volumes": "data"}));

    // kill -9 once the first packs are in the bucket, long before the backup could end.
    let mut running = cli.command(&["backup", "create", "killed", "--source", &s(&source), "--wait"]).spawn().unwrap();
    let packs = store.join("b/restic/app/data");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while packs_in(&packs).is_empty() {
        assert!(running.try_wait().unwrap().is_none(), "the backup ended before a pack was seen");
        assert!(std::time::Instant::now() < deadline, "no pack was uploaded");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    running.kill().unwrap(); // SIGKILL
    running.wait().unwrap();
    let orphans = packs_in(&packs);
    let orphaned: u64 = orphans.values().sum();

    // No half-visible backup: the backup is Failed, restic sees no snapshot, and the
    // repository passes restic's check (the packs no index lists are only a hint).
    assert_eq!(cli.json(&["backup", "get", "killed"])["status"]["phase"], "Failed");
    let repository = s(&store.join("b/restic/app"));
    let password = cli.ok(&["repo", "password", "app-default-restic"]).trim_end().to_owned();
    assert_eq!(restic(&repository, password.as_bytes(), &[], &["snapshots", "--json"]).trim(), "[]");
    restic(&repository, password.as_bytes(), &[], &["check"]);
    assert_eq!(cli.json(&["repo", "get", "app-default-restic"])["status"]["indexRepairDue"], true);

    // The next backup indexes what the killed one uploaded and uploads only the rest.
    cli.ok(&["backup", "create", "next", "--source", &s(&source), "--wait"]);
    assert_eq!(cli.json(&["backup", "get", "next"])["status"]["phase"], "Completed");
    let log = cli.ok(&["backup", "logs", "next"]);
    let uploaded: u64 = log
        .split(" uploaded): snapshot")
        .next()
        .and_then(|l| l.rsplit(", ").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{log}"));
    let total = 40 * 4_000_000u64;
    assert!(orphaned > 0 && uploaded + orphaned < total + 2_000_000, "uploaded {uploaded} again besides {orphaned} already there, of {total}: {log}");
    assert!(uploaded + orphaned > total, "nothing is missing: {uploaded} + {orphaned} of {total}");
    assert!(packs_in(&packs).keys().collect::<Vec<_>>().iter().filter(|p| orphans.contains_key(p.as_str())).count() == orphans.len(), "the packs stay");
    assert!(cli.json(&["repo", "get", "app-default-restic"])["status"].get("indexRepairDue").is_none());

    // restic finds every pack indexed and every byte intact, and restores the volume.
    let checked = restic(&repository, password.as_bytes(), &[], &["check", "--read-data"]);
    assert!(checked.contains("no errors were found") && !checked.contains("not referenced in any index"), "{checked}");
    let by_restic = dir(root, "by-restic");
    restic(&repository, password.as_bytes(), &[], &["restore", "latest", "--target", &s(&by_restic)]);
    assert!(tree(&by_restic.join("app/data")) == tree(&data), "restic's restore differs");
}
