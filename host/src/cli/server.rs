//! `server`.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use coffer::coffer::Coffer;
use coffer::controllers::Settings;
use coffer::sandbox::Limits;
use coffer::server::{ADMIN_SOCKET, Listeners};

use super::args::ServerArgs;
use super::parse;

/// The operator's socket, readable and writable by the data directory's owner only. A stale
/// one (from a server that died) is replaced; the state lock already proved none is running.
fn bind_admin(path: &Path) -> Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing the old {}", path.display())),
    }
    let listener = tokio::net::UnixListener::bind(path).with_context(|| format!("operator socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn bind(what: &str, addr: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("{what} {addr}"))
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve<F: Future<Output = Result<Coffer>>>(
    open: impl FnOnce(Limits) -> F,
    data_dir: &Path,
    args: ServerArgs,
    default_snapshot_locations: BTreeMap<String, String>,
) -> Result<()> {
    let limits = Limits { memory_bytes: parse::size("instance-memory", &args.instance_memory)?, ..Limits::default() };
    let settings = Settings {
        tick: parse::duration("controller-tick", Some(&args.controller_tick))?.unwrap_or_default().max(std::time::Duration::from_millis(100)),
        backup_sync_period: parse::duration("backup-sync-period", Some(&args.backup_sync_period))?.unwrap_or_default(),
        gc_frequency: parse::duration("garbage-collection-frequency", Some(&args.garbage_collection_frequency))?.unwrap_or_default(),
        default_snapshot_locations,
    };
    let mut coffer = open(limits).await?;
    let tenant_root = args.tenant_root.unwrap_or_else(|| data_dir.join("tenants"));
    coffer.confine_tenants(&tenant_root).with_context(|| format!("--tenant-root {}", tenant_root.display()))?;
    let api = bind("--listen", &args.listen).await?;
    let metrics = if args.metrics_listen == "off" { None } else { Some(bind("--metrics-listen", &args.metrics_listen).await?) };
    let metrics_at = match &metrics {
        Some(m) => format!("http://{}/metrics", m.local_addr()?),
        None => "off".into(),
    };
    tracing::info!(api = %format!("http://{}", api.local_addr()?), metrics = %metrics_at, tenant_root = %tenant_root.display(), "coffer server listening");
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        tracing::info!("shutting down");
    };
    let admin = bind_admin(&data_dir.join(ADMIN_SOCKET))?;
    coffer::server::serve(Arc::new(coffer), Listeners { api, metrics, admin: Some(admin) }, settings, shutdown).await.context("serving")
}
