use optimus_api::AppState;
use optimus_common::testkit::RedisServer;
use optimus_common::{LanguageRegistry, Settings, Store};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub base: String,
    pub redis: RedisServer,
    pub store: Store,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A fresh Redis and an API serving on a free port.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_, _| {}).await
}

/// Like [`spawn_app`], with settings and registry adjusted first.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings, &mut LanguageRegistry)) -> TestApp {
    spawn_app_configured(adjust, |_| {}).await
}

/// Like [`spawn_app`], with the API's own configuration adjusted first.
pub async fn spawn_app_api(configure: impl FnOnce(&mut optimus_api::ApiConfig)) -> TestApp {
    spawn_app_configured(|_, _| {}, configure).await
}

pub async fn spawn_app_configured(
    adjust: impl FnOnce(&mut Settings, &mut LanguageRegistry),
    configure: impl FnOnce(&mut optimus_api::ApiConfig),
) -> TestApp {
    let redis = RedisServer::start();
    let mut settings = redis.settings();
    let mut registry = LanguageRegistry::load(&settings.languages_file).unwrap();
    adjust(&mut settings, &mut registry);
    let store = Store::connect(&settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let mut api = optimus_api::ApiConfig::default();
    configure(&mut api);
    let state = AppState::new(store.clone(), registry, settings, api);
    tokio::spawn(optimus_api::run(listener, state, shutdown.clone()));
    TestApp { base, redis, store, http: reqwest::Client::new(), shutdown }
}

impl TestApp {
    /// The `host:port` the API listens on.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub async fn post_job(&self, body: &Value) -> (u16, Value) {
        let res = self.http.post(format!("{}/jobs", self.base)).json(body).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    pub async fn post_raw(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/jobs", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let res = self.http.delete(format!("{}{path}", self.base)).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// Keys in this test's Redis: proves that refused requests wrote nothing.
    pub async fn redis_keys(&self) -> i64 {
        let client = redis::Client::open(self.redis.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap()
    }
}

pub fn python_job() -> Value {
    json!({
        "language": "python",
        "source_code": "print(input())",
        "test_cases": [{"id": 1, "input": "hi", "expected_output": "hi"}],
    })
}
