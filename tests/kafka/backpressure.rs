//! 2,000 messages against one slow worker: the bridge pauses its partitions at
//! the queue-depth bound instead of reading ahead, so the queue stays under the
//! bound and the bridge's memory stays flat.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{send, KafkaStack};

/// A field of `/proc/<pid>/status` in KiB: `VmRSS` now, `VmHWM` the peak.
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_backlog_of_2000_messages_waits_in_kafka_not_in_the_bridge() {
    const BOUND: usize = 50;
    let bound = BOUND.to_string();
    let stack =
        KafkaStack::start("scrc", &["scripts", "script-results"], &[], &[("KAFKA_MAX_QUEUE_DEPTH", &bound)]).await;
    // One slot: the queue fills far faster than it drains.
    let mut worker = std::process::Command::new(optimus_tests::binary("optimus-worker"));
    worker
        .args(["--language", "python", "--concurrency", "1"])
        .env("REDIS_URL", stack.system.redis.url())
        .env("OPTIMUS_LANGUAGES", optimus_tests::languages_file())
        .env("NO_COLOR", "1");
    let mut worker = optimus_tests::Process::spawn("slow-worker", worker, stack.system.logs.path());
    worker.wait_for_log("worker serving", Duration::from_secs(120));
    let pid = stack.bridge.pid();
    let before = memory_kib(pid, "VmRSS:");
    let producer = stack.broker.producer();
    // Each message carries 32 KiB of input: 64 MiB in all, four times what
    // librdkafka may fetch ahead (16 MiB), which the bridge must not hold.
    let input = "7 ".repeat(16 * 1024);
    for i in 0..2000 {
        let script = json!({
            "id": format!("bp-{i}"), "language": "python", "source": "print(len(input()))",
            "tests": [{ "input": input, "expected_output": "32768\n" }],
        });
        send(&producer, "scripts", None, &script.to_string()).await;
    }
    let store = optimus_common::Store::connect(&stack.system.redis.settings()).await.unwrap();
    let mut deepest = 0;
    let start = Instant::now();
    // For 40 s: the queue never passes the bound, and the bridge has paused.
    while start.elapsed() < Duration::from_secs(40) {
        deepest = deepest.max(store.queue_len("python").await.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(deepest <= BOUND, "the queue held {deepest} jobs, past the bound of {BOUND}");
    assert!(deepest >= BOUND / 2, "the queue never filled ({deepest}): the test did not load the bridge");
    assert!(stack.bridge.log().contains("pausing the partitions"), "{}", stack.logs());
    let peak = memory_kib(pid, "VmHWM:");
    eprintln!("bridge RSS {before} KiB before the messages, peak {peak} KiB; deepest queue {deepest}");
    assert!(peak < before + 32 * 1024, "the bridge's memory grew from {before} to {peak} KiB: it read ahead");
    // Its pool goes with it; the backlog stays in Redis and Kafka.
    assert!(worker.terminate(), "the worker did not stop cleanly:\n{}", worker.log());
    stack.stop();
}
