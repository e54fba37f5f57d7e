//! `optimus-kafka`: reads its settings, connects to Redis and the brokers, and runs
//! the consumer and the producer of results until SIGINT or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use optimus_api::ApiConfig;
use optimus_common::store::{Admission, Caller, Notify};
use optimus_common::{LanguageRegistry, Settings, Store};
use optimus_kafka::{intake, metrics, outbox, Bridge, BridgeConfig};
use rdkafka::consumer::Consumer;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = optimus_common::telemetry::init("optimus-kafka")?;
    let config = BridgeConfig::parse();
    let name = config.name().map_err(anyhow::Error::msg)?;
    config.extra().map_err(anyhow::Error::msg)?;
    let settings = Settings::from_env()?;
    let api = ApiConfig::from_env()?;
    let registry = LanguageRegistry::load(&settings.languages_file)?;
    let store = Store::connect_waiting(&settings, optimus_common::store::STARTUP_PATIENCE)
        .await
        .with_context(|| format!("cannot reach Redis at {}", settings.redis_url))?;
    let caller = match &config.api_key {
        None => Caller::Anonymous,
        Some(secret) => match store.find_key(secret).await? {
            Some(key) if key.revoked_at.is_none() => key.caller(),
            Some(key) => anyhow::bail!("OPTIMUS_KAFKA_API_KEY is key {} ({}), which was revoked", key.id, key.name),
            None => anyhow::bail!("OPTIMUS_KAFKA_API_KEY is no key of this Redis (optimus-cli keys add makes one)"),
        },
    };
    let admission = Admission {
        quota: caller.quota().unwrap_or(api.anonymous_quota),
        memory_high_percent: api.redis_memory_high_percent,
    };
    let metrics = metrics::BridgeMetrics::new(config.shape.as_str());
    let listener = tokio::net::TcpListener::bind(config.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.metrics_addr))?;
    let bridge = Arc::new(Bridge {
        topics: config.topics(),
        config,
        store,
        registry,
        settings,
        api,
        caller,
        admission,
        notify: Notify::Kafka(name),
        metrics: metrics.clone(),
    });
    let consumer = Arc::new(intake::consumer(&bridge)?);
    let producer = intake::Sender::new(&bridge)?;
    tracing::info!(
        shape = bridge.config.shape.as_str(), name = bridge.name(), brokers = %bridge.config.brokers,
        group = %bridge.config.group_id(), topics = ?bridge.topics.inputs(), owner = bridge.caller.key_id(),
        metrics = %listener.local_addr()?, "optimus-kafka started"
    );

    let shutdown = CancellationToken::new();
    optimus_common::sync::cancel_on_signal(
        shutdown.clone(),
        "shutting down: the message in hand is finished, then offsets are committed",
    );
    let served = tokio::spawn(metrics::serve(listener, metrics.clone(), shutdown.clone()));
    let results = tokio::spawn(outbox::run(bridge.clone(), producer.clone(), shutdown.clone()));
    tokio::spawn(lag_forever(consumer.clone(), metrics.clone(), shutdown.clone()));
    let consumed = intake::run(bridge.clone(), consumer.clone(), producer.clone(), shutdown.clone()).await;
    shutdown.cancel();
    let _ = results.await;
    let _ = served.await;
    // What was stored is committed before the group is left.
    if let Err(e) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        tracing::debug!(error = %e, "nothing to commit at shutdown");
    }
    let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(10))).await;
    tracing::info!("optimus-kafka stopped");
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    consumed.map_err(Into::into)
}

/// The consumer's lag per assigned partition, every 10 s.
async fn lag_forever(
    consumer: Arc<intake::BridgeConsumer>,
    metrics: Arc<metrics::BridgeMetrics>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
        let consumer = consumer.clone();
        let lags = tokio::task::spawn_blocking(move || {
            let positions = consumer.position().ok()?;
            let mut lags = Vec::new();
            for e in positions.elements() {
                let Ok((_, high)) = consumer.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(2)) else {
                    continue;
                };
                let at = e.offset().to_raw().filter(|o| *o >= 0).unwrap_or(0);
                lags.push((e.topic().to_string(), e.partition(), (high - at).max(0)));
            }
            Some(lags)
        })
        .await;
        if let Ok(Some(lags)) = lags {
            metrics.lag.reset();
            for (topic, partition, lag) in lags {
                metrics.lag.with_label_values(&[&topic, &partition.to_string()]).set(lag);
            }
        }
    }
}
