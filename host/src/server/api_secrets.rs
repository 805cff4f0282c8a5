//! `/v1/secrets`: values go in (base64, as a Kubernetes Secret's `data`), never come out.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Tenant;
use super::error::ApiError;
use crate::secrets::{self, SecretSummary};

/// A secret as a client sends it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretBody {
    /// `{"name": ...}`.
    pub metadata: SecretName,
    /// Key → base64 value.
    pub data: BTreeMap<String, String>,
}

/// The name part of a secret's metadata.
#[derive(Debug, Serialize, Deserialize)]
pub struct SecretName {
    /// The secret's name.
    pub name: String,
}

fn values(data: BTreeMap<String, String>) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    data.into_iter()
        .map(|(k, v)| match STANDARD.decode(v) {
            Ok(bytes) => Ok((k, bytes)),
            Err(e) => Err(ApiError::bad_request(format!("data.{k} is not base64: {e}"))),
        })
        .collect()
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
    let created = secrets::create_secret(&app.coffer, &ns, &body.metadata.name, values(body.data)?)?;
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
    Ok(Json(SecretSummary::from(&secrets::set_secret(&app.coffer, &ns, &name, values(body.data)?)?)))
}

/// Deletes a secret.
pub async fn delete_secret(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    secrets::delete_secrets(&app.coffer, &ns, &[name])?;
    Ok(StatusCode::NO_CONTENT)
}
