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

/// How many jobs each owner's index of recent jobs keeps (`GET /jobs` pages through it).
pub const RECENT_JOBS_KEPT: usize = 10_000;

/// The most entries of one index a job list looks at for one page: a filter that
/// matches little costs this, not the whole index; the page's `next` goes on.
pub const LIST_SCAN_MAX: usize = 1_000;

/// Index entries read per round trip while filtering.
const SCAN_PAGE: usize = 200;

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
    /// `caller`'s own (and those of no one), of `status` and `language` when given,
    /// below `after` when given. Reads the caller's own index and nobody's, never
    /// another key's: without filters a page costs O(`limit`) reads; with filters at
    /// most [`LIST_SCAN_MAX`] entries of each index are looked at, and the page's
    /// `next` says where to go on. Entries of jobs that expired are dropped from
    /// the index on the way.
    pub async fn recent(
        &self,
        caller: &Caller,
        limit: usize,
        status: Option<JobStatus>,
        language: Option<&str>,
        after: Option<&ListCursor>,
    ) -> Result<JobPage, StoreError> {
        let mut owners = vec![caller.key_id()];
        if !caller.key_id().is_empty() {
            owners.push("");
        }
        let filter = |summary: &JobSummary, owner: Option<&str>| {
            owner.is_none_or(|o| o == caller.key_id())
                && status.is_none_or(|s| s == summary.status)
                && language.is_none_or(|l| l == summary.language)
        };
        let filtered = status.is_some() || language.is_some();
        let mut found = Vec::new();
        // Everything at or above `boundary` has been looked at in every index.
        let mut boundary: Option<ListCursor> = None;
        for owner in owners {
            let scan = self.scan_recent(owner, limit, filtered, after, &filter).await?;
            found.extend(scan.matches);
            if let Some(cut) = scan.cut {
                boundary = Some(boundary.map_or(cut.clone(), |b| b.max(cut)));
            }
        }
        found.sort_by(|a, b| b.0.cmp(&a.0));
        if let Some(b) = &boundary {
            found.retain(|(at, _)| at >= b);
        }
        found.truncate(limit);
        let next = if found.len() == limit { found.last().map(|(at, _)| at.clone()) } else { boundary };
        Ok(JobPage { jobs: found.into_iter().map(|(_, s)| s).collect(), next })
    }

    /// One index's part of [`recent`](Self::recent).
    async fn scan_recent(
        &self,
        owner: &str,
        limit: usize,
        filtered: bool,
        after: Option<&ListCursor>,
        keep: &impl Fn(&JobSummary, Option<&str>) -> bool,
    ) -> Result<Scan, StoreError> {
        let mut conn = self.conn();
        let key = keys::recent_jobs(owner);
        let max = after.map_or_else(|| "+inf".to_string(), |c| c.created_ms.to_string());
        let mut scan = Scan { matches: Vec::new(), cut: None };
        let (mut scanned, mut offset, mut expired) = (0usize, 0isize, Vec::new());
        // A job queued meanwhile moves the entries down by one: seen twice, kept once.
        let mut seen = std::collections::HashSet::new();
        let mut last = None;
        'pages: loop {
            // Unfiltered, every live entry matches: read only what the page needs.
            let want = if filtered { SCAN_PAGE } else { (limit - scan.matches.len()).clamp(1, SCAN_PAGE) };
            let count = want.min(LIST_SCAN_MAX - scanned);
            if count == 0 {
                scan.cut = last;
                break;
            }
            let rows: Vec<(String, f64)> =
                conn.zrevrangebyscore_limit_withscores(&key, &max, "-inf", offset, count as isize).await?;
            let got = rows.len();
            offset += got as isize;
            scanned += got;
            let rows: Vec<(Uuid, ListCursor)> = rows
                .into_iter()
                .filter_map(|(id, score)| {
                    let at = ListCursor { created_ms: score as i64, id: id.clone() };
                    // Equal times come in descending id order: skip up to the cursor.
                    Some((Uuid::parse_str(&id).ok()?, at)).filter(|(_, at)| after.is_none_or(|c| at < c))
                })
                .filter(|(id, _)| seen.insert(*id))
                .collect();
            let mut pipe = redis::pipe();
            for (id, _) in &rows {
                pipe.cmd("HMGET").arg(keys::job(*id)).arg(&SUMMARY_FIELDS[..]);
            }
            let records: Vec<Vec<Option<String>>> =
                if rows.is_empty() { Vec::new() } else { pipe.query_async(&mut conn).await? };
            for ((id, at), row) in rows.into_iter().zip(records) {
                last = Some(at.clone());
                if row.iter().all(Option::is_none) {
                    expired.push(id.to_string());
                    continue;
                }
                let Some(summary) = JobSummary::from_row(id, &row) else { continue };
                if keep(&summary, row[7].as_deref()) {
                    scan.matches.push((at, summary));
                    if scan.matches.len() == limit {
                        scan.cut = last;
                        break 'pages;
                    }
                }
            }
            if got < count {
                // The index's end: it was read whole.
                break;
            }
        }
        if !expired.is_empty() {
            let _: i64 = conn.zrem(&key, &expired).await?;
        }
        Ok(scan)
    }
}

/// A position in the recent-jobs indexes: a job's creation time (ms) and id. Lists
/// run from the newest (the greatest) down; a page's `next` is its last job's
/// position, and the next page starts below it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListCursor {
    pub created_ms: i64,
    pub id: String,
}

impl ListCursor {
    /// `<created ms>_<job id>`, as [`fmt::Display`] writes it.
    pub fn parse(text: &str) -> Option<Self> {
        let (ms, id) = text.split_once('_')?;
        Some(ListCursor { created_ms: ms.parse().ok()?, id: Uuid::parse_str(id).ok()?.to_string() })
    }
}

impl std::fmt::Display for ListCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.created_ms, self.id)
    }
}

/// One page of a job list.
#[derive(Debug)]
pub struct JobPage {
    pub jobs: Vec<JobSummary>,
    /// Where the next page starts, when there may be one.
    pub next: Option<ListCursor>,
}

/// What one index gave a listing: its matches, and where it stopped looking
/// (`None`: it was read to its end).
struct Scan {
    matches: Vec<(ListCursor, JobSummary)>,
    cut: Option<ListCursor>,
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
