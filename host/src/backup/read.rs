//! Reading what a backup or restore left in object storage: logs, the resource list, the
//! snapshot records and the tarball.

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

use super::kept_log;
use super::pod_volume_restores::PodVolumeRestore;
use super::pod_volumes::PodVolumeBackup;
use super::snapshots::VolumeSnapshot;
use super::stored::Stored;
use super::tarball::Limits;
use super::{BackupError, fetch_document, fetch_gz, get_backup, get_restore, readable_location};
use crate::coffer::Coffer;
use crate::locations::object_store_for;
use crate::model::{Backup, Phase};

/// What `backup describe --details` lists besides the record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupDetails {
    /// Items backed up, by group/version/kind.
    pub resource_list: BTreeMap<String, Vec<String>>,
    /// Native volume snapshots taken.
    pub volume_snapshots: Vec<VolumeSnapshot>,
    /// Pod volumes backed up with file-system backup.
    #[serde(default)]
    pub pod_volume_backups: Vec<PodVolumeBackup>,
}

fn finished(backup: &Backup) -> bool {
    backup.status.phase.is_some_and(Phase::is_usable)
}

/// Where to read `backup` from (`wanted`, or the first readable location holding it), and
/// how.
fn location_of(coffer: &Coffer, backup: &Backup, wanted: &str) -> Result<Stored, BackupError> {
    Stored::new(coffer, backup, readable_location(coffer, backup, wanted)?)
}

/// The resource list and snapshot records of a completed (or partially failed) backup.
pub async fn backup_details(coffer: &Coffer, namespace: &str, name: &str) -> Result<BackupDetails, BackupError> {
    let backup = get_backup(coffer, namespace, name)?;
    if !finished(&backup) {
        return Ok(BackupDetails::default());
    }
    let stored = location_of(coffer, &backup, "")?;
    let layout = &stored.layout;
    let resource_list = fetch_document(coffer, &stored, &layout.backup_resource_list(name), "resource list").await?;
    let volume_snapshots = fetch_document(coffer, &stored, &layout.backup_volume_snapshots(name), "volume snapshot list").await?;
    let pod_volume_backups = fetch_document(coffer, &stored, &layout.backup_pod_volume_backups(name), "pod volume backup list").await?;
    Ok(BackupDetails { resource_list, volume_snapshots, pod_volume_backups })
}

/// What `restore describe --details` lists besides the record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreDetails {
    /// Items written, by group/version/kind.
    pub resource_list: BTreeMap<String, Vec<String>>,
    /// Pod volumes restored from file-system backups.
    #[serde(default)]
    pub pod_volume_restores: Vec<PodVolumeRestore>,
}

/// The resource list and pod volume restores of a finished restore.
pub async fn restore_details(coffer: &Coffer, namespace: &str, name: &str) -> Result<RestoreDetails, BackupError> {
    let restore = get_restore(coffer, namespace, name)?;
    if !restore.status.phase.is_some_and(Phase::is_usable) {
        return Ok(RestoreDetails::default());
    }
    let backup = get_backup(coffer, namespace, &restore.spec.backup_name)?;
    let stored = location_of(coffer, &backup, &restore.spec.storage_location)?;
    let layout = &stored.layout;
    let resource_list = fetch_document(coffer, &stored, &layout.restore_resource_list(name), "restore resource list").await?;
    let pod_volume_restores = fetch_document(coffer, &stored, &layout.restore_pod_volume_restores(name), "pod volume restore list").await?;
    Ok(RestoreDetails { resource_list, pod_volume_restores })
}

/// The log of backup `name`: from object storage, or from the state for a backup that failed.
pub async fn backup_log(coffer: &Coffer, namespace: &str, name: &str) -> Result<Vec<u8>, BackupError> {
    let backup = get_backup(coffer, namespace, name)?;
    if let Some(log) = kept_log::kept(&coffer.state.read()?, namespace, kept_log::Run::Backup(name))? {
        return Ok(log);
    }
    if backup.status.phase == Some(Phase::Failed) {
        // Failed before logs were kept, or set Failed after a crash: the reason is all there is.
        return Err(BackupError::Refused(format!("backup {name:?} failed and has no log: {}", backup.status.failure_reason)));
    }
    let stored = location_of(coffer, &backup, "")?;
    fetch_gz(coffer, &stored, &stored.layout.backup_log(name))
        .await?
        .ok_or_else(|| BackupError::Refused(format!("backup {name:?} has no log in object storage")))
}

/// The log of restore `name`: from object storage, or from the state when it could not go
/// there.
pub async fn restore_log(coffer: &Coffer, namespace: &str, name: &str) -> Result<Vec<u8>, BackupError> {
    let restore = get_restore(coffer, namespace, name)?;
    if let Some(log) = kept_log::kept(&coffer.state.read()?, namespace, kept_log::Run::Restore(name))? {
        return Ok(log);
    }
    let backup = get_backup(coffer, namespace, &restore.spec.backup_name)?;
    let stored = location_of(coffer, &backup, &restore.spec.storage_location)?;
    fetch_gz(coffer, &stored, &stored.layout.restore_log(name))
        .await?
        .ok_or_else(|| BackupError::Refused(format!("restore {name:?} has no log in object storage")))
}

/// Checks that backup `name` can be downloaded: it finished.
pub fn downloadable(coffer: &Coffer, namespace: &str, name: &str) -> Result<Backup, BackupError> {
    let backup = get_backup(coffer, namespace, name)?;
    if !finished(&backup) {
        let phase = backup.status.phase.map_or_else(|| "New".into(), |p| p.to_string());
        return Err(BackupError::Refused(format!("backup {name:?} is in phase {phase}; only completed backups can be downloaded")));
    }
    Ok(backup)
}

/// Streams backup `name`'s tarball into `sink`; returns its size.
pub async fn download_backup<W: Write + Send + 'static>(coffer: &Coffer, namespace: &str, name: &str, sink: W) -> Result<u64, BackupError> {
    let backup = downloadable(coffer, namespace, name)?;
    let stored = location_of(coffer, &backup, "")?;
    let mut store = object_store_for(coffer, &stored.bsl).await?;
    let key = stored.layout.backup_contents(name);
    if !stored.encrypted() {
        return Ok(store.get_object(stored.bucket(), &key, sink).await?);
    }
    // Downloaded and decrypted whole first: nothing unauthenticated reaches `sink`.
    let plain = stored.download_file(&mut store, &key, Limits::default().max_total).await?;
    tokio::task::spawn_blocking(move || {
        let mut sink = sink;
        std::io::copy(&mut std::io::BufReader::new(plain), &mut sink)
            .and_then(|n| sink.flush().map(|()| n))
            .map_err(|error| BackupError::Io { path: key, error })
    })
    .await
        .map_err(|e| BackupError::Io { path: "the download".into(), error: std::io::Error::other(e) })?
}
