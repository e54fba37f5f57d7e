//! `OPTIMUS_LOG_FORMAT=json`: every line the API and a worker write is one JSON
//! object, and the lines about a job carry its id.

use optimus_common::testkit::RedisServer;
use optimus_tests::System;
use serde_json::Value;

use crate::sum_job;

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_with_the_job_id() {
    let mut system = System::start(RedisServer::start(), &["python"], &[("OPTIMUS_LOG_FORMAT", "json")]);
    let res = system.http.post(system.url("/jobs")).json(&sum_job(2)).send().await.unwrap();
    let id = res.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    assert_eq!(system.wait(&id, None).await["status"], "completed");
    system.stop();

    let parse = |log: String| -> Vec<Value> {
        log.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}")))
            .collect()
    };
    let api = parse(system.api.log());
    let worker = parse(system.workers[0].log());
    for line in api.iter().chain(&worker) {
        for key in ["timestamp", "level", "target", "message", "fields"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
    }
    let about = |lines: &[Value], message: &str| {
        lines.iter().find(|l| l["message"] == message && l["job_id"] == id.as_str()).cloned()
    };
    assert!(about(&api, "job queued").is_some(), "{api:#?}");
    let judged = about(&worker, "job judged").unwrap_or_else(|| panic!("{worker:#?}"));
    assert_eq!(judged["level"], "INFO");
    assert_eq!(judged["target"], "optimus_worker::worker");
    assert!(judged["fields"]["verdict"].as_str().unwrap().contains("Accepted"), "{judged}");
    assert!(about(&worker, "job stored").is_some());
}
