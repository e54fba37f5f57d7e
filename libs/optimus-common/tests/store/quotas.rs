//! What an owner may hold in the store, checked and reserved in the enqueue
//! script: a burst of submissions cannot pass a key's byte quota nor take Redis
//! past its high-water mark, and a finished job holds only what it keeps, until
//! it expires.

use futures_util::future::join_all;
use optimus_common::store::{Admission, Caller, EnqueueOutcome, Quota};
use optimus_common::{keys, JobResult, JobStatus, TestCase};
use redis::AsyncCommands;

use crate::helpers::{python_spec, store, store_with};

/// A Python job whose tests carry `each` bytes of input apiece.
fn big_spec(tests: usize, each: usize) -> optimus_common::JobSpec {
    let mut spec = python_spec();
    spec.test_cases = (0..tests)
        .map(|i| TestCase {
            id: i as u64,
            input: "x".repeat(each),
            expected_output: Some("y".repeat(each)),
            weight: 1,
            compare: None,
        })
        .collect();
    spec
}

fn owner_with(max_bytes: u64) -> Caller {
    Caller::Key { id: "k1".into(), rate_per_min: 0, quota: Quota { max_active: 0, max_bytes }, weight: 1 }
}

#[tokio::test]
async fn a_burst_cannot_pass_a_keys_byte_quota() {
    let t = store().await;
    let owner = owner_with(8 << 20);
    let spec = big_spec(1, 128 << 10);
    let tries = join_all((0..64).map(|_| t.store.enqueue(uuid::Uuid::new_v4(), &spec, t.python(), &owner))).await;
    let outcomes: Vec<EnqueueOutcome> = tries.into_iter().map(Result::unwrap).collect();
    let accepted = outcomes.iter().filter(|o| **o == EnqueueOutcome::Queued).count();
    let needed = match outcomes.iter().find(|o| **o != EnqueueOutcome::Queued) {
        Some(EnqueueOutcome::OverQuota { needed, max_bytes, retry_after }) => {
            assert_eq!((*max_bytes, *retry_after), (8 << 20, None), "all it holds is queued jobs");
            *needed
        }
        other => panic!("64 jobs of 256 KiB passed an 8 MiB quota: {other:?}"),
    };
    assert_eq!(accepted as u64, (8 << 20) / needed, "as many as fit, no more");
    let held = t.held_bytes("k1").await;
    assert!(held as u64 <= 8 << 20 && held as u64 == accepted as u64 * needed, "the ledger holds {held}");
    assert_eq!(t.active("k1").await, accepted);
    // Another key is not held back by k1's use.
    let other =
        Caller::Key { id: "k2".into(), rate_per_min: 0, quota: Quota { max_active: 0, max_bytes: 8 << 20 }, weight: 1 };
    assert_eq!(t.store.enqueue(uuid::Uuid::new_v4(), &spec, t.python(), &other).await.unwrap(), EnqueueOutcome::Queued);
    // A job larger than the whole quota is told so.
    let huge = big_spec(1, 5 << 20);
    match t.store.enqueue(uuid::Uuid::new_v4(), &huge, t.python(), &owner).await.unwrap() {
        EnqueueOutcome::TooLarge { needed, max_bytes } => assert!(needed > max_bytes),
        other => panic!("a 10 MiB job under an 8 MiB quota: {other:?}"),
    }
}

#[tokio::test]
async fn a_finished_job_keeps_only_what_answers_need_and_holds_it_until_it_expires() {
    let t = store_with(|settings| settings.job_ttl_secs = 2).await;
    let owner = owner_with(4 << 20);
    let spec = big_spec(10, 100 << 10);
    let id = uuid::Uuid::new_v4();
    assert_eq!(t.store.enqueue(id, &spec, t.python(), &owner).await.unwrap(), EnqueueOutcome::Queued);
    let waiting = t.held_bytes("k1").await;
    assert!(waiting > 2_000_000, "a queued job holds its spec: {waiting}");
    let claimed = t.take("python-w").await;
    let result = JobResult::from_tests(Default::default(), Vec::new(), &[], None);
    assert!(t
        .store
        .finish(&claimed.job, "python-w", JobStatus::Completed, Some(&result), None, Some(&claimed.spec))
        .await
        .unwrap());

    // The record keeps the first test's texts (emptied: each is past 64 KiB) and
    // none of the others; the ledger holds what is left, measured.
    let mut conn = t.redis().await;
    let kept: usize = redis::cmd("HSTRLEN").arg(keys::job(id)).arg("spec").query_async(&mut conn).await.unwrap();
    assert!(kept < 1024, "the finished job's spec is {kept} bytes");
    let kept_spec = t.store.spec(id, &owner).await.unwrap().unwrap();
    assert_eq!((kept_spec.test_cases.len(), kept_spec.source_code.as_str()), (1, "print(input())"));
    let finished = t.held_bytes("k1").await;
    assert!(finished > 0 && finished < 64 * 1024, "a finished job holds {finished}");
    assert_eq!(t.active("k1").await, 0);

    // Until the hold ends, a key at its quota is told when room comes back.
    let full = big_spec(1, 1 << 20);
    assert_eq!(t.store.enqueue(uuid::Uuid::new_v4(), &full, t.python(), &owner).await.unwrap(), EnqueueOutcome::Queued);
    match t.store.enqueue(uuid::Uuid::new_v4(), &full, t.python(), &owner).await.unwrap() {
        EnqueueOutcome::OverQuota { retry_after: Some(after), .. } => assert!(after.as_secs() <= 2, "{after:?}"),
        other => panic!("{other:?}"),
    }
    // Once the job has expired, the next submission reclaims its hold.
    let start = std::time::Instant::now();
    loop {
        let small = python_spec();
        let _ = t.store.enqueue(uuid::Uuid::new_v4(), &small, t.python(), &owner).await.unwrap();
        let members: Vec<String> = conn.zrange(keys::owner_held("k1"), 0, -1).await.unwrap();
        if !members.contains(&id.to_string()) {
            break;
        }
        assert!(start.elapsed().as_secs() < 10, "the expired job is still held");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let sizes: Option<String> = conn.hget(keys::owner_bytes("k1"), id.to_string()).await.unwrap();
    assert_eq!(sizes, None);
}

#[tokio::test]
async fn a_burst_cannot_take_redis_past_its_high_water_mark() {
    let t = store().await;
    let mut conn = t.redis().await;
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(64 << 20).query_async(&mut conn).await.unwrap();
    let admission = Admission { quota: Quota::NONE, memory_high_percent: 50 };
    let mut python = t.python().clone();
    python.max_queue_depth = 10_000;
    let spec = big_spec(1, 512 << 10);
    let tries = join_all((0..128).map(|_| {
        t.store.enqueue_from(uuid::Uuid::new_v4(), &spec, &python, &Caller::Anonymous, &admission, Default::default())
    }))
    .await;
    let outcomes: Vec<EnqueueOutcome> = tries.into_iter().map(Result::unwrap).collect();
    let accepted = outcomes.iter().filter(|o| **o == EnqueueOutcome::Queued).count();
    assert!(outcomes.iter().any(|o| matches!(o, EnqueueOutcome::StorageFull { .. })), "128 MiB fit in 32 MiB");
    assert!(accepted > 10, "only {accepted} accepted");
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut conn).await.unwrap();
    let used: u64 = info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap();
    // The mark, plus what one job's real use is above its estimate.
    assert!(used <= (32 << 20) + (1 << 20), "Redis uses {used} bytes after the burst");
}
