//! The service over the engine: one tenant's calls on a [`Coffer`], made by the command line
//! on its data directory and by the server's handlers alike.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use super::error::ApiError;
use super::service::{Download, Sink, TenantApi, Watch};
use super::wire::{BackupStorageLocationPatch, SchedulePatch, SecretBody, VolumeSnapshotLocationPatch};
use crate::backup::{self, Accepted, BackupDetails, BackupRequest, RestoreDetails, RestoreRequest, SOURCE_ANNOTATION, StartedBackup, StartedRestore, TARGET_ANNOTATION};
use crate::coffer::Coffer;
use crate::fsb::{self, BackupRepository};
use crate::secret::SecretBytes;
use crate::jobs::Jobs;
use crate::locations::{self, BackupStorageLocationChange, NewBackupStorageLocation, NewVolumeSnapshotLocation};
use crate::model::{Backup, BackupStorageLocation, Progress, Restore, VolumeSnapshotLocation};
use crate::schedules::{self, NewSchedule, Schedule};
use crate::secrets::{self, SecretSummary};
use crate::state::Resource;
use crate::tenant::Tenant;

/// Where a tenant's calls are served.
#[derive(Clone)]
pub enum Host {
    /// A command on a data directory: runs go to their end within the call, and reads
    /// validate the locations that are due (no controllers run).
    Command,
    /// A server: runs take turns on its jobs, and its controllers validate locations.
    Server(Arc<Jobs>),
}

/// One tenant's calls on the engine.
pub struct LocalTenant {
    coffer: Arc<Coffer>,
    tenant: Tenant,
    default_snapshot_locations: BTreeMap<String, String>,
    host: Host,
}

impl LocalTenant {
    /// `tenant`'s calls on `coffer`, served on `host`; backups without volume snapshot
    /// locations use `default_snapshot_locations` (provider → location).
    pub fn new(coffer: Arc<Coffer>, tenant: Tenant, default_snapshot_locations: BTreeMap<String, String>, host: Host) -> Self {
        LocalTenant { coffer, tenant, default_snapshot_locations, host }
    }

    /// The tenant whose calls these are.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    fn ns(&self) -> &str {
        self.tenant.namespace()
    }

    /// The directory the annotation `key` names (as `what`), confined to the tenant's tree
    /// and opened once now, for a clear answer; it is resolved again each time it is used.
    fn annotated_dir(&self, annotations: &BTreeMap<String, String>, key: &str, what: &str, exists: bool) -> Result<PathBuf, ApiError> {
        let field = format!("metadata.annotations[{key}]");
        let named = annotations
            .get(key)
            .ok_or_else(|| ApiError::bad_request(format!("{field} is required: {what}, relative to the tenant's directory")).at(&field))?;
        let path = self.tenant.paths().confine(&field, std::path::Path::new(named))?;
        if exists {
            self.tenant.paths().open_dir(&field, &path)?;
        }
        Ok(path)
    }

    /// Runs `job` to its end in this call (returning `true`), or (on a server, with nobody
    /// watching) on the server's jobs; on a server its progress is recorded in its object.
    async fn run(&self, job: Job, watch: Option<Watch<'_>>) -> Result<bool, ApiError> {
        let coffer = self.coffer.clone();
        match (&self.host, watch) {
            (Host::Command, watch) => {
                let mut ignore = |_: &Progress| {};
                job.run(&coffer, watch.unwrap_or(&mut ignore)).await?;
                Ok(true)
            }
            (Host::Server(jobs), Some(watch)) => {
                let _turn = jobs.turn(self.ns()).await;
                let mut record = job.recorder(coffer.clone());
                let mut both = |p: &Progress| {
                    record(p);
                    watch(p);
                };
                job.run(&coffer, &mut both).await?;
                Ok(true)
            }
            (Host::Server(jobs), None) => {
                jobs.spawn(self.ns().to_owned(), async move {
                    let mut record = job.recorder(coffer.clone());
                    let (ns, name) = (job.namespace().to_owned(), job.name().to_owned());
                    if let Err(e) = job.run(&coffer, &mut record).await {
                        tracing::error!(namespace = %ns, name = %name, "a run could not be recorded: {e}");
                    }
                });
                Ok(false)
            }
        }
    }
}

/// An accepted backup or restore, to run.
enum Job {
    Backup(Box<StartedBackup>),
    Restore(Box<StartedRestore>),
}

impl Job {
    fn namespace(&self) -> &str {
        match self {
            Job::Backup(b) => &b.backup().metadata.meta.namespace,
            Job::Restore(r) => &r.restore().metadata.meta.namespace,
        }
    }

