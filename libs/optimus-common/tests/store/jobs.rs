//! A job's life through the store: enqueue within the owner's limits, claim,
//! finish, cancel, and what each leaves behind.

use optimus_common::store::{Admission, Caller, CancelOutcome, EnqueueOutcome, JobRef, Provenance, Quota};
use optimus_common::{JobResult, JobStatus};

use crate::helpers::{key, python_spec, store};

#[tokio::test]
async fn a_claimed_job_names_its_owner_and_trace_and_finishing_it_ends_it_everywhere() {
    let t = store().await;
    let owner = key("k1");
    let id = uuid::Uuid::new_v4();
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let outcome = t
        .store
        .enqueue_from(
            id,
            &python_spec(),
            t.python(),
            &owner,
            &Admission::of(&owner),
            Provenance { origin: None, traceparent: Some(traceparent) },
        )
        .await
        .unwrap();
    assert_eq!(outcome, EnqueueOutcome::Queued);
    let claimed = t.take("python-w").await;
    assert_eq!(claimed.job, JobRef { id, language: "python".into(), owner: "k1".into(), notify: None });
    assert_eq!(claimed.traceparent.as_deref(), Some(traceparent));

    let result = JobResult::from_tests(Default::default(), Vec::new(), &[], None);
    assert!(t.store.finish(&claimed.job, "python-w", JobStatus::Completed, Some(&result), None, None).await.unwrap());
    let job = t.store.get(id, &owner).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert!(job.result.is_some());
    assert_eq!(t.active("k1").await, 0, "a finished job is no longer its owner's active job");
    assert!(t.store.processing("python-w").await.unwrap().is_empty());
    let events: Vec<String> = t.store.events(id, None, 10).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(events, ["queued", "running", "completed"]);
    // A repeat (a lost reply) is answered the same and changes nothing; another
    // worker's finish is refused.
    assert!(t.store.finish(&claimed.job, "python-w", JobStatus::Completed, Some(&result), None, None).await.unwrap());
    assert!(!t.store.finish(&claimed.job, "python-x", JobStatus::Completed, Some(&result), None, None).await.unwrap());
}

#[tokio::test]
async fn a_queued_job_cancelled_leaves_its_queue_and_its_owners_count() {
    let t = store().await;
    let owner = key("k1");
    let id = t.submit(&owner).await;
    // Another key's cancel finds nothing, and changes nothing.
    assert_eq!(t.store.cancel(id, &key("k2")).await.unwrap(), CancelOutcome::Missing);
    assert_eq!(t.store.cancel(id, &Caller::Anonymous).await.unwrap(), CancelOutcome::Missing);
    assert_eq!(t.store.queue_len("python").await.unwrap(), 1);
    assert_eq!(t.store.cancel(id, &owner).await.unwrap(), CancelOutcome::Cancelled);
    assert_eq!(t.store.queue_len("python").await.unwrap(), 0);
    assert_eq!(t.active("k1").await, 0);
    assert_eq!(t.store.cancel(id, &owner).await.unwrap(), CancelOutcome::AlreadyFinished(JobStatus::Cancelled));
    assert_eq!(t.store.cancel(uuid::Uuid::new_v4(), &owner).await.unwrap(), CancelOutcome::Missing);
}

#[tokio::test]
async fn a_keys_limits_refuse_without_writing_anything() {
    let t = store().await;
    let capped =
        Caller::Key { id: "k1".into(), rate_per_min: 0, quota: Quota { max_active: 1, max_bytes: 0 }, weight: 1 };
    t.submit(&capped).await;
    let refused = uuid::Uuid::new_v4();
    let outcome = t.store.enqueue(refused, &python_spec(), t.python(), &capped).await.unwrap();
    assert_eq!(outcome, EnqueueOutcome::TooManyActive { max: 1 });
    assert!(t.store.get_unowned(refused).await.unwrap().is_none());
    // One job a minute: the second is told when to come back.
    let slow = Caller::Key { id: "k2".into(), rate_per_min: 1, quota: Quota::NONE, weight: 1 };
    t.submit(&slow).await;
    match t.store.enqueue(uuid::Uuid::new_v4(), &python_spec(), t.python(), &slow).await.unwrap() {
        EnqueueOutcome::RateLimited { retry_after } => assert!(retry_after.as_secs() <= 60, "{retry_after:?}"),
        other => panic!("not rate limited: {other:?}"),
    }
    // A full queue refuses everyone.
    let mut small = t.python().clone();
    small.max_queue_depth = 2;
    let outcome = t.store.enqueue(uuid::Uuid::new_v4(), &python_spec(), &small, &Caller::Anonymous).await.unwrap();
    assert_eq!(outcome, EnqueueOutcome::QueueFull);
    assert_eq!(t.store.queue_len("python").await.unwrap(), 2);
}

#[tokio::test]
async fn a_jobs_origin_and_spec_are_read_only_for_their_owner() {
    let t = store().await;
    let owner = key("k1");
    let id = uuid::Uuid::new_v4();
    let origin = optimus_common::job::Origin {
        json: r#"{"language_id":71}"#.into(),
        notify: Some(optimus_common::job::Notify::Callback),
    };
    t.store
        .enqueue_from(
            id,
            &python_spec(),
            t.python(),
            &owner,
            &Admission::of(&owner),
            Provenance { origin: Some(&origin), traceparent: None },
        )
        .await
        .unwrap();
    assert_eq!(t.store.origin(id, Some(&owner)).await.unwrap(), Some(Some(origin.json.clone())));
    assert_eq!(t.store.origin(id, None).await.unwrap(), Some(Some(origin.json)));
    assert_eq!(t.store.origin(id, Some(&key("k2"))).await.unwrap(), None);
    assert_eq!(t.store.spec(id, &owner).await.unwrap(), Some(python_spec()));
    assert_eq!(t.store.spec(id, &Caller::Anonymous).await.unwrap(), None);
    // A job of Optimus's own API has no origin.
    let plain = t.submit(&owner).await;
    assert_eq!(t.store.origin(plain, Some(&owner)).await.unwrap(), Some(None));
    // The callback owed is leased to whoever takes it.
    let due = t.store.take_due_callbacks(std::time::Duration::from_secs(30), 10).await.unwrap();
    assert_eq!(due, vec![id]);
    assert!(t.store.take_due_callbacks(std::time::Duration::from_secs(30), 10).await.unwrap().is_empty());
}
