use std::time::Duration;

use optimus_common::store::{Caller, EnqueueOutcome};
use optimus_common::testkit::RedisServer;
use optimus_common::{JobSpec, JobStatus, LanguageConfig, LanguageRegistry, Settings, Store, TestCase};
use uuid::Uuid;

/// A fresh Redis, a store on it, and the repository's languages.
pub struct TestStore {
    pub redis: RedisServer,
    pub store: Store,
    pub registry: LanguageRegistry,
}

pub async fn store() -> TestStore {
    store_with(|_| {}).await
}

pub async fn store_with(adjust: impl FnOnce(&mut Settings)) -> TestStore {
    let redis = RedisServer::start();
    let mut settings = redis.settings();
    adjust(&mut settings);
    let store = Store::connect(&settings).await.unwrap();
    let registry = LanguageRegistry::load(&settings.languages_file).unwrap();
    TestStore { redis, store, registry }
}

/// A one-test Python job, as the API's validation would build it.
pub fn python_spec() -> JobSpec {
    JobSpec {
        language: "python".into(),
        source_code: "print(input())".into(),
        test_cases: vec![TestCase {
            id: 1,
            input: "1".into(),
            expected_output: Some("1".into()),
            weight: 1,
            compare: None,
        }],
        time_limit_ms: 1000,
        memory_limit_mb: 64,
        mode: Default::default(),
        compare: Default::default(),
        checker: None,
        solution: None,
        harness: None,
        args: Vec::new(),
        files: Vec::new(),
    }
}

impl TestStore {
    pub fn python(&self) -> &LanguageConfig {
        self.registry.get("python").unwrap()
    }

    /// Enqueues a Python job of `caller`'s; it must be accepted.
    pub async fn submit(&self, caller: &Caller) -> Uuid {
        let id = Uuid::new_v4();
        assert_eq!(
            self.store.enqueue(id, &python_spec(), self.python(), caller).await.unwrap(),
            EnqueueOutcome::Queued
        );
        id
    }

    pub async fn status(&self, id: Uuid) -> JobStatus {
        self.store.get_unowned(id).await.unwrap().expect("the job is stored").status
    }

    /// A worker that registers, takes the next Python job and claims it.
    pub async fn take(&self, worker: &str) -> optimus_common::store::Claimed {
        self.store.register_worker("python", worker).await.unwrap();
        let mut popper = self.store.popper("python", worker).await.unwrap();
        let id = popper.pop(Duration::from_secs(1)).await.unwrap().expect("a job is queued");
        self.store.claim(id, "python", worker).await.unwrap().expect("claimed")
    }

    /// A raw connection, for what only a test reads or breaks.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
    }

    /// How many of `owner`'s jobs its ledger counts as queued or running.
    pub async fn active(&self, owner: &str) -> usize {
        let mut conn = self.redis().await;
        redis::AsyncCommands::zcount(&mut conn, optimus_common::keys::owner_held(owner), "+inf", "+inf").await.unwrap()
    }

    /// The bytes `owner`'s ledger says its jobs hold.
    pub async fn held_bytes(&self, owner: &str) -> i64 {
        let mut conn = self.redis().await;
        let total: Option<i64> =
            redis::AsyncCommands::hget(&mut conn, optimus_common::keys::owner_bytes(owner), "total").await.unwrap();
        total.unwrap_or(0)
    }

    /// [`take`](Self::take), then the worker dies (its heartbeat key is removed, as
    /// its expiry would).
    pub async fn take_and_die(&self, worker: &str) -> Uuid {
        let claimed = self.take(worker).await;
        let mut conn = self.redis().await;
        let _: () = redis::AsyncCommands::del(&mut conn, optimus_common::keys::alive(worker)).await.unwrap();
        claimed.job.id
    }
}

pub fn key(id: &str) -> Caller {
    Caller::Key { id: id.into(), rate_per_min: 0, quota: optimus_common::Quota::NONE, weight: 1 }
}
