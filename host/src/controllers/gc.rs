//! Garbage collection (Velero's GC controller): expired backups are deleted with their
//! objects and snapshots, except from ReadOnly locations, which are labelled instead; and a
//! deletion that stopped partway (a location holding a copy was unreachable) is retried.

use time::OffsetDateTime;

use crate::backup::{BackupError, delete_backup};
use crate::coffer::Coffer;
use crate::model::{AccessMode, Backup, BackupStorageLocation, Phase};

/// The label recording why an expired backup was not collected.
pub const GC_FAILURE_LABEL: &str = "velero.io/gc-failure";

/// The backups to delete at `at`, in every namespace: the expired ones that are not running,
/// and those whose deletion stopped partway (`Deleting`).
pub fn due_for_deletion(coffer: &Coffer, at: OffsetDateTime) -> Result<Vec<Backup>, BackupError> {
    Ok(coffer
        .state
        .read()?
        .list_all::<Backup>()?
        .into_iter()
        .filter(|b| b.status.expiration.is_some_and(|e| e <= at) || b.status.phase == Some(Phase::Deleting))
        .filter(|b| !b.status.phase.is_some_and(Phase::is_running))
        .collect())
}

fn label(coffer: &Coffer, backup: &Backup, reason: Option<&str>) -> Result<(), BackupError> {
    let (namespace, name) = (&backup.metadata.meta.namespace, &backup.metadata.meta.name);
    coffer.state.write(|txn| {
        if let Some(mut b) = txn.get::<Backup>(namespace, name)? {
            let labels = &mut b.metadata.meta.labels;
            let changed = match reason {
                Some(r) => labels.insert(GC_FAILURE_LABEL.into(), r.into()).as_deref() != Some(r),
                None => labels.remove(GC_FAILURE_LABEL).is_some(),
            };
            if changed {
                txn.put(&mut b)?;
            }
        }
        Ok(())
    })
}

/// Deletes expired backup `backup` if its location allows; `Ok(false)` when it was kept
/// (and labelled why).
pub async fn collect(coffer: &Coffer, backup: &Backup) -> Result<bool, BackupError> {
    let (namespace, name) = (&backup.metadata.meta.namespace, &backup.metadata.meta.name);
    let bsl = coffer.state.read()?.get::<BackupStorageLocation>(namespace, &backup.spec.storage_location)?;
    let reason = match &bsl {
        _ if backup.status.phase == Some(Phase::FailedValidation) => None,
        None => Some("BSLNotFound"),
        Some(b) if b.spec.access_mode == AccessMode::ReadOnly => Some("BSLReadOnly"),
        Some(_) => None,
    };
    label(coffer, backup, reason)?;
    if reason.is_some() {
        return Ok(false);
    }
    delete_backup(coffer, namespace, name).await?;
    Ok(true)
}
