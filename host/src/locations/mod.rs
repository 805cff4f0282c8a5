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
    delete_backup_storage_location, get_backup_storage_locations, object_store_config, object_store_for, refresh_backup_storage_locations,
    set_backup_storage_location, validate_backup_storage_location, validation_due,
};
pub use credentials::{DEFAULT_CREDENTIAL, encryption_key, encryption_key_in, resolve_credential, sealed_identity};
use credentials::location_grants;
pub use directories::{LocationDirectory, location_directories};
pub use error::LocationError;
pub use snapshot::{
    NewVolumeSnapshotLocation, create_volume_snapshot_location, delete_volume_snapshot_location,
    get_volume_snapshot_locations, set_volume_snapshot_location, volume_snapshot_copier_for, volume_snapshotter_for,
};

use crate::coffer::Coffer;
use crate::object::ObjectError;
use crate::state::Resource;

/// Deletes the object `name` of kind `T`, which must exist.
fn delete_named<T: Resource>(coffer: &Coffer, namespace: &str, name: &str, kind: &'static str) -> Result<(), LocationError> {
    coffer.state.write(|txn| match txn.delete::<T>(namespace, name)? {
        true => Ok(()),
        false => Err(ObjectError::not_found(kind, name).into()),
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
