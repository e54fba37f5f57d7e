//! A job as submitted and as it lives: its spec, its status, its record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::verdict::JobResult;
pub use crate::verdict::Mode;

/// One test: what the program reads, and what it should print.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestCase {
    /// The caller's id for the test, echoed in its result as `test_id`.
    pub id: u64,
    /// Fed to the program's stdin.
    pub input: String,
    /// `None`: the test only runs, and its verdict says how the program ended.
    pub expected_output: Option<String>,
    /// Points the test is worth when passed.
    pub weight: u32,
    /// This test's own comparison rule, over the job's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<Compare>,
}

/// How a program's output is compared with the expected output.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Compare {
    /// Byte for byte.
    Exact,
    /// Whitespace at the end of each line and blank lines at the end are ignored.
    #[default]
    Trim,
    /// The whitespace-separated tokens are equal.
    Tokens,
    /// Tokens equal, except that two numbers match when within either tolerance:
    /// |a - e| <= abs_tol or |a - e| <= rel_tol * |e|.
    Float { abs_tol: f64, rel_tol: f64 },
    /// As `trim`, ignoring letter case.
    CaseInsensitive,
    /// As `trim`, in any order of lines.
    UnorderedLines,
}

impl Compare {
    /// The names a request may use, in the order the docs list them.
    pub const NAMES: [&'static str; 6] = ["exact", "trim", "tokens", "float", "case_insensitive", "unordered_lines"];
    /// `float`'s tolerances when the request gives none.
    pub const DEFAULT_ABS_TOL: f64 = 1e-6;
    pub const DEFAULT_REL_TOL: f64 = 1e-9;
}

/// A program other than the one judged: a reference solution or a checker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Program {
    pub language: String,
    pub source_code: String,
}

/// A harness wraps the program: tests are calls, not stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Harness {
    /// Each test's input is a Python call expression evaluated against the program;
    /// the returned values (or raised exceptions) are compared structurally.
    PythonCall,
}

impl Harness {
    /// The file the harness puts the submitted code in, beside its own main file.
    pub fn submission_file(self) -> &'static str {
        match self {
            Harness::PythonCall => "submission.py",
        }
    }
}

/// A validated job, as stored in Redis and run by a worker. Built only by the API's
/// validation, so a worker can trust every field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub language: String,
    pub source_code: String,
    pub test_cases: Vec<TestCase>,
    /// CPU-time limit of each test ([`crate::limits`] derives its wall-clock cap).
    /// Stored as `timeout_ms`, the request's name for it.
    #[serde(rename = "timeout_ms")]
    pub time_limit_ms: u64,
    /// Memory limit of each test.
    pub memory_limit_mb: u32,
    // The judging options below default so that jobs queued by an older API still load.
    #[serde(default)]
    pub mode: Mode,
    /// The job's comparison rule; tests may override it.
    #[serde(default)]
    pub compare: Compare,
    /// Decides each test instead of `compare`.
    #[serde(default)]
    pub checker: Option<Program>,
    /// Produces the expected output of tests that have none, and is measured on every test.
    #[serde(default)]
    pub solution: Option<Program>,
    #[serde(default)]
    pub harness: Option<Harness>,
    /// Command-line arguments the program gets on every test.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// More files beside the main source (modules, headers, data), by plain name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SourceFile>,
}

/// A file beside a job's main source: `box/prog/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceFile {
    /// A plain file name, checked by the API: no directories, no leading dot.
    pub name: String,
    pub content: String,
}

/// The most of a text a finished job's kept spec holds ([`JobSpec::kept`]).
pub const KEPT_TEXT_BYTES: usize = 64 * 1024;