    fn name(&self) -> &str {
        match self {
            Job::Backup(b) => &b.backup().metadata.meta.name,
            Job::Restore(r) => &r.restore().metadata.meta.name,
        }
    }

    /// Records the run's progress in its object.
    fn recorder(&self, coffer: Arc<Coffer>) -> Box<dyn FnMut(&Progress) + Send> {
        let (ns, name) = (self.namespace().to_owned(), self.name().to_owned());
        match self {
            Job::Backup(_) => Box::new(recorder(coffer, ns, name, |b: &mut Backup, p| b.status.progress = Some(p.clone()))),
            Job::Restore(_) => Box::new(recorder(coffer, ns, name, |r: &mut Restore, p| r.status.progress = Some(p.into()))),
        }
    }

    async fn run(self, coffer: &Coffer, progress: Watch<'_>) -> Result<(), ApiError> {
        match self {
            Job::Backup(started) => {
                let (ns, name) = (started.backup().metadata.meta.namespace.clone(), started.backup().metadata.meta.name.clone());
                let ended = started.run(coffer, progress).await?;
                tracing::info!(namespace = %ns, backup = %name, phase = ?ended.status.phase, "backup finished");
            }
            Job::Restore(started) => {
                started.run(coffer, progress).await?;
            }
        }
        Ok(())
    }
}

/// How often at most a run's progress is written to the state (each write is a durable
/// transaction that every tenant's requests queue behind).
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Stores a run's progress in its record when it has changed (items or pod volume bytes), at
/// most every [`PROGRESS_INTERVAL`] (and always when all is done); the run's end is recorded
/// by the run itself.
fn recorder<T: Resource + Send + 'static>(coffer: Arc<Coffer>, ns: String, name: String, set: fn(&mut T, &Progress)) -> impl FnMut(&Progress) + Send {
    let mut last = None;
    let mut written: Option<std::time::Instant> = None;
    move |p: &Progress| {
        let now = (p.percent(), p.pod_volume_data);
        let recent = written.is_some_and(|at| at.elapsed() < PROGRESS_INTERVAL);
        if last == Some(now) || (recent && !p.all_done()) {
            return;
        }
        last = Some(now);
        written = Some(std::time::Instant::now());
        let stored = coffer.state.write(|txn| {
            if let Some(mut object) = txn.get::<T>(&ns, &name)? {
                set(&mut object, p);
                txn.put(&mut object)?;
            }
            Ok::<_, crate::state::StateError>(())
        });
        if let Err(e) = stored {
            tracing::warn!(namespace = %ns, name = %name, "could not record progress: {e}");
        }
    }
}

/// A checked download of a backup on the engine.
struct LocalDownload {
    coffer: Arc<Coffer>,
    namespace: String,
    name: String,
}

#[async_trait]
impl Download for LocalDownload {
    async fn write_to(self: Box<Self>, sink: Sink) -> Result<u64, ApiError> {
        Ok(backup::download_backup(&self.coffer, &self.namespace, &self.name, sink).await?)
    }
}

/// The one object named `name` of a list of one.
fn single<T>(mut found: Vec<T>) -> T {
    found.remove(0)
}

#[async_trait]
impl TenantApi for LocalTenant {
    async fn create_backup_storage_location(&self, object: BackupStorageLocation) -> Result<BackupStorageLocation, ApiError> {
        let new = NewBackupStorageLocation::from_object(object)?;
        Ok(locations::create_backup_storage_location(&self.coffer, self.ns(), new).await?)
    }

    async fn list_backup_storage_locations(&self, default_only: bool) -> Result<Vec<BackupStorageLocation>, ApiError> {
        let found = locations::get_backup_storage_locations(&self.coffer, self.ns(), &[], default_only)?;
        self.refreshed(found).await
    }

    async fn get_backup_storage_location(&self, name: &str) -> Result<BackupStorageLocation, ApiError> {
        let found = locations::get_backup_storage_locations(&self.coffer, self.ns(), &[name.to_owned()], false)?;
        Ok(single(self.refreshed(found).await?))
    }

    async fn change_backup_storage_location(&self, name: &str, patch: BackupStorageLocationPatch) -> Result<BackupStorageLocation, ApiError> {
        let change = BackupStorageLocationChange::try_from(patch)?;
        Ok(locations::set_backup_storage_location(&self.coffer, self.ns(), name, change).await?)
    }

    async fn delete_backup_storage_location(&self, name: &str) -> Result<(), ApiError> {
        Ok(locations::delete_backup_storage_location(&self.coffer, self.ns(), name)?)
    }

