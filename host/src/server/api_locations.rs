//! `/v1/backup-storage-locations` and `/v1/volume-snapshot-locations`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::auth::Tenant;
use super::error::ApiError;
use crate::locations::{
    self, BackupStorageLocationChange, NewBackupStorageLocation, NewVolumeSnapshotLocation, Selection,
};
use crate::api::{BackupStorageLocationPatch, VolumeSnapshotLocationPatch};
use crate::model::{BackupStorageLocation, VolumeSnapshotLocation};

type Api<T> = Result<Json<T>, ApiError>;

/// `?default=true` on a list.
#[derive(Debug, Deserialize)]
pub struct DefaultOnly {
    #[serde(default)]
    default: bool,
}

/// Lists the tenant's backup storage locations with their last known status (the
/// controllers validate them; a read never waits on a location's endpoint).
pub async fn list_bsls(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Query(q): Query<DefaultOnly>) -> Api<Vec<BackupStorageLocation>> {
    Ok(Json(locations::get_backup_storage_locations(&app.coffer, &ns, &[], q.default)?))
}

/// One backup storage location, with its last known status.
pub async fn get_bsl(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Api<BackupStorageLocation> {
    let mut found = locations::get_backup_storage_locations(&app.coffer, &ns, &[name], false)?;
    Ok(Json(found.remove(0)))
}

/// Creates a backup storage location from a BackupStorageLocation object.
pub async fn create_bsl(
    State(app): State<Arc<AppState>>,
    Tenant(ns): Tenant,
    Json(object): Json<BackupStorageLocation>,
) -> Result<(StatusCode, Json<BackupStorageLocation>), ApiError> {
    let new = NewBackupStorageLocation::from_object(object)?;
    Ok((StatusCode::CREATED, Json(locations::create_backup_storage_location(&app.coffer, &ns, new).await?)))
}

/// Changes a backup storage location's default flag, credential or CA bundle.
pub async fn patch_bsl(
    State(app): State<Arc<AppState>>,
    Tenant(ns): Tenant,
    Path(name): Path<String>,
    Json(patch): Json<BackupStorageLocationPatch>,
) -> Api<BackupStorageLocation> {
    let change = BackupStorageLocationChange::try_from(patch).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(locations::set_backup_storage_location(&app.coffer, &ns, &name, change).await?))
}

/// Deletes a backup storage location (its objects stay).
pub async fn delete_bsl(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    locations::delete_backup_storage_locations(&app.coffer, &ns, &Selection::Names(vec![name]))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists the tenant's volume snapshot locations.
pub async fn list_vsls(State(app): State<Arc<AppState>>, Tenant(ns): Tenant) -> Api<Vec<VolumeSnapshotLocation>> {
    Ok(Json(locations::get_volume_snapshot_locations(&app.coffer, &ns, &[])?))
}

/// One volume snapshot location.
pub async fn get_vsl(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Api<VolumeSnapshotLocation> {
    Ok(Json(locations::get_volume_snapshot_locations(&app.coffer, &ns, &[name])?.remove(0)))
}

/// Creates a volume snapshot location from a VolumeSnapshotLocation object.
pub async fn create_vsl(
    State(app): State<Arc<AppState>>,
    Tenant(ns): Tenant,
    Json(object): Json<VolumeSnapshotLocation>,
) -> Result<(StatusCode, Json<VolumeSnapshotLocation>), ApiError> {
    let new = NewVolumeSnapshotLocation::from_object(object);
    Ok((StatusCode::CREATED, Json(locations::create_volume_snapshot_location(&app.coffer, &ns, new).await?)))
}

/// Changes a volume snapshot location's credential.
pub async fn patch_vsl(
    State(app): State<Arc<AppState>>,
    Tenant(ns): Tenant,
    Path(name): Path<String>,
    Json(patch): Json<VolumeSnapshotLocationPatch>,
) -> Api<VolumeSnapshotLocation> {
    Ok(Json(locations::set_volume_snapshot_location(&app.coffer, &ns, &name, patch.credential).await?))
}

/// Deletes a volume snapshot location (snapshots stay).
pub async fn delete_vsl(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    locations::delete_volume_snapshot_locations(&app.coffer, &ns, &Selection::Names(vec![name]))?;
    Ok(StatusCode::NO_CONTENT)
}
