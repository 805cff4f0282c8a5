//! `backup` and `restore`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use coffer::backup::parse_selector;
use coffer::model::{API_VERSION, Backup, BackupSpec, Phase, Progress, Restore, go_duration};

use super::args::{BackupCommand, BackupCreate, Describe, OutputFormat, RestoreCommand, RestoreCreate};
use super::backend::{Backend, NewRun};
use super::output::{Table, print_documents, timestamp};
use super::parse;

/// A progress bar on stderr, redrawn when the percentage changes; only its last state when
/// stderr is not a terminal.
fn progress_bar(enabled: bool, what: &'static str) -> impl FnMut(&Progress) + Send {
    let mut last = u64::MAX;
    let live = std::io::stderr().is_terminal();
    move |p: &Progress| {
        if !enabled {
            return;
        }
        let percent = p.percent();
        if percent == last || (!live && p.items_backed_up < p.total_items) {
            return;
        }
        last = percent;
        let filled = (percent / 5) as usize;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{what} [{}{}] {percent:>3}% {}/{} items", "#".repeat(filled), ".".repeat(20 - filled), p.items_backed_up, p.total_items);
        if percent == 100 {
            let _ = writeln!(err);
        }
    }
}

fn phase(p: Option<Phase>) -> String {
    p.map_or_else(|| "New".into(), |p| p.to_string())
}

fn list_or_none(items: &[String], empty: &str) -> String {
    if items.is_empty() { empty.into() } else { items.join(", ") }
}

/// The spec and labels the backup flags ask for (shared with `schedule create`).
pub fn backup_spec(args: &BackupCreate) -> Result<(BackupSpec, std::collections::BTreeMap<String, String>)> {
    let spec = BackupSpec {
        included_namespaces: args.include_namespaces.clone(),
        excluded_namespaces: args.exclude_namespaces.clone(),
        included_resources: args.include_resources.clone(),
        excluded_resources: args.exclude_resources.clone(),
        label_selector: args.selector.as_deref().map(parse_selector).transpose().map_err(|e| anyhow::anyhow!("--selector: {e}"))?,
        snapshot_volumes: args.snapshot_volumes,
        ttl: parse::duration("ttl", args.ttl.as_deref())?,
        storage_location: args.storage_location.clone().unwrap_or_default(),
        volume_snapshot_locations: args.volume_snapshot_locations.clone(),
    };
    Ok((spec, parse::key_values("labels", args.labels.as_deref())?))
}

async fn create(backend: &Backend, ns: &str, args: BackupCreate) -> Result<()> {
    let (spec, labels) = backup_spec(&args)?;
    println!("Backup request {:?} submitted successfully.", args.name);
    let mut bar = progress_bar(args.wait, "backup");
    let run = NewRun { name: &args.name, directory: args.source.clone(), progress: &mut bar, wait: args.wait };
    let backup = backend.backup_create(ns, run, spec, labels).await?;
    finish("Backup", &args.name, backup.status.phase, &backup.status.validation_errors, &backup.status.failure_reason, "backup")
}

/// Reports the outcome; a run that did not complete is an error exit.
fn finish(kind: &str, name: &str, phase: Option<Phase>, validation: &[String], failure: &str, command: &str) -> Result<()> {
    if phase.is_none_or(Phase::is_running) {
        println!("{kind} is running on the server. Use `coffer {command} describe {name}` to see how it goes, or --wait next time.");
        return Ok(());
    }
    println!("{kind} completed with status: {}. You may check for more information using the commands `coffer {command} describe {name}` and `coffer {command} logs {name}`.", self::phase(phase));
    match phase {
        Some(Phase::FailedValidation) => bail!("{kind} {name:?} failed validation:\n  {}", validation.join("\n  ")),
        Some(Phase::Failed) => bail!("{kind} {name:?} failed: {failure}"),
        _ => Ok(()),
    }
}

fn print_backups(format: OutputFormat, items: &[Backup], single: bool) -> Result<()> {
    if format != OutputFormat::Table {
        return print_documents(format, API_VERSION, "Backup", items, single);
    }
    let mut table = Table::new(&["NAME", "STATUS", "ERRORS", "WARNINGS", "CREATED", "EXPIRES", "STORAGE LOCATION", "SELECTOR"]);
    for b in items {
        table.row(vec![
            b.metadata.meta.name.clone(),
            phase(b.status.phase),
            b.status.errors.to_string(),
            b.status.warnings.to_string(),
            timestamp(Some(b.metadata.meta.creation_timestamp)),
            timestamp(b.status.expiration),
            b.spec.storage_location.clone(),
            b.spec.label_selector.as_ref().map_or("<none>".into(), |s| serde_json::to_string(s).unwrap_or_default()),
        ]);
    }
    table.print()
}

