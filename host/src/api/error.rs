//! The one error of the service layer: a reason a client can act on (Kubernetes' `Status`
//! reasons), the library's message naming the object or field at fault, and that field. It is
//! what a local call returns and what travels over the wire, so that a client of a server gets
//! the same typed error as a local caller.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::wire::NotBase64;
use crate::backup::BackupError;
use crate::confine::PathError;
use crate::fsb::FsbError;
use crate::locations::LocationError;
use crate::object::ObjectError;
use crate::quotas::QuotaError;
use crate::schedules::ScheduleError;
use crate::secrets::SecretError;
use crate::state::StateError;
use crate::tokens::TenantError;

/// Why a call failed, as a client acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Reason {
    /// The request is malformed or names something unusable (`400`).
    BadRequest,
    /// The request body does not decode (`422`).
    Invalid,
    /// No (valid) token (`401`).
    Unauthorized,
    /// The object does not exist (`404`).
    NotFound,
    /// The name is taken (`409`).
    AlreadyExists,
    /// The object's current state forbids it (`409`).
    Conflict,
    /// Too many requests from this client (`429`).
    TooManyRequests,
    /// A location's provider or bucket failed (`502`).
    BadGateway,
    /// The service cannot answer now: its state is not writable, or it is unreachable (`503`).
    ServiceUnavailable,
    /// A fault of the service itself (`500`).
    InternalError,
}

impl Reason {
    /// The HTTP status the reason is answered with.
    pub fn status(self) -> u16 {
        match self {
            Reason::BadRequest => 400,
            Reason::Invalid => 422,
            Reason::Unauthorized => 401,
            Reason::NotFound => 404,
            Reason::AlreadyExists | Reason::Conflict => 409,
            Reason::TooManyRequests => 429,
            Reason::BadGateway => 502,
            Reason::ServiceUnavailable => 503,
            Reason::InternalError => 500,
        }
    }

    /// The reason of an answer with HTTP status `status` that did not say.
    pub fn of_status(status: u16) -> Reason {
        match status {
            401 => Reason::Unauthorized,
            404 => Reason::NotFound,
            409 => Reason::Conflict,
            422 => Reason::Invalid,
            429 => Reason::TooManyRequests,
            502 | 504 => Reason::BadGateway,
            503 => Reason::ServiceUnavailable,
            400..=499 => Reason::BadRequest,
            _ => Reason::InternalError,
        }
    }
}

/// A call of the service layer failed. On the wire: `{"reason": …, "error": …, "field": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct ApiError {
    /// Why, as a client acts on it.
    pub reason: Reason,
    /// What went wrong, naming the object or field at fault (never a secret value).
    #[serde(rename = "error")]
    pub message: String,
    /// The field at fault, when one is (e.g. `spec.objectStorage.bucket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error for `reason` saying `message`.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        ApiError { reason, message: message.into(), field: None }
    }

    /// A [`Reason::BadRequest`] saying `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(Reason::BadRequest, message)
    }

    /// The same error, naming `field` as the one at fault.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    fn of(reason: Reason, error: &dyn std::fmt::Display) -> Self {
        ApiError::new(reason, error.to_string())
    }
}

impl From<StateError> for ApiError {
    /// Worded without the host's paths (the state logs them).
    fn from(e: StateError) -> Self {
        match e {
            StateError::Unwritable { message, .. } => {
                ApiError::new(Reason::ServiceUnavailable, format!("the service cannot write its state now ({message}); try again later"))
            }
            StateError::Database { message, .. } => ApiError::new(Reason::InternalError, format!("the state failed: {message}")),
            StateError::Stale { .. } => ApiError::of(Reason::Conflict, &e).at("metadata.resourceVersion"),
            other => ApiError::of(Reason::InternalError, &other),
        }
    }
}

impl From<ObjectError> for ApiError {
    fn from(e: ObjectError) -> Self {
        match e {
            ObjectError::NotFound { .. } => ApiError::of(Reason::NotFound, &e),
            ObjectError::AlreadyExists { .. } => ApiError::of(Reason::AlreadyExists, &e),
            ObjectError::InvalidName { .. } => ApiError::of(Reason::BadRequest, &e).at("metadata.name"),
        }
    }
}

impl From<PathError> for ApiError {
    fn from(e: PathError) -> Self {
        let field = match &e {
            PathError::Outside { field, .. } | PathError::Io { field, .. } => field.clone(),
        };
        ApiError::of(Reason::BadRequest, &e).at(field)
    }
}

