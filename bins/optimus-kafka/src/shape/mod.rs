//! The message shapes the bridge speaks: how a consumed message becomes a job (or
//! an answer saying why it cannot), and how an ended job becomes the message its
//! producer waits for. Pure: no broker, no Redis, so every rule is unit-tested.
//!
//! - [`scrc`]: SCRC's script and result envelopes, one topic in and one out.
//! - [`codex`]: Codex's topics (submission, run and custom jobs, their results, and
//!   the dead-letter topic), with Optimus's own `POST /jobs` body as the message.

pub mod codex;
pub mod scrc;

use optimus_api::validate::{Draft, Rules};
use optimus_common::JobRecord;
use serde::{Deserialize, Serialize};

/// Which shape a bridge speaks (`--shape`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    Scrc,
    Codex,
}

impl Shape {
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Scrc => "scrc",
            Shape::Codex => "codex",
        }
    }
}

/// Where a consumed message came from, and what it holds.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'m> {
    pub topic: &'m str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'m [u8]>,
    pub payload: &'m [u8],
}

impl Envelope<'_> {
    /// The message's place in its topic: what names it when nothing in it does.
    pub fn place(&self) -> String {
        format!("{}:{}:{}", self.topic, self.partition, self.offset)
    }
}

/// A message as the bridge understood it.
#[derive(Debug)]
pub enum Parsed<'r> {
    Job(Box<Intake<'r>>),
    /// SCRC's `"type": "done"`, the end of a stream: committed, nothing queued.
    Done,
    /// It cannot become a job; it is answered at once, and consumed.
    Rejected(Rejection),
}

/// A job to queue, from one message.
#[derive(Debug)]
pub struct Intake<'r> {
    /// What the job's id is made from: the same message (SCRC: the same script
    /// id) always makes the same id, so a redelivery finds the job it made.
    pub identity: String,
    pub draft: Draft<'r>,
    /// What the result echoes, kept on the job as its origin.
    pub echo: Echo,
}

/// Why a message became no job, and what its answer names it by.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub reason: String,
    /// The message's own id (SCRC's script id; Codex's correlation id), if any.
    pub correlation: Option<serde_json::Value>,
}

impl Rejection {
    pub fn new(reason: impl Into<String>) -> Self {
        Rejection { reason: reason.into(), correlation: None }
    }
}

/// What a job's result message needs that the job itself does not keep: stored
/// as the job's origin when it is queued (and expiring with it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum Echo {
    Scrc(scrc::Echo),
    Codex(codex::Echo),
}

/// A message to produce: its topic, key and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub topic: String,
    pub key: String,
    pub payload: String,
}

/// The topics a bridge reads and writes, by shape.
#[derive(Debug, Clone)]
pub enum Topics {
    Scrc { scripts: String, results: String },
    Codex,
}

impl Topics {
    /// The topics the bridge consumes.
    pub fn inputs(&self) -> Vec<String> {
        match self {
            Topics::Scrc { scripts, .. } => vec![scripts.clone()],
            Topics::Codex => codex::INPUTS.iter().map(|(topic, _)| topic.to_string()).collect(),
        }
    }

    /// Reads one message. One past the API's body limit is refused before it is
    /// parsed, as `POST /jobs` refuses such a body: a job that large could not be
    /// queued by the API either, and parsing it would cost a multiple of its size.
    pub fn parse<'r>(&self, rules: Rules<'r>, message: &Envelope<'_>) -> Parsed<'r> {
        let cap = rules.settings.limits.max_body_bytes;
        if message.payload.len() > cap {
            return Parsed::Rejected(Rejection::new(format!(
                "the message is {} bytes, past the limit of {cap} bytes (OPTIMUS_MAX_BODY_BYTES, the same as for \
                 POST /jobs); send less input per message, or raise the limit",
                message.payload.len()
            )));
        }
        match self {
            Topics::Scrc { .. } => scrc::parse(rules, message),
            Topics::Codex => codex::parse(rules, message),
        }
    }

    /// The answer to a message that became no job.
    pub fn rejected(&self, message: &Envelope<'_>, rejection: &Rejection, now: &str) -> Outgoing {
        match self {
            Topics::Scrc { results, .. } => scrc::rejected(results, message, rejection, now),
            Topics::Codex => codex::rejected(message, rejection),
        }
    }

