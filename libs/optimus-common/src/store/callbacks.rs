//! The callbacks owed when jobs that came in through a compatible API end (a
//! Judge0 submission's `callback_url`). A callback owed is a member of one sorted
//! set scored by when to look at it next: any API process may take it for a lease
//! ([`Store::take_due_callbacks`]), so a process that dies mid-delivery leaves it
//! to another once the lease runs out (delivery is at least once).

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use redis::AsyncCommands;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::keys;

impl Store {
    /// Ids of callbacks due now, each leased to the caller for `lease`.
    pub async fn take_due_callbacks(&self, lease: Duration, max: usize) -> Result<Vec<Uuid>, StoreError> {
        let now = Utc::now().timestamp_millis();
        let until = now + lease.as_millis() as i64;
        let mut conn = self.conn();
        let ids: Vec<String> = self
            .scripts
            .take_callbacks
            .key(keys::callbacks())
            .arg(now)
            .arg(until)
            .arg(max)
            .invoke_async(&mut conn)
            .await?;
        Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
    }

    /// Looks at the callback of `id` again after `delay` (its job is not over yet).
    pub async fn callback_later(&self, id: Uuid, delay: Duration) -> Result<(), StoreError> {
        let when = Utc::now().timestamp_millis() + delay.as_millis() as i64;
        let mut conn = self.conn();
        let _: i64 = redis::cmd("ZADD")
            .arg(keys::callbacks())
            .arg("XX")
            .arg(when)
            .arg(id.to_string())
            .query_async(&mut conn)
            .await?;
        Ok(())
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
