//! Judge0 and Piston clients, unchanged, against a real stack: the official
//! `judge0` Python SDK and the `pistonapi` wrapper (pinned in
//! tests/compat/requirements.txt, installed by scripts/prepare.sh), then raw HTTP
//! for what those clients do not exercise.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{stack, stack_api};

/// The Python of the project's client venv.
fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compat/.venv/bin/python");
    assert!(
        venv.exists(),
        "THE CLIENT TESTS CANNOT RUN: {} is missing; scripts/prepare.sh makes it (python3 -m venv, then \
         pip install -r tests/compat/requirements.txt)",
        venv.display()
    );
    venv
}

/// Runs one scenario of tests/compat/clients.py and returns what it printed.
async fn scenario(name: &str, base: &str, key: &str) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compat/clients.py");
    let (name, base, key) = (name.to_string(), base.to_string(), key.to_string());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script)
            .arg(&name)
            .arg(&base)
            .arg(&key)
            .env("JUDGE0_SUPPRESS_PREVIEW_WARNING", "1")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "clients.py failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("clients.py printed no JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge0_sdk_and_pistonapi_work_unchanged() {
    let mut stack = stack_api(&["python"], |api| api.auth = optimus_api::config::Auth::Required).await;
    // Keys are required: the SDK must send one as X-Auth-Token.
    let (_, key) = stack.store.add_key("sdk", 0, optimus_common::Quota::NONE).await.unwrap();

    let run = scenario("judge0_run", &stack.base, &key).await;
    assert_eq!(run["about"], "1.13.1");
    assert_eq!(run["config_keys"], 39, "Judge0 1.13.1's /config_info keys");
    assert_eq!(run["submission"]["status"], 3, "{run}");
    assert_eq!(run["submission"]["stdout"], "hello optimus\n");
    assert_eq!(run["submission"]["language"], 71);
    assert!(run["submission"]["time"].as_f64().is_some() && run["submission"]["memory"].as_f64().unwrap() > 0.0);

    // Another key's submission does not exist for this one.
    let (_, other) = stack.store.add_key("other", 0, optimus_common::Quota::NONE).await.unwrap();
    let token = run["submission"]["token"].as_str().unwrap();
    let res = reqwest::Client::new()
        .get(format!("{}/judge0/submissions/{token}", stack.base))
        .header("X-Auth-Token", &other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);

    let batch = scenario("judge0_batch", &stack.base, &key).await;
    let statuses: Vec<&Value> = batch["submissions"].as_array().unwrap().iter().map(|s| &s["status"]).collect();
    assert_eq!(statuses, vec![&json!(3), &json!(3), &json!(4)], "{batch}");
    assert_eq!(batch["submissions"][2]["stdout"], "4\n");

    let env = scenario("judge0_env", &stack.base, &key).await;
    assert_eq!(env["submission"]["status"], 3, "{env}");
    assert_eq!(env["submission"]["stdout"], "45\n");

    // pistonapi sends a form body, and holds no key: a deployment that serves it
    // runs without keys; here the key's header is added by no one, so it must fail.
    let piston = tokio::task::spawn_blocking({
        let base = stack.base.clone();
        move || {
            let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compat/clients.py");
            Command::new(python()).arg(script).arg("piston_execute").arg(base).output().unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!piston.status.success(), "an unauthenticated Piston call must be refused");
    stack.store.revoke_key("sdk").await.unwrap();
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pistonapi_executes_with_stdin_and_args() {
    let mut stack = stack(&["python"]).await;
    let out = scenario("piston_execute", &stack.base, "").await;
    assert_eq!(out["output"], "from stdin ['one', 'two words']\n", "{out}");
    assert_eq!(out["python"]["version"], "3.11.2");
    assert!(out["python"]["aliases"].as_array().unwrap().contains(&json!("py3")));
    stack.stop().await;
}

async fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let res = reqwest::Client::new().post(url).json(body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piston_compiles_rust_and_reports_a_failed_compile_as_its_run() {
    let mut stack = stack(&["rust"]).await;
    let ok = json!({
        "language": "rust", "version": "*",
        "files": [{"name": "main.rs", "content": "use std::io::Read;\nfn main() { let mut s = String::new(); std::io::stdin().read_to_string(&mut s).unwrap(); let a: Vec<String> = std::env::args().skip(1).collect(); println!(\"{} {}\", s.trim(), a.join(\"+\")); }"}],
        "stdin": "in", "args": ["x", "y"], "run_timeout": 3000, "run_memory_limit": -1
    });
    let (status, body) = post_json(&format!("{}/api/v2/piston/execute/", stack.base), &ok).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["language"], "rust");
    assert_eq!(body["run"]["stdout"], "in x+y\n", "{body}");
    assert_eq!(body["run"]["code"], 0);
    assert_eq!(body["compile"]["code"], 0);
    assert!(body["run"]["memory"].as_u64().unwrap() > 0 && body["run"]["wall_time"].is_u64());

    let broken =
        json!({"language": "rs", "version": "1.x", "files": [{"content": "fn main() { let x: u8 = \"no\"; }"}]});
    let (status, body) = post_json(&format!("{}/api/v2/execute", stack.base), &broken).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["compile"]["code"], 0);
    assert!(body["compile"]["stderr"].as_str().unwrap().contains("mismatched types"), "{body}");
    assert_eq!(body["run"], body["compile"], "Piston repeats a failed compile as the run");

    let (status, body) = post_json(
        &format!("{}/api/v2/execute", stack.base),
        &json!({"language": "rust", "version": "0.9.0", "files": [{"content": "fn main(){}"}]}),
    )
    .await;
    assert_eq!((status, body["message"].as_str()), (400, Some("rust-0.9.0 runtime is unknown")));
    let (status, body) = post_json(&format!("{}/api/v2/execute", stack.base), &json!({"language": "rust"})).await;
    assert_eq!((status, body["message"].as_str()), (400, Some("version is required as a string")));
    let (status, body) = post_json(
        &format!("{}/api/v2/execute", stack.base),
        &json!({"language": "rust", "version": "*", "files": [{"content": "fn main(){}"}], "run_timeout": 10_000_000}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().starts_with("run_timeout cannot exceed the configured limit"), "{body}");
    let res = reqwest::Client::new()
        .post(format!("{}/api/v2/execute", stack.base))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 415);
    stack.stop().await;
}

/// A one-shot HTTP receiver for a callback: answers 503 to the first request
/// (the sender must try again), then 200, and hands over the second body.
async fn callback_receiver() -> (String, tokio::sync::oneshot::Receiver<(String, Value)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/done", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        for attempt in 0.. {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut raw = Vec::new();
            let mut buf = [0u8; 8192];
            let (head, body) = loop {
                let n = conn.read(&mut buf).await.unwrap();
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break (head.to_string(), body.to_string());
                    }
                }
            };
            let status = if attempt == 0 { "503 Service Unavailable" } else { "200 OK" };
            conn.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes())
                .await
                .unwrap();
            if attempt > 0 {
                let method = head.split_whitespace().next().unwrap_or("").to_string();
                let _ = tx.send((method, serde_json::from_str(&body).unwrap()));
                return;
            }
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge0_http_fields_statuses_errors_and_callbacks() {
    let mut stack = stack(&["python"]).await;
    let j = |path: &str| format!("{}/judge0{path}", stack.base);
    let http = reqwest::Client::new();

    // wait=true, plain text, fields=*: exactly Judge0's 35 keys.
    let (status, sub) = post_json(
        &j("/submissions?wait=true&fields=*"),
        &json!({"source_code": "print(input()[::-1])  \n", "language_id": 71, "stdin": "abc", "expected_output": "cba\n\n"}),
    )
    .await;
    assert_eq!(status, 201, "{sub}");
    assert_eq!(sub.as_object().unwrap().len(), 35, "{sub}");
    assert_eq!(sub["status"], json!({"id": 3, "description": "Accepted"}));
    assert_eq!(sub["stdout"], "cba\n");
    assert_eq!(sub["language"]["id"], 71);
    assert!(sub["time"].as_str().unwrap().parse::<f64>().is_ok() && sub["memory"].as_u64().unwrap() > 0);
    let created = sub["created_at"].as_str().unwrap();
    assert!(chrono::NaiveDateTime::parse_from_str(created, "%Y-%m-%dT%H:%M:%S%.3fZ").is_ok(), "{created}");

    // base64 both ways; the default field set.
    let token = {
        let (status, body) = post_json(
            &j("/submissions?base64_encoded=true"),
            &json!({"source_code": judge0_b64("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"), "language_id": "71"}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    };
    let sub =
        poll(&http, &j(&format!("/submissions/{token}?base64_encoded=true")), |s| s["status"]["id"].as_u64() > Some(2))
            .await;
    let keys: Vec<&String> = sub.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 8, "the default fields: {sub}");
    assert_eq!(sub["status"]["id"], 7, "SIGSEGV: {sub}");

    // Memory limit: 12 with a message saying so; non-zero exit: 11.
    let (_, mle) = post_json(
        &j("/submissions?wait=true&fields=status,message,memory"),
        &json!({"source_code": "x = bytearray(200 * 1024 * 1024)\nprint(len(x))", "language_id": 71, "memory_limit": 65536}),
    )
    .await;
    assert_eq!(mle["status"]["id"], 12, "{mle}");
    assert!(mle["message"].as_str().unwrap().starts_with("Memory limit exceeded"), "{mle}");
    let (_, nzec) =
        post_json(&j("/submissions?wait=true"), &json!({"source_code": "raise SystemExit(3)", "language_id": 71}))
            .await;
    assert_eq!(nzec["status"]["id"], 11, "{nzec}");

    // Validation in Judge0's shape.
    let (status, errors) = post_json(
        &j("/submissions"),
        &json!({"language_id": 9999, "cpu_time_limit": 1000, "memory_limit": "lots", "enable_network": true}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(errors["source_code"], json!(["can't be blank"]));
    assert_eq!(errors["language_id"], json!(["language with id 9999 doesn't exist"]));
    assert!(errors["cpu_time_limit"][0].as_str().unwrap().starts_with("must be less than or equal to"), "{errors}");
    assert_eq!(errors["memory_limit"], json!(["is not a number"]));
    assert_eq!(errors["enable_network"], json!(["enabling network is not allowed"]));
    let res = http.get(j("/submissions/not-a-token?fields=bogus")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid fields: [bogus]");

    // Batches: in order, an invalid one answered in place; nulls for unknown tokens.
    let (status, tokens) = post_json(
        &j("/submissions/batch"),
        &json!({"submissions": [
            {"source_code": "print(1)", "language_id": 71},
            {"source_code": "print(2)"},
            {"source_code": "print(3)", "language_id": 71}
        ]}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(tokens[1], json!({"language_id": ["can't be blank"]}));
    let list = format!(
        "{},{},{}",
        tokens[0]["token"].as_str().unwrap(),
        uuid::Uuid::new_v4(),
        tokens[2]["token"].as_str().unwrap()
    );
    let batch = poll(&http, &j(&format!("/submissions/batch?tokens={list}&fields=stdout,status_id")), |b| {
        b["submissions"][0]["status_id"] == 3 && b["submissions"][2]["status_id"] == 3
    })
    .await;
    assert_eq!(batch["submissions"][0]["stdout"], "1\n");
    assert_eq!(batch["submissions"][1], Value::Null);
    assert_eq!(batch["submissions"][2]["stdout"], "3\n");

    // A callback: PUT when done, tried again after the receiver's 503.
    let (url, received) = callback_receiver().await;
    let (status, body) = post_json(
        &j("/submissions"),
        &json!({"source_code": "print('called back')", "language_id": 71, "callback_url": url}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (method, put) = tokio::time::timeout(Duration::from_secs(60), received).await.expect("no callback").unwrap();
    assert_eq!(method, "PUT");
    assert_eq!(put["token"], body["token"]);
    assert_eq!(put["status"]["id"], 3);
    assert_eq!(put["stdout"], judge0_b64("called back\n"));
    // The count follows the receiver's answer: wait for it, then nothing is owed.
    let counted = |name: &'static str| {
        let store = stack.store.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let stats = store.callback_stats().await.unwrap();
                if stats.1.get(name) == Some(&1) || tokio::time::Instant::now() > deadline {
                    return stats;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let stats = counted("callbacks_delivered").await;
    assert_eq!((stats.0, stats.1.get("callbacks_delivered")), (0, Some(&1)), "{stats:?}");

    // A receiver that is never there: tried, given up, counted.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let (status, _) = post_json(
        &j("/submissions"),
        &json!({"source_code": "print(1)", "language_id": 71, "callback_url": format!("http://{closed}/gone")}),
    )
    .await;
    assert_eq!(status, 201);
    let stats = counted("callbacks_failed").await;
    assert_eq!((stats.0, stats.1.get("callbacks_failed")), (0, Some(&1)), "{stats:?}");
    let health: Value = http.get(format!("{}/health", stack.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["callbacks"], json!({"pending": 0, "delivered": 1, "failed": 1}));

    // Languages and statuses.
    let languages: Value = http.get(j("/languages")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<u64> = languages.as_array().unwrap().iter().map(|l| l["id"].as_u64().unwrap()).collect();
    for id in [71, 62, 73, 50, 52, 54, 60, 63, 46] {
        assert!(ids.contains(&id), "{id} in {languages}");
    }
    let statuses: Value = http.get(j("/statuses")).send().await.unwrap().json().await.unwrap();
    assert_eq!(statuses.as_array().unwrap().len(), 14);
    let python: Value = http.get(j("/languages/71")).send().await.unwrap().json().await.unwrap();
    assert_eq!(python["name"], "Python (3.11.2)");
    stack.stop().await;
}

fn judge0_b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

async fn poll(http: &reqwest::Client, url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let body: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        if done(&body) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{url} never got there: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
