//! The server's controllers, acting for every tenant: location validation, backup sync,
//! schedules and garbage collection, each run from one periodic tick; plus what is done once
//! at start. Each unit of work (one location, one backup) runs as its own task, and a unit
//! still running when the next tick comes is not started twice, so a slow or hostile tenant
//! delays only itself.

mod gc;
mod startup;
mod sync;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinSet;

pub use gc::{GC_FAILURE_LABEL, collect, due_for_deletion};
pub use startup::{Opener, Scan, recover_interrupted};
pub use sync::{STORAGE_LOCATION_LABEL, SyncOutcome, sync_due, sync_location};

use crate::backup::{BackupRequest, create_backup};
use crate::coffer::Coffer;
use crate::locations::{refresh_backup_storage_locations, validation_due};
use crate::model::{Backup, BackupStorageLocation, LocationPhase, now};
use crate::fsb::{BackupRepository, maintain_backup_repository};
use crate::schedules::{Schedule, claim_run, record_run};

/// How often the controllers act.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often due work is looked for.
    pub tick: Duration,
    /// Sync period of locations that set none (`--backup-sync-period`, 1m).
    pub backup_sync_period: Duration,
    /// How often expired backups are collected (`--garbage-collection-frequency`, 1h).
    pub gc_frequency: Duration,
    /// `--default-volume-snapshot-locations`, for scheduled backups.
    pub default_snapshot_locations: BTreeMap<String, String>,
    /// How long work still running at shutdown is waited for.
    pub drain: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tick: Duration::from_secs(1),
            backup_sync_period: Duration::from_secs(60),
            gc_frequency: Duration::from_secs(3600),
            default_snapshot_locations: BTreeMap::new(),
            drain: Duration::from_secs(10),
        }
    }
}

/// Units of work done by each controller, for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Locations validated.
    pub validations: AtomicU64,
    /// Location syncs that succeeded.
    pub syncs: AtomicU64,
    /// Location syncs that failed.
    pub sync_failures: AtomicU64,
    /// Backups started by schedules.
    pub scheduled_backups: AtomicU64,
    /// Scheduled runs that made no backup.
    pub scheduled_backup_failures: AtomicU64,
    /// Expired backups deleted.
    pub collected: AtomicU64,
    /// Expired backups that could not be deleted.
    pub collect_failures: AtomicU64,
    /// Backup repositories maintained.
    pub maintenances: AtomicU64,
    /// Backup repository maintenance runs that failed.
    pub maintenance_failures: AtomicU64,
}

/// The controllers of one server.
pub struct Controllers {
    coffer: Arc<Coffer>,
    jobs: Arc<crate::jobs::Jobs>,
    settings: Settings,
    counters: Arc<Counters>,
    busy: Arc<Mutex<HashSet<String>>>,
    tasks: JoinSet<()>,
    last_gc: Option<OffsetDateTime>,
    last_recovery: Option<OffsetDateTime>,
    /// Whether a look for interrupted runs has read all of them ([`Scan::All`]) yet.
    scanned_all: Arc<AtomicBool>,
}

/// How often the leader of a shared state looks for runs whose process is gone.
const RECOVERY_PERIOD: time::Duration = time::Duration::seconds(2);

impl Controllers {
    /// Controllers for `coffer`; scheduled backups take their turns among `jobs`.
    pub fn new(coffer: Arc<Coffer>, settings: Settings, jobs: Arc<crate::jobs::Jobs>) -> Self {
        Controllers { coffer, jobs, settings, counters: Arc::default(), busy: Arc::default(), tasks: JoinSet::new(), last_gc: None, last_recovery: None, scanned_all: Arc::default() }
    }

