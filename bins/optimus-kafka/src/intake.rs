//! The consumer: one message at a time, in order, each either queued as a job,
//! answered at once (it cannot become one), or skipped (SCRC's `done`); only then
//! is its offset stored for the next commit. A message is therefore consumed at
//! least once, and a redelivered one (the bridge killed before its commit, a
//! rebalance) finds the job its first delivery made: the job's id follows from
//! its identity, and the enqueue leaves an existing job as it is.
//!
//! Backpressure: while the message's language has [`BridgeConfig::max_queue_depth`]
//! jobs queued, or the enqueue is refused for a reason that passes (the queue is
//! full, the key is over its rate or quota, Redis is near its high-water mark or
//! unreachable), the assigned partitions are paused and the message is tried again
//! later. The consumer keeps being polled meanwhile (the group does not drop it);
//! a message it still hands out from before the pause is sought back to, so it is
//! fetched again after the resume, never buffered.
//!
//! [`BridgeConfig::max_queue_depth`]: crate::BridgeConfig

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use optimus_common::store::{EnqueueOutcome, Origin, Provenance};
use rdkafka::consumer::{Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::shape::{Envelope, Intake, Outgoing, Parsed, Rejection};
use crate::{Bridge, BridgeError};

/// How often a paused consumer looks again whether it may go on.
const PAUSED_TICK: Duration = Duration::from_millis(200);
/// How long an answer (to a message that became no job) may take to be
/// acknowledged before it is sent again.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Logs the group's rebalances, and keeps `/health`'s `assigned` true while the
/// consumer holds partitions.
pub struct Context {
    metrics: Arc<crate::metrics::BridgeMetrics>,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn post_rebalance(&self, consumer: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = %describe(tpl), "partitions assigned");
                self.metrics.assigned.store(true, Ordering::Relaxed);
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = %describe(tpl), "partitions revoked");
                let left = consumer.assignment().map(|a| a.count()).unwrap_or(0);
                self.metrics.assigned.store(left > 0, Ordering::Relaxed);
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }
}

fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements().iter().map(|e| format!("{}/{}", e.topic(), e.partition())).collect::<Vec<_>>().join(",")
}

pub type BridgeConsumer = StreamConsumer<Context>;

/// The consumer, subscribed to the shape's topics. Offsets are stored by hand
/// (after the enqueue) and committed by librdkafka every second, on rebalance
/// and on close; none of that can be turned off by `KAFKA_CONFIG`.
pub fn consumer(bridge: &Bridge) -> Result<BridgeConsumer, BridgeError> {
    let session = bridge.config.session_timeout_ms;
    let consumer: BridgeConsumer = bridge
        .client_config()?
        .set("group.id", bridge.config.group_id())
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", session.to_string())
        .set("heartbeat.interval.ms", (session / 10).max(100).to_string())
        .set("max.poll.interval.ms", session.max(300_000).to_string())
        // What librdkafka fetches ahead is bounded (16 MiB), whatever the backlog.
        .set("queued.max.messages.kbytes", "16384")
        .set("receive.message.max.bytes", receive_max(bridge.settings.limits.max_body_bytes).to_string())
        .create_with_context(Context { metrics: bridge.metrics.clone() })?;
    let topics = bridge.topics.inputs();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok(consumer)
}

/// librdkafka's largest fetch response: room for a message past the body
/// limit (it must be read to be refused; one past this stalls its partition,
/// so a topic's `max.message.bytes` belongs below it), never under
/// librdkafka's own default, and within what it accepts.
fn receive_max(max_body_bytes: usize) -> usize {
    const LIBRDKAFKA_DEFAULT: usize = 100_000_000;
    (max_body_bytes.saturating_add(16 << 20)).clamp(LIBRDKAFKA_DEFAULT, i32::MAX as usize)
}

/// The producer: idempotent (a retried send is written once), acknowledged by
/// all in-sync replicas. librdkafka's idempotent producer is unusable after a
/// fatal error (`ProducerFenced`, seen when a broker froze for 20 s and lost the
/// producer's state): the first send to meet one makes a new producer, and what
/// it was sending is tried again on that one.
#[derive(Clone)]
pub struct Sender {
    config: Arc<rdkafka::ClientConfig>,
    /// The producer in use, and how many were made before it.
    current: Arc<std::sync::Mutex<(u64, FutureProducer)>>,
}

