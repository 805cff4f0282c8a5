//! `backup` and `restore`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use coffer::api::TenantApi;
use coffer::backup::{SOURCE_ANNOTATION, TARGET_ANNOTATION, parse_selector};
use coffer::model::{API_VERSION, Backup, BackupMeta, BackupSpec, ObjectMeta, Phase, Progress, ResourceFilters, Restore, RestoreSpec, go_duration};
use coffer::tenant::Tenant;

use super::args::{BackupCommand, BackupCreate, Describe, FilterArgs, OutputFormat, RestoreCommand, RestoreCreate};
use super::output::{Table, print_documents, timestamp};
use super::{named_or_all, parse};

/// Bytes as a person reads them: `512 B`, `3.4 MiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut value, mut unit) = (bytes as f64, 0);
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// A progress bar on stderr, redrawn when the percentage changes; only its last state when
/// stderr is not a terminal. Pod volume data has a line of its own: bytes done, in all, and
/// the rate since the data began to move.
fn progress_bar(enabled: bool, what: &'static str) -> impl FnMut(&Progress) + Send {
    let mut last = u64::MAX;
    let mut last_data = None;
    let mut data_since = None;
    let live = std::io::stderr().is_terminal();
    move |p: &Progress| {
        if !enabled {
            return;
        }
        if let Some(data) = p.pod_volume_data {
            let since = *data_since.get_or_insert_with(std::time::Instant::now);
            let whole = data.bytes_done >= data.total_bytes;
            if last_data == Some(data) || data.total_bytes == 0 || (!live && !whole) {
                return;
            }
            last_data = Some(data);
            let rate = data.bytes_done as f64 / since.elapsed().as_secs_f64().max(0.001) / 1e6;
            let mut err = std::io::stderr().lock();
            let (done, total) = (human_bytes(data.bytes_done), human_bytes(data.total_bytes));
            let line = format!("{what} volume data: {done} of {total}, {rate:.1} MB/s");
            let _ = match (live, whole) {
                (true, true) => writeln!(err, "\r{line}\x1b[K"),
                (true, false) => write!(err, "\r{line}\x1b[K"),
                (false, _) => writeln!(err, "{line}"),
            };
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

/// The filters the flags ask for.
fn resource_filters(args: &FilterArgs) -> Result<ResourceFilters> {
    Ok(ResourceFilters {
        included_namespaces: args.include_namespaces.clone(),
        excluded_namespaces: args.exclude_namespaces.clone(),
        included_resources: args.include_resources.clone(),
        excluded_resources: args.exclude_resources.clone(),
        label_selector: args.selector.as_deref().map(parse_selector).transpose().map_err(|e| anyhow::anyhow!("--selector: {e}"))?,
    })
}

/// The spec and labels the backup flags ask for (shared with `schedule create`).
pub fn backup_spec(args: &BackupCreate) -> Result<(BackupSpec, std::collections::BTreeMap<String, String>)> {
    let spec = BackupSpec {
        filters: resource_filters(&args.filters)?,
        snapshot_volumes: args.snapshot_volumes,
        default_volumes_to_fs_backup: args.default_volumes_to_fs_backup,
        ttl: parse::duration("ttl", args.ttl.as_deref())?,
        storage_location: args.storage_location.clone().unwrap_or_default(),
        volume_snapshot_locations: args.volume_snapshot_locations.clone(),
        copy_to: args.copy_to.clone(),
        copy_snapshots_to: args.copy_snapshots_to.clone(),
    };
    Ok((spec, parse::key_values("labels", args.labels.as_deref())?))
}

/// Object metadata naming `name` in `ns`, with `labels` and the path annotation `key`.
pub fn annotated(ns: &str, name: &str, labels: std::collections::BTreeMap<String, String>, key: &str, path: &std::path::Path) -> BackupMeta {
    let mut meta = ObjectMeta::new(ns, name);
    meta.labels = labels;
    BackupMeta { meta, annotations: std::collections::BTreeMap::from([(key.to_owned(), path.display().to_string())]) }
}

async fn create(api: &dyn TenantApi, ns: &str, args: BackupCreate) -> Result<()> {
    let (spec, labels) = backup_spec(&args)?;
    let object = Backup {
        api_version: API_VERSION.into(),
        kind: "Backup".into(),
        metadata: annotated(ns, &args.name, labels, SOURCE_ANNOTATION, &args.source),
        spec,
        status: Default::default(),
    };
    println!("Backup request {:?} submitted successfully.", args.name);
    let mut bar = progress_bar(args.wait, "backup");
    let backup = api.create_backup(object, args.wait.then_some(&mut bar)).await?;
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
            b.spec.filters.label_selector.as_ref().map_or("<none>".into(), |s| serde_json::to_string(s).unwrap_or_default()),
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

async fn describe_backup(api: &dyn TenantApi, ns: &str, args: &Describe) -> Result<()> {
    let b = api.get_backup(&args.name).await?;
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
    out += &filters(&s.filters, "*");
    out += &format!("Storage Location:  {}\n\n", s.storage_location);
    if !s.copy_to.is_empty() {
        out += "Copies:\n";
        for name in &s.copy_to {
            let copy = st.copies.iter().find(|c| c.storage_location == *name);
            let state = match copy {
                None => "Pending".to_owned(),
                Some(c) if c.message.is_empty() => phase(c.phase),
                Some(c) => format!("{}: {}", phase(c.phase), c.message),
            };
            out += &format!("  {name}:  {state}\n");
        }
        out += "\n";
    }
    out += &format!(
        "Velero-Native Snapshot PVs:  {}\nSnapshot Volume Locations:   {}\n\n",
        match s.snapshot_volumes { None => "auto", Some(true) => "true", Some(false) => "false" },
        list_or_none(&s.volume_snapshot_locations, "<none>")
    );
    if !s.copy_snapshots_to.is_empty() {
        out += &format!("Snapshot Copies To:          {}\n\n", s.copy_snapshots_to.join(", "));
    }
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
    let details = api.backup_details(&args.name).await?;
    print_resource_list(&details.resource_list);
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
            if sn.is_copy() {
                println!("    Copy Of:            the snapshot in {} ({})", sn.spec.copied_from, sn.status.phase);
            }
        }
    }
    if !details.pod_volume_backups.is_empty() {
        println!("\nPod Volume Backups - restic:");
        for pvb in details.pod_volume_backups {
            let (spec, status) = (&pvb.spec, &pvb.status);
            let volume = PodVolumeLine { pod: &spec.pod, volume: &spec.volume, phase: &status.phase, snapshot_id: &status.snapshot_id, message: &status.message };
            volume.print(status.progress.total_bytes, &format!("\n    Repository:   {}", spec.repo_identifier));
        }
    }
    Ok(())
}

/// The namespace, resource and label filters, as `describe` shows them; `all` stands for
/// every namespace.
fn filters(f: &ResourceFilters, all: &str) -> String {
    let mut out = format!("Namespaces:\n  Included:  {}\n  Excluded:  {}\n\n", list_or_none(&f.included_namespaces, all), list_or_none(&f.excluded_namespaces, "<none>"));
    out += &format!("Resources:\n  Included:  {}\n  Excluded:  {}\n\n", list_or_none(&f.included_resources, "*"), list_or_none(&f.excluded_resources, "<none>"));
    out += &format!("Label selector:  {}\n\n", f.label_selector.as_ref().map_or("<none>".into(), |l| serde_json::to_string(l).unwrap_or_default()));
    out
}

/// A pod volume backup or restore, as `describe --details` lists it.
struct PodVolumeLine<'a> {
    pod: &'a coffer::backup::PodReference,
    volume: &'a str,
    phase: &'a str,
    snapshot_id: &'a str,
    message: &'a str,
}

impl PodVolumeLine<'_> {
    fn print(&self, bytes: u64, more: &str) {
        let snapshot = if self.snapshot_id.is_empty() { "<none>" } else { self.snapshot_id };
        let message = if self.message.is_empty() { String::new() } else { format!("\n    Message:      {}", self.message) };
        println!(
            "  {}/{}: {}\n    Phase:        {}\n    Snapshot ID:  {snapshot}\n    Bytes:        {bytes}{more}{message}",
            self.pod.namespace, self.pod.name, self.volume, self.phase
        );
    }
}

