//! Backup sync (Velero's backup-sync controller): backups found in a location's bucket but
//! not in the state are imported, so a second host pointed at the same bucket (ReadOnly or
//! not) sees them; completed backups of the location that left the bucket are forgotten.

use std::collections::BTreeSet;
use std::time::Duration;

use time::OffsetDateTime;

use crate::backup::{BackupError, Layout};
use crate::coffer::Coffer;
use crate::locations::object_store_for;
use crate::object::validate_name;
use crate::model::{Backup, BackupStorageLocation, Phase, now};

/// The label naming the location a backup is in.
pub const STORAGE_LOCATION_LABEL: &str = "velero.io/storage-location";

/// Whether `bsl` is due for a sync at `at`: never synced, or its period (the server's when
/// unset; `0s` never) has passed.
pub fn sync_due(bsl: &BackupStorageLocation, default_period: Duration, at: OffsetDateTime) -> bool {
    let period = bsl.spec.backup_sync_period.unwrap_or(default_period);
    if period.is_zero() {
        return false;
    }
    bsl.status.last_synced_time.is_none_or(|last| at >= last + period)
}

/// What one sync did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Backups imported.
    pub imported: Vec<String>,
    /// Backups forgotten because their objects are gone.
    pub forgotten: Vec<String>,
}

/// Syncs backups from `bsl` into its namespace and records the time.
pub async fn sync_location(coffer: &Coffer, bsl: &BackupStorageLocation) -> Result<SyncOutcome, BackupError> {
    let namespace = bsl.metadata.namespace.as_str();
    let location = bsl.metadata.name.as_str();
    let storage = &bsl.spec.object_storage;
    let layout = Layout::new(&storage.prefix);
    let mut store = object_store_for(coffer, bsl).await?;
    let dir = layout.backups_dir();
    let in_bucket: BTreeSet<String> = store
        .list_common_prefixes(&storage.bucket, &dir, "/")
        .await?
        .iter()
        .filter_map(|p| p.strip_prefix(&dir).map(|n| n.trim_end_matches('/').to_owned()))
        .collect();
    let known: BTreeSet<String> = coffer.state.read()?.list::<Backup>(namespace)?.into_iter().map(|b| b.metadata.meta.name).collect();
    let mut outcome = SyncOutcome::default();
    for name in in_bucket.difference(&known) {
        if validate_name("backup", name).is_err() {
            tracing::warn!(namespace, location, backup = %name, "skipped a backup directory whose name is not a valid backup name");
            continue;
        }
        let key = layout.backup_metadata(name);
        if !store.object_exists(&storage.bucket, &key).await? {
            continue;
        }
        let mut backup: Backup = match serde_json::from_slice(&store.get_bytes(&storage.bucket, &key, crate::backup::MAX_BACKUP_METADATA).await?) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(namespace, location, backup = %name, "skipped unreadable backup metadata: {e}");
                continue;
            }
        };
        // Still being written by whoever started it, and not yet expired.
        let running = backup.status.phase.is_none_or(Phase::is_running);
        if running && backup.status.expiration.is_none_or(|e| e > now()) {
            continue;
        }
        backup.metadata.meta.name = name.clone();
        backup.metadata.meta.namespace = namespace.into();
        backup.spec.storage_location = location.into();
        backup.metadata.meta.labels.insert(STORAGE_LOCATION_LABEL.into(), location.into());
        // Known by this location alone: the copies it records are in the writer's locations.
        backup.spec.copy_to.clear();
        backup.status.copies.clear();
        if running {
            backup.status.phase = Some(Phase::PartiallyFailed);
        }
        let imported = coffer.state.write(|txn| {
            if txn.get::<Backup>(namespace, name)?.is_some() {
                return Ok::<_, BackupError>(false);
            }
            txn.put(&mut backup)?;
            Ok(true)
        })?;
        if imported {
            outcome.imported.push(name.clone());
        }
    }
    coffer.state.write(|txn| {
        for b in txn.list::<Backup>(namespace)? {
            let name = &b.metadata.meta.name;
            let finished = b.status.phase.is_some_and(Phase::is_usable);
            if finished && b.spec.storage_location == location && !in_bucket.contains(name) {
                txn.delete::<Backup>(namespace, name)?;
                outcome.forgotten.push(name.clone());
            }
        }
        if let Some(mut stored) = txn.get::<BackupStorageLocation>(namespace, location)? {
            stored.status.last_synced_time = Some(now());
            txn.put(&mut stored)?;
        }
        Ok::<_, BackupError>(())
    })?;
    Ok(outcome)
}
