//! The sandbox runtime: one wasmtime engine, provider components compiled once, and instances
//! that each see only what their location grants.
//!
//! This module knows nothing of backups. It turns a location into [`Grants`] with
//! [`grants_for`], instantiates a provider with exactly those grants, and hands out typed
//! handles ([`ObjectStoreHandle`], [`VolumeSnapshotterHandle`]) whose calls are bounded in
//! memory, CPU time and wall time. A provider that traps or overruns is discarded and the next
//! call gets a fresh instance; nothing else is affected.

mod bindings;
mod call_stats;
mod cache;
mod component;
mod digest;
mod engine;
mod error;
mod grants;
mod host_state;
mod http_policy;
mod manifest;
mod network;
mod object_store;
mod quota;
mod signed_url;
mod slot;
mod streams;
mod tls;
mod volume_snapshotter;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use wasmtime::Engine;
use wasmtime::component::Linker;

pub use bindings::CONTRACT;
pub use call_stats::{CallStats, Histogram};
pub use component::{LoadError, ProviderComponent, ProviderKind};
pub use error::{ErrorKind, ProviderError, bounded};
pub use grants::{DirectoryGrant, Endpoint, GrantError, Grants, SOURCE_MOUNT, grants_for};
pub use tls::TlsOptions;
pub use manifest::{DirectoryRequest, Manifest};
pub use network::{Allowance, Reach, is_public};
pub use object_store::ObjectStoreHandle;
pub use quota::{CallGates, Quota};
pub use signed_url::{FetchError, Fetched, fetch_signed_url};
pub use volume_snapshotter::{SnapshotCopy, VolumeInfo, VolumeSnapshotterHandle};

use cache::ComponentCache;
pub(crate) use cache::sha256_hex;
use engine::EpochTicker;
use host_state::HostState;

/// Per-instance limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most linear memory an instance may have.
    pub memory_bytes: u64,
    /// Most CPU time one call may spend in guest code.
    pub cpu_per_call: Duration,
    /// Longest one call may take, waiting included.
    pub call_deadline: Duration,
    /// Longest a body stream may go without the other side taking or giving a byte (a
    /// client that stopped reading a download, a source that stopped yielding).
    pub stream_idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            cpu_per_call: Duration::from_secs(60),
            call_deadline: Duration::from_secs(3600),
            stream_idle: Duration::from_secs(60),
        }
    }
}

/// The longest a component may take to instantiate (its start code) or to `describe` itself.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// The sandbox could not start.
#[derive(Debug, Error)]
#[error("starting the WebAssembly runtime: {0}")]
pub struct SandboxError(String);

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: ComponentCache,
    limits: Limits,
    calls: CallStats,
    _ticker: EpochTicker,
}

/// The runtime shared by every provider instance. Cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

impl Sandbox {
    /// Starts the runtime. Compiled components are cached in `cache_dir` when given.
    pub fn new(cache_dir: Option<&Path>, limits: Limits) -> Result<Self, SandboxError> {
        let err = |e: wasmtime::Error| SandboxError(format!("{e:#}"));
        let engine = engine::build_engine(limits.memory_bytes).map_err(err)?;
        let mut linker = Linker::new(&engine);
        // Every WASI 0.2 interface is linked, so that std-built components instantiate; what
        // they can do is decided per instance by the WasiCtx and the HTTP policy.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(err)?;
        digest::add_to_linker(&mut linker).map_err(err)?;
        let cache = ComponentCache::new(&engine, cache_dir);
        let ticker = EpochTicker::start(engine.clone());
        Ok(Sandbox { inner: Arc::new(Inner { engine, linker, cache, limits, calls: CallStats::default(), _ticker: ticker }) })
    }

    /// The limits every instance runs under (a tenant's quota may tighten them).
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Counts and latencies of every provider call made so far.
    pub fn call_stats(&self) -> &CallStats {
        &self.inner.calls
    }
}
