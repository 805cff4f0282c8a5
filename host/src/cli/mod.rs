//! The `coffer` command line: clap definitions in [`args`], execution in the other modules.

pub mod args;
mod backups;
mod locations;
mod output;
mod parse;
mod plugins;
mod secrets;

use std::path::PathBuf;

use anyhow::{Context, Result};

use coffer::coffer::Coffer;
use coffer::sandbox::Limits;

use args::{Cli, Command};

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
    let data_dir = match cli.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let mut coffer = Coffer::open(&data_dir, Limits::default())
        .await
        .with_context(|| format!("opening the data directory {}", data_dir.display()))?;
    let ns = cli.namespace.as_str();
    let default_vsls = cli.default_volume_snapshot_locations.as_deref();
    match cli.command {
        Command::Backup(c) => backups::backup(&coffer, ns, c, default_vsls).await,
        Command::Restore(c) => backups::restore(&coffer, ns, c).await,
        Command::BackupLocation(c) => locations::backup_location(&coffer, ns, c).await,
        Command::SnapshotLocation(c) => locations::snapshot_location(&coffer, ns, c).await,
        Command::Secret(c) => secrets::secret(&coffer, ns, c),
        Command::Plugin(c) => plugins::plugin(&mut coffer, c).await,
    }
}
