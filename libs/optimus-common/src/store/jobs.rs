//! A job's life in Redis: enqueued (record + queue entry), claimed by a worker,
//! cancelled, finished (result + removal from the worker's list); and its record
//! as the API shows it.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use redis::AsyncCommands;
use uuid::Uuid;

use super::views::ResultSummary;
use super::{now, parse_stamp, parse_time, Store, StoreError, RECENT_JOBS_KEPT};
use crate::auth::{Caller, Quota};
use crate::config::LanguageConfig;
use crate::job::{JobRecord, JobSpec, JobStatus, Notify, Origin};
use crate::keys::{self, JobKeys};
use crate::verdict::JobResult;

/// What never changes about a job once it is queued, and so names all its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    pub id: Uuid,
    pub language: String,
    /// The API key id that owns it (`""`: nobody's; authentication was off).
    pub owner: String,
    /// Who is owed word of its end, if anyone.
    pub notify: Option<Notify>,
}

impl JobRef {
    pub fn keys(&self) -> JobKeys {
        JobKeys::new(self.id, &self.language, &self.owner).owing(self.notify.as_ref())
    }
}

/// What `DELETE /jobs/:id` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// No such job (never existed, or expired).
    Missing,
    /// It was queued and will never run.
    Cancelled,
    /// It is running; its worker will stop it.
    Cancelling,
    /// It had already ended in this status; nothing changed.
    AlreadyFinished(JobStatus),
}

/// A job a worker has claimed: what to run, which attempt this is, and when it
/// was submitted (for the time it waited).
#[derive(Debug, Clone)]
pub struct Claimed {
    pub job: JobRef,
    pub spec: JobSpec,
    pub attempt: u32,
    pub created_at: Option<DateTime<Utc>>,
    /// The trace context the job was submitted in, if its submission was traced.
    pub traceparent: Option<String>,
}

/// What [`Store::enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueOutcome {
    Queued,
    /// The language's queue holds `max_queue_depth` jobs.
    QueueFull,
    /// The owner's key is over its rate; it may submit again after this long.
    RateLimited {
        retry_after: Duration,
    },
    /// The owner has its quota's most jobs queued or running.
    TooManyActive {
        max: u32,
    },
    /// The owner holds its quota's bytes: the job would need `needed` more. Its
    /// oldest finished job's hold ends after `retry_after` (`None`: every byte it
    /// holds is a job still queued or running).
    OverQuota {
        needed: u64,
        max_bytes: u64,
        retry_after: Option<Duration>,
    },
    /// The job alone needs more than the owner's quota allows.
    TooLarge {
        needed: u64,
        max_bytes: u64,
    },
    /// Redis uses `used` bytes: the job would take it past the high-water mark.
    StorageFull {
        used: u64,
    },
}

/// What admits a new job beside the owner's rate: the quota the owner is held
/// to, and the share of Redis's `maxmemory` past which nothing is stored (0: no
/// check). Both are checked in the enqueue script, in the step that stores the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub quota: Quota,
    pub memory_high_percent: u8,
}

impl Admission {
    /// The caller's own quota (none for anonymous callers), no memory check.
    pub fn of(caller: &Caller) -> Self {
        Admission { quota: caller.quota().unwrap_or(Quota::NONE), memory_high_percent: 0 }
    }
}

/// What a job's record keeps of where it came from: the [`Origin`] of a job that
/// came in through a compatible API, and the trace context of its submission.
#[derive(Debug, Clone, Copy, Default)]
pub struct Provenance<'a> {
    pub origin: Option<&'a Origin>,
    pub traceparent: Option<&'a str>,
}

/// Bytes a job holds beside its spec, origin and trace context while it waits:
/// the record's other fields, its first event, its index entries. Measured at
/// 5.9 KiB (anonymous) to 6.7 KiB (a key's) a job over 1,000 queued jobs
/// (`scripts/memory.sh`), rounded up: with 1 KiB, a key without a cap on its
/// queued jobs could hold several times its quota in small ones.
pub const HOLD_OVERHEAD: u64 = 8 * 1024;

