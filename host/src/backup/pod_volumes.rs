//! File-system backup of pod volumes (Velero's pod volume backup): which volumes of the pods
//! being backed up are read (Velero's annotations and `defaultVolumesToFsBackup`), where their
//! data is (pod volume → PersistentVolumeClaim → PersistentVolume → its `hostPath` or `local`
//! directory, inside the tenant's tree on a shared host), and the `PodVolumeBackup` records.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::item::Item;
use super::run_log::{RunLog, Scope};
use crate::coffer::Coffer;
use crate::confine::PathRoot;
use crate::fsb::{DataCounter, LocationRepositories, restic_identifier};
use crate::model::{API_VERSION, Backup, BackupStorageLocation, DataProgress, ObjectMeta, now};

/// The pod annotation that opts volumes in: `a,b`.
pub const VOLUMES_TO_BACKUP: &str = "backup.velero.io/backup-volumes";
/// The pod annotation that opts volumes out when every volume is backed up by default.
pub const VOLUMES_TO_EXCLUDE: &str = "backup.velero.io/backup-volumes-excludes";

/// Velero's `GetVolumesByPod`: the names of `pod`'s volumes to back up.
fn chosen_volumes(pod: &Value, default_to_fs: bool) -> Vec<String> {
    let annotation = |key: &str| -> Vec<String> {
        let value = pod.pointer("/metadata/annotations").and_then(|a| a.get(key)).and_then(Value::as_str).unwrap_or_default();
        value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned).collect()
    };
    if !default_to_fs {
        return annotation(VOLUMES_TO_BACKUP);
    }
    let excluded = annotation(VOLUMES_TO_EXCLUDE);
    let volumes = pod.pointer("/spec/volumes").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    volumes
        .iter()
        // Volumes whose data comes from the cluster's state, or that no node agent can reach.
        .filter(|v| !["hostPath", "secret", "configMap", "projected", "downwardAPI"].iter().any(|k| v.get(*k).is_some()))
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .filter(|name| !excluded.iter().any(|e| e == name) && !name.starts_with("default-token"))
        .map(str::to_owned)
        .collect()
}

/// A pod volume whose data a backup reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodVolume {
    /// The pod's namespace: the repository's.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The volume's name in the pod.
    pub volume: String,
    /// The claim it mounts.
    pub claim: String,
    /// The persistent volume bound to the claim.
    pub persistent_volume: String,
    /// The directory the persistent volume names.
    pub path: String,
}

/// Every volume of `pods` to back up, resolved through `all` (claims and persistent volumes
/// by name, whether or not the backup includes them). A volume opted in that cannot be read
/// is an error in `log`; one chosen by default that cannot be read is left out, said in `log`.
pub fn select(pods: &[&Item], all: &[Item], default_to_fs: bool, log: &mut RunLog) -> Vec<PodVolume> {
    let find = |kind: &str, namespace: Option<&str>, name: &str| {
        all.iter().find(|i| i.kind == kind && i.name == name && i.namespace.as_deref() == namespace)
    };
    let mut out = Vec::new();
    for pod in pods.iter().filter(|i| i.kind == "Pod") {
        let namespace = pod.namespace.clone().unwrap_or_default();
        for volume in chosen_volumes(&pod.object, default_to_fs) {
            let spec = pod.object.pointer("/spec/volumes").and_then(Value::as_array).into_iter().flatten().find(|v| v.get("name").and_then(Value::as_str) == Some(&volume));
            let claim = spec.and_then(|v| v.pointer("/persistentVolumeClaim/claimName")).and_then(Value::as_str);
            let bound = claim.and_then(|c| find("PersistentVolumeClaim", Some(&namespace), c)).and_then(|c| c.object.pointer("/spec/volumeName")?.as_str());
            let pv = bound.and_then(|name| find("PersistentVolume", None, name));
            let path = pv.and_then(|pv| ["/spec/hostPath/path", "/spec/local/path"].iter().find_map(|p| pv.object.pointer(p)?.as_str()));
            let (Some(claim), Some(pv), Some(path)) = (claim, pv, path) else {
                let why = match (spec, claim, bound, pv) {
                    (None, ..) => "the pod has no such volume".to_owned(),
                    (_, None, ..) => "it is not a persistent volume claim".to_owned(),
                    (_, Some(c), None, _) => format!("claim {c} is not among the manifests or not bound"),
                    (_, _, Some(b), None) => format!("persistent volume {b} is not among the manifests"),
                    _ => format!("persistent volume {} names no hostPath or local directory", bound.unwrap_or_default()),
                };
                let message = format!("volume {volume} of pod {namespace}/{}: not backed up: {why}", pod.name);
                if default_to_fs {
                    log.info(&message);
                } else {
                    log.error(Scope::Namespace(&namespace), message);
                }
                continue;
            };
            out.push(PodVolume {
                namespace: namespace.clone(),
                pod: pod.name.clone(),
                volume,
                claim: claim.to_owned(),
                persistent_volume: pv.name.clone(),
                path: path.to_owned(),
            });
        }
    }
    out
}

