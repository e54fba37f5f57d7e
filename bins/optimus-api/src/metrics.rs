//! The API's Prometheus metrics, at `GET /metrics`. Every metric is named here.
//!
//! Recorded as they happen: HTTP requests by route (the route's pattern, so ids
//! do not multiply series) and status, with their latency; jobs submitted by
//! language; jobs refused by reason; Redis errors. Read from Redis at each scrape,
//! so that any API process reports the whole deployment: each language's queue
//! depth, oldest queued job's age, retries waiting, dead letters and live workers;
//! Redis's memory; Judge0 callbacks owed, delivered and given up. And this API
//! process's own connections, event streams and event subscriptions.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use optimus_common::sync::Unpoisoned;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::AppState;

const SECONDS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// Why a submission was refused: the `reason` label.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    Invalid,
    QueueFull,
    RateLimited,
    TooManyActive,
    OverQuota,
    StorageFull,
    StorageUnavailable,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::Invalid => "invalid",
            Refusal::QueueFull => "queue_full",
            Refusal::RateLimited => "rate_limited",
            Refusal::TooManyActive => "too_many_active",
            Refusal::OverQuota => "over_quota",
            Refusal::StorageFull => "storage_full",
            Refusal::StorageUnavailable => "storage_unavailable",
        }
    }
}

pub struct ApiMetrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    submitted: IntCounterVec,
    refused: IntCounterVec,
    pub redis_errors: IntCounter,
    queue_depth: IntGaugeVec,
    oldest_queued: GaugeVec,
    retrying: IntGaugeVec,
    dead_letters: IntGaugeVec,
    workers_alive: IntGaugeVec,
    redis_memory: IntGauge,
    callbacks_pending: IntGauge,
    callbacks: IntCounterVec,
    connections_open: IntGauge,
    event_streams: IntGauge,
    event_subscribers: IntGauge,
    /// When the gauges were last read from Redis.
    refreshed: std::sync::Mutex<Option<Instant>>,
}

/// `/metrics` needs no key: however often it is asked, Redis is read at most
/// this often for it.
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    registry.register(Box::new(metric.clone())).expect("each metric is registered once");
    metric
}

impl Default for ApiMetrics {
    fn default() -> Self {
        let r = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(&r, IntCounterVec::new(Opts::new(name, help), labels).expect("valid"))
        };
        let gauge_vec = |name: &str, help: &str| {
            register(&r, IntGaugeVec::new(Opts::new(name, help), &["language"]).expect("valid"))
        };
        ApiMetrics {
            http_requests: counter_vec(
                "optimus_http_requests_total",
                "HTTP requests answered, by method, route and status",
                &["method", "route", "status"],
            ),
            http_duration: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new("optimus_http_request_duration_seconds", "Time to answer HTTP requests")
                        .buckets(SECONDS.to_vec()),
                    &["method", "route"],
                )
                .expect("valid"),
            ),
            submitted: counter_vec(
                "optimus_jobs_submitted_total",
                "Jobs accepted and queued, by language",
                &["language"],
            ),
            refused: counter_vec("optimus_jobs_refused_total", "Submissions refused, by reason", &["reason"]),
            redis_errors: register(
                &r,
                IntCounter::new("optimus_api_redis_errors_total", "Requests that failed on Redis").expect("valid"),
            ),
            queue_depth: gauge_vec("optimus_queue_depth", "Jobs waiting in each language's queue"),
            oldest_queued: register(
                &r,
                GaugeVec::new(
                    Opts::new("optimus_queue_oldest_age_seconds", "Age of the oldest job in each language's queue"),
                    &["language"],
                )
                .expect("valid"),
            ),
            retrying: gauge_vec("optimus_jobs_retrying", "Jobs waiting for their retry backoff"),
            dead_letters: gauge_vec("optimus_dead_letters", "Jobs on each language's dead-letter list"),
            workers_alive: gauge_vec("optimus_workers_alive", "Workers whose heartbeat is current"),
            redis_memory: register(
                &r,
                IntGauge::new("optimus_redis_used_memory_bytes", "Memory Redis uses").expect("valid"),
            ),
            callbacks_pending: register(
                &r,
                IntGauge::new("optimus_callbacks_pending", "Judge0 callbacks owed").expect("valid"),
            ),
            callbacks: counter_vec(
                "optimus_callbacks_total",
                "Judge0 callbacks settled, by outcome (delivered, failed)",
                &["outcome"],
            ),
            connections_open: register(
                &r,
                IntGauge::new("optimus_api_connections_open", "Connections this API process holds open")
                    .expect("valid"),
            ),
            event_streams: register(
                &r,
                IntGauge::new("optimus_api_event_streams", "Live event streams (SSE) this API process serves")
                    .expect("valid"),
            ),
            event_subscribers: register(
                &r,
                IntGauge::new("optimus_api_event_subscribers", "Subscriptions to live job events in this API process")
                    .expect("valid"),
            ),
            registry: r,
            refreshed: std::sync::Mutex::new(None),
        }
    }
}

impl ApiMetrics {
    pub fn submitted(&self, language: &str) {
        self.submitted.with_label_values(&[language]).inc();
    }

    pub fn refused(&self, why: Refusal) {
        self.refused.with_label_values(&[why.label()]).inc();
    }

    /// Reads the deployment's state from Redis into the gauges.
    async fn refresh(&self, state: &AppState) {
        // This process's own, read at every scrape.
        self.connections_open.set(state.connections.total() as i64);
        self.event_streams.set(state.streams.total() as i64);
        self.event_subscribers.set(state.events.live() as i64);
        {
            let mut last = self.refreshed.locked();
            if last.is_some_and(|t| t.elapsed() < REFRESH_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let store = &state.store;
        for lang in state.registry.languages() {
            let name = lang.name.as_str();
            if let Ok((queued, retrying, dead)) = store.depths(&lang.name).await {
                self.queue_depth.with_label_values(&[name]).set(queued as i64);
                self.retrying.with_label_values(&[name]).set(retrying as i64);
                self.dead_letters.with_label_values(&[name]).set(dead as i64);
            }
            if let Ok(workers) = store.live_workers(name).await {
                self.workers_alive.with_label_values(&[name]).set(workers.len() as i64);
            }
            if let Ok(oldest) = store.oldest_queued(&lang.name).await {
                let age = oldest.map_or(0.0, |t| (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0);
                self.oldest_queued.with_label_values(&[name]).set(age);
            }
        }
        if let Ok(memory) = store.memory().await {
            self.redis_memory.set(memory.used as i64);
        }
        if let Ok((pending, counters)) = store.callback_stats().await {
            self.callbacks_pending.set(pending as i64);
            for (outcome, field) in [("delivered", "callbacks_delivered"), ("failed", "callbacks_failed")] {
                let counter = self.callbacks.with_label_values(&[outcome]);
                let total = counters.get(field).copied().unwrap_or(0);
                counter.inc_by(total.saturating_sub(counter.get()));
            }
        }
    }

    fn render(&self) -> String {
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encodes");
        String::from_utf8(out).expect("text is UTF-8")
    }
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.refresh(&state).await;
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// Counts and times every request by its route's pattern.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_string();
    // Any token is a valid method to hyper: a label per stranger's method would
    // let anyone grow the series without bound.
    let method = match *req.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let start = Instant::now();
    let response = next.run(req).await;
    let m = &state.metrics;
    m.http_requests.with_label_values(&[method, &route, response.status().as_str()]).inc();
    m.http_duration.with_label_values(&[method, &route]).observe(start.elapsed().as_secs_f64());
    response
}