    async fn create_volume_snapshot_location(&self, object: VolumeSnapshotLocation) -> Result<VolumeSnapshotLocation, ApiError> {
        let new = NewVolumeSnapshotLocation::from_object(object);
        Ok(locations::create_volume_snapshot_location(&self.coffer, self.ns(), new).await?)
    }

    async fn list_volume_snapshot_locations(&self) -> Result<Vec<VolumeSnapshotLocation>, ApiError> {
        Ok(locations::get_volume_snapshot_locations(&self.coffer, self.ns(), &[])?)
    }

    async fn get_volume_snapshot_location(&self, name: &str) -> Result<VolumeSnapshotLocation, ApiError> {
        Ok(single(locations::get_volume_snapshot_locations(&self.coffer, self.ns(), &[name.to_owned()])?))
    }

    async fn change_volume_snapshot_location(&self, name: &str, patch: VolumeSnapshotLocationPatch) -> Result<VolumeSnapshotLocation, ApiError> {
        Ok(locations::set_volume_snapshot_location(&self.coffer, self.ns(), name, patch.credential, patch.metadata.resource_version.as_deref()).await?)
    }

    async fn delete_volume_snapshot_location(&self, name: &str) -> Result<(), ApiError> {
        Ok(locations::delete_volume_snapshot_location(&self.coffer, self.ns(), name)?)
    }

    async fn create_secret(&self, body: SecretBody) -> Result<SecretSummary, ApiError> {
        let name = body.metadata.name.clone();
        Ok(SecretSummary::from(&secrets::create_secret(&self.coffer, self.ns(), &name, body.values()?)?))
    }

    async fn replace_secret(&self, name: &str, body: SecretBody) -> Result<SecretSummary, ApiError> {
        if body.metadata.name != name {
            let message = format!("metadata.name {:?} does not match the secret named, {name:?}", body.metadata.name);
            return Err(ApiError::bad_request(message).at("metadata.name"));
        }
        let expected = body.metadata.resource_version.clone();
        Ok(SecretSummary::from(&secrets::set_secret(&self.coffer, self.ns(), name, expected.as_deref(), body.values()?)?))
    }

    async fn list_secrets(&self) -> Result<Vec<SecretSummary>, ApiError> {
        Ok(secrets::get_secrets(&self.coffer, self.ns(), &[])?.iter().map(SecretSummary::from).collect())
    }

    async fn get_secret(&self, name: &str) -> Result<SecretSummary, ApiError> {
        Ok(SecretSummary::from(&single(secrets::get_secrets(&self.coffer, self.ns(), &[name.to_owned()])?)))
    }

    async fn delete_secret(&self, name: &str) -> Result<(), ApiError> {
        Ok(secrets::delete_secrets(&self.coffer, self.ns(), &[name.to_owned()])?)
    }

    async fn create_backup(&self, object: Backup, watch: Option<Watch<'_>>) -> Result<Backup, ApiError> {
        let source = self.annotated_dir(&object.metadata.annotations, SOURCE_ANNOTATION, "the manifest directory", true)?;
        let request = BackupRequest {
            name: object.metadata.meta.name,
            source,
            spec: object.spec,
            labels: object.metadata.meta.labels,
            default_snapshot_locations: self.default_snapshot_locations.clone(),
        };
        let started = match backup::accept_backup(&self.coffer, self.ns(), request)? {
            Accepted::Refused(refused) => return Ok(*refused),
            Accepted::Started(started) => started,
        };
        let accepted = started.backup().clone();
        if self.run(Job::Backup(started), watch).await? {
            return Ok(backup::get_backup(&self.coffer, self.ns(), &accepted.metadata.meta.name)?);
        }
        Ok(accepted)
    }

    async fn list_backups(&self) -> Result<Vec<Backup>, ApiError> {
        Ok(backup::list_backups(&self.coffer, self.ns())?)
    }

    async fn get_backup(&self, name: &str) -> Result<Backup, ApiError> {
        Ok(backup::get_backup(&self.coffer, self.ns(), name)?)
    }

    async fn delete_backup(&self, name: &str) -> Result<(), ApiError> {
        Ok(backup::delete_backup(&self.coffer, self.ns(), name).await?)
    }

    async fn backup_log(&self, name: &str) -> Result<Vec<u8>, ApiError> {
        Ok(backup::backup_log(&self.coffer, self.ns(), name).await?)
    }

