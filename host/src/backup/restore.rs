//! Restoring a backup into a directory: resources as files, volumes recreated from their
//! snapshots with the new volume IDs written into the PersistentVolumes.

use std::collections::{BTreeMap, HashSet};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;

use super::filters::{Filter, Inclusion, NON_RESTORABLE, validate_filters};
use super::item::Item;
use super::kept_log;
use super::run_log::{RunLog, Scope, gzip_json};
use super::pod_volume_restores;
use super::pod_volumes::PodVolumeBackup;
use super::snapshots::{VolumeSnapshot, rezone, snapshot_for};
use super::tarball::{Limits, TarballError, item_path, visit_tarball};
use super::stored::Stored;
use super::{Accepted, BackupError, fetch_document, get_backup, readable_location};
use crate::coffer::Coffer;
use crate::confine::{PathError, overlapping};
use crate::locations::{location_directories, object_store_for, volume_snapshotter_for};
use crate::model::{API_VERSION, Backup, BackupMeta, LocationPhase, ObjectMeta, Phase, Progress, Restore, RestoreSpec, RestoreStatus, VolumeSnapshotLocation, now};
use crate::object::{ObjectError, validate_name};

/// The annotation recording where a restore wrote its resources.
pub const TARGET_ANNOTATION: &str = "coffer.io/target-directory";

/// What `restore create` asks for.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// Name.
    pub name: String,
    /// The directory to write resources into; must be empty or absent.
    pub target: PathBuf,
    /// The backup, which of its items to write, and whether to recreate volumes from
    /// snapshots.
    pub spec: RestoreSpec,
}

impl RestoreRequest {
    /// Restore `name` of every item of `backup` into `target`.
    pub fn new(name: &str, backup: &str, target: PathBuf) -> Self {
        RestoreRequest { name: name.into(), target, spec: RestoreSpec { backup_name: backup.into(), ..Default::default() } }
    }
}