/// A reference to the pod of a pod volume backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PodReference {
    /// `Pod`.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// What a pod volume backup reads and where it writes (Velero's `PodVolumeBackupSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeBackupSpec {
    /// The node the pod runs on (Coffer reads the volume itself: empty).
    #[serde(default)]
    pub node: String,
    /// The pod.
    pub pod: PodReference,
    /// The volume's name in the pod.
    pub volume: String,
    /// The backup storage location holding the repository.
    pub backup_storage_location: String,
    /// The repository, as `restic -r` takes it.
    pub repo_identifier: String,
    /// `restic`.
    pub uploader_type: String,
    /// The snapshot's tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// How a pod volume backup went (Velero's `PodVolumeBackupStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeBackupStatus {
    /// `New`, `InProgress`, `Completed` or `Failed`.
    pub phase: String,
    /// The directory read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// The restic snapshot (full ID).
    #[serde(default, rename = "snapshotID", skip_serializing_if = "String::is_empty")]
    pub snapshot_id: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When it started.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<OffsetDateTime>,
    /// When it ended.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<OffsetDateTime>,
    /// Bytes.
    #[serde(default)]
    pub progress: DataProgress,
}

/// One pod volume's file-system backup (velero.io/v1 `PodVolumeBackup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeBackup {
    /// `velero.io/v1`.
    pub api_version: String,
    /// `PodVolumeBackup`.
    pub kind: String,
    /// `<backup>-<random>`, labelled with the backup.
    pub metadata: ObjectMeta,
    /// What.
    pub spec: PodVolumeBackupSpec,
    /// How it went.
    pub status: PodVolumeBackupStatus,
}

/// A record's name as Kubernetes' `generateName` makes one: `prefix`, `-`, five random hex
/// characters.
pub(super) fn generated_name(prefix: &str) -> String {
    format!("{prefix}-{:05x}", rand::random::<u32>() & 0xf_ffff)
}

/// How often a run reports the bytes of its pod volumes while they move.
const DATA_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The bytes of a run's pod volumes, reported as they move: the volumes done so far, plus the
/// one under way.
pub(super) struct DataReport<'a> {
    done: DataProgress,
    report: &'a mut (dyn FnMut(DataProgress) + Send),
}

impl<'a> DataReport<'a> {
    /// Reports to `report`.
    pub(super) fn new(report: &'a mut (dyn FnMut(DataProgress) + Send)) -> Self {
        DataReport { done: DataProgress::default(), report }
    }

    fn with(&self, counter: &DataCounter) -> DataProgress {
        let bytes_done = self.done.bytes_done + counter.done();
        // A volume that grew while it was read has done more than was counted.
        let total_bytes = (self.done.total_bytes + counter.total()).max(bytes_done);
        DataProgress { total_bytes, bytes_done }
    }

    /// Runs `work` on one volume, whose bytes go to `counter`: reported every
    /// [`DATA_REPORT_INTERVAL`] and at its end.
    pub(super) async fn volume<T>(&mut self, counter: &DataCounter, work: impl std::future::Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        let mut tick = tokio::time::interval(DATA_REPORT_INTERVAL);
        let out = loop {
            tokio::select! {
                out = &mut work => break out,
                _ = tick.tick() => {
                    let now = self.with(counter);
                    (self.report)(now);
                }
            }
        };
        self.done = self.with(counter);
        (self.report)(self.done);
        out
    }
}

