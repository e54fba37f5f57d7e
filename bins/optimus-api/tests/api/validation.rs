//! Every bad input gets a 4xx with a JSON error that says what is accepted, and
//! none of them writes to Redis.

use serde_json::{json, Value};

use crate::helpers::{python_job, spawn_app, spawn_app_with, TestApp};

async fn refused(app: &TestApp, body: Value, status: u16, code: &str) -> String {
    let (got, answer) = app.post_job(&body).await;
    assert_eq!(got, status, "{body} -> {answer}");
    assert_eq!(answer["error"]["code"], code, "{answer}");
    answer["error"]["message"].as_str().unwrap().to_string()
}

fn with(field: &str, value: Value) -> Value {
    let mut job = python_job();
    job[field] = value;
    job
}

#[tokio::test]
async fn malformed_and_incomplete_bodies() {
    let app = spawn_app().await;
    let (status, body) = app.post_raw("{\"language\": ").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("malformed_json")));

    let msg = refused(&app, json!({"source_code": "x"}), 422, "invalid_field").await;
    assert!(msg.contains("language"), "{msg}");
    let msg = refused(&app, with("timout_ms", json!(5)), 422, "invalid_field").await;
    assert!(msg.contains("timout_ms"), "{msg}");
    refused(&app, with("timeout_ms", json!("soon")), 422, "invalid_field").await;

    let res = app.http.post(format!("{}/jobs", app.base)).body("{}").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 415);
    assert_eq!(app.redis_keys().await, 0);
}

#[tokio::test]
async fn language_and_source() {
    let app = spawn_app().await;
    let msg = refused(&app, with("language", json!("pyhton")), 422, "unknown_language").await;
    assert!(msg.contains("pyhton") && msg.contains("python, java, rust, c, cpp, go, javascript, bash"), "{msg}");
    refused(&app, with("source_code", json!("  \n")), 422, "empty_source").await;
    let msg = refused(&app, with("source_code", json!("x".repeat(64 * 1024 + 1))), 422, "source_too_large").await;
    assert!(msg.contains("65536"), "{msg}");
    assert_eq!(app.redis_keys().await, 0);
}

#[tokio::test]
async fn tests_and_limits() {
    let app = spawn_app().await;
    let tests: Vec<Value> = (0..101).map(|_| json!({"input": ""})).collect();
    let msg = refused(&app, with("test_cases", json!(tests)), 422, "too_many_tests").await;
    assert!(msg.contains("100"), "{msg}");
    refused(&app, with("test_cases", json!([])), 422, "no_tests").await;
    let big = "1".repeat(1024 * 1024 + 1);
    refused(&app, with("test_cases", json!([{"input": big}])), 422, "test_too_large").await;
    refused(&app, with("test_cases", json!([{"input": "", "expected_output": big}])), 422, "test_too_large").await;
    refused(&app, with("test_cases", json!([{"id": 3}, {"id": 3}])), 422, "duplicate_test_id").await;
    let msg = refused(&app, with("timeout_ms", json!(10)), 422, "limit_out_of_range").await;
    assert!(msg.contains("50 to 30000"), "{msg}");
    refused(&app, with("timeout_ms", json!(3_600_000)), 422, "limit_out_of_range").await;
    refused(&app, with("memory_limit_mb", json!(4)), 422, "limit_out_of_range").await;
    refused(&app, with("memory_limit_mb", json!(1 << 20)), 422, "limit_out_of_range").await;
    assert_eq!(app.redis_keys().await, 0);

    // At the limits, accepted: a 1 MiB input and a 64 KiB source.
    let mut job = with("test_cases", json!([{"input": "1".repeat(1024 * 1024)}]));
    job["source_code"] = json!("x".repeat(64 * 1024));
    assert_eq!(app.post_job(&job).await.0, 202);
}

#[tokio::test]
async fn a_body_over_the_cap_is_413() {
    let app = spawn_app_with(|settings, _| settings.limits.max_body_bytes = 4096).await;
    let body = with("source_code", json!("x".repeat(5000))).to_string();
    let (status, answer) = app.post_raw(body).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("body_too_large")), "{answer}");
    assert_eq!(app.redis_keys().await, 0);
}
