//! A worker's liveness and its share of the platform's upkeep: its heartbeat,
//! the rescan of its own processing list, the recovery of dead peers' jobs, the
//! sweep of their containers, and the promotion of due retries.

use std::collections::HashSet;
use std::time::Duration;

use optimus_common::sync::Unpoisoned;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use super::{Worker, PROMOTE_EVERY, SWEEP_EVERY_BEATS};

impl Worker {
    pub(super) async fn heartbeat(&self, stop: CancellationToken) {
        let every = Duration::from_secs((self.config.settings.heartbeat_timeout_secs / 3).max(1));
        let mut beats = 0u32;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.store.heartbeat(&self.config.language.name, &self.id).await {
                self.metrics.redis_errors.inc();
                warn!(error = %e, "heartbeat failed");
                *self.connected_since.locked() = None;
                continue;
            }
            let connected_for = {
                let mut since = self.connected_since.locked();
                since.get_or_insert_with(tokio::time::Instant::now).elapsed()
            };
            if connected_for >= Duration::from_secs(self.config.settings.heartbeat_timeout_secs) {
                self.recover().await;
            }
            self.rescan(false).await;
            // A worker that was killed and whose replacement started before its
            // heartbeat expired left containers no start-up sweep removed.
            beats += 1;
            if beats.is_multiple_of(SWEEP_EVERY_BEATS) {
                self.sweep_containers().await;
            }
        }
    }

    /// Hands back the jobs on this worker's own processing list that no slot holds
    /// (a slot that panicked, a claim whose hand-back failed, a reply lost with
    /// Redis): nothing stays `running` without an owner. A job seen so once may
    /// just have been popped; it goes back when the next rescan sees it so again,
    /// or at once when `now` (no slot runs any more). Returns how many are left.
    pub(super) async fn rescan(&self, now: bool) -> usize {
        let listed = match self.store.processing(&self.id).await {
            Ok(listed) => listed,
            Err(e) => {
                warn!(error = %e, "cannot read this worker's processing list");
                return usize::MAX;
            }
        };
        let unheld: HashSet<Uuid> = {
            let held = self.held.locked();
            listed.into_iter().filter(|id| !held.contains(id)).collect()
        };
        let due: Vec<Uuid> = {
            let mut stranded = self.stranded.locked();
            let due = unheld.iter().filter(|id| now || stranded.contains(id)).copied().collect();
            *stranded = unheld;
            due
        };
        let mut left = self.stranded.locked().len();
        for id in due {
            warn!(%id, "a job on this worker's list had no slot running it");
            match self.store.requeue(id, &self.id, "it was stranded on its worker").await {
                Ok(outcome) => {
                    info!(%id, ?outcome, "stranded job handed back");
                    self.stranded.locked().remove(&id);
                    left = left.saturating_sub(1);
                }
                Err(e) => warn!(%id, error = %e, "cannot hand a stranded job back"),
            }
        }
        left
    }

    /// Moves retried jobs whose backoff has passed back to the queue.
    pub(super) async fn promote(&self, stop: CancellationToken) {
        let lang = &self.config.language.name;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PROMOTE_EVERY) => {}
            }
            match self.store.promote_due(lang).await {
                Ok(0) => {}
                Ok(n) => info!(jobs = n, "retried jobs back in the queue after their backoff"),
                Err(e) => warn!(error = %e, "cannot move due retries to the queue"),
            }
        }
    }

    /// Gives back the jobs of dead workers of this language.
    async fn recover(&self) {
        match self.store.recover_dead_workers(&self.config.language.name).await {
            Ok(jobs) => {
                for (job, outcome) in jobs {
                    warn!(%job, ?outcome, "recovered a job from a dead worker");
                }
            }
            Err(e) => warn!(error = %e, "recovery of dead workers' jobs failed"),
        }
    }

    /// Removes sandbox containers left by workers that are no longer alive.
    pub(super) async fn sweep_containers(&self) {
        let store = self.store.clone();
        let language = self.config.language.name.clone();
        // Which workers are alive is asked once, up front; the sweep itself is sync.
        let alive: Vec<String> = match store.live_workers(&language).await {
            Ok(w) => w,
            Err(e) => {
                warn!(error = %e, "cannot list live workers; skipping the container sweep");
                return;
            }
        };
        match self.sandbox.sweep(|w| alive.iter().any(|a| a == w)).await {
            Ok(0) => {}
            Ok(n) => info!(removed = n, "removed containers left by dead workers"),
            Err(e) => warn!(error = %e, "container sweep failed"),
        }
    }
}
