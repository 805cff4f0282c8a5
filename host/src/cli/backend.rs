//! What the commands run against: the local data directory, or a `coffer server` through its
//! API. Both give the same objects, so the commands print the same either way.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

use coffer::backup::{self, BackupDetails, BackupRequest, RestoreRequest, SOURCE_ANNOTATION, TARGET_ANNOTATION};
use coffer::coffer::Coffer;
use coffer::locations::{self, BackupStorageLocationChange, NewBackupStorageLocation, NewVolumeSnapshotLocation, Selection};
use coffer::model::{
    API_VERSION, Backup, BackupMeta, BackupSpec, BackupStorageLocation, ObjectMeta, Phase, Progress, Restore, RestoreSpec,
    SecretKeySelector, VolumeSnapshotLocation,
};
use coffer::schedules::{self, NewSchedule, Schedule};
use coffer::secrets::{self, SecretSummary};
use coffer::api::{BackupStorageLocationPatch, SchedulePatch, SecretBody, VolumeSnapshotLocationPatch};

use super::remote::{Client, segment};

/// Where commands run.
pub enum Backend {
    /// On this host's data directory.
    Local {
        /// The engine.
        coffer: Box<Coffer>,
        /// `--default-volume-snapshot-locations`.
        default_snapshot_locations: BTreeMap<String, String>,
    },
    /// Through a server's API.
    Remote(Client),
}

/// A backup or restore to create: the directory is local (absolute) or, on a server, relative
/// to the tenant's directory.
pub struct NewRun<'a> {
    /// Name.
    pub name: &'a str,
    /// Source (backups) or target (restores) directory, as the user gave it.
    pub directory: PathBuf,
    /// Show progress through this.
    pub progress: &'a mut (dyn FnMut(&Progress) + Send),
    /// Whether to wait for the end (a local run always does).
    pub wait: bool,
}

fn terminal(phase: Option<Phase>) -> bool {
    !phase.is_none_or(Phase::is_running)
}

impl Backend {
    /// The local engine, for commands that only run on the server's host.
    pub fn local(&mut self, what: &str) -> Result<&mut Coffer> {
        match self {
            Backend::Local { coffer, .. } => Ok(coffer),
            Backend::Remote(_) => bail!("`{what}` runs on the server's host, against its data directory; leave out --server"),
        }
    }

    /// Creates a backup storage location.
    pub async fn bsl_create(&self, ns: &str, new: NewBackupStorageLocation) -> Result<BackupStorageLocation> {
        match self {
            Backend::Local { coffer, .. } => Ok(locations::create_backup_storage_location(coffer, ns, new).await?),
            Backend::Remote(c) => c.json("POST", "/v1/backup-storage-locations", Some(&new.build(ns)?)).await,
        }
    }

    /// The named backup storage locations (all when none), validating those due.
    pub async fn bsl_get(&self, ns: &str, names: &[String], default_only: bool) -> Result<Vec<BackupStorageLocation>> {
        match self {
            Backend::Local { coffer, .. } => {
                let found = locations::get_backup_storage_locations(coffer, ns, names, default_only)?;
                Ok(locations::refresh_backup_storage_locations(coffer, found, false).await?)
            }
            Backend::Remote(c) if names.is_empty() => {
                c.json("GET", &format!("/v1/backup-storage-locations?default={default_only}"), None::<&()>).await
            }
            Backend::Remote(c) => {
                let mut out: Vec<BackupStorageLocation> = c.list_or_get("/v1/backup-storage-locations", names).await?;
                out.retain(|b| !default_only || b.spec.default);
                Ok(out)
            }
        }
    }

    /// Changes a backup storage location.
    pub async fn bsl_set(&self, ns: &str, name: &str, change: BackupStorageLocationChange) -> Result<()> {
        match self {
            Backend::Local { coffer, .. } => locations::set_backup_storage_location(coffer, ns, name, change).await.map(drop).map_err(Into::into),
            Backend::Remote(c) => {
                let body = BackupStorageLocationPatch::from(change);
                c.json::<BackupStorageLocation>("PATCH", &format!("/v1/backup-storage-locations/{}", segment(name)), Some(&body)).await.map(drop)
            }
        }
    }

    /// Deletes backup storage locations; returns the names deleted.
    pub async fn bsl_delete(&self, ns: &str, selection: &Selection) -> Result<Vec<String>> {
        match self {
            Backend::Local { coffer, .. } => Ok(locations::delete_backup_storage_locations(coffer, ns, selection)?),
            Backend::Remote(c) => {
                let names = match selection {
                    Selection::Names(n) => n.clone(),
                    Selection::All => self.bsl_get(ns, &[], false).await?.into_iter().map(|b| b.metadata.name).collect(),
                };
                c.delete_each("/v1/backup-storage-locations", &names).await?;
                Ok(names)
            }
        }
    }

