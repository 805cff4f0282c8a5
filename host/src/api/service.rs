//! What a tenant can do, as one trait: implemented once over the engine ([`super::LocalTenant`],
//! which the server's handlers call too) and once over HTTP ([`super::RemoteTenant`]). The
//! command line talks only to this trait, so a command works the same on a data directory and
//! through a server. Each method is one route of the API (see [`super::routes`]).

use std::io::Write;

use async_trait::async_trait;

use super::error::ApiError;
use super::wire::{BackupStorageLocationPatch, SchedulePatch, SecretBody, VolumeSnapshotLocationPatch};
use crate::backup::{BackupDetails, RestoreDetails};
use crate::fsb::BackupRepository;
use crate::model::{Backup, BackupStorageLocation, Progress, Restore, VolumeSnapshotLocation};
use crate::schedules::Schedule;
use crate::secret::SecretBytes;
use crate::secrets::SecretSummary;

/// Told a run's progress while a caller waits for its end.
pub type Watch<'a> = &'a mut (dyn FnMut(&Progress) + Send);

/// Where a download's bytes go.
pub type Sink = Box<dyn Write + Send>;

/// A download that was checked (the backup exists and completed) and has not started: its
/// bytes go to a sink, so that a caller creates its file only once the download can start.
#[async_trait]
pub trait Download: Send {
    /// Writes the whole tarball into `sink` and flushes it; returns its size. Fails, naming
    /// the backup, if the source broke off: what was written is then not the tarball.
    async fn write_to(self: Box<Self>, sink: Sink) -> Result<u64, ApiError>;
}

/// What a tenant can do: its locations, secrets, backups, restores, schedules, logs and
/// downloads. Paths the tenant names are confined to its tree by the implementation.
#[async_trait]
pub trait TenantApi: Send + Sync {
    /// Creates a backup storage location (validated at once).
    async fn create_backup_storage_location(&self, object: BackupStorageLocation) -> Result<BackupStorageLocation, ApiError>;
    /// The tenant's backup storage locations (only the default with `default_only`).
    async fn list_backup_storage_locations(&self, default_only: bool) -> Result<Vec<BackupStorageLocation>, ApiError>;
    /// One backup storage location.
    async fn get_backup_storage_location(&self, name: &str) -> Result<BackupStorageLocation, ApiError>;
    /// Changes a backup storage location's default flag, credential or CA bundle.
    async fn change_backup_storage_location(&self, name: &str, patch: BackupStorageLocationPatch) -> Result<BackupStorageLocation, ApiError>;
    /// Deletes a backup storage location (its objects stay).
    async fn delete_backup_storage_location(&self, name: &str) -> Result<(), ApiError>;

    /// Creates a volume snapshot location.
    async fn create_volume_snapshot_location(&self, object: VolumeSnapshotLocation) -> Result<VolumeSnapshotLocation, ApiError>;
    /// The tenant's volume snapshot locations.
    async fn list_volume_snapshot_locations(&self) -> Result<Vec<VolumeSnapshotLocation>, ApiError>;
    /// One volume snapshot location.
    async fn get_volume_snapshot_location(&self, name: &str) -> Result<VolumeSnapshotLocation, ApiError>;
    /// Changes a volume snapshot location's credential.
    async fn change_volume_snapshot_location(&self, name: &str, patch: VolumeSnapshotLocationPatch) -> Result<VolumeSnapshotLocation, ApiError>;
    /// Deletes a volume snapshot location (its snapshots stay).
    async fn delete_volume_snapshot_location(&self, name: &str) -> Result<(), ApiError>;

    /// Creates a secret.
    async fn create_secret(&self, body: SecretBody) -> Result<SecretSummary, ApiError>;
    /// Sets keys of the secret `name` (rotation): the next provider call uses the new values.
    async fn replace_secret(&self, name: &str, body: SecretBody) -> Result<SecretSummary, ApiError>;
    /// The tenant's secrets: names and keys, never values.
    async fn list_secrets(&self) -> Result<Vec<SecretSummary>, ApiError>;
    /// One secret's name and keys.
    async fn get_secret(&self, name: &str) -> Result<SecretSummary, ApiError>;
    /// Deletes a secret.
    async fn delete_secret(&self, name: &str) -> Result<(), ApiError>;

    /// Creates a backup from a Backup object whose `coffer.io/source-directory` annotation
    /// names its manifest directory. With `watch`, returns at the backup's end (telling
    /// `watch` its progress); without, once it is accepted (or refused).
    async fn create_backup(&self, object: Backup, watch: Option<Watch<'_>>) -> Result<Backup, ApiError>;
    /// The tenant's backups.
    async fn list_backups(&self) -> Result<Vec<Backup>, ApiError>;
    /// One backup.
    async fn get_backup(&self, name: &str) -> Result<Backup, ApiError>;
    /// Deletes a backup with its objects, snapshots and restores.
    async fn delete_backup(&self, name: &str) -> Result<(), ApiError>;
    /// A backup's log.
    async fn backup_log(&self, name: &str) -> Result<Vec<u8>, ApiError>;
    /// A backup's resource list and snapshots.
    async fn backup_details(&self, name: &str) -> Result<BackupDetails, ApiError>;
    /// A completed backup's tarball, checked and ready to start.
    async fn download_backup(&self, name: &str) -> Result<Box<dyn Download>, ApiError>;

    /// Creates a restore from a Restore object whose `coffer.io/target-directory` annotation
    /// names an empty or new directory; `watch` as for [`TenantApi::create_backup`].
    async fn create_restore(&self, object: Restore, watch: Option<Watch<'_>>) -> Result<Restore, ApiError>;
    /// The tenant's restores.
    async fn list_restores(&self) -> Result<Vec<Restore>, ApiError>;
    /// One restore.
    async fn get_restore(&self, name: &str) -> Result<Restore, ApiError>;
    /// A restore's log.
    async fn restore_log(&self, name: &str) -> Result<Vec<u8>, ApiError>;
    /// What a finished restore wrote: its resource list and pod volume restores.
    async fn restore_details(&self, name: &str) -> Result<RestoreDetails, ApiError>;

    /// Creates a schedule from a Schedule object whose `coffer.io/source-directory`
    /// annotation names its manifest directory.
    async fn create_schedule(&self, object: Schedule) -> Result<Schedule, ApiError>;
    /// The tenant's schedules.
    async fn list_schedules(&self) -> Result<Vec<Schedule>, ApiError>;
    /// One schedule.
    async fn get_schedule(&self, name: &str) -> Result<Schedule, ApiError>;
    /// Pauses or unpauses a schedule.
    async fn change_schedule(&self, name: &str, patch: SchedulePatch) -> Result<Schedule, ApiError>;
    /// Deletes a schedule (its backups stay).
    async fn delete_schedule(&self, name: &str) -> Result<(), ApiError>;

    /// The tenant's backup repositories (one per location and volume namespace).
    async fn list_backup_repositories(&self) -> Result<Vec<BackupRepository>, ApiError>;
    /// One backup repository.
    async fn get_backup_repository(&self, name: &str) -> Result<BackupRepository, ApiError>;
    /// The password that opens a backup repository, for `restic` in a disaster.
    async fn backup_repository_password(&self, name: &str) -> Result<SecretBytes, ApiError>;
    /// Maintains a backup repository now (prunes data no snapshot uses).
    async fn maintain_backup_repository(&self, name: &str) -> Result<BackupRepository, ApiError>;
}