/// What Redis's allocator (jemalloc) takes for a value of `len` bytes: sizes step
/// four times per doubling, so a value just past a power of two takes up to a
/// quarter more (a spec of 8 MiB and a few bytes takes 10 MiB). A quota counts
/// this, not the length: counting lengths let a key hold 25 % past its quota.
pub fn allocated(len: u64) -> u64 {
    if len <= 16 {
        return 16;
    }
    // 2^k < len <= 2^(k+1); the classes in that span are 2^(k-2) apart.
    let k = 63 - (len - 1).leading_zeros() as u64;
    let step = 1u64 << k.saturating_sub(2);
    len.div_ceil(step) * step
}

/// The most ended holds one enqueue reclaims from the owner's ledger: the
/// script's work stays bounded, and the ledger catches up over a few submissions.
pub const LEDGER_RECLAIM: usize = 1000;

/// The fields of a job record that [`Store::get`] reads.
const RECORD_FIELDS: [&str; 10] = [
    "language",
    "status",
    "created_at",
    "started_at",
    "finished_at",
    "attempts",
    "error",
    "attempt_errors",
    "retry_at_ms",
    "owner",
];

impl Store {
    /// Stores a job and queues it atomically, once the caller's limits and the
    /// queue's depth allow it; otherwise nothing is written.
    pub async fn enqueue(
        &self,
        id: Uuid,
        spec: &JobSpec,
        lang: &LanguageConfig,
        caller: &Caller,
    ) -> Result<EnqueueOutcome, StoreError> {
        self.enqueue_from(id, spec, lang, caller, &Admission::of(caller), Provenance::default()).await
    }

    /// [`enqueue`](Self::enqueue) under `admission` (the owner's quota, Redis's
    /// high-water mark), with the job's [`Provenance`]; stored in the same atomic
    /// step (and expiring with the job).
    pub async fn enqueue_from(
        &self,
        id: Uuid,
        spec: &JobSpec,
        lang: &LanguageConfig,
        caller: &Caller,
        admission: &Admission,
        provenance: Provenance<'_>,
    ) -> Result<EnqueueOutcome, StoreError> {
        let Provenance { origin, traceparent } = provenance;
        let notify = origin.and_then(|o| o.notify.as_ref());
        let spec_json = serde_json::to_string(spec).expect("spec serializes");
        let rate = match caller {
            Caller::Anonymous => 0,
            Caller::Key { rate_per_min, .. } => *rate_per_min,
        };
        let quota = admission.quota;
        let needed = allocated(spec_json.len() as u64)
            + (origin.map_or(0, |o| o.json.len()) + traceparent.map_or(0, str::len)) as u64
            + HOLD_OVERHEAD;
        let key_id = caller.key_id();
        let job = JobKeys::new(id, &lang.name, key_id);
        let mut conn = self.conn();
        // One reading of the clock: the record's creation time and its place in the
        // recent index agree to the millisecond.
        let created = Utc::now();
        let (code, retry_after_ms): (i64, u64) = self
            .scripts
            .enqueue
            .key(&job.record)
            .key(&job.queue)
            .key(&job.held)
            .key(keys::owner_rate(key_id))
            .key(&job.events)
            .key(&job.recent)
            .key(notify.map_or_else(keys::callbacks, Notify::owed_set))
            .key(&job.bytes)
            .key(&job.order)
            .key(&job.tags)
            .arg(id.to_string())
            .arg(spec_json)
            .arg(&lang.name)
            .arg(created.to_rfc3339_opts(SecondsFormat::Millis, true))
            .arg(lang.max_queue_depth)
            .arg(key_id)
            .arg(rate)
            .arg(quota.max_active)
            .arg(created.timestamp_millis())
            .arg(RECENT_JOBS_KEPT)
            .arg(origin.map_or("", |o| o.json.as_str()))
            .arg(notify.map(Notify::field).unwrap_or_default())
            .arg(traceparent.unwrap_or(""))
            .arg(needed)
            .arg(quota.max_bytes)
            .arg(admission.memory_high_percent)
            .arg(LEDGER_RECLAIM)
            .arg(caller.weight())
            .arg(created.timestamp_millis() + notify.map_or(0, Notify::first_look_ms))
            .invoke_async(&mut conn)
            .await?;
        let max_bytes = quota.max_bytes;
        Ok(match code {
            1 => EnqueueOutcome::Queued,
            -1 => EnqueueOutcome::RateLimited { retry_after: Duration::from_millis(retry_after_ms) },
            -2 => EnqueueOutcome::TooManyActive { max: quota.max_active },
            -3 => EnqueueOutcome::OverQuota {
                needed,
                max_bytes,
                retry_after: (retry_after_ms > 0).then(|| Duration::from_millis(retry_after_ms)),
            },
            -4 => EnqueueOutcome::TooLarge { needed, max_bytes },
            -5 => EnqueueOutcome::StorageFull { used: retry_after_ms },
            _ => EnqueueOutcome::QueueFull,
        })
    }

