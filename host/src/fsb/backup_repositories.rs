//! `BackupRepository` records (velero.io/v1): one per (backup storage location, volume
//! namespace), created at the first file-system backup into it, `Ready` while it opens and
//! `NotReady` (with the reason) when it does not, and maintained (pruned) every
//! `maintenanceFrequency`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::coffer::Coffer;
use crate::model::{BackupStorageLocation, ObjectMeta, go_duration, now};
use crate::object::ObjectError;
use crate::secret::SecretBytes;
use crate::state::Resource;

use super::{FsbError, VolumeRepository, repository_password, restic_identifier};

/// How often a repository is maintained unless its record says otherwise (Velero's default).
pub const DEFAULT_MAINTENANCE_FREQUENCY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Maintenance runs a record keeps.
const RECENT_MAINTENANCE: usize = 3;

/// What a repository is (Velero's `BackupRepositorySpec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupRepositorySpec {
    /// The namespace whose pod volumes it holds.
    pub volume_namespace: String,
    /// The location holding it.
    pub backup_storage_location: String,
    /// `restic`.
    pub repository_type: String,
    /// The repository as `restic -r` takes it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub restic_identifier: String,
    /// How often it is maintained.
    #[serde(default, with = "go_duration::option")]
    pub maintenance_frequency: Option<Duration>,
}

/// One maintenance run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceStatus {
    /// `Succeeded` or `Failed`.
    pub result: String,
    /// When it started.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<OffsetDateTime>,
    /// When it ended.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub complete_timestamp: Option<OffsetDateTime>,
    /// What it did, or why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// How a repository is (Velero's `BackupRepositoryStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupRepositoryStatus {
    /// `New`, `Ready` or `NotReady`.
    pub phase: String,
    /// Why it is not ready.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The last maintenance that succeeded.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_maintenance_time: Option<OffsetDateTime>,
    /// The latest maintenance runs, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_maintenance: Vec<MaintenanceStatus>,
    /// Coffer's: a backup into it was interrupted, so packs it uploaded may be in no index;
    /// the next backup indexes them first, and reuses their data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub index_repair_due: bool,
}

/// A namespace's repository in a location (velero.io/v1 `BackupRepository`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRepository {
    /// `velero.io/v1`.
    pub api_version: String,
    /// `BackupRepository`.
    pub kind: String,
    /// `<volume namespace>-<location>-restic`.
    pub metadata: ObjectMeta,
    /// What.
    pub spec: BackupRepositorySpec,
    /// How it is.
    pub status: BackupRepositoryStatus,
}

impl Resource for BackupRepository {
    const KIND: &'static str = "BackupRepository";
    fn namespace(&self) -> &str {
        &self.metadata.namespace
    }
    fn name(&self) -> &str {
        &self.metadata.name
    }
    fn resource_version(&self) -> Option<&str> {
        Some(&self.metadata.resource_version)
    }
    fn resource_version_mut(&mut self) -> Option<&mut String> {
        Some(&mut self.metadata.resource_version)
    }
}

impl BackupRepository {
    /// Whether maintenance is due at `at`: a frequency after the last run that succeeded (or
    /// after the record was created), and an hour at least after a run that failed.
    pub fn maintenance_due(&self, at: OffsetDateTime) -> bool {
        let frequency = self.spec.maintenance_frequency.unwrap_or(DEFAULT_MAINTENANCE_FREQUENCY);
        let since = self.status.last_maintenance_time.unwrap_or(self.metadata.creation_timestamp);
        let failed = self.status.recent_maintenance.last().filter(|m| m.result == "Failed").and_then(|m| m.complete_timestamp);
        at - since >= frequency && failed.is_none_or(|f| at - f >= frequency.min(MAINTENANCE_RETRY))
    }
}

/// How long a failed maintenance waits before it is tried again (at most the frequency).
const MAINTENANCE_RETRY: Duration = Duration::from_secs(3600);

/// The record's name for `volume_namespace`'s repository in location `location`.
pub fn backup_repository_name(volume_namespace: &str, location: &str) -> String {
    format!("{volume_namespace}-{location}-restic")
}

