//! Every key a Lua script touches arrives in `KEYS`: read from Redis itself. A
//! `MONITOR` connection sees each command a script runs, with its key; each of
//! those keys must be one the script was given.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use optimus_common::store::{Caller, SCRIPTS};
use optimus_common::JobStatus;

use crate::helpers::{key, store_with};

/// The quoted words of one `MONITOR` line: `1700000000.1 [0 lua] "HSET" "k" "f"`.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('"') {
        let mut word = String::new();
        let mut chars = rest[start + 1..].char_indices();
        let mut end = rest.len() - start - 1;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        word.push(escaped);
                    }
                }
                '"' => {
                    end = i;
                    break;
                }
                c => word.push(c),
            }
        }
        words.push(word);
        rest = &rest[start + 1 + end + 1..];
    }
    words
}

#[tokio::test]
async fn no_script_touches_a_key_it_was_not_given() {
    let t = store_with(|settings| {
        settings.retry_base_ms = 1;
        settings.max_attempts = 2;
    })
    .await;
    let client = redis::Client::open(t.redis.url()).unwrap();
    let monitor = client.get_async_monitor().await.unwrap();
    let mut lines = monitor.into_on_message::<String>();

    // Every script, along every path that writes: enqueue (plain, owned, with a
    // callback), claim, finish, cancel (queued and running), hand-backs (delayed,
    // uncounted, failed), promotion, revival, callbacks.
    let owner = key("k1");
    let origin = optimus_common::job::Origin { json: "{}".into(), notify: Some(optimus_common::job::Notify::Callback) };
    let id = uuid::Uuid::new_v4();
    t.store
        .enqueue_from(
            id,
            &crate::helpers::python_spec(),
            t.python(),
            &owner,
            &optimus_common::store::Admission { quota: optimus_common::Quota::DEFAULT, memory_high_percent: 90 },
            optimus_common::store::Provenance { origin: Some(&origin), traceparent: Some("tp") },
        )
        .await
        .unwrap();
    let claimed = t.take("python-w").await;
    t.store.finish(&claimed.job, "python-w", JobStatus::Cancelled, None, None, Some(&claimed.spec)).await.unwrap();
    let queued = t.submit(&owner).await;
    t.store.cancel(queued, &owner).await.unwrap();
    t.submit(&Caller::Anonymous).await;
    let running = t.take("python-w").await.job.id;
    t.store.cancel(running, &Caller::Anonymous).await.unwrap();
    t.store.requeue(running, "python-w", "x").await.unwrap();
    let retried = t.submit(&owner).await;
    for _ in 0..2 {
        while t.store.queue_len("python").await.unwrap() == 0 {
            t.store.promote_due("python").await.unwrap();
        }
        t.take("python-w").await;
        t.store.requeue_uncounted(retried, "python-w", "engine").await.unwrap();
        t.take("python-w").await;
        t.store.requeue(retried, "python-w", "boom").await.unwrap();
    }
    t.store.revive(retried, "python").await.unwrap();
    t.store.take_due_callbacks(Duration::from_secs(1), 10).await.unwrap();
    t.store.ping().await.unwrap();

    // Read what the monitor saw, up to the PING that ends the run.
    let mut given: HashSet<String> = HashSet::new();
    let mut touched: Vec<(String, String)> = Vec::new();
    let mut scripts_run = 0;
    loop {
        let line =
            tokio::time::timeout(Duration::from_secs(10), lines.next()).await.expect("the monitor's lines").unwrap();
        let w = words(&line);
        let Some(command) = w.first().map(|c| c.to_ascii_uppercase()) else { continue };
        if line.contains(" lua]") {
            // TIME and INFO are the commands a script runs that name no key;
            // MEMORY USAGE names it second.
            match command.as_str() {
                "TIME" | "INFO" => {}
                "MEMORY" => touched.push((command, w[2].clone())),
                _ => touched.push((command, w[1].clone())),
            }
        } else if command == "EVALSHA" || command == "EVAL" {
            scripts_run += 1;
            let count: usize = w[2].parse().unwrap();
            given.extend(w[3..3 + count].iter().cloned());
        } else if command == "PING" {
            break;
        }
    }
    assert!(scripts_run >= 15, "the run exercised the scripts ({scripts_run} ran)");
    let strays: Vec<_> = touched.iter().filter(|(_, key)| !given.contains(key)).collect();
    assert!(strays.is_empty(), "keys touched but never given in KEYS: {strays:?}");
    assert_eq!(SCRIPTS.len(), 10);
}

/// The scripts' own text: no key is built in Lua from a prefix.
#[test]
fn no_script_concatenates_a_key() {
    for (name, source) in SCRIPTS {
        for line in source.lines().filter(|l| !l.trim_start().starts_with("--")) {
            assert!(!line.contains("optimus:"), "{name} spells a key: {line}");
            assert!(!line.contains(" .. id") && !line.contains("ARGV[1] .."), "{name} builds a key: {line}");
        }
    }
}