    /// Creates a volume snapshot location.
    pub async fn vsl_create(&self, ns: &str, new: NewVolumeSnapshotLocation) -> Result<VolumeSnapshotLocation> {
        match self {
            Backend::Local { coffer, .. } => Ok(locations::create_volume_snapshot_location(coffer, ns, new).await?),
            Backend::Remote(c) => c.json("POST", "/v1/volume-snapshot-locations", Some(&new.build(ns)?)).await,
        }
    }

    /// The named volume snapshot locations (all when none).
    pub async fn vsl_get(&self, ns: &str, names: &[String]) -> Result<Vec<VolumeSnapshotLocation>> {
        match self {
            Backend::Local { coffer, .. } => Ok(locations::get_volume_snapshot_locations(coffer, ns, names)?),
            Backend::Remote(c) => c.list_or_get("/v1/volume-snapshot-locations", names).await,
        }
    }

    /// Changes a volume snapshot location's credential.
    pub async fn vsl_set(&self, ns: &str, name: &str, credential: SecretKeySelector) -> Result<()> {
        match self {
            Backend::Local { coffer, .. } => locations::set_volume_snapshot_location(coffer, ns, name, credential).await.map(drop).map_err(Into::into),
            Backend::Remote(c) => {
                let body = VolumeSnapshotLocationPatch { credential };
                c.json::<VolumeSnapshotLocation>("PATCH", &format!("/v1/volume-snapshot-locations/{}", segment(name)), Some(&body)).await.map(drop)
            }
        }
    }

    /// Deletes volume snapshot locations; returns the names deleted.
    pub async fn vsl_delete(&self, ns: &str, selection: &Selection) -> Result<Vec<String>> {
        match self {
            Backend::Local { coffer, .. } => Ok(locations::delete_volume_snapshot_locations(coffer, ns, selection)?),
            Backend::Remote(c) => {
                let names = match selection {
                    Selection::Names(n) => n.clone(),
                    Selection::All => self.vsl_get(ns, &[]).await?.into_iter().map(|v| v.metadata.name).collect(),
                };
                c.delete_each("/v1/volume-snapshot-locations", &names).await?;
                Ok(names)
            }
        }
    }

    /// Creates a secret, or with `replace` sets keys of an existing one.
    pub async fn secret_put(&self, ns: &str, name: &str, values: Vec<(String, Vec<u8>)>, replace: bool) -> Result<SecretSummary> {
        match self {
            Backend::Local { coffer, .. } => {
                let secret =
                    if replace { secrets::set_secret(coffer, ns, name, values)? } else { secrets::create_secret(coffer, ns, name, values)? };
                Ok(SecretSummary::from(&secret))
            }
            Backend::Remote(c) => {
                let body = SecretBody::new(name, values);
                if replace {
                    c.json("PUT", &format!("/v1/secrets/{}", segment(name)), Some(&body)).await
                } else {
                    c.json("POST", "/v1/secrets", Some(&body)).await
                }
            }
        }
    }

    /// The named secrets (all when none), without values.
    pub async fn secret_get(&self, ns: &str, names: &[String]) -> Result<Vec<SecretSummary>> {
        match self {
            Backend::Local { coffer, .. } => Ok(secrets::get_secrets(coffer, ns, names)?.iter().map(SecretSummary::from).collect()),
            Backend::Remote(c) => c.list_or_get("/v1/secrets", names).await,
        }
    }

    /// Deletes secrets.
    pub async fn secret_delete(&self, ns: &str, names: &[String]) -> Result<()> {
        match self {
            Backend::Local { coffer, .. } => Ok(secrets::delete_secrets(coffer, ns, names)?),
            Backend::Remote(c) => c.delete_each("/v1/secrets", names).await,
        }
    }

    /// Creates a backup and, locally or with `wait`, runs it to its end.
    pub async fn backup_create(
        &self,
        ns: &str,
        run: NewRun<'_>,
        spec: BackupSpec,
        labels: BTreeMap<String, String>,
    ) -> Result<Backup> {
        match self {
            Backend::Local { coffer, default_snapshot_locations } => {
                let source = std::fs::canonicalize(&run.directory).map_err(|e| anyhow::anyhow!("--source {}: {e}", run.directory.display()))?;
                let request = BackupRequest {
                    name: run.name.into(),
                    source,
                    spec,
                    labels,
                    default_snapshot_locations: default_snapshot_locations.clone(),
                };
                Ok(backup::create_backup(coffer, ns, request, run.progress).await?)
            }
            Backend::Remote(c) => {
                let mut meta = ObjectMeta::new(ns, run.name);
                meta.labels = labels;
                let object = Backup {
                    api_version: API_VERSION.into(),
                    kind: "Backup".into(),
                    metadata: BackupMeta { meta, annotations: BTreeMap::from([(SOURCE_ANNOTATION.into(), run.directory.display().to_string())]) },
                    spec,
                    status: Default::default(),
                };
                let mut backup: Backup = c.json("POST", "/v1/backups", Some(&object)).await?;
                let path = format!("/v1/backups/{}", segment(run.name));
                while run.wait && !terminal(backup.status.phase) {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    backup = c.json("GET", &path, None::<&()>).await?;
                    if let Some(p) = &backup.status.progress {
                        (run.progress)(p);
                    }
                }
                Ok(backup)
            }
        }
    }

