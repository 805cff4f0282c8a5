//! The tenants' routes: a thin adapter from HTTP to [`TenantApi`] on the engine. Each handler
//! takes the [`Calls`] of the token's tenant and answers with what the call returned; creating
//! a backup or restore answers `202 Accepted` while it runs on, as Velero's controllers do.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use super::auth::Calls;
use super::error::ApiError;
use crate::api::{BackupStorageLocationPatch, PasswordBody, SchedulePatch, SecretBody, TenantApi, VolumeSnapshotLocationPatch};
use crate::backup::{BackupDetails, RestoreDetails};
use crate::fsb::BackupRepository;
use crate::model::{Backup, BackupStorageLocation, Phase, Restore, VolumeSnapshotLocation};
use crate::schedules::Schedule;
use crate::secrets::SecretSummary;

type Answer<T> = Result<Json<T>, ApiError>;
type Created<T> = Result<(StatusCode, Json<T>), ApiError>;

fn created<T>(object: T) -> Created<T> {
    Ok((StatusCode::CREATED, Json(object)))
}

/// `201` for a run that ended at once (refused), `202` for one that runs on.
fn accepted<T>(object: T, phase: Option<Phase>) -> Created<T> {
    let status = if phase.is_some_and(Phase::is_running) { StatusCode::ACCEPTED } else { StatusCode::CREATED };
    Ok((status, Json(object)))
}

fn deleted(done: Result<(), ApiError>) -> Result<StatusCode, ApiError> {
    done.map(|()| StatusCode::NO_CONTENT)
}

fn text(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response()
}

/// `?default=true` on a list.
#[derive(Debug, Deserialize)]
pub struct DefaultOnly {
    #[serde(default)]
    default: bool,
}

/// The tenant the token acts as.
pub async fn whoami(Calls(t): Calls) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "tenant": t.tenant().namespace() }))
}

/// Lists backup storage locations with their last known status (the controllers validate
/// them; a read never waits on a location's endpoint).
pub async fn list_bsls(Calls(t): Calls, Query(q): Query<DefaultOnly>) -> Answer<Vec<BackupStorageLocation>> {
    Ok(Json(t.list_backup_storage_locations(q.default).await?))
}

/// One backup storage location.
pub async fn get_bsl(Calls(t): Calls, Path(name): Path<String>) -> Answer<BackupStorageLocation> {
    Ok(Json(t.get_backup_storage_location(&name).await?))
}

/// Creates a backup storage location.
pub async fn create_bsl(Calls(t): Calls, Json(object): Json<BackupStorageLocation>) -> Created<BackupStorageLocation> {
    created(t.create_backup_storage_location(object).await?)
}

/// Changes a backup storage location.
pub async fn patch_bsl(Calls(t): Calls, Path(name): Path<String>, Json(patch): Json<BackupStorageLocationPatch>) -> Answer<BackupStorageLocation> {
    Ok(Json(t.change_backup_storage_location(&name, patch).await?))
}

/// Deletes a backup storage location.
pub async fn delete_bsl(Calls(t): Calls, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    deleted(t.delete_backup_storage_location(&name).await)
}

/// Lists volume snapshot locations.
pub async fn list_vsls(Calls(t): Calls) -> Answer<Vec<VolumeSnapshotLocation>> {
    Ok(Json(t.list_volume_snapshot_locations().await?))
}

/// One volume snapshot location.
pub async fn get_vsl(Calls(t): Calls, Path(name): Path<String>) -> Answer<VolumeSnapshotLocation> {
    Ok(Json(t.get_volume_snapshot_location(&name).await?))
}

/// Creates a volume snapshot location.
pub async fn create_vsl(Calls(t): Calls, Json(object): Json<VolumeSnapshotLocation>) -> Created<VolumeSnapshotLocation> {
    created(t.create_volume_snapshot_location(object).await?)
}

/// Changes a volume snapshot location's credential.
pub async fn patch_vsl(Calls(t): Calls, Path(name): Path<String>, Json(patch): Json<VolumeSnapshotLocationPatch>) -> Answer<VolumeSnapshotLocation> {
    Ok(Json(t.change_volume_snapshot_location(&name, patch).await?))
}

/// Deletes a volume snapshot location.
pub async fn delete_vsl(Calls(t): Calls, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    deleted(t.delete_volume_snapshot_location(&name).await)
}

/// Lists secrets (names and keys).
pub async fn list_secrets(Calls(t): Calls) -> Answer<Vec<SecretSummary>> {
    Ok(Json(t.list_secrets().await?))
}

/// One secret (name and keys).
pub async fn get_secret(Calls(t): Calls, Path(name): Path<String>) -> Answer<SecretSummary> {
    Ok(Json(t.get_secret(&name).await?))
}

/// Creates a secret.
pub async fn create_secret(Calls(t): Calls, Json(body): Json<SecretBody>) -> Created<SecretSummary> {
    created(t.create_secret(body).await?)
}

