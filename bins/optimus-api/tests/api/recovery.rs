//! The reliable pop: a job taken by a worker that dies comes back to its queue,
//! and fails after its attempts.

use std::time::Duration;

use optimus_common::store::RequeueOutcome;
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
    store.get(id).await.unwrap().unwrap().status
}

#[tokio::test]
async fn a_dead_workers_job_goes_back_to_its_queue() {
    let app = spawn_app().await;
    app.post_job(&python_job()).await;
    let id = take_and_die(&app, "python-dead").await;
    assert_eq!(status(&app.store, id).await, JobStatus::Running);
    assert_eq!(app.store.queue_len(&keys::queue("python")).await.unwrap(), 0);

    // A live worker's recovery pass finds it.
    app.store.register_worker("python", "python-alive").await.unwrap();
    let recovered = app.store.recover_dead_workers("python").await.unwrap();
    assert_eq!(recovered, vec![(id, RequeueOutcome::Requeued)]);
    assert_eq!(status(&app.store, id).await, JobStatus::Queued);
    assert_eq!(app.store.queue_len(&keys::queue("python")).await.unwrap(), 1);
    // The dead worker is forgotten; the live one is not touched.
    assert!(app.store.recover_dead_workers("python").await.unwrap().is_empty());
    assert_eq!(app.store.live_workers("python").await.unwrap(), vec!["python-alive".to_string()]);
}

#[tokio::test]
async fn a_job_that_keeps_killing_workers_fails_after_its_attempts() {
    let app = spawn_app_with(|settings, _| settings.max_attempts = 2).await;
    let (_, body) = app.post_job(&python_job()).await;
    let id: uuid::Uuid = body["job_id"].as_str().unwrap().parse().unwrap();
    for (n, expected) in [(1, RequeueOutcome::Requeued), (2, RequeueOutcome::Failed)] {
        take_and_die(&app, &format!("python-dead-{n}")).await;
        let recovered = app.store.recover_dead_workers("python").await.unwrap();
        assert_eq!(recovered, vec![(id, expected)]);
    }
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["attempts"], 2);
    assert!(job["error"].as_str().unwrap().contains("worker stopped responding"), "{job}");
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
    let spec = app.store.claim(id, "python-w").await.unwrap().expect("claimed");
    // The same worker's repeated claim gets the job back, and counts no attempt.
    assert!(app.store.claim(id, "python-w").await.unwrap().is_some());
    let record = app.store.get(id).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Running, 1));
    // Another worker's claim does not take it.
    assert!(app.store.claim(id, "python-other").await.unwrap().is_none());
    // A repeated enqueue of a running job neither queues it again nor resets it.
    assert!(app.store.enqueue(id, &spec, &queue, 100).await.unwrap());
    assert_eq!(app.store.queue_len(&queue).await.unwrap(), 0);
    assert_eq!(status(&app.store, id).await, JobStatus::Running);
    // And a new job enqueued twice is queued once.
    let other = uuid::Uuid::new_v4();
    assert!(app.store.enqueue(other, &spec, &queue, 100).await.unwrap());
    assert!(app.store.enqueue(other, &spec, &queue, 100).await.unwrap());
    assert_eq!(app.store.queue_len(&queue).await.unwrap(), 1);
}
