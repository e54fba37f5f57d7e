//! Every Redis operation on jobs. Keys come from [`crate::keys`]; operations that
//! touch more than one key run as Lua scripts so that no crash can leave half of one.
//!
//! The reliable pop: a worker moves a job id from its language's queue to its own
//! processing list (`BLMOVE`), and [`Store::finish`] removes it only together with
//! the result. A worker's heartbeat key expires when it dies; any worker of the same
//! language then gives the dead one's jobs back to the queue ([`Store::recover_dead_workers`]).
//!
//! Retries: a job handed back with its attempt counted waits in its language's retry
//! set for an exponential backoff with jitter ([`Store::promote_due`] moves it back
//! to the queue when due); after its last attempt it ends `failed` and its id goes on
//! its language's dead-letter list ([`Store::dead_letters`], [`Store::revive`]).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncCommands, Script};
use uuid::Uuid;

pub use crate::auth::Caller;
use crate::config::LanguageConfig;
use crate::job::{AttemptError, JobRecord, JobSpec, JobStatus};
use crate::keys;
pub use crate::origin::Origin;
use crate::settings::Settings;
use crate::verdict::JobResult;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("job {id} is stored but unreadable: {why}")]
    Corrupt { id: Uuid, why: String },
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
    pub spec: JobSpec,
    pub attempt: u32,
    pub created_at: Option<DateTime<Utc>>,
}

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
    /// The owner's key has its most jobs queued or running.
    TooManyActive,
}

/// How the backoff of a retried job grows: `base * 2^(attempt - 1)`, at most `cap`,
/// of which half is fixed and half random.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

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

struct Scripts {
    enqueue: Script,
    cancel: Script,
    claim: Script,
    finish: Script,
    requeue: Script,
    promote: Script,
    revive: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            enqueue: Script::new(include_str!("lua/enqueue.lua")),
            cancel: Script::new(include_str!("lua/cancel.lua")),
            claim: Script::new(include_str!("lua/claim.lua")),
            finish: Script::new(include_str!("lua/finish.lua")),
            requeue: Script::new(include_str!("lua/requeue.lua")),
            promote: Script::new(include_str!("lua/promote.lua")),
            revive: Script::new(include_str!("lua/revive.lua")),
        }
    }
}

/// A handle on the job store; cheap to clone, reconnects by itself.
#[derive(Clone)]
pub struct Store {
    client: redis::Client,
    conn: Reconnecting,
    scripts: std::sync::Arc<Scripts>,
    ttl_secs: u64,
    max_attempts: u32,
    heartbeat_timeout_secs: u64,
    backoff: Backoff,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(id: Uuid, fields: &HashMap<&str, String>, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    fields
        .get(name)
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| StoreError::Corrupt { id, why: format!("{name}: {e}") })
        })
        .transpose()
}

impl Store {
    /// Connects to `settings.redis_url`. Fails if Redis cannot be reached now;
    /// afterwards, a lost connection is re-made on the next command.
    pub async fn connect(settings: &Settings) -> Result<Self, StoreError> {
        let client = redis::Client::open(settings.redis_url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(5))
            .set_number_of_retries(2)
            .set_max_delay(500);
        let conn = Reconnecting(client.get_connection_manager_with_config(config).await?);
        Ok(Store {
            client,
            conn,
            scripts: std::sync::Arc::new(Scripts::new()),
            ttl_secs: settings.job_ttl_secs,
            max_attempts: settings.max_attempts,
            heartbeat_timeout_secs: settings.heartbeat_timeout_secs,
            backoff: Backoff {
                base: Duration::from_millis(settings.retry_base_ms),
                cap: Duration::from_millis(settings.retry_max_ms),
            },
        })
    }

