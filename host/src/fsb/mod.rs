//! File-system backup (Velero's FSB): volume directories backed up into restic-format
//! repositories, one per (backup storage location, volume namespace) at
//! `<prefix>/restic/<namespace>`, written with `rustic_core` through the location's object-store
//! provider. `restic` itself can check and restore them, given the namespace's password
//! (secret `velero-repo-credentials`, key `repository-password`).

mod backup_repositories;
mod error;
mod password;
mod progress;
mod repository;
mod source;
mod store;
mod unlocked_key;

pub use backup_repositories::{
    BackupRepository, BackupRepositorySpec, BackupRepositoryStatus, DEFAULT_MAINTENANCE_FREQUENCY, LocationRepositories, MaintenanceStatus,
    backup_interrupted, backup_repository_name, backup_repository_password, get_backup_repositories, maintain_backup_repository,
    open_backup_repository,
};
pub use error::FsbError;
pub use password::{REPO_CREDENTIALS, REPO_PASSWORD_KEY, repository_password};
pub use progress::DataCounter;
pub use repository::{Pruned, VolumeRepository, VolumeRestore, VolumeSnapshot, repository_root, restic_identifier};