impl Sender {
    pub fn new(bridge: &Bridge) -> Result<Self, BridgeError> {
        let mut config = bridge.client_config()?;
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "15000")
            .set("linger.ms", "5");
        let producer = config.create()?;
        Ok(Sender { config: Arc::new(config), current: Arc::new(std::sync::Mutex::new((0, producer))) })
    }

    fn producer(&self) -> (u64, FutureProducer) {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        (current.0, current.1.clone())
    }

    /// Sends one message and waits for the broker's acknowledgement.
    pub async fn send(&self, out: &Outgoing, traceparent: Option<&str>) -> Result<(), String> {
        let (made, producer) = self.producer();
        let mut record = FutureRecord::to(&out.topic).key(&out.key).payload(&out.payload);
        if let Some(tp) = traceparent {
            record = record.headers(
                rdkafka::message::OwnedHeaders::new()
                    .insert(rdkafka::message::Header { key: "traceparent", value: Some(tp) }),
            );
        }
        let sent = producer.send(record, ANSWER_TIMEOUT).await.map(|_| ()).map_err(|(e, _)| e);
        if let Err(e) = &sent {
            // tansu answers ProducerFenced without librdkafka marking the error
            // fatal; either way this producer will not send again.
            let fenced = e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::ProducerFenced);
            let fatal = rdkafka::producer::Producer::client(&producer).fatal_error();
            if fenced || fatal.is_some() {
                let (code, reason) = fatal.unwrap_or((rdkafka::types::RDKafkaErrorCode::ProducerFenced, e.to_string()));
                let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
                // Only the first send to see this producer fail replaces it.
                if current.0 == made {
                    match self.config.create::<FutureProducer>() {
                        Ok(fresh) => {
                            tracing::warn!(?code, %reason, "the producer met a fatal error; a new one takes over");
                            *current = (made + 1, fresh);
                        }
                        Err(e) => tracing::error!(error = %e, "cannot make a new producer"),
                    }
                }
            }
        }
        sent.map_err(|e| e.to_string())
    }

    /// Waits for what is in flight (at shutdown).
    pub fn flush(&self, timeout: Duration) {
        let (_, producer) = self.producer();
        let _ = rdkafka::producer::Producer::flush(&producer, timeout);
    }
}

/// What became of one message.
enum Handled {
    Done,
    Stopping,
}

/// Consumes until `shutdown`, then stores nothing more (librdkafka commits what
/// was stored when the consumer closes).
pub async fn run(
    bridge: Arc<Bridge>,
    consumer: Arc<BridgeConsumer>,
    producer: Sender,
    shutdown: CancellationToken,
) -> Result<(), BridgeError> {
    let mut lane =
        Lane { bridge: &bridge, consumer: &consumer, producer: &producer, shutdown: &shutdown, flow: Flow::default() };
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = consumer.recv() => m,
        };
        let message = match message {
            Ok(m) => m.detach(),
            Err(e) => {
                tracing::warn!(error = %e, "consumer error");
                tokio::time::sleep(PAUSED_TICK).await;
                continue;
            }
        };
        bridge.metrics.consumed.with_label_values(&[message.topic()]).inc();
        let handled = lane.handle(&message).await;
        lane.resume();
        match handled {
            Handled::Stopping => return Ok(()),
            Handled::Done => {
                if let Err(e) = consumer.store_offset(message.topic(), message.partition(), message.offset()) {
                    // The partition was revoked meanwhile: its new owner reads the
                    // message again and finds the job this one made.
                    tracing::warn!(error = %e, topic = message.topic(), partition = message.partition(),
                        offset = message.offset(), "offset not stored");
                }
            }
        }
    }
}

/// The consumer's side of the bridge, one message at a time.
struct Lane<'a> {
    bridge: &'a Bridge,
    consumer: &'a BridgeConsumer,
    producer: &'a Sender,
    shutdown: &'a CancellationToken,
    flow: Flow,
}