fn print_restores(format: OutputFormat, items: &[Restore], single: bool) -> Result<()> {
    if format != OutputFormat::Table {
        return print_documents(format, API_VERSION, "Restore", items, single);
    }
    let mut table = Table::new(&["NAME", "BACKUP", "STATUS", "STARTED", "COMPLETED", "ERRORS", "WARNINGS", "CREATED"]);
    for r in items {
        table.row(vec![
            r.metadata.meta.name.clone(),
            r.spec.backup_name.clone(),
            phase(r.status.phase),
            timestamp(r.status.start_timestamp),
            timestamp(r.status.completion_timestamp),
            r.status.errors.to_string(),
            r.status.warnings.to_string(),
            timestamp(Some(r.metadata.meta.creation_timestamp)),
        ]);
    }
    table.print()
}

fn pairs(map: &std::collections::BTreeMap<String, String>) -> String {
    if map.is_empty() { "<none>".into() } else { map.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",") }
}

async fn describe_backup(backend: &Backend, ns: &str, args: &Describe) -> Result<()> {
    let b = backend.backup_get(ns, std::slice::from_ref(&args.name)).await?.remove(0);
    let s = &b.spec;
    let st = &b.status;
    let mut out = String::new();
    out += &format!("Name:         {}\nNamespace:    {}\nLabels:       {}\nAnnotations:  {}\n\n", b.metadata.meta.name, ns, pairs(&b.metadata.meta.labels), pairs(&b.metadata.annotations));
    out += &format!("Phase:  {}\n\n", phase(st.phase));
    if !st.validation_errors.is_empty() {
        out += &format!("Validation errors:  {}\n\n", st.validation_errors.join("\n                    "));
    }
    if !st.failure_reason.is_empty() {
        out += &format!("Failure reason:  {}\n\n", st.failure_reason);
    }
    out += &format!("Errors:    {}\nWarnings:  {}\n\n", st.errors, st.warnings);
    out += &format!("Namespaces:\n  Included:  {}\n  Excluded:  {}\n\n", list_or_none(&s.included_namespaces, "*"), list_or_none(&s.excluded_namespaces, "<none>"));
    out += &format!("Resources:\n  Included:  {}\n  Excluded:  {}\n\n", list_or_none(&s.included_resources, "*"), list_or_none(&s.excluded_resources, "<none>"));
    out += &format!("Label selector:  {}\n\n", s.label_selector.as_ref().map_or("<none>".into(), |l| serde_json::to_string(l).unwrap_or_default()));
    out += &format!("Storage Location:  {}\n\n", s.storage_location);
    out += &format!(
        "Velero-Native Snapshot PVs:  {}\nSnapshot Volume Locations:   {}\n\n",
        match s.snapshot_volumes { None => "auto", Some(true) => "true", Some(false) => "false" },
        list_or_none(&s.volume_snapshot_locations, "<none>")
    );
    out += &format!("TTL:  {}\n\n", s.ttl.map(go_duration::format).unwrap_or_default());
    out += &format!("Started:    {}\nCompleted:  {}\n\nExpiration:  {}\n\n", timestamp(st.start_timestamp), timestamp(st.completion_timestamp), timestamp(st.expiration));
    if let Some(p) = &st.progress {
        out += &format!("Total items to be backed up:  {}\nItems backed up:              {}\n\n", p.total_items, p.items_backed_up);
    }
    out += &format!("Velero-Native Snapshots:  {} of {} snapshots completed successfully", st.volume_snapshots_completed, st.volume_snapshots_attempted);
    print!("{out}");
    if !args.details {
        println!(" (specify --details for more information)");
        return Ok(());
    }
    println!();
    if !st.phase.is_some_and(Phase::is_usable) {
        return Ok(());
    }
    let details = backend.backup_details(ns, &args.name).await?;
    if !details.resource_list.is_empty() {
        println!("\nResource List:");
        for (kind, names) in details.resource_list {
            println!("  {kind}:");
            for n in names {
                println!("    - {n}");
            }
        }
    }
    if !details.volume_snapshots.is_empty() {
        println!("\nVelero-Native Snapshots:");
        for sn in details.volume_snapshots {
            println!(
                "  {}:\n    Snapshot ID:        {}\n    Type:               {}\n    Availability Zone:  {}\n    IOPS:               {}\n    Location:           {}",
                sn.spec.persistent_volume_name,
                sn.status.provider_snapshot_id,
                sn.spec.volume_type,
                sn.spec.volume_az,
                sn.spec.volume_iops.map_or("<N/A>".into(), |i| i.to_string()),
                sn.spec.location
            );
        }
    }
    Ok(())
}

