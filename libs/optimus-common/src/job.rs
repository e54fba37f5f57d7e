//! A job as submitted and as it lives: its spec, its status, its record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::verdict::JobResult;

/// One test: what the program reads, and what it should print.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    /// The caller's id for the test, echoed in its result as `test_id`.
    pub id: u64,
    /// Fed to the program's stdin.
    pub input: String,
    /// `None`: the test only runs, and its verdict says how the program ended.
    pub expected_output: Option<String>,
    /// Points the test is worth when passed.
    pub weight: u32,
}

/// A validated job, as stored in Redis and run by a worker. Built only by the API's
/// validation, so a worker can trust every field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub language: String,
    pub source_code: String,
    pub test_cases: Vec<TestCase>,
    /// Wall-time limit of each test.
    pub timeout_ms: u64,
    /// Memory limit of each test.
    pub memory_limit_mb: u32,
}

/// Where a job is in its life. `Completed`, `Failed` and `Cancelled` are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    /// Judged: the result holds a verdict (which may be a compile error or an
    /// internal error of the sandbox for this job).
    Completed,
    /// The platform could not judge it after its attempts; `error` says why.
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Completed, Self::Failed, Self::Cancelled]
            .into_iter()
            .find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled)
    }
}

/// A job as `GET /jobs/:id` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: Uuid,
    pub language: String,
    pub status: JobStatus,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// How many times a worker has started the job.
    pub attempts: u32,
    /// Why a `failed` job failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub result: Option<JobResult>,
}
