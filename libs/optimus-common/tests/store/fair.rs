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

/// Two workers' pops race: B's `BLMOVE` takes the oldest job, then A's whole pop
/// runs, finds that job's tag the lowest and the job not queued, and drops its
/// tag as stale; then B's `fair.lua` runs. B must take the job it moved: swapped
/// back into the queue without a tag, it would be passed over by every pop for
/// as long as another key keeps jobs waiting (the 10,000-job soak lost one so).
#[tokio::test]
async fn a_job_whose_tag_a_racing_pop_dropped_is_still_taken() {
    let t = store().await;
    // Weight 3: the small key's tags (1/3, 2/3) are below the flood's (1, 2, ...).
    let (small, flood) = (key_weighted("small", 3), key_weighted("flood", 1));
    let oldest = t.submit(&small).await;
    for _ in 0..20 {
        t.submit(&flood).await;
    }
    let second = t.submit(&small).await;
    for worker in ["python-a", "python-b"] {
        t.store.register_worker("python", worker).await.unwrap();
    }
    let mut b = t.store.popper("python", "python-b").await.unwrap();
    let moved = b.take(std::time::Duration::from_secs(1)).await.unwrap().expect("a job is queued");
    assert_eq!(moved, oldest.to_string(), "BLMOVE takes the oldest");
    let mut a = t.store.popper("python", "python-a").await.unwrap();
    let a_moved = a.take(std::time::Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(a.choose(&a_moved).await.unwrap(), second.to_string(), "A takes the next lowest tag");
    assert_eq!(b.choose(&moved).await.unwrap(), oldest.to_string(), "B takes the job it moved");
    // Every job still queued has its tag, so each is taken in its turn.
    let mut conn = t.redis().await;
    let tagged: usize =
        redis::AsyncCommands::zcard(&mut conn, optimus_common::keys::queue_order("python")).await.unwrap();
    assert_eq!(tagged, t.store.queue_len("python").await.unwrap());
}
