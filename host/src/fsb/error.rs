//! What can go wrong in a file-system backup or restore.

use thiserror::Error;

/// A file-system backup or restore failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FsbError {
    /// The repository could not be opened, read or written; rustic's own words, with the
    /// repository named.
    #[error("repository {repository}: {message}")]
    Repository {
        /// `backup-location "name":bucket/prefix/restic/namespace`.
        repository: String,
        /// What rustic said.
        message: String,
    },
    /// The repository's password is missing, unusable or wrong.
    #[error("repository {repository}: {reason} (the password is key {key:?} of secret {secret:?})")]
    Password {
        /// The repository.
        repository: String,
        /// The secret holding the password.
        secret: String,
        /// Its key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// No such record, or a bad name.
    #[error(transparent)]
    Object(#[from] crate::object::ObjectError),
    /// The password's secret could not be read or created.
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    /// The state failed.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// A secret could not be decrypted.
    #[error(transparent)]
    Keyring(#[from] crate::keyring::KeyringError),
    /// The location's provider could not be started.
    #[error(transparent)]
    Location(#[from] crate::locations::LocationError),
    /// The location's provider failed.
    #[error(transparent)]
    Provider(#[from] crate::sandbox::ProviderError),
    /// No snapshot with that ID in the repository.
    #[error("repository {repository}: no snapshot {snapshot:?}")]
    NoSnapshot {
        /// The repository.
        repository: String,
        /// The snapshot asked for.
        snapshot: String,
    },
    /// The blocking task running rustic failed.
    #[error("the repository task stopped: {0}")]
    Task(String),
}