impl JobSpec {
    /// What a finished job keeps of its spec: what an answer can show (Judge0's
    /// `source_code`, `stdin` and `expected_output` are its first test's, its
    /// limits and options), each text kept whole up to [`KEPT_TEXT_BYTES`] and
    /// emptied past it; the other tests, the extra files, the checker's and the
    /// solution's sources go (nothing will run the job again).
    pub fn kept(&self) -> JobSpec {
        let text = |t: &str| if t.len() <= KEPT_TEXT_BYTES { t.to_string() } else { String::new() };
        let strip = |p: &Option<Program>| p.as_ref().map(|p| Program { source_code: String::new(), ..p.clone() });
        JobSpec {
            language: self.language.clone(),
            source_code: text(&self.source_code),
            test_cases: self
                .test_cases
                .first()
                .map(|t| TestCase {
                    input: text(&t.input),
                    expected_output: t.expected_output.as_deref().map(text),
                    ..t.clone()
                })
                .into_iter()
                .collect(),
            checker: strip(&self.checker),
            solution: strip(&self.solution),
            args: self.args.clone(),
            files: Vec::new(),
            ..*self
        }
    }

    /// The comparison rule of test `index`.
    pub fn compare_for(&self, index: usize) -> Compare {
        self.test_cases[index].compare.unwrap_or(self.compare)
    }

    pub fn weights(&self) -> Vec<u32> {
        self.test_cases.iter().map(|t| t.weight).collect()
    }
}

/// Where a job is in its life. `Completed`, `Failed` and `Cancelled` are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Why each attempt that the platform could not finish ended, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempt_errors: Vec<AttemptError>,
    /// When a job waiting for a retry goes back to its queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    pub result: Option<JobResult>,
}

/// One attempt that ended without a verdict: a worker died, a sandbox failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptError {
    pub attempt: u32,
    pub error: String,
    pub at: String,
}

/// What a job came in as, when it came in through a compatible API: the fields of
/// the request that its API reads back (a Judge0 submission's own), as that API
/// serializes them. Stored on the job record by the enqueue, so it expires with the job.
#[derive(Debug, Clone)]
pub struct Origin {
    pub json: String,
    /// Who is owed word when the job ends (none: its client polls).
    pub notify: Option<Notify>,
}

/// Who is owed word of a job's end: a Judge0 callback, or a Kafka bridge's result
/// message. What is owed is a member of a sorted set ([`Notify::owed_set`]) that the
/// enqueue adds it to; every script that ends the job puts it due there at once, so
/// whoever delivers it (any API process, any bridge of that name) needs no polling
/// of running jobs to learn of the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notify {
    /// A Judge0 submission's `callback_url` (`optimus:callbacks`).
    Callback,
    /// A result message, produced by the Kafka bridges of this name.
    Kafka(String),
}

impl Notify {
    /// The record's `notify` field: `callback`, or `kafka:<bridge>`.
    pub fn field(&self) -> String {
        match self {
            Notify::Callback => "callback".into(),
            Notify::Kafka(bridge) => format!("kafka:{bridge}"),
        }
    }

    /// The field read back; `None` for an empty or unknown one.
    pub fn parse(field: &str) -> Option<Notify> {
        match field.split_once(':') {
            None if field == "callback" => Some(Notify::Callback),
            Some(("kafka", bridge)) if crate::keys::is_bridge_name(bridge) => Some(Notify::Kafka(bridge.into())),
            _ => None,
        }
    }

    /// When what is owed is first looked at, after the enqueue (ms). A job's end
    /// puts it due at once, so this look only finds jobs still running: a Judge0
    /// callback's deliverer looks every few hundred ms as it always has; a bridge
    /// looks once a minute, to notice what no end could (nothing, by design).
    pub fn first_look_ms(&self) -> i64 {
        match self {
            Notify::Callback => 0,
            Notify::Kafka(_) => 60_000,
        }
    }

    /// The sorted set where what is owed waits, scored by when to look at it next (ms).
    pub fn owed_set(&self) -> String {
        match self {
            Notify::Callback => crate::keys::callbacks(),
            Notify::Kafka(bridge) => crate::keys::kafka_outbox(bridge),
        }
    }
}
