//! Faults under the bridge: it is SIGKILLed with scripts in flight, a second
//! bridge joins its group and the first leaves, the broker freezes, Redis
//! restarts from its append-only file. Every script must still end
//! with one job and at least one result, and a result produced twice must be the
//! same message.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{send, KafkaStack, Reader};

fn script(id: &str) -> String {
    json!({
        "id": id, "language": "python", "source": "a, b = map(int, input().split())\nprint(a + b)",
        "tests": [{ "input": "2 3\n", "expected_output": "5\n" }],
    })
    .to_string()
}

/// Reads results until every id has one; asserts each id's results are one message.
async fn every_result(stack: &KafkaStack, ids: &[String]) -> HashMap<String, Vec<Value>> {
    let mut reader = Reader::new(&stack.broker, &["script-results"]);
    reader.until_keys(ids.len(), Duration::from_secs(600), || stack.logs()).await;
    let mut by_id: HashMap<String, Vec<Value>> = HashMap::new();
    for r in &reader.seen {
        by_id.entry(r.key.clone()).or_default().push(r.body.clone());
    }
    for id in ids {
        let results = by_id.get(id).unwrap_or_else(|| panic!("no result for {id}"));
        assert!(results.iter().all(|r| r == &results[0]), "{id} has different results: {results:#?}");
        assert_eq!(results[0]["status"], "OK", "{id}: {:#}", results[0]);
    }
    by_id
}

/// How many jobs the stack's Redis holds.
async fn jobs_stored(stack: &KafkaStack) -> usize {
    let client = redis::Client::open(stack.system.redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("optimus:job:*").query_async(&mut conn).await.unwrap();
    keys.len()
}

#[tokio::test]
async fn a_bridge_killed_with_200_scripts_in_flight_leaves_one_job_and_a_result_for_each() {
    let mut stack = KafkaStack::start("scrc", &["scripts", "script-results"], &["python"], &[]).await;
    let producer = stack.broker.producer();
    let ids: Vec<String> = (0..200).map(|i| format!("kill-{i}")).collect();
    for id in &ids {
        send(&producer, "scripts", None, &script(id)).await;
    }
    // Killed once some are queued (and some results produced), before all are.
    stack.wait_queued(40).await;
    stack.restart_bridge(&[]);
    let results = every_result(&stack, &ids).await;
    assert_eq!(jobs_stored(&stack).await, 200, "one job per script id");
    let twice = results.values().filter(|r| r.len() > 1).count();
    eprintln!("results produced more than once: {twice} of 200");
    stack.stop();
}

#[tokio::test]
async fn a_bridge_joining_the_group_and_one_leaving_it_lose_and_double_nothing() {
    let mut stack = KafkaStack::start("scrc", &["scripts", "script-results"], &["python"], &[]).await;
    let producer = stack.broker.producer();
    let ids: Vec<String> = (0..200).map(|i| format!("group-{i}")).collect();
    for id in &ids[..100] {
        send(&producer, "scripts", None, &script(id)).await;
    }
    stack.wait_queued(20).await;
    // A second member: the group rebalances, and the partitions are split.
    let mut second = stack.add_bridge(&[]);
    second.wait_for_log("partitions assigned", Duration::from_secs(60));
    for id in &ids[100..] {
        send(&producer, "scripts", None, &script(id)).await;
    }
    // The first leaves (SIGTERM) with messages still coming: the second takes all.
    let start = std::time::Instant::now();
    while stack.bridge.log().matches("job queued").count() + second.log().matches("job queued").count() < 120 {
        assert!(start.elapsed() < Duration::from_secs(120), "not 120 queued:\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stack.bridge.terminate(), "the first bridge did not stop cleanly:\n{}", stack.logs());
    stack.bridge = second;
    let results = every_result(&stack, &ids).await;
    assert_eq!(jobs_stored(&stack).await, 200, "one job per script id");
    let log = stack.bridge.log();
    assert!(log.contains("job queued"), "the second bridge queued nothing:\n{log}");
    let twice = results.values().filter(|r| r.len() > 1).count();
    eprintln!("results produced more than once: {twice} of 200");
    stack.stop();
}

#[tokio::test]
async fn a_broker_frozen_for_20_s_loses_nothing() {
    let stack = KafkaStack::start("scrc", &["scripts", "script-results"], &["python"], &[]).await;
    let producer = stack.broker.producer();
    let ids: Vec<String> = (0..100).map(|i| format!("frozen-{i}")).collect();
    for id in &ids {
        send(&producer, "scripts", None, &script(id)).await;
    }
    stack.wait_queued(20).await;
    stack.broker.freeze();
    tokio::time::sleep(Duration::from_secs(20)).await;
    stack.broker.thaw();
    every_result(&stack, &ids).await;
    assert_eq!(jobs_stored(&stack).await, 100, "one job per script id");
    stack.stop();
}

#[tokio::test]
async fn redis_restarted_from_its_append_only_file_under_the_bridge_loses_nothing() {
    let mut stack = KafkaStack::start("scrc", &["scripts", "script-results"], &["python"], &[]).await;
    let producer = stack.broker.producer();
    let ids: Vec<String> = (0..100).map(|i| format!("redis-{i}")).collect();
    for id in &ids[..50] {
        send(&producer, "scripts", None, &script(id)).await;
    }
    stack.wait_queued(20).await;
    // SIGKILLed, and back from its append-only file 3 s later, while scripts keep coming.
    stack.system.redis.stop();
    for id in &ids[50..] {
        send(&producer, "scripts", None, &script(id)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.system.redis.restart();
    every_result(&stack, &ids).await;
    assert_eq!(jobs_stored(&stack).await, 100, "one job per script id");
    stack.stop();
}
