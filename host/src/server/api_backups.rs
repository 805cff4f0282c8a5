//! `/v1/backups` and `/v1/restores`. Creating one records it and answers `202 Accepted`
//! while the work goes on in the background, as Velero's controllers do; its progress is
//! stored as it advances, so a client polls the record.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::AppState;
use super::auth::Tenant;
use super::error::ApiError;
use crate::backup::{
    self, Accepted, BackupDetails, BackupRequest, RestoreRequest, SOURCE_ANNOTATION, TARGET_ANNOTATION,
};
use crate::coffer::Coffer;
use crate::model::{Backup, Phase, Progress, Restore};

type Api<T> = Result<Json<T>, ApiError>;

/// The path annotation `key` of an object names, relative to the tenant's directory on the
/// server: `what` says what it is for. Checked here for a clear answer; the library resolves
/// it beneath the tenant's directory again each time it is used.
pub(super) fn annotated_path(
    app: &AppState,
    ns: &str,
    annotations: &std::collections::BTreeMap<String, String>,
    key: &str,
    what: &str,
) -> Result<std::path::PathBuf, ApiError> {
    let paths = app
        .coffer
        .path_root(ns)
        .map_err(|e| ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: format!("tenant directory: {e}") })?;
    let relative = annotations
        .get(key)
        .ok_or_else(|| ApiError::bad_request(format!("metadata.annotations[{key:?}] is required: {what}, relative to the tenant's directory")))?;
    let path = std::path::PathBuf::from(relative);
    paths.check(key, &path).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(paths.recorded(&path))
}

/// How often at most a run's progress is written to the state (each write is a durable
/// transaction that every tenant's requests queue behind).
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Stores a run's progress in its record when the percentage has changed, at most every
/// [`PROGRESS_INTERVAL`] (and always at 100%); the run's end is recorded by the run itself.
fn recorder<T: crate::state::Resource + Send + 'static>(
    coffer: Arc<Coffer>,
    ns: String,
    name: String,
    set: fn(&mut T, &Progress),
) -> impl FnMut(&Progress) + Send {
    let mut last = u64::MAX;
    let mut written: Option<std::time::Instant> = None;
    move |p: &Progress| {
        let percent = p.percent();
        let recent = written.is_some_and(|at| at.elapsed() < PROGRESS_INTERVAL);
        if percent == last || (recent && percent < 100) {
            return;
        }
        last = percent;
        written = Some(std::time::Instant::now());
        let stored = coffer.state.write(|txn| {
            if let Some(mut object) = txn.get::<T>(&ns, &name)? {
                set(&mut object, p);
                txn.put(&object)?;
            }
            Ok::<_, crate::state::StateError>(())
        });
        if let Err(e) = stored {
            tracing::warn!(namespace = %ns, name = %name, "could not record progress: {e}");
        }
    }
}

/// Lists the tenant's backups.
pub async fn list_backups(State(app): State<Arc<AppState>>, Tenant(ns): Tenant) -> Api<Vec<Backup>> {
    Ok(Json(backup::list_backups(&app.coffer, &ns)?))
}

