//! Hand-backs and what follows them: a job a worker could not judge goes back to
//! its queue (uncounted: the platform failed) or waits in its language's retry set
//! for a backoff (counted), and after its last attempt ends `failed` on its
//! language's dead-letter list, from where an operator may revive it.

use std::time::Duration;

use redis::AsyncCommands;
use uuid::Uuid;

use super::jobs::JobRef;
use super::{now, Store, StoreError};
use crate::job::AttemptError;
use crate::keys;

/// What happened to a job handed back by [`Store::requeue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequeueOutcome {
    /// Back at the front of its queue.
    Requeued,
    /// Waiting in the retry set for its backoff.
    Delayed,
    /// Out of attempts: `failed`, and on the dead-letter list.
    Failed,
    Cancelled,
    /// Its worker beats again (it was not dead): nothing changed.
    OwnerAlive,
    Gone,
}

/// How the backoff of a retried job grows: `base * 2^(attempt - 1)`, at most `cap`,
/// of which half is fixed and half random.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

/// How a job is handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HandBack {
    /// By its own worker; the attempt counts.
    Counted,
    /// By its own worker; the platform failed, so the attempt does not count.
    Uncounted,
    /// By a peer, from a worker presumed dead; only if it still is.
    FromDeadPeer,
}

/// Most jobs [`Store::promote_due`] moves in one step.
const PROMOTE_BATCH: usize = 100;

/// A job on a dead-letter list, as `optimus-cli jobs dead` shows it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub status: String,
    pub attempts: u32,
    pub error: String,
    pub finished_at: String,
    pub attempt_errors: Vec<AttemptError>,
}

/// What [`Store::revive`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviveOutcome {
    Requeued,
    /// The job's record has expired; its id was dropped from the list.
    Expired,
    /// The job is not `failed` (revived already, or never failed); dropped from the list.
    NotFailed(String),
}

impl Store {
    /// Hands a job on `worker`'s processing list back: to the retry set for its
    /// backoff, or to `failed` and the dead-letter list when out of attempts.
    /// `reason` is kept in the job's attempt log.
    pub async fn requeue(&self, id: Uuid, worker: &str, reason: &str) -> Result<RequeueOutcome, StoreError> {
        self.hand_back(id, worker, reason, HandBack::Counted).await
    }

    /// Hands a running job back to the front of its queue without counting the
    /// attempt: the platform (the container engine, a worker stopping) failed, not the job.
    pub async fn requeue_uncounted(&self, id: Uuid, worker: &str, reason: &str) -> Result<RequeueOutcome, StoreError> {
        self.hand_back(id, worker, reason, HandBack::Uncounted).await
    }

    pub(super) async fn hand_back(
        &self,
        id: Uuid,
        worker: &str,
        reason: &str,
        how: HandBack,
    ) -> Result<RequeueOutcome, StoreError> {
        // A job whose record has gone names no language: the script, fenced as
        // ever, only drops its id from the list (and touches no key of the language).
        let job = self.locate(id).await?.unwrap_or(JobRef {
            id,
            language: String::new(),
            owner: String::new(),
            notify: None,
        });
        let keys = job.keys();
        let mut conn = self.conn();
        let mut requeue = self.scripts.requeue.key(&keys.record);
        requeue
            .key(keys::processing(worker))
            .key(&keys.cancel)
            .key(keys::alive(worker))
            .key(&keys.queue)
            .key(&keys.retry)
            .key(&keys.dead)
            .key(&keys.held)
            .key(&keys.events)
            .key(&keys.bytes)
            .key(&keys.order)
            .key(&keys.tags)
            .arg(job.id.to_string())
            .arg(self.max_attempts)
            .arg(reason)
            .arg(now())
            .arg(self.ttl_secs)
            .arg(if how == HandBack::Uncounted { "1" } else { "0" })
            .arg(if how == HandBack::FromDeadPeer { "1" } else { "0" })
            .arg(self.backoff.base.as_millis() as u64)
            .arg(self.backoff.cap.as_millis() as u64)
            .arg(jitter());
        if let Some(owed) = &keys.owed {
            requeue.key(owed);
        }
        let outcome: String = requeue.invoke_async(&mut conn).await?;
        Ok(match outcome.as_str() {
            "requeued" => RequeueOutcome::Requeued,
            "delayed" => RequeueOutcome::Delayed,
            "failed" => RequeueOutcome::Failed,
            "cancelled" => RequeueOutcome::Cancelled,
            "alive" => RequeueOutcome::OwnerAlive,
            _ => RequeueOutcome::Gone,
        })
    }

