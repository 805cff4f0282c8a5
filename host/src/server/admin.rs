//! The operator's API, on a Unix socket in the data directory that only its owner may open:
//! tokens and quotas can be managed while the server holds the state. `coffer tenant` uses
//! it when a server is running.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, put};
use axum::{Json, Router};

use super::error::ApiError;
use crate::api::{CreatedToken, LocalOperator, NewToken, OperatorApi, QuotaBody, routes};
use crate::coffer::Coffer;
use crate::quotas::TenantQuota;
use crate::tokens::ApiToken;

/// The socket's file name under the data directory.
pub const ADMIN_SOCKET: &str = "admin.sock";

async fn create_token(State(op): State<Arc<LocalOperator>>, Path(tenant): Path<String>, Json(body): Json<NewToken>) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    Ok((StatusCode::CREATED, Json(op.create_token(&tenant, &body.name).await?)))
}

async fn list_tokens(State(op): State<Arc<LocalOperator>>, Path(tenant): Path<String>) -> Result<Json<Vec<ApiToken>>, ApiError> {
    Ok(Json(op.list_tokens(&tenant).await?))
}

async fn revoke_token(State(op): State<Arc<LocalOperator>>, Path((tenant, name)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    op.revoke_token(&tenant, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_quota(State(op): State<Arc<LocalOperator>>, Path(tenant): Path<String>, Json(q): Json<QuotaBody>) -> Result<Json<TenantQuota>, ApiError> {
    Ok(Json(op.set_quota(&tenant, q).await?))
}

/// The operator's routes.
pub fn router(coffer: Arc<Coffer>) -> Router {
    Router::new()
        .route(routes::TOKENS, get(list_tokens).post(create_token))
        .route(routes::TOKEN, delete(revoke_token))
        .route(routes::QUOTA, put(set_quota))
        .with_state(Arc::new(LocalOperator(coffer)))
}
