//! Running a backup: validation, volume snapshots, the tarball, and the upload in Velero's
//! layout with `velero-backup.json` written last.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::filters::{Filter, validate_filters};
use super::item::Item;
use super::layout::Layout;
use super::delete::remove_objects;
use super::kept_log;
use super::manifests::read_manifests;
use super::pod_volumes::{self, PodVolumeBackup};
use super::run_log::{RunLog, Scope, gzip_json};
use super::selection::{Resolved, encryption_errors, resolve_locations};
use super::snapshots::{SnapshotSpec, SnapshotStatus, VolumeSnapshot};
use super::spool::{Spool, Spooled};
use super::tarball::{FORMAT_VERSION, write_tarball};
use super::{Accepted, BackupError};
use crate::coffer::Coffer;
use crate::encryption::{BackupKey, EncryptionError};
use crate::locations::{encryption_key, object_store_for, volume_snapshot_copier_for, volume_snapshotter_for};
use crate::model::{API_VERSION, AccessMode, Backup, BackupCopy, BackupEncryption, BackupMeta, BackupSpec, BackupStatus, BackupStorageLocation, ObjectMeta, Phase, Progress, VolumeSnapshotLocation, now};
use crate::object::{ObjectError, validate_name};
use crate::sandbox::{ObjectStoreHandle, VolumeSnapshotterHandle};


/// When a backup started at `start` with `ttl` expires. TTLs are bounded where they are
/// parsed (Go's largest duration, about 292 years), but the sum is checked all the same: it
/// saturates at the latest representable time rather than overflow.
fn expiration(start: time::OffsetDateTime, ttl: Duration) -> time::OffsetDateTime {
    time::Duration::try_from(ttl)
        .ok()
        .and_then(|ttl| start.checked_add(ttl))
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc())
}

/// The annotation recording the manifest directory a backup read.
pub const SOURCE_ANNOTATION: &str = "coffer.io/source-directory";

/// What `backup create` asks for.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    /// Name.
    pub name: String,
    /// The directory of manifests to back up.
    pub source: PathBuf,
    /// Filters, locations, TTL.
    pub spec: BackupSpec,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The server's `--default-volume-snapshot-locations`.
    pub default_snapshot_locations: BTreeMap<String, String>,
}

