//! What keeps a long-lived process whole when one of its parts fails: locks that
//! stay usable after a panic while they were held, tasks that are started again,
//! the backoff of a retry against a dependency that does not answer, and the
//! signal that starts a graceful shutdown.
//!
//! A `std::sync::Mutex` is poisoned by a panic while it is held, and every later
//! `lock().expect(..)` panics too: one bug in one slot would take down every slot
//! of a worker. What these locks guard (sets of ids, counters, timestamps) is
//! whole after any single operation, so a poisoned lock is simply taken.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;

/// `lock()` that takes a poisoned lock as it is.
pub trait Unpoisoned<T> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Unpoisoned<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a caught panic said.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// How long a task that panicked waits before it is started again, so that a
/// panic on every start cannot spin.
const RESTART_PAUSE: Duration = Duration::from_millis(200);

/// The future of one run of a supervised task, borrowing its state.
pub type Run<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Runs `task` on `state` until it returns; a run that panics is logged and
/// started again on the same state. Returns how many runs panicked.
pub async fn supervise<S>(name: &str, state: &mut S, mut task: impl FnMut(&mut S) -> Run<'_>) -> usize {
    let mut panics = 0;
    loop {
        match AssertUnwindSafe(task(state)).catch_unwind().await {
            Ok(()) => return panics,
            Err(panic) => {
                panics += 1;
                tracing::error!(task = name, panic = %panic_message(&*panic), "a task panicked; starting it again");
                tokio::time::sleep(RESTART_PAUSE).await;
            }
        }
    }
}

/// Waits that double after each failure, from `first` up to `max`: how a process
/// retries a dependency (Redis, the container engine) that does not answer, so
/// that an outage costs few calls and a recovery is noticed within `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// The backoff of a worker's retries against Redis and the engine: 200 ms, then
    /// doubling, at most 5 s.
    pub const fn dependency() -> Self {
        Backoff::new(Duration::from_millis(200), Duration::from_secs(5))
    }

    pub const fn new(first: Duration, max: Duration) -> Self {
        Backoff { first, next: first, max }
    }

    /// The wait before the next try; the one after it is twice as long (at most `max`).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(self.max);
        wait
    }

    /// After a success: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Cancels `token` at the first SIGINT or SIGTERM, saying `farewell` in the log:
/// how every long-lived binary starts its graceful shutdown.
pub fn cancel_on_signal(token: tokio_util::sync::CancellationToken, farewell: &'static str) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("{farewell}");
        token.cancel();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_backoff_doubles_to_its_cap_and_starts_over_after_a_success() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let start = tokio::time::Instant::now();
        let mut waits = Vec::new();
        for _ in 0..8 {
            let wait = backoff.next_wait();
            tokio::time::sleep(wait).await;
            waits.push(wait.as_millis());
        }
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(start.elapsed(), Duration::from_millis(16_300), "the retries' waits, to the millisecond");
        backoff.reset();
        assert_eq!(backoff.next_wait(), Duration::from_millis(100));
        assert_eq!(Backoff::dependency().next_wait(), Duration::from_millis(200));
    }

    #[test]
    fn a_lock_poisoned_by_a_panic_is_still_taken() {
        let lock = std::sync::Arc::new(Mutex::new(vec![1]));
        let held = lock.clone();
        let _ = std::thread::spawn(move || {
            let _guard = held.lock().unwrap();
            panic!("while holding the lock");
        })
        .join();
        assert!(lock.is_poisoned());
        lock.locked().push(2);
        assert_eq!(*lock.locked(), [1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_started_again_on_its_state() {
        let mut starts = 0u32;
        let panics = supervise("test", &mut starts, |starts| {
            Box::pin(async move {
                *starts += 1;
                if *starts < 3 {
                    panic!("start {starts}");
                }
            })
        })
        .await;
        assert_eq!((starts, panics), (3, 2));
    }
}
