//! Backups and restores on the embedded providers: selection rules, layout, tarball,
//! round trip, ReadOnly, deletion and hostile tarballs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use coffer::backup::{self, BackupRequest, RestoreRequest, read_manifests};
use coffer::coffer::Coffer;
use coffer::locations::{self, NewBackupStorageLocation, NewVolumeSnapshotLocation};
use coffer::model::{AccessMode, Backup, BackupSpec, BackupStorageLocation, Phase, ResourceFilters, Restore};
use coffer::sandbox::Limits;
use serde_json::json;

use crate::common::{dir, s};

struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    coffer: Coffer,
}

impl World {
    async fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        for d in ["store", "volumes", "snapshots", "snapshots2", "source"] {
            dir(&root, d);
        }
        let coffer = Coffer::open(&root.join("data"), Limits::default()).await.unwrap();
        World { _tmp: tmp, root, coffer }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }

    async fn bsl(&self, name: &str, default: bool, access_mode: AccessMode) {
        let new = NewBackupStorageLocation {
            name: name.into(),
            provider: "filesystem".into(),
            bucket: "bucket".into(),
            prefix: "velero".into(),
            config: BTreeMap::from([("root".into(), s(&self.path("store")))]),
            default,
            access_mode,
            ..Default::default()
        };
        locations::create_backup_storage_location(&self.coffer, "velero", new).await.unwrap();
    }

    async fn vsl(&self, name: &str, snapshots: &str) {
        let config = BTreeMap::from([
            ("volumeRoot".into(), s(&self.path("volumes"))),
            ("snapshotDir".into(), s(&self.path(snapshots))),
        ]);
        let new = NewVolumeSnapshotLocation { name: name.into(), provider: "local".into(), config, ..Default::default() };
        locations::create_volume_snapshot_location(&self.coffer, "velero", new).await.unwrap();
    }

    /// Writes manifests and a directory volume `data-1` with files.
    fn source(&self) {
        let data = dir(&self.path("volumes"), "data-1");
        std::fs::write(data.join("file.txt"), b"volume content").unwrap();
        let pv_path = s(&data);
        std::fs::write(
            self.path("source/app.yaml"),
            format!(
                r#"apiVersion: v1
kind: Namespace
metadata: {{name: shop}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: shop, labels: {{app: web}}}}
spec: {{replicas: 2}}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {{name: cfg, namespace: shop, labels: {{app: web}}}}
  data: {{a: "1"}}
- apiVersion: v1
  kind: PersistentVolume
  metadata: {{name: pv-1}}
  spec: {{capacity: {{storage: 1Gi}}, hostPath: {{path: {pv_path}}}}}
- apiVersion: v1
  kind: PersistentVolume
  metadata: {{name: pv-outside}}
  spec: {{capacity: {{storage: 1Gi}}, hostPath: {{path: /elsewhere/vol}}}}
"#
            ),
        )
        .unwrap();
        std::fs::write(
            self.path("source/other.json"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ops"}, "data": {"k": "dg=="}}).to_string(),
        )
        .unwrap();
    }

    async fn backup_with(&self, name: &str, spec: BackupSpec, defaults: &[(&str, &str)]) -> Backup {
        let request = BackupRequest {
            name: name.into(),
            source: self.path("source"),
            spec,
            labels: BTreeMap::new(),
            default_snapshot_locations: defaults.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        backup::create_backup(&self.coffer, "velero", request, &mut |_| {}).await.unwrap()
    }

    async fn backup(&self, name: &str) -> Backup {
        self.backup_with(name, BackupSpec::default(), &[]).await
    }

    async fn restore(&self, name: &str, backup: &str, target: &Path) -> Restore {
        let request = RestoreRequest::new(name, backup, target.to_path_buf());
        backup::create_restore(&self.coffer, "velero", request, &mut |_| {}).await.unwrap()
    }

    fn backup_dir(&self, name: &str) -> PathBuf {
        self.path("store/bucket/velero/backups").join(name)
    }
}

fn validation_errors(b: &Backup) -> Vec<String> {
    assert_eq!(b.status.phase, Some(Phase::FailedValidation), "{b:?}");
    b.status.validation_errors.clone()
}

