//! Who is calling. With no API key configured every request is anonymous; once
//! one exists, every route but those of `OPEN_PATHS` (health, metrics, the API's
//! description and the web page's files) needs `Authorization: Bearer <key>` (or
//! `X-Auth-Token: <key>`, as Judge0 clients send it): 401 without a known key,
//! 403 with a revoked one. The [`Caller`] is put in the request for the handlers.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use optimus_common::store::Caller;

use crate::error::ApiError;
use crate::AppState;

/// The routes anyone may call: load balancers and probes hold no key, and the
/// web page holds no data (it asks for a key and sends it with every call).
/// `/metrics` is the operator's, scraped by Prometheus, which holds no user key;
/// like `/health` it shows counts, never a job.
/// The API's description and its page are public too.
const OPEN_PATHS: [&str; 7] =
    ["/health", "/metrics", "/openapi.json", "/docs", "/", "/static/app.js", "/static/app.css"];

fn presented_key(req: &Request) -> Option<&str> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    header(AUTHORIZATION.as_str())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .or_else(|| header("x-auth-token"))
        .filter(|k| !k.is_empty())
}

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    if OPEN_PATHS.contains(&req.uri().path()) {
        return Ok(next.run(req).await);
    }
    let caller = match presented_key(&req) {
        Some(secret) => match state.store.find_key(secret).await? {
            None => return Err(ApiError::Unauthenticated { presented: true }),
            Some(key) if key.revoked_at.is_some() => return Err(ApiError::KeyRevoked { name: key.name }),
            Some(key) => key.caller(),
        },
        None if state.store.auth_required().await? => return Err(ApiError::Unauthenticated { presented: false }),
        None => Caller::Anonymous,
    };
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}
