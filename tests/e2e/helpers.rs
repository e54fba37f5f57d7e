use std::sync::Arc;
use std::time::{Duration, Instant};

use optimus_api::AppState;
use optimus_common::testkit::RedisServer;
use optimus_common::{LanguageRegistry, Store};
use optimus_worker::{Worker, WorkerConfig};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Redis, the API and one worker per language, all on this machine.
pub struct Stack {
    pub base: String,
    /// The label value its workers' containers carry (`optimus.deployment`).
    pub deployment: String,
    /// Kept for its lifetime: dropping it stops Redis.
    _redis: RedisServer,
    pub store: Store,
    http: reqwest::Client,
    shutdown: CancellationToken,
    workers: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// The longest any test here waits for a job to end.
const JOB_DEADLINE: Duration = Duration::from_secs(120);

pub async fn stack(languages: &[&str]) -> Stack {
    stack_on(RedisServer::start(), languages).await
}

/// A stack on a Redis the test started itself.
pub async fn stack_on(redis: RedisServer, languages: &[&str]) -> Stack {
    stack_with(redis, languages, |_| {}).await
}

/// A stack whose language registry is adjusted first.
pub async fn stack_with(
    redis: RedisServer,
    languages: &[&str],
    adjust: impl Fn(&mut optimus_common::LanguageConfig),
) -> Stack {
    stack_configured(redis, languages, adjust, |_| {}).await
}

/// A stack whose registry and workers' configuration are adjusted first.
pub async fn stack_configured(
    redis: RedisServer,
    languages: &[&str],
    adjust: impl Fn(&mut optimus_common::LanguageConfig),
    configure: impl Fn(&mut WorkerConfig),
) -> Stack {
    stack_full(redis, languages, adjust, configure, |_| {}).await
}

/// A stack whose API's own configuration is adjusted first.
pub async fn stack_api(languages: &[&str], configure_api: impl FnOnce(&mut optimus_api::ApiConfig)) -> Stack {
    stack_full(RedisServer::start(), languages, |_| {}, |_| {}, configure_api).await
}

async fn stack_full(
    redis: RedisServer,
    languages: &[&str],
    adjust: impl Fn(&mut optimus_common::LanguageConfig),
    configure: impl Fn(&mut WorkerConfig),
    configure_api: impl FnOnce(&mut optimus_api::ApiConfig),
) -> Stack {
    // The workers' logs, shown with a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "optimus_worker=info".into()))
        .with_test_writer()
        .try_init();
    let settings = redis.settings();
    let loaded = LanguageRegistry::load(&settings.languages_file).unwrap();
    let mut registry = loaded.clone();
    for lang in loaded.languages() {
        let mut lang = registry.remove(&lang.name).unwrap();
        adjust(&mut lang);
        registry.add(lang).unwrap();
    }
    let store = Store::connect(&settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    // Callbacks in tests go to receivers on loopback.
    // Every client here is 127.0.0.1, and some tests open a thousand streams: the
    // cap per peer address is off (the API's own tests cross it).
    let mut api = optimus_api::ApiConfig {
        callback_targets: optimus_api::config::CallbackTargets::Any,
        callback_ports: optimus_api::config::CallbackPorts::ANY,
        connections: optimus_api::conn::ConnLimits { max_per_peer: 0, ..Default::default() },
        ..optimus_api::ApiConfig::default()
    };
    configure_api(&mut api);
    let state = AppState::new(store.clone(), registry.clone(), settings.clone(), api);
    tokio::spawn(optimus_api::run(listener, state, shutdown.clone()));
    let mut workers = Vec::new();
    let registry = Arc::new(registry);
    for name in languages {
        let config = WorkerConfig {
            language: registry.get(name).unwrap().clone(),
            registry: registry.clone(),
            concurrency: 2,
            settings: settings.clone(),
            drain_timeout: Duration::from_secs(5),
            pool: optimus_worker::PoolConfig::for_language(registry.get(name).unwrap(), 2),
            docker_socket: None,
            compile_cache: None,
            host_slots: optimus_worker::HostSlots::open(
                std::env::temp_dir().join("optimus-test-slots"),
                optimus_worker::HostSlots::default_budget(),
            )
            .unwrap(),
        };
        let mut config = config;
        configure(&mut config);
        let worker = Worker::start(config).await.unwrap_or_else(|e| {
            panic!("worker for {name} did not start ({e:#}); build images with: optimus-cli build-image --all")
        });
        workers.push(tokio::spawn(worker.run(shutdown.clone())));
    }
    let deployment = optimus_common::fingerprint(&[redis.url().as_bytes()]);
    Stack { base, deployment, _redis: redis, store, http: reqwest::Client::new(), shutdown, workers }
}

impl Stack {
    /// This stack's own Redis, to stop and restart it.
    pub fn redis(&mut self) -> &mut RedisServer {
        &mut self._redis
    }

    /// The URL of this stack's own Redis, for tests that reach under the store.
    pub fn redis_url(&self) -> String {
        self._redis.url()
    }

    pub async fn submit(&self, job: &Value) -> String {
        let res = self.http.post(format!("{}/jobs", self.base)).json(job).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 202);
        let body: Value = res.json().await.unwrap();
        body["job_id"].as_str().unwrap().to_string()
    }

    pub async fn get(&self, id: &str) -> Value {
        self.http.get(format!("{}/jobs/{id}", self.base)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn cancel(&self, id: &str) -> (u16, Value) {
        let res = self.http.delete(format!("{}/jobs/{id}", self.base)).send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    /// Polls until the job reaches a terminal status.
    pub async fn wait(&self, id: &str) -> Value {
        self.wait_for(id, |s| matches!(s, "completed" | "failed" | "cancelled")).await
    }

    pub async fn wait_for(&self, id: &str, done: impl Fn(&str) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let job = self.get(id).await;
            if done(job["status"].as_str().unwrap_or("")) {
                return job;
            }
            assert!(start.elapsed() < JOB_DEADLINE, "job {id} still {} after {JOB_DEADLINE:?}", job["status"]);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Submits and waits; returns the finished job.
    pub async fn run(&self, job: &Value) -> Value {
        let id = self.submit(job).await;
        self.wait(&id).await
    }

    /// Stops the workers, draining; fails the test if a worker failed. Every test
    /// that starts a stack stops it: a worker stops its container pool on its way out.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        for w in std::mem::take(&mut self.workers) {
            w.await.unwrap().unwrap();
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.workers.is_empty() {
            return;
        }
        if !std::thread::panicking() {
            panic!("a test dropped its stack without stack.stop().await: its workers' containers would be left");
        }
        // A failing test: its workers cannot drain now, so their containers go here.
        for w in &self.workers {
            w.abort();
        }
        optimus_tests::remove_containers_of(&self.deployment);
    }
}

pub fn job(language: &str, source: &str, tests: Value) -> Value {
    json!({ "language": language, "source_code": source, "test_cases": tests })
}

/// `n` A+B tests: "a b" -> a+b.
pub fn sum_tests(n: i64) -> Value {
    Value::Array(
        (0..n).map(|i| json!({ "id": i + 1, "input": format!("{} {}\n", i, i * 7), "expected_output": format!("{}\n", i * 8) })).collect(),
    )
}

pub fn verdicts(job: &Value) -> Vec<String> {
    job["result"]["test_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["verdict"].as_str().unwrap().to_string())
        .collect()
}

/// A short account of a job for failure messages (outputs can be megabytes).
pub fn summary(job: &Value) -> String {
    let cut = |v: &Value| v.as_str().map(|s| s.chars().take(300).collect::<String>()).unwrap_or_default();
    let mut out = format!(
        "job {} status {} overall {} error {}\n",
        job["job_id"], job["status"], job["result"]["overall_status"], job["error"]
    );
    out.push_str(&format!("compile: {}\n", cut(&job["result"]["compile_output"])));
    for t in job["result"]["test_results"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  test {} {} {} ms {} kB exit {} signal {} msg {}\n    stdout {:?}\n    stderr {:?}\n",
            t["test_id"],
            t["verdict"],
            t["execution_time_ms"],
            t["memory_kb"],
            t["exit_code"],
            t["signal"],
            t["message"],
            cut(&t["stdout"]),
            cut(&t["stderr"])
        ));
    }
    out
}

/// Asserts the job completed with `overall` as its verdict; returns its result.
pub fn expect(job: &Value, overall: &str) -> Value {
    assert_eq!(job["status"], "completed", "{}", summary(job));
    assert_eq!(job["result"]["overall_status"], overall, "{}", summary(job));
    job["result"].clone()
}
