//! `backup` and `restore`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use coffer::backup::{
    self, BackupRequest, Layout, RestoreRequest, parse_default_snapshot_locations, parse_selector,
};
use coffer::coffer::Coffer;
use coffer::locations::object_store_for;
use coffer::model::{API_VERSION, Backup, BackupSpec, Phase, Progress, Restore, go_duration};

use super::args::{BackupCommand, BackupCreate, Describe, OutputFormat, RestoreCommand, RestoreCreate};
use super::output::{Table, print_documents, timestamp};
use super::parse;

/// A progress bar on stderr, redrawn when the percentage changes; only its last state when
/// stderr is not a terminal.
fn progress_bar(enabled: bool, what: &'static str) -> impl FnMut(&Progress) {
    let mut last = u64::MAX;
    let live = std::io::stderr().is_terminal();
    move |p: &Progress| {
        if !enabled {
            return;
        }
        let percent = (p.items_backed_up * 100).checked_div(p.total_items).unwrap_or(100);
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

fn default_snapshot_locations(text: Option<&str>) -> Result<std::collections::BTreeMap<String, String>> {
    text.map(parse_default_snapshot_locations)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--default-volume-snapshot-locations: {e}"))
        .map(Option::unwrap_or_default)
}

async fn create(coffer: &Coffer, ns: &str, args: BackupCreate, default_vsls: Option<&str>) -> Result<()> {
    let spec = BackupSpec {
        included_namespaces: args.include_namespaces,
        excluded_namespaces: args.exclude_namespaces,
        included_resources: args.include_resources,
        excluded_resources: args.exclude_resources,
        label_selector: args.selector.as_deref().map(parse_selector).transpose().map_err(|e| anyhow::anyhow!("--selector: {e}"))?,
        snapshot_volumes: args.snapshot_volumes,
        ttl: parse::duration("ttl", args.ttl.as_deref())?,
        storage_location: args.storage_location.unwrap_or_default(),
        volume_snapshot_locations: args.volume_snapshot_locations,
    };
    let source = std::fs::canonicalize(&args.source).with_context(|| format!("--source {}", args.source.display()))?;
    let request = BackupRequest {
        name: args.name.clone(),
        source,
        spec,
        labels: parse::key_values("labels", args.labels.as_deref())?,
        default_snapshot_locations: default_snapshot_locations(default_vsls)?,
    };
    println!("Backup request {:?} submitted successfully.", args.name);
    let mut bar = progress_bar(args.wait, "backup");
    let backup = backup::create_backup(coffer, ns, request, &mut bar).await?;
    finish("Backup", &args.name, backup.status.phase, &backup.status.validation_errors, &backup.status.failure_reason, "backup")
}

/// Reports the outcome; a run that did not complete is an error exit.
fn finish(kind: &str, name: &str, phase: Option<Phase>, validation: &[String], failure: &str, command: &str) -> Result<()> {
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

async fn describe_backup(coffer: &Coffer, ns: &str, args: &Describe) -> Result<()> {
    let b = backup::get_backup(coffer, ns, &args.name)?;
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
    if !matches!(st.phase, Some(Phase::Completed | Phase::PartiallyFailed)) {
        return Ok(());
    }
    let bsl = coffer::locations::get_backup_storage_locations(coffer, ns, std::slice::from_ref(&s.storage_location), false)?.remove(0);
    let layout = Layout::new(&bsl.spec.object_storage.prefix);
    if let Some(json) = backup::fetch_gz(coffer, &bsl, &layout.backup_resource_list(&args.name)).await? {
        let list: std::collections::BTreeMap<String, Vec<String>> = serde_json::from_slice(&json)?;
        println!("\nResource List:");
        for (kind, names) in list {
            println!("  {kind}:");
            for n in names {
                println!("    - {n}");
            }
        }
    }
    if let Some(json) = backup::fetch_gz(coffer, &bsl, &layout.backup_volume_snapshots(&args.name)).await? {
        let snapshots: Vec<backup::VolumeSnapshot> = serde_json::from_slice(&json)?;
        println!("\nVelero-Native Snapshots:");
        for sn in snapshots {
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

async fn print_log(coffer: &Coffer, ns: &str, location: &str, key: String, what: &str) -> Result<()> {
    let bsl = coffer::locations::get_backup_storage_locations(coffer, ns, &[location.to_owned()], false)?.remove(0);
    let Some(log) = backup::fetch_gz(coffer, &bsl, &key).await? else { bail!("{what} has no log in object storage") };
    std::io::stdout().write_all(&log)?;
    println!();
    Ok(())
}

async fn download(coffer: &Coffer, ns: &str, name: &str, output: Option<PathBuf>, force: bool) -> Result<()> {
    let b = backup::get_backup(coffer, ns, name)?;
    if !matches!(b.status.phase, Some(Phase::Completed | Phase::PartiallyFailed)) {
        bail!("backup {name:?} is in phase {}; only completed backups can be downloaded", phase(b.status.phase));
    }
    let path = output.unwrap_or_else(|| PathBuf::from(format!("{name}-data.tar.gz")));
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force { options.create(true).truncate(true) } else { options.create_new(true) };
    let file = options.open(&path).with_context(|| format!("{} (use --force to overwrite)", path.display()))?;
    let bsl = coffer::locations::get_backup_storage_locations(coffer, ns, std::slice::from_ref(&b.spec.storage_location), false)?.remove(0);
    let mut store = object_store_for(coffer, &bsl).await?;
    let key = Layout::new(&bsl.spec.object_storage.prefix).backup_contents(name);
    let size = store.get_object(&bsl.spec.object_storage.bucket, &key, file).await?;
    println!("Backup {name:?} downloaded to {} ({size} bytes).", path.display());
    Ok(())
}

/// Runs a `backup` command.
pub async fn backup(coffer: &Coffer, ns: &str, command: BackupCommand, default_vsls: Option<&str>) -> Result<()> {
    match command {
        BackupCommand::Create(args) => create(coffer, ns, *args, default_vsls).await,
        BackupCommand::Get(args) => {
            let found = if args.names.is_empty() {
                backup::list_backups(coffer, ns)?
            } else {
                args.names.iter().map(|n| backup::get_backup(coffer, ns, n)).collect::<Result<_, _>>()?
            };
            print_backups(args.output.format, &found, args.names.len() == 1)
        }
        BackupCommand::Describe(args) => describe_backup(coffer, ns, &args).await,
        BackupCommand::Logs(args) => {
            let b = backup::get_backup(coffer, ns, &args.name)?;
            let bsl_name = b.spec.storage_location.clone();
            let key = location_layout(coffer, ns, &bsl_name)?.backup_log(&args.name);
            print_log(coffer, ns, &bsl_name, key, &format!("backup {:?}", args.name)).await
        }
        BackupCommand::Download(args) => download(coffer, ns, &args.name, args.output, args.force).await,
        BackupCommand::Delete(args) => {
            let names = match super::locations::confirmed(&args, "backup")? {
                coffer::locations::Selection::All => backup::list_backups(coffer, ns)?.into_iter().map(|b| b.metadata.meta.name).collect(),
                coffer::locations::Selection::Names(names) => names,
            };
            for name in names {
                backup::delete_backup(coffer, ns, &name).await?;
                println!("Backup {name:?} deleted, with its objects and snapshots.");
            }
            Ok(())
        }
    }
}

fn location_layout(coffer: &Coffer, ns: &str, bsl: &str) -> Result<Layout> {
    let bsl = coffer::locations::get_backup_storage_locations(coffer, ns, &[bsl.to_owned()], false)?.remove(0);
    Ok(Layout::new(&bsl.spec.object_storage.prefix))
}

async fn create_restore(coffer: &Coffer, ns: &str, args: RestoreCreate) -> Result<()> {
    let name = args.name.unwrap_or_else(|| {
        let stamp = coffer::model::now().format(&time::macros::format_description!("[year][month][day][hour][minute][second]")).unwrap_or_default();
        format!("{}-{stamp}", args.from_backup)
    });
    let target = std::path::absolute(&args.target).with_context(|| format!("--target {}", args.target.display()))?;
    let request = RestoreRequest { name: name.clone(), backup: args.from_backup, target, restore_volumes: args.restore_volumes };
    println!("Restore request {name:?} submitted successfully.");
    let mut bar = progress_bar(args.wait, "restore");
    let restore = backup::create_restore(coffer, ns, request, &mut bar).await?;
    finish("Restore", &name, restore.status.phase, &restore.status.validation_errors, &restore.status.failure_reason, "restore")
}

fn describe_restore(coffer: &Coffer, ns: &str, args: &Describe) -> Result<()> {
    let r = backup::get_restore(coffer, ns, &args.name)?;
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
pub async fn restore(coffer: &Coffer, ns: &str, command: RestoreCommand) -> Result<()> {
    match command {
        RestoreCommand::Create(args) => create_restore(coffer, ns, args).await,
        RestoreCommand::Get(args) => {
            let found = if args.names.is_empty() {
                backup::list_restores(coffer, ns)?
            } else {
                args.names.iter().map(|n| backup::get_restore(coffer, ns, n)).collect::<Result<_, _>>()?
            };
            print_restores(args.output.format, &found, args.names.len() == 1)
        }
        RestoreCommand::Describe(args) => describe_restore(coffer, ns, &args),
        RestoreCommand::Logs(args) => {
            let r = backup::get_restore(coffer, ns, &args.name)?;
            let b = backup::get_backup(coffer, ns, &r.spec.backup_name)?;
            let key = location_layout(coffer, ns, &b.spec.storage_location)?.restore_log(&args.name);
            print_log(coffer, ns, &b.spec.storage_location, key, &format!("restore {:?}", args.name)).await
        }
    }
}
