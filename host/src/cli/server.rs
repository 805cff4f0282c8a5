//! `server`.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use coffer::coffer::Coffer;
use coffer::sandbox::{Allowance, Limits, Reach};
use coffer::jobs::JobLimits;
use coffer::server::{ADMIN_SOCKET, ApiListener, ConnectionLimits, Listeners, Settings, TlsFiles, TlsListener};

use super::args::ServerArgs;
use super::parse;

/// The operator's socket, readable and writable by the data directory's owner only. A stale
/// one (from a server that died) is replaced; the state lock already proved none is running.
fn bind_admin(path: &Path) -> Result<tokio::net::UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing the old {}", path.display())),
    }
    // Created owner-only (mode 0600) by the bind itself: there is no moment at which another
    // user could connect. The umask is process-wide; any file created meanwhile only gets a
    // stricter mode.
    // SAFETY: umask has no memory effects; it only sets the process's file-creation mask.
    let previous = unsafe { libc::umask(0o177) };
    let listener = tokio::net::UnixListener::bind(path);
    // SAFETY: as above, restoring the mask.
    unsafe { libc::umask(previous) };
    listener.with_context(|| format!("operator socket {}", path.display()))
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
    let tick = parse::duration("controller-tick", Some(&args.controller_tick))?.unwrap_or_default().max(std::time::Duration::from_millis(100));
    // A period shorter than the tick would silently run once a tick: refused, saying so.
    let period = |flag: &str, text: &str| -> Result<std::time::Duration> {
        let period = parse::duration(flag, Some(text))?.unwrap_or_default();
        anyhow::ensure!(
            period >= tick,
            "--{flag} {text} is shorter than --controller-tick {}, which is how often the controllers look for due work",
            args.controller_tick
        );
        Ok(period)
    };
    let drain = parse::duration("shutdown-grace", Some(&args.shutdown_grace))?.unwrap_or_default();
    let settings = Settings {
        controllers: coffer::controllers::Settings {
            tick,
            backup_sync_period: period("backup-sync-period", &args.backup_sync_period)?,
            gc_frequency: period("garbage-collection-frequency", &args.garbage_collection_frequency)?,
            default_snapshot_locations,
            drain,
        },
        jobs: JobLimits { concurrent: args.concurrent_backups.max(1), per_tenant: args.tenant_concurrent_backups.max(1) },
        connections: ConnectionLimits {
            max_connections: args.max_connections.max(1),
            header_timeout: parse::positive_duration("request-header-timeout", &args.request_header_timeout)?,
            drain,
        },
    };
    let allowances = args
        .allow_endpoints
        .iter()
        .map(|a| a.parse::<Allowance>().map_err(|e| anyhow::anyhow!("--allow-endpoint: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let mut coffer = open(limits).await?;
    coffer.reach = Reach::Public(allowances.into());
    anyhow::ensure!(args.tenant_instances > 0, "--tenant-instances must be at least 1");
    coffer.tenant_instances = Some(args.tenant_instances);
    coffer.default_backup_ttl = parse::positive_duration("default-backup-ttl", &args.default_backup_ttl)?;
    let reserve = parse::size("state-reserve", &args.state_reserve)?;
    coffer.keep_state_reserve(reserve).with_context(|| format!("--state-reserve {}", args.state_reserve))?;
    let tenant_root = args.tenant_root.unwrap_or_else(|| data_dir.join("tenants"));
    coffer.confine_tenants(&tenant_root).with_context(|| format!("--tenant-root {}", tenant_root.display()))?;
    let tcp = bind("--listen", &args.listen).await?;
    let local = tcp.local_addr()?;
    let (api, api_url) = match (args.tls_cert_file, args.tls_private_key_file) {
        (Some(cert), Some(key)) => {
            let listener = TlsListener::new(tcp, TlsFiles { cert, key }).context("--tls-cert-file/--tls-private-key-file")?;
            (ApiListener::Tls(listener), format!("https://{local}"))
        }
        _ => {
            if !local.ip().is_loopback() && !args.insecure_listen {
                anyhow::bail!(
                    "--listen {}: tenants' tokens would cross the network in clear; serve HTTPS with --tls-cert-file and \
                     --tls-private-key-file, or say --insecure-listen (behind a TLS-terminating proxy)",
                    args.listen
                );
            }
            (ApiListener::Plain(tcp), format!("http://{local}"))
        }
    };
    let metrics = if args.metrics_listen == "off" { None } else { Some(bind("--metrics-listen", &args.metrics_listen).await?) };
    let metrics_at = match &metrics {
        Some(m) => format!("http://{}/metrics", m.local_addr()?),
        None => "off".into(),
    };
    tracing::info!(api = %api_url, metrics = %metrics_at, tenant_root = %tenant_root.display(), "coffer server listening");
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
