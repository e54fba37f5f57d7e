//! What is owed when a job ends (a Kafka bridge's result, a Judge0 callback):
//! each way a job can end puts it due at once, and only for whom it is owed.

use std::time::Duration;

use optimus_common::job::{Notify, Origin};
use optimus_common::store::{Admission, Caller, Provenance, RequeueOutcome};
use optimus_common::JobStatus;
use uuid::Uuid;

use crate::helpers::{key, python_spec, store, TestStore};

const LEASE: Duration = Duration::from_secs(30);

async fn submit_owing(t: &TestStore, owner: &Caller, notify: Notify) -> Uuid {
    let id = Uuid::new_v4();
    let origin = Origin { json: "{}".into(), notify: Some(notify) };
    let provenance = Provenance { origin: Some(&origin), traceparent: None };
    t.store.enqueue_from(id, &python_spec(), t.python(), owner, &Admission::of(owner), provenance).await.unwrap();
    id
}

#[tokio::test]
async fn every_end_of_a_job_puts_its_result_due_for_its_bridge_alone() {
    let t = store_with_one_attempt().await;
    let owner = key("k1");
    let bridge = Notify::Kafka("scrc".into());
    let finished = submit_owing(&t, &owner, bridge.clone()).await;
    let cancelled = submit_owing(&t, &owner, bridge.clone()).await;
    let failed = submit_owing(&t, &owner, bridge.clone()).await;
    let elsewhere = submit_owing(&t, &owner, Notify::Kafka("codex".into())).await;
    assert_eq!(t.store.owed_count(&bridge).await.unwrap(), 3);
    // Running or queued, nothing is due yet: a bridge polls no running job.
    assert!(t.store.take_due(&bridge, LEASE, 10).await.unwrap().is_empty());

    // A worker finishes the first.
    let claimed = t.take("python-w").await;
    assert_eq!(claimed.job.id, finished);
    assert_eq!(claimed.job.notify, Some(bridge.clone()), "the claim names whom the end is owed to");
    t.store.finish(&claimed.job, "python-w", JobStatus::Completed, None, None, None).await.unwrap();
    assert_eq!(t.store.take_due(&bridge, LEASE, 10).await.unwrap(), vec![finished]);
    assert!(t.store.take_due(&bridge, LEASE, 10).await.unwrap().is_empty(), "taken for a lease");

    // The owner cancels the second while it is queued.
    t.store.cancel(cancelled, &owner).await.unwrap();
    assert_eq!(t.store.take_due(&bridge, LEASE, 10).await.unwrap(), vec![cancelled]);

    // The third fails its only attempt (handed back by its worker).
    let claimed = t.take("python-w").await;
    assert_eq!(claimed.job.id, failed);
    assert_eq!(t.store.requeue(failed, "python-w", "boom").await.unwrap(), RequeueOutcome::Failed);
    assert_eq!(t.status(failed).await, JobStatus::Failed);
    // A look scheduled late (a bridge that read the job just before it ended)
    // does not push its end back.
    t.store.look_later(&bridge, failed, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(t.store.take_due(&bridge, LEASE, 10).await.unwrap(), vec![failed]);

    // Delivered once: settling again (a lease that ran out meanwhile) says so.
    assert!(t.store.owed_settled(&bridge, finished).await.unwrap());
    assert!(!t.store.owed_settled(&bridge, finished).await.unwrap());
    assert_eq!(t.store.owed_count(&bridge).await.unwrap(), 2);
    // The other bridge's job is still queued, and owed there only.
    assert_eq!(t.store.owed_count(&Notify::Kafka("codex".into())).await.unwrap(), 1);
    assert_eq!(t.status(elsewhere).await, JobStatus::Queued);
    assert!(t.store.take_due(&Notify::Callback, LEASE, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_repeated_enqueue_of_the_same_id_owes_one_result() {
    let t = store().await;
    let owner = key("k1");
    let bridge = Notify::Kafka("scrc".into());
    let id = submit_owing(&t, &owner, bridge.clone()).await;
    // The same message delivered again (a bridge killed before its commit).
    let origin = Origin { json: "{}".into(), notify: Some(bridge.clone()) };
    let provenance = Provenance { origin: Some(&origin), traceparent: None };
    t.store.enqueue_from(id, &python_spec(), t.python(), &owner, &Admission::of(&owner), provenance).await.unwrap();
    assert_eq!(t.store.queue_len("python").await.unwrap(), 1, "queued once");
    assert_eq!(t.store.owed_count(&bridge).await.unwrap(), 1);
}

async fn store_with_one_attempt() -> TestStore {
    crate::helpers::store_with(|s| s.max_attempts = 1).await
}

#[test]
fn a_notify_reads_back_as_written_and_refuses_what_could_forge_a_key() {
    for notify in [Notify::Callback, Notify::Kafka("scrc-runner_2".into())] {
        assert_eq!(Notify::parse(&notify.field()), Some(notify));
    }
    assert_eq!(Notify::Kafka("scrc".into()).owed_set(), "optimus:kafka:scrc:outbox");
    for bad in ["", "kafka:", "kafka:a:b", "kafka:A", "kafka:a b", "kafka:../x", "http:x"] {
        assert_eq!(Notify::parse(bad), None, "{bad:?}");
    }
}
