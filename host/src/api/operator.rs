//! What the operator of a shared host can do to its tenants (tokens and quotas), as one trait:
//! on the data directory ([`LocalOperator`]) or, while a server holds it, through the server's
//! operator socket ([`Client::operator`]).

use std::sync::Arc;

use async_trait::async_trait;

use super::client::Client;
use super::error::ApiError;
use super::routes::{self, of_tenant};
use super::wire::{CreatedToken, NewToken, QuotaBody};
use crate::coffer::Coffer;
use crate::quotas::{self, TenantQuota};
use crate::tokens::{self, ApiToken};

/// The operator's calls.
#[async_trait]
pub trait OperatorApi: Send + Sync {
    /// Creates token `name` for `tenant`; the token is shown only in this answer.
    async fn create_token(&self, tenant: &str, name: &str) -> Result<CreatedToken, ApiError>;
    /// A tenant's tokens (names, never the tokens).
    async fn list_tokens(&self, tenant: &str) -> Result<Vec<ApiToken>, ApiError>;
    /// Revokes a tenant's token at once.
    async fn revoke_token(&self, tenant: &str, name: &str) -> Result<(), ApiError>;
    /// Sets a tenant's quota.
    async fn set_quota(&self, tenant: &str, quota: QuotaBody) -> Result<TenantQuota, ApiError>;
}

/// The operator's calls on the engine.
pub struct LocalOperator(pub Arc<Coffer>);

#[async_trait]
impl OperatorApi for LocalOperator {
    async fn create_token(&self, tenant: &str, name: &str) -> Result<CreatedToken, ApiError> {
        let (token, _) = tokens::create_token(&self.0, tenant, name)?;
        Ok(CreatedToken { token: String::from_utf8_lossy(token.expose()).into_owned() })
    }

    async fn list_tokens(&self, tenant: &str) -> Result<Vec<ApiToken>, ApiError> {
        Ok(tokens::list_tokens(&self.0, tenant)?)
    }

    async fn revoke_token(&self, tenant: &str, name: &str) -> Result<(), ApiError> {
        Ok(tokens::revoke_token(&self.0, tenant, name)?)
    }

    async fn set_quota(&self, tenant: &str, quota: QuotaBody) -> Result<TenantQuota, ApiError> {
        Ok(quotas::set_quota(&self.0, tenant, quota.concurrent_calls, quota.memory_bytes, quota.call_deadline)?)
    }
}

#[async_trait]
impl OperatorApi for Client {
    async fn create_token(&self, tenant: &str, name: &str) -> Result<CreatedToken, ApiError> {
        self.json("POST", &of_tenant(routes::TOKENS, tenant, ""), Some(&NewToken { name: name.into() })).await
    }

    async fn list_tokens(&self, tenant: &str) -> Result<Vec<ApiToken>, ApiError> {
        self.json("GET", &of_tenant(routes::TOKENS, tenant, ""), None::<&()>).await
    }

    async fn revoke_token(&self, tenant: &str, name: &str) -> Result<(), ApiError> {
        self.bytes("DELETE", &of_tenant(routes::TOKEN, tenant, name), None).await.map(drop)
    }

    async fn set_quota(&self, tenant: &str, quota: QuotaBody) -> Result<TenantQuota, ApiError> {
        self.json("PUT", &of_tenant(routes::QUOTA, tenant, ""), Some(&quota)).await
    }
}