    /// What the controllers have done so far.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Ticks until `shutdown` completes, then waits for running work to finish.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            // A state a full disk made unwritable is tried again, and its reserve taken back.
            let coffer = self.coffer.clone();
            let _ = tokio::task::spawn_blocking(move || coffer.state.probe()).await;
            if let Err(e) = self.tick(now()) {
                tracing::error!("controllers could not read the state: {e}");
            }
            while self.tasks.try_join_next().is_some() {}
            tokio::select! {
                () = tokio::time::sleep(self.settings.tick) => {}
                () = &mut shutdown => break,
            }
        }
        // Work still running gets the drain time, then is dropped: what it left InProgress
        // is set straight at the next start, as after a crash.
        let drain = self.settings.drain;
        let finished = tokio::time::timeout(drain, async { while self.tasks.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!(running = self.tasks.len(), "stopped waiting for running work after {drain:?}");
            self.tasks.abort_all();
        }
    }

    /// Waits for the work earlier ticks started to finish: with [`Controllers::tick`], lets a
    /// caller (a test, a one-shot command) drive the controllers by its own clock.
    pub async fn settle(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    /// Starts the work due at `at`.
    pub fn tick(&mut self, at: OffsetDateTime) -> Result<(), crate::state::StateError> {
        let (locations, schedules, repositories) = {
            let txn = self.coffer.state.read()?;
            (txn.list_all::<BackupStorageLocation>()?, txn.list_all::<Schedule>()?, txn.list_all::<BackupRepository>()?)
        };
        for bsl in locations {
            let id = format!("{}/{}", bsl.metadata.namespace, bsl.metadata.name);
            if validation_due(&bsl, at) {
                let (bsl, id) = (bsl.clone(), id.clone());
                self.start(format!("validate {id}"), |coffer, counters| async move {
                    if let Err(e) = refresh_backup_storage_locations(&coffer, vec![bsl], false).await {
                        tracing::error!(location = %id, "validation could not be recorded: {e}");
                    }
                    counters.validations.fetch_add(1, Ordering::Relaxed);
                });
            }
            // As Velero 1.17: an Unavailable location is not synced (nor are its backups
            // forgotten) until it validates again.
            let available = bsl.status.phase != Some(LocationPhase::Unavailable);
            if available && sync_due(&bsl, self.settings.backup_sync_period, at) {
                self.start(format!("sync {id}"), |coffer, counters| async move {
                    match sync_location(&coffer, &bsl).await {
                        Ok(outcome) => {
                            counters.syncs.fetch_add(1, Ordering::Relaxed);
                            if outcome != SyncOutcome::default() {
                                tracing::info!(location = %id, imported = ?outcome.imported, forgotten = ?outcome.forgotten, "synced backups");
                            }
                        }
                        Err(e) => {
                            counters.sync_failures.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(location = %id, "backup sync failed: {e}");
                        }
                    }
                });
            }
        }
        // Each due run is claimed by a task of its own: claims wait on the state side by side.
        for schedule in schedules {
            if let Some(period) = schedule.due(at) {
                self.start_scheduled_backup(&schedule, period, at);
            }
        }
        // Repository maintenance takes its turn among the tenant's runs: it reads every pack.
        for repository in repositories.into_iter().filter(|r| r.maintenance_due(at)) {
            let (namespace, name) = (repository.metadata.namespace.clone(), repository.metadata.name.clone());
            let jobs = self.jobs.clone();
            self.start(format!("maintain {namespace}/{name}"), |coffer, counters| async move {
                let _turn = jobs.turn(&namespace).await;
                match maintain_backup_repository(&coffer, &namespace, &name).await {
                    Ok(_) => {
                        counters.maintenances.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(namespace, repository = %name, "maintained backup repository");
                    }
                    Err(e) => {
                        counters.maintenance_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(namespace, repository = %name, "backup repository maintenance failed: {e}");
                    }
                }
            });
        }
        // In a shared state, runs whose process is gone (its lease expired) are set straight.
        if self.coffer.state.is_shared() && self.last_recovery.is_none_or(|last| at >= last + RECOVERY_PERIOD) {
            // Every run until one look at all of them succeeded (when it starts leading); then
            // those marked running.
            let scanned_all = self.scanned_all.clone();
            let scan = if scanned_all.load(Ordering::Acquire) { Scan::Marked } else { Scan::All };
            self.last_recovery = Some(at);
            self.start("recover".into(), |coffer, _| async move {
                let found = recover_interrupted(&coffer, Opener::Leader, scan).await;
                scanned_all.fetch_or(found.is_ok(), Ordering::Release);
                match found {
                    Ok((0, 0)) => {}
                    Ok((backups, restores)) => tracing::warn!(backups, restores, "set straight runs whose process is gone"),
                    Err(e) => tracing::warn!("could not look for runs whose process is gone: {e}"),
                }
            });
        }
        if self.last_gc.is_none_or(|last| at >= last + self.settings.gc_frequency) {
            self.last_gc = Some(at);
            let due = match due_for_deletion(&self.coffer, at) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!("garbage collection could not list backups: {e}");
                    Vec::new()
                }
            };
            for backup in due {
                let id = format!("{}/{}", backup.metadata.meta.namespace, backup.metadata.meta.name);
                self.start(format!("gc {id}"), |coffer, counters| async move {
                    match collect(&coffer, &backup).await {
                        Ok(true) => {
                            counters.collected.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(backup = %id, "deleted backup");
                        }
                        Ok(false) => {}
                        Err(e) => {
                            counters.collect_failures.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(backup = %id, "could not delete backup: {e}");
                        }
                    }
                });
            }
        }
        Ok(())
    }

    /// Claims `schedule`'s run due at `at` (for `period`, as listed) and runs its backup.
    fn start_scheduled_backup(&mut self, schedule: &Schedule, period: OffsetDateTime, at: OffsetDateTime) {
        let namespace = schedule.metadata.meta.namespace.clone();
        let schedule_name = schedule.metadata.meta.name.clone();
        let run = schedule.run_name(period);
        let (jobs, defaults) = (self.jobs.clone(), self.settings.default_snapshot_locations.clone());
        self.start(format!("backup {namespace}/{run}"), |coffer, counters| async move {
            let (schedule, period) = match claim_run(&coffer, &namespace, &schedule_name, at) {
                Ok(Some(claimed)) => claimed,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(namespace, schedule = %schedule_name, "could not record a scheduled run: {e}");
                    return;
                }
            };
            counters.scheduled_backups.fetch_add(1, Ordering::Relaxed);
            let request = schedule.backup_request(period, defaults);
            let _turn = jobs.turn(&namespace).await;
            let outcome = run_backup(&coffer, &namespace, request).await;
            match record_run(&coffer, &namespace, &schedule_name, period, outcome.as_ref().map_err(Clone::clone)) {
                Ok(true) => {}
                Ok(false) => {
                    counters.scheduled_backup_failures.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::error!(namespace, schedule = %schedule_name, "could not record a scheduled run: {e}"),
            }
        });
    }

    /// Runs `work` as a task unless the unit `key` is still running from an earlier tick.
    fn start<F, Fut>(&mut self, key: String, work: F)
    where
        F: FnOnce(Arc<Coffer>, Arc<Counters>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if !self.busy.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone()) {
            return;
        }
        let busy = self.busy.clone();
        let fut = work(self.coffer.clone(), self.counters.clone());
        self.tasks.spawn(async move {
            fut.await;
            busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        });
    }
}

/// Runs a backup for a controller, logging the outcome.
async fn run_backup(coffer: &Coffer, namespace: &str, request: BackupRequest) -> Result<Backup, String> {
    let name = request.name.clone();
    match create_backup(coffer, namespace, request, &mut |_| {}).await {
        Ok(b) => {
            tracing::info!(namespace, backup = %name, phase = ?b.status.phase, "scheduled backup finished");
            Ok(b)
        }
        Err(e) => {
            tracing::warn!(namespace, backup = %name, "scheduled backup could not start: {e}");
            Err(format!("backup {name} could not start: {e}"))
        }
    }
}
