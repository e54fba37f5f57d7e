//! The reliable pop: a job taken by a worker that dies comes back to its queue
//! after a backoff, and fails after its attempts onto the dead-letter list.

use optimus_common::store::{Caller, EnqueueOutcome, RequeueOutcome, ReviveOutcome};
use optimus_common::JobStatus;

use crate::helpers::{key, store, store_with};

#[tokio::test]
async fn a_dead_workers_job_goes_back_to_its_queue_after_a_backoff() {
    // A backoff of at most 1 ms: due at once.
    let t = store_with(|settings| settings.retry_base_ms = 1).await;
    t.submit(&Caller::Anonymous).await;
    let id = t.take_and_die("python-dead").await;
    assert_eq!(t.status(id).await, JobStatus::Running);
    assert_eq!(t.store.queue_len("python").await.unwrap(), 0);

    // A live worker's recovery pass finds it; it waits in the retry set, not the queue.
    t.store.register_worker("python", "python-alive").await.unwrap();
    let recovered = t.store.recover_dead_workers("python").await.unwrap();
    assert_eq!(recovered, vec![(id, RequeueOutcome::Delayed)]);
    let job = t.store.get_unowned(id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert!(job.retry_at.is_some(), "{job:?}");
    assert_eq!(job.attempt_errors[0].attempt, 1, "{job:?}");
    assert!(job.attempt_errors[0].error.contains("stopped responding"), "{job:?}");
    assert_eq!(t.store.depths("python").await.unwrap(), (0, 1, 0));
    // Once due, it is moved to the front of the queue.
    let mut moved = 0;
    while moved == 0 {
        moved = t.store.promote_due("python").await.unwrap();
    }
    assert_eq!(t.store.depths("python").await.unwrap(), (1, 0, 0));
    assert!(t.store.get_unowned(id).await.unwrap().unwrap().retry_at.is_none());
    // The dead worker is forgotten; the live one is not touched.
    assert!(t.store.recover_dead_workers("python").await.unwrap().is_empty());
    assert_eq!(t.store.live_workers("python").await.unwrap(), vec!["python-alive".to_string()]);
}

#[tokio::test]
async fn a_job_not_yet_due_stays_in_the_retry_set() {
    let t = store_with(|settings| settings.retry_base_ms = 60_000).await;
    t.submit(&Caller::Anonymous).await;
    let id = t.take_and_die("python-dead").await;
    assert_eq!(t.store.recover_dead_workers("python").await.unwrap(), vec![(id, RequeueOutcome::Delayed)]);
    assert_eq!(t.store.promote_due("python").await.unwrap(), 0);
    assert_eq!(t.store.depths("python").await.unwrap(), (0, 1, 0));
}

#[tokio::test]
async fn a_job_that_keeps_killing_workers_ends_on_the_dead_letter_list() {
    let t = store_with(|settings| {
        settings.max_attempts = 2;
        settings.retry_base_ms = 1;
    })
    .await;
    let owner = key("k1");
    let id = t.submit(&owner).await;
    for (n, expected) in [(1, RequeueOutcome::Delayed), (2, RequeueOutcome::Failed)] {
        while t.store.queue_len("python").await.unwrap() == 0 {
            t.store.promote_due("python").await.unwrap();
        }
        t.take_and_die(&format!("python-dead-{n}")).await;
        let recovered = t.store.recover_dead_workers("python").await.unwrap();
        assert_eq!(recovered, vec![(id, expected)]);
    }
    let job = t.store.get(id, &owner).await.unwrap().unwrap();
    assert_eq!((job.status, job.attempts, job.attempt_errors.len()), (JobStatus::Failed, 2, 2));
    assert!(job.error.as_deref().unwrap().contains("worker stopped responding"), "{job:?}");
    let dead = t.store.dead_letters("python").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, id);
    assert_eq!(dead[0].1.as_ref().unwrap().attempts, 2);
    // A failed job no longer counts against its owner's active jobs...
    assert_eq!(t.active("k1").await, 0);

    // ...until an operator's retry gives it new attempts, at the front of its queue.
    assert_eq!(t.store.revive(id, "python").await.unwrap(), ReviveOutcome::Requeued);
    assert!(t.store.dead_letters("python").await.unwrap().is_empty());
    let job = t.store.get(id, &owner).await.unwrap().unwrap();
    assert_eq!((job.status, job.attempts, job.error), (JobStatus::Queued, 0, None));
    assert_eq!(t.store.queue_len("python").await.unwrap(), 1);
    assert_eq!(t.active("k1").await, 1, "the revived job counts again");
    // Retrying it again finds it no longer failed.
    assert_eq!(t.store.revive(id, "python").await.unwrap(), ReviveOutcome::NotFailed("queued".into()));
}

