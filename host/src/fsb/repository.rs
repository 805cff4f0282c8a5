//! A namespace's restic repository in a backup storage location: opened (or created, restic
//! repository version 2) with the namespace's password, backed up into and restored from.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cap_std::fs::Dir;
use rustic_core::repofile::{MasterKey, SnapshotFile, SnapshotId};
use rustic_core::{
    BackupOptions, ConfigOptions, Credentials, KeyOptions, LocalDestination, LsOptions, OpenStatus, PruneOptions, RepairIndexOptions, Repository,
    RepositoryBackends, RepositoryOptions, RestoreOptions, RusticError, SnapshotOptions,
};
use tokio::runtime::Handle;

use crate::coffer::Coffer;
use crate::confine::proc_path;
use crate::locations::object_store_for;
use crate::model::BackupStorageLocation;
use crate::secret::SecretBytes;

use super::FsbError;
use super::progress::{CountingBars, DataCounter};
use super::unlocked_key::{keep_key, kept_key};
use super::password::{REPO_CREDENTIALS, REPO_PASSWORD_KEY, as_text, repository_password};
use super::source::{VolumeSource, Warnings};
use super::store::{INSTANCES, RepositoryStore};

/// Where a namespace's repository lives in a location, as in Velero: `<prefix>/restic/<namespace>`.
pub fn repository_root(prefix: &str, volume_namespace: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() { format!("restic/{volume_namespace}") } else { format!("{prefix}/restic/{volume_namespace}") }
}

/// The repository as `restic -r` names it, as Velero records it (`resticIdentifier`): `s3:`,
/// `azure:` or `gs:` for the cloud providers, the directory itself for the filesystem provider,
/// and `coffer:<location>/<bucket>/<root>` for others, which only Coffer reads.
pub fn restic_identifier(bsl: &BackupStorageLocation, volume_namespace: &str) -> String {
    let storage = &bsl.spec.object_storage;
    let (bucket, root) = (&storage.bucket, repository_root(&storage.prefix, volume_namespace));
    let config = |key: &str| bsl.spec.config.get(key).map(String::as_str).filter(|v| !v.is_empty());
    match bsl.spec.provider.trim_start_matches("velero.io/") {
        "aws" => match config("s3Url") {
            Some(url) => format!("s3:{}/{bucket}/{root}", url.trim_end_matches('/')),
            None => format!("s3:s3-{}.amazonaws.com/{bucket}/{root}", config("region").unwrap_or("us-east-1")),
        },
        "azure" => format!("azure:{bucket}:/{root}"),
        "gcp" => format!("gs:{bucket}:/{root}"),
        "filesystem" => format!("{}/{bucket}/{root}", config("root").unwrap_or_default().trim_end_matches('/')),
        _ => format!("coffer:{}/{bucket}/{root}", bsl.metadata.name),
    }
}

/// Held while a repository is looked for and created, so that two runs of this process never
/// both create one.
static CREATING: Mutex<()> = Mutex::new(());

/// A namespace's repository in a backup storage location.
pub struct VolumeRepository {
    store: Arc<RepositoryStore>,
    password: SecretBytes,
    /// Its master key, once unlocked: opening with it skips the key derivation.
    key: Option<MasterKey>,
    /// How errors name it.
    name: String,
}

/// What a volume's backup stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSnapshot {
    /// The restic snapshot ID.
    pub id: String,
    /// Files read.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Bytes the repository grew by (compressed and encrypted packs).
    pub uploaded: u64,
    /// Files left out or skipped, and why.
    pub warnings: Vec<String>,
}

/// What a prune did, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Data no snapshot uses, marked for removal by the next run.
    pub marked: u64,
    /// Data marked by an earlier run, removed.
    pub removed: u64,
}

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRestore {
    /// Files written.
    pub files: u64,
    /// Directories written.
    pub dirs: u64,
    /// Bytes written.
    pub bytes: u64,
}

