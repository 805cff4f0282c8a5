//! `/v1/schedules`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::api_backups::annotated_path;
use super::auth::Tenant;
use super::error::ApiError;
use crate::api::SchedulePatch;
use crate::schedules::{self, NewSchedule, SOURCE_ANNOTATION, Schedule};

type Api<T> = Result<Json<T>, ApiError>;

/// Lists the tenant's schedules.
pub async fn list_schedules(State(app): State<Arc<AppState>>, Tenant(ns): Tenant) -> Api<Vec<Schedule>> {
    Ok(Json(schedules::get_schedules(&app.coffer, &ns, &[])?))
}

/// One schedule.
pub async fn get_schedule(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Api<Schedule> {
    Ok(Json(schedules::get_schedules(&app.coffer, &ns, &[name])?.remove(0)))
}

/// Creates a schedule from a Schedule object whose `coffer.io/source-directory` annotation
/// names the manifest directory inside the tenant's directory.
pub async fn create_schedule(
    State(app): State<Arc<AppState>>,
    Tenant(ns): Tenant,
    Json(object): Json<Schedule>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    let source = annotated_path(&app, &ns, &object.metadata.annotations, SOURCE_ANNOTATION, "the manifest directory")?;
    let new = NewSchedule {
        name: object.metadata.meta.name,
        schedule: object.spec.schedule,
        template: object.spec.template,
        source,
        labels: object.metadata.meta.labels,
        paused: object.spec.paused,
        skip_immediately: object.spec.skip_immediately == Some(true),
    };
    Ok((StatusCode::CREATED, Json(schedules::create_schedule(&app.coffer, &ns, new)?)))
}

/// Pauses or unpauses a schedule.
pub async fn patch_schedule(
    State(app): State<Arc<AppState>>,
    Tenant(ns): Tenant,
    Path(name): Path<String>,
    Json(patch): Json<SchedulePatch>,
) -> Api<Schedule> {
    Ok(Json(schedules::pause_schedule(&app.coffer, &ns, &name, patch.paused)?))
}

/// Deletes a schedule (its backups stay).
pub async fn delete_schedule(State(app): State<Arc<AppState>>, Tenant(ns): Tenant, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    schedules::delete_schedules(&app.coffer, &ns, &[name])?;
    Ok(StatusCode::NO_CONTENT)
}
