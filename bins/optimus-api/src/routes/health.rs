//! `GET /health`: each dependency's state. 503 while Redis (without which nothing is
//! accepted) does not answer; 200 otherwise, with `"status": "degraded"` when a
//! language has no live worker (its jobs wait) or Redis is near its memory limit.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::AppState;

pub async fn check(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let memory = match state.store.memory().await {
        Ok(memory) => memory,
        Err(e) => {
            tracing::warn!(error = %e, "health check: redis unreachable");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "dependencies": { "redis": { "status": "unreachable" } },
                    "error": { "code": "redis_unreachable", "message": format!("cannot reach Redis: {e}") },
                })),
            );
        }
    };
    let high = memory.max / 100 * u64::from(state.api.redis_memory_high_percent);
    let redis_full = memory.max > 0 && memory.used >= high;
    let mut degraded = redis_full;
    let mut languages = Map::new();
    for lang in state.registry.languages() {
        let workers = state.store.live_workers(&lang.name).await.map(|w| w.len()).unwrap_or(0);
        let (queued, retrying, dead) = state.store.depths(&lang.name).await.unwrap_or_default();
        degraded |= workers == 0;
        languages.insert(
            lang.name.clone(),
            json!({
                "status": if workers == 0 { "no_worker" } else { "ok" },
                "workers": workers,
                "queued": queued,
                "retrying": retrying,
                "dead_letters": dead,
            }),
        );
    }
    // Judge0 callbacks: owed now, delivered, and given up after their tries.
    let (owed, counters) = state.store.callback_stats().await.unwrap_or_default();
    let count = |name: &str| counters.get(name).copied().unwrap_or(0);
    (
        StatusCode::OK,
        Json(json!({
            "status": if degraded { "degraded" } else { "ok" },
            "dependencies": {
                "redis": {
                    "status": if redis_full { "nearly_full" } else { "ok" },
                    "used_memory_bytes": memory.used,
                    "maxmemory_bytes": memory.max,
                    "maxmemory_policy": memory.policy,
                },
                "workers": languages,
            },
            "callbacks": {
                "pending": owed,
                "delivered": count("callbacks_delivered"),
                "failed": count("callbacks_failed"),
            },
        })),
    )
}
