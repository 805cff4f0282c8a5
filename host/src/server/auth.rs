//! Who is asking: the tenant an `Authorization: Bearer <token>` header names. Every API
//! route takes a [`Tenant`], so none can run without one, and the tenant is never taken from
//! the request's path or body. A client address that sends too many bad tokens is refused
//! for a while.

use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::error::ApiError;
use super::AppState;
use crate::tenants::authenticate;

/// The tenant (namespace) a request acts as.
#[derive(Debug, Clone)]
pub struct Tenant(pub String);

impl FromRequestParts<Arc<AppState>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let client = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
        if let Some(Err(wait)) = client.map(|ip| state.failed_tokens.check(ip)) {
            return Err(ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: format!("too many requests with bad tokens from this address; try again in {} s", wait.as_secs() + 1),
            });
        }
        let unauthorized = |message: &str| ApiError { status: StatusCode::UNAUTHORIZED, message: message.into() };
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("no Authorization header: send `Authorization: Bearer <token>`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("the Authorization header is not `Bearer <token>`"))?;
        match authenticate(&state.coffer, token.trim()) {
            Ok(Some(tenant)) => Ok(Tenant(tenant)),
            Ok(None) => {
                // A token that was presented and is wrong counts as a guess.
                if let Some(ip) = client {
                    state.failed_tokens.record(ip);
                }
                Err(unauthorized("the token is not valid (unknown or revoked)"))
            }
            Err(e) => Err(ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: e.to_string() }),
        }
    }
}