/// Sets keys of a secret.
pub async fn put_secret(Calls(t): Calls, Path(name): Path<String>, Json(body): Json<SecretBody>) -> Answer<SecretSummary> {
    Ok(Json(t.replace_secret(&name, body).await?))
}

/// Deletes a secret.
pub async fn delete_secret(Calls(t): Calls, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    deleted(t.delete_secret(&name).await)
}

/// Lists backups.
pub async fn list_backups(Calls(t): Calls) -> Answer<Vec<Backup>> {
    Ok(Json(t.list_backups().await?))
}

/// One backup.
pub async fn get_backup(Calls(t): Calls, Path(name): Path<String>) -> Answer<Backup> {
    Ok(Json(t.get_backup(&name).await?))
}

/// Creates a backup; it runs on after the answer.
pub async fn create_backup(Calls(t): Calls, Json(object): Json<Backup>) -> Created<Backup> {
    let backup = t.create_backup(object, None).await?;
    let phase = backup.status.phase;
    accepted(backup, phase)
}

/// Deletes a backup with its objects, snapshots and restores.
pub async fn delete_backup(Calls(t): Calls, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    deleted(t.delete_backup(&name).await)
}

/// A backup's log.
pub async fn backup_logs(Calls(t): Calls, Path(name): Path<String>) -> Result<Response, ApiError> {
    Ok(text(t.backup_log(&name).await?))
}

/// A backup's resource list and snapshot records.
pub async fn backup_details(Calls(t): Calls, Path(name): Path<String>) -> Answer<BackupDetails> {
    Ok(Json(t.backup_details(&name).await?))
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
pub async fn download_backup(Calls(t): Calls, Path(name): Path<String>) -> Result<Response, ApiError> {
    let download = t.download_backup(&name).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let ns = t.tenant().namespace().to_owned();
    tokio::spawn(async move {
        let failed = tx.clone();
        if let Err(e) = download.write_to(Box::new(ChannelWriter(tx))).await {
            tracing::warn!(namespace = %ns, backup = %name, "download failed: {e}");
            let _ = failed.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/gzip")], Body::new(ChannelBody(rx))).into_response())
}

/// Lists restores.
pub async fn list_restores(Calls(t): Calls) -> Answer<Vec<Restore>> {
    Ok(Json(t.list_restores().await?))
}

/// One restore.
pub async fn get_restore(Calls(t): Calls, Path(name): Path<String>) -> Answer<Restore> {
    Ok(Json(t.get_restore(&name).await?))
}

/// Creates a restore; it runs on after the answer.
pub async fn create_restore(Calls(t): Calls, Json(object): Json<Restore>) -> Created<Restore> {
    let restore = t.create_restore(object, None).await?;
    let phase = restore.status.phase;
    accepted(restore, phase)
}

/// A restore's log.
pub async fn restore_logs(Calls(t): Calls, Path(name): Path<String>) -> Result<Response, ApiError> {
    Ok(text(t.restore_log(&name).await?))
}

/// `GET /v1/restores/{name}/details`.
pub async fn restore_details(Calls(t): Calls, Path(name): Path<String>) -> Answer<RestoreDetails> {
    Ok(Json(t.restore_details(&name).await?))
}

/// Lists schedules.
pub async fn list_schedules(Calls(t): Calls) -> Answer<Vec<Schedule>> {
    Ok(Json(t.list_schedules().await?))
}

/// One schedule.
pub async fn get_schedule(Calls(t): Calls, Path(name): Path<String>) -> Answer<Schedule> {
    Ok(Json(t.get_schedule(&name).await?))
}

/// Creates a schedule.
pub async fn create_schedule(Calls(t): Calls, Json(object): Json<Schedule>) -> Created<Schedule> {
    created(t.create_schedule(object).await?)
}

/// Pauses or unpauses a schedule.
pub async fn patch_schedule(Calls(t): Calls, Path(name): Path<String>, Json(patch): Json<SchedulePatch>) -> Answer<Schedule> {
    Ok(Json(t.change_schedule(&name, patch).await?))
}

/// Deletes a schedule (its backups stay).
pub async fn delete_schedule(Calls(t): Calls, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    deleted(t.delete_schedule(&name).await)
}

/// Lists backup repositories.
pub async fn list_backup_repositories(Calls(t): Calls) -> Answer<Vec<BackupRepository>> {
    Ok(Json(t.list_backup_repositories().await?))
}

/// One backup repository.
pub async fn get_backup_repository(Calls(t): Calls, Path(name): Path<String>) -> Answer<BackupRepository> {
    Ok(Json(t.get_backup_repository(&name).await?))
}

/// The password that opens a backup repository.
pub async fn backup_repository_password(Calls(t): Calls, Path(name): Path<String>) -> Answer<PasswordBody> {
    let password = t.backup_repository_password(&name).await?;
    Ok(Json(PasswordBody { password: String::from_utf8_lossy(password.expose()).into_owned() }))
}

/// Maintains a backup repository now.
pub async fn maintain_backup_repository(Calls(t): Calls, Path(name): Path<String>) -> Answer<BackupRepository> {
    Ok(Json(t.maintain_backup_repository(&name).await?))
}