/// The repository of `volume_namespace` in `bsl`, its record created (`New`) if there is none.
pub async fn open_backup_repository(coffer: &Coffer, bsl: &BackupStorageLocation, volume_namespace: &str) -> Result<VolumeRepository, FsbError> {
    let namespace = &bsl.metadata.namespace;
    let name = backup_repository_name(volume_namespace, &bsl.metadata.name);
    coffer.state.write(|txn| {
        if txn.get::<BackupRepository>(namespace, &name)?.is_none() {
            let mut meta = ObjectMeta::new(namespace, &name);
            meta.labels.insert("velero.io/storage-location".into(), bsl.metadata.name.clone());
            meta.labels.insert("velero.io/volume-namespace".into(), volume_namespace.to_owned());
            meta.labels.insert("velero.io/repository-type".into(), "restic".into());
            txn.put(&mut BackupRepository {
                api_version: crate::model::API_VERSION.into(),
                kind: "BackupRepository".into(),
                metadata: meta,
                spec: BackupRepositorySpec {
                    volume_namespace: volume_namespace.to_owned(),
                    backup_storage_location: bsl.metadata.name.clone(),
                    repository_type: "restic".into(),
                    restic_identifier: restic_identifier(bsl, volume_namespace),
                    maintenance_frequency: Some(DEFAULT_MAINTENANCE_FREQUENCY),
                },
                status: BackupRepositoryStatus { phase: "New".into(), ..Default::default() },
            })?;
        }
        Ok::<_, FsbError>(())
    })?;
    VolumeRepository::new(coffer, bsl, volume_namespace).await
}

/// The repositories of one location a run uses, each opened (its record created) once.
pub struct LocationRepositories<'a> {
    coffer: &'a Coffer,
    bsl: &'a BackupStorageLocation,
    opened: std::collections::BTreeMap<String, VolumeRepository>,
}

impl<'a> LocationRepositories<'a> {
    /// None opened yet.
    pub fn new(coffer: &'a Coffer, bsl: &'a BackupStorageLocation) -> Self {
        LocationRepositories { coffer, bsl, opened: Default::default() }
    }

    /// The repository of `volume_namespace`, opened at its first use; a failure to open it is
    /// recorded on its record.
    pub async fn get(&mut self, volume_namespace: &str) -> Result<&VolumeRepository, FsbError> {
        if !self.opened.contains_key(volume_namespace) {
            let opened = open_backup_repository(self.coffer, self.bsl, volume_namespace).await;
            if let Err(e) = &opened {
                self.record(volume_namespace, Err(e));
            }
            self.opened.insert(volume_namespace.to_owned(), opened?);
        }
        Ok(&self.opened[volume_namespace])
    }

    /// The repository of `volume_namespace`, ready for a backup: when a backup into it was
    /// interrupted, the packs that backup uploaded are indexed first, so that this one reuses
    /// their data. Returns the repository, and a warning when that indexing failed (the
    /// backup goes on; the next one tries again).
    pub async fn for_backup(&mut self, volume_namespace: &str) -> Result<(&VolumeRepository, Option<String>), FsbError> {
        let name = backup_repository_name(volume_namespace, &self.bsl.metadata.name);
        let namespace = self.bsl.metadata.namespace.clone();
        self.get(volume_namespace).await?;
        let repository = &self.opened[volume_namespace];
        let due = self.coffer.state.read()?.get::<BackupRepository>(&namespace, &name)?.is_some_and(|r| r.status.index_repair_due);
        if !due {
            return Ok((repository, None));
        }
        if let Err(e) = repository.repair_index().await {
            return Ok((repository, Some(format!("the packs an interrupted backup left were not indexed, so their data is uploaded again: {e}"))));
        }
        self.coffer.state.write(|txn| {
            if let Some(mut record) = txn.get::<BackupRepository>(&namespace, &name)? {
                record.status.index_repair_due = false;
                txn.put(&mut record)?;
            }
            Ok::<_, FsbError>(())
        })?;
        Ok((repository, None))
    }

    /// Records on `volume_namespace`'s repository record how its latest use went.
    pub fn record(&self, volume_namespace: &str, outcome: Result<(), &FsbError>) {
        let name = backup_repository_name(volume_namespace, &self.bsl.metadata.name);
        if let Err(e) = record_use(self.coffer, &self.bsl.metadata.namespace, &name, outcome) {
            tracing::warn!("the backup repository record {name} was not updated: {e}");
        }
    }
}

/// Records how the latest use of repository `name` went: `Ready`, or `NotReady` with why.
fn record_use(coffer: &Coffer, namespace: &str, name: &str, outcome: Result<(), &FsbError>) -> Result<(), FsbError> {
    coffer.state.write(|txn| {
        if let Some(mut repository) = txn.get::<BackupRepository>(namespace, name)? {
            (repository.status.phase, repository.status.message) = match outcome {
                Ok(()) => ("Ready".into(), String::new()),
                Err(e) => ("NotReady".into(), e.to_string()),
            };
            txn.put(&mut repository)?;
        }
        Ok(())
    })
}

/// Marks the repositories in location `location` of `namespace` as holding what an
/// interrupted backup uploaded: packs that may be in no index, which the next backup into
/// each indexes first.
pub fn backup_interrupted(coffer: &Coffer, namespace: &str, location: &str) -> Result<(), FsbError> {
    coffer.state.write(|txn| {
        for mut record in txn.list::<BackupRepository>(namespace)? {
            if record.spec.backup_storage_location == location && !record.status.index_repair_due {
                record.status.index_repair_due = true;
                txn.put(&mut record)?;
            }
        }
        Ok(())
    })
}