    /// A connection for the other modules of this crate that keep state in Redis.
    pub(crate) fn conn(&self) -> Reconnecting {
        self.conn.clone()
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Stores a job and queues it atomically, once the caller's limits and the
    /// queue's depth allow it; otherwise nothing is written.
    pub async fn enqueue(
        &self,
        id: Uuid,
        spec: &JobSpec,
        lang: &LanguageConfig,
        caller: &Caller,
    ) -> Result<EnqueueOutcome, StoreError> {
        self.enqueue_from(id, spec, lang, caller, None, None).await
    }

    /// [`enqueue`](Self::enqueue) with what else the job record keeps: the job's
    /// [`Origin`] when it came in through a compatible API, and the trace context
    /// of its submission; stored in the same atomic step (and expiring with the job).
    pub async fn enqueue_from(
        &self,
        id: Uuid,
        spec: &JobSpec,
        lang: &LanguageConfig,
        caller: &Caller,
        origin: Option<&Origin>,
        traceparent: Option<&str>,
    ) -> Result<EnqueueOutcome, StoreError> {
        let spec_json = serde_json::to_string(spec).expect("spec serializes");
        let (rate, max_active) = match caller {
            Caller::Anonymous => (0, 0),
            Caller::Key { rate_per_min, max_active, .. } => (*rate_per_min, *max_active),
        };
        let key_id = caller.key_id();
        let mut conn = self.conn.clone();
        let (code, retry_after_ms): (i64, u64) = self
            .scripts
            .enqueue
            .key(keys::job(id))
            .key(&lang.queue)
            .key(keys::owner_active(key_id))
            .key(keys::owner_rate(key_id))
            .key(keys::events(id))
            .key(keys::recent_jobs())
            .key(keys::callbacks())
            .arg(id.to_string())
            .arg(spec_json)
            .arg(&spec.language)
            .arg(now())
            .arg(lang.max_queue_depth)
            .arg(key_id)
            .arg(rate)
            .arg(max_active)
            .arg(keys::retry(&lang.name))
            .arg(keys::dead(&lang.name))
            .arg(Utc::now().timestamp_millis())
            .arg(RECENT_JOBS_KEPT)
            .arg(origin.map_or("", |o| o.json.as_str()))
            .arg(if origin.is_some_and(|o| o.callback) { "1" } else { "0" })
            .arg(traceparent.unwrap_or(""))
            .invoke_async(&mut conn)
            .await?;
        Ok(match code {
            1 => EnqueueOutcome::Queued,
            -1 => EnqueueOutcome::RateLimited { retry_after: Duration::from_millis(retry_after_ms) },
            -2 => EnqueueOutcome::TooManyActive,
            _ => EnqueueOutcome::QueueFull,
        })
    }

    pub async fn queue_len(&self, queue: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn.llen(queue).await?)
    }

    /// How many of a language's jobs are queued, waiting for a retry, and dead-lettered.
    pub async fn depths(&self, lang: &LanguageConfig) -> Result<(usize, usize, usize), StoreError> {
        let mut conn = self.conn.clone();
        Ok(redis::pipe()
            .llen(&lang.queue)
            .zcard(keys::retry(&lang.name))
            .llen(keys::dead(&lang.name))
            .query_async(&mut conn)
            .await?)
    }