#[tokio::test]
async fn storage_location_rules() {
    let w = World::new().await;
    w.source();
    let errors = validation_errors(&w.backup("b1").await);
    assert_eq!(errors, ["an existing backup storage location was not specified at backup creation time and the server default default does not exist. Please address this issue (see `coffer backup-location -h` for options) and create a new backup. Error: backupstoragelocations.velero.io \"default\" not found"]);
    let spec = BackupSpec { storage_location: "nope".into(), ..Default::default() };
    let errors = validation_errors(&w.backup_with("b2", spec, &[]).await);
    assert_eq!(errors, ["an existing backup storage location was not specified at backup creation time and the default nope was not found. Please address this issue (see `coffer backup-location -h` for options) and create a new backup. Error: backupstoragelocations.velero.io \"nope\" not found"]);
    w.bsl("ro", false, AccessMode::ReadOnly).await;
    let spec = BackupSpec { storage_location: "ro".into(), ..Default::default() };
    let errors = validation_errors(&w.backup_with("b3", spec, &[]).await);
    assert_eq!(errors, ["backup can't be created because backup storage location ro is currently in read-only mode"]);
    assert!(!w.backup_dir("b3").exists(), "nothing is uploaded for a refused backup");
    // Without a name, the location marked default is used.
    w.bsl("main", true, AccessMode::ReadWrite).await;
    let b = w.backup("b4").await;
    assert_eq!(b.status.phase, Some(Phase::Completed), "{b:?}");
    assert_eq!(b.spec.storage_location, "main");
    assert_eq!(b.metadata.meta.labels["velero.io/storage-location"], "main");
    let err = backup::create_backup(&w.coffer, "velero", BackupRequest { name: "b4".into(), source: w.path("source"), spec: BackupSpec::default(), labels: BTreeMap::new(), default_snapshot_locations: BTreeMap::new() }, &mut |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"b4\" already exists"), "{err}");
}

#[tokio::test]
async fn unavailable_location_is_refused() {
    let w = World::new().await;
    w.source();
    w.bsl("main", true, AccessMode::ReadWrite).await;
    std::fs::create_dir_all(w.path("store/bucket/velero/junk")).unwrap();
    std::fs::write(w.path("store/bucket/velero/junk/x"), b"x").unwrap();
    let bsl = locations::get_backup_storage_locations(&w.coffer, "velero", &[], false).unwrap();
    locations::refresh_backup_storage_locations(&w.coffer, bsl, true).await.unwrap();
    let errors = validation_errors(&w.backup("b1").await);
    assert_eq!(errors, ["backup can't be created because BackupStorageLocation main is in Unavailable status."]);
}

#[tokio::test]
async fn snapshot_location_rules() {
    let w = World::new().await;
    w.source();
    w.bsl("main", true, AccessMode::ReadWrite).await;
    // One location for the provider: used without being named.
    w.vsl("one", "snapshots").await;
    let b = w.backup("auto").await;
    assert_eq!(b.status.phase, Some(Phase::Completed), "{b:?}");
    assert_eq!(b.spec.volume_snapshot_locations, ["one"]);
    assert_eq!((b.status.volume_snapshots_attempted, b.status.volume_snapshots_completed), (1, 1));

    let named = |names: &[&str]| BackupSpec { volume_snapshot_locations: names.iter().map(|n| n.to_string()).collect(), ..Default::default() };
    let errors = validation_errors(&w.backup_with("missing", named(&["ghost"]), &[]).await);
    assert_eq!(errors, ["a VolumeSnapshotLocation CRD for the location ghost with the name specified in the backup spec needs to be created before this snapshot can be executed. Error: volumesnapshotlocations.velero.io \"ghost\" not found"]);

    w.vsl("two", "snapshots2").await;
    let errors = validation_errors(&w.backup_with("both", named(&["one", "two"]), &[]).await);
    assert_eq!(errors, ["more than one VolumeSnapshotLocation name specified for provider local: two; unexpected name was one"]);
    let errors = validation_errors(&w.backup("ambiguous").await);
    assert_eq!(errors, ["provider local has more than one possible volume snapshot location, and none were specified explicitly or as a default"]);
    // Also with --snapshot-volumes=false, as Velero since 1.14.
    let off = BackupSpec { snapshot_volumes: Some(false), ..Default::default() };
    assert_eq!(validation_errors(&w.backup_with("off", off, &[]).await).len(), 1);
    let errors = validation_errors(&w.backup_with("baddefault", BackupSpec::default(), &[("local", "three")]).await);
    assert_eq!(errors, ["error getting volume snapshot location named three: volumesnapshotlocations.velero.io \"three\" not found"]);

    let b = w.backup_with("bydefault", BackupSpec::default(), &[("local", "two")]).await;
    assert_eq!(b.spec.volume_snapshot_locations, ["two"]);
    assert_eq!(b.status.phase, Some(Phase::Completed));
    let b = w.backup_with("explicit", named(&["one"]), &[("local", "two")]).await;
    assert_eq!(b.spec.volume_snapshot_locations, ["one"], "a named location beats the server default");
}

