//! Who is asking: the tenant an `Authorization: Bearer <token>` header names. Every API
//! route takes the [`Calls`] of that tenant, so none can run without one, and the tenant is
//! never taken from the request's path or body. A client address that sends too many bad
//! tokens is refused for a while.

use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::api::{Host, LocalTenant, Reason};
use crate::tokens::authenticate;

/// The calls of the tenant a request acts as, on the engine.
pub struct Calls(pub LocalTenant);

impl FromRequestParts<Arc<AppState>> for Calls {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let client = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
        if let Some(Err(wait)) = client.map(|ip| state.failed_tokens.check(ip)) {
            let message = format!("too many requests with bad tokens from this address; try again in {} s", wait.as_secs() + 1);
            return Err(ApiError::new(Reason::TooManyRequests, message));
        }
        let unauthorized = |message: &str| ApiError::new(Reason::Unauthorized, message);
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
            Ok(Some(tenant)) => {
                let tenant = state.coffer.tenant(&tenant)?;
                let host = Host::Server(state.jobs.clone());
                Ok(Calls(LocalTenant::new(state.coffer.clone(), tenant, state.default_snapshot_locations.clone(), host)))
            }
            Ok(None) => {
                // A token that was presented and is wrong counts as a guess.
                if let Some(ip) = client {
                    state.failed_tokens.record(ip);
                }
                Err(unauthorized("the token is not valid (unknown or revoked)"))
            }
            Err(e) => Err(e.into()),
        }
    }
}
