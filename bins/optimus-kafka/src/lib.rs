//! The Kafka bridge: an ingress and egress beside the HTTP API. It consumes job
//! messages, turns each into an ordinary Optimus job (the same validation, limits,
//! quotas, retries and dead letters as `POST /jobs`, on the same Redis queues and
//! workers), and produces one answer per job when it ends.
//!
//! # Layout
//! - [`config`]: its settings ([`BridgeConfig`]), SCRC's variable names where SCRC has one.
//! - [`shape`]: the message shapes (SCRC's envelopes, Codex's topics): pure
//!   parsing of messages into drafts, and rendering of ended jobs into answers.
//! - [`intake`]: the consumer: each message becomes a job under an id made from
//!   its identity, and its offset is stored for commit only once the job is in
//!   Redis; when a queue is too deep or the key is over its limits, the
//!   partitions pause (nothing is buffered).
//! - [`outbox`]: the producer of results: what the bridge's name is owed
//!   (`optimus:kafka:<name>:outbox`, put due by the script that ends each job) is
//!   taken for a lease, produced by the idempotent producer, and settled once the
//!   broker acknowledged it.
//! - [`metrics`]: `/metrics` and `/health`.
//!
//! Delivery: a message is consumed at least once and makes exactly one job (its
//! id is a UUIDv5 of the bridge, the owner and the message's identity, and the
//! enqueue leaves an existing job as it is); a result is produced at least once,
//! the same bytes each time, and never again once the broker has acknowledged it
//! and Redis has recorded that.

pub mod config;
pub mod intake;
pub mod metrics;
pub mod outbox;
pub mod shape;

use std::sync::Arc;

use optimus_api::ApiConfig;
use optimus_common::store::{Admission, Caller, Notify};
use optimus_common::{LanguageRegistry, Settings, Store};
use rdkafka::ClientConfig;
use uuid::Uuid;

pub use config::BridgeConfig;

/// Why the bridge cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Store(#[from] optimus_common::StoreError),
}

/// What the consumer and the producer of results share.
pub struct Bridge {
    pub config: BridgeConfig,
    pub store: Store,
    pub registry: LanguageRegistry,
    pub settings: Settings,
    /// For the API's validation rules (only its limits are read).
    pub api: ApiConfig,
    /// Who the bridge's jobs belong to.
    pub caller: Caller,
    pub admission: Admission,
    /// `Notify::Kafka(name)`: what the bridge's jobs owe, and to whom.
    pub notify: Notify,
    pub topics: shape::Topics,
    pub metrics: Arc<metrics::BridgeMetrics>,
}

/// The namespace of job ids made from message identities.
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f70_7469_6d75_735f_6b61_666b_615f_6964);

impl Bridge {
    pub fn rules(&self) -> optimus_api::validate::Rules<'_> {
        optimus_api::validate::Rules { registry: &self.registry, settings: &self.settings, api: &self.api }
    }

    pub fn name(&self) -> &str {
        match &self.notify {
            Notify::Kafka(name) => name,
            Notify::Callback => unreachable!("a bridge's notify is Kafka"),
        }
    }

    /// The id of the job a message identity makes: the same for every delivery
    /// of that message to a bridge of this name and owner, different for any other.
    pub fn job_id(&self, identity: &str) -> Uuid {
        let name = format!("{}\n{}\n{identity}", self.name(), self.caller.key_id());
        Uuid::new_v5(&ID_NAMESPACE, name.as_bytes())
    }

    /// The settings both Kafka clients share: the brokers, then `KAFKA_CONFIG`.
    pub fn client_config(&self) -> Result<ClientConfig, BridgeError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.config.brokers);
        c.set("client.id", format!("optimus-kafka-{}", self.name()));
        for (k, v) in self.config.extra().map_err(BridgeError::Config)? {
            c.set(k, v);
        }
        Ok(c)
    }
}
