//! What is read and never written: job lists, a job's event stream (and the
//! blocking reader every live subscriber shares), queue depths, Redis's memory.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use uuid::Uuid;

use super::{parse_stamp, Store, StoreError};
use crate::auth::Caller;
use crate::job::JobStatus;
use crate::keys;
use crate::verdict::JobResult;

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

impl Store {
    pub async fn queue_len(&self, language: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        Ok(conn.llen(keys::queue(language)).await?)
    }

    /// How many of a language's jobs are queued, waiting for a retry, and dead-lettered.
    pub async fn depths(&self, language: &str) -> Result<(usize, usize, usize), StoreError> {
        let mut conn = self.conn();
        Ok(redis::pipe()
            .llen(keys::queue(language))
            .zcard(keys::retry(language))
            .llen(keys::dead(language))
            .query_async(&mut conn)
            .await?)
    }

    /// The oldest job waiting in a language's queue: when it was submitted.
    pub async fn oldest_queued(&self, language: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut conn = self.conn();
        // Jobs are pushed on the left and popped from the right: the oldest is last.
        let oldest: Option<String> = conn.lindex(keys::queue(language), -1).await?;
        let Some(id) = oldest.and_then(|id| Uuid::parse_str(&id).ok()) else { return Ok(None) };
        let created: Option<String> = conn.hget(keys::job(id), "created_at").await?;
        Ok(parse_stamp(created))
    }

    /// Redis's memory in use and its `maxmemory` (0: unlimited), in bytes.
    pub async fn memory(&self) -> Result<MemoryUse, StoreError> {
        let mut conn = self.conn();
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

    /// Up to `count` events of a job after the event `after` (from the start when
    /// `None`), oldest first.
    pub async fn events(&self, id: Uuid, after: Option<&str>, count: usize) -> Result<Vec<JobEvent>, StoreError> {
        let mut conn = self.conn();
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
        let mut conn = self.conn();
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
            let ids: Vec<Uuid> = ids.iter().filter_map(|id| Uuid::parse_str(id).ok()).collect();
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HMGET").arg(keys::job(*id)).arg(&SUMMARY_FIELDS[..]);
            }
            let rows: Vec<Vec<Option<String>>> = pipe.query_async(&mut conn).await?;
            for (&id, row) in ids.iter().zip(rows) {
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