/// After a Redis outage longer than the heartbeat timeout every alive key has
/// expired; a peer must not take the jobs of a worker that beats again.
#[tokio::test]
async fn a_worker_that_beats_again_keeps_its_jobs() {
    let t = store().await;
    t.submit(&Caller::Anonymous).await;
    let id = t.take_and_die("python-slow").await;
    // It is presumed dead, but beats before the recovering peer's requeue runs.
    t.store.heartbeat("python", "python-slow").await.unwrap();
    assert!(t.store.recover_dead_workers("python").await.unwrap().is_empty());
    assert_eq!(t.status(id).await, JobStatus::Running);
    assert_eq!(t.store.processing("python-slow").await.unwrap(), vec![id]);
}

#[tokio::test]
async fn an_engine_failure_hands_the_job_back_at_once_and_uncounted() {
    let t = store().await;
    t.submit(&Caller::Anonymous).await;
    let id = t.take_and_die("python-w").await;
    let outcome = t.store.requeue_uncounted(id, "python-w", "engine down").await.unwrap();
    assert_eq!(outcome, RequeueOutcome::Requeued);
    assert_eq!(t.store.queue_len("python").await.unwrap(), 1);
    let job = t.store.get_unowned(id).await.unwrap().unwrap();
    assert_eq!((job.attempts, job.attempt_errors.len()), (0, 0));
}

#[tokio::test]
async fn a_cancel_pending_on_a_dead_workers_job_ends_it_cancelled() {
    let t = store().await;
    t.submit(&Caller::Anonymous).await;
    let id = t.take_and_die("python-dead").await;
    assert_eq!(t.store.cancel(id, &Caller::Anonymous).await.unwrap(), optimus_common::store::CancelOutcome::Cancelling);
    let recovered = t.store.recover_dead_workers("python").await.unwrap();
    assert_eq!(recovered, vec![(id, RequeueOutcome::Cancelled)]);
    assert_eq!(t.status(id).await, JobStatus::Cancelled);
}

#[tokio::test]
async fn a_cancelled_job_is_dropped_when_popped() {
    let t = store().await;
    let id = t.submit(&Caller::Anonymous).await;
    // Popped, then cancelled before the worker claims it.
    let mut popper = t.store.popper("python", "python-w").await.unwrap();
    assert_eq!(popper.pop(std::time::Duration::from_secs(1)).await.unwrap(), Some(id));
    t.store.cancel(id, &Caller::Anonymous).await.unwrap();
    assert!(t.store.claim(id, "python", "python-w").await.unwrap().is_none());
    assert_eq!(t.status(id).await, JobStatus::Cancelled);
    assert!(t.store.processing("python-w").await.unwrap().is_empty());
}

/// The store's connection retries a script whose reply it lost, so every script
/// must be safe to run twice.
#[tokio::test]
async fn claim_and_enqueue_are_safe_to_repeat() {
    let t = store().await;
    t.submit(&Caller::Anonymous).await;
    let claimed = t.take("python-w").await;
    let id = claimed.job.id;
    assert!(claimed.created_at.is_some(), "the claim says when the job was submitted");
    assert_eq!(claimed.attempt, 1);
    // The same worker's repeated claim gets the job back, and counts no attempt.
    assert!(t.store.claim(id, "python", "python-w").await.unwrap().is_some());
    let record = t.store.get(id, &Caller::Anonymous).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Running, 1));
    // Another worker's claim does not take it.
    assert!(t.store.claim(id, "python", "python-other").await.unwrap().is_none());
    // A repeated enqueue of a running job neither queues it again nor resets it.
    let enqueue = |id| {
        let (store, spec, python) = (t.store.clone(), claimed.spec.clone(), t.python().clone());
        async move { store.enqueue(id, &spec, &python, &Caller::Anonymous).await.unwrap() }
    };
    assert_eq!(enqueue(id).await, EnqueueOutcome::Queued);
    assert_eq!(t.store.queue_len("python").await.unwrap(), 0);
    assert_eq!(t.status(id).await, JobStatus::Running);
    // And a new job enqueued twice is queued once.
    let other = uuid::Uuid::new_v4();
    assert_eq!(enqueue(other).await, EnqueueOutcome::Queued);
    assert_eq!(enqueue(other).await, EnqueueOutcome::Queued);
    assert_eq!(t.store.queue_len("python").await.unwrap(), 1);
}
