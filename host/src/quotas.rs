//! Each tenant's quota on the sandbox: provider calls in flight, memory and deadline per
//! instance, and (on a shared host) live instances, read afresh for every provider instance.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::coffer::Coffer;
use crate::model::{ObjectMeta, go_duration};
use crate::object::{ObjectError, validate_name};
use crate::sandbox::{Limits, Quota};
use crate::state::{Resource, StateError, Txn};

/// A quota could not be set.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// The tenant's name is invalid.
    #[error(transparent)]
    Object(#[from] ObjectError),
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
) -> Result<TenantQuota, QuotaError> {
    validate_name("tenant", tenant)?;
    if concurrent_calls == Some(0) {
        return Err(QuotaError::InvalidQuota { field: "concurrentCalls", reason: "must be at least 1".into() });
    }
    let most = coffer.sandbox.limits().memory_bytes;
    if let Some(bytes) = memory_bytes
        && !(1 << 20..=most).contains(&bytes)
    {
        return Err(QuotaError::InvalidQuota {
            field: "memoryBytes",
            reason: format!("{bytes} is outside 1 MiB..={most} (the host's limit per instance)"),
        });
    }
    if call_deadline.is_some_and(|d| d.is_zero()) {
        return Err(QuotaError::InvalidQuota { field: "callDeadline", reason: "must be longer than 0s".into() });
    }
    let mut quota = TenantQuota { metadata: ObjectMeta::new(tenant, QUOTA), concurrent_calls, memory_bytes, call_deadline };
    coffer.state.write(|txn| txn.put(&mut quota))?;
    Ok(quota)
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
