//! The `coffer` command line: clap definitions in [`args`], execution in the other modules.

pub mod args;
mod backups;
mod locations;
mod output;
mod parse;
mod plugins;
mod repos;
mod schedules;
mod secrets;
mod server;
mod state_access;
mod state_migration;
mod tenants;
mod worded;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use coffer::api::{Client, Host, LocalTenant, RemoteTenant, TenantApi};
use coffer::backup::parse_default_snapshot_locations;
use coffer::coffer::Coffer;
use coffer::sandbox::Limits;
use coffer::state::StateLocation;
use coffer::secret::SecretBytes;
use coffer::tenant::Tenant;

use args::{Cli, Command, PluginCommand, StateCommand};

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
    let state = state_access::state_location(cli.state.as_deref().unwrap_or_default(), &cli.etcd).context("--state")?;
    let open = |limits: Limits| {
        let (data_dir, state, master_key) = (data_dir.clone(), state.clone(), cli.master_key_file.clone());
        async move {
            Coffer::open_with(&data_dir, limits, &state, master_key.as_deref()).await.with_context(|| match &state {
                StateLocation::Embedded => format!("opening the data directory {}", data_dir.display()),
                StateLocation::Etcd(_) => format!("opening the data directory {} with the state in etcd", data_dir.display()),
            })
        }
    };
    let command = match cli.command {
        // On a component and a service of the author's, not on a data directory.
        Command::Plugin(PluginCommand::Test(args)) => return plugins::test(*args).await,
        Command::Plugin(PluginCommand::New(args)) => return plugins::new(args),
        Command::Server(args) => return server::serve(open, &data_dir, args, default_snapshot_locations).await,
        Command::Tenant(c) => return tenants::tenant(&data_dir, || open(Limits::default()), c).await,
        Command::State(StateCommand::Migrate(args)) => return state_migration::migrate(&args, &cli.etcd),
        other => other,
    };
    if cli.server.is_none() && Client::operator(&data_dir.join(coffer::server::ADMIN_SOCKET)).await.is_some() {
        bail!(
            "a coffer server is running on the data directory {}: send commands to it with --server URL and a tenant's token",
            data_dir.display()
        );
    }
    match (&cli.server, command) {
        (Some(_), Command::Plugin(_)) => bail!("`plugin` runs on the server's host, against its data directory; leave out --server"),
        (None, Command::Plugin(c)) => return plugins::plugin(&open(Limits::default()).await?, c).await,
        (Some(url), c) => {
            let client = Client::new(url, &token(cli.token_file.as_deref())?, cli.server_cacert.as_deref()).map_err(worded::client)?;
            tenant_command(&RemoteTenant(client), &cli.namespace, c).await
        }
        (None, c) => {
            let coffer = open(Limits::default()).await?;
            // This process holds the embedded state now: what is InProgress was left by one
            // that died. What is InProgress in a shared state may be running on a server.
            if !coffer.state.is_shared() {
                let (backups, restores) = coffer::controllers::recover_interrupted(&coffer, coffer::controllers::Opener::Command, coffer::controllers::Scan::All).await?;
                if backups + restores > 0 {
                    tracing::warn!(backups, restores, "set straight backups and restores left InProgress by a process that ended");
                }
            }
            let tenant = Tenant::single_user(cli.namespace.as_str());
            let local = LocalTenant::new(Arc::new(coffer), tenant, default_snapshot_locations, Host::Command);
            tenant_command(&local, &cli.namespace, c).await
        }
    }
}

/// Runs a tenant's command on `api`, as `ns`.
async fn tenant_command(api: &dyn TenantApi, ns: &str, command: Command) -> Result<()> {
    let done = match command {
        Command::Backup(c) => backups::backup(api, ns, c).await,
        Command::Restore(c) => backups::restore(api, ns, c).await,
        Command::BackupLocation(c) => locations::backup_location(api, ns, c).await,
        Command::SnapshotLocation(c) => locations::snapshot_location(api, ns, c).await,
        Command::Secret(c) => secrets::secret(api, c).await,
        Command::Schedule(c) => schedules::schedule(api, ns, c).await,
        Command::Repo(c) => repos::repo(api, c).await,
        Command::Plugin(_) | Command::Tenant(_) | Command::State(_) | Command::Server(_) => unreachable!("handled before"),
    };
    done.map_err(worded::error)
}

/// The token: `COFFER_TOKEN`, else the file `--token-file` (or `COFFER_TOKEN_FILE`) names.
fn token(token_file: Option<&Path>) -> Result<SecretBytes> {
    if let Some(t) = std::env::var_os("COFFER_TOKEN").filter(|t| !t.is_empty()) {
        return Ok(SecretBytes::new(t.into_encoded_bytes()));
    }
    let Some(file) = token_file else {
        bail!("--server needs a token: set COFFER_TOKEN or pass --token-file (create one with `coffer tenant token create` on the server host)")
    };
    let text = std::fs::read_to_string(file).with_context(|| format!("--token-file {}", file.display()))?;
    Ok(SecretBytes::new(text.trim().as_bytes().to_vec()))
}

/// Every object `all` lists when `names` is empty, else what `get` finds for each name, in
/// order; the first name that is missing fails.
async fn named_or_all<'a, T, L, G>(
    names: &'a [String],
    all: impl FnOnce() -> L,
    get: impl Fn(&'a str) -> G,
) -> Result<Vec<T>, coffer::api::ApiError>
where
    L: std::future::Future<Output = Result<Vec<T>, coffer::api::ApiError>>,
    G: std::future::Future<Output = Result<T, coffer::api::ApiError>>,
{
    if names.is_empty() {
        return all().await;
    }
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        found.push(get(name).await?);
    }
    Ok(found)
}