impl VolumeRepository {
    /// The repository of `volume_namespace` in `bsl`, served by its own provider instances and
    /// opened once: with the key kept from an earlier opening with the same password, or else
    /// with the password (the repository is created if there is none). The key it opened with
    /// is kept when it is not the kept one, so a repository created anew in the place of
    /// another is not opened with the slow key derivation ever after.
    pub async fn new(coffer: &Coffer, bsl: &BackupStorageLocation, volume_namespace: &str) -> Result<Self, FsbError> {
        let storage = &bsl.spec.object_storage;
        let root = repository_root(&storage.prefix, volume_namespace);
        let mut handles = Vec::with_capacity(INSTANCES);
        for _ in 0..INSTANCES {
            handles.push(object_store_for(coffer, bsl).await?);
        }
        let name = format!("{}:{}/{root}", handles[0].location(), storage.bucket);
        let password = repository_password(coffer, &bsl.metadata.namespace, &name)?;
        let store = RepositoryStore::new(handles, &storage.bucket, &root, Handle::current());
        let namespace = &bsl.metadata.namespace;
        let kept = kept_key(coffer, namespace, &name, &password)?;
        let mut repository = VolumeRepository { store: Arc::new(store), password, key: kept.clone(), name };
        let key = repository.blocking(None, |repo, _| Ok(repo.key())).await?;
        let same = |kept: &MasterKey| serde_json::to_value(kept).ok() == serde_json::to_value(&key).ok();
        if !kept.as_ref().is_some_and(same) {
            keep_key(coffer, namespace, &repository.name, &repository.password, key.clone())?;
        }
        repository.key = Some(key);
        Ok(repository)
    }

    /// Backs up the volume directory `dir`, recorded in the snapshot at `path` (`/<volume>`)
    /// with `tags`, counting the bytes read into `counter`. A later backup of the same path
    /// reads only what changed since.
    pub async fn backup(&self, dir: Dir, path: &str, tags: &[String], counter: &Arc<DataCounter>) -> Result<VolumeSnapshot, FsbError> {
        let (path, tags) = (PathBuf::from(path), tags.join(","));
        self.blocking(Some(counter), move |repo, this| {
            let repo = repo.to_indexed_ids().map_err(|e| this.error(&e))?;
            let mut snapshot = SnapshotOptions::default().host(Some("coffer".to_owned()));
            if !tags.is_empty() {
                snapshot = snapshot.add_tags(&tags).map_err(|e| this.error(&e))?;
            }
            let snapshot = snapshot.to_snapshot().map_err(|e| this.error(&e))?;
            let warnings = Warnings::default();
            let source = VolumeSource::new(dir, path.clone(), warnings.clone());
            let opts = BackupOptions::default();
            let done: SnapshotFile = repo.archive(&opts, &source, snapshot, &[path]).map_err(|e| this.error(&e))?;
            let summary = done.summary.unwrap_or_default();
            let warnings = std::mem::take(&mut *warnings.lock().expect("warnings lock"));
            Ok(VolumeSnapshot {
                id: done.id.to_hex().as_str().to_owned(),
                files: summary.total_files_processed,
                bytes: summary.total_bytes_processed,
                uploaded: summary.data_added_packed,
                warnings,
            })
        })
        .await
    }