fn print_resource_list(list: &std::collections::BTreeMap<String, Vec<String>>) {
    if !list.is_empty() {
        println!("\nResource List:");
        for (kind, names) in list {
            println!("  {kind}:");
            for n in names {
                println!("    - {n}");
            }
        }
    }
}

fn print_log(log: &[u8]) -> Result<()> {
    std::io::stdout().write_all(log)?;
    println!();
    Ok(())
}

async fn download(api: &dyn TenantApi, name: &str, output: Option<PathBuf>, force: bool) -> Result<()> {
    let download = api.download_backup(name).await?;
    let path = output.unwrap_or_else(|| PathBuf::from(format!("{name}-data.tar.gz")));
    // The user's own file, named on the user's own host: the trivial tenant's.
    let user = Tenant::single_user("");
    let file = user.paths().create_file("--output", &path, force).with_context(|| "use --force to overwrite")?;
    let size = match download.write_to(Box::new(std::io::BufWriter::new(file))).await {
        Ok(size) => size,
        Err(e) => {
            // What was written is not the tarball.
            let _ = user.paths().remove_file("--output", &path);
            return Err(e.into());
        }
    };
    println!("Backup {name:?} downloaded to {} ({size} bytes).", path.display());
    Ok(())
}

/// Runs a `backup` command.
pub async fn backup(api: &dyn TenantApi, ns: &str, command: BackupCommand) -> Result<()> {
    match command {
        BackupCommand::Create(args) => create(api, ns, *args).await,
        BackupCommand::Get(args) => {
            let found = named_or_all(&args.names, || api.list_backups(), |n| api.get_backup(n)).await?;
            print_backups(args.output.format, &found, args.names.len() == 1)
        }
        BackupCommand::Describe(args) => describe_backup(api, ns, &args).await,
        BackupCommand::Logs(args) => print_log(&api.backup_log(&args.name).await?),
        BackupCommand::Download(args) => download(api, &args.name, args.output, args.force).await,
        BackupCommand::Delete(args) => {
            let names = match super::locations::confirmed(&args, "backup")? {
                super::locations::Selection::All => api.list_backups().await?.into_iter().map(|b| b.metadata.meta.name).collect(),
                super::locations::Selection::Names(names) => names,
            };
            for name in names {
                api.delete_backup(&name).await?;
                println!("Backup {name:?} deleted, with its objects and snapshots.");
            }
            Ok(())
        }
    }
}