#[tokio::test]
async fn layout_tarball_and_unclaimed_volumes() {
    let w = World::new().await;
    w.source();
    w.bsl("main", true, AccessMode::ReadWrite).await;
    w.vsl("local", "snapshots").await;
    let b = w.backup("b1").await;
    assert_eq!(b.status.phase, Some(Phase::Completed), "{b:?}");
    let mut keys: Vec<String> = std::fs::read_dir(w.backup_dir("b1")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    keys.sort();
    let stored = ["b1-logs.gz", "b1-podvolumebackups.json.gz", "b1-resource-list.json.gz", "b1-results.gz", "b1-volumesnapshots.json.gz", "b1.tar.gz", "velero-backup.json"];
    assert_eq!(keys, stored);
    let tarball = std::fs::File::open(w.backup_dir("b1").join("b1.tar.gz")).unwrap();
    let mut paths: Vec<String> = tar::Archive::new(flate2::read::GzDecoder::new(tarball))
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    paths.sort();
    let expected = [
        "metadata/version",
        "resources/configmaps/namespaces/shop/cfg.json",
        "resources/configmaps/v1-preferredversion/namespaces/shop/cfg.json",
        "resources/deployments.apps/namespaces/shop/web.json",
        "resources/deployments.apps/v1-preferredversion/namespaces/shop/web.json",
        "resources/namespaces/cluster/shop.json",
        "resources/namespaces/v1-preferredversion/cluster/shop.json",
        "resources/persistentvolumes/cluster/pv-1.json",
        "resources/persistentvolumes/cluster/pv-outside.json",
        "resources/persistentvolumes/v1-preferredversion/cluster/pv-1.json",
        "resources/persistentvolumes/v1-preferredversion/cluster/pv-outside.json",
        "resources/secrets/namespaces/ops/s.json",
        "resources/secrets/v1-preferredversion/namespaces/ops/s.json",
    ];
    assert_eq!(paths, expected);
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(w.backup_dir("b1").join("velero-backup.json")).unwrap()).unwrap();
    assert_eq!(meta["status"]["formatVersion"], "1.1.0");
    assert_eq!(meta["status"]["phase"], "Completed");
    assert_eq!(meta["status"]["progress"]["totalItems"], 6);
    let log = backup_log(&w, "b1");
    assert!(log.contains("pv-outside is not a candidate for a snapshot: no applicable volumesnapshotter found"), "{log}");
    // Filters.
    let filters = ResourceFilters {
        included_namespaces: vec!["shop".into()],
        label_selector: Some(backup::parse_selector("app=web").unwrap()),
        ..Default::default()
    };
    let spec = BackupSpec { filters, ..Default::default() };
    let b = w.backup_with("filtered", spec, &[]).await;
    assert_eq!(b.status.progress.unwrap().total_items, 3, "namespace shop, its labelled items");
}

fn backup_log(w: &World, name: &str) -> String {
    use std::io::Read;
    let gz = std::fs::read(w.backup_dir(name).join(format!("{name}-logs.gz"))).unwrap();
    let mut out = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut out).unwrap();
    out
}

/// Validates `doc` against Velero's CRD `crd` (in tests/crds) with tests/tools/validate_crd.py.
fn crd_check(crd: &str, doc: &Path) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join("target/test-venv/bin/python3");
    assert!(python.exists(), "{} is missing: run scripts/setup", python.display());
    std::process::Command::new(&python)
        .arg(root.join("tests/tools/validate_crd.py"))
        .arg(root.join("tests/crds").join(crd))
        .arg(doc)
        .output()
        .unwrap()
}

#[tokio::test]
async fn documents_validate_against_velero_crds() {
    let w = World::new().await;
    w.source();
    w.bsl("main", true, AccessMode::ReadWrite).await;
    w.vsl("local", "snapshots").await;
    w.backup("b1").await;
    let doc = w.backup_dir("b1").join("velero-backup.json");
    let out = crd_check("velero.io_backups.yaml", &doc);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // The check can fail: a wrong phase is refused.
    let mut bad: serde_json::Value = serde_json::from_slice(&std::fs::read(&doc).unwrap()).unwrap();
    bad["status"]["phase"] = json!("Done");
    let bad_path = w.path("bad.json");
    std::fs::write(&bad_path, bad.to_string()).unwrap();
    assert!(!crd_check("velero.io_backups.yaml", &bad_path).status.success());
    // Locations as Coffer stores and prints them.
    let bsl = locations::get_backup_storage_locations(&w.coffer, "velero", &["main".into()], false).unwrap().remove(0);
    let vsl = locations::get_volume_snapshot_locations(&w.coffer, "velero", &["local".into()]).unwrap().remove(0);
    for (crd, value) in [
        ("velero.io_backupstoragelocations.yaml", serde_json::to_vec(&bsl).unwrap()),
        ("velero.io_volumesnapshotlocations.yaml", serde_json::to_vec(&vsl).unwrap()),
    ] {
        let path = w.path("location.json");
        std::fs::write(&path, value).unwrap();
        let out = crd_check(crd, &path);
        assert!(out.status.success(), "{crd}: {}", String::from_utf8_lossy(&out.stdout));
    }
}