/// Whether the partitions are paused, and where each paused partition must be
/// fetched from again.
#[derive(Default)]
struct Flow {
    paused: bool,
    /// The lowest offset handed out per partition since the pause: sought back
    /// to once (the seek drops what was fetched after it).
    sought: HashMap<(String, i32), i64>,
}

impl Lane<'_> {
    async fn handle(&mut self, message: &OwnedMessage) -> Handled {
        let envelope = Envelope {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key(),
            payload: message.payload().unwrap_or_default(),
        };
        let traceparent = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "traceparent").and_then(|h| h.value))
            .and_then(|v| std::str::from_utf8(v).ok());
        let bridge = self.bridge;
        match bridge.topics.parse(bridge.rules(), &envelope) {
            Parsed::Done => {
                tracing::info!(topic = envelope.topic, offset = envelope.offset, "end of stream marker");
                Handled::Done
            }
            Parsed::Rejected(rejection) => self.refuse(&envelope, &rejection).await,
            Parsed::Job(intake) => self.enqueue(&envelope, *intake, traceparent).await,
        }
    }

    /// A message that becomes no job is answered at once (SCRC: a result with
    /// `error`; Codex: a dead letter).
    async fn refuse(&mut self, envelope: &Envelope<'_>, rejection: &Rejection) -> Handled {
        tracing::warn!(topic = envelope.topic, partition = envelope.partition, offset = envelope.offset,
            reason = %rejection.reason, "message refused");
        self.bridge.metrics.malformed.with_label_values(&[envelope.topic]).inc();
        let now = crate::shape::timestamp(chrono::Utc::now());
        let answer = self.bridge.topics.rejected(envelope, rejection, &now);
        loop {
            match self.producer.send(&answer, None).await {
                Ok(()) => {
                    self.bridge.metrics.produced.with_label_values(&[&answer.topic]).inc();
                    return Handled::Done;
                }
                Err(e) => {
                    tracing::warn!(error = %e, topic = %answer.topic, "answer not acknowledged; trying again");
                    if !self.wait(Duration::from_secs(1), "broker").await {
                        return Handled::Stopping;
                    }
                }
            }
        }
    }

    async fn enqueue(&mut self, envelope: &Envelope<'_>, intake: Intake<'_>, traceparent: Option<&str>) -> Handled {
        let bridge = self.bridge;
        let id = bridge.job_id(&intake.identity);
        let lang = intake.draft.lang;
        let spec = match optimus_api::validate::accept(intake.draft, &bridge.settings.limits) {
            Ok(spec) => spec,
            // parse checked it already; this stays the one place a spec is made.
            Err(refused) => return self.refuse(envelope, &Rejection::new(refused.message)).await,
        };
        let origin = Origin {
            json: serde_json::to_string(&intake.echo).expect("an echo serializes"),
            notify: Some(bridge.notify.clone()),
        };
        // The job's trace continues the producer's, when its message carried one.
        let span = tracing::info_span!("kafka.enqueue", job_id = %id, language = %lang.name, topic = envelope.topic,
            partition = envelope.partition, offset = envelope.offset);
        if let Some(tp) = traceparent {
            optimus_common::telemetry::continue_trace(&span, tp);
        }
        let own_traceparent = optimus_common::telemetry::traceparent(&span);
        loop {
            let wait = match bridge.store.queue_len(&lang.name).await {
                Ok(depth) if depth as u64 >= bridge.config.max_queue_depth => Some((PAUSED_TICK, "queue_depth")),
                Ok(_) => None,
                Err(_) => Some((Duration::from_secs(1), "redis")),
            };
            if let Some((delay, why)) = wait {
                if !self.wait(delay, why).await {
                    return Handled::Stopping;
                }
                continue;
            }
            let provenance = Provenance { origin: Some(&origin), traceparent: own_traceparent.as_deref() };
            let outcome = {
                let store = bridge.store.enqueue_from(id, &spec, lang, &bridge.caller, &bridge.admission, provenance);
                tracing::Instrument::instrument(store, span.clone()).await
            };
            let (delay, why) = match outcome {
                Ok(EnqueueOutcome::Queued) => {
                    tracing::info!(job = %id, language = %lang.name, topic = envelope.topic, offset = envelope.offset,
                        identity = %intake.identity, "job queued");
                    bridge.metrics.queued.with_label_values(&[&lang.name]).inc();
                    return Handled::Done;
                }
                Ok(EnqueueOutcome::TooLarge { needed, max_bytes }) => {
                    let why = format!(
                        "the job needs {needed} bytes of storage, more than the bridge's key may hold ({max_bytes})"
                    );
                    return self.refuse(envelope, &Rejection::new(why)).await;
                }
                Ok(EnqueueOutcome::QueueFull) => (PAUSED_TICK, "queue_full"),
                Ok(EnqueueOutcome::RateLimited { retry_after }) => (retry_after.max(PAUSED_TICK), "rate_limited"),
                Ok(EnqueueOutcome::TooManyActive { .. }) => (PAUSED_TICK, "too_many_active"),
                Ok(EnqueueOutcome::OverQuota { retry_after, .. }) => {
                    let delay = retry_after.unwrap_or(Duration::from_secs(1));
                    (delay.clamp(PAUSED_TICK, Duration::from_secs(5)), "over_quota")
                }
                Ok(EnqueueOutcome::StorageFull { .. }) => (Duration::from_secs(1), "storage_full"),
                Err(e) => {
                    tracing::warn!(error = %e, job = %id, "enqueue failed; trying again");
                    (Duration::from_secs(1), "redis")
                }
            };
            if !self.wait(delay, why).await {
                return Handled::Stopping;
            }
        }
    }

    /// Pauses the assigned partitions (if they are not yet) and waits `delay`,
    /// polling the consumer meanwhile. False when the bridge is stopping.
    async fn wait(&mut self, delay: Duration, why: &str) -> bool {
        let consumer = self.consumer;
        self.bridge.metrics.refusals.with_label_values(&[why]).inc();
        if !self.flow.paused {
            tracing::info!(reason = why, "pausing the partitions");
            self.flow.paused = true;
            self.bridge.metrics.paused.set(1);
        }
        pause(consumer);
        let until = tokio::time::Instant::now() + delay;
        loop {
            let tick = tokio::time::sleep_until(until.min(tokio::time::Instant::now() + PAUSED_TICK));
            tokio::select! {
                _ = self.shutdown.cancelled() => return false,
                _ = tick => {}
                m = consumer.recv() => {
                    if let Ok(m) = m {
                        self.flow.seek_back(consumer, m.topic(), m.partition(), m.offset());
                    }
                }
            }
            // A rebalance meanwhile assigns partitions unpaused.
            pause(consumer);
            if tokio::time::Instant::now() >= until {
                return true;
            }
        }
    }

    fn resume(&mut self) {
        if !self.flow.paused {
            return;
        }
        if let Ok(assigned) = self.consumer.assignment() {
            if let Err(e) = self.consumer.resume(&assigned) {
                tracing::warn!(error = %e, "cannot resume the partitions");
            }
        }
        tracing::info!("partitions resumed");
        self.flow = Flow::default();
        self.bridge.metrics.paused.set(0);
    }
}

impl Flow {
    /// A message handed out while paused (fetched before the pause) is fetched
    /// again after the resume: its partition is sought back to it.
    fn seek_back(&mut self, consumer: &BridgeConsumer, topic: &str, partition: i32, offset: i64) {
        let lowest = self.sought.entry((topic.to_string(), partition)).or_insert(i64::MAX);
        if offset >= *lowest {
            return;
        }
        *lowest = offset;
        if let Err(e) = consumer.seek(topic, partition, Offset::Offset(offset), Duration::from_secs(5)) {
            tracing::warn!(error = %e, topic, partition, offset, "seek back failed");
        }
    }
}

fn pause(consumer: &BridgeConsumer) {
    if let Ok(assigned) = consumer.assignment() {
        if let Err(e) = consumer.pause(&assigned) {
            tracing::warn!(error = %e, "cannot pause the partitions");
        }
    }
}
