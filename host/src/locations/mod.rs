//! Backup storage locations and volume snapshot locations: creating, changing and deleting
//! them, resolving their credentials, and validating them through their providers.

mod backup_storage;
mod credentials;
mod directories;
mod error;
mod location;
mod snapshot;

pub use backup_storage::{
    BackupStorageLocationChange, NewBackupStorageLocation, create_backup_storage_location,
    delete_backup_storage_locations, get_backup_storage_locations, object_store_for, refresh_backup_storage_locations,
    set_backup_storage_location, validate_backup_storage_location, validation_due,
};
pub use credentials::{DEFAULT_CREDENTIAL, resolve_credential, sealed_identity};
use credentials::location_grants;
pub use directories::{LocationDirectory, location_directories};
pub use error::LocationError;
pub use snapshot::{
    NewVolumeSnapshotLocation, create_volume_snapshot_location, delete_volume_snapshot_locations,
    get_volume_snapshot_locations, set_volume_snapshot_location, volume_snapshotter_for,
};

use crate::coffer::Coffer;
use crate::object::ObjectError;
use crate::state::Resource;

/// Deletes the selected objects of kind `T` in one transaction; returns the names deleted.
/// A named object that does not exist fails the whole delete.
fn delete_selected<T: Resource>(
    coffer: &Coffer,
    namespace: &str,
    selection: &Selection,
    kind: &'static str,
) -> Result<Vec<String>, LocationError> {
    coffer.state.write(|txn| {
        let names: Vec<String> = match selection {
            Selection::All => txn.list::<T>(namespace)?.iter().map(|o| o.name().to_owned()).collect(),
            Selection::Names(names) => names.clone(),
        };
        for name in &names {
            if !txn.delete::<T>(namespace, name)? {
                return Err(ObjectError::not_found(kind, name).into());
            }
        }
        Ok(names)
    })
}

/// The named objects of kind `T` (each must exist), or all when `names` is empty.
fn get_named<T: Resource>(
    coffer: &Coffer,
    namespace: &str,
    names: &[String],
    kind: &'static str,
) -> Result<Vec<T>, LocationError> {
    let txn = coffer.state.read()?;
    if names.is_empty() {
        return Ok(txn.list(namespace)?);
    }
    names
        .iter()
        .map(|n| txn.get(namespace, n)?.ok_or_else(|| ObjectError::not_found(kind, n).into()))
        .collect()
}

/// Which names a delete applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These names; each must exist.
    Names(Vec<String>),
    /// Every one in the namespace.
    All,
}
