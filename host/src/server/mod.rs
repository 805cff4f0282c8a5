//! `coffer server`: the HTTP JSON API (documented in [`crate::api::OPENAPI`], served at
//! `/openapi.json`), a thin adapter over the service layer the CLI uses too ([`crate::api`]),
//! with the controllers running beside it.
//!
//! Tenants are namespaces. Every API route acts as the tenant its bearer token belongs to
//! (see [`crate::tokens`]); no route takes a namespace from the request, so a tenant cannot
//! name another's objects. Paths a tenant gives are inside its own directory. Metrics are on
//! a separate listener for the operator.

mod admin;
mod auth;
mod connections;
mod error;
mod metrics;
mod tenant_routes;
mod throttle;
mod tls;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

pub use admin::ADMIN_SOCKET;
pub use auth::Calls;
pub use connections::ConnectionLimits;
pub use tls::{TlsError, TlsFiles, TlsListener};

use crate::api::{ApiError, OPENAPI, Reason, routes};
use crate::coffer::Coffer;
use crate::controllers::{self, Controllers, Counters};
use crate::jobs::{JobLimits, Jobs};

/// What the handlers share.
pub struct AppState {
    /// The engine.
    pub coffer: Arc<Coffer>,
    /// `--default-volume-snapshot-locations`.
    pub default_snapshot_locations: BTreeMap<String, String>,
    /// What the controllers did, for metrics.
    pub counters: Arc<Counters>,
    /// Failed token attempts by client address.
    pub failed_tokens: throttle::FailedTokens,
    /// Where accepted backups and restores run.
    pub jobs: Arc<Jobs>,
}

/// The API's routes.
pub fn router(state: Arc<AppState>) -> Router {
    use routes::*;
    use tenant_routes::*;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .route(WHOAMI, get(whoami))
        .route(BACKUP_STORAGE_LOCATIONS, get(list_bsls).post(create_bsl))
        .route(BACKUP_STORAGE_LOCATION, get(get_bsl).patch(patch_bsl).delete(delete_bsl))
        .route(VOLUME_SNAPSHOT_LOCATIONS, get(list_vsls).post(create_vsl))
        .route(VOLUME_SNAPSHOT_LOCATION, get(get_vsl).patch(patch_vsl).delete(delete_vsl))
        .route(SECRETS, get(list_secrets).post(create_secret))
        .route(SECRET, get(get_secret).put(put_secret).delete(delete_secret))
        .route(BACKUPS, get(list_backups).post(create_backup))
        .route(BACKUP, get(get_backup).delete(delete_backup))
        .route(BACKUP_LOGS, get(backup_logs))
        .route(BACKUP_DETAILS, get(backup_details))
        .route(BACKUP_DOWNLOAD, get(download_backup))
        .route(RESTORES, get(list_restores).post(create_restore))
        .route(RESTORE, get(get_restore))
        .route(RESTORE_LOGS, get(restore_logs))
        .route(RESTORE_DETAILS, get(restore_details))
        .route(SCHEDULES, get(list_schedules).post(create_schedule))
        .route(SCHEDULE, get(get_schedule).patch(patch_schedule).delete(delete_schedule))
        .route(BACKUP_REPOSITORIES, get(list_backup_repositories))
        .route(BACKUP_REPOSITORY, get(get_backup_repository))
        .route(BACKUP_REPOSITORY_PASSWORD, get(backup_repository_password))
        .route(BACKUP_REPOSITORY_MAINTENANCE, axum::routing::post(maintain_backup_repository))
        .fallback(|| async { ApiError::new(Reason::NotFound, "no such route; see /openapi.json") })
        .layer(axum::middleware::from_fn(catch_panic))
        .with_state(state)
}

/// `200 ok`, or `503` while the state cannot be written (a full disk): a liveness probe sees
/// it, and it answers `200` again by itself once a write succeeds.
async fn healthz(State(app): State<Arc<AppState>>) -> axum::response::Response {
    let health = app.coffer.state.health();
    if health.writable {
        "ok".into_response()
    } else {
        let why = health.last_error.unwrap_or_default();
        let message = format!("the server cannot write its state ({why}); it tries again every controller tick");
        (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
    }
}

/// Answers `500` for a request whose handler panicked (and logs why), instead of dropping the
/// connection: no panic reaches a client as a broken answer.
async fn catch_panic(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use futures_util::FutureExt;
    let route = format!("{} {}", request.method(), request.uri().path());
    match std::panic::AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
            tracing::error!(route, "a request's handler panicked: {what}");
            ApiError::new(Reason::InternalError, "internal error (logged on the server)").into_response()
        }
    }
}

fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(app): State<Arc<AppState>>| async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics::render(&app.coffer, &app.counters))
            }),
        )
        .with_state(state)
}

/// How a server runs.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Its controllers.
    pub controllers: controllers::Settings,
    /// Limits on the API's connections.
    pub connections: ConnectionLimits,
    /// Backups and restores at once.
    pub jobs: JobLimits,
}

/// Where the tenants' API is served.
pub enum ApiListener {
    /// Plain HTTP (loopback, or the operator said `--insecure-listen`).
    Plain(TcpListener),
    /// HTTPS.
    Tls(TlsListener),
}

