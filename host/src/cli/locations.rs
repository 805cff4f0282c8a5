//! `backup-location` and `snapshot-location`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};

use coffer::api::{ApiError, BackupStorageLocationPatch, ChangeMeta, Reason, TenantApi, VolumeSnapshotLocationPatch};
use coffer::locations::{BackupStorageLocationChange, NewBackupStorageLocation, NewVolumeSnapshotLocation};
use coffer::model::{API_VERSION, BackupStorageLocation, LocationPhase, VolumeSnapshotLocation};

use super::args::{
    BackupLocationCommand, BackupLocationCreate, DeleteArgs, OutputFormat, SnapshotLocationCommand, SnapshotLocationCreate,
};
use super::output::{Table, print_documents, timestamp};
use super::{named_or_all, parse};

fn phase(p: Option<LocationPhase>) -> String {
    p.map_or_else(|| "Unknown".into(), |p| p.to_string())
}

fn print_bsls(format: OutputFormat, items: &[BackupStorageLocation], single: bool) -> Result<()> {
    if format != OutputFormat::Table {
        return print_documents(format, API_VERSION, "BackupStorageLocation", items, single);
    }
    let mut table = Table::new(&["NAME", "PROVIDER", "BUCKET/PREFIX", "PHASE", "LAST VALIDATED", "ACCESS MODE", "DEFAULT"]);
    for b in items {
        let storage = &b.spec.object_storage;
        let place = if storage.prefix.is_empty() { storage.bucket.clone() } else { format!("{}/{}", storage.bucket, storage.prefix) };
        table.row(vec![
            b.metadata.name.clone(),
            b.spec.provider.clone(),
            place,
            phase(b.status.phase),
            timestamp(b.status.last_validation_time),
            b.spec.access_mode.to_string(),
            if b.spec.default { "true".into() } else { String::new() },
        ]);
    }
    table.print()?;
    report_unavailable(items.iter().map(|b| (b.status.phase, &b.status.message)));
    Ok(())
}

fn print_vsls(format: OutputFormat, items: &[VolumeSnapshotLocation], single: bool) -> Result<()> {
    if format != OutputFormat::Table {
        return print_documents(format, API_VERSION, "VolumeSnapshotLocation", items, single);
    }
    let mut table = Table::new(&["NAME", "PROVIDER", "PHASE", "LAST VALIDATED"]);
    for v in items {
        table.row(vec![
            v.metadata.name.clone(),
            v.spec.provider.clone(),
            phase(v.status.phase),
            timestamp(v.status.last_validation_time),
        ]);
    }
    table.print()?;
    report_unavailable(items.iter().map(|v| (v.status.phase, &v.status.message)));
    Ok(())
}

/// Why locations are Unavailable, on stderr under the table.
fn report_unavailable<'a>(items: impl Iterator<Item = (Option<LocationPhase>, &'a String)>) {
    for (p, message) in items {
        if p == Some(LocationPhase::Unavailable) {
            eprintln!("{message}");
        }
    }
}

/// Which names a delete applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These names; each must exist.
    Names(Vec<String>),
    /// Every one in the namespace (`--all`).
    All,
}

impl Selection {
    /// The names given, none for `--all`.
    fn names(&self) -> &[String] {
        match self {
            Selection::Names(names) => names,
            Selection::All => &[],
        }
    }
}

/// Asks before deleting unless `--confirm`; refuses when nobody can answer.
pub fn confirmed(args: &DeleteArgs, what: &str) -> Result<Selection> {
    let selection = match (args.all, args.names.is_empty()) {
        (true, true) => Selection::All,
        (false, false) => Selection::Names(args.names.clone()),
        _ => bail!("you must specify exactly one of: specific {what} name(s) or the --all flag"),
    };
    if args.confirm {
        return Ok(selection);
    }
    if !std::io::stdin().is_terminal() {
        bail!("refusing to delete without --confirm (no terminal to ask on)");
    }
    print!("Are you sure you want to continue (Y/N)? ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("cancelled");
    }
    Ok(selection)
}

fn new_bsl(args: BackupLocationCreate) -> Result<NewBackupStorageLocation> {
    let Some(provider) = args.provider else { bail!("--provider is required") };
    let Some(bucket) = args.bucket else { bail!("--bucket is required") };
    Ok(NewBackupStorageLocation {
        name: args.name,
        provider,
        bucket,
        prefix: args.prefix,
        config: parse::key_values("config", args.config.as_deref())?,
        credential: parse::credential(args.credential.as_deref())?,
        default: args.default,
        access_mode: parse::access_mode(&args.access_mode)?,
        validation_frequency: parse::duration("validation-frequency", args.validation_frequency.as_deref())?,
        backup_sync_period: parse::duration("backup-sync-period", args.backup_sync_period.as_deref())?,
        ca_cert: args.cacert.as_deref().map(|p| parse::read_file("cacert", p)).transpose()?,
        labels: parse::key_values("labels", args.labels.as_deref())?,
        encryption_key: parse::secret_key("encryption-key", args.encryption_key.as_deref())?,
    })
}

