//! Backups and restores: Velero's selection rules, object layout and tarball format, on
//! locations' providers. This module calls providers only through their typed handles; it
//! never sees wasmtime.

mod delete;
mod filters;
mod item;
mod kept_log;
mod layout;
mod manifests;
mod pod_volume_restores;
mod pod_volumes;
mod read;
mod recover;
mod restore;
mod run;
mod run_log;
mod selection;
mod selector;
mod snapshots;
mod spool;
mod stored;
mod tarball;

use thiserror::Error;

pub use delete::delete_backup;
pub use filters::validate_filters;
pub use item::{Item, plural};
pub use layout::Layout;
pub use manifests::{ManifestError, read_manifests};
pub use pod_volume_restores::{PodVolumeRestore, PodVolumeRestoreSpec, PodVolumeRestoreStatus};
pub use pod_volumes::{PodReference, PodVolumeBackup, PodVolumeBackupSpec, PodVolumeBackupStatus, VOLUMES_TO_BACKUP, VOLUMES_TO_EXCLUDE};
pub use recover::recover_backup;
pub use read::{BackupDetails, RestoreDetails, backup_details, backup_log, download_backup, downloadable, restore_details, restore_log};
pub use restore::{RestoreRequest, StartedRestore, TARGET_ANNOTATION, accept_restore, create_restore};
pub use run::{BackupRequest, SOURCE_ANNOTATION, StartedBackup, accept_backup, create_backup};
pub use run_log::{Messages, RunLog};
pub use selection::{Resolved, SERVER_DEFAULT_BSL, parse_default_snapshot_locations, resolve_locations};
pub use selector::parse_selector;
pub use snapshots::{SnapshotSpec, SnapshotStatus, VolumeSnapshot};
pub use stored::Stored;
pub use tarball::{Contents, FORMAT_VERSION, Limits, TarballError, item_path, read_tarball, visit_tarball, write_tarball};

use crate::coffer::Coffer;
use crate::locations::LocationError;
use crate::object::ObjectError;
use crate::model::{Backup, BackupStorageLocation, Restore};
use crate::sandbox::ProviderError;
use crate::state::StateError;