/// Objects as read back from a directory, by `Kind ns/name`, PV paths dropped.
fn objects(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    let open = coffer::confine::PathRoot::Anywhere.open_dir("restored", dir).unwrap();
    read_manifests(&open, dir)
        .unwrap()
        .into_iter()
        .map(|mut i| {
            if let Some(spec) = i.object.get_mut("spec").and_then(|s| s.get_mut("hostPath")) {
                spec["path"] = json!("<volume>");
            }
            (format!("{} {}", i.kind, i.qualified_name()), i.object)
        })
        .collect()
}

#[tokio::test]
async fn backup_then_restore_round_trips() {
    let w = World::new().await;
    w.source();
    w.bsl("main", true, AccessMode::ReadWrite).await;
    w.vsl("local", "snapshots").await;
    w.backup("b1").await;
    std::fs::write(w.path("volumes/data-1/file.txt"), b"changed after the backup").unwrap();
    let target = w.path("restored");
    let r = w.restore("r1", "b1", &target).await;
    assert_eq!(r.status.phase, Some(Phase::Completed), "{r:?}");
    assert_eq!(objects(&target), objects(&w.path("source")));
    let pv: serde_json::Value = serde_json::from_slice(&std::fs::read(target.join("resources/persistentvolumes/cluster/pv-1.json")).unwrap()).unwrap();
    let new_volume = PathBuf::from(pv["spec"]["hostPath"]["path"].as_str().unwrap());
    assert_ne!(new_volume, w.path("volumes/data-1"), "the PV points at the recreated volume");
    assert_eq!(std::fs::read(new_volume.join("file.txt")).unwrap(), b"volume content");
    assert!(w.path("store/bucket/velero/restores/r1/restore-r1-logs.gz").exists());
    assert!(w.path("store/bucket/velero/restores/r1/restore-r1-results.gz").exists());
    // A second restore into the same directory is refused before touching it.
    let r = w.restore("r2", "b1", &target).await;
    assert_eq!(r.status.phase, Some(Phase::FailedValidation));
    assert!(r.status.validation_errors[0].contains("is not empty"), "{r:?}");
}

#[tokio::test]
async fn delete_removes_objects_snapshots_and_restores_but_not_on_read_only() {
    let w = World::new().await;
    w.source();
    w.bsl("main", true, AccessMode::ReadWrite).await;
    w.vsl("local", "snapshots").await;
    w.backup("b1").await;
    w.restore("r1", "b1", &w.path("restored")).await;
    let snapshot_count = || std::fs::read_dir(w.path("snapshots")).unwrap().count();
    assert_eq!(snapshot_count(), 1);
    // ReadOnly: refused.
    let mut bsl = locations::get_backup_storage_locations(&w.coffer, "velero", &["main".into()], false).unwrap().remove(0);
    bsl.spec.access_mode = AccessMode::ReadOnly;
    w.coffer.state.write(|t| t.put::<BackupStorageLocation>(&mut bsl)).unwrap();
    let err = backup::delete_backup(&w.coffer, "velero", "b1").await.unwrap_err();
    assert_eq!(err.to_string(), "cannot delete backup because backup storage location main is currently in read-only mode");
    assert!(w.backup_dir("b1").join("velero-backup.json").exists());
    bsl.spec.access_mode = AccessMode::ReadWrite;
    w.coffer.state.write(|t| t.put::<BackupStorageLocation>(&mut bsl)).unwrap();
    backup::delete_backup(&w.coffer, "velero", "b1").await.unwrap();
    assert!(!w.backup_dir("b1").exists());
    assert!(!w.path("store/bucket/velero/restores/r1").exists());
    assert_eq!(snapshot_count(), 0, "the snapshot was deleted through its location");
    assert!(backup::list_backups(&w.coffer, "velero").unwrap().is_empty());
    assert!(backup::list_restores(&w.coffer, "velero").unwrap().is_empty());
}