    /// The job's language and owner, which name all its keys (`None`: no such job).
    /// They never change once the job is queued, so a script may be given the keys
    /// they name after this read without a race.
    pub(super) async fn locate(&self, id: Uuid) -> Result<Option<JobRef>, StoreError> {
        let mut conn = self.conn();
        let (language, owner, notify): (Option<String>, Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(keys::job(id))
            .arg("language")
            .arg("owner")
            .arg("notify")
            .query_async(&mut conn)
            .await?;
        Ok(language.map(|language| JobRef {
            id,
            language,
            owner: owner.unwrap_or_default(),
            notify: notify.as_deref().and_then(Notify::parse),
        }))
    }

    /// The job as the API shows it, or `None` if there is no such job or it
    /// belongs to a key other than `caller`'s. (Reads the fields it shows and the result.)
    pub async fn get(&self, id: Uuid, caller: &Caller) -> Result<Option<JobRecord>, StoreError> {
        self.read_record(id, Some(caller)).await
    }

    /// The job whoever owns it: for the platform's own work on it (callbacks),
    /// never for answering a caller.
    pub async fn get_unowned(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        self.read_record(id, None).await
    }

    async fn read_record(&self, id: Uuid, caller: Option<&Caller>) -> Result<Option<JobRecord>, StoreError> {
        let mut conn = self.conn();
        // Only the fields the answer shows: never the spec, which can be as large
        // as a request body, on every poll.
        let (values, result): (Vec<Option<String>>, Option<String>) =
            redis::pipe().hget(keys::job(id), &RECORD_FIELDS[..]).get(keys::result(id)).query_async(&mut conn).await?;
        let fields: HashMap<&str, String> =
            RECORD_FIELDS.iter().zip(values).filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
        let foreign = |caller: &Caller| fields.get("owner").is_some_and(|owner| owner != caller.key_id());
        if fields.is_empty() || caller.is_some_and(foreign) {
            return Ok(None);
        }
        let corrupt = |why: String| StoreError::Corrupt { id, why };
        let status =
            fields.get("status").and_then(|s| JobStatus::parse(s)).ok_or_else(|| corrupt("no valid status".into()))?;
        let result = result
            .map(|r| serde_json::from_str::<JobResult>(&r))
            .transpose()
            .map_err(|e| corrupt(format!("result: {e}")))?;
        Ok(Some(JobRecord {
            job_id: id,
            language: fields.get("language").cloned().unwrap_or_default(),
            status,
            created_at: parse_time(id, &fields, "created_at")?.ok_or_else(|| corrupt("no created_at".into()))?,
            started_at: parse_time(id, &fields, "started_at")?,
            finished_at: parse_time(id, &fields, "finished_at")?,
            attempts: fields.get("attempts").and_then(|a| a.parse().ok()).unwrap_or(0),
            error: fields.get("error").cloned(),
            attempt_errors: fields
                .get("attempt_errors")
                .map(|log| serde_json::from_str(log))
                .transpose()
                .map_err(|e| corrupt(format!("attempt_errors: {e}")))?
                .unwrap_or_default(),
            retry_at: fields
                .get("retry_at_ms")
                .and_then(|ms| ms.parse::<i64>().ok())
                .and_then(DateTime::from_timestamp_millis),
            result,
        }))
    }

    /// The job's origin (`Some(None)`: it came in through Optimus's own API), if
    /// the job is still stored and `caller`'s (any owner's for `None`: the
    /// platform's own work, such as callbacks). Reads two fields, never the spec.
    pub async fn origin(&self, id: Uuid, caller: Option<&Caller>) -> Result<Option<Option<String>>, StoreError> {
        let mut conn = self.conn();
        let (status, owner, origin): (Option<String>, Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(keys::job(id))
            .arg("status")
            .arg("owner")
            .arg("origin")
            .query_async(&mut conn)
            .await?;
        if status.is_none() || caller.is_some_and(|c| owner.as_deref().unwrap_or("") != c.key_id()) {
            return Ok(None);
        }
        Ok(Some(origin))
    }

    /// The job's spec (which may be as large as a request body: read it only when
    /// the answer shows it), if the job is still stored and `caller`'s.
    pub async fn spec(&self, id: Uuid, caller: &Caller) -> Result<Option<JobSpec>, StoreError> {
        let mut conn = self.conn();
        let (owner, spec): (Option<String>, Option<String>) =
            redis::cmd("HMGET").arg(keys::job(id)).arg("owner").arg("spec").query_async(&mut conn).await?;
        let Some(spec) = spec else { return Ok(None) };
        if owner.as_deref().unwrap_or("") != caller.key_id() {
            return Ok(None);
        }
        serde_json::from_str(&spec).map(Some).map_err(|e| StoreError::Corrupt { id, why: format!("spec: {e}") })
    }

    /// Cancels a job of `caller`'s (another key's job is [`CancelOutcome::Missing`]).
    pub async fn cancel(&self, id: Uuid, caller: &Caller) -> Result<CancelOutcome, StoreError> {
        let Some(job) = self.locate(id).await? else { return Ok(CancelOutcome::Missing) };
        // The script checks that the job is the caller's; its ledger is its owner's.
        let keys = job.keys();
        let mut conn = self.conn();
        let mut cancel = self.scripts.cancel.key(&keys.record);
        cancel
            .key(&keys.cancel)
            .key(&keys.queue)
            .key(&keys.retry)
            .key(&keys.held)
            .key(&keys.events)
            .key(&keys.bytes)
            .key(&keys.order)
            .arg(id.to_string())
            .arg(now())
            .arg(self.ttl_secs)
            .arg(caller.key_id());
        if let Some(owed) = &keys.owed {
            cancel.key(owed);
        }
        let outcome: String = cancel.invoke_async(&mut conn).await?;
        Ok(match outcome.as_str() {
            "missing" => CancelOutcome::Missing,
            "dequeued" => CancelOutcome::Cancelled,
            "cancelling" => CancelOutcome::Cancelling,
            other => CancelOutcome::AlreadyFinished(
                JobStatus::parse(other).ok_or_else(|| StoreError::Corrupt { id, why: format!("status {other}") })?,
            ),
        })
    }

    pub async fn is_cancel_requested(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        Ok(conn.exists(keys::cancel(id)).await?)
    }

    /// Marks a popped job of `language` as running on `worker`: its spec and which
    /// attempt this is. `None`: it was cancelled or has gone while queued, and has
    /// been dropped.
    pub async fn claim(&self, id: Uuid, language: &str, worker: &str) -> Result<Option<Claimed>, StoreError> {
        let mut conn = self.conn();
        type Reply = (String, u32, Option<String>, Option<String>, Option<String>, Option<String>);
        let claimed: Option<Reply> = self
            .scripts
            .claim
            .key(keys::job(id))
            .key(keys::processing(worker))
            .key(keys::events(id))
            .arg(id.to_string())
            .arg(worker)
            .arg(now())
            .invoke_async(&mut conn)
            .await?;
        claimed
            .map(|(spec, attempt, created, owner, traceparent, notify)| {
                let job = JobRef {
                    id,
                    language: language.to_string(),
                    owner: owner.unwrap_or_default(),
                    notify: notify.as_deref().and_then(Notify::parse),
                };
                serde_json::from_str(&spec)
                    .map(|spec| Claimed { job, spec, attempt, created_at: parse_stamp(created), traceparent })
                    .map_err(|e| StoreError::Corrupt { id, why: format!("spec: {e}") })
            })
            .transpose()
    }

    /// Appends a worker's event (`compiled`, `test`) to a job's event stream.
    pub async fn append_event(&self, id: Uuid, kind: &str, data: &serde_json::Value) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let _: String = conn.xadd(keys::events(id), "*", &[("type", kind), ("data", &data.to_string())]).await?;
        Ok(())
    }

    /// Bytes the job's owner may still hold, counting what this job holds now
    /// (which its end replaces); `None` when its quota has no byte bound. Read
    /// before a result is stored, to fit it in.
    pub async fn room(&self, job: &JobRef) -> Result<Option<u64>, StoreError> {
        let mut conn = self.conn();
        let (quota, total, mine): (Option<u64>, Option<i64>, Option<u64>) = redis::cmd("HMGET")
            .arg(job.keys().bytes)
            .arg("quota")
            .arg("total")
            .arg(job.id.to_string())
            .query_async(&mut conn)
            .await?;
        Ok(quota.filter(|q| *q > 0).map(|q| {
            let others = u64::try_from(total.unwrap_or(0)).unwrap_or(0).saturating_sub(mine.unwrap_or(0));
            q.saturating_sub(others)
        }))
    }

    /// Ends a job: its status, result and error, and its removal from the worker's
    /// processing list, in one step; the record then keeps only `spec`'s
    /// [`kept`](JobSpec::kept) part (`None`: the spec stays as it is), and the
    /// owner's ledger holds what the job keeps until it expires. `Ok(false)`: the
    /// job was taken from this worker meanwhile (it was presumed dead), and
    /// nothing was written.
    pub async fn finish(
        &self,
        job: &JobRef,
        worker: &str,
        status: JobStatus,
        result: Option<&JobResult>,
        error: Option<&str>,
        spec: Option<&JobSpec>,
    ) -> Result<bool, StoreError> {
        debug_assert!(status.is_terminal());
        let event = serde_json::json!({
            "status": status,
            "summary": result.map(ResultSummary::of),
        })
        .to_string();
        let result = result.map(|r| serde_json::to_string(r).expect("result serializes")).unwrap_or_default();
        let kept = spec.map(|s| serde_json::to_string(&s.kept()).expect("spec serializes")).unwrap_or_default();
        let keys = job.keys();
        let mut conn = self.conn();
        let mut finish = self.scripts.finish.key(&keys.record);
        finish
            .key(&keys.result)
            .key(keys::processing(worker))
            .key(&keys.cancel)
            .key(&keys.held)
            .key(&keys.events)
            .key(&keys.bytes)
            .arg(job.id.to_string())
            .arg(worker)
            .arg(status.as_str())
            .arg(result)
            .arg(error.unwrap_or_default())
            .arg(now())
            .arg(self.ttl_secs)
            .arg(event)
            .arg(kept);
        if let Some(owed) = &keys.owed {
            finish.key(owed);
        }
        let done: i64 = finish.invoke_async(&mut conn).await?;
        Ok(done == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::allocated;

    #[test]
    fn a_value_is_counted_as_the_allocator_holds_it() {
        assert_eq!(allocated(1), 16);
        assert_eq!(allocated(1 << 20), 1 << 20, "a power of two is a class");
        assert_eq!(allocated((1 << 20) + 112), (1 << 20) + (1 << 18), "1 MiB and a little takes 1.25 MiB");
        assert_eq!(allocated(8 * 1024 * 1024 + 217), 10 * 1024 * 1024, "8 MiB and a little takes 10 MiB");
        assert_eq!(allocated(30 * 1024 + 100), 32 * 1024);
        for len in [17u64, 100, 4097, 65_537, 3_000_000, 67_108_864] {
            let a = allocated(len);
            assert!(a >= len && a * 4 <= len * 5 + 64, "{len} -> {a}");
        }
    }
}
