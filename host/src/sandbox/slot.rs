//! One location's provider instance: created on first use, initialised with the location's
//! config and credential, run under limits, and discarded after a trap or an overrun so that
//! the next call starts fresh.

use std::future::Future;

use wasmtime::{Store, Trap, UpdateDeadline};

use super::engine::TICK;
use super::error::{ErrorKind, ProviderError};
use super::grants::Grants;
use super::host_state::HostState;
use super::{Limits, Sandbox};

/// The longest a new instance waits for room in its tenant's cap of live instances.
const INSTANCE_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Creates a store for `grants` with memory and CPU `limits`.
pub(crate) fn new_store(sandbox: &Sandbox, grants: &Grants, limits: &Limits) -> wasmtime::Result<Store<HostState>> {
    let mut store = Store::new(&sandbox.inner.engine, HostState::new(grants, limits.memory_bytes)?);
    store.limiter(|state| &mut state.limiter);
    let budget = limits.cpu_per_call.max(TICK);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut ctx| {
        // Called only while guest code runs, once per tick: the count is CPU time in guest,
        // to which the host functions that compute for it add their own time.
        let state = ctx.data_mut();
        state.cpu_ticks += 1;
        Ok(if state.cpu_used(TICK) > budget { UpdateDeadline::Interrupt } else { UpdateDeadline::Yield(1) })
    });
    Ok(store)
}

/// The bindings of one provider world.
pub(crate) trait Provider: Sized + Send + Sync + 'static {
    /// The pre-instantiated component.
    type Pre: Clone + Send + Sync + 'static;
    /// Instantiates into `store`.
    fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> impl Future<Output = wasmtime::Result<Self>> + Send;
    /// Calls the world's `init` (whose generated binding takes a `&Vec`).
    #[allow(clippy::ptr_arg, reason = "matches the generated call_init signature")]
    fn init(
        &self,
        store: &mut Store<HostState>,
        config: &Vec<(String, String)>,
        credential: Option<&[u8]>,
    ) -> impl Future<Output = wasmtime::Result<Result<(), ErrorKind>>> + Send;
}

/// A live instance.
pub(crate) struct Live<P> {
    pub(crate) store: Store<HostState>,
    pub(crate) bindings: P,
    /// Its room in the tenant's instance cap, given back when the instance goes.
    _room: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// A location's instance slot.
pub(crate) struct Slot<P: Provider> {
    sandbox: Sandbox,
    pre: P::Pre,
    grants: Grants,
    limits: Limits,
    live: Option<Live<P>>,
}

impl<P: Provider> Slot<P> {
    /// A slot for `grants`, instantiated and initialised at once so that configuration errors
    /// surface here.
    pub(crate) async fn new(sandbox: Sandbox, pre: P::Pre, grants: Grants) -> Result<Self, ProviderError> {
        let limits = grants.quota.effective(&sandbox.inner.limits);
        let mut slot = Slot { sandbox, pre, grants, limits, live: None };
        let _turn = slot.turn().await;
        slot.live().await?;
        Ok(slot)
    }

    /// The location this slot serves.
    pub(crate) fn location(&self) -> &str {
        &self.grants.location
    }

    fn error(&self, kind: ErrorKind) -> ProviderError {
        ProviderError { location: self.grants.location.clone(), kind }
    }

    /// The free space its writes must leave on the host's data disk, if any.
    pub(crate) fn space(&self) -> Option<std::sync::Arc<crate::disk::SpaceReserve>> {
        self.grants.space.clone()
    }

    /// The limits this slot's instance runs under: the sandbox's, tightened by the quota.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Counts one call in the sandbox's statistics.
    pub(crate) fn record(&self, operation: &'static str, ok: bool, elapsed: std::time::Duration) {
        self.sandbox.inner.calls.record(operation, ok, elapsed);
    }

    /// Waits for the tenant's turn to call a provider (at once without a call cap).
    pub(crate) fn turn(&self) -> impl Future<Output = Option<tokio::sync::OwnedSemaphorePermit>> + Send + 'static {
        // Owns a clone of the quota, so that waiting holds no reference to the slot.
        let quota = self.grants.quota.clone();
        async move { quota.turn().await }
    }

    /// The live instance, created and initialised if there is none, with a fresh CPU budget.
    pub(crate) async fn live(&mut self) -> Result<&mut Live<P>, ProviderError> {
        if self.live.is_none() {
            // A tenant at its cap of live instances waits for one of them to go, but not
            // forever (its own runs could be waiting on each other).
            let wait = self.limits().call_deadline.min(INSTANCE_WAIT);
            let room = tokio::time::timeout(wait, self.grants.quota.instance())
                .await
                .map_err(|_| self.error(ErrorKind::Instantiate(format!("the tenant's cap of live provider instances stayed reached for {wait:?}"))))?;
            let mut store =
                new_store(&self.sandbox, &self.grants, &self.limits).map_err(|e| self.error(ErrorKind::Instantiate(format!("{e:#}"))))?;
            // Instantiation runs the component's start code: it gets a deadline too.
            let deadline = self.limits().call_deadline.min(super::STARTUP_DEADLINE);
            let bindings = match tokio::time::timeout(deadline, P::instantiate(&self.pre, &mut store)).await {
                Ok(bindings) => bindings.map_err(|e| self.error(ErrorKind::Instantiate(format!("{e:#}"))))?,
                Err(_) => return Err(self.error(ErrorKind::Instantiate(format!("did not finish within {deadline:?}")))),
            };
            let config: Vec<(String, String)> = self.grants.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let credential = self.grants.credential.as_ref().map(|c| c.expose());
            let deadline = self.limits().call_deadline;
            let outcome = tokio::time::timeout(deadline, bindings.init(&mut store, &config, credential)).await;
            let mut live = Live { store, bindings, _room: room };
            self.settle_with(&mut live, outcome)?;
            self.live = Some(live);
        }
        let live = self.live.as_mut().expect("set above");
        live.store.data_mut().reset_cpu();
        Ok(live)
    }