    /// The named backups (all when none).
    pub async fn backup_get(&self, ns: &str, names: &[String]) -> Result<Vec<Backup>> {
        match self {
            Backend::Local { coffer, .. } if names.is_empty() => Ok(backup::list_backups(coffer, ns)?),
            Backend::Local { coffer, .. } => Ok(names.iter().map(|n| backup::get_backup(coffer, ns, n)).collect::<Result<_, _>>()?),
            Backend::Remote(c) => c.list_or_get("/v1/backups", names).await,
        }
    }

    /// Deletes a backup with its objects and snapshots.
    pub async fn backup_delete(&self, ns: &str, name: &str) -> Result<()> {
        match self {
            Backend::Local { coffer, .. } => Ok(backup::delete_backup(coffer, ns, name).await?),
            Backend::Remote(c) => c.call("DELETE", &format!("/v1/backups/{}", segment(name))).await,
        }
    }

    /// A backup's log.
    pub async fn backup_log(&self, ns: &str, name: &str) -> Result<Vec<u8>> {
        match self {
            Backend::Local { coffer, .. } => Ok(backup::backup_log(coffer, ns, name).await?),
            Backend::Remote(c) => c.bytes(&format!("/v1/backups/{}/logs", segment(name))).await,
        }
    }

    /// A backup's resource list and snapshots.
    pub async fn backup_details(&self, ns: &str, name: &str) -> Result<BackupDetails> {
        match self {
            Backend::Local { coffer, .. } => Ok(backup::backup_details(coffer, ns, name).await?),
            Backend::Remote(c) => c.json("GET", &format!("/v1/backups/{}/details", segment(name)), None::<&()>).await,
        }
    }

    /// Writes a completed backup's tarball into `file`; returns its size.
    pub async fn backup_download(&self, ns: &str, name: &str, file: std::fs::File) -> Result<u64> {
        match self {
            Backend::Local { coffer, .. } => Ok(backup::download_backup(coffer, ns, name, file).await?),
            Backend::Remote(c) => {
                let mut out = std::io::BufWriter::new(file);
                let n = c.download(&format!("/v1/backups/{}/download", segment(name)), &mut out).await?;
                std::io::Write::flush(&mut out)?;
                Ok(n)
            }
        }
    }

    /// Checks that a backup can be downloaded, before a file is created for it.
    pub async fn backup_downloadable(&self, ns: &str, name: &str) -> Result<()> {
        match self {
            Backend::Local { coffer, .. } => backup::downloadable(coffer, ns, name).map(drop).map_err(Into::into),
            Backend::Remote(_) => {
                let b = self.backup_get(ns, &[name.to_owned()]).await?.remove(0);
                if !b.status.phase.is_some_and(Phase::is_usable) {
                    let phase = b.status.phase.map_or_else(|| "New".into(), |p| p.to_string());
                    bail!("backup {name:?} is in phase {phase}; only completed backups can be downloaded");
                }
                Ok(())
            }
        }
    }

    /// Creates a restore and, locally or with `wait`, runs it to its end.
    pub async fn restore_create(&self, ns: &str, run: NewRun<'_>, backup_name: String, restore_volumes: Option<bool>) -> Result<Restore> {
        match self {
            Backend::Local { coffer, .. } => {
                let target = std::path::absolute(&run.directory).map_err(|e| anyhow::anyhow!("--target {}: {e}", run.directory.display()))?;
                let request = RestoreRequest { name: run.name.into(), backup: backup_name, target, restore_volumes };
                Ok(backup::create_restore(coffer, ns, request, run.progress).await?)
            }
            Backend::Remote(c) => {
                let object = Restore {
                    api_version: API_VERSION.into(),
                    kind: "Restore".into(),
                    metadata: BackupMeta {
                        meta: ObjectMeta::new(ns, run.name),
                        annotations: BTreeMap::from([(TARGET_ANNOTATION.into(), run.directory.display().to_string())]),
                    },
                    spec: RestoreSpec { backup_name, restore_p_vs: restore_volumes },
                    status: Default::default(),
                };
                let mut restore: Restore = c.json("POST", "/v1/restores", Some(&object)).await?;
                let path = format!("/v1/restores/{}", segment(run.name));
                while run.wait && !terminal(restore.status.phase) {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    restore = c.json("GET", &path, None::<&()>).await?;
                    if let Some(p) = &restore.status.progress {
                        (run.progress)(&Progress { total_items: p.total_items, items_backed_up: p.items_restored });
                    }
                }
                Ok(restore)
            }
        }
    }

