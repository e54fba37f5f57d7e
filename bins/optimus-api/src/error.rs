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
    #[error("no route {0}; routes: POST /jobs, GET /jobs/{{id}}, DELETE /jobs/{{id}}, GET /languages, GET /health")]
    NoRoute(String),
    #[error("the {language} queue holds {depth} jobs, its limit; retry in a few seconds")]
    QueueFull { language: String, depth: usize },
    #[error("job storage is unavailable")]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Invalid { code, message: message.into() }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadBody { status, code, .. } => (*status, code),
            ApiError::Invalid { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::BadJobId(_) => (StatusCode::BAD_REQUEST, "invalid_job_id"),
            ApiError::JobNotFound(_) => (StatusCode::NOT_FOUND, "job_not_found"),
            ApiError::NoRoute(_) => (StatusCode::NOT_FOUND, "no_route"),
            ApiError::QueueFull { .. } => (StatusCode::SERVICE_UNAVAILABLE, "queue_full"),
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
        }
    }
}

/// Seconds a client should wait before retrying a refused submission.
const RETRY_AFTER_SECS: &str = "5";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Store(cause) = &self {
            tracing::error!(error = %cause, "request failed on the job store");
        }
        let body = Json(json!({ "error": { "code": code, "message": self.to_string() } }));
        let mut response = (status, body).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        response
    }
}
