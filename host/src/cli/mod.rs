//! The `coffer` command line: clap definitions in [`args`], execution in the other modules.

pub mod args;
mod backend;
mod backups;
mod locations;
mod output;
mod parse;
mod plugins;
mod remote;
mod schedules;
mod secrets;
mod server;
mod tenants;

use std::path::PathBuf;

use anyhow::{Context, Result};

use coffer::backup::parse_default_snapshot_locations;
use coffer::coffer::Coffer;
use coffer::sandbox::Limits;

use args::{Cli, Command};
use backend::Backend;

/// The data directory when neither `--data-dir` nor `COFFER_DATA_DIR` is given.
fn default_data_dir() -> Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("coffer"));
    }
    let home = std::env::var_os("HOME").context("no --data-dir, COFFER_DATA_DIR or HOME to put the data directory in")?;
    Ok(PathBuf::from(home).join(".local/share/coffer"))
}

/// Runs one command.
pub async fn run(cli: Cli) -> Result<()> {
    let default_snapshot_locations = cli
        .default_volume_snapshot_locations
        .as_deref()
        .map(parse_default_snapshot_locations)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--default-volume-snapshot-locations: {e}"))?
        .unwrap_or_default();
    let data_dir = match cli.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let open = |limits: Limits| {
        let data_dir = data_dir.clone();
        async move { Coffer::open(&data_dir, limits).await.with_context(|| format!("opening the data directory {}", data_dir.display())) }
    };
    let command = match cli.command {
        Command::Server(args) => return server::serve(open, &data_dir, args, default_snapshot_locations).await,
        Command::Tenant(c) => return tenants::tenant(&data_dir, || open(Limits::default()), c).await,
        other => other,
    };
    let mut backend = match &cli.server {
        Some(url) => Backend::Remote(remote::Client::new(url, remote::token(cli.token_file.as_deref())?, cli.server_cacert.as_deref())?),
        None => {
            if remote::Client::operator(&data_dir.join(coffer::server::ADMIN_SOCKET)).await.is_some() {
                anyhow::bail!(
                    "a coffer server is running on the data directory {}: send commands to it with --server URL and a tenant's token",
                    data_dir.display()
                );
            }
            let coffer = open(Limits::default()).await?;
            // This process holds the state now: what is InProgress was left by one that died.
            let (backups, restores) = coffer::controllers::recover_interrupted(&coffer, coffer::controllers::Opener::Command).await?;
            if backups + restores > 0 {
                tracing::warn!(backups, restores, "set straight backups and restores left InProgress by a process that ended");
            }
            Backend::Local { coffer: Box::new(coffer), default_snapshot_locations }
        }
    };
    let ns = cli.namespace.as_str();
    match command {
        Command::Backup(c) => backups::backup(&backend, ns, c).await,
        Command::Restore(c) => backups::restore(&backend, ns, c).await,
        Command::BackupLocation(c) => locations::backup_location(&backend, ns, c).await,
        Command::SnapshotLocation(c) => locations::snapshot_location(&backend, ns, c).await,
        Command::Secret(c) => secrets::secret(&backend, ns, c).await,
        Command::Schedule(c) => schedules::schedule(&backend, ns, c).await,
        Command::Plugin(c) => plugins::plugin(backend.local("plugin")?, c).await,
        Command::Tenant(_) | Command::Server(_) => unreachable!("handled above"),
    }
}
