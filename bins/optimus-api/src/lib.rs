//! The HTTP face of Optimus: takes jobs, shows them, cancels them.
//!
//! # Layout
//! - [`error`]: [`ApiError`], the one place where failures become HTTP answers.
//! - [`extract`]: a JSON extractor whose rejections answer in Optimus's error format.
//! - [`validate`]: turns a raw request into a trusted [`optimus_common::JobSpec`].
//! - [`routes`]: one module per resource (`jobs`, `languages`, `health`).
//!
//! [`app`] builds the router (tests call it with their own state); [`run`] serves
//! it until the shutdown token fires, draining requests in flight.

pub mod error;
pub mod extract;
pub mod routes;
pub mod validate;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use optimus_common::{LanguageRegistry, Settings, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

/// What every handler needs, shared.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub registry: Arc<LanguageRegistry>,
    pub settings: Arc<Settings>,
}

/// The router with every route and the body cap.
pub fn app(state: AppState) -> Router {
    let body_cap = state.settings.limits.max_body_bytes;
    Router::new()
        .route("/jobs", axum::routing::post(routes::jobs::submit))
        .route("/jobs/{id}", get(routes::jobs::get).delete(routes::jobs::cancel))
        .route("/languages", get(routes::languages::list))
        .route("/health", get(routes::health::check))
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(body_cap))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `shutdown` is cancelled, then lets the
/// requests in flight finish.
pub async fn run(listener: TcpListener, state: AppState, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}
