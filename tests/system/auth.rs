//! API keys as an operator makes them (`optimus-cli keys`) and a client sends them.

use optimus_common::testkit::RedisServer;
use optimus_tests::System;
use serde_json::Value;

use crate::sum_job;

/// Makes a key with the CLI; returns the key it printed.
fn add_key(system: &System, args: &[&str]) -> String {
    let mut all = vec!["keys", "add"];
    all.extend_from_slice(args);
    let (ok, out, err) = system.cli(&all);
    assert!(ok, "keys add failed: {err}");
    let key = out.trim().to_string();
    assert!(key.starts_with("opt_") && key.len() > 40, "{out}");
    key
}

async fn submit(system: &System, key: Option<&str>, header: &str) -> (u16, Value, Option<String>) {
    let mut req = system.http.post(system.url("/jobs")).json(&sum_job(1));
    if let Some(key) = key {
        req = match header {
            "bearer" => req.bearer_auth(key),
            _ => req.header("X-Auth-Token", key),
        };
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let retry_after = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (status, res.json().await.unwrap(), retry_after)
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_guard_every_route_but_health() {
    let mut system = System::start(RedisServer::start(), &["python"], &[("OPTIMUS_AUTH", "required")]);
    // No key yet: nothing is open but the probes.
    let (status, body, _) = submit(&system, None, "").await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthenticated")), "{body}");

    let alice = add_key(&system, &["--name", "alice"]);
    let bob = add_key(&system, &["--name", "bob", "--rate", "2/min"]);
    let (ok, list, _) = system.cli(&["keys", "list"]);
    assert!(ok && list.contains("alice") && list.contains("bob"), "{list}");
    assert!(!list.contains(&alice), "the list must never show a key");

    // Now every route needs a key.
    let (status, body, _) = submit(&system, None, "").await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthenticated")), "{body}");
    let (status, body, _) = submit(&system, Some("opt_not-a-key"), "bearer").await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthenticated")), "{body}");
    let res = system.http.get(system.url("/languages")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let res = system.http.get(system.url("/health")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "health stays open to probes");

    // Alice's job is hers alone; the Judge0-style header works too.
    let (status, body, _) = submit(&system, Some(&alice), "x-auth-token").await;
    assert_eq!(status, 202, "{body}");
    let id = body["job_id"].as_str().unwrap().to_string();
    let job = system.wait(&id, Some(&alice)).await;
    assert_eq!(job["result"]["overall_status"], "accepted", "{job}");
    let res = system.http.get(system.url(&format!("/jobs/{id}"))).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 404, "another key's job must look absent");
    let res = system.http.delete(system.url(&format!("/jobs/{id}"))).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 404);

    // Bob may submit 2 a minute: the third is refused, with when to come back.
    for _ in 0..2 {
        assert_eq!(submit(&system, Some(&bob), "bearer").await.0, 202);
    }
    let (status, body, retry_after) = submit(&system, Some(&bob), "bearer").await;
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("rate_limited")), "{body}");
    let wait: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=30).contains(&wait), "one job every 30 s: wait {wait} s");

    // Revoked: 403 from now on, and the API stays closed to anonymous callers.
    let (ok, out, err) = system.cli(&["keys", "revoke", "alice"]);
    assert!(ok && out.contains("revoked"), "{out}{err}");
    let (status, body, _) = submit(&system, Some(&alice), "bearer").await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("key_revoked")), "{body}");
    assert_eq!(submit(&system, None, "").await.0, 401);
    system.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_may_hold_only_so_many_jobs_at_once() {
    // No worker: jobs stay queued, so the cap is what refuses.
    let mut system = System::start(RedisServer::start(), &[], &[]);
    let carol = add_key(&system, &["--name", "carol", "--max-queued", "2"]);
    let dave = add_key(&system, &["--name", "dave"]);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body, _) = submit(&system, Some(&carol), "bearer").await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["job_id"].as_str().unwrap().to_string());
    }
    let (status, body, retry_after) = submit(&system, Some(&carol), "bearer").await;
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("too_many_active_jobs")), "{body}");
    assert!(retry_after.is_some());
    // Another key is not held back by carol's jobs.
    assert_eq!(submit(&system, Some(&dave), "bearer").await.0, 202);
    // A cancelled job frees its place.
    let res = system.http.delete(system.url(&format!("/jobs/{}", ids[0]))).bearer_auth(&carol).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(submit(&system, Some(&carol), "bearer").await.0, 202);
    system.stop();
}
