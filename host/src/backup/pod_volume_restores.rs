//! Restoring pod volumes backed up with file-system backup: each volume's files are written
//! under the restore target at `volumes/<namespace>/<claim>/`, and a `PodVolumeRestore` record
//! says how it went. A volume that fails (a pack missing or corrupt) is an error naming it;
//! the other volumes are restored all the same.

use std::collections::BTreeSet;

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};

use super::item::safe_segment;
use super::pod_volumes::{DataReport, PodReference, PodVolumeBackup, generated_name};
use super::run_log::{RunLog, Scope};
use crate::coffer::Coffer;
use crate::fsb::{DataCounter, LocationRepositories};
use crate::model::{API_VERSION, BackupStorageLocation, DataProgress, ObjectMeta, now};

/// What a pod volume restore writes (Velero's `PodVolumeRestoreSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeRestoreSpec {
    /// The pod whose volume it is.
    pub pod: PodReference,
    /// The volume's name in the pod.
    pub volume: String,
    /// The backup storage location holding the repository.
    pub backup_storage_location: String,
    /// The repository, as `restic -r` takes it.
    pub repo_identifier: String,
    /// `restic`.
    pub uploader_type: String,
    /// The restic snapshot restored.
    #[serde(rename = "snapshotID")]
    pub snapshot_id: String,
    /// The namespace the volume was backed up from.
    pub source_namespace: String,
}

/// How a pod volume restore went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeRestoreStatus {
    /// `Completed` or `Failed`.
    pub phase: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When it started.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<time::OffsetDateTime>,
    /// When it ended.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<time::OffsetDateTime>,
    /// Bytes.
    #[serde(default)]
    pub progress: DataProgress,
}

/// One pod volume's restore (velero.io/v1 `PodVolumeRestore`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeRestore {
    /// `velero.io/v1`.
    pub api_version: String,
    /// `PodVolumeRestore`.
    pub kind: String,
    /// `<restore>-<random>`, labelled with the restore.
    pub metadata: ObjectMeta,
    /// What.
    pub spec: PodVolumeRestoreSpec,
    /// How it went.
    pub status: PodVolumeRestoreStatus,
}

/// Restores the completed `backups` of the pods in `pods` (`namespace/name`) beneath
/// `target`, from their repositories in `bsl`, their bytes told to `report` as they are
/// written.
#[allow(clippy::too_many_arguments)]
pub async fn restore(
    coffer: &Coffer,
    restore_name: &str,
    bsl: &BackupStorageLocation,
    backups: &[PodVolumeBackup],
    pods: &BTreeSet<String>,
    target: &Dir,
    log: &mut RunLog,
    report: &mut (dyn FnMut(DataProgress) + Send),
) -> Vec<PodVolumeRestore> {
    let mut repositories = LocationRepositories::new(coffer, bsl);
    let mut records = Vec::new();
    let mut data = DataReport::new(report);
    for pvb in backups {
        let pod = &pvb.spec.pod;
        if pvb.status.phase != "Completed" || !pods.contains(&format!("{}/{}", pod.namespace, pod.name)) {
            continue;
        }
        let mut meta = ObjectMeta::new(&bsl.metadata.namespace, &generated_name(restore_name));
        meta.labels.insert("velero.io/restore-name".into(), restore_name.to_owned());
        let mut record = PodVolumeRestore {
            api_version: API_VERSION.into(),
            kind: "PodVolumeRestore".into(),
            metadata: meta,
            spec: PodVolumeRestoreSpec {
                pod: pod.clone(),
                volume: pvb.spec.volume.clone(),
                backup_storage_location: bsl.metadata.name.clone(),
                repo_identifier: pvb.spec.repo_identifier.clone(),
                uploader_type: "restic".into(),
                snapshot_id: pvb.status.snapshot_id.clone(),
                source_namespace: pod.namespace.clone(),
            },
            status: PodVolumeRestoreStatus { start_timestamp: Some(now()), ..Default::default() },
        };
        let claim = pvb.metadata.labels.get("velero.io/pvc-name").cloned().unwrap_or_else(|| pvb.spec.volume.clone());
        let counter = DataCounter::new();
        let outcome = data.volume(&counter, restore_one(pvb, &claim, target, &mut repositories, &counter)).await;
        record.status.completion_timestamp = Some(now());
        match outcome {
            Ok(bytes) => {
                log.info(&format!("Restored volume {} of pod {}/{} into volumes/{}/{claim}", pvb.spec.volume, pod.namespace, pod.name, pod.namespace));
                record.status.phase = "Completed".into();
                record.status.progress = DataProgress { total_bytes: bytes, bytes_done: bytes };
            }
            Err(message) => {
                let scope = if safe_segment(&pod.namespace) { Scope::Namespace(&pod.namespace) } else { Scope::Run };
                log.error(scope, format!("error restoring volume {} of pod {}/{}: {message}", pvb.spec.volume, pod.namespace, pod.name));
                record.status.phase = "Failed".into();
                record.status.message = message;
            }
        }
        records.push(record);
    }
    records
}

/// Restores one volume into `volumes/<namespace>/<claim>/` beneath `target`; returns its bytes.
async fn restore_one(
    pvb: &PodVolumeBackup,
    claim: &str,
    target: &Dir,
    repositories: &mut LocationRepositories<'_>,
    counter: &std::sync::Arc<DataCounter>,
) -> Result<u64, String> {
    // The names come from the bucket: each must be one plain path segment.
    let namespace = &pvb.spec.pod.namespace;
    if let Some(bad) = [namespace.as_str(), claim].into_iter().find(|s| !safe_segment(s)) {
        return Err(format!("the record names {bad:?}, which is not a valid name"));
    }
    let into = format!("volumes/{namespace}/{claim}");
    target.create_dir_all(format!("volumes/{namespace}")).map_err(|e| format!("creating volumes/{namespace}: {e}"))?;
    target.create_dir(&into).map_err(|e| format!("creating {into}: {e}"))?;
    let dir = target.open_dir(&into).map_err(|e| format!("opening {into}: {e}"))?;
    let repository = repositories.get(namespace).await.map_err(|e| e.to_string())?;
    let restored = repository.restore(&pvb.status.snapshot_id, dir, counter).await.map_err(|e| e.to_string())?;
    Ok(restored.bytes)
}
