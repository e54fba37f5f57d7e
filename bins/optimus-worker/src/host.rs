//! The host's job slots, shared by every worker on it: a job runs only while it
//! holds one, so that the jobs running at once never exceed what the host can run
//! fairly (by default one per core), whatever the workers' concurrency adds up to.
//! Too many at once would make correct programs slow enough, waiting for a core,
//! to be judged against a clock they never had.
//!
//! A slot is an exclusive lock on one of `budget` files in a directory all the
//! host's workers share. The kernel releases it when its holder exits, however
//! it exits, so a killed worker never keeps a slot; no Redis traffic is involved.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::time::Duration;

/// Where the slot files live, and how many there are.
#[derive(Debug, Clone)]
pub struct HostSlots {
    dir: PathBuf,
    budget: usize,
}

/// A held slot; dropping it frees the slot.
pub struct Slot {
    _file: File,
    pub index: usize,
}

/// How often a job waiting for a slot tries again.
const RETRY: Duration = Duration::from_millis(5);

impl HostSlots {
    /// `budget` slots in `dir` (created if missing).
    pub fn open(dir: PathBuf, budget: usize) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(HostSlots { dir, budget: budget.max(1) })
    }

    /// One slot per core of this machine.
    pub fn default_budget() -> usize {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// A free slot, now or as soon as one is freed. Cancel by dropping the future.
    pub async fn acquire(&self) -> std::io::Result<Slot> {
        loop {
            if let Some(slot) = self.try_acquire()? {
                return Ok(slot);
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    fn try_acquire(&self) -> std::io::Result<Option<Slot>> {
        for index in 0..self.budget {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.dir.join(format!("slot-{index}")))?;
            match file.try_lock() {
                Ok(()) => return Ok(Some(Slot { _file: file, index })),
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => return Err(e),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_exclusive_and_freed_when_dropped() {
        let dir = std::env::temp_dir().join(format!("optimus-slots-test-{}", std::process::id()));
        let slots = HostSlots::open(dir.clone(), 2).unwrap();
        let a = slots.acquire().await.unwrap();
        let b = slots.acquire().await.unwrap();
        assert_ne!(a.index, b.index);
        assert!(slots.try_acquire().unwrap().is_none(), "a third slot of two");
        // Another worker on the host (another open of the same files) sees them taken.
        let other = HostSlots::open(dir.clone(), 2).unwrap();
        assert!(other.try_acquire().unwrap().is_none());
        drop(a);
        let c = other.acquire().await.unwrap();
        assert!(slots.try_acquire().unwrap().is_none());
        drop((b, c));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
