//! Every accepted job ends, exactly once, whatever dies under it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use optimus_common::testkit::RedisServer;
use optimus_tests::{containers_with, EngineProxy, System};
use serde_json::{json, Value};

use crate::sum_job;

/// How many times each job id was stored as finished, from the workers' logs.
fn stored_counts(system: &System) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for worker in &system.workers {
        for line in worker.log().lines().filter(|l| l.contains("job stored")) {
            if let Some(id) = line.split("job{job_id=").nth(1).and_then(|rest| rest.get(..36)) {
                *counts.entry(id.to_string()).or_insert(0) += 1;
            }
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_killed_under_load_loses_no_accepted_job() {
    let mut system = System::start(RedisServer::start(), &["python"], &[("OPTIMUS_RETRY_BASE_MS", "200")]);
    let mut accepted: Vec<String> = Vec::new();
    let mut refused = 0;
    // A job every 50 ms; Redis is SIGKILLed after the 20th and restarted from its
    // append-only file three seconds later, while submissions go on.
    let mut killed_at: Option<Instant> = None;
    for n in 0..60 {
        if n == 20 {
            system.redis.stop();
            killed_at = Some(Instant::now());
        }
        if killed_at.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
            system.redis.restart();
            killed_at = None;
        }
        match system.http.post(system.url("/jobs")).json(&sum_job(2)).send().await {
            Ok(res) if res.status().as_u16() == 202 => {
                let body: Value = res.json().await.unwrap();
                accepted.push(body["job_id"].as_str().unwrap().to_string());
            }
            Ok(res) => {
                // Refused while Redis is away: 503 with a JSON error and Retry-After.
                assert_eq!(res.status().as_u16(), 503);
                assert!(res.headers().get("retry-after").is_some());
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
                refused += 1;
            }
            Err(e) => panic!("the API did not answer: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused > 0, "Redis was down for some submissions");
    assert!(accepted.len() >= 30, "only {} accepted", accepted.len());
    for id in &accepted {
        let job = system.wait(id, None).await;
        assert_eq!(job["status"], "completed", "{job}\n{}", system.all_logs());
        assert_eq!(job["result"]["overall_status"], "accepted", "{job}");
    }
    // Exactly one stored result per job, and nothing left on any list.
    let counts = stored_counts(&system);
    for id in &accepted {
        assert_eq!(counts.get(id), Some(&1), "job {id} stored {:?} times\n{}", counts.get(id), system.all_logs());
    }
    system.stop();
    let store = optimus_common::Store::connect(&system.redis.settings()).await.unwrap();
    assert_eq!(store.depths("python").await.unwrap(), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_job_leaves_one_result_and_no_container() {
    let mut system = System::start(RedisServer::start(), &["python"], &[("OPTIMUS_RETRY_BASE_MS", "200")]);
    let mut sleeper = sum_job(1);
    sleeper["source_code"] = json!("import time\ntime.sleep(2)\na, b = map(int, input().split())\nprint(a + b)");
    let res = system.http.post(system.url("/jobs")).json(&sleeper).send().await.unwrap();
    let id = res.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    let start = Instant::now();
    loop {
        let job: Value =
            system.http.get(system.url(&format!("/jobs/{id}"))).send().await.unwrap().json().await.unwrap();
        if job["status"] == "running" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never ran: {job}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let victim = system.workers[0].log();
    system.workers[0].kill();
    let victim_id = victim
        .lines()
        .filter(|l| l.contains("worker serving"))
        .find_map(|l| l.split("worker=").nth(1).and_then(|w| w.split_whitespace().next()))
        .expect("the worker's id in its log")
        .to_string();
    // A second worker takes the job over once the first one's heartbeat expires.
    system.add_worker("python");
    let job = system.wait(&id, None).await;
    assert_eq!(job["status"], "completed", "{job}\n{}", system.all_logs());
    assert_eq!(job["result"]["overall_status"], "accepted", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert!(job["attempt_errors"][0]["error"].as_str().unwrap().contains("stopped responding"), "{job}");
    assert_eq!(stored_counts(&system).get(&id), Some(&1));
    // Its event stream tells the story: the first attempt, the hand-back, the second.
    let text = system.http.get(system.url(&format!("/jobs/{id}/events"))).send().await.unwrap().text().await.unwrap();
    let events = optimus_tests::parse_sse(&text);
    let story: Vec<(&str, Option<u64>)> = events
        .iter()
        .filter(|e| e.event != "compiled")
        .map(|e| (e.event.as_str(), e.data["attempt"].as_u64().or(e.data["attempts"].as_u64())))
        .collect();
    assert_eq!(
        story,
        [
            ("queued", None),
            ("running", Some(1)),
            ("requeued", Some(1)),
            ("running", Some(2)),
            ("test", Some(2)),
            ("completed", None)
        ],
        "{text}"
    );
    // The dead worker's containers are swept by the live one.
    let start = Instant::now();
    while !containers_with(&format!("optimus.worker={victim_id}")).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(90), "the killed worker's containers stayed");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    system.stop();
    assert!(containers_with(&format!("optimus.deployment={}", system.deployment)).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_whose_engine_goes_away_waits_and_resumes() {
    let proxy = EngineProxy::start();
    let docker_host = format!("unix://{}", proxy.path.display());
    let mut system = System::start(RedisServer::start(), &["python"], &[("DOCKER_HOST", &docker_host)]);
    let first = system.http.post(system.url("/jobs")).json(&sum_job(1)).send().await.unwrap();
    let first = first.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    assert_eq!(system.wait(&first, None).await["status"], "completed");

    // The engine stops answering; jobs submitted meanwhile wait, none fails.
    proxy.cut();
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let res = system.http.post(system.url("/jobs")).json(&sum_job(1)).send().await.unwrap();
        waiting.push(res.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_string());
    }
    system.workers[0].wait_for_log("container engine", Duration::from_secs(60));
    for id in &waiting {
        let job: Value =
            system.http.get(system.url(&format!("/jobs/{id}"))).send().await.unwrap().json().await.unwrap();
        assert!(matches!(job["status"].as_str(), Some("queued" | "running")), "{job}");
    }
    proxy.restore();
    for id in &waiting {
        let job = system.wait(id, None).await;
        assert_eq!(job["status"], "completed", "{job}\n{}", system.all_logs());
        assert!(job["attempts"].as_u64().unwrap() <= 1, "an engine outage burnt an attempt: {job}");
    }
    system.stop();
}
