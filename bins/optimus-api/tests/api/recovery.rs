//! The reliable pop: a job taken by a worker that dies comes back to its queue
//! after a backoff, and fails after its attempts onto the dead-letter list.

use std::time::Duration;

use optimus_common::store::{Caller, EnqueueOutcome, RequeueOutcome, ReviveOutcome};
use optimus_common::{keys, JobStatus, Store};
use redis::AsyncCommands;

use crate::helpers::{python_job, spawn_app, spawn_app_with, TestApp};

/// A worker that registers, takes a job and claims it, then dies (its heartbeat
/// key is removed, as its expiry would).
async fn take_and_die(app: &TestApp, worker: &str) -> uuid::Uuid {
    let queue = keys::queue("python");
    app.store.register_worker("python", worker).await.unwrap();
    let mut popper = app.store.popper(worker).await.unwrap();
    let id = popper.pop(&queue, Duration::from_secs(1)).await.unwrap().expect("a job is queued");
    assert!(app.store.claim(id, worker).await.unwrap().is_some());
    let client = redis::Client::open(app.redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = conn.del(keys::alive(worker)).await.unwrap();
    id
}

async fn status(store: &Store, id: uuid::Uuid) -> JobStatus {
    store.get(id, &Caller::Anonymous).await.unwrap().unwrap().status
}

#[tokio::test]
async fn a_dead_workers_job_goes_back_to_its_queue_after_a_backoff() {
    // A backoff of at most 1 ms: due at once.
    let app = spawn_app_with(|settings, _| settings.retry_base_ms = 1).await;
    app.post_job(&python_job()).await;
    let id = take_and_die(&app, "python-dead").await;
    assert_eq!(status(&app.store, id).await, JobStatus::Running);
    assert_eq!(app.store.queue_len(&keys::queue("python")).await.unwrap(), 0);

    // A live worker's recovery pass finds it; it waits in the retry set, not the queue.
    app.store.register_worker("python", "python-alive").await.unwrap();
    let recovered = app.store.recover_dead_workers("python").await.unwrap();
    assert_eq!(recovered, vec![(id, RequeueOutcome::Delayed)]);
    assert_eq!(status(&app.store, id).await, JobStatus::Queued);
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert!(job["retry_at"].is_string(), "{job}");
    assert_eq!(job["attempt_errors"][0]["attempt"], 1, "{job}");
    assert!(job["attempt_errors"][0]["error"].as_str().unwrap().contains("stopped responding"), "{job}");
    assert_eq!(app.store.queue_len(&keys::queue("python")).await.unwrap(), 0);
    // Once due, it is moved to the front of the queue.
    let mut moved = 0;
    while moved == 0 {
        moved = app.store.promote_due("python", &keys::queue("python")).await.unwrap();
    }
    assert_eq!(app.store.queue_len(&keys::queue("python")).await.unwrap(), 1);
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert!(job.get("retry_at").is_none(), "{job}");
    // The dead worker is forgotten; the live one is not touched.
    assert!(app.store.recover_dead_workers("python").await.unwrap().is_empty());
    assert_eq!(app.store.live_workers("python").await.unwrap(), vec!["python-alive".to_string()]);
}

#[tokio::test]
async fn a_job_that_keeps_killing_workers_ends_on_the_dead_letter_list() {
    let app = spawn_app_with(|settings, _| {
        settings.max_attempts = 2;
        settings.retry_base_ms = 1;
    })
    .await;
    let (_, body) = app.post_job(&python_job()).await;
    let id: uuid::Uuid = body["job_id"].as_str().unwrap().parse().unwrap();
    for (n, expected) in [(1, RequeueOutcome::Delayed), (2, RequeueOutcome::Failed)] {
        while app.store.queue_len(&keys::queue("python")).await.unwrap() == 0 {
            app.store.promote_due("python", &keys::queue("python")).await.unwrap();
        }
        take_and_die(&app, &format!("python-dead-{n}")).await;
        let recovered = app.store.recover_dead_workers("python").await.unwrap();
        assert_eq!(recovered, vec![(id, expected)]);
    }
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["attempts"], 2);
    assert_eq!(job["attempt_errors"].as_array().unwrap().len(), 2, "{job}");
    assert!(job["error"].as_str().unwrap().contains("worker stopped responding"), "{job}");
    let dead = app.store.dead_letters("python").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, id);
    assert_eq!(dead[0].1.as_ref().unwrap().attempts, 2);

    // An operator's retry gives it new attempts, at the front of its queue.
    assert_eq!(app.store.revive(id, "python").await.unwrap(), ReviveOutcome::Requeued);
    assert!(app.store.dead_letters("python").await.unwrap().is_empty());
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!((job["status"].as_str(), job["attempts"].as_u64()), (Some("queued"), Some(0)), "{job}");
    assert!(job.get("error").is_none(), "{job}");
    assert_eq!(app.store.queue_len(&keys::queue("python")).await.unwrap(), 1);
    // Retrying it again finds it no longer failed.
    assert_eq!(app.store.revive(id, "python").await.unwrap(), ReviveOutcome::NotFailed("queued".into()));
}