/// Why a restore cannot start (empty when it can), and, for a backup with copies, the
/// location to read it from.
fn validate(coffer: &Coffer, namespace: &str, request: &RestoreRequest) -> Result<(Vec<String>, Option<String>), BackupError> {
    let mut errors = validate_filters(&request.spec.filters);
    let txn = coffer.state.read()?;
    for name in &request.spec.volume_snapshot_locations {
        if txn.get::<VolumeSnapshotLocation>(namespace, name)?.is_none() {
            errors.push(format!("volume snapshot location {name} to restore volumes from was not found: volumesnapshotlocations.velero.io {name:?} not found"));
        }
    }
    drop(txn);
    let mut location = None;
    match get_backup(coffer, namespace, &request.spec.backup_name) {
        Ok(b) if b.status.phase.is_some_and(Phase::is_usable) => match readable_location(coffer, &b, &request.spec.storage_location) {
            Ok(bsl) => {
                let name = bsl.metadata.name.clone();
                // An encrypted backup is readable only with a key holding its recipient's identity.
                if let Err(e) = Stored::new(coffer, &b, bsl) {
                    errors.push(e.to_string());
                }
                if !b.status.copies.is_empty() {
                    location = Some(name);
                }
            }
            Err(e) => errors.push(e.to_string()),
        },
        Ok(b) => errors.push(format!(
            "backup {} is in phase {}; only Completed or PartiallyFailed backups can be restored",
            request.spec.backup_name,
            b.status.phase.map_or("Unknown".into(), |p| p.to_string())
        )),
        Err(BackupError::Object(ObjectError::NotFound { .. })) => {
            errors.push(format!("Error retrieving backup: can't find backup {namespace}/{}", request.spec.backup_name));
        }
        Err(e) => return Err(e),
    }
    // Checked now for a clear answer, and again when the restore opens the target to write.
    let tenant = coffer.tenant(namespace)?;
    match tenant.paths().open_dir("the restore target", &request.target) {
        Ok(dir) => match non_empty(&dir) {
            Ok(true) => errors.push(format!("target directory {} is not empty", request.target.display())),
            Ok(false) => {}
            Err(e) => errors.push(format!("target directory {}: {e}", request.target.display())),
        },
        Err(PathError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => errors.push(e.to_string()),
    }
    Ok((errors, location))
}

/// Creates and runs a restore. Validation problems end it `FailedValidation`; a refused
/// tarball or an unreachable location `Failed` (and then nothing is written); item and
/// volume errors `PartiallyFailed`.
pub async fn create_restore(
    coffer: &Coffer,
    namespace: &str,
    request: RestoreRequest,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Restore, BackupError> {
    match accept_restore(coffer, namespace, request)? {
        Accepted::Refused(restore) => Ok(*restore),
        Accepted::Started(run) => run.run(coffer, progress).await,
    }
}

/// A restore recorded `InProgress`, not yet run.
#[derive(Debug)]
pub struct StartedRestore {
    restore: Restore,
    request: RestoreRequest,
}

/// Checks a restore request and records it, `FailedValidation` with every problem or
/// `InProgress`, ready to run. Fails (recording nothing) when the name is invalid or taken.
pub fn accept_restore(coffer: &Coffer, namespace: &str, mut request: RestoreRequest) -> Result<Accepted<Restore, StartedRestore>, BackupError> {
    validate_name("restore", &request.name)?;
    let excluded = &mut request.spec.filters.excluded_resources;
    for resource in NON_RESTORABLE {
        if !excluded.iter().any(|r| r == resource) {
            excluded.push((*resource).to_owned());
        }
    }
    let mut restore = Restore {
        api_version: API_VERSION.into(),
        kind: "Restore".into(),
        metadata: BackupMeta {
            meta: ObjectMeta::new(namespace, &request.name),
            annotations: BTreeMap::from([(TARGET_ANNOTATION.to_owned(), request.target.display().to_string())]),
        },
        spec: request.spec.clone(),
        status: RestoreStatus { phase: Some(Phase::New), ..Default::default() },
    };
    let (errors, location) = validate(coffer, namespace, &request)?;
    // A backup with copies is read from the location chosen now, where the restore's own
    // files go too.
    if errors.is_empty()
        && let Some(chosen) = location
    {
        restore.spec.storage_location.clone_from(&chosen);
        request.spec.storage_location = chosen;
    }
    coffer.state.write(|txn| {
        if txn.get::<Restore>(namespace, &request.name)?.is_some() {
            return Err(BackupError::Object(ObjectError::already_exists("restore", &request.name)));
        }
        if errors.is_empty() {
            restore.status.phase = Some(Phase::InProgress);
            restore.status.start_timestamp = Some(now());
            // Held while this process lives: in a shared state, the others know it still runs.
            txn.hold::<Restore>(namespace, &request.name)?;
        } else {
            restore.status.phase = Some(Phase::FailedValidation);
            restore.status.validation_errors = errors.clone();
        }
        Ok(txn.put(&mut restore)?)
    })?;
    Ok(if errors.is_empty() { Accepted::Started(Box::new(StartedRestore { restore, request })) } else { Accepted::Refused(Box::new(restore)) })
}

impl StartedRestore {
    /// The record as it stands (`InProgress`).
    pub fn restore(&self) -> &Restore {
        &self.restore
    }

    /// Runs the restore to its end and records the outcome.
    pub async fn run(self, coffer: &Coffer, progress: &mut (dyn FnMut(&Progress) + Send)) -> Result<Restore, BackupError> {
        let StartedRestore { mut restore, request } = self;
        let namespace: &str = &restore.metadata.meta.namespace.clone();
        let mut log = RunLog::new(format!("restore={namespace}/{}", request.name));
        // The backup may have been deleted while the restore waited for its turn.
        let backup = get_backup(coffer, namespace, &request.spec.backup_name).map_err(|e| format!("error getting backup: {e}"));
        let outcome = match &backup {
            Ok(backup) => run(coffer, backup, &request, &mut restore, &mut log, progress).await,
            Err(reason) => Err(reason.clone()),
        };
        if let Err(reason) = outcome {
            log.error(Scope::Run, reason.clone());
            restore.status.phase = Some(Phase::Failed);
            restore.status.failure_reason = reason;
        }
        restore.status.errors = log.error_count();
        restore.status.warnings = log.warning_count();
        restore.status.completion_timestamp = Some(now());
        // A restore deleted while it waited or ran (with its backup: Velero deletes a backup's
        // restores) is not made again, and leaves no files in the location.
        let deleted = || BackupError::Refused(format!("restore {} was deleted while it ran, with its backup {}", request.name, request.spec.backup_name));
        if coffer.state.read()?.get::<Restore>(namespace, &request.name)?.is_none() {
            coffer.state.write(|txn| txn.release::<Restore>(namespace, &request.name))?;
            return Err(deleted());
        }
        // The restore's own files go to restores/<name>/, even on a ReadOnly location (as Velero);
        // a log that cannot go there is kept in the state.
        let uploaded = match &backup {
            Ok(backup) => upload_files(coffer, backup, &request, &log).await.map_err(|e| e.to_string()),
            Err(_) => Err("its backup, and so its location, is gone".to_owned()),
        };
        if let Err(e) = &uploaded {
            tracing::warn!(namespace, restore = %request.name, "the restore's log stays in the state: {e}");
        }
        let recorded = coffer.state.write(|txn| {
            txn.release::<Restore>(namespace, &request.name)?;
            if txn.get::<Restore>(namespace, &request.name)?.is_none() {
                return Ok(false);
            }
            txn.put(&mut restore)?;
            if uploaded.is_err() {
                kept_log::keep(txn, namespace, kept_log::Run::Restore(&request.name), &log)?;
            }
            Ok::<_, BackupError>(true)
        })?;
        if recorded { Ok(restore) } else { Err(deleted()) }
    }
}

/// Uploads a restore's results and log to the location its backup was read from.
async fn upload_files(coffer: &Coffer, backup: &Backup, request: &RestoreRequest, log: &RunLog) -> Result<(), BackupError> {
    let name = &request.name;
    let stored = Stored::new(coffer, backup, readable_location(coffer, backup, &request.spec.storage_location)?)?;
    let layout = &stored.layout;
    let mut store = object_store_for(coffer, &stored.bsl).await?;
    for (key, body) in [(layout.restore_results(name), log.results_gz()), (layout.restore_log(name), log.log_gz())] {
        let body = stored.sealed(&key, body)?;
        store.put_bytes(stored.bucket(), &key, body).await?;
    }
    Ok(())
}

/// Recreates the volume of `pv` from its snapshot and returns the rewritten PV.
async fn restore_volume(
    coffer: &Coffer,
    namespace: &str,
    snapshot: &VolumeSnapshot,
    pv: &Item,
    handles: &mut BTreeMap<String, crate::sandbox::VolumeSnapshotterHandle>,
) -> Result<Item, String> {
    let location = &snapshot.spec.location;
    if !handles.contains_key(location) {
        let vsl = coffer
            .state
            .read()
            .map_err(|e| e.to_string())?
            .get::<VolumeSnapshotLocation>(namespace, location)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("error getting volume snapshot location {location}: not found"))?;
        let handle = volume_snapshotter_for(coffer, &vsl).await.map_err(|e| e.to_string())?;
        handles.insert(location.clone(), handle);
    }
    let handle = handles.get_mut(location).expect("inserted above");
    let spec = &snapshot.spec;
    let volume_id = handle
        .create_volume_from_snapshot(&snapshot.status.provider_snapshot_id, &spec.volume_type, &spec.volume_az, spec.volume_iops)
        .await
        .map_err(|e| format!("error creating volume from snapshot {}: {e}", snapshot.status.provider_snapshot_id))?;
    let mut document = pv.object.clone();
    // A copy's volume is made in the copy's zone, which the PV must then name.
    if snapshot.is_copy() && !spec.volume_az.is_empty() {
        rezone(&mut document, &spec.volume_az);
    }
    let rewritten = handle.set_volume_id(&document.to_string(), &volume_id).await.map_err(|e| e.to_string())?;
    let object = serde_json::from_str(&rewritten).map_err(|e| format!("the provider returned a malformed PersistentVolume: {e}"))?;
    let item = Item::from_object(object).map_err(|e| format!("the provider returned an invalid PersistentVolume: {}", e.0))?;
    if (&item.api_version, &item.kind, &item.name) != (&pv.api_version, &pv.kind, &pv.name) {
        return Err(format!(
            "the provider returned {} {} ({}) for PersistentVolume {}; only the volume ID may change",
            item.kind, item.name, item.api_version, pv.name
        ));
    }
    Ok(item)
}

/// Refuses a restore target that contains, or lies inside, a directory of one of the
/// tenant's locations: that location's provider could rewrite what is restored (or plant
/// links in it), and the restore could overwrite the location's data.
fn apart_from_locations(coffer: &Coffer, namespace: &str, target: &Dir, shown: &Path) -> Result<(), String> {
    for location in location_directories(coffer, namespace).map_err(|e| e.to_string())? {
        if overlapping(target, &location.dir).map_err(|e| e.to_string())? {
            return Err(format!(
                "target directory {} overlaps the directory {} of {} (config key {:?}); restore into a directory apart from every location's",
                shown.display(),
                location.value,
                location.location,
                location.key
            ));
        }
    }
    Ok(())
}

/// Whether the open directory `dir` has any entry.
fn non_empty(dir: &Dir) -> std::io::Result<bool> {
    Ok(dir.entries()?.next().is_some())
}

/// Writes `item` beneath the open `target` at its tarball path: never overwrites, never
/// follows a symbolic link out of the target.
fn write_item(target: &Dir, item: &Item) -> std::io::Result<()> {
    let path = item_path(item, None);
    target.create_dir_all(Path::new(&path).parent().expect("item paths have a parent"))?;
    let mut options = cap_std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    let mut file = target.open_with(&path, &options)?;
    file.write_all(&serde_json::to_vec_pretty(&item.object)?)
}

async fn run(
    coffer: &Coffer,
    backup: &Backup,
    request: &RestoreRequest,
    restore: &mut Restore,
    log: &mut RunLog,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<(), String> {
    let namespace = &backup.metadata.meta.namespace;
    let bsl = readable_location(coffer, backup, &request.spec.storage_location).map_err(|e| e.to_string())?;
    let stored = Stored::new(coffer, backup, bsl).map_err(|e| e.to_string())?;
    let (bsl, layout) = (&stored.bsl, &stored.layout);
    let bucket = bsl.spec.object_storage.bucket.clone();
    let mut store = object_store_for(coffer, bsl).await.map_err(|e| format!("error getting backup store: {e}"))?;
    let limits = Limits::default();
    let key = layout.backup_contents(&backup.metadata.meta.name);
    let mut tarball =
        stored.download_file(&mut store, &key, limits.max_total).await.map_err(|e| format!("error downloading the backup tarball: {e}"))?;
    // Everything is read and checked before anything is written, one entry at a time.
    tarball.rewind().map_err(|e| e.to_string())?;
    // The first reading also finds which volumes included claims bind, and counts what the
    // filters include.
    let checked = tarball.try_clone().map_err(|e| e.to_string())?;
    let filters = request.spec.filters.clone();
    let (claimed, total_items) = tokio::task::spawn_blocking(move || {
        let filter = Filter::new(&filters);
        let (mut claimed, mut included, mut if_claimed) = (HashSet::new(), 0u64, Vec::new());
        visit_tarball(std::io::BufReader::new(checked), limits, |item| {
            claimed.extend(filter.claimed_volume(&item));
            match filter.inclusion(&item) {
                Inclusion::Yes => included += 1,
                Inclusion::No => {}
                Inclusion::IfClaimed => if_claimed.push(item.name),
            }
            true
        })?;
        let total = included + if_claimed.iter().filter(|name| claimed.contains(*name)).count() as u64;
        Ok::<_, TarballError>((claimed, total))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    tarball.rewind().map_err(|e| e.to_string())?;
    let snapshots: Vec<VolumeSnapshot> =
        fetch_document(coffer, &stored, &layout.backup_volume_snapshots(&backup.metadata.meta.name), "the volume snapshot list")
            .await
            .map_err(|e| e.to_string())?;
    // The target is opened once, here, and every write goes through the handle.
    let tenant = coffer.tenant(namespace).map_err(|e| format!("error opening the tenant's directory: {e}"))?;
    let target = tenant.paths().create_dir("the restore target", &request.target).map_err(|e| e.to_string())?;
    if non_empty(&target).map_err(|e| format!("target directory {}: {e}", request.target.display()))? {
        return Err(format!("target directory {} is not empty", request.target.display()));
    }
    apart_from_locations(coffer, namespace, &target, &request.target)?;

    let restore_volumes = request.spec.restore_p_vs != Some(false);
    // The snapshot locations a volume may be recreated through unless the restore names some.
    let usable: HashSet<String> = coffer
        .state
        .read()
        .and_then(|txn| txn.list::<VolumeSnapshotLocation>(namespace))
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|v| v.status.phase != Some(LocationPhase::Unavailable))
        .map(|v| v.metadata.name)
        .collect();
    let mut counts = Progress { total_items, ..Default::default() };
    progress(&counts);
    let mut handles = BTreeMap::new();
    let mut restored: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pods = std::collections::BTreeSet::new();
    // The checked tarball is read again and its included objects written as they come.
    let (sender, mut items) = tokio::sync::mpsc::channel::<Item>(16);
    let filters = request.spec.filters.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let filter = Filter::new(&filters);
        visit_tarball(std::io::BufReader::new(tarball), limits, |item| {
            !filter.inclusion(&item).given(&claimed, &item.name) || sender.blocking_send(item).is_ok()
        })
    });
    while let Some(item) = items.recv().await {
        let scope_ns = item.namespace.clone();
        let scope = scope_ns.as_deref().map_or(Scope::Cluster, Scope::Namespace);
        let snapshot = match item.kind.as_str() {
            "PersistentVolume" if restore_volumes => {
                snapshot_for(&snapshots, &item.name, &request.spec.volume_snapshot_locations, |l| usable.contains(l))
            }
            _ => Ok(None),
        };
        let item = match snapshot {
            Err(e) => {
                log.error(scope, format!("error restoring persistent volume {}: {e}", item.name));
                continue;
            }
            Ok(Some(snapshot)) => {
                match restore_volume(coffer, namespace, snapshot, &item, &mut handles).await {
                    Ok(rewritten) => {
                        let copy = match snapshot.is_copy() {
                            true => format!(" (a copy, in volume snapshot location {}, of the snapshot in {})", snapshot.spec.location, snapshot.spec.copied_from),
                            false => String::new(),
                        };
                        log.info(&format!("Restored persistent volume {} from snapshot {}{copy}", item.name, snapshot.status.provider_snapshot_id));
                        rewritten
                    }
                    Err(e) => {
                        log.error(scope, format!("error restoring persistent volume {}: {e}", item.name));
                        continue;
                    }
                }
            }
            Ok(None) => item,
        };
        if let Err(e) = write_item(&target, &item) {
            log.error(scope, format!("error writing {} {}: {e}", item.kind, item.qualified_name()));
            continue;
        }
        if item.kind == "Pod" {
            pods.insert(item.qualified_name());
        }
        restored.entry(format!("{}/{}", item.api_version, item.kind)).or_default().push(item.qualified_name());
        counts.items_backed_up += 1;
        progress(&counts);
    }
    reader.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;

    // The restored pods' volumes backed up from their files.
    let backups: Vec<PodVolumeBackup> =
        fetch_document(coffer, &stored, &layout.backup_pod_volume_backups(&backup.metadata.meta.name), "the pod volume backup list")
            .await
            .map_err(|e| e.to_string())?;
    let mut report = |data| {
        counts.pod_volume_data = Some(data);
        progress(&counts);
    };
    let volume_restores = pod_volume_restores::restore(coffer, &restore.metadata.meta.name, bsl, &backups, &pods, &target, log, &mut report).await;
    restored.values_mut().for_each(|v| v.sort());
    for (key, document) in [
        (layout.restore_pod_volume_restores(&restore.metadata.meta.name), gzip_json(&volume_restores)),
        (layout.restore_resource_list(&restore.metadata.meta.name), gzip_json(&restored)),
    ] {
        let uploaded = match stored.sealed(&key, document) {
            Ok(body) => store.put_bytes(&bucket, &key, body).await.map(drop).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = uploaded {
            log.warn(Scope::Run, format!("error uploading {key}: {e}"));
        }
    }
    counts.pod_volume_data = None;
    restore.status.progress = Some((&counts).into());
    restore.status.phase = Some(if log.error_count() > 0 { Phase::PartiallyFailed } else { Phase::Completed });
    Ok(())
}
