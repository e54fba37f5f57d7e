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

    // An alias means its language, and the job is stored under the language's name.
    let (status, answer) = app.post_job(&with("language", json!("py3"))).await;
    assert_eq!(status, 202, "{answer}");
    let job: Value = app
        .http
        .get(format!("{}/jobs/{}", app.base, answer["job_id"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(job["language"], "python");
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

#[tokio::test]
async fn judging_options() {
    let app = spawn_app().await;
    let msg = refused(&app, with("mode", json!("grade")), 422, "invalid_field").await;
    assert!(msg.contains("run") && msg.contains("submit") && msg.contains("custom"), "{msg}");

    // Comparison rules: unknown names, bad options, bad tolerances, per test too.
    let msg = refused(&app, with("compare", json!("fuzzy")), 422, "invalid_compare").await;
    assert!(msg.contains("'fuzzy'") && msg.contains("\"unordered_lines\""), "{msg}");
    let msg = refused(&app, with("compare", json!({"type": "float", "abs_tol": -1})), 422, "invalid_compare").await;
    assert!(msg.contains("abs_tol"), "{msg}");
    let msg = refused(&app, with("compare", json!({"type": "tokens", "rel_tol": 1})), 422, "invalid_compare").await;
    assert!(msg.contains("takes no option 'rel_tol'"), "{msg}");
    refused(&app, with("compare", json!({"abs_tol": 1})), 422, "invalid_compare").await;
    refused(&app, with("compare", json!(3)), 422, "invalid_compare").await;
    let msg =
        refused(&app, with("test_cases", json!([{"id": 9, "input": "", "compare": "nope"}])), 422, "invalid_compare")
            .await;
    assert!(msg.starts_with("test 9: compare"), "{msg}");

    // Programs beside the job's: known languages, real sources.
    let msg =
        refused(&app, with("checker", json!({"language": "cobol", "source_code": "x"})), 422, "unknown_language").await;
    assert!(msg.starts_with("checker.language"), "{msg}");
    refused(&app, with("checker", json!({"language": "c"})), 422, "invalid_field").await;
    refused(&app, with("checker", json!({"language": "c", "source_code": " "})), 422, "empty_source").await;
    refused(&app, with("solution_code", json!("")), 422, "empty_source").await;
    refused(&app, with("solution_language", json!("c")), 422, "incompatible_options").await;
    let mut job = with("solution_code", json!("int main(){}"));
    job["solution_language"] = json!("fortran");
    refused(&app, job, 422, "unknown_language").await;

    // Options that cannot go together.
    let mut job = with("checker", json!({"language": "c", "source_code": "int main(){}"}));
    job["compare"] = json!("tokens");
    let msg = refused(&app, job, 422, "incompatible_options").await;
    assert!(msg.contains("checker") && msg.contains("compare"), "{msg}");
    let mut job = with("mode", json!("custom"));
    job["compare"] = json!("exact");
    let msg = refused(&app, job, 422, "incompatible_options").await;
    assert!(msg.contains("custom") && msg.contains("compare"), "{msg}");
    let mut job = with("mode", json!("custom"));
    job["test_cases"] = json!([{"input": "1", "expected_output": "1"}]);
    refused(&app, job, 422, "incompatible_options").await;

    // python_call: Python only, needs a Python solution, takes calls, not outputs.
    let mut job = with("harness", json!("python_call"));
    let msg = refused(&app, job.clone(), 422, "incompatible_options").await;
    assert!(msg.contains("solution_code"), "{msg}");
    job["solution_code"] = json!("def f(): return 1");
    job["test_cases"] = json!([{"input": "f()", "expected_output": "1"}]);
    let msg = refused(&app, job.clone(), 422, "incompatible_options").await;
    assert!(msg.contains("expected_output"), "{msg}");
    job["test_cases"] = json!([{"input": "f()"}]);
    job["compare"] = json!("tokens");
    refused(&app, job.clone(), 422, "incompatible_options").await;
    job["solution_language"] = json!("c");
    job["compare"] = json!("float");
    let msg = refused(&app, job.clone(), 422, "incompatible_options").await;
    assert!(msg.contains("Python reference solution"), "{msg}");
    job["language"] = json!("bash");
    refused(&app, job.clone(), 422, "incompatible_options").await;
    assert_eq!(app.redis_keys().await, 0);

    // And a job with every option, well formed, is accepted.
    job["language"] = json!("python");
    job["solution_language"] = json!("python");
    job["mode"] = json!("submit");
    assert_eq!(app.post_job(&job).await.0, 202);
}

#[tokio::test]
async fn arguments_and_extra_files() {
    let app = spawn_app().await;
    let file = |name: &str| json!({ "name": name, "content": "x = 1\n" });
    // Accepted: plain names beside the source, and arguments.
    let mut ok = with("files", json!([file("helper.py"), file("data_1.txt")]));
    ok["args"] = json!(["--verbose", "a b", ""]);
    assert_eq!(app.post_job(&ok).await.0, 202);

    for (name, needle) in [
        ("../etc/passwd", "not a plain file name"),
        ("dir/helper.py", "not a plain file name"),
        (".hidden", "not a plain file name"),
        ("", "not a plain file name"),
        ("main.py", "the job's own source"),
    ] {
        let msg = refused(&app, with("files", json!([file(name)])), 422, "invalid_files").await;
        assert!(msg.contains(needle) && msg.contains("files[0]"), "{name}: {msg}");
    }
    let msg = refused(&app, with("files", json!([file("a.py"), file("a.py")])), 422, "invalid_files").await;
    assert!(msg.contains("twice"), "{msg}");
    let many: Vec<Value> = (0..17).map(|i| file(&format!("f{i}.py"))).collect();
    let msg = refused(&app, with("files", json!(many)), 422, "invalid_files").await;
    assert!(msg.contains("16"), "{msg}");
    let big = json!([{ "name": "big.py", "content": "x".repeat(70_000) }]);
    let msg = refused(&app, with("files", big), 422, "invalid_files").await;
    assert!(msg.contains("65536"), "{msg}");
    // The harness's own file is taken too.
    let mut harnessed = with("files", json!([file("submission.py")]));
    harnessed["harness"] = json!("python_call");
    refused(&app, harnessed, 422, "invalid_files").await;

    let msg = refused(&app, with("args", json!(["a\u{0}b"])), 422, "invalid_args").await;
    assert!(msg.contains("args[0]") && msg.contains("NUL"), "{msg}");
    let msg = refused(&app, with("args", json!(vec!["x"; 65])), 422, "invalid_args").await;
    assert!(msg.contains("64"), "{msg}");
    let msg = refused(&app, with("args", json!(["y".repeat(5000)])), 422, "invalid_args").await;
    assert!(msg.contains("4096"), "{msg}");
}

#[tokio::test]
async fn bodies_past_the_budget_wait_then_get_busy() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(|settings, _| settings.limits.body_budget_bytes = 1024 * 1024).await;
    // A client that announces 900 kB and sends it slowly holds that much of the budget.
    let mut slow = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    slow.write_all(
        b"POST /jobs HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 900000\r\n\r\n{",
    )
    .await
    .unwrap();
    let big = json!({"language": "python", "source_code": "x".repeat(900_000)});
    let mut tries = 0;
    let answer_while_held = loop {
        tries += 1;
        assert!(tries < 500, "the slow body never held its share of the budget");
        let (status, answer) = app.post_job(&big).await;
        // The slow request may not have been read yet: until it holds its share, bodies pass.
        if status == 503 {
            break answer;
        }
        assert_eq!((status, answer["error"]["code"].as_str()), (422, Some("source_too_large")), "{answer}");
    };
    assert_eq!(answer_while_held["error"]["code"], "busy", "{answer_while_held}");
    // Small bodies still fit beside it.
    let (status, _) = app.post_job(&python_job()).await;
    assert_eq!(status, 202);
    // Once it is gone, its share is free again.
    drop(slow);
    let (status, answer) = loop {
        let (status, answer) = app.post_job(&big).await;
        if status != 503 {
            break (status, answer);
        }
    };
    assert_eq!((status, answer["error"]["code"].as_str()), (422, Some("source_too_large")), "{answer}");
}

#[tokio::test]
async fn a_judge0_callback_on_a_port_not_allowed_is_refused() {
    let app = spawn_app().await;
    for url in ["http://example.com:6379/", "http://203.0.113.9:22/x"] {
        let res = app
            .http
            .post(format!("{}/judge0/submissions", app.base))
            .json(&json!({"source_code": "print(1)", "language_id": 71, "callback_url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{url}");
        let answer: Value = res.json().await.unwrap();
        let said = answer["callback_url"][0].as_str().unwrap_or_default();
        assert!(said.contains("80, 443"), "{url}: {answer}");
    }
    assert_eq!(app.redis_keys().await, 0);
}