    /// Restores snapshot `id` into `target`, an empty directory: the volume's files with their
    /// modes and times, symbolic links as links; the bytes written are counted into `counter`.
    pub async fn restore(&self, id: &str, target: Dir, counter: &Arc<DataCounter>) -> Result<VolumeRestore, FsbError> {
        let id = id.to_owned();
        self.blocking(Some(counter), move |repo, this| {
            let repo = repo.to_indexed().map_err(|e| this.error(&e))?;
            let snapshot = repo
                .get_snapshot_from_str(&id, |_| true)
                .map_err(|_| FsbError::NoSnapshot { repository: this.name.clone(), snapshot: id.clone() })?;
            let root = snapshot.paths.iter().next().cloned().unwrap_or_default();
            let node = repo.node_from_snapshot_and_path(&snapshot, &root).map_err(|e| this.error(&e))?;
            // The target, by its handle: a path the tenant renames meanwhile still leads there.
            let dest = format!("{}/", proc_path(std::os::fd::AsRawFd::as_raw_fd(&target)).display());
            let dest = LocalDestination::new(&dest, false, false).map_err(|e| this.error(&e))?;
            let entries = repo.ls(&node, &LsOptions::default()).map_err(|e| this.error(&e))?;
            let opts = RestoreOptions::default().numeric_id(true);
            let plan = repo.prepare_restore(&opts, entries.clone(), &dest, false).map_err(|e| this.error(&e))?;
            let (files, dirs, bytes) = (plan.stats.files.restore, plan.stats.dirs.restore, plan.restore_size);
            repo.restore(plan, &opts, entries, &dest).map_err(|e| this.error(&e))?;
            drop(target);
            Ok(VolumeRestore { files, dirs, bytes })
        })
        .await
    }

    /// Copies snapshots `ids` into `dest`, the same namespace's repository in another
    /// location, as `restic copy` does: the data and trees `dest` lacks, then each snapshot,
    /// recording the one it is a copy of (`original`). Returns each copy's ID in `dest`, in the
    /// order of `ids`; a snapshot copied before is not copied twice (its copy has the same ID).
    pub async fn copy_snapshots(&self, dest: &VolumeRepository, ids: Vec<String>) -> Result<Vec<String>, FsbError> {
        let target = dest.opened(DataCounter::new());
        dest.store.take_failure();
        let copied = self
            .blocking(None, move |repo, this| {
                let repo = repo.to_indexed().map_err(|e| this.error(&e))?;
                let mut snapshots = Vec::with_capacity(ids.len());
                for id in &ids {
                    let mut snapshot = repo
                        .get_snapshot_from_str(id, |_| true)
                        .map_err(|_| FsbError::NoSnapshot { repository: this.name.clone(), snapshot: id.clone() })?;
                    snapshot.original.get_or_insert(snapshot.id);
                    snapshots.push(snapshot);
                }
                let dest = target.open_or_create()?.to_indexed_ids().map_err(|e| target.error(&e))?;
                repo.copy(&dest, &snapshots).map_err(|e| target.error(&e))?;
                let present = dest.get_all_snapshots().map_err(|e| target.error(&e))?;
                snapshots
                    .iter()
                    .map(|wanted| {
                        let copy = present.iter().find(|p| p.original == wanted.original && p.tree == wanted.tree);
                        copy.map(|c| c.id.to_hex().as_str().to_owned()).ok_or_else(|| FsbError::Repository {
                            repository: target.name.clone(),
                            message: format!("the copy of snapshot {} is not in it after copying", wanted.id.to_hex().as_str()),
                        })
                    })
                    .collect()
            })
            .await;
        match copied {
            // A read or write of the destination that failed stopped the copy: it says why.
            Err(FsbError::Task(task)) => Err(match dest.store.take_failure() {
                Some(message) => FsbError::Repository { repository: dest.name.clone(), message },
                None => FsbError::Task(task),
            }),
            other => other,
        }
    }

    /// Indexes the packs that no index lists (what an interrupted backup uploaded), reading
    /// their headers, and drops index entries of packs that are gone: rustic's `repair index`.
    pub async fn repair_index(&self) -> Result<(), FsbError> {
        self.blocking(None, move |repo, this| repo.repair_index(&RepairIndexOptions::default(), false).map_err(|e| this.error(&e))).await
    }

    /// Forgets snapshots `ids` (their data stays until [`Self::prune`]); IDs no longer in the
    /// repository are skipped.
    pub async fn forget(&self, ids: Vec<String>) -> Result<(), FsbError> {
        self.blocking(None, move |repo, this| {
            let present = repo.get_all_snapshots().map_err(|e| this.error(&e))?;
            let gone: Vec<SnapshotId> = present.into_iter().map(|s| s.id).filter(|id| ids.contains(&id.to_hex().as_str().to_owned())).collect();
            repo.delete_snapshots(&gone).map_err(|e| this.error(&e))
        })
        .await
    }

