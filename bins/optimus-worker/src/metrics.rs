//! The worker's Prometheus metrics, served on `--metrics-addr` (off by default).
//! Every metric is named here, with its labels; the worker only records.
//!
//! Per language (the worker serves one): jobs finished by overall verdict, test
//! verdicts, the durations of queue wait, compile, each test's run and the whole
//! job, compile cache hits and misses, jobs handed back and jobs failed after their attempts, the pool's idle
//! and busy containers and the acquisitions that had to wait, and errors of Redis
//! and of the Docker engine.

use std::net::SocketAddr;

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};
use tokio_util::sync::CancellationToken;

/// Buckets for durations from a few milliseconds to minutes.
const SECONDS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

pub struct Metrics {
    registry: Registry,
    pub jobs_finished: IntCounterVec,
    pub test_verdicts: IntCounterVec,
    pub queue_wait: Histogram,
    pub compile: Histogram,
    pub compile_cache: IntCounterVec,
    pub test_run: Histogram,
    pub job: Histogram,
    pub requeued: IntCounterVec,
    pub failed: IntCounter,
    pub pool_containers: IntGaugeVec,
    pub pool_waits: IntCounter,
    pub redis_errors: IntCounter,
    pub docker_errors: IntCounter,
}

fn histogram(registry: &Registry, name: &str, help: &str, language: &str) -> Histogram {
    let opts = HistogramOpts::new(name, help).const_label("language", language).buckets(SECONDS.to_vec());
    let h = Histogram::with_opts(opts).expect("valid histogram");
    registry.register(Box::new(h.clone())).expect("registered once");
    h
}

fn counter_vec(registry: &Registry, name: &str, help: &str, language: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help).const_label("language", language), labels).expect("valid counter");
    registry.register(Box::new(c.clone())).expect("registered once");
    c
}

fn counter(registry: &Registry, name: &str, help: &str, language: &str) -> IntCounter {
    let c = IntCounter::with_opts(Opts::new(name, help).const_label("language", language)).expect("valid counter");
    registry.register(Box::new(c.clone())).expect("registered once");
    c
}

impl Metrics {
    pub fn new(language: &str) -> Self {
        let registry = Registry::new();
        let r = &registry;
        let pool_containers = IntGaugeVec::new(
            Opts::new("optimus_pool_containers", "Sandbox containers of this worker's pool, by state (idle, busy)")
                .const_label("language", language),
            &["state"],
        )
        .expect("valid gauge");
        r.register(Box::new(pool_containers.clone())).expect("registered once");
        let pool_waits = IntCounter::with_opts(
            Opts::new(
                "optimus_pool_acquire_waits_total",
                "Container acquisitions that found no idle container (waited for one, or made one)",
            )
            .const_label("language", language),
        )
        .expect("valid counter");
        r.register(Box::new(pool_waits.clone())).expect("registered once");
        Metrics {
            jobs_finished: counter_vec(
                r,
                "optimus_jobs_finished_total",
                "Jobs this worker ended, by overall verdict (or cancelled)",
                language,
                &["verdict"],
            ),
            test_verdicts: counter_vec(
                r,
                "optimus_test_verdicts_total",
                "Tests judged, by verdict",
                language,
                &["verdict"],
            ),
            queue_wait: histogram(r, "optimus_queue_wait_seconds", "From a job's submission to its claim", language),
            compile: histogram(r, "optimus_compile_duration_seconds", "Compile steps, once per job", language),
            compile_cache: counter_vec(
                r,
                "optimus_compile_cache_total",
                "Compiles looked up in the host's compile cache, by result (hit, miss)",
                language,
                &["result"],
            ),
            test_run: histogram(r, "optimus_test_run_duration_seconds", "Each test's run, wall clock", language),
            job: histogram(r, "optimus_job_duration_seconds", "From a job's claim to its stored end", language),
            requeued: counter_vec(
                r,
                "optimus_jobs_requeued_total",
                "Jobs handed back to be run again, by whether the attempt counted",
                language,
                &["attempt"],
            ),
            failed: counter(
                r,
                "optimus_jobs_failed_total",
                "Jobs that ended failed after their last attempt",
                language,
            ),
            pool_containers,
            pool_waits,
            redis_errors: counter(
                r,
                "optimus_redis_errors_total",
                "Redis operations of this worker that failed",
                language,
            ),
            docker_errors: counter(
                r,
                "optimus_docker_errors_total",
                "Jobs whose sandbox failed on the Docker engine",
                language,
            ),
            registry,
        }
    }

    /// The metrics in Prometheus's text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encodes");
        String::from_utf8(out).expect("text is UTF-8")
    }
}

/// A verdict's label: its snake_case name.
pub fn label<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| "none".into())
}

/// Serves `GET /metrics` on `addr` until `shutdown`; `refresh` runs before each
/// scrape (to read the pool's gauges).
pub async fn serve(
    addr: SocketAddr,
    metrics: std::sync::Arc<Metrics>,
    refresh: impl Fn() + Send + Sync + 'static,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let refresh = std::sync::Arc::new(refresh);
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let (metrics, refresh) = (metrics.clone(), refresh.clone());
            async move {
                refresh();
                ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render())
            }
        }),
    );
    tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = served.await {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok(bound)
}
