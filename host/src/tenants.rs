//! Tenants of a shared host: API tokens, each belonging to one tenant (namespace), and each
//! tenant's quota on the sandbox. Tokens are shown once and stored only as their SHA-256.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::sync::Semaphore;

use crate::coffer::Coffer;
use crate::locations::{LocationError, validate_name};
use crate::model::{ObjectMeta, go_duration};
use crate::sandbox::{Limits, Quota};
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
    Name(#[from] LocationError),
    /// A quota value is out of range.
    #[error("quota {field}: {reason}")]
    InvalidQuota {
        /// The quota field.
        field: &'static str,
        /// Why.
        reason: String,
    },
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
    let record = ApiToken { metadata: ObjectMeta::new(TOKENS, &digest(&token)), tenant: tenant.into(), token_name: name.into() };
    coffer.state.write(|txn| {
        if tokens_of(txn, tenant)?.iter().any(|t| t.token_name == name) {
            return Err(TenantError::Name(LocationError::AlreadyExists { kind: "token", name: name.into() }));
        }
        txn.put(&record)?;
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
            return Err(TenantError::Name(LocationError::NotFound { kind: "token", name: name.into() }));
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

/// A tenant's quota on the sandbox; unset fields take the sandbox's limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantQuota {
    /// Named `quota`, in the tenant's namespace.
    pub metadata: ObjectMeta,
    /// Provider calls in flight at once across the tenant's locations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_calls: Option<u32>,
    /// Linear memory per provider instance, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Longest one provider call may take.
    #[serde(default, with = "go_duration::option", skip_serializing_if = "Option::is_none")]
    pub call_deadline: Option<Duration>,
}

impl Resource for TenantQuota {
    const KIND: &'static str = "TenantQuota";
    fn namespace(&self) -> &str {
        &self.metadata.namespace
    }
    fn name(&self) -> &str {
        &self.metadata.name
    }
}

/// The one name a tenant's quota has.
const QUOTA: &str = "quota";

/// Sets `tenant`'s quota (replacing the previous one). Applies to the next provider instance.
pub fn set_quota(
    coffer: &Coffer,
    tenant: &str,
    concurrent_calls: Option<u32>,
    memory_bytes: Option<u64>,
    call_deadline: Option<Duration>,
) -> Result<TenantQuota, TenantError> {
    validate_name("tenant", tenant)?;
    if concurrent_calls == Some(0) {
        return Err(TenantError::InvalidQuota { field: "concurrentCalls", reason: "must be at least 1".into() });
    }
    let most = coffer.sandbox.limits().memory_bytes;
    if let Some(bytes) = memory_bytes
        && !(1 << 20..=most).contains(&bytes)
    {
        return Err(TenantError::InvalidQuota {
            field: "memoryBytes",
            reason: format!("{bytes} is outside 1 MiB..={most} (the host's limit per instance)"),
        });
    }
    if call_deadline.is_some_and(|d| d.is_zero()) {
        return Err(TenantError::InvalidQuota { field: "callDeadline", reason: "must be longer than 0s".into() });
    }
    let quota = TenantQuota { metadata: ObjectMeta::new(tenant, QUOTA), concurrent_calls, memory_bytes, call_deadline };
    coffer.state.write(|txn| txn.put(&quota))?;
    Ok(quota)
}

/// The call caps of the tenants with one: one semaphore per tenant, shared by all its
/// provider handles, replaced when the cap changes.
#[derive(Debug, Default)]
pub struct CallGates {
    gates: Mutex<HashMap<String, (u32, Arc<Semaphore>)>>,
}

impl CallGates {
    fn gate(&self, tenant: &str, cap: u32) -> Arc<Semaphore> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        match gates.get(tenant) {
            Some((c, gate)) if *c == cap => gate.clone(),
            _ => {
                let gate = Arc::new(Semaphore::new(cap as usize));
                gates.insert(tenant.to_owned(), (cap, gate.clone()));
                gate
            }
        }
    }
}

/// The quota `tenant`'s provider instances run under, read in `txn`. On a shared host every
/// tenant has at most [`Coffer::tenant_instances`] live instances, quota or not, so that no
/// tenant can take the whole instance pool.
pub(crate) fn quota_of(coffer: &Coffer, txn: &Txn<'_>, tenant: &str) -> Result<Quota, StateError> {
    let instances = coffer.tenant_instances.map(|cap| coffer.call_gates.gate(&format!("{tenant}\0instances"), cap));
    let Some(q) = txn.get::<TenantQuota>(tenant, QUOTA)? else { return Ok(Quota { instances, ..Quota::default() }) };
    let sandbox = coffer.sandbox.limits();
    let limits = (q.memory_bytes.is_some() || q.call_deadline.is_some()).then(|| Limits {
        memory_bytes: q.memory_bytes.unwrap_or(sandbox.memory_bytes),
        call_deadline: q.call_deadline.unwrap_or(sandbox.call_deadline),
        ..sandbox.clone()
    });
    Ok(Quota { limits, calls: q.concurrent_calls.map(|cap| coffer.call_gates.gate(tenant, cap)), instances })
}
