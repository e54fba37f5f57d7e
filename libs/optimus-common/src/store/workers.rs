//! Workers: the reliable pop (queue -> the worker's processing list, then the job
//! whose fair-share turn it is), registration and heartbeats, and the recovery of
//! a dead worker's jobs by its live peers.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use uuid::Uuid;

use super::retries::{HandBack, RequeueOutcome};
use super::{Store, StoreError};
use crate::keys;

/// A worker's blocking pop, on a connection of its own.
pub struct Popper {
    conn: MultiplexedConnection,
    queue: String,
    order: String,
    tags: String,
    processing: String,
    fair: redis::Script,
}

impl Popper {
    /// Waits up to `timeout` for a job on the language's queue and moves it to this
    /// worker's processing list in the same step; then (`fair.lua`) swaps it for the
    /// job whose fair-share turn it is, if that is another. Either way the id
    /// returned is on the processing list, so a worker that dies now loses nothing.
    pub async fn pop(&mut self, timeout: Duration) -> Result<Option<Uuid>, StoreError> {
        let Some(popped) = self.take(timeout).await? else { return Ok(None) };
        let id = self.choose(&popped).await?;
        Ok(Uuid::parse_str(&id).ok())
    }

    /// The first half of [`pop`](Self::pop): the `BLMOVE`. Its halves are two
    /// steps, so another worker's may run between them; they are public so that a
    /// test can interleave them as that race does.
    pub async fn take(&mut self, timeout: Duration) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .blmove(
                &self.queue,
                &self.processing,
                redis::Direction::Right,
                redis::Direction::Left,
                timeout.as_secs_f64(),
            )
            .await?)
    }

    /// The second half of [`pop`](Self::pop): `fair.lua` on the id `take` moved;
    /// the id this worker claims.
    pub async fn choose(&mut self, popped: &str) -> Result<String, StoreError> {
        Ok(self
            .fair
            .key(&self.queue)
            .key(&self.processing)
            .key(&self.order)
            .key(&self.tags)
            .arg(popped)
            .invoke_async(&mut self.conn)
            .await?)
    }
}

impl Store {
    /// A popper for `worker` of `language`, on a connection of its own: a `BLMOVE`
    /// would stall every other command sharing a multiplexed connection.
    pub async fn popper(&self, language: &str, worker: &str) -> Result<Popper, StoreError> {
        let conn = self.client.get_multiplexed_async_connection().await?;
        Ok(Popper {
            conn,
            queue: keys::queue(language),
            order: keys::queue_order(language),
            tags: keys::queue_tags(language),
            processing: keys::processing(worker),
            fair: self.scripts.fair.clone(),
        })
    }

    /// Announces a worker of `language` and starts its heartbeat.
    pub async fn register_worker(&self, language: &str, worker: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let _: () = redis::pipe()
            .atomic()
            .sadd(keys::workers(language), worker)
            .set_ex(keys::alive(worker), 1, self.heartbeat_timeout_secs)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Keeps a worker alive for another heartbeat timeout. Re-adds it to its
    /// language's set too, in case a peer presumed it dead during a Redis outage.
    pub async fn heartbeat(&self, language: &str, worker: &str) -> Result<(), StoreError> {
        self.register_worker(language, worker).await
    }

    /// The jobs on a worker's processing list (ids that do not parse are skipped).
    pub async fn processing(&self, worker: &str) -> Result<Vec<Uuid>, StoreError> {
        let mut conn = self.conn();
        let ids: Vec<String> = conn.lrange(keys::processing(worker), 0, -1).await?;
        Ok(ids.iter().filter_map(|id| Uuid::parse_str(id).ok()).collect())
    }

    /// A worker leaving cleanly, its processing list already empty.
    pub async fn deregister_worker(&self, language: &str, worker: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let _: () = redis::pipe()
            .atomic()
            .srem(keys::workers(language), worker)
            .del(keys::alive(worker))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// The workers of `language` whose heartbeat is current.
    pub async fn live_workers(&self, language: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let workers: Vec<String> = conn.smembers(keys::workers(language)).await?;
        let mut live = Vec::new();
        for worker in workers {
            if conn.exists(keys::alive(&worker)).await? {
                live.push(worker);
            }
        }
        Ok(live)
    }

    /// Gives the jobs of every dead worker of `language` back to the queue (or
    /// fails those out of attempts). Returns what happened to each job.
    pub async fn recover_dead_workers(&self, language: &str) -> Result<Vec<(Uuid, RequeueOutcome)>, StoreError> {
        let mut conn = self.conn();
        let workers: Vec<String> = conn.smembers(keys::workers(language)).await?;
        let mut recovered = Vec::new();
        for worker in workers {
            let alive: bool = conn.exists(keys::alive(&worker)).await?;
            if alive {
                continue;
            }
            let ids: Vec<String> = conn.lrange(keys::processing(&worker), 0, -1).await?;
            for id in ids {
                let Ok(id) = Uuid::parse_str(&id) else {
                    continue;
                };
                // Fenced: the script re-checks, in the same step, that the worker
                // is still silent, so a live peer never loses a job it runs.
                let outcome =
                    self.hand_back(id, &worker, "its worker stopped responding", HandBack::FromDeadPeer).await?;
                if outcome == RequeueOutcome::OwnerAlive {
                    break;
                }
                recovered.push((id, outcome));
            }
            let left: usize = conn.llen(keys::processing(&worker)).await?;
            if left == 0 {
                let _: () = conn.srem(keys::workers(language), &worker).await?;
            }
        }
        Ok(recovered)
    }
}
