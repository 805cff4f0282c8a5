//! Backup storage locations and volume snapshot locations: creating, changing and deleting
//! them, resolving their credentials, and validating them through their providers.

mod backup_storage;
mod credentials;
mod error;
mod names;
mod snapshot;

pub use backup_storage::{
    BackupStorageLocationChange, NewBackupStorageLocation, create_backup_storage_location,
    delete_backup_storage_locations, get_backup_storage_locations, object_store_for, refresh_backup_storage_locations,
    set_backup_storage_location, validate_backup_storage_location,
};
pub use credentials::{DEFAULT_CREDENTIAL, resolve_credential, sealed_identity};
pub use error::LocationError;
pub use names::validate_name;
pub use snapshot::{
    NewVolumeSnapshotLocation, create_volume_snapshot_location, delete_volume_snapshot_locations,
    get_volume_snapshot_locations, set_volume_snapshot_location, volume_snapshotter_for,
};

/// Which names a delete applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These names; each must exist.
    Names(Vec<String>),
    /// Every one in the namespace.
    All,
}
