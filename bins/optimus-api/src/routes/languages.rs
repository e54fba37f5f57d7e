//! `GET /languages`: what can be submitted, with its default limits.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::AppState;

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut languages = Vec::new();
    for lang in state.registry.languages() {
        languages.push(json!({
            "name": lang.name,
            "version": lang.version,
            "extension": lang.extension,
            "source_file": lang.source_file,
            "compiled": lang.compiled,
            "aliases": lang.aliases,
            "judge0_ids": lang.judge0_ids,
            "defaults": {
                "timeout_ms": lang.time_limit_ms,
                "memory_limit_mb": lang.memory_limit_mb,
                "cpu_limit": lang.cpu_limit,
            },
            "queued_jobs": state.store.queue_len(&lang.name).await?,
            "max_queue_depth": lang.max_queue_depth,
        }));
    }
    Ok(Json(json!({ "languages": languages })))
}
