//! A job that fails on the platform every time: retried with a growing backoff,
//! then `failed` on its language's dead-letter list, where the CLI finds it.

use std::time::Duration;

use optimus_common::testkit::RedisServer;
use optimus_tests::System;
use serde_json::{json, Value};

use crate::sum_job;

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_job_ends_on_the_dead_letter_list_after_backoffs() {
    // A job whose checker's image was never built fails in the sandbox every time.
    let (_dir, registry) = optimus_tests::registry_with_ghost();
    let mut system = System::start(
        RedisServer::start(),
        &["python"],
        &[("OPTIMUS_LANGUAGES", &registry), ("OPTIMUS_RETRY_BASE_MS", "400"), ("OPTIMUS_MAX_ATTEMPTS", "3")],
    );
    let mut poison = sum_job(1);
    poison["checker"] = json!({ "language": "ghost", "source_code": "print('AC')" });
    let res = system.http.post(system.url("/jobs")).json(&poison).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let id = res.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    // A healthy job beside it is not held up.
    let res = system.http.post(system.url("/jobs")).json(&sum_job(1)).send().await.unwrap();
    let healthy = res.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    assert_eq!(system.wait(&healthy, None).await["status"], "completed");

    let job = system.wait(&id, None).await;
    assert_eq!(job["status"], "failed", "{job}\n{}", system.all_logs());
    assert_eq!(job["attempts"], 3, "{job}");
    let attempts = job["attempt_errors"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{job}");
    // Each retry waited at least half its backoff (400 ms, then 800 ms) after the
    // attempt before it failed.
    let at = |i: usize| chrono::DateTime::parse_from_rfc3339(attempts[i]["at"].as_str().unwrap()).unwrap();
    let (gap1, gap2) = ((at(1) - at(0)).num_milliseconds(), (at(2) - at(1)).num_milliseconds());
    assert!(gap1 >= 200 && gap2 >= 400, "backoffs not visible: {gap1} ms, {gap2} ms\n{job}");
    assert!(attempts[0]["error"].as_str().unwrap().contains("optimus-ghost-never-built"), "{job}");

    // The CLI shows it, requeues it (it fails again: still poison), and purges the list.
    let (ok, out, err) = system.cli(&["--config", &registry, "jobs", "dead"]);
    assert!(ok, "{err}");
    assert!(out.contains(&id) && out.contains("ghost-never-built") && out.contains("3 attempts"), "{out}");
    let (ok, out, err) = system.cli(&["--config", &registry, "jobs", "retry", &id]);
    assert!(ok, "{err}");
    assert!(out.contains("1 of 1 dead-lettered jobs requeued"), "{out}");
    let start = std::time::Instant::now();
    let again = loop {
        assert!(start.elapsed() < optimus_tests::JOB_DEADLINE, "the retried job did not fail again");
        let job: Value =
            system.http.get(system.url(&format!("/jobs/{id}"))).send().await.unwrap().json().await.unwrap();
        if job["status"] == "failed" && job["attempt_errors"].as_array().unwrap().len() == 6 {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(again["attempts"], 3, "{again}");
    let (ok, out, _) = system.cli(&["--config", &registry, "jobs", "purge-dead"]);
    assert!(ok && out.contains("1 dead-lettered jobs dropped"), "{out}");
    let (_, out, _) = system.cli(&["--config", &registry, "jobs", "dead", "--language", "python"]);
    assert!(out.contains("no dead-lettered jobs"), "{out}");
    let (ok, _, err) = system.cli(&["--config", &registry, "jobs", "retry", &id]);
    assert!(!ok && err.contains("not on a dead-letter list"), "{err}");
    system.stop();
}
