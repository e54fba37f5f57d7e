//! `POST /jobs`, `GET /jobs` (the newest, filtered), `GET /jobs/{id}`, `DELETE /jobs/{id}`.

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use optimus_common::store::{Admission, Caller, CancelOutcome, EnqueueOutcome, ListCursor, Origin, Provenance};
use optimus_common::JobStatus;
use serde_json::json;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Json;
use crate::metrics::Refusal;
use crate::validate::{self, Draft, JobRequest, Refused};
use crate::AppState;

/// Validates, stores and queues a job; `202 {"job_id", "status": "queued"}`.
pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<JobRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let id = enqueue(&state, &caller, req).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "job_id": id, "status": JobStatus::Queued }))))
}

/// Validates a request of Optimus's own API and queues it as a new job of `caller`'s.
pub async fn enqueue(state: &AppState, caller: &Caller, req: JobRequest) -> Result<Uuid, ApiError> {
    let draft =
        validate::request::draft(req, &state.registry).inspect_err(|_| state.metrics.refused(Refusal::Invalid))?;
    let lang = draft.lang;
    let spec = accept(state, draft)?;
    queue(state, caller, spec, lang, None).await
}

/// Checks a draft from any API against the limits ([`validate::accept`]),
/// counting a refusal.
pub fn accept(state: &AppState, draft: Draft<'_>) -> Result<optimus_common::JobSpec, Refused> {
    validate::accept(draft, &state.settings.limits).inspect_err(|_| state.metrics.refused(Refusal::Invalid))
}

/// Queues an accepted job as a new job of `caller`'s, with its origin when it came
/// in through a compatible API. Every way in goes through here.
pub async fn queue(
    state: &AppState,
    caller: &Caller,
    spec: optimus_common::JobSpec,
    lang: &optimus_common::LanguageConfig,
    origin: Option<&Origin>,
) -> Result<Uuid, ApiError> {
    let metrics = &state.metrics;
    let id = Uuid::new_v4();
    let admission = Admission {
        quota: caller.quota().unwrap_or(state.api.anonymous_quota),
        memory_high_percent: state.api.redis_memory_high_percent,
    };
    let anonymous = caller.quota().is_none();
    // The job's trace starts here; its worker continues it from the traceparent.
    let span = tracing::info_span!("submit", job_id = %id, language = %lang.name, mode = spec.mode.as_str());
    let traceparent = optimus_common::telemetry::traceparent(&span);
    let store = state.store.enqueue_from(
        id,
        &spec,
        lang,
        caller,
        &admission,
        Provenance { origin, traceparent: traceparent.as_deref() },
    );
    let queued = tracing::Instrument::instrument(store, span).await.map_err(|e| match e {
        // Redis refused the write for want of memory (the script's own check
        // is off, or the mark is set too high): nothing was written.
        optimus_common::StoreError::Redis(r) if r.code() == Some("OOM") => {
            metrics.refused(Refusal::StorageFull);
            ApiError::StorageFull("Redis is at its maxmemory".into())
        }
        other => {
            metrics.refused(Refusal::StorageUnavailable);
            metrics.redis_errors.inc();
            ApiError::Store(other)
        }
    })?;
    let refusal = match queued {
        EnqueueOutcome::Queued => None,
        EnqueueOutcome::QueueFull => Some(Refusal::QueueFull),
        EnqueueOutcome::RateLimited { .. } => Some(Refusal::RateLimited),
        EnqueueOutcome::TooManyActive { .. } => Some(Refusal::TooManyActive),
        EnqueueOutcome::OverQuota { .. } | EnqueueOutcome::TooLarge { .. } => Some(Refusal::OverQuota),
        EnqueueOutcome::StorageFull { .. } => Some(Refusal::StorageFull),
    };
    match refusal {
        Some(why) => metrics.refused(why),
        None => metrics.submitted(&lang.name),
    }
    match queued {
        EnqueueOutcome::Queued => {}
        EnqueueOutcome::QueueFull => {
            return Err(ApiError::QueueFull { language: lang.name.clone(), depth: lang.max_queue_depth })
        }
        EnqueueOutcome::RateLimited { retry_after } => {
            let per_min = match caller {
                Caller::Key { rate_per_min, .. } => *rate_per_min,
                Caller::Anonymous => 0,
            };
            return Err(ApiError::RateLimited { per_min, retry_after });
        }
        EnqueueOutcome::TooManyActive { max } => return Err(ApiError::TooManyActive { max, anonymous }),
        EnqueueOutcome::OverQuota { needed, max_bytes, retry_after } => {
            return Err(ApiError::OverQuota { needed, max_bytes, retry_after, anonymous })
        }
        EnqueueOutcome::TooLarge { needed, max_bytes } => {
            return Err(ApiError::JobOverQuota { needed, max_bytes, anonymous })
        }
        EnqueueOutcome::StorageFull { used } => {
            return Err(ApiError::StorageFull(format!(
                "Redis uses {used} bytes, {} % of its maxmemory or more with this job",
                state.api.redis_memory_high_percent
            )))
        }
    }
    tracing::info!(job = %id, language = %lang.name, tests = spec.test_cases.len(), "job queued");
    Ok(id)
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

/// How many jobs `GET /jobs` lists when not told, and at most.
const LIST_DEFAULT: usize = 20;
const LIST_MAX: usize = 100;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<usize>,
    status: Option<String>,
    language: Option<String>,
    cursor: Option<String>,
}

/// `GET /jobs?limit=&status=&language=&cursor=`: the caller's newest jobs, newest
/// first, with their summaries (no specs, no test bodies), from the caller's own
/// index of its last 10,000 jobs (and that of jobs of no one). `next`, when there
/// may be more, is the `cursor` of the next page.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::invalid("invalid_query", format!("{}; accepted: limit, status, language, cursor", e.body_text()))
    })?;
    let limit = q.limit.unwrap_or(LIST_DEFAULT);
    if !(1..=LIST_MAX).contains(&limit) {
        return Err(ApiError::invalid("limit_out_of_range", format!("limit must be from 1 to {LIST_MAX}")));
    }
    let status = q
        .status
        .as_deref()
        .map(|s| {
            JobStatus::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "invalid_status",
                    format!("'{s}' is not a status: queued, running, completed, failed, cancelled"),
                )
            })
        })
        .transpose()?;
    if let Some(lang) = q.language.as_deref() {
        if state.registry.find(lang).is_none() {
            return Err(ApiError::invalid(
                "unknown_language",
                format!("'{lang}' is not a language here; languages: {}", state.registry.names()),
            ));
        }
    }
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| {
            ListCursor::parse(c).ok_or_else(|| {
                ApiError::invalid("invalid_cursor", format!("'{c}' is not a cursor: pass a page's `next` as it came"))
            })
        })
        .transpose()?;
    let page = state.store.recent(&caller, limit, status, q.language.as_deref(), cursor.as_ref()).await?;
    Ok(axum::Json(json!({ "jobs": page.jobs, "next": page.next.map(|c| c.to_string()) })))
}