    /// Redis's memory in use and its `maxmemory` (0: unlimited), in bytes.
    pub async fn memory(&self) -> Result<MemoryUse, StoreError> {
        let mut conn = self.conn.clone();
        let info: String = redis::cmd("INFO").arg("memory").query_async(&mut conn).await?;
        let field = |name: &str| {
            info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<u64>().ok()).unwrap_or(0)
        };
        let policy = info
            .lines()
            .find_map(|l| l.strip_prefix("maxmemory_policy:"))
            .map(|p| p.trim().to_string())
            .unwrap_or_default();
        Ok(MemoryUse { used: field("used_memory"), max: field("maxmemory"), policy })
    }

    /// The job as the API shows it, or `None` if there is no such job or it
    /// belongs to a key other than `caller`'s. (Reads [`RECORD_FIELDS`] and the result.)
    pub async fn get(&self, id: Uuid, caller: &Caller) -> Result<Option<JobRecord>, StoreError> {
        self.read_record(id, Some(caller)).await
    }

    /// The job whoever owns it: for the platform's own work on it (callbacks),
    /// never for answering a caller.
    pub async fn get_unowned(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        self.read_record(id, None).await
    }

    async fn read_record(&self, id: Uuid, caller: Option<&Caller>) -> Result<Option<JobRecord>, StoreError> {
        let mut conn = self.conn.clone();
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

    /// The trace context the job was submitted in, if its submission was traced.
    pub async fn traceparent(&self, id: Uuid) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn.hget(keys::job(id), "traceparent").await?)
    }

    /// When a job was submitted (`None`: no such job).
    pub async fn created_at(&self, id: Uuid) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut conn = self.conn.clone();
        let created: Option<String> = conn.hget(keys::job(id), "created_at").await?;
        Ok(created.and_then(|s| DateTime::parse_from_rfc3339(&s).ok()).map(|t| t.with_timezone(&Utc)))
    }

    /// The oldest job waiting in a language's queue: when it was submitted.
    pub async fn oldest_queued(&self, lang: &LanguageConfig) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut conn = self.conn.clone();
        // Jobs are pushed on the left and popped from the right: the oldest is last.
        let oldest: Option<String> = conn.lindex(&lang.queue, -1).await?;
        match oldest.and_then(|id| Uuid::parse_str(&id).ok()) {
            Some(id) => self.created_at(id).await,
            None => Ok(None),
        }
    }

    /// Cancels a job of `caller`'s (another key's job is [`CancelOutcome::Missing`]).
    pub async fn cancel(&self, id: Uuid, caller: &Caller) -> Result<CancelOutcome, StoreError> {
        let mut conn = self.conn.clone();
        let outcome: String = self
            .scripts
            .cancel
            .key(keys::job(id))
            .key(keys::cancel(id))
            .arg(id.to_string())
            .arg(now())
            .arg(self.ttl_secs)
            .arg(caller.key_id())
            .invoke_async(&mut conn)
            .await?;
        Ok(match outcome.as_str() {
            "missing" => CancelOutcome::Missing,
            "dequeued" => CancelOutcome::Cancelled,
            "cancelling" => CancelOutcome::Cancelling,
            other => CancelOutcome::AlreadyFinished(
                JobStatus::parse(other).ok_or_else(|| StoreError::Corrupt { id, why: format!("status {other}") })?,
            ),
        })
    }

    // ---- worker side ----

    /// A connection of its own for blocking pops: a `BLMOVE` would stall every other
    /// command sharing a multiplexed connection.
    pub async fn popper(&self, worker: &str) -> Result<Popper, StoreError> {
        let conn = self.client.get_multiplexed_async_connection().await?;
        Ok(Popper { conn, processing: keys::processing(worker) })
    }

    /// Marks a popped job as running on `worker`: its spec and which attempt this
    /// is. `None`: it was cancelled or has gone while queued, and has been dropped.
    pub async fn claim(&self, id: Uuid, worker: &str) -> Result<Option<Claimed>, StoreError> {
        let mut conn = self.conn.clone();
        let claimed: Option<(String, u32, Option<String>)> = self
            .scripts
            .claim
            .key(keys::job(id))
            .key(keys::processing(worker))
            .arg(id.to_string())
            .arg(worker)
            .arg(now())
            .invoke_async(&mut conn)
            .await?;
        claimed
            .map(|(s, attempt, created)| {
                let created_at =
                    created.and_then(|c| DateTime::parse_from_rfc3339(&c).ok()).map(|t| t.with_timezone(&Utc));
                serde_json::from_str(&s)
                    .map(|spec| Claimed { spec, attempt, created_at })
                    .map_err(|e| StoreError::Corrupt { id, why: format!("spec: {e}") })
            })
            .transpose()
    }

    /// Appends a worker's event (`compiled`, `test`) to a job's event stream.
    pub async fn append_event(&self, id: Uuid, kind: &str, data: &serde_json::Value) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = conn.xadd(keys::events(id), "*", &[("type", kind), ("data", &data.to_string())]).await?;
        Ok(())
    }

    /// Up to `count` events of a job after the event `after` (from the start when
    /// `None`), oldest first.
    pub async fn events(&self, id: Uuid, after: Option<&str>, count: usize) -> Result<Vec<JobEvent>, StoreError> {
        let mut conn = self.conn.clone();
        let start = after.map_or_else(|| "-".to_string(), |a| format!("({a}"));
        let reply: redis::streams::StreamRangeReply = conn.xrange_count(keys::events(id), start, "+", count).await?;
        Ok(reply.ids.into_iter().filter_map(JobEvent::from_entry).collect())
    }

    /// A connection of its own for [`EventReader`]: its blocking reads would stall
    /// every other command sharing a connection.
    pub async fn event_reader(&self) -> Result<EventReader, StoreError> {
        Ok(EventReader { conn: self.client.get_multiplexed_async_connection().await? })
    }

    /// The newest jobs (at most `limit`), newest first, as the job list shows them:
    /// `caller`'s own (and those of no one), of `status` and `language` when given.
    pub async fn recent(
        &self,
        caller: &Caller,
        limit: usize,
        status: Option<JobStatus>,
        language: Option<&str>,
    ) -> Result<Vec<JobSummary>, StoreError> {
        let mut conn = self.conn.clone();
        let mut found = Vec::new();
        // Read in pages, since filters drop some; the index holds RECENT_JOBS_KEPT at most.
        let mut offset = 0isize;
        const PAGE: isize = 200;
        while found.len() < limit {
            let ids: Vec<String> = conn.zrevrange(keys::recent_jobs(), offset, offset + PAGE - 1).await?;
            if ids.is_empty() {
                break;
            }
            offset += PAGE;
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HMGET").arg(format!("{}{id}", keys::job_prefix())).arg(&SUMMARY_FIELDS[..]);
            }
            let rows: Vec<Vec<Option<String>>> = pipe.query_async(&mut conn).await?;
            for (id, row) in ids.iter().zip(rows) {
                let Ok(id) = Uuid::parse_str(id) else { continue };
                let Some(summary) = JobSummary::from_row(id, &row) else { continue };
                if row[7].as_deref().is_some_and(|owner| owner != caller.key_id())
                    || status.is_some_and(|s| s != summary.status)
                    || language.is_some_and(|l| l != summary.language)
                {
                    continue;
                }
                found.push(summary);
                if found.len() == limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Ends a job: its status, result and error, and its removal from the worker's
    /// processing list, in one step. `Ok(false)`: the job was taken from this worker
    /// meanwhile (it was presumed dead), and nothing was written.
    pub async fn finish(
        &self,
        id: Uuid,
        worker: &str,
        status: JobStatus,
        result: Option<&JobResult>,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        debug_assert!(status.is_terminal());
        let event = serde_json::json!({
            "status": status,
            "summary": result.map(ResultSummary::of),
        })
        .to_string();
        let result = result.map(|r| serde_json::to_string(r).expect("result serializes")).unwrap_or_default();
        let mut conn = self.conn.clone();
        let done: i64 = self
            .scripts
            .finish
            .key(keys::job(id))
            .key(keys::result(id))
            .key(keys::processing(worker))
            .key(keys::cancel(id))
            .arg(id.to_string())
            .arg(worker)
            .arg(status.as_str())
            .arg(result)
            .arg(error.unwrap_or_default())
            .arg(now())
            .arg(self.ttl_secs)
            .arg(event)
            .invoke_async(&mut conn)
            .await?;
        Ok(done == 1)
    }

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

    async fn hand_back(
        &self,
        id: Uuid,
        worker: &str,
        reason: &str,
        how: HandBack,
    ) -> Result<RequeueOutcome, StoreError> {
        let mut conn = self.conn.clone();
        // A number in [0, 1) from the operating system's random source.
        let random = Uuid::new_v4();
        let jitter = f64::from(u16::from_le_bytes([random.as_bytes()[0], random.as_bytes()[1]])) / 65_536.0;
        let outcome: String = self
            .scripts
            .requeue
            .key(keys::job(id))
            .key(keys::processing(worker))
            .key(keys::cancel(id))
            .key(keys::alive(worker))
            .arg(id.to_string())
            .arg(self.max_attempts)
            .arg(reason)
            .arg(now())
            .arg(self.ttl_secs)
            .arg(if how == HandBack::Uncounted { "1" } else { "0" })
            .arg(if how == HandBack::FromDeadPeer { "1" } else { "0" })
            .arg(self.backoff.base.as_millis() as u64)
            .arg(self.backoff.cap.as_millis() as u64)
            .arg(jitter)
            .invoke_async(&mut conn)
            .await?;
        Ok(match outcome.as_str() {
            "requeued" => RequeueOutcome::Requeued,
            "delayed" => RequeueOutcome::Delayed,
            "failed" => RequeueOutcome::Failed,
            "cancelled" => RequeueOutcome::Cancelled,
            "alive" => RequeueOutcome::OwnerAlive,
            _ => RequeueOutcome::Gone,
        })
    }

    /// Moves the jobs of `language`'s retry set whose backoff has passed to the
    /// front of `queue`. Returns how many moved.
    pub async fn promote_due(&self, language: &str, queue: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        Ok(self
            .scripts
            .promote
            .key(keys::retry(language))
            .key(queue)
            .arg(keys::job_prefix())
            .arg(PROMOTE_BATCH)
            .invoke_async(&mut conn)
            .await?)
    }

    /// The dead letters of `language`, newest first: each id with its record, or
    /// `None` where the record has expired.
    pub async fn dead_letters(&self, language: &str) -> Result<Vec<(Uuid, Option<DeadLetter>)>, StoreError> {
        let mut conn = self.conn.clone();
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
        let mut conn = self.conn.clone();
        let outcome: String = self
            .scripts
            .revive
            .key(keys::job(id))
            .key(keys::dead(language))
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
        let mut conn = self.conn.clone();
        let (len, _): (usize, ()) =
            redis::pipe().atomic().llen(keys::dead(language)).del(keys::dead(language)).query_async(&mut conn).await?;
        Ok(len)
    }

    pub async fn is_cancel_requested(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn.exists(keys::cancel(id)).await?)
    }

    /// Announces a worker of `language` and starts its heartbeat.
    pub async fn register_worker(&self, language: &str, worker: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
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

    /// A worker leaving cleanly, its processing list already empty.
    /// The jobs on a worker's processing list (ids that do not parse are skipped).
    pub async fn processing(&self, worker: &str) -> Result<Vec<Uuid>, StoreError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.lrange(keys::processing(worker), 0, -1).await?;
        Ok(ids.iter().filter_map(|id| Uuid::parse_str(id).ok()).collect())
    }

    pub async fn deregister_worker(&self, language: &str, worker: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
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
        let mut conn = self.conn.clone();
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
        let mut conn = self.conn.clone();
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

/// How many jobs the index of recent jobs keeps (`GET /jobs` pages through it).
pub const RECENT_JOBS_KEPT: usize = 10_000;

/// The fields of a job record that a job list's row shows.
const SUMMARY_FIELDS: [&str; 9] =
    ["language", "status", "created_at", "started_at", "finished_at", "attempts", "error", "owner", "summary"];

/// One entry of a job's event stream.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    /// The stream entry's id: the SSE event id, and what `Last-Event-ID` names.
    pub id: String,
    /// `queued`, `running`, `compiled`, `test`, `requeued`, or a terminal status.
    pub kind: String,
    /// The event's JSON.
    pub data: String,
}

impl JobEvent {
    fn from_entry(entry: redis::streams::StreamId) -> Option<Self> {
        let field = |name: &str| entry.get::<String>(name);
        Some(JobEvent { kind: field("type")?, data: field("data")?, id: entry.id })
    }

    /// Whether the job's life ends with this event.
    pub fn is_terminal(&self) -> bool {
        JobStatus::parse(&self.kind).is_some_and(JobStatus::is_terminal)
    }
}

/// A finished job's result without its tests: what the `completed` event and the
/// job list carry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ResultSummary {
    pub overall_status: Option<crate::Verdict>,
    pub total_tests: usize,
    pub passed_tests: usize,
    pub score: u64,
    pub max_score: u64,
}