/// Backs up `volumes` into their namespaces' repositories in `bsl`, each directory opened
/// through `paths`, their bytes told to `report` as they are read. A volume that fails is a
/// `Failed` record and an error in `log`; the others go on.
pub async fn back_up(
    coffer: &Coffer,
    backup: &Backup,
    bsl: &BackupStorageLocation,
    volumes: Vec<PodVolume>,
    paths: &PathRoot,
    log: &mut RunLog,
    report: &mut (dyn FnMut(DataProgress) + Send),
) -> Vec<PodVolumeBackup> {
    let name = &backup.metadata.meta.name;
    let mut repositories = LocationRepositories::new(coffer, bsl);
    let mut records = Vec::with_capacity(volumes.len());
    let mut data = DataReport::new(report);
    for v in volumes {
        let tags = BTreeMap::from([
            ("backup".to_owned(), name.clone()),
            ("ns".to_owned(), v.namespace.clone()),
            ("pod".to_owned(), v.pod.clone()),
            ("pvc".to_owned(), v.claim.clone()),
            ("volume".to_owned(), v.volume.clone()),
        ]);
        let mut meta = ObjectMeta::new(&backup.metadata.meta.namespace, &generated_name(name));
        meta.labels.insert("velero.io/backup-name".into(), name.clone());
        meta.labels.insert("velero.io/pvc-name".into(), v.claim.clone());
        let mut record = PodVolumeBackup {
            api_version: API_VERSION.into(),
            kind: "PodVolumeBackup".into(),
            metadata: meta,
            spec: PodVolumeBackupSpec {
                node: String::new(),
                pod: PodReference { kind: "Pod".into(), namespace: v.namespace.clone(), name: v.pod.clone() },
                volume: v.volume.clone(),
                backup_storage_location: bsl.metadata.name.clone(),
                repo_identifier: restic_identifier(bsl, &v.namespace),
                uploader_type: "restic".into(),
                tags: tags.clone(),
            },
            status: PodVolumeBackupStatus { phase: "InProgress".into(), path: v.path.clone(), start_timestamp: Some(now()), ..Default::default() },
        };
        let counter = DataCounter::new();
        let outcome = data.volume(&counter, back_up_one(&v, &tags, paths, &mut repositories, &counter)).await;
        record.status.completion_timestamp = Some(now());
        let scope = Scope::Namespace(&v.namespace);
        match outcome {
            Ok(snapshot) => {
                for warning in snapshot.warnings {
                    log.warn(Scope::Namespace(&v.namespace), format!("volume {} of pod {}/{}: {warning}", v.volume, v.namespace, v.pod));
                }
                log.info(&format!(
                    "Backed up volume {} of pod {}/{} ({} files, {} bytes, {} uploaded): snapshot {}",
                    v.volume, v.namespace, v.pod, snapshot.files, snapshot.bytes, snapshot.uploaded, snapshot.id
                ));
                record.status.phase = "Completed".into();
                record.status.snapshot_id = snapshot.id;
                record.status.progress = DataProgress { total_bytes: snapshot.bytes, bytes_done: snapshot.bytes };
            }
            Err(message) => {
                log.error(scope, format!("volume {} of pod {}/{}: {message}", v.volume, v.namespace, v.pod));
                record.status.phase = "Failed".into();
                record.status.message = message;
            }
        }
        records.push(record);
    }
    records
}

/// Copies the data `records` hold in `from` (a backup's own location) into the same
/// namespaces' repositories in `to`, one `restic copy` per namespace. Returns the records as
/// the copy in `to` holds them: naming `to`, its repositories, and the copies' snapshot IDs.
/// Fails naming the namespace and location whose data could not be copied; the snapshots
/// already copied into `to` are then forgotten again (what cannot be is a warning in `log`).
pub async fn copy(
    coffer: &Coffer,
    from: &BackupStorageLocation,
    to: &BackupStorageLocation,
    records: &[PodVolumeBackup],
    log: &mut RunLog,
) -> Result<Vec<PodVolumeBackup>, String> {
    let (mut sources, mut targets) = (LocationRepositories::new(coffer, from), LocationRepositories::new(coffer, to));
    let mut copied: BTreeMap<String, String> = BTreeMap::new();
    let mut failure = None;
    for (namespace, ids) in snapshots_by_namespace(records) {
        let outcome = async {
            let target = targets.get(namespace).await?;
            sources.get(namespace).await?.copy_snapshots(target, ids.clone()).await
        }
        .await;
        targets.record(namespace, outcome.as_ref().map(drop));
        match outcome {
            Ok(copies) => copied.extend(ids.into_iter().zip(copies)),
            Err(e) => {
                failure = Some(format!("error copying the pod volume data of namespace {namespace} to backup storage location {}: {e}", to.metadata.name));
                break;
            }
        }
    }
    let held: Vec<PodVolumeBackup> = records
        .iter()
        .map(|record| {
            let mut here = record.clone();
            here.spec.backup_storage_location.clone_from(&to.metadata.name);
            here.spec.repo_identifier = restic_identifier(to, &record.spec.pod.namespace);
            here.status.snapshot_id = copied.get(&record.status.snapshot_id).cloned().unwrap_or_default();
            here
        })
        .collect();
    match failure {
        None => Ok(held),
        Some(failure) => {
            forget_copied(coffer, to, &held, log).await;
            Err(failure)
        }
    }
}

