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

    /// The variant an HTTP error status means, by the statuses every cloud shares: 401 →
    /// unauthenticated, 403 → permission denied, 404 → not found, 409 and 412 → already
    /// exists (a precondition on absence failed), 429 and 5xx → unavailable (try again).
    /// A provider matches its service's own error codes first, then falls back to this.
    pub fn from_status(status: u16, text: String) -> Self {
        match status {
            401 => Error::Unauthenticated(text),
            403 => Error::PermissionDenied(text),
            404 => Error::NotFound(text),
            409 | 412 => Error::AlreadyExists(text),
            429 | 500..=599 => Error::Unavailable(text),
            _ => Error::Other(text),
        }
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

/// The outcome of a delete, where a missing object counts as deleted (the contract's rule).
pub fn deleted(outcome: Result<()>) -> Result<()> {
    match outcome {
        Err(Error::NotFound(_)) => Ok(()),
        other => other,
    }
}

/// The outcome of an existence check made as a request that fails with not-found when the
/// object is missing: `ok(false)`, never an error, for a missing one.
pub fn exists(outcome: Result<()>) -> Result<bool> {
    match outcome {
        Ok(()) => Ok(true),
        Err(Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_mean_the_same_everywhere_and_missing_is_not_an_error() {
        assert_eq!(Error::from_status(404, "x".into()), Error::NotFound("x".into()));
        assert_eq!(Error::from_status(412, "x".into()), Error::AlreadyExists("x".into()));
        assert_eq!(Error::from_status(429, "x".into()), Error::Unavailable("x".into()));
        assert_eq!(Error::from_status(503, "x".into()), Error::Unavailable("x".into()));
        assert_eq!(Error::from_status(400, "x".into()), Error::Other("x".into()));
        assert_eq!(deleted(Err(Error::NotFound("gone".into()))), Ok(()));
        assert_eq!(deleted(Err(Error::PermissionDenied("no".into()))), Err(Error::PermissionDenied("no".into())));
        assert_eq!(exists(Err(Error::NotFound("gone".into()))), Ok(false));
        assert_eq!(exists(Ok(())), Ok(true));
    }
}