/// Runs a `backup-location` command.
pub async fn backup_location(api: &dyn TenantApi, ns: &str, command: BackupLocationCommand) -> Result<()> {
    match command {
        BackupLocationCommand::Create(args) => {
            let format = args.output.format;
            let new = new_bsl(args)?;
            let name = new.name.clone();
            let object = new.build(ns).map_err(ApiError::from)?;
            if format != OutputFormat::Table {
                return print_bsls(format, &[object], true);
            }
            let bsl = api.create_backup_storage_location(object).await.map_err(|e| second_default(e, &name))?;
            println!("Backup storage location {name:?} configured successfully.");
            print_bsls(OutputFormat::Table, &[bsl], true)
        }
        BackupLocationCommand::Get(args) => {
            let mut found = named_or_all(&args.names, || api.list_backup_storage_locations(args.default), |n| api.get_backup_storage_location(n)).await?;
            found.retain(|b| !args.default || b.spec.default);
            print_bsls(args.output.format, &found, args.names.len() == 1)
        }
        BackupLocationCommand::Set(args) => {
            let change = BackupStorageLocationChange {
                default: args.default,
                credential: parse::credential(args.credential.as_deref())?,
                ca_cert: args.cacert.as_deref().map(|p| parse::read_file("cacert", p)).transpose()?,
                encryption_key: parse::secret_key("encryption-key", args.encryption_key.as_deref())?,
                resource_version: None,
            };
            api.change_backup_storage_location(&args.name, BackupStorageLocationPatch::from(change)).await?;
            println!("Backup storage location {:?} configured successfully.", args.name);
            Ok(())
        }
        BackupLocationCommand::Delete(args) => {
            let selection = confirmed(&args, "backup-location")?;
            // Every name must exist before any is deleted.
            let found = named_or_all(selection.names(), || api.list_backup_storage_locations(false), |n| api.get_backup_storage_location(n)).await?;
            for name in found.into_iter().map(|b| b.metadata.name) {
                api.delete_backup_storage_location(&name).await?;
                println!("Backup storage location {name:?} deleted successfully.");
            }
            Ok(())
        }
    }
}

fn new_vsl(args: SnapshotLocationCreate) -> Result<NewVolumeSnapshotLocation> {
    let Some(provider) = args.provider else { bail!("--provider is required") };
    Ok(NewVolumeSnapshotLocation {
        name: args.name,
        provider,
        config: parse::key_values("config", args.config.as_deref())?,
        credential: parse::credential(args.credential.as_deref())?,
        labels: parse::key_values("labels", args.labels.as_deref())?,
    })
}

/// Runs a `snapshot-location` command.
pub async fn snapshot_location(api: &dyn TenantApi, ns: &str, command: SnapshotLocationCommand) -> Result<()> {
    match command {
        SnapshotLocationCommand::Create(args) => {
            let format = args.output.format;
            let new = new_vsl(args)?;
            let name = new.name.clone();
            let object = new.build(ns).map_err(ApiError::from)?;
            if format != OutputFormat::Table {
                return print_vsls(format, &[object], true);
            }
            let vsl = api.create_volume_snapshot_location(object).await?;
            println!("Snapshot volume location {name:?} configured successfully.");
            print_vsls(OutputFormat::Table, &[vsl], true)
        }
        SnapshotLocationCommand::Get(args) => {
            let found = named_or_all(&args.names, || api.list_volume_snapshot_locations(), |n| api.get_volume_snapshot_location(n)).await?;
            print_vsls(args.output.format, &found, args.names.len() == 1)
        }
        SnapshotLocationCommand::Set(args) => {
            let Some(credential) = parse::credential(Some(&args.credential))? else { bail!("--credential is required") };
            api.change_volume_snapshot_location(&args.name, VolumeSnapshotLocationPatch { metadata: ChangeMeta::default(), credential }).await?;
            println!("Snapshot volume location {:?} configured successfully.", args.name);
            Ok(())
        }
        SnapshotLocationCommand::Delete(args) => {
            let selection = confirmed(&args, "snapshot-location")?;
            // Every name must exist before any is deleted.
            let found = named_or_all(selection.names(), || api.list_volume_snapshot_locations(), |n| api.get_volume_snapshot_location(n)).await?;
            for name in found.into_iter().map(|v| v.metadata.name) {
                api.delete_volume_snapshot_location(&name).await?;
                println!("Snapshot volume location {name:?} deleted successfully.");
            }
            Ok(())
        }
    }
}

/// A second default refused, worded with the command that moves the default to `name`.
fn second_default(e: ApiError, name: &str) -> anyhow::Error {
    if e.reason == Reason::Conflict && e.field.as_deref() == Some("spec.default") {
        let existing = e.message.split(';').next().unwrap_or_default();
        return anyhow::anyhow!(
            "{existing}; leave out --default, or make {name:?} the default afterwards with `coffer backup-location set {name} --default`"
        );
    }
    e.into()
}