/// Creates and runs a backup. Validation problems end it in `FailedValidation` and fatal
/// errors in `Failed` (both recorded, and returned as `Ok`); item and volume errors end it
/// `PartiallyFailed`. `progress` is told after each item.
pub async fn create_backup(
    coffer: &Coffer,
    namespace: &str,
    request: BackupRequest,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Backup, BackupError> {
    match accept_backup(coffer, namespace, request)? {
        Accepted::Refused(backup) => Ok(*backup),
        Accepted::Started(run) => run.run(coffer, progress).await,
    }
}

/// A backup recorded `InProgress` with its locations resolved, not yet run.
#[derive(Debug)]
pub struct StartedBackup {
    backup: Backup,
    resolved: Resolved,
    source: PathBuf,
}

impl StartedBackup {
    /// The record as it stands (`InProgress`).
    pub fn backup(&self) -> &Backup {
        &self.backup
    }

    /// Runs the backup to its end and records the outcome.
    pub async fn run(self, coffer: &Coffer, progress: &mut (dyn FnMut(&Progress) + Send)) -> Result<Backup, BackupError> {
        let StartedBackup { mut backup, resolved, source } = self;
        let (namespace, name) = (backup.metadata.meta.namespace.clone(), backup.metadata.meta.name.clone());
        let mut log = RunLog::new(format!("backup={namespace}/{name}"));
        log.info("Setting up backup log");
        let locations = Locations { storage: &resolved.storage_location, copies: &resolved.copy_locations };
        let snapshotters = Snapshotters::new(resolved.snapshot_locations, resolved.snapshot_copy_locations);
        let outcome = run(coffer, &mut backup, locations, snapshotters, &source, &mut log, progress).await;
        let failed = outcome.is_err();
        if let Err(reason) = outcome {
            log.error(Scope::Run, reason.clone());
            backup.status.phase = Some(Phase::Failed);
            backup.status.failure_reason = reason;
        }
        backup.status.completion_timestamp = Some(now());
        // A failed backup leaves nothing in object storage: its log is kept in the state.
        coffer.state.write(|txn| {
            txn.put(&mut backup)?;
            txn.release::<Backup>(&namespace, &name)?;
            if failed {
                kept_log::keep(txn, &namespace, kept_log::Run::Backup(&name), &log)?;
            }
            Ok::<_, BackupError>(())
        })?;
        Ok(backup)
    }
}

/// Checks a backup request and records it: `FailedValidation` with every problem, or
/// `InProgress` with its locations resolved, ready to run. Fails (recording nothing) when the
/// name is invalid or taken.
pub fn accept_backup(coffer: &Coffer, namespace: &str, request: BackupRequest) -> Result<Accepted<Backup, StartedBackup>, BackupError> {
    validate_name("backup", &request.name)?;
    let mut spec = request.spec;
    if spec.filters.included_namespaces.is_empty() {
        spec.filters.included_namespaces = vec!["*".into()];
    }
    // As Velero (backup_controller.go): a TTL of zero means the default.
    let ttl = spec.ttl.filter(|t| !t.is_zero()).unwrap_or(coffer.default_backup_ttl);
    spec.ttl = Some(ttl);
    let mut meta = ObjectMeta::new(namespace, &request.name);
    meta.labels = request.labels;
    let mut backup = Backup {
        api_version: API_VERSION.into(),
        kind: "Backup".into(),
        metadata: BackupMeta {
            meta,
            annotations: BTreeMap::from([(SOURCE_ANNOTATION.to_owned(), request.source.display().to_string())]),
        },
        spec,
        status: BackupStatus { version: Some(1), format_version: FORMAT_VERSION.into(), phase: Some(Phase::New), ..Default::default() },
    };
    let name = request.name.clone();
    let resolved = coffer.state.write(|txn| {
        if txn.get::<Backup>(namespace, &name)?.is_some() {
            return Err(BackupError::Object(ObjectError::already_exists("backup", &name)));
        }
        let mut errors = validate_filters(&backup.spec.filters);
        let resolved = match resolve_locations(txn, namespace, &backup.spec, &request.default_snapshot_locations)? {
            Ok(resolved) => Some(resolved),
            Err(more) => {
                errors.extend(more);
                None
            }
        };
        if let Some(resolved) = &resolved {
            errors.extend(encryption_errors(txn, &coffer.keyring, resolved)?);
        }
        let resolved = match resolved {
            Some(resolved) if errors.is_empty() => resolved,
            _ => {
                backup.status.phase = Some(Phase::FailedValidation);
                backup.status.validation_errors = errors;
                txn.put(&mut backup)?;
                return Ok(None);
            }
        };
        // Velero persists what it resolved along with the start.
        let start = now();
        backup.spec.storage_location = resolved.storage_location.metadata.name.clone();
        backup.spec.volume_snapshot_locations = resolved.snapshot_locations.iter().map(|v| v.metadata.name.clone()).collect();
        backup.metadata.meta.labels.insert("velero.io/storage-location".into(), backup.spec.storage_location.clone());
        backup.status.phase = Some(Phase::InProgress);
        backup.status.start_timestamp = Some(start);
        backup.status.expiration = Some(expiration(start, ttl));
        txn.put(&mut backup)?;
        // Held while this process lives: in a shared state, the others know it still runs.
        txn.hold::<Backup>(namespace, &backup.metadata.meta.name)?;
        Ok(Some(resolved))
    })?;
    Ok(match resolved {
        None => Accepted::Refused(Box::new(backup)),
        Some(resolved) => Accepted::Started(Box::new(StartedBackup { backup, resolved, source: request.source })),
    })
}

/// A PersistentVolume's availability zone, from its labels.
fn zone_of(pv: &Item) -> String {
    ["topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"]
        .iter()
        .find_map(|k| pv.object.pointer("/metadata/labels").and_then(|l| l.get(*k)).and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned()
}

/// A volume snapshot location with its provider handle, once opened.
type Opened = (VolumeSnapshotLocation, Option<Result<VolumeSnapshotterHandle, String>>);

/// The volume snapshot locations of a backup, and those receiving copies of its snapshots,
/// each with its provider handle once opened.
struct Snapshotters {
    locations: Vec<Opened>,
    copies: Vec<Opened>,
}

/// The tags of a backup's snapshot of `pv`: the backup's labels, its name and the volume's.
fn snapshot_tags(backup: &Backup, pv: &Item) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = backup.metadata.meta.labels.clone().into_iter().collect();
    tags.push(("velero.io/backup".into(), backup.metadata.meta.name.clone()));
    tags.push(("velero.io/pv".into(), pv.name.clone()));
    tags
}

impl Snapshotters {
    fn new(locations: Vec<VolumeSnapshotLocation>, copies: Vec<VolumeSnapshotLocation>) -> Self {
        let opened = |v| (v, None);
        Snapshotters { locations: locations.into_iter().map(opened).collect(), copies: copies.into_iter().map(opened).collect() }
    }

    /// Snapshots `pv` with the first location whose provider claims it, and copies the
    /// snapshot to every copy location of that provider. `Ok(None)` when no provider claims
    /// the volume; `Err` when its snapshot failed. A failed copy is logged as an error and
    /// recorded `Failed`; the snapshot stands.
    async fn snapshot(
        &mut self,
        coffer: &Coffer,
        backup: &Backup,
        pv: &Item,
        log: &mut RunLog,
    ) -> Result<Option<(VolumeSnapshot, Vec<VolumeSnapshot>)>, String> {
        let document = pv.object.to_string();
        for (vsl, handle) in &mut self.locations {
            if handle.is_none() {
                *handle = Some(volume_snapshotter_for(coffer, vsl).await.map_err(|e| e.to_string()));
            }
            let handle = match handle.as_mut().expect("set above") {
                Ok(h) => h,
                Err(e) => {
                    log.error(Scope::Cluster, format!("error initializing volume snapshotter for {}: {e}", vsl.metadata.name));
                    continue;
                }
            };
            let volume_id = match handle.get_volume_id(&document).await {
                Ok(Some(id)) => id,
                Ok(None) => continue,
                Err(e) => {
                    log.error(Scope::Cluster, format!("error getting volume ID of persistent volume {}: {e}", pv.name));
                    continue;
                }
            };
            let zone = zone_of(pv);
            let info = handle.get_volume_info(&volume_id, &zone).await.map_err(|e| format!("error getting volume info: {e}"))?;
            let tags = snapshot_tags(backup, pv);
            let mut record = VolumeSnapshot {
                spec: SnapshotSpec {
                    backup_name: backup.metadata.meta.name.clone(),
                    backup_uid: format!("{}/{}", backup.metadata.meta.namespace, backup.metadata.meta.name),
                    location: vsl.metadata.name.clone(),
                    persistent_volume_name: pv.name.clone(),
                    provider_volume_id: volume_id.clone(),
                    volume_type: info.volume_type,
                    volume_az: zone.clone(),
                    volume_iops: info.iops,
                    copied_from: String::new(),
                },
                status: SnapshotStatus { phase: "New".into(), ..Default::default() },
            };
            let id = handle
                .create_snapshot(&volume_id, &zone, &tags)
                .await
                .map_err(|e| format!("error taking snapshot of volume {volume_id} (persistent volume {}): {e}", pv.name))?;
            record.status = SnapshotStatus { provider_snapshot_id: id, phase: "Completed".into() };
            log.info(&format!("Snapshot of persistent volume {} completed: {}", pv.name, record.status.provider_snapshot_id));
            let copies = copy_snapshot(coffer, &mut self.copies, vsl, &record, &tags, log).await;
            return Ok(Some((record, copies)));
        }
        Ok(None)
    }
}

/// Copies the completed snapshot `original`, taken through `source`, to each of `copies` of
/// the same provider; the records of the copies, completed or failed.
async fn copy_snapshot(
    coffer: &Coffer,
    copies: &mut [Opened],
    source: &VolumeSnapshotLocation,
    original: &VolumeSnapshot,
    tags: &[(String, String)],
    log: &mut RunLog,
) -> Vec<VolumeSnapshot> {
    let mut records = Vec::new();
    let snapshot_id = &original.status.provider_snapshot_id;
    let source_config: Vec<(String, String)> = source.spec.config.clone().into_iter().collect();
    for (vsl, handle) in copies.iter_mut().filter(|(v, _)| v.spec.provider == source.spec.provider) {
        if handle.is_none() {
            *handle = Some(volume_snapshot_copier_for(coffer, vsl, source).await.map_err(|e| e.to_string()));
        }
        let result = match handle.as_mut().expect("set above") {
            Ok(h) => h.copy_snapshot(snapshot_id, &source_config, &original.spec.volume_az, tags).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("error initializing volume snapshotter: {e}")),
        };
        let mut record = original.clone();
        record.spec.location = vsl.metadata.name.clone();
        record.spec.copied_from = source.metadata.name.clone();
        match result {
            Ok(copy) => {
                log.info(&format!(
                    "Snapshot {snapshot_id} of persistent volume {} copied to volume snapshot location {}: {}",
                    original.spec.persistent_volume_name, vsl.metadata.name, copy.snapshot_id
                ));
                record.spec.volume_az = copy.volume_az;
                record.status = SnapshotStatus { provider_snapshot_id: copy.snapshot_id, phase: "Completed".into() };
            }
            Err(e) => {
                log.error(Scope::Cluster, format!(
                    "error copying snapshot {snapshot_id} of persistent volume {} to volume snapshot location {}: {e}",
                    original.spec.persistent_volume_name, vsl.metadata.name
                ));
                record.status = SnapshotStatus { provider_snapshot_id: String::new(), phase: "Failed".into() };
            }
        }
        records.push(record);
    }
    records
}

