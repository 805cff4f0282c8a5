//! The operator's API, on a Unix socket in the data directory that only its owner may open:
//! tokens and quotas can be managed while the server holds the state. `coffer tenant` uses
//! it when a server is running.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::coffer::Coffer;
use crate::model::go_duration;
use crate::quotas::{self, QuotaError, TenantQuota};
use crate::tenants::{self, ApiToken, TenantError};

/// The socket's file name under the data directory.
pub const ADMIN_SOCKET: &str = "admin.sock";

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
            QuotaError::InvalidQuota { .. } => ApiError::bad_request(e.to_string()),
        }
    }
}

/// A token to create.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewToken {
    /// Its name.
    pub name: String,
}

/// A created token: shown this once.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The token.
    pub token: String,
}

/// A quota to set.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaBody {
    /// Provider calls in flight at once.
    pub concurrent_calls: Option<u32>,
    /// Memory per instance, bytes.
    pub memory_bytes: Option<u64>,
    /// Longest provider call.
    #[serde(default, with = "go_duration::option")]
    pub call_deadline: Option<Duration>,
}

async fn create_token(
    State(coffer): State<Arc<Coffer>>,
    Path(tenant): Path<String>,
    Json(body): Json<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let (token, _) = tenants::create_token(&coffer, &tenant, &body.name)?;
    let token = String::from_utf8_lossy(token.expose()).into_owned();
    Ok((StatusCode::CREATED, Json(CreatedToken { token })))
}

async fn list_tokens(State(coffer): State<Arc<Coffer>>, Path(tenant): Path<String>) -> Result<Json<Vec<ApiToken>>, ApiError> {
    Ok(Json(tenants::list_tokens(&coffer, &tenant)?))
}

async fn revoke_token(State(coffer): State<Arc<Coffer>>, Path((tenant, name)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    tenants::revoke_token(&coffer, &tenant, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_quota(
    State(coffer): State<Arc<Coffer>>,
    Path(tenant): Path<String>,
    Json(q): Json<QuotaBody>,
) -> Result<Json<TenantQuota>, ApiError> {
    Ok(Json(quotas::set_quota(&coffer, &tenant, q.concurrent_calls, q.memory_bytes, q.call_deadline)?))
}

/// The operator's routes.
pub fn router(coffer: Arc<Coffer>) -> Router {
    Router::new()
        .route("/admin/tenants/{tenant}/tokens", get(list_tokens).post(create_token))
        .route("/admin/tenants/{tenant}/tokens/{name}", delete(revoke_token))
        .route("/admin/tenants/{tenant}/quota", put(set_quota))
        .with_state(coffer)
}
