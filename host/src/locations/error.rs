//! Location errors, each naming the object, key or provider at fault.

use thiserror::Error;

use crate::confine::PathError;
use crate::keyring::KeyringError;
use crate::object::ObjectError;
use crate::plugins::PluginError;
use crate::sandbox::{GrantError, ProviderError};
use crate::state::StateError;

/// A location operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LocationError {
    /// A name is invalid, taken or unknown.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// Another location is already the default.
    #[error(
        "backup storage location {existing:?} is already the default; create {name:?} without spec.default, then make it the default by changing it (which moves the default)"
    )]
    SecondDefault {
        /// The location being created.
        name: String,
        /// The current default.
        existing: String,
    },
    /// A flag or field has a bad value.
    #[error("{field}: {reason}")]
    InvalidField {
        /// The field, e.g. `spec.objectStorage.bucket`.
        field: String,
        /// Why.
        reason: String,
    },
    /// A credential cannot be resolved.
    #[error("{location}: credential {secret}={key}: {reason}")]
    Credential {
        /// The location.
        location: String,
        /// The secret.
        secret: String,
        /// The key in it.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The provider is unknown or of the wrong kind.
    #[error("{location}: {error}")]
    Plugin {
        /// The location.
        location: String,
        /// The plugin error.
        error: PluginError,
    },
    /// The location's config cannot be granted.
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The location's endpoint did not answer in time.
    #[error("timed out after {0} s")]
    TimedOut(u64),
    /// The bucket holds something other than Velero's layout.
    #[error("{0}")]
    Layout(String),
    /// A path the tenant named cannot be used.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A secret could not be decrypted.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
}

impl LocationError {
    /// The error as the reason in a location's status message: a provider's own error without
    /// the location name, which the message already carries.
    pub fn reason(&self) -> String {
        match self {
            LocationError::Provider(e) => e.kind.to_string(),
            other => other.to_string(),
        }
    }

    /// Whether the error is in the location's own definition (unknown provider or config key,
    /// unusable directory or endpoint, missing credential), so that retrying cannot help.
    pub fn is_definition_error(&self) -> bool {
        matches!(
            self,
            LocationError::Plugin { .. }
                | LocationError::Grant(_)
                | LocationError::Credential { .. }
                | LocationError::InvalidField { .. }
        ) || matches!(self, LocationError::Provider(e) if matches!(e.kind, crate::sandbox::ErrorKind::InvalidConfig { .. }))
    }
}
