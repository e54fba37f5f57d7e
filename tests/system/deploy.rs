//! `deploy/compose.yaml`, brought up for real with the Compose on this machine
//! (Debian's `docker-compose`): a job submitted through the API's published port
//! is accepted, and the stack comes down leaving no sandbox container behind; the
//! kafka profile answers a script produced to its broker.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One Compose project at a time: every project's workers label their containers
/// with the same deployment (`redis://redis:6379`), so one test's count of what
/// was left would see the other's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A Compose project that is taken down (volumes too) however the test ends.
struct Project {
    name: String,
    port: u16,
    prometheus_port: u16,
    profile: &'static str,
}

impl Project {
    fn new(profile: &'static str) -> Self {
        let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Project {
            name: format!("optimus-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            port: free(),
            prometheus_port: free(),
            profile,
        }
    }

    fn compose(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker-compose")
            .current_dir(repo())
            .args(["-f", "deploy/compose.yaml", "-p", &self.name, "--profile", self.profile])
            .args(args)
            .env("PROFILE", "debug")
            .env("OPTIMUS_PORT", self.port.to_string())
            .env("PROMETHEUS_PORT", self.prometheus_port.to_string())
            .output()
            .expect("docker-compose runs (Debian's docker-compose; scripts/prepare.sh installs it)")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let out = self.compose(&["down", "-v", "--timeout", "40"]);
        if !out.status.success() {
            eprintln!("docker-compose down failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compose_brings_up_a_stack_that_judges_a_job() {
    // The service image copies these debug builds in.
    for bin in ["optimus-api", "optimus-worker", "optimus-cli"] {
        optimus_tests::binary(bin);
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let project = Project::new("monitoring");
    let port = project.port;
    let up = project.compose(&["up", "-d", "--build", "redis", "api", "worker-python", "prometheus"]);
    assert!(up.status.success(), "compose up failed:\n{}", String::from_utf8_lossy(&up.stderr));

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let health: Option<Value> = match http.get(format!("{base}/health")).send().await {
            Ok(res) => res.json().await.ok(),
            Err(_) => None,
        };
        if health.as_ref().is_some_and(|h| h["dependencies"]["workers"]["python"]["workers"] == 1) {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let logs = project.compose(&["logs", "--no-color"]);
            panic!("the stack never became healthy: {health:?}\n{}", String::from_utf8_lossy(&logs.stdout));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let job = json!({
        "language": "python",
        "source_code": "print(int(input()) * 2)",
        "test_cases": [{"input": "21", "expected_output": "42"}]
    });
    let res = http.post(format!("{base}/jobs")).json(&job).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let id = res.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_string();
    let done = loop {
        let job: Value = http.get(format!("{base}/jobs/{id}")).send().await.unwrap().json().await.unwrap();
        if matches!(job["status"].as_str(), Some("completed" | "failed" | "cancelled")) {
            break job;
        }
        assert!(tokio::time::Instant::now() < deadline + Duration::from_secs(60), "{job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["result"]["overall_status"], "accepted", "{done}");

    // The monitoring profile's Prometheus scrapes the API and the worker.
    let prometheus = format!("http://127.0.0.1:{}/api/v1/query", project.prometheus_port);
    let query = |q: &'static str| {
        let (http, url) = (http.clone(), prometheus.clone());
        async move {
            let answer: Option<Value> = match http.get(&url).query(&[("query", q)]).send().await {
                Ok(res) => res.json().await.ok(),
                Err(_) => None,
            };
            answer.and_then(|a| a["data"]["result"][0]["value"][1].as_str().map(str::to_string))
        }
    };
    let scraped = loop {
        let api = query(r#"sum(optimus_jobs_submitted_total{language="python"})"#).await;
        let worker = query(r#"sum(optimus_jobs_finished_total{language="python",verdict="accepted"})"#).await;
        if let (Some(api), Some(worker)) = (&api, &worker) {
            break (api.clone(), worker.clone());
        }
        if tokio::time::Instant::now() > deadline + Duration::from_secs(90) {
            let logs = project.compose(&["logs", "--no-color", "prometheus"]);
            panic!("Prometheus never scraped both: {api:?} {worker:?}\n{}", String::from_utf8_lossy(&logs.stdout));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(scraped, ("1".to_string(), "1".to_string()));

    // Down: the worker drains and removes its pool; nothing of this deployment stays.
    drop(project);
    let deployment = optimus_common::fingerprint(&[b"redis://redis:6379"]);
    let left = optimus_tests::containers_with(&format!("optimus.deployment={deployment}"));
    assert!(left.is_empty(), "containers left after compose down: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn composes_kafka_profile_answers_a_script_produced_to_its_broker() {
    // The bridge's image copies this debug build in; the service image the rest.
    for bin in ["optimus-api", "optimus-worker", "optimus-cli", "optimus-kafka"] {
        optimus_tests::binary(bin);
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let project = Project::new("kafka");
    let up =
        project.compose(&["up", "-d", "--build", "redis", "worker-python", "kafka", "kafka-topics", "kafka-bridge"]);
    assert!(up.status.success(), "compose up failed:\n{}", String::from_utf8_lossy(&up.stderr));
    // What a pipeline would do, with the broker's own client inside its container.
    let tansu = |args: &str| project.compose(&["exec", "-T", "kafka", "sh", "-c", &format!("tansu {args}")]);
    let script = json!({
        "key": "compose-hello",
        "value": {
            "id": "compose-hello", "language": "python", "source": "print(int(input()) * 2)",
            "tests": [{ "input": "21\n", "expected_output": "42\n" }],
        },
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let logs = || String::from_utf8_lossy(&project.compose(&["logs", "--no-color"]).stdout).into_owned();
    // Produced once the topics are made.
    loop {
        let produced = tansu(&format!("cat produce --broker tcp://kafka:9092 scripts <<'EOF'\n{script}\nEOF"));
        if produced.status.success() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never produced: {}\n{}",
            String::from_utf8_lossy(&produced.stderr),
            logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let answer = loop {
        let read = tansu("cat consume --broker tcp://kafka:9092 --max-wait-time-ms 1000 script-results");
        let results: Vec<Value> = serde_json::from_slice(&read.stdout).unwrap_or_default();
        // tansu shows a key only when it is JSON: the script id is in the value.
        if let Some(answer) = results.into_iter().find(|r| r["value"]["id"] == "compose-hello") {
            break answer;
        }
        assert!(tokio::time::Instant::now() < deadline, "no result:\n{}", logs());
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let body = &answer["value"];
    assert_eq!((body["status"].as_str(), body["stdout"].as_str()), (Some("OK"), Some("42\n")), "{answer:#}");
    drop(project);
    let deployment = optimus_common::fingerprint(&[b"redis://redis:6379"]);
    let left = optimus_tests::containers_with(&format!("optimus.deployment={deployment}"));
    assert!(left.is_empty(), "containers left after compose down: {left:?}");
}

/// deploy/k8s/ against the Kubernetes schemas (kubernetes-validate, strict) and
/// KEDA's ScaledObject schema, and each ScaledObject against the queue of the
/// language its Deployment serves, as the key schema names it (tests/k8s/validate.py).
/// The per-language manifests are written by `optimus-cli deploy k8s`; that they
/// are current is the CLI's test.
#[test]
fn kubernetes_manifests_validate() {
    let python = repo().join("tests/compat/.venv/bin/python");
    assert!(python.exists(), "{} is missing: scripts/prepare.sh makes it", python.display());
    let registry = optimus_common::LanguageRegistry::load(optimus_tests::languages_file()).unwrap();
    let queues: serde_json::Map<String, Value> =
        registry.languages().iter().map(|l| (l.name.clone(), optimus_common::keys::queue(&l.name).into())).collect();
    let out = Command::new(python)
        .arg(repo().join("tests/k8s/validate.py"))
        .arg(repo())
        .arg(Value::Object(queues).to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let count = |kind: &str| summary["kinds"][kind].as_array().map_or(0, Vec::len);
    let languages = registry.languages().len();
    assert_eq!(count("ScaledObject"), languages, "{summary}");
    assert_eq!(count("Deployment"), languages + 1, "{summary}");
    assert_eq!((count("StatefulSet"), count("Service")), (1, 2), "{summary}");
}