/// After a Redis outage longer than the heartbeat timeout every alive key has
/// expired; a peer must not take the jobs of a worker that beats again.
#[tokio::test]
async fn a_worker_that_beats_again_keeps_its_jobs() {
    let app = spawn_app().await;
    app.post_job(&python_job()).await;
    let id = take_and_die(&app, "python-slow").await;
    // It is presumed dead, but beats before the recovering peer's requeue runs.
    app.store.heartbeat("python", "python-slow").await.unwrap();
    assert!(app.store.recover_dead_workers("python").await.unwrap().is_empty());
    assert_eq!(status(&app.store, id).await, JobStatus::Running);
    assert_eq!(app.store.processing("python-slow").await.unwrap(), vec![id]);
}

#[tokio::test]
async fn an_engine_failure_hands_the_job_back_at_once_and_uncounted() {
    let app = spawn_app().await;
    app.post_job(&python_job()).await;
    let id = take_and_die(&app, "python-w").await;
    let outcome = app.store.requeue_uncounted(id, "python-w", "engine down").await.unwrap();
    assert_eq!(outcome, RequeueOutcome::Requeued);
    assert_eq!(app.store.queue_len(&keys::queue("python")).await.unwrap(), 1);
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(job["attempts"], 0, "{job}");
    assert!(job.get("attempt_errors").is_none(), "{job}");
}

#[tokio::test]
async fn a_cancel_pending_on_a_dead_workers_job_ends_it_cancelled() {
    let app = spawn_app().await;
    app.post_job(&python_job()).await;
    let id = take_and_die(&app, "python-dead").await;
    let (status_code, body) = app.delete(&format!("/jobs/{id}")).await;
    assert_eq!((status_code, body["status"].as_str()), (202, Some("running")));
    let recovered = app.store.recover_dead_workers("python").await.unwrap();
    assert_eq!(recovered, vec![(id, RequeueOutcome::Cancelled)]);
    assert_eq!(status(&app.store, id).await, JobStatus::Cancelled);
}

#[tokio::test]
async fn a_cancelled_job_is_dropped_when_popped() {
    let app = spawn_app().await;
    let (_, body) = app.post_job(&python_job()).await;
    let id: uuid::Uuid = body["job_id"].as_str().unwrap().parse().unwrap();
    // Popped, then cancelled before the worker claims it.
    let mut popper = app.store.popper("python-w").await.unwrap();
    assert_eq!(popper.pop(&keys::queue("python"), Duration::from_secs(1)).await.unwrap(), Some(id));
    app.delete(&format!("/jobs/{id}")).await;
    assert!(app.store.claim(id, "python-w").await.unwrap().is_none());
    assert_eq!(status(&app.store, id).await, JobStatus::Cancelled);
}

/// The store's connection retries a script whose reply it lost, so every script
/// must be safe to run twice.
#[tokio::test]
async fn claim_and_enqueue_are_safe_to_repeat() {
    let app = spawn_app().await;
    let queue = keys::queue("python");
    app.post_job(&python_job()).await;
    app.store.register_worker("python", "python-w").await.unwrap();
    let mut popper = app.store.popper("python-w").await.unwrap();
    let id = popper.pop(&queue, Duration::from_secs(1)).await.unwrap().expect("a job is queued");
    let claimed = app.store.claim(id, "python-w").await.unwrap().expect("claimed");
    let (spec, attempt) = (claimed.spec, claimed.attempt);
    assert!(claimed.created_at.is_some(), "the claim says when the job was submitted");
    assert_eq!(attempt, 1);
    // The same worker's repeated claim gets the job back, and counts no attempt.
    assert!(app.store.claim(id, "python-w").await.unwrap().is_some());
    let record = app.store.get(id, &Caller::Anonymous).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Running, 1));
    // Another worker's claim does not take it.
    assert!(app.store.claim(id, "python-other").await.unwrap().is_none());
    // A repeated enqueue of a running job neither queues it again nor resets it.
    let python = optimus_common::LanguageRegistry::load(&app.redis.settings().languages_file).unwrap();
    let python = python.get("python").unwrap().clone();
    let enqueue = |id| {
        let (store, spec, python) = (app.store.clone(), spec.clone(), python.clone());
        async move { store.enqueue(id, &spec, &python, &Caller::Anonymous).await.unwrap() }
    };
    assert_eq!(enqueue(id).await, EnqueueOutcome::Queued);
    assert_eq!(app.store.queue_len(&queue).await.unwrap(), 0);
    assert_eq!(status(&app.store, id).await, JobStatus::Running);
    // And a new job enqueued twice is queued once.
    let other = uuid::Uuid::new_v4();
    assert_eq!(enqueue(other).await, EnqueueOutcome::Queued);
    assert_eq!(enqueue(other).await, EnqueueOutcome::Queued);
    assert_eq!(app.store.queue_len(&queue).await.unwrap(), 1);
}