/// The listeners a server serves on.
pub struct Listeners {
    /// The tenants' API.
    pub api: ApiListener,
    /// Prometheus metrics, for the operator.
    pub metrics: Option<TcpListener>,
    /// The operator's API (a Unix socket only its owner may open).
    pub admin: Option<tokio::net::UnixListener>,
}

/// Loads the plugins again whenever they change (added, replaced or removed in the plugin
/// directory or, for a shared state, by any process sharing it), every
/// [`REFRESH_PERIOD`](crate::plugins::REFRESH_PERIOD). A failure is logged when it first
/// happens, and the plugins loaded before stay in use.
async fn watch_plugins(coffer: &Coffer) {
    let mut failing: Option<String> = None;
    loop {
        tokio::time::sleep(crate::plugins::REFRESH_PERIOD).await;
        match coffer.registry.refresh(&coffer.sandbox, &coffer.state).await {
            Ok(changed) => {
                if changed {
                    tracing::info!(plugins = coffer.registry.list().len(), "the plugins changed: loaded them again");
                }
                failing = None;
            }
            Err(e) => {
                let message = e.to_string();
                if failing.as_ref() != Some(&message) {
                    tracing::warn!("could not look for changed plugins: {message}");
                }
                failing = Some(message);
            }
        }
    }
}

/// Runs the API, metrics, the operator's API and the controllers, until `shutdown`.
/// Backups and restores a crash left running are set straight first (see [`crate::controllers::recover_interrupted`]).
///
/// On a shared state every server serves the API and runs the backups and restores it
/// accepts, and the controllers run on one server at a time, the leader: another takes over
/// within a lease's time when it ends. A server whose lease lapses stops, with an error:
/// others may have taken over its work, and it writes nothing more.
pub async fn serve(
    coffer: Arc<Coffer>,
    listeners: Listeners,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // On a shared state the leader sets straight the runs of processes that are gone.
    if !coffer.state.is_shared() {
        let (backups, restores) = crate::controllers::recover_interrupted(&coffer, crate::controllers::Opener::Server, crate::controllers::Scan::All).await.map_err(std::io::Error::other)?;
        if backups + restores > 0 {
            tracing::warn!(backups, restores, "set straight backups and restores left InProgress by an earlier run");
        }
    }
    let lost = coffer.state.lost();
    let lead = coffer.state.lead();
    let member = coffer.state.member().map(str::to_owned);
    let jobs = Arc::new(Jobs::new(settings.jobs.clone(), 2)?);
    let controllers = Controllers::new(coffer.clone(), settings.controllers.clone(), jobs.clone());
    let state = Arc::new(AppState {
        coffer,
        default_snapshot_locations: settings.controllers.default_snapshot_locations,
        counters: controllers.counters(),
        failed_tokens: throttle::FailedTokens::default(),
        jobs,
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let controllers = {
        let stopping = wait();
        let run = controllers.run(wait());
        tokio::spawn(async move {
            tokio::select! {
                () = lead => {}
                () = stopping => return,
            }
            if let Some(member) = member {
                tracing::info!(member, "leading: this server runs the controllers");
            }
            run.await;
        })
    };
    // Every server, leading or not, runs the plugins as they are now.
    let watching = wait();
    let watched = state.coffer.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = watch_plugins(&watched) => {}
            () = watching => {}
        }
    });
    let admin = listeners
        .admin
        .map(|listener| tokio::spawn(axum::serve(listener, admin::router(state.coffer.clone())).with_graceful_shutdown(wait()).into_future()));
    let metrics = listeners.metrics.map(|listener| tokio::spawn(axum::serve(listener, metrics_router(state.clone())).with_graceful_shutdown(wait()).into_future()));
    let app = router(state);
    let limits = settings.connections.clone();
    let api = match listeners.api {
        ApiListener::Plain(listener) => tokio::spawn(connections::serve(listener, app, limits, wait())),
        ApiListener::Tls(listener) => tokio::spawn(connections::serve(listener, app, limits, wait())),
    };
    let lapsed = tokio::select! {
        () = shutdown => false,
        () = lost => true,
    };
    let _ = stop.send(true);
    api.await.map_err(std::io::Error::other)?;
    // The operator's listeners get the same grace as the API's (one more for the controllers,
    // which bound their own), and are then dropped with the runtime.
    let operator = async {
        for task in metrics.into_iter().chain(admin) {
            task.await.map_err(std::io::Error::other)??;
        }
        Ok::<_, std::io::Error>(())
    };
    match tokio::time::timeout(settings.connections.drain, operator).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!("stopped waiting for the operator's connections"),
    }
    controllers.await.map_err(std::io::Error::other)?;
    if lapsed {
        return Err(std::io::Error::other(
            "this server's lease in the shared state lapsed (it was paused or cut off from etcd for longer than the lease lasts): others may have taken over its work, so it stopped",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_server_goes_on() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(catch_panic));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        for (path, expected) in [("/boom", "500 Internal Server Error"), ("/fine", "200 OK")] {
            let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
            conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
            let mut answer = String::new();
            conn.read_to_string(&mut answer).await.unwrap();
            assert!(answer.starts_with(&format!("HTTP/1.1 {expected}")), "{path}: {answer}");
        }
    }
}