/// The resource list: `group/version/Kind` → sorted `ns/name`.
fn resource_list(items: &[&Item]) -> BTreeMap<String, Vec<String>> {
    let mut list: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in items {
        list.entry(format!("{}/{}", item.api_version, item.kind)).or_default().push(item.qualified_name());
    }
    list.values_mut().for_each(|v| v.sort());
    list
}

/// The storage locations a backup is written to: its own, and those receiving a copy.
#[derive(Clone, Copy)]
struct Locations<'a> {
    storage: &'a BackupStorageLocation,
    copies: &'a [BackupStorageLocation],
}

/// The run proper. `Err` is a fatal reason (the backup becomes `Failed`).
async fn run(
    coffer: &Coffer,
    backup: &mut Backup,
    locations: Locations<'_>,
    mut snapshotters: Snapshotters,
    source: &std::path::Path,
    log: &mut RunLog,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<(), String> {
    let name = backup.metadata.meta.name.clone();
    let bsl = locations.storage;
    let mut main = Destination::open(coffer, bsl).await.map_err(|e| format!("error getting backup store: {e}"))?;
    let Destination { store, bucket, layout, .. } = &mut main;
    match store.object_exists(bucket, &layout.backup_metadata(&name)).await {
        Ok(false) => {}
        Ok(true) => return Err("backup already exists in object storage".into()),
        Err(e) => return Err(format!("error checking if backup already exists in object storage: {e}")),
    }

    // The source is resolved now, at use (beneath the tenant's tree on a shared host), and
    // read through the open directory.
    let tenant = coffer.tenant(&backup.metadata.meta.namespace).map_err(|e| format!("error opening the tenant's directory: {e}"))?;
    let paths = tenant.paths();
    let dir = paths.open_dir("the manifest directory", source).map_err(|e| format!("error reading the resources to back up: {e}"))?;
    let items = read_manifests(&dir, &paths.recorded(source)).map_err(|e| format!("error reading the resources to back up: {e}"))?;
    // Pod volumes lead to claims and persistent volumes whether or not the filters include them.
    let claims_and_volumes: Vec<Item> =
        items.iter().filter(|i| matches!(i.kind.as_str(), "PersistentVolumeClaim" | "PersistentVolume")).cloned().collect();
    let items = Filter::new(&backup.spec.filters).apply(items);
    let total = items.len() as u64;
    let mut counts = Progress { total_items: total, ..Default::default() };
    progress(&counts);
    log.info(&format!("Backing up {total} items"));

    // Volumes backed up with file-system backup are not also snapshotted (Velero: FSB wins).
    let pods: Vec<&Item> = items.iter().filter(|i| i.kind == "Pod").collect();
    let pod_volumes = pod_volumes::select(&pods, &claims_and_volumes, backup.spec.default_volumes_to_fs_backup == Some(true), log);
    let fs_backed: std::collections::BTreeSet<String> = pod_volumes.iter().map(|v| v.persistent_volume.clone()).collect();
    let snapshot_volumes = backup.spec.snapshot_volumes != Some(false);
    let mut records = Vec::new();
    let mut copy_records = Vec::new();
    let mut failed_snapshots = 0u64;
    let mut included: Vec<&Item> = Vec::with_capacity(items.len());
    for item in &items {
        let scope = match &item.namespace {
            Some(ns) => Scope::Namespace(ns),
            None => Scope::Cluster,
        };
        if item.kind == "PersistentVolume" && fs_backed.contains(&item.name) {
            log.info(&format!("Skipping snapshot of persistent volume {} because volume is being backed up with file system backup", item.name));
        } else if item.kind == "PersistentVolume" && snapshot_volumes {
            match snapshotters.snapshot(coffer, backup, item, log).await {
                Ok(Some((record, copies))) => {
                    records.push(record);
                    copy_records.extend(copies);
                }
                Ok(None) => log.info(&format!(
                    "Persistent volume {} is not a candidate for a snapshot: no applicable volumesnapshotter found",
                    item.name
                )),
                Err(e) => {
                    log.error(scope, e);
                    failed_snapshots += 1;
                    continue; // As Velero: a PV whose snapshot failed is not in the tarball.
                }
            }
        }
        included.push(item);
        counts.items_backed_up += 1;
        progress(&counts);
    }
    backup.status.volume_snapshots_attempted = records.len() as u64 + failed_snapshots;
    backup.status.volume_snapshots_completed = records.iter().filter(|r| r.status.phase == "Completed").count() as u64;
    // Copies follow every original, so that a reader taking a volume's first record takes it.
    records.extend(copy_records);
    backup.status.progress = Some(counts.clone());
    let mut report = |data| {
        counts.pod_volume_data = Some(data);
        progress(&counts);
    };
    let pod_volume_backups = pod_volumes::back_up(coffer, backup, bsl, pod_volumes, paths, log, &mut report).await;

    let mut spool = Spool::new();
    write_tarball(included.iter().copied(), &mut spool).map_err(|e| format!("error writing the backup tarball: {e}"))?;
    let mut tarball = spool.finish().map_err(|e| format!("error writing the backup tarball: {e}"))?;
    // Read now, so that a key rotated since the backup was accepted applies; its copies were
    // checked to hold the identity of the recipient then.
    let key = encryption_key(coffer, bsl).map_err(|e| format!("error reading the encryption key: {e}"))?;
    if let Some(key) = &key {
        backup.status.encryption = Some(BackupEncryption { recipient: key.recipient().to_owned() });
        tarball = seal_file(key, tarball).map_err(|e| e.to_string())?;
    }

    backup.status.errors = log.error_count();
    backup.status.warnings = log.warning_count();
    backup.status.phase = Some(if backup.status.errors > 0 { Phase::PartiallyFailed } else { Phase::Completed });
    backup.status.completion_timestamp = Some(now());
    log.info(&format!("Backed up a total of {} items", included.len()));
    let records = Records::new(&records, &pod_volume_backups, &resource_list(&included), key).map_err(|e| e.to_string())?;
    upload(coffer, main, locations, backup, tarball, Uploaded { records, pod_volume_backups }, log).await
}

/// Where a layout keeps one of a backup's records.
type KeyOf = fn(&Layout, &str) -> String;

/// The records a backup uploads beside its tarball, gzipped JSON (encrypted when its location
/// has a key), with the layout's key of each; and the key the backup's other files are
/// encrypted with.
struct Records {
    documents: Vec<(KeyOf, Vec<u8>)>,
    /// The pod volume backups, which a copy replaces with its own.
    pod_volume_backups: Vec<u8>,
    key: Option<BackupKey>,
}

impl Records {
    fn new(
        volume_snapshots: &[VolumeSnapshot],
        pod_volume_backups: &[PodVolumeBackup],
        resources: &BTreeMap<String, Vec<String>>,
        key: Option<BackupKey>,
    ) -> Result<Self, EncryptionError> {
        let documents: Vec<(KeyOf, Vec<u8>)> =
            vec![(Layout::backup_volume_snapshots, gzip_json(&volume_snapshots)), (Layout::backup_resource_list, gzip_json(resources))];
        let mut records = Records { documents: Vec::with_capacity(documents.len()), pod_volume_backups: Vec::new(), key };
        for (key_of, document) in documents {
            let sealed = records.seal("a backup record", document)?;
            records.documents.push((key_of, sealed));
        }
        records.pod_volume_backups = records.pod_volume_backups_of(pod_volume_backups)?;
        Ok(records)
    }

    /// `pod_volume_backups` as the backup stores them.
    fn pod_volume_backups_of(&self, pod_volume_backups: &[PodVolumeBackup]) -> Result<Vec<u8>, EncryptionError> {
        self.seal("a backup record", gzip_json(&pod_volume_backups))
    }

    /// `plain` as the backup stores it: encrypted when its location has a key.
    fn seal(&self, what: &str, plain: Vec<u8>) -> Result<Vec<u8>, EncryptionError> {
        match &self.key {
            None => Ok(plain),
            Some(key) => key.seal_bytes(what, &plain),
        }
    }
}

/// `plain` encrypted with `key` into a new spool, streaming.
fn seal_file(key: &BackupKey, plain: Spooled) -> Result<Spooled, EncryptionError> {
    let mut sealed = Spool::new();
    key.seal("the backup tarball", std::io::BufReader::new(plain.reader()), std::io::BufWriter::new(&mut sealed))?;
    sealed.finish().map_err(|source| EncryptionError::Io { what: "the backup tarball".into(), source })
}

/// What a backup uploads beside its tarball: the records, and (for the copies, whose
/// records name their own repositories) its pod volume backups.
struct Uploaded {
    records: Records,
    pod_volume_backups: Vec<PodVolumeBackup>,
}

/// A storage location a backup is written to, open.
struct Destination {
    /// The location's name.
    name: String,
    store: ObjectStoreHandle,
    bucket: String,
    layout: Layout,
    /// A copy's pod volume data, copied into its own repositories.
    copied_volumes: Option<CopiedVolumes>,
}

/// A copy's pod volume data, copied into the repositories of its location.
struct CopiedVolumes {
    /// The location.
    bsl: BackupStorageLocation,
    /// The copy's records, naming its repositories and snapshots.
    records: Vec<PodVolumeBackup>,
    /// The records as stored (the backup's own are in [`Records`]).
    stored: Vec<u8>,
}

impl Destination {
    async fn open(coffer: &Coffer, bsl: &BackupStorageLocation) -> Result<Self, crate::locations::LocationError> {
        Ok(Destination {
            name: bsl.metadata.name.clone(),
            store: object_store_for(coffer, bsl).await?,
            bucket: bsl.spec.object_storage.bucket.clone(),
            layout: Layout::new(&bsl.spec.object_storage.prefix),
            copied_volumes: None,
        })
    }

    /// The tarball and the records.
    async fn put_data(&mut self, name: &str, tarball: &Spooled, records: &Records) -> Result<(), String> {
        let key = self.layout.backup_contents(name);
        self.store.put_object(&self.bucket, &key, tarball.reader()).await.map_err(|e| format!("error uploading the backup tarball: {e}"))?;
        for (key_of, body) in &records.documents {
            let key = key_of(&self.layout, name);
            self.store.put_bytes(&self.bucket, &key, body.clone()).await.map_err(|e| format!("error uploading {key}: {e}"))?;
        }
        let key = self.layout.backup_pod_volume_backups(name);
        let body = self.copied_volumes.as_ref().map_or(&records.pod_volume_backups, |c| &c.stored).clone();
        self.store.put_bytes(&self.bucket, &key, body).await.map_err(|e| format!("error uploading {key}: {e}"))?;
        Ok(())
    }

    /// The results and the log, then `velero-backup.json` naming this location.
    async fn put_reports_and_metadata(&mut self, backup: &Backup, results: &[u8], log: &[u8]) -> Result<(), String> {
        let name = &backup.metadata.meta.name;
        for (key, body) in [(self.layout.backup_results(name), results), (self.layout.backup_log(name), log)] {
            self.store.put_bytes(&self.bucket, &key, body.to_vec()).await.map_err(|e| format!("error uploading {key}: {e}"))?;
        }
        let mut here = backup.clone();
        if here.spec.storage_location != self.name {
            // A copy says where it is, as a backup synced from there would.
            here.spec.storage_location.clone_from(&self.name);
            here.metadata.meta.labels.insert("velero.io/storage-location".into(), self.name.clone());
        }
        let metadata = serde_json::to_vec(&here).map_err(|e| e.to_string())?;
        let key = self.layout.backup_metadata(name);
        self.store.put_bytes(&self.bucket, &key, metadata).await.map(drop).map_err(|e| format!("error uploading the backup metadata: {e}"))
    }

    /// Removes what a failed upload left, so that a half-written backup is never visible, and
    /// forgets the pod volume snapshots copied for it.
    async fn discard(&mut self, coffer: &Coffer, name: &str, log: &mut RunLog) {
        match remove_objects(&mut self.store, &self.bucket, &self.layout, name).await {
            Ok(left) if left.is_empty() => {}
            Ok(left) => log.warn(Scope::Run, format!("objects of the failed backup remain in {}: {}", self.name, left.join("; "))),
            Err(e) => log.warn(Scope::Run, format!("objects of the failed backup may remain in {}: {e}", self.name)),
        }
        if let Some(copied) = self.copied_volumes.take() {
            pod_volumes::forget_copied(coffer, &copied.bsl, &copied.records, log).await;
        }
    }
}

/// Uploads everything to the backup's own location and to each copy's, `velero-backup.json`
/// last everywhere and in the backup's own location after every copy. A failure in the own
/// location fails the backup and removes what was uploaded anywhere; a failed copy makes the
/// backup `PartiallyFailed`, naming the location, and its location keeps nothing of it.
async fn upload(
    coffer: &Coffer,
    mut main: Destination,
    locations: Locations<'_>,
    backup: &mut Backup,
    tarball: Spooled,
    uploaded: Uploaded,
    log: &mut RunLog,
) -> Result<(), String> {
    let Uploaded { records, pod_volume_backups } = uploaded;
    let name = backup.metadata.meta.name.clone();
    if let Err(e) = main.put_data(&name, &tarball, &records).await {
        main.discard(coffer, &name, log).await;
        return Err(e);
    }
    let mut copies = Vec::new();
    for bsl in locations.copies {
        let copied = async {
            // Read again now: the location may have been deleted or changed since the backup
            // was accepted, and the backup's key rotated.
            let current = coffer.state.read().and_then(|txn| txn.get::<BackupStorageLocation>(&bsl.metadata.namespace, &bsl.metadata.name));
            let bsl = match current.map_err(|e| e.to_string())? {
                None => return Err("it was deleted while the backup ran".to_owned()),
                Some(now) if now.spec.access_mode == AccessMode::ReadOnly => return Err("it was made read-only while the backup ran".to_owned()),
                Some(now) => now,
            };
            let bsl = &bsl;
            if let Some(recipient) = records.key.as_ref().map(BackupKey::recipient) {
                match encryption_key(coffer, bsl).map_err(|e| e.to_string())? {
                    Some(key) if key.opens(recipient) => {}
                    _ => return Err(format!("its encryption key does not hold the identity of recipient {recipient}, which the backup is encrypted to")),
                }
            }
            let mut copy = Destination::open(coffer, bsl).await.map_err(|e| e.to_string())?;
            match copy.store.object_exists(&copy.bucket, &copy.layout.backup_metadata(&name)).await {
                Ok(false) => {}
                Ok(true) => return Err("a backup of that name already exists there".to_owned()),
                Err(e) => return Err(e.to_string()),
            }
            // The pod volume data, into the copy's own repositories, which its records name.
            if pod_volume_backups.iter().any(|p| !p.status.snapshot_id.is_empty()) {
                let held = pod_volumes::copy(coffer, locations.storage, bsl, &pod_volume_backups, log).await?;
                match records.pod_volume_backups_of(&held) {
                    Ok(stored) => copy.copied_volumes = Some(CopiedVolumes { bsl: bsl.clone(), records: held, stored }),
                    Err(e) => {
                        pod_volumes::forget_copied(coffer, bsl, &held, log).await;
                        return Err(e.to_string());
                    }
                }
            }
            if let Err(e) = copy.put_data(&name, &tarball, &records).await {
                copy.discard(coffer, &name, log).await;
                return Err(e);
            }
            Ok(copy)
        }
        .await;
        match copied {
            Ok(copy) => {
                log.info(&format!("Copied the backup to backup storage location {}", copy.name));
                copies.push(copy);
            }
            Err(e) => {
                let message = format!("error copying the backup to backup storage location {}: {e}", bsl.metadata.name);
                log.error(Scope::Run, message.clone());
                backup.status.copies.push(BackupCopy { storage_location: bsl.metadata.name.clone(), phase: Some(Phase::Failed), message });
            }
        }
    }
    backup.status.errors = log.error_count();
    if backup.status.errors > 0 {
        backup.status.phase = Some(Phase::PartiallyFailed);
    }
    let (results, log_gz) = match (records.seal("the backup results", log.results_gz()), records.seal("the backup log", log.log_gz())) {
        (Ok(results), Ok(log_gz)) => (results, log_gz),
        (Err(e), _) | (_, Err(e)) => {
            main.discard(coffer, &name, log).await;
            for copy in &mut copies {
                copy.discard(coffer, &name, log).await;
            }
            return Err(e.to_string());
        }
    };
    for copy in &copies {
        backup.status.copies.push(BackupCopy { storage_location: copy.name.clone(), phase: Some(Phase::Completed), message: String::new() });
    }
    backup.status.copies.sort_by(|a, b| a.storage_location.cmp(&b.storage_location));
    for copy in &mut copies {
        if let Err(e) = copy.put_reports_and_metadata(backup, &results, &log_gz).await {
            copy.discard(coffer, &name, log).await;
            // After the log went up: the failure is in the record, the backup's own metadata.
            let record = backup.status.copies.iter_mut().find(|c| c.storage_location == copy.name).expect("recorded above");
            record.phase = Some(Phase::Failed);
            record.message = format!("error copying the backup to backup storage location {}: {e}", copy.name);
            backup.status.errors += 1;
            backup.status.phase = Some(Phase::PartiallyFailed);
        }
    }
    let result = main.put_reports_and_metadata(backup, &results, &log_gz).await;
    if result.is_err() {
        main.discard(coffer, &name, log).await;
        for copy in &mut copies {
            copy.discard(coffer, &name, log).await;
        }
    }
    result
}
