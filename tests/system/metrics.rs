//! The API's and a worker's `/metrics` after real jobs: the figures moved as the
//! jobs did, and `promtool check metrics` (Debian's `prometheus`) accepts both.

use optimus_common::testkit::RedisServer;
use optimus_tests::{promtool_accepts, sample, System};
use serde_json::json;

use crate::sum_job;

#[tokio::test(flavor = "multi_thread")]
async fn api_and_worker_metrics_follow_real_jobs_and_pass_promtool() {
    let mut system = System::start(RedisServer::start(), &["python"], &[("WORKER_METRICS_ADDR", "127.0.0.1:0")]);
    let worker_log = system.workers[0].wait_for_log("metrics served at /metrics", std::time::Duration::from_secs(30));
    let addr = worker_log
        .lines()
        .find(|l| l.contains("metrics served at /metrics"))
        .and_then(|l| optimus_tests::logged_field(l, "addr"))
        .expect("the worker logs its metrics address");
    let scrape = |url: String| {
        let http = system.http.clone();
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };

    // Three jobs (two pass, one wrong answer) and one refused.
    let mut wrong = sum_job(2);
    wrong["test_cases"][1]["expected_output"] = json!("nope\n");
    let mut ids = Vec::new();
    for job in [sum_job(1), sum_job(3), wrong] {
        let res = system.http.post(system.url("/jobs")).json(&job).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 202);
        ids.push(res.json::<serde_json::Value>().await.unwrap()["job_id"].as_str().unwrap().to_string());
    }
    let res = system
        .http
        .post(system.url("/jobs"))
        .json(&json!({"language": "cobol", "source_code": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 422);
    for id in &ids {
        assert_eq!(system.wait(id, None).await["status"], "completed");
    }

    let api = scrape(system.url("/metrics")).await;
    let python = [("language", "python")];
    assert_eq!(sample(&api, "optimus_jobs_submitted_total", &python), Some(3.0), "{api}");
    assert_eq!(sample(&api, "optimus_jobs_refused_total", &[("reason", "invalid")]), Some(1.0), "{api}");
    let posted = [("method", "POST"), ("route", "/jobs"), ("status", "202")];
    assert_eq!(sample(&api, "optimus_http_requests_total", &posted), Some(3.0), "{api}");
    let polled = [("method", "GET"), ("route", "/jobs/{id}")];
    assert!(sample(&api, "optimus_http_request_duration_seconds_count", &polled).unwrap_or(0.0) >= 3.0, "{api}");
    assert_eq!(sample(&api, "optimus_workers_alive", &python), Some(1.0), "{api}");
    assert_eq!(sample(&api, "optimus_queue_depth", &python), Some(0.0), "{api}");
    assert_eq!(sample(&api, "optimus_queue_oldest_age_seconds", &python), Some(0.0), "{api}");
    assert!(sample(&api, "optimus_redis_used_memory_bytes", &[]).unwrap() > 0.0, "{api}");
    promtool_accepts(&api, "API");

    let worker = scrape(format!("http://{addr}/metrics")).await;
    assert_eq!(
        sample(&worker, "optimus_jobs_finished_total", &[("language", "python"), ("verdict", "accepted")]),
        Some(2.0),
        "{worker}"
    );
    assert_eq!(sample(&worker, "optimus_jobs_finished_total", &[("verdict", "wrong_answer")]), Some(1.0), "{worker}");
    assert_eq!(sample(&worker, "optimus_test_verdicts_total", &[("verdict", "accepted")]), Some(5.0), "{worker}");
    assert_eq!(sample(&worker, "optimus_test_verdicts_total", &[("verdict", "wrong_answer")]), Some(1.0), "{worker}");
    assert_eq!(sample(&worker, "optimus_job_duration_seconds_count", &python), Some(3.0), "{worker}");
    assert_eq!(sample(&worker, "optimus_queue_wait_seconds_count", &python), Some(3.0), "{worker}");
    assert_eq!(sample(&worker, "optimus_test_run_duration_seconds_count", &python), Some(6.0), "{worker}");
    assert!(sample(&worker, "optimus_pool_containers", &[("state", "idle")]).is_some(), "{worker}");
    assert_eq!(sample(&worker, "optimus_jobs_failed_total", &python), Some(0.0), "{worker}");
    promtool_accepts(&worker, "worker");
    system.stop();
}

/// Every metric the Grafana dashboard queries is one that Optimus defines.
#[test]
fn the_dashboard_queries_only_metrics_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/optimus.json")).unwrap();
    let defined = ["bins/optimus-api/src/metrics.rs", "bins/optimus-worker/src/metrics.rs"]
        .map(|f| std::fs::read_to_string(root.join(f)).unwrap())
        .join("\n");
    let mut used: Vec<&str> = dashboard
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("optimus_"))
        .map(|w| w.trim_end_matches("_bucket"))
        .collect();
    used.sort_unstable();
    used.dedup();
    assert!(used.len() >= 15, "{used:?}");
    for name in used {
        assert!(defined.contains(&format!("\"{name}\"")), "the dashboard uses {name}, which no metrics.rs defines");
    }
}
