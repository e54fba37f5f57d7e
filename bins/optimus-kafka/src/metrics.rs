//! The bridge's Prometheus metrics and health, at `/metrics` and `/health` on
//! `KAFKA_METRICS_ADDR`. Every metric is named here: messages consumed, produced
//! and malformed (by topic), jobs queued, enqueue refusals that paused the
//! partitions (by reason), whether they are paused now, the results owed, and the
//! consumer's lag per partition.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use tokio_util::sync::CancellationToken;

pub struct BridgeMetrics {
    registry: Registry,
    pub consumed: IntCounterVec,
    pub produced: IntCounterVec,
    pub malformed: IntCounterVec,
    pub queued: IntCounterVec,
    pub refusals: IntCounterVec,
    pub paused: IntGauge,
    pub owed: IntGauge,
    pub lag: IntGaugeVec,
    /// Set once the consumer has joined its group and holds an assignment.
    pub assigned: AtomicBool,
}

impl BridgeMetrics {
    pub fn new(shape: &str) -> Arc<Self> {
        let registry = Registry::new_custom(None, Some([("shape".to_string(), shape.to_string())].into())).unwrap();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).unwrap();
            registry.register(Box::new(c.clone())).unwrap();
            c
        };
        let consumed = counter("optimus_kafka_consumed_total", "Messages consumed, by topic.", &["topic"]);
        let produced = counter(
            "optimus_kafka_produced_total",
            "Messages produced (results, answers, dead letters), by topic.",
            &["topic"],
        );
        let malformed =
            counter("optimus_kafka_malformed_total", "Messages that could not become a job, by topic.", &["topic"]);
        let queued =
            counter("optimus_kafka_jobs_queued_total", "Jobs queued from messages, by language.", &["language"]);
        let refusals = counter(
            "optimus_kafka_backpressure_total",
            "Times a message waited with the partitions paused, by reason.",
            &["reason"],
        );
        let paused = IntGauge::new("optimus_kafka_paused", "1 while the partitions are paused.").unwrap();
        let owed =
            IntGauge::new("optimus_kafka_results_owed", "Jobs whose result this bridge's name still owes.").unwrap();
        let lag = IntGaugeVec::new(
            Opts::new("optimus_kafka_consumer_lag", "Messages behind the partition's end, per assigned partition."),
            &["topic", "partition"],
        )
        .unwrap();
        for g in [&paused, &owed] {
            registry.register(Box::new(g.clone())).unwrap();
        }
        registry.register(Box::new(lag.clone())).unwrap();
        Arc::new(BridgeMetrics {
            registry,
            consumed,
            produced,
            malformed,
            queued,
            refusals,
            paused,
            owed,
            lag,
            assigned: AtomicBool::new(false),
        })
    }

    fn render(&self) -> String {
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

async fn metrics(State(m): State<Arc<BridgeMetrics>>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], m.render())
}

async fn health(State(m): State<Arc<BridgeMetrics>>) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "status": "ok",
        "assigned": m.assigned.load(Ordering::Relaxed),
        "paused": m.paused.get() == 1,
        "results_owed": m.owed.get(),
    }))
}

/// Serves `/metrics` and `/health` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics_: Arc<BridgeMetrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new().route("/metrics", get(metrics)).route("/health", get(health)).with_state(metrics_);
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}
