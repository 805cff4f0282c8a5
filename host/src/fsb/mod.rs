//! File-system backup (Velero's FSB): volume directories backed up into restic-format
//! repositories, one per (backup storage location, volume namespace) at
//! `<prefix>/restic/<namespace>`, written with `rustic_core` through the location's object-store
//! provider. `restic` itself can check and restore them, given the namespace's password
//! (secret `velero-repo-credentials`, key `repository-password`).

mod error;
mod password;
mod repository;
mod source;
mod store;

pub use error::FsbError;
pub use password::{REPO_CREDENTIALS, REPO_PASSWORD_KEY, repository_password};
pub use repository::{VolumeRepository, VolumeRestore, VolumeSnapshot, repository_root, restic_identifier};