    /// The named restores (all when none).
    pub async fn restore_get(&self, ns: &str, names: &[String]) -> Result<Vec<Restore>> {
        match self {
            Backend::Local { coffer, .. } if names.is_empty() => Ok(backup::list_restores(coffer, ns)?),
            Backend::Local { coffer, .. } => Ok(names.iter().map(|n| backup::get_restore(coffer, ns, n)).collect::<Result<_, _>>()?),
            Backend::Remote(c) => c.list_or_get("/v1/restores", names).await,
        }
    }

    /// A restore's log.
    pub async fn restore_log(&self, ns: &str, name: &str) -> Result<Vec<u8>> {
        match self {
            Backend::Local { coffer, .. } => Ok(backup::restore_log(coffer, ns, name).await?),
            Backend::Remote(c) => c.bytes(&format!("/v1/restores/{}/logs", segment(name))).await,
        }
    }

    /// Creates a schedule.
    pub async fn schedule_create(&self, ns: &str, new: NewSchedule) -> Result<Schedule> {
        match self {
            Backend::Local { coffer, .. } => {
                let source = std::fs::canonicalize(&new.source).map_err(|e| anyhow::anyhow!("--source {}: {e}", new.source.display()))?;
                Ok(schedules::create_schedule(coffer, ns, NewSchedule { source, ..new })?)
            }
            Backend::Remote(c) => {
                let mut meta = ObjectMeta::new(ns, &new.name);
                meta.labels = new.labels;
                let object = Schedule {
                    api_version: API_VERSION.into(),
                    kind: "Schedule".into(),
                    metadata: BackupMeta { meta, annotations: BTreeMap::from([(SOURCE_ANNOTATION.into(), new.source.display().to_string())]) },
                    spec: schedules::ScheduleSpec {
                        schedule: new.schedule,
                        template: new.template,
                        paused: new.paused,
                        skip_immediately: new.skip_immediately.then_some(true),
                    },
                    status: Default::default(),
                };
                c.json("POST", "/v1/schedules", Some(&object)).await
            }
        }
    }

    /// The named schedules (all when none).
    pub async fn schedule_get(&self, ns: &str, names: &[String]) -> Result<Vec<Schedule>> {
        match self {
            Backend::Local { coffer, .. } => Ok(schedules::get_schedules(coffer, ns, names)?),
            Backend::Remote(c) => c.list_or_get("/v1/schedules", names).await,
        }
    }

    /// Pauses or unpauses a schedule.
    pub async fn schedule_pause(&self, ns: &str, name: &str, paused: bool) -> Result<()> {
        match self {
            Backend::Local { coffer, .. } => schedules::pause_schedule(coffer, ns, name, paused).map(drop).map_err(Into::into),
            Backend::Remote(c) => {
                let body = SchedulePatch { paused };
                c.json::<Schedule>("PATCH", &format!("/v1/schedules/{}", segment(name)), Some(&body)).await.map(drop)
            }
        }
    }

    /// Deletes schedules.
    pub async fn schedule_delete(&self, ns: &str, names: &[String]) -> Result<()> {
        match self {
            Backend::Local { coffer, .. } => Ok(schedules::delete_schedules(coffer, ns, names)?),
            Backend::Remote(c) => c.delete_each("/v1/schedules", names).await,
        }
    }
}

impl Client {
    /// `DELETE collection/<name>` for each of `names`, stopping at the first refusal.
    async fn delete_each(&self, collection: &str, names: &[String]) -> Result<()> {
        for n in names {
            self.call("DELETE", &format!("{collection}/{}", segment(n))).await?;
        }
        Ok(())
    }

    /// `GET collection` when `names` is empty, else `GET collection/<name>` for each.
    async fn list_or_get<T: serde::de::DeserializeOwned>(&self, collection: &str, names: &[String]) -> Result<Vec<T>> {
        if names.is_empty() {
            return self.json("GET", collection, None::<&()>).await;
        }
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.push(self.json("GET", &format!("{collection}/{}", segment(n)), None::<&()>).await?);
        }
        Ok(out)
    }
}
