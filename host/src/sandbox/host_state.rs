//! The per-instance state a `Store` carries: the WASI context built from the grants, the HTTP
//! policy, and the resource limiter.

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::grants::Grants;
use super::http_policy::HttpPolicy;

/// How much guest stdout/stderr is kept per instance for the log.
const GUEST_OUTPUT_CAPACITY: usize = 64 * 1024;

/// Memory and table limits of one instance; remembers whether it refused a growth, so that a
/// trap that follows can be reported as the memory limit.
pub(crate) struct Limiter {
    pub(crate) memory_bytes: u64,
    pub(crate) refused_memory: bool,
}

/// The most table elements an instance may have.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired as u64 <= self.memory_bytes;
        if !allowed {
            self.refused_memory = true;
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// What a `Store<HostState>` holds for one provider instance.
pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: HttpPolicy,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    /// Epoch ticks this call has spent executing guest code.
    pub(crate) cpu_ticks: u64,
    /// Guest stdout and stderr, kept for the log.
    pub(crate) output: MemoryOutputPipe,
}

impl HostState {
    /// Builds the state for `grants`: its directories as preopens, its endpoints as the HTTP
    /// allow-list, and nothing else (no environment, arguments, stdin, sockets or DNS).
    pub(crate) fn new(grants: &Grants, memory_bytes: u64) -> wasmtime::Result<HostState> {
        let output = MemoryOutputPipe::new(GUEST_OUTPUT_CAPACITY);
        let mut builder = WasiCtxBuilder::new();
        // Small file operations run inline instead of hopping to a blocking thread; this must
        // be set before the preopens, which capture it.
        builder.allow_blocking_current_thread(true);
        builder.stdout(output.clone()).stderr(output.clone());
        for dir in &grants.directories {
            let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
            builder.preopened_dir(&dir.host, &dir.guest, perms)?;
        }
        Ok(HostState {
            wasi: builder.build(),
            http: WasiHttpCtx::new(),
            hooks: HttpPolicy::new(grants.location.clone(), grants.endpoints.clone(), grants.tls.client_config()),
            table: ResourceTable::new(),
            limiter: Limiter { memory_bytes, refused_memory: false },
            cpu_ticks: 0,
            output,
        })
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}
