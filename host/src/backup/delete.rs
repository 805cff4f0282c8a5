//! Deleting a backup: its snapshots through the locations recorded with them, its objects,
//! and the restores made from it.

use super::kept_log;
use super::layout::Layout;
use super::pod_volumes::{self, PodVolumeBackup};
use super::snapshots::VolumeSnapshot;
use super::stored::Stored;
use super::{BackupError, fetch_document, get_backup, storage_location_of};
use crate::coffer::Coffer;
use crate::locations::{object_store_for, volume_snapshotter_for};
use crate::model::{AccessMode, Backup, BackupStorageLocation, Phase, Restore, VolumeSnapshotLocation};
use crate::sandbox::ObjectStoreHandle;

/// Removes every object of backup `name` and returns what could not be removed.
/// `velero-backup.json` goes last, so an interrupted removal still shows the backup as existing,
/// and is deleted even when absent: a provider sweeps what interrupted puts left in the
/// backup's directory when its last object goes (the filesystem provider's temporary files).
pub(super) async fn remove_objects(store: &mut ObjectStoreHandle, bucket: &str, layout: &Layout, name: &str) -> Result<Vec<String>, BackupError> {
    let metadata = layout.backup_metadata(name);
    let mut keys = store.list_objects(bucket, &layout.backup_dir(name)).await?;
    keys.retain(|k| *k != metadata);
    keys.push(metadata);
    let mut errors = Vec::new();
    for key in keys {
        if let Err(e) = store.delete_object(bucket, &key).await {
            errors.push(format!("error deleting object {key}: {e}"));
        }
    }
    Ok(errors)
}

/// Removes the files of `restores` from a location; returns what could not be removed.
async fn remove_restore_files<'a>(
    store: &mut ObjectStoreHandle,
    bucket: &str,
    layout: &Layout,
    restores: impl Iterator<Item = &'a Restore>,
) -> Result<Vec<String>, BackupError> {
    let mut errors = Vec::new();
    for restore in restores {
        for key in store.list_objects(bucket, &layout.restore_dir(&restore.metadata.meta.name)).await? {
            if let Err(e) = store.delete_object(bucket, &key).await {
                errors.push(format!("error deleting object {key}: {e}"));
            }
        }
    }
    Ok(errors)
}

/// Forgets the file-system snapshots of `backup` in the repositories of the location `stored`
/// reads it from (maintenance frees their data); returns what could not be forgotten. Records
/// naming another location that holds the backup are left to that location: a copy made before
/// copies had volume data of their own names the backup's own location.
async fn forget_pod_volume_snapshots(coffer: &Coffer, stored: &Stored, backup: &Backup) -> Result<Vec<String>, BackupError> {
    let (name, here) = (&backup.metadata.meta.name, &stored.bsl.metadata.name);
    let records: Vec<PodVolumeBackup> =
        fetch_document(coffer, stored, &stored.layout.backup_pod_volume_backups(name), "pod volume backup list").await?;
    let elsewhere = |location: &String| {
        location != here && (*location == backup.spec.storage_location || backup.status.copies.iter().any(|c| c.storage_location == *location))
    };
    let records: Vec<PodVolumeBackup> = records.into_iter().filter(|r| !elsewhere(&r.spec.backup_storage_location)).collect();
    Ok(pod_volumes::forget(coffer, &stored.bsl, &records).await)
}

