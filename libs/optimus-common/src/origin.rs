//! What a job came in as, when it came in through a compatible API (a Judge0
//! submission keeps the fields Judge0 clients read back), and the callbacks owed
//! when such jobs end.
//!
//! The origin is a field of the job record, written by the enqueue script, so it
//! is stored and expires with the job. A callback owed is a member of one sorted
//! set scored by when to look at it next: any API process may take it for a lease
//! ([`Store::take_due_callbacks`]), so a process that dies mid-delivery leaves it
//! to another once the lease runs out (delivery is at least once).

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use redis::{AsyncCommands, Script};
use uuid::Uuid;

use crate::job::JobSpec;
use crate::keys;
use crate::store::{Caller, Store, StoreError};

/// A job's origin as the API that took it serializes it.
#[derive(Debug, Clone)]
pub struct Origin {
    pub json: String,
    /// A callback is owed when the job ends.
    pub callback: bool,
}

/// Takes up to ARGV[3] members due by ARGV[1] (ms) and pushes them to ARGV[2]: a lease.
const TAKE_DUE: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
end
return due
";

impl Store {
    /// The job's origin and spec, if it is still stored and `caller`'s (any
    /// owner's for `None`: the platform's own work, such as callbacks).
    pub async fn origin_and_spec(
        &self,
        id: Uuid,
        caller: Option<&Caller>,
    ) -> Result<Option<(Option<String>, JobSpec)>, StoreError> {
        let mut conn = self.conn();
        let (owner, origin, spec): (Option<String>, Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(keys::job(id))
            .arg("owner")
            .arg("origin")
            .arg("spec")
            .query_async(&mut conn)
            .await?;
        let Some(spec) = spec else { return Ok(None) };
        if caller.is_some_and(|c| owner.as_deref().unwrap_or("") != c.key_id()) {
            return Ok(None);
        }
        let spec = serde_json::from_str(&spec).map_err(|e| StoreError::Corrupt { id, why: format!("spec: {e}") })?;
        Ok(Some((origin, spec)))
    }

    /// Ids of callbacks due now, each leased to the caller for `lease`.
    pub async fn take_due_callbacks(&self, lease: Duration, max: usize) -> Result<Vec<Uuid>, StoreError> {
        let now = Utc::now().timestamp_millis();
        let until = now + lease.as_millis() as i64;
        let mut conn = self.conn();
        let ids: Vec<String> =
            Script::new(TAKE_DUE).key(keys::callbacks()).arg(now).arg(until).arg(max).invoke_async(&mut conn).await?;
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
    /// (or its job is gone). Counted in [`Store::stats`].
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
