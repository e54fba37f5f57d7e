//! Every Redis operation on jobs. Keys come from [`crate::keys`]; operations that
//! touch more than one key run as Lua scripts so that no crash can leave half of one.
//!
//! The reliable pop: a worker moves a job id from its language's queue to its own
//! processing list (`BLMOVE`), and [`Store::finish`] removes it only together with
//! the result. A worker's heartbeat key expires when it dies; any worker of the same
//! language then gives the dead one's jobs back to the queue ([`Store::recover_dead_workers`]).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncCommands, Script};
use uuid::Uuid;

use crate::job::{JobRecord, JobSpec, JobStatus};
use crate::keys;
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

/// What happened to a job handed back by [`Store::requeue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequeueOutcome {
    Requeued,
    Failed,
    Cancelled,
    Gone,
}

/// The fields of a job record that [`Store::get`] reads.
const RECORD_FIELDS: [&str; 7] = ["language", "status", "created_at", "started_at", "finished_at", "attempts", "error"];

struct Scripts {
    enqueue: Script,
    cancel: Script,
    claim: Script,
    finish: Script,
    requeue: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            enqueue: Script::new(include_str!("lua/enqueue.lua")),
            cancel: Script::new(include_str!("lua/cancel.lua")),
            claim: Script::new(include_str!("lua/claim.lua")),
            finish: Script::new(include_str!("lua/finish.lua")),
            requeue: Script::new(include_str!("lua/requeue.lua")),
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
        })
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Stores a job and queues it atomically. `Ok(false)`: the queue already holds
    /// `max_depth` jobs and nothing was written.
    pub async fn enqueue(&self, id: Uuid, spec: &JobSpec, queue: &str, max_depth: usize) -> Result<bool, StoreError> {
        let spec_json = serde_json::to_string(spec).expect("spec serializes");
        let mut conn = self.conn.clone();
        let queued: i64 = self
            .scripts
            .enqueue
            .key(keys::job(id))
            .key(queue)
            .arg(id.to_string())
            .arg(spec_json)
            .arg(&spec.language)
            .arg(now())
            .arg(max_depth)
            .invoke_async(&mut conn)
            .await?;
        Ok(queued == 1)
    }

    pub async fn queue_len(&self, queue: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn.llen(queue).await?)
    }

    /// The job as the API shows it, or `None` if there is no such job.
    /// (Reads [`RECORD_FIELDS`] and the result.)
    pub async fn get(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        let mut conn = self.conn.clone();
        // Only the fields the answer shows: never the spec, which can be as large
        // as a request body, on every poll.
        let (values, result): (Vec<Option<String>>, Option<String>) =
            redis::pipe().hget(keys::job(id), &RECORD_FIELDS[..]).get(keys::result(id)).query_async(&mut conn).await?;
        let fields: HashMap<&str, String> =
            RECORD_FIELDS.iter().zip(values).filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
        if fields.is_empty() {
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
            result,
        }))
    }

    pub async fn cancel(&self, id: Uuid) -> Result<CancelOutcome, StoreError> {
        let mut conn = self.conn.clone();
        let outcome: String = self
            .scripts
            .cancel
            .key(keys::job(id))
            .key(keys::cancel(id))
            .arg(id.to_string())
            .arg(now())
            .arg(self.ttl_secs)
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

    /// Marks a popped job as running on `worker`. `None`: it was cancelled or has
    /// gone while queued, and has been dropped.
    pub async fn claim(&self, id: Uuid, worker: &str) -> Result<Option<JobSpec>, StoreError> {
        let mut conn = self.conn.clone();
        let spec: Option<String> = self
            .scripts
            .claim
            .key(keys::job(id))
            .key(keys::processing(worker))
            .arg(id.to_string())
            .arg(worker)
            .arg(now())
            .invoke_async(&mut conn)
            .await?;
        spec.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt { id, why: format!("spec: {e}") }))
            .transpose()
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
            .invoke_async(&mut conn)
            .await?;
        Ok(done == 1)
    }

    /// Hands a job on `worker`'s processing list back to its queue, or fails it if
    /// it has used its attempts.
    pub async fn requeue(&self, id: Uuid, worker: &str, reason: &str) -> Result<RequeueOutcome, StoreError> {
        self.hand_back(id, worker, reason, true).await
    }

    /// Hands a running job back to its queue without counting the attempt: the
    /// platform (the container engine) failed, not the job.
    pub async fn requeue_uncounted(&self, id: Uuid, worker: &str, reason: &str) -> Result<RequeueOutcome, StoreError> {
        self.hand_back(id, worker, reason, false).await
    }

    async fn hand_back(
        &self,
        id: Uuid,
        worker: &str,
        reason: &str,
        counts: bool,
    ) -> Result<RequeueOutcome, StoreError> {
        let mut conn = self.conn.clone();
        let outcome: String = self
            .scripts
            .requeue
            .key(keys::job(id))
            .key(keys::processing(worker))
            .key(keys::cancel(id))
            .arg(id.to_string())
            .arg(self.max_attempts)
            .arg(reason)
            .arg(now())
            .arg(self.ttl_secs)
            .arg(if counts { "0" } else { "1" })
            .invoke_async(&mut conn)
            .await?;
        Ok(match outcome.as_str() {
            "requeued" => RequeueOutcome::Requeued,
            "failed" => RequeueOutcome::Failed,
            "cancelled" => RequeueOutcome::Cancelled,
            _ => RequeueOutcome::Gone,
        })
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
                let outcome = self.requeue(id, &worker, "its worker stopped responding").await?;
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

/// A connection that survives a Redis restart: the connection manager notices a
/// dropped connection only when a command fails on it, so such a failure is
/// retried once on the fresh connection. Every operation here tolerates a repeat.
#[derive(Clone)]
struct Reconnecting(ConnectionManager);

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
