//! API tokens of a shared host, each belonging to one tenant (namespace). Tokens are
//! shown once and stored only as their SHA-256. (Tenants' quotas are in [`crate::quotas`].)

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::coffer::Coffer;
use crate::model::ObjectMeta;
use crate::object::{ObjectError, validate_name};
use crate::secret::SecretBytes;
use crate::state::{Resource, StateError, Txn};

/// The namespace API tokens are kept under: outside every tenant (not a valid name).
const TOKENS: &str = "";
/// What every token starts with, so that one pasted in the wrong place is recognisable.
const TOKEN_PREFIX: &str = "coffer_";

/// A tenant operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TenantError {
    /// A tenant or token name is invalid, taken or unknown.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The state failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// An API token's record: whose it is, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    /// Keyed by the token's SHA-256 (hex) as name, in no tenant's namespace.
    pub metadata: ObjectMeta,
    /// The tenant (namespace) the token acts as.
    pub tenant: String,
    /// The token's name, unique within its tenant, for listing and revoking.
    pub token_name: String,
}

impl Resource for ApiToken {
    const KIND: &'static str = "ApiToken";
    fn namespace(&self) -> &str {
        &self.metadata.namespace
    }
    fn name(&self) -> &str {
        &self.metadata.name
    }
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token named `name` for `tenant`. The token is returned once and not stored.
pub fn create_token(coffer: &Coffer, tenant: &str, name: &str) -> Result<(SecretBytes, ApiToken), TenantError> {
    validate_name("tenant", tenant)?;
    validate_name("token", name)?;
    let raw: [u8; 32] = rand::random();
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
    let mut record = ApiToken { metadata: ObjectMeta::new(TOKENS, &digest(&token)), tenant: tenant.into(), token_name: name.into() };
    coffer.state.write(|txn| {
        if tokens_of(txn, tenant)?.iter().any(|t| t.token_name == name) {
            return Err(TenantError::Object(ObjectError::already_exists("token", name)));
        }
        txn.put(&mut record)?;
        Ok(())
    })?;
    Ok((SecretBytes::new(token.into_bytes()), record))
}

fn tokens_of(txn: &Txn<'_>, tenant: &str) -> Result<Vec<ApiToken>, StateError> {
    Ok(txn.list::<ApiToken>(TOKENS)?.into_iter().filter(|t| t.tenant == tenant).collect())
}

/// The tokens of `tenant`.
pub fn list_tokens(coffer: &Coffer, tenant: &str) -> Result<Vec<ApiToken>, TenantError> {
    Ok(tokens_of(&coffer.state.read()?, tenant)?)
}

/// Revokes `tenant`'s token `name`; requests bearing it are refused from then on.
pub fn revoke_token(coffer: &Coffer, tenant: &str, name: &str) -> Result<(), TenantError> {
    coffer.state.write(|txn| {
        let Some(token) = tokens_of(txn, tenant)?.into_iter().find(|t| t.token_name == name) else {
            return Err(TenantError::Object(ObjectError::not_found("token", name)));
        };
        txn.delete::<ApiToken>(TOKENS, &token.metadata.name)?;
        Ok(())
    })
}

/// The tenant `token` acts as, if it is a live token.
pub fn authenticate(coffer: &Coffer, token: &str) -> Result<Option<String>, TenantError> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    Ok(coffer.state.read()?.get::<ApiToken>(TOKENS, &digest(token))?.map(|t| t.tenant))
}

