//! Errors as HTTP answers: the status the error's reason stands for, and the error itself as
//! the body (`{"reason": …, "error": …, "field": …}`), which the client reads back typed.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub use crate::api::ApiError;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.reason.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(status = %status, "{}", self.message);
        }
        (status, Json(self)).into_response()
    }
}
