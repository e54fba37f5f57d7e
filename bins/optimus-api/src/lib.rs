//! The HTTP face of Optimus: takes jobs, shows them, cancels them.
//!
//! # Layout
//! - [`config`]: the API's own settings ([`ApiConfig`]).
//! - [`auth`]: who is calling (API keys), checked before any route runs.
//! - [`limits`]: what is refused before any work (oversized bodies, slow clients,
//!   new jobs while Redis is nearly full).
//! - [`events`]: the one reader of live job events that every SSE subscriber shares.
//! - [`error`]: [`ApiError`], the one place where failures become HTTP answers.
//! - [`extract`]: a JSON extractor whose rejections answer in Optimus's error format.
//! - [`validate`]: turns a raw request into a trusted [`optimus_common::JobSpec`].
//! - [`mod@routes`]: one module per resource (`jobs`, `languages`, `health`).
//! - [`compat`]: Judge0's and Piston's APIs, mapped onto the same jobs (with the
//!   Judge0 callbacks delivered when their jobs end, `compat::judge0::callbacks`).
//! - [`metrics`]: the Prometheus metrics at `/metrics`.
//! - [`openapi`]: the OpenAPI 3.1 document at `/openapi.json`, and `/docs`.
//!
//! [`app`] builds the router (tests call it with their own state); [`run`] serves
//! it until the shutdown token fires, draining requests in flight.

pub mod auth;
pub mod compat;
pub mod config;
pub mod conn;
pub mod error;
pub mod events;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod validate;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use optimus_common::{LanguageRegistry, Settings, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

pub use config::ApiConfig;
pub use error::ApiError;

/// What every handler needs, shared.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub registry: Arc<LanguageRegistry>,
    pub settings: Arc<Settings>,
    pub api: Arc<ApiConfig>,
    pub bodies: Arc<limits::BodyBudget>,
    pub connections: Arc<conn::Census>,
    pub streams: Arc<limits::StreamSlots>,
    pub events: Arc<events::EventHub>,
    pub metrics: Arc<metrics::ApiMetrics>,
}

impl AppState {
    /// What the request parsers and checks read, borrowed.
    pub fn rules(&self) -> validate::Rules<'_> {
        validate::Rules { registry: &self.registry, settings: &self.settings, api: &self.api }
    }
}

impl AppState {
    pub fn new(store: Store, registry: LanguageRegistry, settings: Settings, api: ApiConfig) -> Self {
        AppState {
            connections: Arc::default(),
            streams: Arc::default(),
            bodies: Arc::new(limits::BodyBudget::new(settings.limits.body_budget_bytes)),
            store,
            registry: Arc::new(registry),
            settings: Arc::new(settings),
            api: Arc::new(api),
            events: Arc::default(),
            metrics: Arc::default(),
        }
    }
}

/// Every route: its path and its handlers. The router is built from this table
/// and the OpenAPI document is checked against it, so neither can miss a route.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    let mut table: Vec<(&'static str, MethodRouter<AppState>)> = vec![
        ("/jobs", post(routes::jobs::submit).get(routes::jobs::list)),
        ("/jobs/{id}", get(routes::jobs::get).delete(routes::jobs::cancel)),
        ("/jobs/{id}/events", get(routes::events::stream)),
        ("/languages", get(routes::languages::list)),
        ("/health", get(routes::health::check)),
        ("/metrics", get(metrics::scrape)),
        ("/openapi.json", get(openapi::document)),
        ("/docs", get(openapi::page)),
        ("/", get(routes::page::index)),
        ("/static/app.js", get(routes::page::script)),
        ("/static/app.css", get(routes::page::style)),
    ];
    table.extend(compat::judge0_routes());
    table.extend(compat::piston_routes());
    table
}

/// The router: every route behind authentication, the body cap and the timeout.
pub fn app(state: AppState) -> Router {
    let body_cap = state.settings.limits.max_body_bytes;
    let router = routes().into_iter().fold(Router::new(), |router, (path, handlers)| router.route(path, handlers));
    router
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(body_cap))
        .layer(middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .layer(middleware::from_fn_with_state(state.clone(), limits::body_and_time))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// Moves jobs whose retry backoff has passed back to their queues, as workers do:
/// with no worker of a language running (scaled to zero), a job waiting for its
/// retry must still reach the queue, whose length is what wakes a worker.
async fn promote_retries(state: AppState, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
        for lang in state.registry.languages() {
            match state.store.promote_due(&lang.name).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(language = %lang.name, jobs = n, "retried jobs back in the queue"),
                Err(e) => tracing::warn!(error = %e, "cannot move due retries to their queue"),
            }
        }
    }
}

/// Serves `app(state)` on `listener` until `shutdown` is cancelled, then lets the
/// requests in flight finish. Connections are held to [`conn::ConnLimits`]: caps
/// in total and per peer, and deadlines for silent and idle ones.
pub async fn run(listener: TcpListener, state: AppState, shutdown: CancellationToken) -> std::io::Result<()> {
    let callbacks = tokio::spawn(compat::judge0::callbacks::deliver_forever(state.clone(), shutdown.clone()));
    tokio::spawn(promote_retries(state.clone(), shutdown.clone()));
    let limits = state.api.connections.clone();
    let census = state.connections.clone();
    conn::serve(listener, app(state), limits, census, shutdown).await;
    // A callback being delivered finishes or its lease lets another process take it.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), callbacks).await;
    Ok(())
}