    /// Moves the jobs of `language`'s retry set whose backoff has passed (by
    /// Redis's clock) to the front of its queue. Returns how many moved.
    pub async fn promote_due(&self, language: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let retry = keys::retry(language);
        let due: Vec<String> = self.scripts.due.key(&retry).arg(PROMOTE_BATCH).invoke_async(&mut conn).await?;
        let due: Vec<Uuid> = due.iter().filter_map(|id| Uuid::parse_str(id).ok()).collect();
        if due.is_empty() {
            return Ok(0);
        }
        let mut promote = self.scripts.promote.key(&retry);
        promote.key(keys::queue(language)).key(keys::queue_order(language)).key(keys::queue_tags(language));
        for id in &due {
            promote.key(keys::job(*id)).arg(id.to_string());
        }
        Ok(promote.invoke_async(&mut conn).await?)
    }

    /// The dead letters of `language`, newest first: each id with its record, or
    /// `None` where the record has expired.
    pub async fn dead_letters(&self, language: &str) -> Result<Vec<(Uuid, Option<DeadLetter>)>, StoreError> {
        let mut conn = self.conn();
        let ids: Vec<String> = conn.lrange(keys::dead(language), 0, -1).await?;
        let mut letters = Vec::with_capacity(ids.len());
        for raw in ids {
            let Ok(id) = Uuid::parse_str(&raw) else { continue };
            type Fields = (Option<String>, Option<u32>, Option<String>, Option<String>, Option<String>);
            let (status, attempts, error, finished_at, log): Fields = redis::cmd("HMGET")
                .arg(keys::job(id))
                .arg(&["status", "attempts", "error", "finished_at", "attempt_errors"])
                .query_async(&mut conn)
                .await?;
            let letter = status.map(|status| DeadLetter {
                status,
                attempts: attempts.unwrap_or(0),
                error: error.unwrap_or_default(),
                finished_at: finished_at.unwrap_or_default(),
                attempt_errors: log.and_then(|l| serde_json::from_str(&l).ok()).unwrap_or_default(),
            });
            letters.push((id, letter));
        }
        Ok(letters)
    }

    /// Gives a dead-lettered job of `language` a new set of attempts.
    pub async fn revive(&self, id: Uuid, language: &str) -> Result<ReviveOutcome, StoreError> {
        // The owner names the ledger the revived job holds in again; a record that
        // has expired has none, and the script only drops its id.
        let owner = self.locate(id).await?.map(|job| job.owner).unwrap_or_default();
        let keys = keys::JobKeys::new(id, language, &owner);
        let mut conn = self.conn();
        let outcome: String = self
            .scripts
            .revive
            .key(&keys.record)
            .key(&keys.dead)
            .key(&keys.queue)
            .key(&keys.held)
            .key(&keys.events)
            .key(&keys.bytes)
            .key(&keys.order)
            .key(&keys.tags)
            .arg(id.to_string())
            .invoke_async(&mut conn)
            .await?;
        Ok(match outcome.as_str() {
            "requeued" => ReviveOutcome::Requeued,
            "missing" => ReviveOutcome::Expired,
            other => ReviveOutcome::NotFailed(other.to_string()),
        })
    }

    /// Empties `language`'s dead-letter list (the job records expire with their TTL).
    /// Returns how many ids it held.
    pub async fn purge_dead(&self, language: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let (len, _): (usize, ()) =
            redis::pipe().atomic().llen(keys::dead(language)).del(keys::dead(language)).query_async(&mut conn).await?;
        Ok(len)
    }
}

/// A number in [0, 1) from the operating system's random source: one draw per backoff.
fn jitter() -> f64 {
    let random = Uuid::new_v4();
    f64::from(u16::from_le_bytes([random.as_bytes()[0], random.as_bytes()[1]])) / 65_536.0
}
