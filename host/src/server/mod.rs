//! `coffer server`: the HTTP JSON API (documented in `openapi.json`, served at
//! `/openapi.json`) over the same engine the CLI uses, with the controllers running beside it.
//!
//! Tenants are namespaces. Every API route acts as the tenant its bearer token belongs to
//! (see [`crate::tenants`]); no route takes a namespace from the request, so a tenant cannot
//! name another's objects. Paths a tenant gives are inside its own directory. Metrics are on
//! a separate listener for the operator.

mod admin;
mod api_backups;
mod api_locations;
mod api_schedules;
mod api_secrets;
mod auth;
mod error;
mod metrics;
mod paths;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

pub use admin::{ADMIN_SOCKET, CreatedToken, NewToken, QuotaBody};
pub use api_secrets::{SecretBody, SecretName};
pub use auth::Tenant;
pub use error::ApiError;

use crate::coffer::Coffer;
use crate::controllers::{Controllers, Counters, Settings};

/// The API's OpenAPI document.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What the handlers share.
pub struct AppState {
    /// The engine.
    pub coffer: Arc<Coffer>,
    /// `--default-volume-snapshot-locations`.
    pub default_snapshot_locations: BTreeMap<String, String>,
    /// What the controllers did, for metrics.
    pub counters: Arc<Counters>,
}

/// The API's routes.
pub fn router(state: Arc<AppState>) -> Router {
    use api_backups::*;
    use api_locations::*;
    use api_schedules::*;
    use api_secrets::*;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .route("/v1/whoami", get(|Tenant(ns): Tenant| async move { axum::Json(serde_json::json!({ "tenant": ns })) }))
        .route("/v1/backup-storage-locations", get(list_bsls).post(create_bsl))
        .route("/v1/backup-storage-locations/{name}", get(get_bsl).patch(patch_bsl).delete(delete_bsl))
        .route("/v1/volume-snapshot-locations", get(list_vsls).post(create_vsl))
        .route("/v1/volume-snapshot-locations/{name}", get(get_vsl).patch(patch_vsl).delete(delete_vsl))
        .route("/v1/secrets", get(list_secrets).post(create_secret))
        .route("/v1/secrets/{name}", get(get_secret).put(put_secret).delete(delete_secret))
        .route("/v1/backups", get(list_backups).post(create_backup))
        .route("/v1/backups/{name}", get(get_backup).delete(delete_backup))
        .route("/v1/backups/{name}/logs", get(backup_logs))
        .route("/v1/backups/{name}/details", get(backup_details))
        .route("/v1/backups/{name}/download", get(download_backup))
        .route("/v1/restores", get(list_restores).post(create_restore))
        .route("/v1/restores/{name}", get(get_restore))
        .route("/v1/restores/{name}/logs", get(restore_logs))
        .route("/v1/schedules", get(list_schedules).post(create_schedule))
        .route("/v1/schedules/{name}", get(get_schedule).patch(patch_schedule).delete(delete_schedule))
        .fallback(|| async { ApiError { status: StatusCode::NOT_FOUND, message: "no such route; see /openapi.json".into() } })
        .with_state(state)
}

fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(app): State<Arc<AppState>>| async move {
                match metrics::render(&app.coffer, &app.counters) {
                    Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
                    Err(e) => ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: e.to_string() }.into_response(),
                }
            }),
        )
        .with_state(state)
}

/// The listeners a server serves on.
pub struct Listeners {
    /// The tenants' API.
    pub api: TcpListener,
    /// Prometheus metrics, for the operator.
    pub metrics: Option<TcpListener>,
    /// The operator's API (a Unix socket only its owner may open).
    pub admin: Option<tokio::net::UnixListener>,
}

/// Runs the API, metrics, the operator's API and the controllers, until `shutdown`.
/// Backups and restores a crash left running are marked Failed first.
pub async fn serve(
    coffer: Arc<Coffer>,
    listeners: Listeners,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (backups, restores) = crate::controllers::fail_interrupted(&coffer).map_err(std::io::Error::other)?;
    if backups + restores > 0 {
        tracing::warn!(backups, restores, "marked backups and restores left InProgress by an earlier run as Failed");
    }
    let controllers = Controllers::new(coffer.clone(), settings.clone());
    let state = Arc::new(AppState { coffer, default_snapshot_locations: settings.default_snapshot_locations, counters: controllers.counters() });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let controllers = tokio::spawn(controllers.run(wait()));
    let admin = listeners
        .admin
        .map(|listener| tokio::spawn(axum::serve(listener, admin::router(state.coffer.clone())).with_graceful_shutdown(wait()).into_future()));
    let metrics = listeners.metrics.map(|listener| tokio::spawn(axum::serve(listener, metrics_router(state.clone())).with_graceful_shutdown(wait()).into_future()));
    let api = tokio::spawn(axum::serve(listeners.api, router(state)).with_graceful_shutdown(wait()).into_future());
    shutdown.await;
    let _ = stop.send(true);
    api.await.map_err(std::io::Error::other)??;
    for task in metrics.into_iter().chain(admin) {
        task.await.map_err(std::io::Error::other)??;
    }
    controllers.await.map_err(std::io::Error::other)?;
    Ok(())
}