    /// Turns a finished (or timed-out) call into its result. An instance that trapped or
    /// overran is discarded.
    pub(crate) fn settle<T, E: Into<ErrorKind>>(
        &mut self,
        outcome: Result<wasmtime::Result<Result<T, E>>, tokio::time::error::Elapsed>,
    ) -> Result<T, ProviderError> {
        let mut live = self.live.take().expect("settle follows live()");
        let result = self.settle_with(&mut live, outcome);
        if self.poisoning(&result) {
            let output = live.store.data().output.contents();
            if !output.is_empty() {
                tracing::info!(location = %self.grants.location, "discarded provider's output: {}", String::from_utf8_lossy(&output));
            }
        } else {
            self.live = Some(live);
        }
        result
    }

    fn poisoning<T>(&self, result: &Result<T, ProviderError>) -> bool {
        matches!(
            result,
            Err(ProviderError {
                kind: ErrorKind::CpuLimit(_) | ErrorKind::Deadline(_) | ErrorKind::MemoryLimit { .. } | ErrorKind::Trap(_),
                ..
            })
        )
    }

    fn settle_with<T, E: Into<ErrorKind>>(
        &self,
        live: &mut Live<P>,
        outcome: Result<wasmtime::Result<Result<T, E>>, tokio::time::error::Elapsed>,
    ) -> Result<T, ProviderError> {
        let state = live.store.data();
        let kind = match outcome {
            Ok(Ok(Ok(value))) => return Ok(value),
            Ok(Ok(Err(e))) => e.into(),
            Err(_) => ErrorKind::Deadline(self.limits().call_deadline),
            Ok(Err(trap)) => {
                if state.limiter.refused_memory {
                    ErrorKind::MemoryLimit { limit: state.limiter.memory_bytes }
                } else if matches!(trap.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
                    ErrorKind::CpuLimit(self.limits().cpu_per_call)
                } else {
                    // The trap code says what happened; the wasm backtrace is for the log.
                    tracing::debug!(location = %self.location(), "provider trapped: {trap:?}");
                    match trap.downcast_ref::<Trap>() {
                        Some(code) => ErrorKind::Trap(code.to_string()),
                        None => ErrorKind::Trap(trap.root_cause().to_string()),
                    }
                }
            }
        };
        Err(self.error(kind))
    }
}

impl<C: Provider, T: Provider, O: Provider> Slot<super::bindings::Versioned<C, T, O>> {
    /// The contract version the slot's component was built against.
    pub(crate) fn contract(&self) -> &'static str {
        self.pre.contract()
    }

    /// Whether the slot's component has the calls contract `version` added.
    pub(crate) fn has(&self, version: &str) -> bool {
        self.pre.has(version)
    }
}

/// Runs one export call on a slot's live instance, under the call deadline, and settles its
/// outcome (discarding the instance after a trap or overrun).
///
/// `call_export!(slot, interface.call_x(args))` makes the same call at every contract version;
/// `call_export!(slot, "x", |bindings, store| future)` lets the caller match on the
/// [`Versioned`](super::bindings::Versioned) bindings itself.
macro_rules! call_export {
    ($slot:expr, $operation:expr, |$bindings:ident, $store:ident| $call:expr) => {{
        let deadline = $slot.limits().call_deadline;
        let _turn = $slot.turn().await;
        let started = std::time::Instant::now();
        let live = $slot.live().await?;
        let ($bindings, $store) = (&live.bindings, &mut live.store);
        let outcome = tokio::time::timeout(deadline, $call).await;
        let result = $slot.settle(outcome);
        $slot.record($operation, result.is_ok(), started.elapsed());
        result
    }};
    ($slot:expr, $interface:ident . $method:ident ( $($arg:expr),* )) => {
        $crate::sandbox::slot::call_export!($slot, stringify!($method).trim_start_matches("call_"), |bindings, store| async move {
            match bindings {
                $crate::sandbox::bindings::Versioned::Current(b) => b.$interface().$method(store, $($arg),*).await,
                $crate::sandbox::bindings::Versioned::V0_2(b) => b.$interface().$method(store, $($arg),*).await,
                $crate::sandbox::bindings::Versioned::V0_1(b) => b.$interface().$method(store, $($arg),*).await,
            }
        })
    };
}
pub(crate) use call_export;

/// The error for instantiating `component` as the wrong kind of provider.
pub(crate) fn wrong_kind(component: &super::ProviderComponent, grants: &Grants, wanted: super::ProviderKind) -> ProviderError {
    ProviderError {
        location: grants.location.clone(),
        kind: ErrorKind::Instantiate(format!(
            "provider {} is {}, not {}",
            component.manifest().name,
            component.kind().with_article(),
            wanted.with_article()
        )),
    }
}