/// Forgets the snapshots copied into `bsl` for a copy that failed; what cannot be forgotten is
/// a warning in `log`.
pub async fn forget_copied(coffer: &Coffer, bsl: &BackupStorageLocation, records: &[PodVolumeBackup], log: &mut RunLog) {
    for error in forget(coffer, bsl, records).await {
        log.warn(Scope::Run, format!("after the failed copy: {error}"));
    }
}

/// The snapshot IDs of `records` by volume namespace.
fn snapshots_by_namespace(records: &[PodVolumeBackup]) -> BTreeMap<&str, Vec<String>> {
    let mut by_namespace: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for record in records.iter().filter(|r| !r.status.snapshot_id.is_empty()) {
        by_namespace.entry(&record.spec.pod.namespace).or_default().push(record.status.snapshot_id.clone());
    }
    by_namespace
}

/// Forgets the snapshots of `records` in their repositories in `bsl` (maintenance frees their
/// data); returns what could not be forgotten, naming the namespace.
pub async fn forget(coffer: &Coffer, bsl: &BackupStorageLocation, records: &[PodVolumeBackup]) -> Vec<String> {
    let mut repositories = LocationRepositories::new(coffer, bsl);
    let mut errors = Vec::new();
    for (namespace, ids) in snapshots_by_namespace(records) {
        if let Err(e) = async { repositories.get(namespace).await?.forget(ids).await }.await {
            errors.push(format!("error forgetting the file-system snapshots of namespace {namespace} in backup storage location {}: {e}", bsl.metadata.name));
        }
    }
    errors
}

async fn back_up_one(
    v: &PodVolume,
    tags: &BTreeMap<String, String>,
    paths: &PathRoot,
    repositories: &mut LocationRepositories<'_>,
    counter: &std::sync::Arc<DataCounter>,
) -> Result<crate::fsb::VolumeSnapshot, String> {
    let field = format!("persistent volume {}", v.persistent_volume);
    let dir = paths.open_dir(&field, Path::new(&v.path)).map_err(|e| e.to_string())?;
    let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let (repository, warning) = repositories.for_backup(&v.namespace).await.map_err(|e| e.to_string())?;
    let snapshot = repository.backup(dir, &format!("/{}/{}", v.namespace, v.claim), &tags, counter).await;
    let snapshot = snapshot.map(|mut s| {
        s.warnings.extend(warning);
        s
    });
    repositories.record(&v.namespace, snapshot.as_ref().map(drop));
    snapshot.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volumes_are_chosen_as_velero_chooses_them() {
        let pod = json!({
            "metadata": {"annotations": {VOLUMES_TO_BACKUP: "data, logs", VOLUMES_TO_EXCLUDE: "cache"}},
            "spec": {"volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "logs", "emptyDir": {}},
                {"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}},
                {"name": "host", "hostPath": {"path": "/var/log"}},
                {"name": "config", "configMap": {"name": "c"}},
                {"name": "token", "projected": {}},
                {"name": "default-token-x1", "emptyDir": {}},
            ]}
        });
        assert_eq!(chosen_volumes(&pod, false), ["data", "logs"], "opt-in: the annotation, as written");
        assert_eq!(chosen_volumes(&pod, true), ["data", "logs"], "opt-out: all but excluded, host paths and cluster state");
        assert!(chosen_volumes(&json!({"spec": {}}), false).is_empty());
    }
}
