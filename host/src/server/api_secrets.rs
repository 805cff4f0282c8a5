//! `/v1/secrets`: values go in (base64, as a Kubernetes Secret's `data`), never come out.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::auth::Tenant;
use super::error::ApiError;
use crate::api::SecretBody;
use crate::secrets::{self, SecretSummary};

fn values(body: SecretBody) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    body.values().map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Lists the tenant's secrets (names and keys).
pub async fn list_secrets(State(app): State<Arc<AppState>>, Tenant(ns): Tenant) -> Result<Json<Vec<SecretSummary>>, ApiError> {
    Ok(Json(secrets::get_secrets(&app.coffer, &ns, &[])?.iter().map(SecretSummary::from).collect()))
}

/// One secret (name and keys).
pub async fn get_secret(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Result<Json<SecretSummary>, ApiError> {
    Ok(Json(SecretSummary::from(&secrets::get_secrets(&app.coffer, &ns, &[name])?[0])))
}

/// Creates a secret.
pub async fn create_secret(
    State(app): State<Arc<AppState>>,
    Tenant(ns): Tenant,
    Json(body): Json<SecretBody>,
) -> Result<(StatusCode, Json<SecretSummary>), ApiError> {
    let name = body.metadata.name.clone();
    let created = secrets::create_secret(&app.coffer, &ns, &name, values(body)?)?;
    Ok((StatusCode::CREATED, Json(SecretSummary::from(&created))))
}

/// Sets keys of a secret (rotation): the next provider call uses the new values.
pub async fn put_secret(
    State(app): State<Arc<AppState>>,
    Tenant(ns): Tenant,
    Path(name): Path<String>,
    Json(body): Json<SecretBody>,
) -> Result<Json<SecretSummary>, ApiError> {
    if body.metadata.name != name {
        return Err(ApiError::bad_request(format!("metadata.name {:?} does not match the path's {name:?}", body.metadata.name)));
    }
    Ok(Json(SecretSummary::from(&secrets::set_secret(&app.coffer, &ns, &name, values(body)?)?)))
}

/// Deletes a secret.
pub async fn delete_secret(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    secrets::delete_secrets(&app.coffer, &ns, &[name])?;
    Ok(StatusCode::NO_CONTENT)
}
