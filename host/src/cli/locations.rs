//! `backup-location` and `snapshot-location`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};

use coffer::locations::{BackupStorageLocationChange, LocationError, NewBackupStorageLocation, NewVolumeSnapshotLocation, Selection};
use coffer::model::{API_VERSION, BackupStorageLocation, LocationPhase, VolumeSnapshotLocation};

use super::args::{
    BackupLocationCommand, BackupLocationCreate, DeleteArgs, OutputFormat, SnapshotLocationCommand, SnapshotLocationCreate,
};
use super::backend::Backend;
use super::output::{Table, print_documents, timestamp};
use super::parse;

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
    })
}

/// Runs a `backup-location` command.
pub async fn backup_location(backend: &Backend, ns: &str, command: BackupLocationCommand) -> Result<()> {
    match command {
        BackupLocationCommand::Create(args) => {
            let format = args.output.format;
            let new = new_bsl(args)?;
            if format != OutputFormat::Table {
                return print_bsls(format, &[new.build(ns).map_err(|e| worded(e.into()))?], true);
            }
            let name = new.name.clone();
            let bsl = backend.bsl_create(ns, new).await.map_err(worded)?;
            println!("Backup storage location {name:?} configured successfully.");
            print_bsls(OutputFormat::Table, &[bsl], true)
        }
        BackupLocationCommand::Get(args) => {
            let found = backend.bsl_get(ns, &args.names, args.default).await?;
            print_bsls(args.output.format, &found, args.names.len() == 1)
        }
        BackupLocationCommand::Set(args) => {
            let change = BackupStorageLocationChange {
                default: args.default,
                credential: parse::credential(args.credential.as_deref())?,
                ca_cert: args.cacert.as_deref().map(|p| parse::read_file("cacert", p)).transpose()?,
            };
            backend.bsl_set(ns, &args.name, change).await?;
            println!("Backup storage location {:?} configured successfully.", args.name);
            Ok(())
        }
        BackupLocationCommand::Delete(args) => {
            let selection = confirmed(&args, "backup-location")?;
            for name in backend.bsl_delete(ns, &selection).await? {
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
pub async fn snapshot_location(backend: &Backend, ns: &str, command: SnapshotLocationCommand) -> Result<()> {
    match command {
        SnapshotLocationCommand::Create(args) => {
            let format = args.output.format;
            let new = new_vsl(args)?;
            if format != OutputFormat::Table {
                return print_vsls(format, &[new.build(ns).map_err(|e| worded(e.into()))?], true);
            }
            let name = new.name.clone();
            let vsl = backend.vsl_create(ns, new).await.map_err(worded)?;
            println!("Snapshot volume location {name:?} configured successfully.");
            print_vsls(OutputFormat::Table, &[vsl], true)
        }
        SnapshotLocationCommand::Get(args) => {
            let found = backend.vsl_get(ns, &args.names).await?;
            print_vsls(args.output.format, &found, args.names.len() == 1)
        }
        SnapshotLocationCommand::Set(args) => {
            let Some(credential) = parse::credential(Some(&args.credential))? else { bail!("--credential is required") };
            backend.vsl_set(ns, &args.name, credential).await?;
            println!("Snapshot volume location {:?} configured successfully.", args.name);
            Ok(())
        }
        SnapshotLocationCommand::Delete(args) => {
            let selection = confirmed(&args, "snapshot-location")?;
            for name in backend.vsl_delete(ns, &selection).await? {
                println!("Snapshot volume location {name:?} deleted successfully.");
            }
            Ok(())
        }
    }
}

/// Words a location error for a person at the command line: the object's fields as the flags
/// that set them, and the command that moves the default.
fn worded(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<LocationError>() {
        Some(LocationError::InvalidField { field, reason }) => {
            let flag = match field.as_str() {
                "spec.provider" => "--provider",
                "spec.objectStorage.bucket" => "--bucket",
                _ => return e,
            };
            anyhow::anyhow!("{flag}: {}", reason.replace("spec.objectStorage.prefix", "--prefix"))
        }
        Some(LocationError::SecondDefault { name, existing }) => anyhow::anyhow!(
            "backup storage location {existing:?} is already the default; leave out --default, or make {name:?} the default afterwards with `coffer backup-location set {name} --default`"
        ),
        _ => e,
    }
}
