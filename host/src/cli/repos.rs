//! `repo`: file-system backup repositories.

use std::io::Write;

use anyhow::Result;
use coffer::api::TenantApi;
use coffer::fsb::BackupRepository;
use coffer::model::{API_VERSION, go_duration};

use super::args::{OutputFormat, RepoCommand};
use super::named_or_all;
use super::output::{Table, print_documents, timestamp};

fn print_repositories(format: OutputFormat, items: &[BackupRepository], single: bool) -> Result<()> {
    if format != OutputFormat::Table {
        return print_documents(format, API_VERSION, "BackupRepository", items, single);
    }
    let mut table = Table::new(&["NAME", "STATUS", "LOCATION", "VOLUME NAMESPACE", "MAINTENANCE", "LAST MAINTENANCE", "REPOSITORY"]);
    for r in items {
        table.row(vec![
            r.metadata.name.clone(),
            r.status.phase.clone(),
            r.spec.backup_storage_location.clone(),
            r.spec.volume_namespace.clone(),
            r.spec.maintenance_frequency.map(go_duration::format).unwrap_or_default(),
            timestamp(r.status.last_maintenance_time),
            r.spec.restic_identifier.clone(),
        ]);
    }
    table.print()
}

/// Runs a `repo` command.
pub async fn repo(api: &dyn TenantApi, command: RepoCommand) -> Result<()> {
    match command {
        RepoCommand::Get(args) => {
            let found = named_or_all(&args.names, || api.list_backup_repositories(), |n| api.get_backup_repository(n)).await?;
            print_repositories(args.output.format, &found, args.names.len() == 1)
        }
        RepoCommand::Password(args) => {
            let password = api.backup_repository_password(&args.name).await?;
            let mut out = std::io::stdout().lock();
            out.write_all(password.expose())?;
            out.write_all(b"\n")?;
            Ok(())
        }
        RepoCommand::Maintain(args) => {
            let repository = api.maintain_backup_repository(&args.name).await?;
            let run = repository.status.recent_maintenance.last().map(|m| m.message.clone()).unwrap_or_default();
            println!("Repository {:?} maintained: {run}.", args.name);
            Ok(())
        }
    }
}
