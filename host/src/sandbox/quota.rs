//! What one tenant's provider instances may use: limits no looser than the sandbox's, and a
//! cap on how many of its provider calls run at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Limits;

/// A tenant's share of the sandbox. The default takes nothing away.
#[derive(Debug, Clone, Default)]
pub struct Quota {
    /// Limits per instance; each is capped by the sandbox's own.
    pub limits: Option<Limits>,
    /// Calls in flight at once across the tenant's instances, shared by every handle that
    /// holds a clone.
    pub calls: Option<Arc<Semaphore>>,
    /// Live instances at once across the tenant's locations, shared likewise: an instance
    /// holds a permit from its creation until it is discarded.
    pub instances: Option<Arc<Semaphore>>,
}

/// The call caps of the tenants with one: one semaphore per tenant, shared by all its
/// provider handles, replaced when the cap changes.
#[derive(Debug, Default)]
pub struct CallGates {
    gates: Mutex<HashMap<String, (u32, Arc<Semaphore>)>>,
}

impl CallGates {
    /// The semaphore capping `tenant` at `cap`.
    pub(crate) fn gate(&self, tenant: &str, cap: u32) -> Arc<Semaphore> {
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

impl Quota {
    /// The limits an instance under this quota runs with inside `sandbox`'s.
    pub(crate) fn effective(&self, sandbox: &Limits) -> Limits {
        let Some(own) = &self.limits else { return sandbox.clone() };
        Limits {
            memory_bytes: own.memory_bytes.min(sandbox.memory_bytes),
            cpu_per_call: own.cpu_per_call.min(sandbox.cpu_per_call),
            call_deadline: own.call_deadline.min(sandbox.call_deadline),
            stream_idle: own.stream_idle.min(sandbox.stream_idle),
        }
    }

    /// Waits for room for one more live instance; the room lasts as long as the permit.
    pub(crate) async fn instance(&self) -> Option<OwnedSemaphorePermit> {
        let instances = self.instances.clone()?;
        // The semaphore is never closed.
        instances.acquire_owned().await.ok()
    }

    /// Waits for a turn to call a provider; the turn lasts as long as the permit.
    pub(crate) async fn turn(&self) -> Option<OwnedSemaphorePermit> {
        let calls = self.calls.clone()?;
        // The semaphore is never closed.
        calls.acquire_owned().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_quota_only_tightens() {
        let idle = Duration::from_secs(60);
        let sandbox = Limits { memory_bytes: 64 << 20, cpu_per_call: Duration::from_secs(10), call_deadline: Duration::from_secs(60), stream_idle: idle };
        let loose = Limits { memory_bytes: 1 << 30, cpu_per_call: Duration::from_secs(1), call_deadline: Duration::from_secs(600), stream_idle: idle };
        let q = Quota { limits: Some(loose), ..Quota::default() };
        assert_eq!(
            q.effective(&sandbox),
            Limits { memory_bytes: 64 << 20, cpu_per_call: Duration::from_secs(1), call_deadline: Duration::from_secs(60), stream_idle: idle }
        );
        assert_eq!(Quota::default().effective(&sandbox), sandbox);
    }
}