async fn create_restore(api: &dyn TenantApi, ns: &str, args: RestoreCreate) -> Result<()> {
    let name = args.name.unwrap_or_else(|| {
        let stamp = coffer::model::now().format(&time::macros::format_description!("[year][month][day][hour][minute][second]")).unwrap_or_default();
        format!("{}-{stamp}", args.from_backup)
    });
    let object = Restore {
        api_version: API_VERSION.into(),
        kind: "Restore".into(),
        metadata: annotated(ns, &name, Default::default(), TARGET_ANNOTATION, &args.target),
        spec: RestoreSpec {
            backup_name: args.from_backup,
            filters: resource_filters(&args.filters)?,
            restore_p_vs: args.restore_volumes,
            storage_location: args.storage_location.unwrap_or_default(),
            volume_snapshot_locations: args.volume_snapshot_locations,
        },
        status: Default::default(),
    };
    println!("Restore request {name:?} submitted successfully.");
    let mut bar = progress_bar(args.wait, "restore");
    let restore = api.create_restore(object, args.wait.then_some(&mut bar)).await?;
    finish("Restore", &name, restore.status.phase, &restore.status.validation_errors, &restore.status.failure_reason, "restore")
}

async fn describe_restore(api: &dyn TenantApi, ns: &str, args: &Describe) -> Result<()> {
    let r = api.get_restore(&args.name).await?;
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
    print!("{}", filters(&r.spec.filters, "all namespaces found in the backup"));
    println!("Restore PVs:  {}", match r.spec.restore_p_vs { None => "auto", Some(true) => "true", Some(false) => "false" });
    if !r.spec.volume_snapshot_locations.is_empty() {
        println!("Volume Snapshot Locations:  {}", r.spec.volume_snapshot_locations.join(", "));
    }
    if let Some(p) = &st.progress {
        println!("\nTotal items to be restored:  {}\nItems restored:              {}", p.total_items, p.items_restored);
    }
    if !st.phase.is_some_and(Phase::is_usable) {
        return Ok(());
    }
    if !args.details {
        println!("\n(specify --details for the resource list and pod volume restores)");
        return Ok(());
    }
    let details = api.restore_details(&args.name).await?;
    print_resource_list(&details.resource_list);
    if !details.pod_volume_restores.is_empty() {
        println!("\nPod Volume Restores - restic:");
        for pvr in details.pod_volume_restores {
            let (spec, status) = (&pvr.spec, &pvr.status);
            let volume = PodVolumeLine { pod: &spec.pod, volume: &spec.volume, phase: &status.phase, snapshot_id: &spec.snapshot_id, message: &status.message };
            volume.print(status.progress.bytes_done, "");
        }
    }
    Ok(())
}

/// Runs a `restore` command.
pub async fn restore(api: &dyn TenantApi, ns: &str, command: RestoreCommand) -> Result<()> {
    match command {
        RestoreCommand::Create(args) => create_restore(api, ns, *args).await,
        RestoreCommand::Get(args) => {
            let found = named_or_all(&args.names, || api.list_restores(), |n| api.get_restore(n)).await?;
            print_restores(args.output.format, &found, args.names.len() == 1)
        }
        RestoreCommand::Describe(args) => describe_restore(api, ns, &args).await,
        RestoreCommand::Logs(args) => print_log(&api.restore_log(&args.name).await?),
    }
}
