//! `GET /health`: 200 while the job store answers, 503 with the reason otherwise.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::AppState;

pub async fn check(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ok", "redis": "ok" }))),
        Err(e) => {
            tracing::warn!(error = %e, "health check: redis unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "redis": "unreachable",
                    "error": { "code": "redis_unreachable", "message": format!("cannot reach Redis: {e}") },
                })),
            )
        }
    }
}