    /// The message an ended job owes, from its record and its echo.
    pub fn result(&self, record: &JobRecord, echo: &Echo) -> Result<Outgoing, String> {
        match (self, echo) {
            (Topics::Scrc { results, .. }, Echo::Scrc(echo)) => Ok(scrc::result(results, record, echo)),
            (Topics::Codex, Echo::Codex(echo)) => Ok(codex::result(record, echo)),
            _ => Err(format!("job {} came in through a bridge of another shape", record.job_id)),
        }
    }
}

/// An RFC 3339 time in whole seconds, as SCRC writes its timestamps.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
pub(crate) mod tests {
    use optimus_api::validate::Rules;
    use optimus_api::ApiConfig;
    use optimus_common::verdict::{JobResult, TestResult, Verdict};
    use optimus_common::{JobRecord, JobStatus, LanguageRegistry, Settings};

    /// The repository's languages and the default limits.
    pub struct Fixture {
        registry: LanguageRegistry,
        settings: Settings,
        api: ApiConfig,
    }

    impl Fixture {
        pub fn rules(&self) -> Rules<'_> {
            Rules { registry: &self.registry, settings: &self.settings, api: &self.api }
        }
    }

    #[test]
    fn a_message_past_the_body_limit_is_refused_before_it_is_read() {
        let mut fixture = rules_fixture();
        fixture.settings.limits.max_body_bytes = 1000;
        let script = serde_json::json!({
            "id": "big", "language": "python", "source": "print(1)", "tests": [{ "input": "x".repeat(990) }],
        })
        .to_string();
        let at = |payload: &[u8]| {
            let message = super::Envelope { topic: "scripts", partition: 0, offset: 7, key: Some(b"k"), payload };
            let scrc = super::Topics::Scrc { scripts: "scripts".into(), results: "script-results".into() };
            (scrc.parse(fixture.rules(), &message), super::Topics::Codex.parse(fixture.rules(), &message))
        };
        for parsed in <[_; 2]>::from(at(script.as_bytes())) {
            let super::Parsed::Rejected(rejection) = parsed else { panic!("accepted: {parsed:?}") };
            assert!(
                rejection.reason.contains(&format!("{} bytes, past the limit of 1000", script.len())),
                "{rejection:?}"
            );
        }
        // At the limit it is read as any other.
        let small = serde_json::json!({ "id": "small", "language": "python", "source": "print(1)" }).to_string();
        let padded = format!("{small:<1000}");
        assert!(matches!(at(padded.as_bytes()).0, super::Parsed::Job(_)));
    }

    pub fn rules_fixture() -> Fixture {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/languages.json");
        Fixture {
            registry: LanguageRegistry::load(file).unwrap(),
            settings: Settings::default(),
            api: ApiConfig::default(),
        }
    }

    pub fn test_result(id: u64, verdict: Verdict) -> TestResult {
        TestResult {
            verdict: Some(verdict),
            passed: Some(verdict == Verdict::Accepted),
            stdout: format!("out{id}\n"),
            execution_time_ms: 10,
            exit_code: Some(0),
            message: None,
            ..TestResult::not_run(id)
        }
    }

    /// A completed job with `overall` and these tests (a compile error prints one line).
    pub fn record(overall: Option<Verdict>, tests: Vec<TestResult>) -> JobRecord {
        let passed = tests.iter().filter(|t| t.is_passed()).count();
        JobRecord {
            job_id: uuid::Uuid::new_v4(),
            language: "c".into(),
            status: JobStatus::Completed,
            created_at: chrono::Utc::now(),
            started_at: Some(chrono::Utc::now()),
            finished_at: Some(chrono::Utc::now()),
            attempts: 1,
            error: None,
            attempt_errors: Vec::new(),
            retry_at: None,
            result: Some(JobResult {
                mode: Default::default(),
                overall_status: overall,
                total_tests: tests.len(),
                passed_tests: passed,
                score: passed as u64,
                max_score: tests.len() as u64,
                compile_output: (overall == Some(Verdict::CompilationError)).then(|| "main.c:1: error".into()),
                compile_cached: false,
                test_results: tests,
                message: None,
                outputs_cut: false,
                timings: None,
            }),
        }
    }
}
