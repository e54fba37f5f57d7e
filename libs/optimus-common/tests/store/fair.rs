//! Fair share between owners: a key's backlog delays another key's job by about
//! one job, weights give a key more turns, and a job given back goes first.

use optimus_common::store::{Caller, Quota};

use crate::helpers::store;

fn key_weighted(id: &str, weight: u32) -> Caller {
    Caller::Key { id: id.into(), rate_per_min: 0, quota: Quota::NONE, weight }
}

#[tokio::test]
async fn a_backlog_delays_another_keys_job_by_about_one_job() {
    let t = store().await;
    let flood = key_weighted("flood", 1);
    for _ in 0..200 {
        t.submit(&flood).await;
    }
    let first = t.take("python-w").await;
    assert_eq!(first.job.owner, "flood");
    let small = t.submit(&key_weighted("small", 1)).await;
    // Arrival order would take it after 199 others; fair share within two.
    let mut taken = Vec::new();
    for _ in 0..3 {
        taken.push(t.take("python-w").await.job.id);
    }
    let at = taken.iter().position(|id| *id == small).map(|i| i + 1);
    assert!(at.is_some_and(|n| n <= 2), "the small key's job was taken at {at:?} of {taken:?}");
    // The queue's depth is still every job waiting, and nothing is lost.
    assert_eq!(t.store.queue_len("python").await.unwrap(), 200 - 3);
    let mut rest = 0;
    while t.store.queue_len("python").await.unwrap() > 0 {
        t.take("python-w").await;
        rest += 1;
    }
    assert_eq!(rest, 197);
}

#[tokio::test]
async fn weights_give_a_key_that_many_turns() {
    let t = store().await;
    let (heavy, light) = (key_weighted("heavy", 3), key_weighted("light", 1));
    for _ in 0..40 {
        t.submit(&heavy).await;
        t.submit(&light).await;
    }
    let mut heavy_taken = 0;
    for _ in 0..40 {
        if t.take("python-w").await.job.owner == "heavy" {
            heavy_taken += 1;
        }
    }
    assert!((29..=31).contains(&heavy_taken), "weight 3 against 1 took {heavy_taken} of 40");
}

#[tokio::test]
async fn a_job_given_back_goes_first() {
    let t = store().await;
    let owner = key_weighted("k1", 1);
    for _ in 0..5 {
        t.submit(&owner).await;
    }
    let other = key_weighted("k2", 1);
    t.submit(&other).await;
    let taken = t.take("python-w").await.job.id;
    t.store.requeue_uncounted(taken, "python-w", "engine").await.unwrap();
    assert_eq!(t.take("python-w").await.job.id, taken, "a job handed back uncounted is taken next");
}