/// A backup or restore command failed before or outside its run (a failed run is recorded
/// in the object's phase instead).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BackupError {
    /// A name is invalid, taken or unknown.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// A location failed.
    #[error(transparent)]
    Location(#[from] LocationError),
    /// The state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The operation is not allowed now.
    #[error("{0}")]
    Refused(String),
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
    /// A path the tenant named cannot be used.
    #[error(transparent)]
    Path(#[from] crate::confine::PathError),
    /// A backup's objects cannot be encrypted or decrypted.
    #[error(transparent)]
    Encryption(#[from] crate::encryption::EncryptionError),
    /// A stored document is malformed.
    #[error("{what}: {reason}")]
    Malformed {
        /// Which document.
        what: String,
        /// Why.
        reason: String,
    },
}

/// A backup or restore request once checked and recorded: refused (recorded
/// `FailedValidation`, and nothing more happens), or started (recorded `InProgress`, ready to
/// run to its end).
#[derive(Debug)]
pub enum Accepted<Object, Run> {
    /// Recorded as `FailedValidation`.
    Refused(Box<Object>),
    /// Recorded as `InProgress`; its `run` does the work.
    Started(Box<Run>),
}

/// The backup `name` in `namespace`, or an error naming it.
pub fn get_backup(coffer: &Coffer, namespace: &str, name: &str) -> Result<Backup, BackupError> {
    coffer
        .state
        .read()?
        .get::<Backup>(namespace, name)?
        .ok_or_else(|| ObjectError::not_found("backup", name).into())
}

/// Every backup in `namespace`.
pub fn list_backups(coffer: &Coffer, namespace: &str) -> Result<Vec<Backup>, BackupError> {
    Ok(coffer.state.read()?.list(namespace)?)
}

/// The restore `name` in `namespace`, or an error naming it.
pub fn get_restore(coffer: &Coffer, namespace: &str, name: &str) -> Result<Restore, BackupError> {
    coffer
        .state
        .read()?
        .get::<Restore>(namespace, name)?
        .ok_or_else(|| ObjectError::not_found("restore", name).into())
}

/// Every restore in `namespace`.
pub fn list_restores(coffer: &Coffer, namespace: &str) -> Result<Vec<Restore>, BackupError> {
    Ok(coffer.state.read()?.list(namespace)?)
}

/// The backup storage location a backup or restore names.
pub(crate) fn storage_location_of(coffer: &Coffer, namespace: &str, name: &str) -> Result<BackupStorageLocation, BackupError> {
    coffer
        .state
        .read()?
        .get::<BackupStorageLocation>(namespace, name)?
        .ok_or_else(|| BackupError::Refused(format!("backup storage location {name} not found")))
}

/// The location to read `backup` from. `wanted`, when not empty, must be the backup's own or
/// one holding a completed copy. Otherwise: its own, unless it is Unavailable and a location
/// holding a copy is not, then the first such.
pub(crate) fn readable_location(coffer: &Coffer, backup: &Backup, wanted: &str) -> Result<BackupStorageLocation, BackupError> {
    let namespace = &backup.metadata.meta.namespace;
    let own = backup.spec.storage_location.as_str();
    let copies = backup.status.copies.iter().filter(|c| c.phase == Some(crate::model::Phase::Completed)).map(|c| c.storage_location.as_str());
    let holders: Vec<&str> = std::iter::once(own).chain(copies).collect();
    if !wanted.is_empty() {
        if !holders.contains(&wanted) {
            return Err(BackupError::Refused(format!(
                "backup {} is not in backup storage location {wanted}: it is in {}",
                backup.metadata.meta.name,
                holders.join(", ")
            )));
        }
        return storage_location_of(coffer, namespace, wanted);
    }
    for name in &holders {
        if let Ok(bsl) = storage_location_of(coffer, namespace, name)
            && bsl.status.phase != Some(crate::model::LocationPhase::Unavailable)
        {
            return Ok(bsl);
        }
    }
    storage_location_of(coffer, namespace, own)
}

/// The most a gzipped document of a backup (log, resource list, snapshot records) may take
/// in object storage.
pub const MAX_COMPRESSED_DOCUMENT: u64 = 16 << 20;
/// The most such a document may inflate to.
pub const MAX_DOCUMENT: u64 = 64 << 20;
/// The most `velero-backup.json` may take (a Backup object is a few KiB).
pub const MAX_BACKUP_METADATA: u64 = 4 << 20;

/// Downloads `key` from where `stored` is into memory, decrypted and gunzipped; refused,
/// naming the object, beyond [`MAX_COMPRESSED_DOCUMENT`] in the bucket or [`MAX_DOCUMENT`]
/// inflated.
pub async fn fetch_gz(coffer: &Coffer, stored: &Stored, key: &str) -> Result<Option<Vec<u8>>, BackupError> {
    use std::io::Read;
    let mut store = crate::locations::object_store_for(coffer, &stored.bsl).await?;
    let bucket = stored.bucket();
    if !store.object_exists(bucket, key).await? {
        return Ok(None);
    }
    let gz = stored.plain(key, store.get_bytes(bucket, key, stored.stored_limit(MAX_COMPRESSED_DOCUMENT)).await?)?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .take(MAX_DOCUMENT + 1)
        .read_to_end(&mut out)
        .map_err(|e| BackupError::Malformed { what: key.into(), reason: e.to_string() })?;
    if out.len() as u64 > MAX_DOCUMENT {
        return Err(BackupError::Malformed { what: key.into(), reason: format!("it inflates beyond {} MiB", MAX_DOCUMENT >> 20) });
    }
    Ok(Some(out))
}

/// The gzipped JSON document `key` where `stored` is (`what` names it in errors), or its
/// default when it is absent or `null` (Velero writes `null` for an empty list).
pub(crate) async fn fetch_document<T: serde::de::DeserializeOwned + Default>(
    coffer: &Coffer,
    stored: &Stored,
    key: &str,
    what: &str,
) -> Result<T, BackupError> {
    let Some(json) = fetch_gz(coffer, stored, key).await? else {
        return Ok(T::default());
    };
    serde_json::from_slice::<Option<T>>(&json)
        .map(Option::unwrap_or_default)
        .map_err(|e| BackupError::Malformed { what: what.into(), reason: e.to_string() })
}
