//! The one error type every provider call returns.

use thiserror::Error;

/// Why a provider call failed. The variant is what the host branches on; the text is for people.
///
/// It maps one to one onto the WIT `error` variant of `coffer:provider/types`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The object, volume or snapshot does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The object, volume or snapshot already exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The credential does not allow the operation.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The credential is missing, malformed or rejected.
    #[error("authentication failed: {0}")]
    Unauthenticated(String),
    /// A config key is unknown, missing or has a bad value.
    #[error("invalid config key {key:?}: {reason}")]
    InvalidConfig {
        /// The key at fault.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An argument is malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The backing service failed or could not be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The provider does not implement the operation.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An [`Error::InvalidConfig`] for `key`.
    pub fn invalid_config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig { key: key.into(), reason: reason.into() }
    }

    /// Maps an I/O error on `what` to the variant that means the same thing.
    pub fn from_io(what: &str, err: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        let text = format!("{what}: {err}");
        match err.kind() {
            ErrorKind::NotFound => Error::NotFound(text),
            ErrorKind::AlreadyExists => Error::AlreadyExists(text),
            ErrorKind::PermissionDenied => Error::PermissionDenied(text),
            ErrorKind::InvalidInput | ErrorKind::InvalidFilename => Error::InvalidArgument(text),
            _ => Error::Other(text),
        }
    }
}

/// The result type of provider calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