impl ResultSummary {
    pub fn of(result: &JobResult) -> Self {
        ResultSummary {
            overall_status: result.overall_status,
            total_tests: result.total_tests,
            passed_tests: result.passed_tests,
            score: result.score,
            max_score: result.max_score,
        }
    }
}

/// A job as the job list shows it: no spec, no test bodies.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct JobSummary {
    pub job_id: Uuid,
    pub language: String,
    pub status: JobStatus,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub summary: Option<ResultSummary>,
}

impl JobSummary {
    fn from_row(id: Uuid, row: &[Option<String>]) -> Option<Self> {
        Some(JobSummary {
            job_id: id,
            language: row[0].clone()?,
            status: JobStatus::parse(row[1].as_deref()?)?,
            created_at: row[2].clone()?,
            started_at: row[3].clone(),
            finished_at: row[4].clone(),
            attempts: row[5].as_deref().and_then(|a| a.parse().ok()).unwrap_or(0),
            error: row[6].clone(),
            summary: row[8].as_deref().and_then(|s| serde_json::from_str(s).ok()),
        })
    }
}

/// Redis's memory, as `INFO memory` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryUse {
    pub used: u64,
    /// 0: no limit.
    pub max: u64,
    pub policy: String,
}

/// How a job is handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandBack {
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