/// `namespace`'s repository records: all of them, or those named (each must exist).
pub fn get_backup_repositories(coffer: &Coffer, namespace: &str, names: &[String]) -> Result<Vec<BackupRepository>, FsbError> {
    let txn = coffer.state.read()?;
    if names.is_empty() {
        return Ok(txn.list::<BackupRepository>(namespace)?);
    }
    names
        .iter()
        .map(|name| txn.get::<BackupRepository>(namespace, name)?.ok_or_else(|| ObjectError::not_found("backup repository", name).into()))
        .collect()
}

/// The password that opens repository `name` (for `restic` in a disaster).
pub fn backup_repository_password(coffer: &Coffer, namespace: &str, name: &str) -> Result<SecretBytes, FsbError> {
    let repository = single(get_backup_repositories(coffer, namespace, &[name.to_owned()])?);
    repository_password(coffer, namespace, &repository.spec.restic_identifier)
}

fn single(mut repositories: Vec<BackupRepository>) -> BackupRepository {
    repositories.pop().expect("get_backup_repositories returns one per name or an error")
}

/// Maintains repository `name` now: prunes the data no snapshot uses, and records the run.
pub async fn maintain_backup_repository(coffer: &Coffer, namespace: &str, name: &str) -> Result<BackupRepository, FsbError> {
    let repository = single(get_backup_repositories(coffer, namespace, &[name.to_owned()])?);
    let bsl = coffer
        .state
        .read()?
        .get::<BackupStorageLocation>(namespace, &repository.spec.backup_storage_location)?
        .ok_or_else(|| ObjectError::not_found("backup storage location", &repository.spec.backup_storage_location))?;
    let started = now();
    let outcome = async { VolumeRepository::new(coffer, &bsl, &repository.spec.volume_namespace).await?.prune().await }.await;
    let run = MaintenanceStatus {
        result: if outcome.is_ok() { "Succeeded" } else { "Failed" }.into(),
        start_timestamp: Some(started),
        complete_timestamp: Some(now()),
        message: match &outcome {
            Ok(pruned) => format!(
                "pruned: {} bytes no snapshot uses marked for removal, {} bytes marked earlier removed",
                pruned.marked, pruned.removed
            ),
            Err(e) => e.to_string(),
        },
    };
    let updated = coffer.state.write(|txn| {
        let mut current = txn.get::<BackupRepository>(namespace, name)?.ok_or_else(|| ObjectError::not_found("backup repository", name))?;
        if outcome.is_ok() {
            current.status.last_maintenance_time = run.complete_timestamp;
            (current.status.phase, current.status.message) = ("Ready".into(), String::new());
        }
        current.status.recent_maintenance.push(run.clone());
        let extra = current.status.recent_maintenance.len().saturating_sub(RECENT_MAINTENANCE);
        current.status.recent_maintenance.drain(..extra);
        txn.put(&mut current)?;
        Ok::<_, FsbError>(current)
    })?;
    outcome.map(|_| updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository(created: OffsetDateTime) -> BackupRepository {
        let mut metadata = ObjectMeta::new("t", "app-default-restic");
        metadata.creation_timestamp = created;
        BackupRepository {
            api_version: crate::model::API_VERSION.into(),
            kind: "BackupRepository".into(),
            metadata,
            spec: BackupRepositorySpec { maintenance_frequency: Some(Duration::from_secs(24 * 3600)), ..Default::default() },
            status: BackupRepositoryStatus::default(),
        }
    }

    #[test]
    fn maintenance_is_due_a_frequency_after_the_last_success_and_an_hour_after_a_failure() {
        let created = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1000);
        let mut r = repository(created);
        assert!(!r.maintenance_due(created + time::Duration::hours(23)));
        assert!(r.maintenance_due(created + time::Duration::hours(24)));
        let failed_at = created + time::Duration::hours(24);
        r.status.recent_maintenance.push(MaintenanceStatus { result: "Failed".into(), complete_timestamp: Some(failed_at), ..Default::default() });
        assert!(!r.maintenance_due(failed_at + time::Duration::minutes(59)), "a failure waits an hour");
        assert!(r.maintenance_due(failed_at + time::Duration::hours(1)));
        r.status.last_maintenance_time = Some(failed_at + time::Duration::hours(1));
        r.status.recent_maintenance.push(MaintenanceStatus { result: "Succeeded".into(), ..Default::default() });
        assert!(!r.maintenance_due(failed_at + time::Duration::hours(24)));
        assert!(r.maintenance_due(failed_at + time::Duration::hours(25)));
    }
}