/// One backup.
pub async fn get_backup(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Api<Backup> {
    Ok(Json(backup::get_backup(&app.coffer, &ns, &name)?))
}

/// Creates a backup from a Backup object whose `coffer.io/source-directory` annotation names
/// a directory of manifests inside the tenant's directory.
pub async fn create_backup(
    State(app): State<Arc<AppState>>,
    Tenant(ns): Tenant,
    Json(object): Json<Backup>,
) -> Result<(StatusCode, Json<Backup>), ApiError> {
    let source = annotated_path(&app, &ns, &object.metadata.annotations, SOURCE_ANNOTATION, "the manifest directory")?;
    let request = BackupRequest {
        name: object.metadata.meta.name.clone(),
        source,
        spec: object.spec,
        labels: object.metadata.meta.labels,
        default_snapshot_locations: app.default_snapshot_locations.clone(),
    };
    match backup::accept_backup(&app.coffer, &ns, request)? {
        Accepted::Refused(b) => Ok((StatusCode::CREATED, Json(*b))),
        Accepted::Started(run) => {
            let record = run.backup().clone();
            let coffer = app.coffer.clone();
            let name = record.metadata.meta.name.clone();
            app.jobs.spawn(ns.clone(), async move {
                let set: fn(&mut Backup, &Progress) = |b, p| b.status.progress = Some(p.clone());
                let mut progress = recorder(coffer.clone(), ns.clone(), name.clone(), set);
                match run.run(&coffer, &mut progress).await {
                    Ok(b) => tracing::info!(namespace = %ns, backup = %name, phase = ?b.status.phase, "backup finished"),
                    Err(e) => tracing::error!(namespace = %ns, backup = %name, "backup could not be recorded: {e}"),
                }
            });
            Ok((StatusCode::ACCEPTED, Json(record)))
        }
    }
}

/// Deletes a backup with its objects, snapshots and restores.
pub async fn delete_backup(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    backup::delete_backup(&app.coffer, &ns, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn text(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response()
}

/// A backup's log.
pub async fn backup_logs(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Result<Response, ApiError> {
    Ok(text(backup::backup_log(&app.coffer, &ns, &name).await?))
}

/// A backup's resource list and snapshot records.
pub async fn backup_details(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Api<BackupDetails> {
    Ok(Json(backup::backup_details(&app.coffer, &ns, &name).await?))
}

/// Sends what is written to it down a channel, as a response body's frames.
struct ChannelWriter(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Runs on a blocking thread (the sandbox's sink writer).
        self.0.blocking_send(Ok(Bytes::copy_from_slice(buf))).map_err(|_| std::io::Error::other("the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A response body read from a channel; an error item aborts the response.
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|item| item.map(|r| r.map(http_body::Frame::data)))
    }
}

/// Streams a completed backup's tarball. A failure midway aborts the response, so a client
/// never mistakes a truncated tarball for a whole one.
pub async fn download_backup(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Result<Response, ApiError> {
    backup::downloadable(&app.coffer, &ns, &name)?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let coffer = app.coffer.clone();
    tokio::spawn(async move {
        let failed = tx.clone();
        if let Err(e) = backup::download_backup(&coffer, &ns, &name, ChannelWriter(tx)).await {
            tracing::warn!(namespace = %ns, backup = %name, "download failed: {e}");
            let _ = failed.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/gzip")], Body::new(ChannelBody(rx))).into_response())
}

/// Lists the tenant's restores.
pub async fn list_restores(State(app): State<Arc<AppState>>, Tenant(ns): Tenant) -> Api<Vec<Restore>> {
    Ok(Json(backup::list_restores(&app.coffer, &ns)?))
}

/// One restore.
pub async fn get_restore(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Api<Restore> {
    Ok(Json(backup::get_restore(&app.coffer, &ns, &name)?))
}

/// Creates a restore from a Restore object whose `coffer.io/target-directory` annotation
/// names an empty or new directory inside the tenant's directory.
pub async fn create_restore(
    State(app): State<Arc<AppState>>,
    Tenant(ns): Tenant,
    Json(object): Json<Restore>,
) -> Result<(StatusCode, Json<Restore>), ApiError> {
    let target = annotated_path(&app, &ns, &object.metadata.annotations, TARGET_ANNOTATION, "the directory to restore into")?;
    let request = RestoreRequest {
        name: object.metadata.meta.name.clone(),
        backup: object.spec.backup_name,
        target,
        restore_volumes: object.spec.restore_p_vs,
    };
    let restore = backup::accept_restore(&app.coffer, &ns, &request)?;
    if restore.status.phase != Some(Phase::InProgress) {
        return Ok((StatusCode::CREATED, Json(restore)));
    }
    let coffer = app.coffer.clone();
    let record = restore.clone();
    app.jobs.spawn(ns.clone(), async move {
        let name = request.name.clone();
        let set: fn(&mut Restore, &Progress) = |r, p| r.status.progress = Some(p.into());
        let mut progress = recorder(coffer.clone(), ns.clone(), name.clone(), set);
        if let Err(e) = backup::run_restore(&coffer, &ns, request, restore, &mut progress).await {
            tracing::error!(namespace = %ns, restore = %name, "restore could not be recorded: {e}");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(record)))
}

/// A restore's log.
pub async fn restore_logs(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Result<Response, ApiError> {
    Ok(text(backup::restore_log(&app.coffer, &ns, &name).await?))
}