    async fn backup_details(&self, name: &str) -> Result<BackupDetails, ApiError> {
        Ok(backup::backup_details(&self.coffer, self.ns(), name).await?)
    }

    async fn download_backup(&self, name: &str) -> Result<Box<dyn Download>, ApiError> {
        backup::downloadable(&self.coffer, self.ns(), name)?;
        Ok(Box::new(LocalDownload { coffer: self.coffer.clone(), namespace: self.ns().into(), name: name.into() }))
    }

    async fn create_restore(&self, object: Restore, watch: Option<Watch<'_>>) -> Result<Restore, ApiError> {
        let target = self.annotated_dir(&object.metadata.annotations, TARGET_ANNOTATION, "the directory to restore into", false)?;
        let request = RestoreRequest { name: object.metadata.meta.name, target, spec: object.spec };
        let started = match backup::accept_restore(&self.coffer, self.ns(), request)? {
            Accepted::Refused(refused) => return Ok(*refused),
            Accepted::Started(started) => started,
        };
        let accepted = started.restore().clone();
        if self.run(Job::Restore(started), watch).await? {
            return Ok(backup::get_restore(&self.coffer, self.ns(), &accepted.metadata.meta.name)?);
        }
        Ok(accepted)
    }

    async fn list_restores(&self) -> Result<Vec<Restore>, ApiError> {
        Ok(backup::list_restores(&self.coffer, self.ns())?)
    }

    async fn get_restore(&self, name: &str) -> Result<Restore, ApiError> {
        Ok(backup::get_restore(&self.coffer, self.ns(), name)?)
    }

    async fn restore_log(&self, name: &str) -> Result<Vec<u8>, ApiError> {
        Ok(backup::restore_log(&self.coffer, self.ns(), name).await?)
    }

    async fn restore_details(&self, name: &str) -> Result<RestoreDetails, ApiError> {
        Ok(backup::restore_details(&self.coffer, self.ns(), name).await?)
    }

    async fn create_schedule(&self, object: Schedule) -> Result<Schedule, ApiError> {
        let source = self.annotated_dir(&object.metadata.annotations, SOURCE_ANNOTATION, "the manifest directory", true)?;
        let new = NewSchedule {
            name: object.metadata.meta.name,
            schedule: object.spec.schedule,
            template: object.spec.template,
            source,
            labels: object.metadata.meta.labels,
            paused: object.spec.paused,
            skip_immediately: object.spec.skip_immediately == Some(true),
        };
        Ok(schedules::create_schedule(&self.coffer, self.ns(), new)?)
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, ApiError> {
        Ok(schedules::get_schedules(&self.coffer, self.ns(), &[])?)
    }

    async fn get_schedule(&self, name: &str) -> Result<Schedule, ApiError> {
        Ok(single(schedules::get_schedules(&self.coffer, self.ns(), &[name.to_owned()])?))
    }

    async fn change_schedule(&self, name: &str, patch: SchedulePatch) -> Result<Schedule, ApiError> {
        Ok(schedules::pause_schedule(&self.coffer, self.ns(), name, patch.paused, patch.metadata.resource_version.as_deref())?)
    }

    async fn delete_schedule(&self, name: &str) -> Result<(), ApiError> {
        Ok(schedules::delete_schedules(&self.coffer, self.ns(), &[name.to_owned()])?)
    }

    async fn list_backup_repositories(&self) -> Result<Vec<BackupRepository>, ApiError> {
        Ok(fsb::get_backup_repositories(&self.coffer, self.ns(), &[])?)
    }

    async fn get_backup_repository(&self, name: &str) -> Result<BackupRepository, ApiError> {
        Ok(single(fsb::get_backup_repositories(&self.coffer, self.ns(), &[name.to_owned()])?))
    }

    async fn backup_repository_password(&self, name: &str) -> Result<SecretBytes, ApiError> {
        Ok(fsb::backup_repository_password(&self.coffer, self.ns(), name)?)
    }

    async fn maintain_backup_repository(&self, name: &str) -> Result<BackupRepository, ApiError> {
        Ok(fsb::maintain_backup_repository(&self.coffer, self.ns(), name).await?)
    }
}

impl LocalTenant {
    /// `found` with the locations that are due validated first, for a command (a server's
    /// controllers validate them; a read there never waits on a location's endpoint).
    async fn refreshed(&self, found: Vec<BackupStorageLocation>) -> Result<Vec<BackupStorageLocation>, ApiError> {
        match self.host {
            Host::Command => Ok(locations::refresh_backup_storage_locations(&self.coffer, found, false).await?),
            Host::Server(_) => Ok(found),
        }
    }
}
