//! `kafka`: the bridge (`optimus-kafka`, SCRC shape) against the API beside it,
//! on the same stack and the same 1-test Python job.
//!
//! - Latency: one job at a time, `--runs` times each way: `POST /jobs` polled every
//!   5 ms until it ends, and a script produced to the scripts topic until its
//!   result is read from the results topic. The difference of the medians is what
//!   the bridge adds (the broker's two hops, the bridge's consume and its outbox).
//! - Throughput: `--jobs` scripts produced at once, timed from the first send to
//!   the last distinct result read; then the same number through `POST /jobs` at
//!   once, timed from the first submit to the last end seen by polling.
//!
//! The results topic is read by assignment from its high watermarks (no group),
//! so nothing from an earlier run is counted and no group join is waited for.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::{median, ms, percentile, programs, Client};

pub struct KafkaRun<'a> {
    pub brokers: &'a str,
    pub scripts: &'a str,
    pub results: &'a str,
    pub runs: usize,
    pub jobs: usize,
}

/// The longest the bench waits for the results it is owed.
const DEADLINE: Duration = Duration::from_secs(600);

struct Pipeline {
    producer: FutureProducer,
    consumer: StreamConsumer,
    scripts: String,
    /// Tells this run's scripts from any other's.
    run: String,
}

impl Pipeline {
    fn connect(run: &KafkaRun<'_>) -> anyhow::Result<Self> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", run.brokers)
            .set("linger.ms", "0")
            .create()
            .context("cannot make a Kafka producer")?;
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", run.brokers)
            .set("group.id", "optimus-bench")
            .set("enable.auto.commit", "false")
            // A fetch answered as soon as a result is there, not after librdkafka's 500 ms.
            .set("fetch.wait.max.ms", "10")
            .create()
            .context("cannot make a Kafka consumer")?;
        let metadata = consumer
            .fetch_metadata(Some(run.results), Duration::from_secs(10))
            .with_context(|| format!("no metadata for {} from {}", run.results, run.brokers))?;
        let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions()).map(|p| p.id()).collect();
        if partitions.is_empty() {
            bail!("topic {} has no partitions (create it first)", run.results);
        }
        let mut assignment = TopicPartitionList::new();
        for p in partitions {
            let (_, high) = consumer.fetch_watermarks(run.results, p, Duration::from_secs(10))?;
            assignment.add_partition_offset(run.results, p, Offset::Offset(high))?;
        }
        consumer.assign(&assignment)?;
        Ok(Pipeline {
            producer,
            consumer,
            scripts: run.scripts.to_string(),
            run: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    fn script(&self, n: usize) -> anyhow::Result<(String, String)> {
        let p = programs::program("python")?;
        let id = format!("bench-{}-{n}", self.run);
        let body = json!({ "id": id, "language": "python", "source": p.source, "tests": programs::tests(1) });
        Ok((id, body.to_string()))
    }

    async fn send(&self, id: &str, body: &str) -> anyhow::Result<()> {
        let record = FutureRecord::to(&self.scripts).key(id).payload(body);
        self.producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e)?;
        Ok(())
    }

    /// Reads results until every id of `waiting` has one; checks each is `OK`.
    async fn until_answered(&self, mut waiting: HashSet<String>) -> anyhow::Result<()> {
        let start = Instant::now();
        while !waiting.is_empty() {
            let Ok(message) = tokio::time::timeout(Duration::from_secs(5), self.consumer.recv()).await else {
                if start.elapsed() > DEADLINE {
                    bail!("{} results never came (is optimus-kafka running, on these topics?)", waiting.len());
                }
                continue;
            };
            let message = message?;
            let key = message.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
            if waiting.remove(&key) {
                let body: Value = serde_json::from_slice(message.payload().unwrap_or_default())?;
                if body["status"] != "OK" {
                    bail!("script {key} came back {}: {body}", body["status"]);
                }
            }
        }
        Ok(())
    }
}

pub async fn kafka(client: &Client, run: KafkaRun<'_>) -> anyhow::Result<()> {
    let pipeline = Pipeline::connect(&run)?;
    let job = programs::job("python", 1)?;
    let t0 = Instant::now();

    // One each first: the image's first container and the bridge's first fetch are not the figure.
    client.run(&job, t0, crate::POLL_ONE).await?;
    let (id, body) = pipeline.script(0)?;
    pipeline.send(&id, &body).await?;
    pipeline.until_answered(HashSet::from([id])).await?;

    let (mut api, mut bridge) = (Vec::new(), Vec::new());
    for n in 1..=run.runs {
        let finished = client.run(&job, t0, crate::POLL_ONE).await?;
        if finished.overall != "accepted" {
            bail!("the API's job ended {} {}", finished.status, finished.overall);
        }
        api.push(ms(finished.latency));
        let (id, body) = pipeline.script(n)?;
        let start = Instant::now();
        pipeline.send(&id, &body).await?;
        pipeline.until_answered(HashSet::from([id])).await?;
        bridge.push(ms(start.elapsed()));
    }
    println!("1-test Python job, one at a time ({} runs each, ms):", run.runs);
    println!("  {:<28} {:>8} {:>8} {:>8}", "", "p50", "p90", "max");
    for (what, v) in [("POST /jobs, polled every 5 ms", &api), ("Kafka script to result", &bridge)] {
        println!("  {what:<28} {:>8.0} {:>8.0} {:>8.0}", median(v), percentile(v, 90.0), percentile(v, 100.0));
    }
    println!("  the bridge adds {:.0} ms at the median", median(&bridge) - median(&api));

    // Throughput: all at once, each way.
    let scripts = (0..run.jobs).map(|n| pipeline.script(run.runs + 1 + n)).collect::<anyhow::Result<Vec<_>>>()?;
    let start = Instant::now();
    let sends = scripts.iter().map(|(id, body)| pipeline.send(id, body));
    for sent in futures_util::future::join_all(sends).await {
        sent?;
    }
    let produced = start.elapsed();
    pipeline.until_answered(scripts.into_iter().map(|(id, _)| id).collect()).await?;
    let through_kafka = start.elapsed();
    let start = Instant::now();
    let (finished, _) = crate::load(client, (0..run.jobs).map(|_| (Duration::ZERO, job.clone())).collect()).await?;
    let through_api = start.elapsed();
    if let Some(f) = finished.iter().find(|f| f.overall != "accepted") {
        bail!("an API job ended {} {}", f.status, f.overall);
    }
    let rate = |d: Duration| run.jobs as f64 / d.as_secs_f64();
    println!("{} 1-test Python jobs at once:", run.jobs);
    println!(
        "  through Kafka: {:.1} s ({:.1} s to produce them) = {:.1} jobs/s",
        through_kafka.as_secs_f64(),
        produced.as_secs_f64(),
        rate(through_kafka)
    );
    println!("  through POST /jobs: {:.1} s = {:.1} jobs/s", through_api.as_secs_f64(), rate(through_api));
    Ok(())
}
