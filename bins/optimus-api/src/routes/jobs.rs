//! `POST /jobs`, `GET /jobs/{id}`, `DELETE /jobs/{id}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use optimus_common::store::CancelOutcome;
use optimus_common::JobStatus;
use serde_json::json;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Json;
use crate::validate::{validate, JobRequest};
use crate::AppState;

/// Validates, stores and queues a job; `202 {"job_id", "status": "queued"}`.
pub async fn submit(State(state): State<AppState>, Json(req): Json<JobRequest>) -> Result<impl IntoResponse, ApiError> {
    let (spec, lang) = validate(req, &state.registry, &state.settings.limits)?;
    let id = Uuid::new_v4();
    if !state.store.enqueue(id, &spec, &lang.queue, lang.max_queue_depth).await? {
        return Err(ApiError::QueueFull { language: lang.name.clone(), depth: lang.max_queue_depth });
    }
    tracing::info!(job = %id, language = %lang.name, tests = spec.test_cases.len(), "job queued");
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "job_id": id, "status": JobStatus::Queued }))))
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::BadJobId(raw.to_string()))
}

pub async fn get(State(state): State<AppState>, Path(raw): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&raw)?;
    let record = state.store.get(id).await?.ok_or(ApiError::JobNotFound(raw))?;
    Ok(axum::Json(record))
}

/// Cancels a job. Harmless to repeat; a finished job is left as it finished.
pub async fn cancel(State(state): State<AppState>, Path(raw): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&raw)?;
    let (code, status, message) = match state.store.cancel(id).await? {
        CancelOutcome::Missing => return Err(ApiError::JobNotFound(raw)),
        CancelOutcome::Cancelled => (StatusCode::OK, JobStatus::Cancelled, "job cancelled before it ran".to_string()),
        CancelOutcome::Cancelling => (
            StatusCode::ACCEPTED,
            JobStatus::Running,
            "job is running; its worker stops it and it ends 'cancelled'".to_string(),
        ),
        CancelOutcome::AlreadyFinished(JobStatus::Cancelled) => {
            (StatusCode::OK, JobStatus::Cancelled, "job was already cancelled".to_string())
        }
        CancelOutcome::AlreadyFinished(done) => {
            (StatusCode::OK, done, format!("job already finished as '{}'; nothing to cancel", done.as_str()))
        }
    };
    tracing::info!(job = %id, status = status.as_str(), "cancel requested");
    Ok((code, axum::Json(json!({ "job_id": id, "status": status, "message": message }))))
}