fn print_log(log: &[u8]) -> Result<()> {
    std::io::stdout().write_all(log)?;
    println!();
    Ok(())
}

async fn download(backend: &Backend, ns: &str, name: &str, output: Option<PathBuf>, force: bool) -> Result<()> {
    backend.backup_downloadable(ns, name).await?;
    let path = output.unwrap_or_else(|| PathBuf::from(format!("{name}-data.tar.gz")));
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force { options.create(true).truncate(true) } else { options.create_new(true) };
    let file = options.open(&path).with_context(|| format!("{} (use --force to overwrite)", path.display()))?;
    let size = match backend.backup_download(ns, name, file).await {
        Ok(size) => size,
        Err(e) => {
            // What was written is not the tarball.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    println!("Backup {name:?} downloaded to {} ({size} bytes).", path.display());
    Ok(())
}

/// Runs a `backup` command.
pub async fn backup(backend: &Backend, ns: &str, command: BackupCommand) -> Result<()> {
    match command {
        BackupCommand::Create(args) => create(backend, ns, *args).await,
        BackupCommand::Get(args) => {
            let found = backend.backup_get(ns, &args.names).await?;
            print_backups(args.output.format, &found, args.names.len() == 1)
        }
        BackupCommand::Describe(args) => describe_backup(backend, ns, &args).await,
        BackupCommand::Logs(args) => print_log(&backend.backup_log(ns, &args.name).await?),
        BackupCommand::Download(args) => download(backend, ns, &args.name, args.output, args.force).await,
        BackupCommand::Delete(args) => {
            let names = match super::locations::confirmed(&args, "backup")? {
                coffer::locations::Selection::All => backend.backup_get(ns, &[]).await?.into_iter().map(|b| b.metadata.meta.name).collect(),
                coffer::locations::Selection::Names(names) => names,
            };
            for name in names {
                backend.backup_delete(ns, &name).await?;
                println!("Backup {name:?} deleted, with its objects and snapshots.");
            }
            Ok(())
        }
    }
}

async fn create_restore(backend: &Backend, ns: &str, args: RestoreCreate) -> Result<()> {
    let name = args.name.unwrap_or_else(|| {
        let stamp = coffer::model::now().format(&time::macros::format_description!("[year][month][day][hour][minute][second]")).unwrap_or_default();
        format!("{}-{stamp}", args.from_backup)
    });
    println!("Restore request {name:?} submitted successfully.");
    let mut bar = progress_bar(args.wait, "restore");
    let run = NewRun { name: &name, directory: args.target.clone(), progress: &mut bar, wait: args.wait };
    let restore = backend.restore_create(ns, run, args.from_backup, args.restore_volumes).await?;
    finish("Restore", &name, restore.status.phase, &restore.status.validation_errors, &restore.status.failure_reason, "restore")
}

async fn describe_restore(backend: &Backend, ns: &str, args: &Describe) -> Result<()> {
    let r = backend.restore_get(ns, std::slice::from_ref(&args.name)).await?.remove(0);
    let st = &r.status;
    println!("Name:         {}\nNamespace:    {ns}\nAnnotations:  {}\n", r.metadata.meta.name, pairs(&r.metadata.annotations));
    println!("Phase:  {}\n", phase(st.phase));
    if !st.validation_errors.is_empty() {
        println!("Validation errors:  {}\n", st.validation_errors.join("\n                    "));
    }
    if !st.failure_reason.is_empty() {
        println!("Failure reason:  {}\n", st.failure_reason);
    }
    println!("Started:    {}\nCompleted:  {}\n", timestamp(st.start_timestamp), timestamp(st.completion_timestamp));
    println!("Errors:    {}\nWarnings:  {}\n", st.errors, st.warnings);
    println!("Backup:  {}\n", r.spec.backup_name);
    println!("Restore PVs:  {}", match r.spec.restore_p_vs { None => "auto", Some(true) => "true", Some(false) => "false" });
    if let Some(p) = &st.progress {
        println!("\nTotal items to be restored:  {}\nItems restored:              {}", p.total_items, p.items_restored);
    }
    Ok(())
}

/// Runs a `restore` command.
pub async fn restore(backend: &Backend, ns: &str, command: RestoreCommand) -> Result<()> {
    match command {
        RestoreCommand::Create(args) => create_restore(backend, ns, args).await,
        RestoreCommand::Get(args) => {
            let found = backend.restore_get(ns, &args.names).await?;
            print_restores(args.output.format, &found, args.names.len() == 1)
        }
        RestoreCommand::Describe(args) => describe_restore(backend, ns, &args).await,
        RestoreCommand::Logs(args) => print_log(&backend.restore_log(ns, &args.name).await?),
    }
}
