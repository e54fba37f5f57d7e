//! The shapes of other judges' APIs, served beside Optimus's own so that their
//! clients work unchanged: Judge0 CE 1.13.1 under `/judge0`, Piston v2 under
//! `/api/v2` and `/api/v2/piston`. Each request becomes an ordinary Optimus job
//! with one test, through [`crate::routes::jobs::enqueue`], on the same queues and
//! workers; each module answers in its API's own formats, errors included.
//!
//! - [`judge0`]: the routes; `judge0::request`: the request's validation; [`judge0::view`]: the
//!   pure mapping of a job to Judge0's statuses and fields.
//! - [`piston`]: the routes and the mapping both ways; [`semver`]: node-semver
//!   ranges, as Piston matches versions.

pub mod judge0;
pub mod piston;
pub mod semver;

use std::time::Duration;

use axum::routing::{any, get, post, MethodRouter};
use optimus_common::store::Caller;
use optimus_common::JobRecord;
use uuid::Uuid;

use crate::error::ApiError;
use crate::AppState;

/// Judge0's routes, under `/judge0`.
pub fn judge0_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/judge0/about", get(judge0::about)),
        ("/judge0/config_info", get(judge0::config_info)),
        ("/judge0/statuses", get(judge0::statuses)),
        ("/judge0/languages", get(judge0::languages)),
        ("/judge0/languages/{id}", get(judge0::language)),
        ("/judge0/submissions", post(judge0::create)),
        ("/judge0/submissions/batch", get(judge0::batch_show).post(judge0::batch_create)),
        ("/judge0/submissions/{token}", get(judge0::show).delete(judge0::destroy)),
        // Anything else under /judge0 answers in Judge0's error shape.
        ("/judge0/{*rest}", any(judge0::not_found)),
    ]
}

/// Piston's routes, under `/api/v2` and `/api/v2/piston` (an emkc URL with only
/// the host swapped), with or without a trailing slash.
pub fn piston_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    let mut routes: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for path in ["/api/v2/runtimes", "/api/v2/runtimes/", "/api/v2/piston/runtimes", "/api/v2/piston/runtimes/"] {
        routes.push((path, get(piston::runtimes)));
    }
    for path in ["/api/v2/execute", "/api/v2/execute/", "/api/v2/piston/execute", "/api/v2/piston/execute/"] {
        routes.push((path, post(piston::execute)));
    }
    routes.push(("/api/v2/{*rest}", any(piston::not_found)));
    routes
}

/// Waits until the job ends or `budget` passes, then reads it. Follows the job's
/// event stream (replayed from its start, so an end that came first is seen); a
/// subscription the hub drops for falling behind is made again.
pub async fn wait_for_end(
    state: &AppState,
    id: Uuid,
    caller: &Caller,
    budget: Duration,
) -> Result<Option<JobRecord>, ApiError> {
    let deadline = tokio::time::Instant::now() + budget;
    loop {
        let mut events = state.events.follow(&state.store, id, "0-0".into());
        let _ = tokio::time::timeout_at(deadline, async {
            while let Some(event) = events.recv().await {
                if event.is_terminal() {
                    break;
                }
            }
        })
        .await;
        let record = state.store.get(id, caller).await?;
        let ended = record.as_ref().is_none_or(|r| r.status.is_terminal());
        if ended || tokio::time::Instant::now() >= deadline {
            return Ok(record);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How long a synchronous call (Judge0's `wait=true`, Piston's execute) may wait
/// for its job: under the request timeout, so the answer is the job's, not a 408.
pub fn wait_budget(state: &AppState) -> Duration {
    state.api.request_timeout.saturating_sub(Duration::from_secs(2)).max(Duration::from_secs(1))
}
