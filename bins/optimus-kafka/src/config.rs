//! The bridge's settings: flags, each with the environment variable that sets it
//! (SCRC's own names where SCRC has one). Redis, the languages and the job limits
//! are the same variables the API and workers read ([`optimus_common::Settings`]).

use std::net::SocketAddr;

use clap::Parser;

use crate::shape::{Shape, Topics};

/// What a language's queue may hold before the bridge stops taking messages for a
/// while (it pauses its partitions; nothing is buffered in its memory).
pub const DEFAULT_MAX_QUEUE_DEPTH: u64 = 1000;

#[derive(Debug, Clone, Parser)]
#[command(name = "optimus-kafka", about = "Takes jobs from Kafka topics and gives their results back on Kafka")]
pub struct BridgeConfig {
    /// Which message shape to speak.
    #[arg(long, env = "KAFKA_SHAPE", value_enum, default_value = "scrc")]
    pub shape: Shape,
    /// Comma-separated broker addresses.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "kafka:9092")]
    pub brokers: String,
    /// SCRC: the topic scripts are read from.
    #[arg(long, env = "KAFKA_TOPIC", default_value = "scripts")]
    pub topic: String,
    /// SCRC: the topic results are written to.
    #[arg(long, env = "KAFKA_RESULTS_TOPIC", default_value = "script-results")]
    pub results_topic: String,
    /// The consumer group (default: `scrc-runner` for SCRC, `code-execution` for Codex).
    #[arg(long, env = "KAFKA_GROUP_ID")]
    pub group_id: Option<String>,
    /// The bridge's name: bridges of one name share the results they owe, so run
    /// one name per group (default: the shape's name).
    #[arg(long, env = "KAFKA_BRIDGE_NAME")]
    pub name: Option<String>,
    /// An API key (`optimus-cli keys add`) whose quota and rate the bridge's jobs
    /// count against, and who owns them; without one they are anonymous.
    #[arg(long, env = "OPTIMUS_KAFKA_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Pause the partitions while a language's queue holds this many jobs.
    #[arg(long, env = "KAFKA_MAX_QUEUE_DEPTH", default_value_t = DEFAULT_MAX_QUEUE_DEPTH)]
    pub max_queue_depth: u64,
    /// The consumer's session timeout. A group's first join waits on it with some
    /// brokers (tansu): tests set it low.
    #[arg(long, env = "KAFKA_SESSION_TIMEOUT_MS", default_value_t = 45_000)]
    pub session_timeout_ms: u32,
    /// More librdkafka settings for both clients, `name=value` separated by commas
    /// (TLS, SASL: `security.protocol=ssl,ssl.ca.location=/ca.pem`).
    #[arg(long, env = "KAFKA_CONFIG", default_value = "")]
    pub extra: String,
    /// Where `/metrics` and `/health` are served.
    #[arg(long, env = "KAFKA_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_addr: SocketAddr,
}

impl BridgeConfig {
    pub fn group_id(&self) -> String {
        self.group_id.clone().unwrap_or_else(|| {
            match self.shape {
                Shape::Scrc => "scrc-runner",
                Shape::Codex => "code-execution",
            }
            .into()
        })
    }

    /// The bridge's name, checked: it names a Redis key.
    pub fn name(&self) -> Result<String, String> {
        let name = self.name.clone().unwrap_or_else(|| self.shape.as_str().into());
        if optimus_common::keys::is_bridge_name(&name) {
            Ok(name)
        } else {
            Err(format!("KAFKA_BRIDGE_NAME {name:?}: use 1 to 64 of a-z, 0-9, - and _"))
        }
    }

    pub fn topics(&self) -> Topics {
        match self.shape {
            Shape::Scrc => Topics::Scrc { scripts: self.topic.clone(), results: self.results_topic.clone() },
            Shape::Codex => Topics::Codex,
        }
    }

    /// `KAFKA_CONFIG` as pairs.
    pub fn extra(&self) -> Result<Vec<(String, String)>, String> {
        self.extra
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|pair| {
                pair.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| format!("KAFKA_CONFIG: {pair:?} is not name=value"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrcs_names_and_defaults_hold() {
        let c = BridgeConfig::parse_from(["optimus-kafka"]);
        assert_eq!((c.topic.as_str(), c.results_topic.as_str()), ("scripts", "script-results"));
        assert_eq!(c.group_id(), "scrc-runner");
        assert_eq!(c.name().unwrap(), "scrc");
        let c = BridgeConfig::parse_from(["optimus-kafka", "--shape", "codex", "--name", "Bad Name"]);
        assert_eq!(c.group_id(), "code-execution");
        assert!(c.name().is_err());
        let c = BridgeConfig::parse_from(["optimus-kafka", "--extra", "security.protocol=ssl, a=b"]);
        assert_eq!(c.extra().unwrap(), [("security.protocol".into(), "ssl".into()), ("a".into(), "b".into())]);
        assert!(BridgeConfig::parse_from(["optimus-kafka", "--extra", "oops"]).extra().is_err());
    }
}