/// A tar header with a raw, unchecked path.
fn raw_entry(path: &str, kind: tar::EntryType, body: &[u8], link: Option<&str>) -> (tar::Header, Vec<u8>) {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    if let Some(link) = link {
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(body.len() as u64);
    header.set_cksum();
    (header, body.to_vec())
}

fn tarball(entries: Vec<(tar::Header, Vec<u8>)>) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let (h, b) = raw_entry("metadata/version", tar::EntryType::Regular, b"1.1.0\n", None);
    builder.append(&h, &b[..]).unwrap();
    for (h, b) in entries {
        builder.append(&h, &b[..]).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[tokio::test]
async fn hostile_tarballs_are_refused_and_nothing_is_written() {
    let w = World::new().await;
    w.source();
    w.bsl("main", true, AccessMode::ReadWrite).await;
    w.vsl("local", "snapshots").await;
    w.backup("b1").await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "evil", "namespace": "shop"}}).to_string();
    let regular = tar::EntryType::Regular;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("traversal", tarball(vec![raw_entry("resources/../../../escape.json", regular, cm.as_bytes(), None)]), "unsafe path"),
        ("absolute", tarball(vec![raw_entry("/tmp/coffer-escape.json", regular, cm.as_bytes(), None)]), "unsafe path"),
        ("symlink", tarball(vec![raw_entry("resources/configmaps/namespaces/shop/evil.json", tar::EntryType::Symlink, b"", Some("/etc/passwd"))]), "of type Symlink"),
        ("hardlink", tarball(vec![raw_entry("resources/x", tar::EntryType::Link, b"", Some("/etc/passwd"))]), "of type Link"),
        ("bomb", tarball(vec![raw_entry("resources/configmaps/namespaces/shop/big.json", regular, &vec![b' '; 20 << 20], None)]), "expands beyond"),
        ("misplaced", tarball(vec![raw_entry("resources/configmaps/namespaces/other/x.json", regular, cm.as_bytes(), None)]), "belongs elsewhere"),
        ("corrupt", b"\x1f\x8b\x08\x00 this is not gzip".to_vec(), "corrupt"),
        ("truncated", tarball(vec![raw_entry("resources/configmaps/namespaces/shop/evil.json", regular, cm.as_bytes(), None)])[..40].to_vec(), "corrupt"),
    ];
    let tarball_path = w.backup_dir("b1").join("b1.tar.gz");
    for (i, (case, bytes, expected)) in cases.into_iter().enumerate() {
        std::fs::write(&tarball_path, &bytes).unwrap();
        let target = w.path(&format!("targets/{case}"));
        let r = w.restore(&format!("hostile-{i}"), "b1", &target).await;
        assert_eq!(r.status.phase, Some(Phase::Failed), "{case}: {r:?}");
        assert!(r.status.failure_reason.contains(expected), "{case}: {}", r.status.failure_reason);
        let written = if target.exists() { std::fs::read_dir(&target).unwrap().count() } else { 0 };
        assert_eq!(written, 0, "{case}: nothing is written into the target");
    }
    assert!(!w.path("escape.json").exists() && !w.root.join("../escape.json").exists());
    assert!(!Path::new("/tmp/coffer-escape.json").exists());
}

#[tokio::test]
async fn a_failed_volume_snapshot_makes_the_backup_partially_failed() {
    let w = World::new().await;
    w.source();
    w.bsl("main", true, AccessMode::ReadWrite).await;
    w.vsl("local", "snapshots").await;
    // Claimed by the local provider (inside volumeRoot) but not there.
    let missing = s(&w.path("volumes/gone"));
    std::fs::write(
        w.path("source/broken.json"),
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-gone"}, "spec": {"hostPath": {"path": missing}}}).to_string(),
    )
    .unwrap();
    let b = w.backup("b1").await;
    assert_eq!(b.status.phase, Some(Phase::PartiallyFailed), "{b:?}");
    assert_eq!(b.status.errors, 1);
    assert_eq!((b.status.volume_snapshots_attempted, b.status.volume_snapshots_completed), (2, 1));
    let log = backup_log(&w, "b1");
    assert!(log.contains("level=error") && log.contains("error getting volume info") && log.contains("volume \\\"gone\\\""), "{log}");
    let tarball = std::fs::File::open(w.backup_dir("b1").join("b1.tar.gz")).unwrap();
    let contents = backup::read_tarball(tarball, backup::Limits::default()).unwrap();
    assert!(contents.items.iter().all(|i| i.name != "pv-gone"), "a PV whose snapshot failed is left out, as in Velero");
    assert!(contents.items.iter().any(|i| i.name == "pv-1"));
}
