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

/// Memory and table limits of one instance: `memory_bytes` bounds the sum of all its
/// memories, however many it has. Remembers whether it refused a growth, so that a trap that
/// follows can be reported as the memory limit.
pub(crate) struct Limiter {
    pub(crate) memory_bytes: u64,
    pub(crate) refused_memory: bool,
    /// Bytes of linear memory the instance holds now, all memories together.
    pub(crate) used: u64,
}

impl Limiter {
    pub(crate) fn new(memory_bytes: u64) -> Limiter {
        Limiter { memory_bytes, refused_memory: false, used: 0 }
    }
}

/// The most table elements an instance may have.
const MAX_TABLE_ELEMENTS: usize = 100_000;
/// The most linear memories one instance may have (a component of a few core modules).
const MAX_MEMORIES: usize = 8;
/// The most tables one instance may have.
const MAX_TABLES: usize = 64;

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let after = (self.used + desired as u64).saturating_sub(current as u64);
        let allowed = after <= self.memory_bytes;
        if allowed {
            self.used = after;
        } else {
            self.refused_memory = true;
        }
        Ok(allowed)
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
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
    /// Time this call has spent in host functions that compute for the guest (digests):
    /// counted against the CPU-time limit with the guest's own.
    pub(crate) host_compute: std::time::Duration,
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
            // Mounted from the handle opened when the grants were made, never by name again.
            builder.preopened_dir(crate::confine::proc_path(std::os::fd::AsRawFd::as_raw_fd(&*dir.dir)), &dir.guest, perms)?;
        }
        Ok(HostState {
            wasi: builder.build(),
            http: WasiHttpCtx::new(),
            hooks: HttpPolicy::new(grants.location.clone(), grants.endpoints.clone(), grants.tls.client_config(), grants.reach.clone()),
            table: ResourceTable::new(),
            limiter: Limiter::new(memory_bytes),
            cpu_ticks: 0,
            host_compute: std::time::Duration::ZERO,
            output,
        })
    }
}

impl HostState {
    /// Starts a new call's CPU-time account.
    pub(crate) fn reset_cpu(&mut self) {
        self.cpu_ticks = 0;
        self.host_compute = std::time::Duration::ZERO;
    }

    /// CPU time this call has used: guest ticks plus host computation.
    pub(crate) fn cpu_used(&self, tick: std::time::Duration) -> std::time::Duration {
        tick.saturating_mul(u32::try_from(self.cpu_ticks).unwrap_or(u32::MAX)).saturating_add(self.host_compute)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_limit_bounds_all_memories_together() {
        let mut limiter = Limiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(!limiter.memory_growing(0, 60, None).unwrap(), "a second memory may not take another 60");
        assert!(limiter.memory_growing(0, 40, None).unwrap());
        assert!(!limiter.memory_growing(40, 41, None).unwrap());
        assert!(limiter.refused_memory);
    }
}