/// A connection that survives a Redis restart: the connection manager notices a
/// dropped connection only when a command fails on it, so such a failure is
/// retried once on the fresh connection. Every operation here tolerates a repeat.
#[derive(Clone)]
pub(crate) struct Reconnecting(ConnectionManager);

/// How long to give the connection manager to reconnect before the one retry.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

fn is_transient(e: &redis::RedisError) -> bool {
    e.is_connection_dropped() || e.is_io_error() || e.is_connection_refusal()
}

impl redis::aio::ConnectionLike for Reconnecting {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async move {
            match self.0.req_packed_command(cmd).await {
                Err(e) if is_transient(&e) => {
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    self.0.req_packed_command(cmd).await
                }
                other => other,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async move {
            match self.0.req_packed_commands(cmd, offset, count).await {
                Err(e) if is_transient(&e) => {
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    self.0.req_packed_commands(cmd, offset, count).await
                }
                other => other,
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}

/// Blocking reads of many jobs' event streams at once, on a connection of its
/// own: one of these serves every live subscriber of an API process.
pub struct EventReader {
    conn: MultiplexedConnection,
}

impl EventReader {
    /// Waits up to `block` for events after the given one of each job; returns
    /// what arrived, per job, oldest first.
    pub async fn read(
        &mut self,
        watches: &[(Uuid, String)],
        block: Duration,
    ) -> Result<Vec<(Uuid, Vec<JobEvent>)>, StoreError> {
        if watches.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = watches.iter().map(|(id, _)| keys::events(*id)).collect();
        let after: Vec<&str> = watches.iter().map(|(_, a)| a.as_str()).collect();
        let options = redis::streams::StreamReadOptions::default().block(block.as_millis() as usize).count(100);
        let reply: Option<redis::streams::StreamReadReply> = self.conn.xread_options(&keys, &after, &options).await?;
        let by_key: HashMap<String, Uuid> = keys.into_iter().zip(watches.iter().map(|(id, _)| *id)).collect();
        Ok(reply
            .map(|r| r.keys)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|k| Some((*by_key.get(&k.key)?, k.ids.into_iter().filter_map(JobEvent::from_entry).collect())))
            .collect())
    }
}

/// A worker's blocking pop, on a connection of its own.
pub struct Popper {
    conn: MultiplexedConnection,
    processing: String,
}

impl Popper {
    /// Waits up to `timeout` for a job on `queue` and moves it to this worker's
    /// processing list in the same step.
    pub async fn pop(&mut self, queue: &str, timeout: Duration) -> Result<Option<Uuid>, StoreError> {
        let id: Option<String> = self
            .conn
            .blmove(queue, &self.processing, redis::Direction::Right, redis::Direction::Left, timeout.as_secs_f64())
            .await?;
        Ok(id.and_then(|id| Uuid::parse_str(&id).ok()))
    }
}
