//! Errors as HTTP answers: a status chosen by meaning and `{"error": "<message>"}`. Messages
//! are the library's, which name the object at fault and never carry secret values.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::backup::BackupError;
use crate::locations::LocationError;
use crate::object::ObjectError;
use crate::schedules::ScheduleError;
use crate::secrets::SecretError;
use crate::state::StateError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    /// A 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    fn new(status: StatusCode, error: &dyn std::fmt::Display) -> Self {
        ApiError { status, message: error.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, "{}", self.message);
        }
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

/// A state failure, worded without the host's paths (the state logs them): `503` while a full
/// disk keeps the state from being written (the server recovers by itself), `500` otherwise.
fn state_error(e: &StateError) -> ApiError {
    match e {
        StateError::Unwritable { message, .. } => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the server cannot write its state now ({message}); try again later"),
        },
        StateError::Database { message, .. } => {
            ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: format!("the server's state failed: {message}") }
        }
        _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// `404` for an unknown object, `409` for a taken name, `400` for an invalid one.
fn object_error(e: &ObjectError) -> ApiError {
    let status = match e {
        ObjectError::NotFound { .. } => StatusCode::NOT_FOUND,
        ObjectError::AlreadyExists { .. } => StatusCode::CONFLICT,
        ObjectError::InvalidName { .. } => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e)
}

impl From<ObjectError> for ApiError {
    fn from(e: ObjectError) -> Self {
        object_error(&e)
    }
}

fn location_error(e: &LocationError) -> ApiError {
    let status = match e {
        LocationError::State(inner) => return state_error(inner),
        LocationError::Object(inner) => return object_error(inner),
        LocationError::SecondDefault { .. } => StatusCode::CONFLICT,
        LocationError::Provider(_) => StatusCode::BAD_GATEWAY,
        LocationError::Keyring(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e)
}

impl From<LocationError> for ApiError {
    fn from(e: LocationError) -> Self {
        location_error(&e)
    }
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        let status = match &e {
            BackupError::Object(inner) => return object_error(inner),
            BackupError::Location(inner) => return location_error(inner),
            BackupError::State(inner) => return state_error(inner),
            BackupError::Refused(_) => StatusCode::CONFLICT,
            BackupError::Io { .. } => StatusCode::BAD_REQUEST,
            BackupError::Provider(_) | BackupError::Malformed { .. } => StatusCode::BAD_GATEWAY,
        };
        ApiError::new(status, &e)
    }
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        match &e {
            SecretError::Object(inner) => object_error(inner),
            SecretError::State(inner) => state_error(inner),
            _ => ApiError::new(StatusCode::BAD_REQUEST, &e),
        }
    }
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match &e {
            ScheduleError::Object(inner) => object_error(inner),
            ScheduleError::State(inner) => state_error(inner),
            _ => ApiError::new(StatusCode::BAD_REQUEST, &e),
        }
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        state_error(&e)
    }
}