impl From<NotBase64> for ApiError {
    fn from(e: NotBase64) -> Self {
        let field = e.field.clone();
        ApiError::of(Reason::BadRequest, &e).at(field)
    }
}

impl From<LocationError> for ApiError {
    fn from(e: LocationError) -> Self {
        let reason = match e {
            LocationError::State(inner) => return inner.into(),
            LocationError::Object(inner) => return inner.into(),
            LocationError::Path(inner) => return inner.into(),
            LocationError::SecondDefault { .. } => return ApiError::of(Reason::Conflict, &e).at("spec.default"),
            LocationError::InvalidField { ref field, .. } => {
                let field = field.clone();
                return ApiError::of(Reason::BadRequest, &e).at(field);
            }
            LocationError::Credential { .. } => return ApiError::of(Reason::BadRequest, &e).at("spec.credential"),
            LocationError::Plugin { .. } => return ApiError::of(Reason::BadRequest, &e).at("spec.provider"),
            LocationError::Provider(_) => Reason::BadGateway,
            LocationError::Keyring(_) => Reason::InternalError,
            _ => Reason::BadRequest,
        };
        ApiError::of(reason, &e)
    }
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        let reason = match e {
            BackupError::Object(inner) => return inner.into(),
            BackupError::Location(inner) => return inner.into(),
            BackupError::State(inner) => return inner.into(),
            BackupError::Path(inner) => return inner.into(),
            BackupError::Refused(_) => Reason::Conflict,
            BackupError::Io { .. } => Reason::BadRequest,
            BackupError::Encryption(crate::encryption::EncryptionError::NoKey { .. } | crate::encryption::EncryptionError::WrongKey { .. }) => {
                Reason::Conflict
            }
            BackupError::Provider(_) | BackupError::Malformed { .. } | BackupError::Encryption(_) => Reason::BadGateway,
        };
        ApiError::of(reason, &e)
    }
}

impl From<FsbError> for ApiError {
    fn from(e: FsbError) -> Self {
        let reason = match e {
            FsbError::Object(inner) => return inner.into(),
            FsbError::State(inner) => return inner.into(),
            FsbError::Location(inner) => return inner.into(),
            FsbError::Secret(inner) => return inner.into(),
            FsbError::Password { .. } => Reason::Conflict,
            FsbError::Repository { .. } | FsbError::Provider(_) | FsbError::NoSnapshot { .. } => Reason::BadGateway,
            FsbError::Keyring(_) | FsbError::Task(_) => Reason::InternalError,
        };
        ApiError::of(reason, &e)
    }
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::Object(inner) => inner.into(),
            SecretError::State(inner) => inner.into(),
            other => ApiError::of(Reason::BadRequest, &other).at("data"),
        }
    }
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Object(inner) => inner.into(),
            ScheduleError::State(inner) => inner.into(),
            ScheduleError::InvalidCadence { .. } => ApiError::of(Reason::BadRequest, &e).at("spec.schedule"),
            other => ApiError::of(Reason::BadRequest, &other).at("spec.template"),
        }
    }
}

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::Object(inner) => inner.into(),
            TenantError::State(inner) => inner.into(),
        }
    }
}

impl From<QuotaError> for ApiError {
    fn from(e: QuotaError) -> Self {
        match e {
            QuotaError::Object(inner) => inner.into(),
            QuotaError::State(inner) => inner.into(),
            other => ApiError::of(Reason::BadRequest, &other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_crosses_the_wire_whole() {
        let e: ApiError = LocationError::InvalidField { field: "spec.objectStorage.bucket".into(), reason: "bucket is required".into() }.into();
        let wire = serde_json::to_string(&e).unwrap();
        assert_eq!(wire, r#"{"reason":"BadRequest","error":"spec.objectStorage.bucket: bucket is required","field":"spec.objectStorage.bucket"}"#);
        assert_eq!(serde_json::from_str::<ApiError>(&wire).unwrap(), e);
        let e: ApiError = LocationError::SecondDefault { name: "b".into(), existing: "a".into() }.into();
        assert_eq!((e.reason, e.field.as_deref(), e.reason.status()), (Reason::Conflict, Some("spec.default"), 409));
        for status in [400, 401, 404, 409, 422, 429, 500, 502, 503] {
            assert_eq!(Reason::of_status(status).status(), status);
        }
    }
}