    /// Prunes the repository in rustic's two steps, so that a backup running meanwhile never
    /// loses data it reuses: data no snapshot uses is marked for removal, and data marked by
    /// an earlier run is removed.
    pub async fn prune(&self) -> Result<Pruned, FsbError> {
        self.blocking(None, move |repo, this| {
            let opts = PruneOptions::default();
            let plan = repo.prune_plan(&opts).map_err(|e| this.error(&e))?;
            let size = plan.stats.size_sum();
            let pruned = Pruned { marked: size.remove + size.repackrm, removed: plan.stats.size_to_delete.remove };
            repo.prune(&opts, plan).map_err(|e| this.error(&e))?;
            Ok(pruned)
        })
        .await
    }

    /// Runs `work` on the opened (or created) repository, on a blocking thread; rustic's byte
    /// progress goes to `counter`.
    async fn blocking<T: Send + 'static>(
        &self,
        counter: Option<&Arc<DataCounter>>,
        work: impl FnOnce(Repository<OpenStatus>, &Opened) -> Result<T, FsbError> + Send + 'static,
    ) -> Result<T, FsbError> {
        let opened = self.opened(counter.cloned().unwrap_or_else(DataCounter::new));
        self.store.take_failure();
        let outcome = tokio::task::spawn_blocking(move || {
            let repo = opened.open_or_create()?;
            work(repo, &opened)
        })
        .await;
        match outcome {
            Ok(result) => result,
            // rustic stops some work by panicking on a read error: the failed call says why.
            Err(e) => Err(match self.store.take_failure() {
                Some(message) => FsbError::Repository { repository: self.name.clone(), message },
                None => FsbError::Task(e.to_string()),
            }),
        }
    }

    /// What a blocking task needs to open it, its bytes counted into `counter`.
    fn opened(&self, counter: Arc<DataCounter>) -> Opened {
        Opened { store: self.store.clone(), password: self.password.clone(), key: self.key.clone(), name: self.name.clone(), counter }
    }
}

/// What a blocking task needs of the repository.
struct Opened {
    store: Arc<RepositoryStore>,
    password: SecretBytes,
    key: Option<MasterKey>,
    name: String,
    counter: Arc<DataCounter>,
}

impl Opened {
    fn error(&self, err: &RusticError) -> FsbError {
        FsbError::Repository { repository: self.name.clone(), message: err.to_string() }
    }

    fn repository(&self) -> Result<Repository<()>, FsbError> {
        let backends = RepositoryBackends::new(self.store.clone(), None);
        let options = RepositoryOptions::default().no_cache(true);
        Repository::new_with_progress(&options, &backends, CountingBars(self.counter.clone())).map_err(|e| self.error(&e))
    }

    fn open_or_create(&self) -> Result<Repository<OpenStatus>, FsbError> {
        // A kept key that opens it no more (a repository created anew in its place) is
        // passed over for the password.
        if let Some(key) = &self.key
            && let Ok(opened) = self.repository()?.open(&Credentials::Masterkey(key.clone()))
        {
            return Ok(opened);
        }
        let repo = self.repository()?;
        let credentials = Credentials::password(as_text(&self.password));
        let _creating = CREATING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let opened = match repo.config_id().map_err(|e| self.error(&e))? {
            None => repo.init(&credentials, &KeyOptions::default(), &ConfigOptions::default()),
            Some(_) => repo.open(&credentials),
        };
        opened.map_err(|e| match e.is_code("C002") {
            true => FsbError::Password {
                repository: self.name.clone(),
                secret: REPO_CREDENTIALS.into(),
                key: REPO_PASSWORD_KEY.into(),
                reason: "the password does not open the repository".into(),
            },
            false => self.error(&e),
        })
    }
}
