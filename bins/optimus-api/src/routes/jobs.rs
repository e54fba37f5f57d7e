//! `POST /jobs`, `GET /jobs/{id}`, `DELETE /jobs/{id}`.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use optimus_common::store::{Caller, CancelOutcome, EnqueueOutcome};
use optimus_common::JobStatus;
use serde_json::json;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Json;
use crate::validate::{validate, JobRequest};
use crate::AppState;

/// Validates, stores and queues a job; `202 {"job_id", "status": "queued"}`.
pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<JobRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let (spec, lang) = validate(req, &state.registry, &state.settings.limits)?;
    state.memory.admit(&state).await?;
    let id = Uuid::new_v4();
    match state.store.enqueue(id, &spec, lang, &caller).await? {
        EnqueueOutcome::Queued => {}
        EnqueueOutcome::QueueFull => {
            return Err(ApiError::QueueFull { language: lang.name.clone(), depth: lang.max_queue_depth })
        }
        EnqueueOutcome::RateLimited { retry_after } => {
            let per_min = match &caller {
                Caller::Key { rate_per_min, .. } => *rate_per_min,
                Caller::Anonymous => 0,
            };
            return Err(ApiError::RateLimited { per_min, retry_after });
        }
        EnqueueOutcome::TooManyActive => {
            let max = match &caller {
                Caller::Key { max_active, .. } => *max_active,
                Caller::Anonymous => 0,
            };
            return Err(ApiError::TooManyActive { max });
        }
    }
    tracing::info!(job = %id, language = %lang.name, tests = spec.test_cases.len(), "job queued");
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "job_id": id, "status": JobStatus::Queued }))))
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::BadJobId(raw.to_string()))
}

/// The job, if it is the caller's (another key's job is a 404, as if it did not exist).
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&raw)?;
    let record = state.store.get(id, &caller).await?.ok_or(ApiError::JobNotFound(raw))?;
    Ok(axum::Json(record))
}

/// Cancels a job. Harmless to repeat; a finished job is left as it finished.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&raw)?;
    let (code, status, message) = match state.store.cancel(id, &caller).await? {
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
