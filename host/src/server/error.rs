//! Errors as HTTP answers: a status chosen by meaning and `{"error": "<message>"}`. Messages
//! are the library's, which name the object at fault and never carry secret values.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::backup::BackupError;
use crate::locations::LocationError;
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

fn location_status(e: &LocationError) -> StatusCode {
    match e {
        LocationError::NotFound { .. } => StatusCode::NOT_FOUND,
        LocationError::AlreadyExists { .. } | LocationError::SecondDefault { .. } => StatusCode::CONFLICT,
        LocationError::Provider(_) => StatusCode::BAD_GATEWAY,
        LocationError::State(_) | LocationError::Keyring(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl From<LocationError> for ApiError {
    fn from(e: LocationError) -> Self {
        ApiError::new(location_status(&e), &e)
    }
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        let status = match &e {
            BackupError::Location(inner) => location_status(inner),
            BackupError::Refused(_) => StatusCode::CONFLICT,
            BackupError::Io { .. } => StatusCode::BAD_REQUEST,
            BackupError::Provider(_) | BackupError::Malformed { .. } => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, &e)
    }
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        let status = match &e {
            SecretError::Location(inner) => location_status(inner),
            SecretError::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, &e)
    }
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        let status = match &e {
            ScheduleError::Name(inner) => location_status(inner),
            ScheduleError::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, &e)
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, &e)
    }
}