/// Deletes backup `name`. The record is removed only when everything else was; otherwise
/// it stays in phase `Deleting` and the error lists what is left.
pub async fn delete_backup(coffer: &Coffer, namespace: &str, name: &str) -> Result<(), BackupError> {
    let mut backup = get_backup(coffer, namespace, name)?;
    if backup.status.phase == Some(Phase::InProgress) {
        return Err(BackupError::Refused("backup is still in progress".into()));
    }
    if matches!(backup.status.phase, Some(Phase::FailedValidation)) {
        coffer.state.write(|txn| txn.delete::<Backup>(namespace, name).map(drop))?;
        return Ok(());
    }
    let restores: Vec<Restore> = coffer.state.read()?.list::<Restore>(namespace)?.into_iter().filter(|r| r.spec.backup_name == name).collect();
    let location = backup.spec.storage_location.clone();
    let bsl = storage_location_of(coffer, namespace, &location)?;
    if bsl.spec.access_mode == AccessMode::ReadOnly {
        return Err(BackupError::Refused(format!(
            "cannot delete backup because backup storage location {location} is currently in read-only mode"
        )));
    }
    backup.status.phase = Some(Phase::Deleting);
    coffer.state.write(|txn| txn.put(&mut backup))?;

    let stored = Stored::new(coffer, &backup, bsl)?;
    let (bsl, layout) = (&stored.bsl, &stored.layout);
    let bucket = bsl.spec.object_storage.bucket.clone();
    let mut errors: Vec<String> = Vec::new();
    let snapshots: Vec<VolumeSnapshot> = fetch_document(coffer, &stored, &layout.backup_volume_snapshots(name), "volume snapshot list").await?;
    for snapshot in snapshots.iter().filter(|s| !s.status.provider_snapshot_id.is_empty()) {
        let vsl_name = &snapshot.spec.location;
        let Some(vsl) = coffer.state.read()?.get::<VolumeSnapshotLocation>(namespace, vsl_name)? else {
            errors.push(format!("error getting volume snapshot location {vsl_name}: not found"));
            continue;
        };
        let result = async {
            let mut handle = volume_snapshotter_for(coffer, &vsl).await.map_err(|e| e.to_string())?;
            handle.delete_snapshot(&snapshot.status.provider_snapshot_id).await.map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = result {
            errors.push(format!("error deleting snapshot {}: {e}", snapshot.status.provider_snapshot_id));
        }
    }

    errors.extend(forget_pod_volume_snapshots(coffer, &stored, &backup).await?);

    let mut store = object_store_for(coffer, bsl).await.map_err(BackupError::Location)?;
    errors.extend(remove_objects(&mut store, &bucket, layout, name).await?);
    errors.extend(remove_restore_files(&mut store, &bucket, layout, restores.iter().filter(|r| r.spec.storage_location.is_empty() || r.spec.storage_location == location)).await?);
    // Every copy, with the files of the restores read from it.
    for copy in &backup.status.copies {
        let here = &copy.storage_location;
        let Some(bsl) = coffer.state.read()?.get::<BackupStorageLocation>(namespace, here)? else {
            // As Velero leaves a deleted location's backups in its bucket.
            tracing::warn!(namespace, backup = name, location = %here, "left the copy in a backup storage location that no longer exists");
            continue;
        };
        let removed = async {
            if bsl.spec.access_mode == AccessMode::ReadOnly {
                return Err(BackupError::Refused("it is currently in read-only mode".into()));
            }
            let stored = Stored::new(coffer, &backup, bsl)?;
            let mut left = forget_pod_volume_snapshots(coffer, &stored, &backup).await?;
            let (bsl, bucket, layout) = (&stored.bsl, stored.bucket(), &stored.layout);
            let mut store = object_store_for(coffer, bsl).await.map_err(BackupError::Location)?;
            left.extend(remove_objects(&mut store, bucket, layout, name).await?);
            left.extend(remove_restore_files(&mut store, bucket, layout, restores.iter().filter(|r| r.spec.storage_location == *here)).await?);
            Ok(left)
        }
        .await;
        match removed {
            Ok(left) => errors.extend(left.into_iter().map(|e| format!("{e} (backup storage location {here})"))),
            Err(e) => errors.push(format!("error deleting the copy in backup storage location {here}: {e}")),
        }
    }
    if !errors.is_empty() {
        return Err(BackupError::Refused(format!("backup {name} was only partly deleted: {}", errors.join("; "))));
    }
    coffer.state.write(|txn| {
        for restore in &restores {
            txn.delete::<Restore>(namespace, &restore.metadata.meta.name)?;
            // A restore still running has nothing left to record.
            txn.release::<Restore>(namespace, &restore.metadata.meta.name)?;
            kept_log::forget(txn, namespace, kept_log::Run::Restore(&restore.metadata.meta.name))?;
        }
        kept_log::forget(txn, namespace, kept_log::Run::Backup(name))?;
        txn.delete::<Backup>(namespace, name).map(drop)
    })?;
    Ok(())
}
