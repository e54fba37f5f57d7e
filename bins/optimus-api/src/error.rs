//! Every way a request can fail, and the one mapping of them to HTTP.
//!
//! Answers are `{"error": {"code": "...", "message": "..."}}`. User errors say what
//! was wrong and what is accepted; platform errors say only that the platform
//! failed, and the cause goes to the log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use optimus_common::StoreError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not the JSON a route takes; `status` is 400, 413, 415 or 422.
    #[error("{message}")]
    BadBody { status: StatusCode, code: &'static str, message: String },
    /// A field is present and well-formed but not acceptable.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("'{0}' is not a job id: job ids are UUIDs such as 3f2b8c1e-6a1d-4c5e-9b7a-2d4f6e8a0c1b")]
    BadJobId(String),
    #[error("job {0} does not exist (job records expire after their TTL)")]
    JobNotFound(String),
    #[error("no route {0}; routes: POST /jobs, GET /jobs, GET /jobs/{{id}}, GET /jobs/{{id}}/events, DELETE /jobs/{{id}}, GET /languages, GET /health, GET / (the web page); Judge0's API under /judge0, Piston's under /api/v2")]
    NoRoute(String),
    #[error("the {language} queue holds {depth} jobs, its limit; retry in a few seconds")]
    QueueFull { language: String, depth: usize },
    #[error("{}", if *presented {
        "the API key is not valid; send a key made by `optimus-cli keys add` as 'Authorization: Bearer <key>'"
    } else {
        "this API needs a key: send 'Authorization: Bearer <key>' (or 'X-Auth-Token: <key>'); an operator makes one with `optimus-cli keys add`"
    })]
    Unauthenticated { presented: bool },
    #[error("this API does not answer to the host name '{host}' (anonymous mode refuses names it was not given, against DNS rebinding); use its address, or add the name to OPTIMUS_ALLOWED_HOSTS")]
    ForeignHost { host: String },
    #[error("requests from the page at '{origin}' are refused (anonymous mode accepts only the API's own page); add the origin to OPTIMUS_ALLOWED_ORIGINS, or use an API key with OPTIMUS_AUTH=required")]
    CrossOrigin { origin: String },
    #[error("the API key '{name}' has been revoked; ask an operator for a new one")]
    KeyRevoked { name: String },
    #[error("this key may submit {per_min} jobs per minute; retry after {} s", retry_after.as_secs().max(1))]
    RateLimited { per_min: u32, retry_after: std::time::Duration },
    #[error("the jobs of {} queued or running are {max}, the limit; wait for some to finish{}", whose(*anonymous), raise(*anonymous, "--max-queued", "OPTIMUS_ANONYMOUS_MAX_QUEUED"))]
    TooManyActive { max: u32, anonymous: bool },
    #[error("the jobs of {} hold {max_bytes} bytes of store space, the quota, and this job needs {needed} more; {}{}", whose(*anonymous), match retry_after {
        Some(after) => format!("the oldest finished one's results expire in {} s", secs_up(*after)),
        None => "the queued and running ones hold all of it; wait for them to finish".to_string(),
    }, raise(*anonymous, "--max-bytes", "OPTIMUS_ANONYMOUS_MAX_BYTES"))]
    OverQuota { needed: u64, max_bytes: u64, retry_after: Option<std::time::Duration>, anonymous: bool },
    #[error("this job alone needs {needed} bytes of store space, more than the {max_bytes} bytes the jobs of {} may hold; send smaller tests or fewer of them{}", whose(*anonymous), raise(*anonymous, "--max-bytes", "OPTIMUS_ANONYMOUS_MAX_BYTES"))]
    JobOverQuota { needed: u64, max_bytes: u64, anonymous: bool },
    #[error("this key has {max} event streams open, its limit (OPTIMUS_MAX_STREAMS_PER_KEY); close one, or poll GET /jobs/{{id}}")]
    TooManyStreams { max: usize },
    #[error("job storage is full ({0}); new jobs are refused until it drains, retry later")]
    StorageFull(String),
    #[error(
        "the API is reading as many request bodies as it may at once (OPTIMUS_BODY_BUDGET_BYTES); retry in a moment"
    )]
    Busy,
    #[error("the request took longer than {secs} s to arrive and be answered; send it faster or smaller")]
    TooSlow { secs: u64 },
    #[error("job storage is unavailable")]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Invalid { code, message: message.into() }
    }

    pub fn body_too_large(cap: usize) -> Self {
        ApiError::BadBody {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "body_too_large",
            message: format!("the request body is larger than the cap of {cap} bytes (OPTIMUS_MAX_BODY_BYTES)"),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadBody { status, code, .. } => (*status, code),
            ApiError::Invalid { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::BadJobId(_) => (StatusCode::BAD_REQUEST, "invalid_job_id"),
            ApiError::JobNotFound(_) => (StatusCode::NOT_FOUND, "job_not_found"),
            ApiError::NoRoute(_) => (StatusCode::NOT_FOUND, "no_route"),
            ApiError::QueueFull { .. } => (StatusCode::SERVICE_UNAVAILABLE, "queue_full"),
            ApiError::Unauthenticated { .. } => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::KeyRevoked { .. } => (StatusCode::FORBIDDEN, "key_revoked"),
            ApiError::ForeignHost { .. } => (StatusCode::FORBIDDEN, "foreign_host"),
            ApiError::CrossOrigin { .. } => (StatusCode::FORBIDDEN, "cross_origin"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::TooManyActive { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_active_jobs"),
            ApiError::OverQuota { .. } => (StatusCode::TOO_MANY_REQUESTS, "over_quota"),
            ApiError::JobOverQuota { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "job_over_quota"),
            ApiError::TooManyStreams { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_streams"),
            ApiError::StorageFull(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_full"),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::TooSlow { .. } => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
        }
    }

    /// Seconds a client should wait before retrying, for the refusals that pass.
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after, .. } => Some(secs_up(*retry_after)),
            ApiError::TooManyActive { .. } => Some(RETRY_AFTER_SECS),
            ApiError::OverQuota { retry_after, .. } => Some(retry_after.map_or(RETRY_AFTER_SECS, secs_up)),
            ApiError::Busy => Some(1),
            e if e.status_and_code().0 == StatusCode::SERVICE_UNAVAILABLE => Some(RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

/// Seconds a client should wait before retrying after a 503.
const RETRY_AFTER_SECS: u64 = 5;

/// A wait in whole seconds, rounded up, at least 1 (for `Retry-After`).
fn secs_up(wait: std::time::Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

/// Whose quota a refusal is about.
fn whose(anonymous: bool) -> &'static str {
    if anonymous {
        "all anonymous callers"
    } else {
        "this key"
    }
}

/// How an operator raises the quota a refusal names.
fn raise(anonymous: bool, flag: &str, env: &str) -> String {
    if anonymous {
        format!(" (an operator raises it with {env})")
    } else {
        format!(" (an operator makes a key with a larger one: `optimus-cli keys add {flag}`)")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Store(cause) = &self {
            tracing::error!(error = %cause, "request failed on the job store");
        }
        let body = Json(json!({ "error": { "code": code, "message": self.to_string() } }));
        let retry_after = self.retry_after_secs();
        let mut response = (status, body).into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
