//! Where accepted backups and restores run: on a runtime of their own, so that their CPU
//! work (reading manifests, building and checking tarballs) never delays the answers to
//! requests, and at most so many at once, overall and per tenant; the others wait their turn.
//! A waiting run is recorded `InProgress` (it was accepted), with no progress yet.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many runs at once.
#[derive(Debug, Clone)]
pub struct JobLimits {
    /// Backups and restores running at once on the server.
    pub concurrent: usize,
    /// Of those, at most this many for one tenant.
    pub per_tenant: usize,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits { concurrent: 4, per_tenant: 2 }
    }
}

/// A run's place: held while it runs. The last run of a burst to end (an accepted one or a
/// scheduled one) gives the burst's memory back.
pub struct Turn {
    _tenant: OwnedSemaphorePermit,
    overall: OwnedSemaphorePermit,
    /// Runs at once on the server: all free means none is left.
    capacity: usize,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let overall = self.overall.semaphore().clone();
        let capacity = self.capacity;
        // This turn's permit is still held.
        if overall.available_permits() + 1 < capacity {
            return;
        }
        release_free_memory();
        // Again once what the answers about the burst allocated is freed too.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tokio::time::sleep(SETTLE).await;
                if overall.available_permits() == capacity {
                    release_free_memory();
                }
            });
        }
    }
}

/// The server's runs.
pub struct Jobs {
    limits: JobLimits,
    overall: Arc<Semaphore>,
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
    runtime: tokio::runtime::Handle,
    /// Ends the runtime's thread when the jobs are dropped.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Jobs {
    /// Starts the runtime the runs go on (its own threads, `worker_threads` of them).
    pub fn new(limits: JobLimits, worker_threads: usize) -> std::io::Result<Jobs> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.max(1))
            .thread_name("coffer-jobs")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // The runtime lives on a thread of its own, and is dropped there (never inside
        // another runtime's task, where dropping one is not allowed).
        std::thread::Builder::new().name("coffer-jobs".into()).spawn(move || {
            let _ = runtime.block_on(stopped);
            runtime.shutdown_background();
        })?;
        let overall = Arc::new(Semaphore::new(limits.concurrent.max(1)));
        Ok(Jobs { limits, overall, tenants: Mutex::default(), runtime: handle, _stop: stop })
    }

    /// Waits for `tenant`'s turn to run: first among the tenant's own runs, then overall.
    pub async fn turn(&self, tenant: &str) -> Turn {
        let own = {
            let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
            tenants.entry(tenant.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(self.limits.per_tenant.max(1)))).clone()
        };
        // The semaphores are never closed.
        let tenant_permit = own.acquire_owned().await.expect("never closed");
        let overall = self.overall.clone().acquire_owned().await.expect("never closed");
        Turn { _tenant: tenant_permit, overall, capacity: self.limits.concurrent.max(1) }
    }

    /// Runs `work` for `tenant` on the jobs' runtime when its turn comes.
    pub fn spawn(self: &Arc<Self>, tenant: String, work: impl Future<Output = ()> + Send + 'static) {
        let jobs = self.clone();
        self.runtime.spawn(async move {
            let _turn = jobs.turn(&tenant).await;
            work.await;
        });
    }
}

/// How long after a burst's last run the memory freed since is given back again.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// Gives the memory the allocator holds free back to the system, once no run is left: a
/// burst's memory is returned when it ends, not kept in the allocator's per-thread arenas.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the system; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
