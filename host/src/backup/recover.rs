//! Setting straight a backup that a process left `InProgress` because it died, against its
//! location: if `velero-backup.json` reached the bucket (it is uploaded last), the backup is
//! complete there and is recorded as the bucket has it; otherwise it failed, and whatever the
//! dead run uploaded is removed, in its own location and in each copy's, so no part of it
//! lingers as a backup.

use super::delete::remove_objects;
use super::layout::Layout;
use super::{BackupError, MAX_BACKUP_METADATA, storage_location_of};
use crate::coffer::Coffer;
use crate::locations::object_store_for;
use crate::model::{Backup, BackupStorageLocation, Phase, now};

/// What the bucket says of an interrupted backup.
enum Found {
    /// Complete: the status the bucket holds.
    Complete(Box<crate::model::BackupStatus>),
    /// Not there; what was uploaded is gone.
    Removed,
    /// Something else holds the name there; left alone.
    Foreign,
}

/// A location's view of backup `name`: what its `velero-backup.json` holds (`None`: absent),
/// read within [`MAX_BACKUP_METADATA`]; and the store, to remove what is there.
struct InLocation {
    store: crate::sandbox::ObjectStoreHandle,
    bucket: String,
    layout: Layout,
    metadata: Option<Option<Backup>>,
}

impl InLocation {
    async fn read(coffer: &Coffer, bsl: &BackupStorageLocation, name: &str) -> Result<Self, BackupError> {
        let (layout, bucket) = (Layout::new(&bsl.spec.object_storage.prefix), bsl.spec.object_storage.bucket.clone());
        let mut store = object_store_for(coffer, bsl).await?;
        let key = layout.backup_metadata(name);
        let metadata = match store.object_exists(&bucket, &key).await? {
            true => Some(serde_json::from_slice(&store.get_bytes(&bucket, &key, MAX_BACKUP_METADATA).await?).ok()),
            false => None,
        };
        Ok(InLocation { store, bucket, layout, metadata })
    }

    /// Removes every object of backup `name` there.
    async fn remove(mut self, name: &str) -> Result<(), BackupError> {
        match remove_objects(&mut self.store, &self.bucket, &self.layout, name).await?.as_slice() {
            [] => Ok(()),
            left => Err(BackupError::Refused(left.join("; "))),
        }
    }
}

async fn look(coffer: &Coffer, backup: &Backup) -> Result<Found, BackupError> {
    let (namespace, name) = (&backup.metadata.meta.namespace, &backup.metadata.meta.name);
    let bsl = storage_location_of(coffer, namespace, &backup.spec.storage_location)?;
    let there = InLocation::read(coffer, &bsl, name).await?;
    match &there.metadata {
        Some(Some(b)) if b.metadata.meta.name == *name && b.status.phase.is_some_and(Phase::is_usable) => Ok(Found::Complete(Box::new(b.status.clone()))),
        Some(_) => Ok(Found::Foreign),
        None => there.remove(name).await.map(|()| Found::Removed),
    }
}

/// Takes back what the interrupted run of `backup` wrote to its copy location `location`: a copy
/// stands only with its backup, which has failed. Its objects are removed, `velero-backup.json`
/// too when it is this run's (copies get theirs before the backup's own location does), and
/// the location's repositories are marked for index repair, as the own location's are.
async fn withdraw_copy(coffer: &Coffer, backup: &Backup, location: &str) -> Result<(), BackupError> {
    let (namespace, name) = (&backup.metadata.meta.namespace, &backup.metadata.meta.name);
    let Some(bsl) = coffer.state.read()?.get::<BackupStorageLocation>(namespace, location)? else {
        return Ok(()); // As a deleted location's backups are left in its bucket.
    };
    if let Err(e) = crate::fsb::backup_interrupted(coffer, namespace, location) {
        tracing::warn!(namespace = %namespace, backup = %name, location, "the location's backup repositories were not marked for index repair: {e}");
    }
    let there = InLocation::read(coffer, &bsl, name).await?;
    let this_run = |b: &Backup| b.metadata.meta.name == *name && b.status.start_timestamp == backup.status.start_timestamp;
    match &there.metadata {
        // Another backup of that name, which the copy did not replace.
        Some(stored) if !stored.as_ref().is_some_and(this_run) => Ok(()),
        _ => there.remove(name).await,
    }
}

/// Sets `backup` (found `InProgress` with nothing running it) straight: `Completed` (or
/// `PartiallyFailed`) as its bucket has it when the run finished uploading, otherwise `Failed`
/// with `reason`, its partial objects removed.
pub async fn recover_backup(coffer: &Coffer, backup: &mut Backup, reason: &str) {
    let found = look(coffer, backup).await;
    let (namespace, name) = (&backup.metadata.meta.namespace, &backup.metadata.meta.name);
    match found {
        Ok(Found::Complete(status)) => {
            tracing::info!(namespace = %namespace, backup = %name, "an interrupted backup had finished uploading: recorded as its location has it");
            backup.status = *status;
            return;
        }
        Ok(Found::Removed) => {
            // Its pod volume data may be in packs no index lists yet.
            if let Err(e) = crate::fsb::backup_interrupted(coffer, namespace, &backup.spec.storage_location) {
                tracing::warn!(namespace = %namespace, backup = %name, "the location's backup repositories were not marked for index repair: {e}");
            }
            for location in &backup.spec.copy_to {
                if let Err(e) = withdraw_copy(coffer, backup, location).await {
                    tracing::warn!(namespace = %namespace, backup = %name, location = %location, "could not take back the copy of an interrupted backup; partial objects may remain: {e}");
                }
            }
        }
        Ok(Found::Foreign) => tracing::warn!(namespace = %namespace, backup = %name, "the location holds another velero-backup.json under this name; left as it is"),
        Err(e) => tracing::warn!(namespace = %namespace, backup = %name, "could not check the location of an interrupted backup; partial objects may remain: {e}"),
    }
    backup.status.phase = Some(Phase::Failed);
    backup.status.failure_reason = reason.to_owned();
    backup.status.completion_timestamp = Some(now());
}
