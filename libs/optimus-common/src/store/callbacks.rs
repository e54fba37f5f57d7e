//! What is owed when jobs end: the callbacks of jobs that came in through a
//! compatible API (a Judge0 submission's `callback_url`), and the result messages
//! a Kafka bridge produces ([`Notify`]). What is owed is a member of a sorted set
//! scored by when to look at it next, put due (score 0) by the script that ends
//! its job: any API process (or bridge of that name) may take it for a lease
//! ([`Store::take_due`]), so one that dies mid-delivery leaves it to another once
//! the lease runs out (delivery is at least once).

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use redis::AsyncCommands;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::job::Notify;
use crate::keys;

impl Store {
    /// Ids of what is owed to `notify` and due now (jobs that ended, and jobs to
    /// look at again), each leased to the caller for `lease`.
    pub async fn take_due(&self, notify: &Notify, lease: Duration, max: usize) -> Result<Vec<Uuid>, StoreError> {
        let now = Utc::now().timestamp_millis();
        let until = now + lease.as_millis() as i64;
        let mut conn = self.conn();
        let ids: Vec<String> = self
            .scripts
            .take_callbacks
            .key(notify.owed_set())
            .arg(now)
            .arg(until)
            .arg(max)
            .invoke_async(&mut conn)
            .await?;
        Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
    }

    /// Looks at what `notify` is owed for `id` again after `delay` (its job is
    /// not over yet), unless the job's end has put it due meanwhile (`LT`: an
    /// earlier time is never pushed back).
    pub async fn look_later(&self, notify: &Notify, id: Uuid, delay: Duration) -> Result<(), StoreError> {
        let when = Utc::now().timestamp_millis() + delay.as_millis() as i64;
        let mut conn = self.conn();
        let _: i64 = redis::cmd("ZADD")
            .arg(notify.owed_set())
            .arg("XX")
            .arg("LT")
            .arg(when)
            .arg(id.to_string())
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// What `notify` was owed for `id` is delivered (or given up): true when this
    /// call removed it, false when it was no longer owed (another took it over).
    pub async fn owed_settled(&self, notify: &Notify, id: Uuid) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let removed: i64 = conn.zrem(notify.owed_set(), id.to_string()).await?;
        Ok(removed == 1)
    }

    /// How many of what `notify` is owed wait (running jobs and ended ones).
    pub async fn owed_count(&self, notify: &Notify) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        Ok(conn.zcard(notify.owed_set()).await?)
    }

    /// Ids of callbacks due now, each leased to the caller for `lease`.
    pub async fn take_due_callbacks(&self, lease: Duration, max: usize) -> Result<Vec<Uuid>, StoreError> {
        self.take_due(&Notify::Callback, lease, max).await
    }

    /// Looks at the callback of `id` again after `delay` (its job is not over yet).
    pub async fn callback_later(&self, id: Uuid, delay: Duration) -> Result<(), StoreError> {
        self.look_later(&Notify::Callback, id, delay).await
    }

    /// The callback of `id` is settled: delivered, or given up after its tries
    /// (or its job is gone). Counted in [`Store::callback_stats`].
    pub async fn callback_settled(&self, id: Uuid, delivered: bool) -> Result<(), StoreError> {
        let field = if delivered { "callbacks_delivered" } else { "callbacks_failed" };
        let mut conn = self.conn();
        let (removed,): (i64,) = redis::pipe()
            .zrem(keys::callbacks(), id.to_string())
            .hincr(keys::stats(), field, 0)
            .ignore()
            .query_async(&mut conn)
            .await?;
        // Only the process that removed it counts it: a lease that ran out while a
        // slow delivery went on cannot count one callback twice.
        if removed == 1 {
            let _: i64 = conn.hincr(keys::stats(), field, 1).await?;
        }
        Ok(())
    }

    /// Callbacks owed now, and the counters of [`keys::stats`].
    pub async fn callback_stats(&self) -> Result<(usize, HashMap<String, u64>), StoreError> {
        let mut conn = self.conn();
        let (pending, counters): (usize, HashMap<String, u64>) =
            redis::pipe().zcard(keys::callbacks()).hgetall(keys::stats()).query_async(&mut conn).await?;
        Ok((pending, counters))
    }
}
