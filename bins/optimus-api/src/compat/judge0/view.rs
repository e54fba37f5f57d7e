//! Judge0 CE 1.13.1 as its clients read it: statuses, the submission's fields,
//! their encodings and number formats. Pure functions of a job record, so the
//! mapping is tested without a stack.

use base64::Engine;
use chrono::{DateTime, Utc};
use optimus_common::{JobRecord, JobSpec, JobStatus, TestResult, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The version `/about` reports: the SDK picks its language table by it.
pub const VERSION: &str = "1.13.1";

/// Judge0's statuses, with its ids and descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InQueue = 1,
    Processing = 2,
    Accepted = 3,
    WrongAnswer = 4,
    TimeLimitExceeded = 5,
    CompilationError = 6,
    Sigsegv = 7,
    Sigxfsz = 8,
    Sigfpe = 9,
    Sigabrt = 10,
    Nzec = 11,
    Other = 12,
    InternalError = 13,
    ExecFormatError = 14,
}

impl Status {
    pub const ALL: [Status; 14] = [
        Status::InQueue,
        Status::Processing,
        Status::Accepted,
        Status::WrongAnswer,
        Status::TimeLimitExceeded,
        Status::CompilationError,
        Status::Sigsegv,
        Status::Sigxfsz,
        Status::Sigfpe,
        Status::Sigabrt,
        Status::Nzec,
        Status::Other,
        Status::InternalError,
        Status::ExecFormatError,
    ];

    pub fn id(self) -> u32 {
        self as u32
    }

    pub fn description(self) -> &'static str {
        match self {
            Status::InQueue => "In Queue",
            Status::Processing => "Processing",
            Status::Accepted => "Accepted",
            Status::WrongAnswer => "Wrong Answer",
            Status::TimeLimitExceeded => "Time Limit Exceeded",
            Status::CompilationError => "Compilation Error",
            Status::Sigsegv => "Runtime Error (SIGSEGV)",
            Status::Sigxfsz => "Runtime Error (SIGXFSZ)",
            Status::Sigfpe => "Runtime Error (SIGFPE)",
            Status::Sigabrt => "Runtime Error (SIGABRT)",
            Status::Nzec => "Runtime Error (NZEC)",
            Status::Other => "Runtime Error (Other)",
            Status::InternalError => "Internal Error",
            Status::ExecFormatError => "Exec Format Error",
        }
    }

    pub fn json(self) -> Value {
        json!({ "id": self.id(), "description": self.description() })
    }

    /// A program killed by `signal`, as Judge0 names it.
    pub fn of_signal(signal: i32) -> Status {
        match signal {
            11 => Status::Sigsegv,
            25 => Status::Sigxfsz,
            8 => Status::Sigfpe,
            6 => Status::Sigabrt,
            _ => Status::Other,
        }
    }
}

/// What Judge0 keeps of a submission that Optimus's job does not: stored as the
/// job's origin, echoed in `fields=*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub language_id: u32,
    pub number_of_runs: u32,
    pub cpu_time_limit: f64,
    pub cpu_extra_time: f64,
    pub wall_time_limit: f64,
    pub memory_limit: u64,
    pub stack_limit: u64,
    pub max_processes_and_or_threads: u64,
    pub enable_per_process_and_thread_time_limit: bool,
    pub enable_per_process_and_thread_memory_limit: bool,
    pub max_file_size: u64,
    pub compiler_options: Option<String>,
    pub command_line_arguments: Option<String>,
    pub redirect_stderr_to_stdout: bool,
    pub callback_url: Option<String>,
    pub enable_network: bool,
}

/// Every field `fields=*` returns, in Judge0's column order.
pub const ALL_FIELDS: [&str; 35] = [
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
];

/// The fields returned when none are asked for.
pub const DEFAULT_FIELDS: [&str; 8] =
    ["token", "time", "memory", "stdout", "stderr", "compile_output", "message", "status"];

/// `?fields=`: `*`, a comma-separated list, or nothing (the default set). Unknown
/// names are returned as the error, as Judge0 lists them.
pub fn parse_fields(raw: Option<&str>) -> Result<Vec<&'static str>, Vec<String>> {
    let asked: Vec<&str> = raw.unwrap_or("").split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
    let invalid: Vec<String> =
        asked.iter().filter(|f| **f != "*" && !ALL_FIELDS.contains(f)).map(|f| f.to_string()).collect();
    if !invalid.is_empty() {
        return Err(invalid);
    }
    if asked.contains(&"*") {
        return Ok(ALL_FIELDS.to_vec());
    }
    let known: Vec<&'static str> = ALL_FIELDS.iter().copied().filter(|f| asked.contains(f)).collect();
    Ok(if known.is_empty() { DEFAULT_FIELDS.to_vec() } else { known })
}

/// Judge0's decimals are strings: `5.0`, `0.012`.
pub fn decimal(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

fn seconds(ms: u64) -> String {
    decimal(ms as f64 / 1000.0)
}

/// Judge0's timestamps: UTC with milliseconds and a `Z`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Base64 as Judge0 clients decode it: standard alphabet, padded, no line breaks.
pub fn encode(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// Decodes a request's base64, forgiving what Ruby's decoder forgives (line
/// breaks and other whitespace, missing padding).
pub fn decode(text: &str) -> Option<String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let trimmed = compact.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// How the run went, in Judge0's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub message: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub compile_output: Option<String>,
    pub time: Option<String>,
    pub wall_time: Option<String>,
    pub memory: Option<u64>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

impl Outcome {
    fn bare(status: Status, message: Option<String>) -> Self {
        Outcome {
            status,
            message,
            stdout: None,
            stderr: None,
            compile_output: None,
            time: None,
            wall_time: None,
            memory: None,
            exit_code: None,
            exit_signal: None,
        }
    }

    /// The Judge0 view of a job with one test.
    pub fn of(record: &JobRecord) -> Self {
        match record.status {
            JobStatus::Queued => return Outcome::bare(Status::InQueue, None),
            JobStatus::Running => return Outcome::bare(Status::Processing, None),
            JobStatus::Cancelled => {
                return Outcome::bare(Status::InternalError, Some("the job was cancelled (DELETE /jobs/{id})".into()))
            }
            JobStatus::Failed => {
                return Outcome::bare(
                    Status::InternalError,
                    record.error.clone().or(Some("the platform failed".into())),
                )
            }
            JobStatus::Completed => {}
        }
        let Some(result) = &record.result else {
            return Outcome::bare(Status::InternalError, Some("the job completed without a result".into()));
        };
        let compile_output = result.compile_output.as_deref().and_then(non_empty);
        if result.overall_status == Some(Verdict::CompilationError) {
            return Outcome { compile_output, ..Outcome::bare(Status::CompilationError, None) };
        }
        let Some(test) = result.test_results.first() else {
            let message = result.message.clone().or(Some("the sandbox failed".into()));
            return Outcome { compile_output, ..Outcome::bare(Status::InternalError, message) };
        };
        let (status, message) = Self::verdict(test);
        Outcome {
            status,
            message,
            stdout: non_empty(&test.stdout),
            stderr: non_empty(&test.stderr),
            compile_output,
            time: Some(seconds(test.cpu_time_ms)),
            wall_time: Some(seconds(test.execution_time_ms)),
            memory: Some(test.memory_kb),
            // Judge0 reports 0 for a program ended by a signal.
            exit_code: Some(test.exit_code.unwrap_or(0)),
            exit_signal: test.signal,
        }
    }

    fn verdict(test: &TestResult) -> (Status, Option<String>) {
        match test.verdict {
            Some(Verdict::Accepted) | None => (Status::Accepted, None),
            Some(Verdict::WrongAnswer) => (Status::WrongAnswer, None),
            Some(Verdict::TimeLimitExceeded) => (Status::TimeLimitExceeded, Some("Time limit exceeded".into())),
            Some(Verdict::MemoryLimitExceeded) => (
                Status::Other,
                Some(format!(
                    "Memory limit exceeded: {}",
                    test.message.clone().unwrap_or_else(|| "the program used more than its memory limit".into())
                )),
            ),
            Some(Verdict::RuntimeError) => match test.signal {
                Some(sig) => (Status::of_signal(sig), Some(format!("Caught fatal signal {sig}"))),
                None => (Status::Nzec, Some(format!("Exited with error status {}", test.exit_code.unwrap_or(1)))),
            },
            Some(Verdict::OutputLimitExceeded) => {
                (Status::Sigxfsz, Some("Output limit exceeded: the program wrote more than the output cap".into()))
            }
            Some(Verdict::CompilationError) => (Status::CompilationError, None),
            Some(Verdict::InternalError) | Some(Verdict::NotRun) => {
                (Status::InternalError, test.message.clone().or(Some("the sandbox failed".into())))
            }
        }
    }
}

/// A submission as Judge0 renders it: `fields` only, text fields base64 when
/// `base64` is set.
pub fn render(
    record: &JobRecord,
    spec: Option<&JobSpec>,
    sub: &Submission,
    language_name: &str,
    fields: &[&str],
    base64: bool,
) -> Value {
    let outcome = Outcome::of(record);
    let text = |s: Option<&str>| match s {
        None => Value::Null,
        Some(s) if base64 => Value::String(encode(s)),
        Some(s) => Value::String(s.to_string()),
    };
    let test = spec.and_then(|s| s.test_cases.first());
    let mut out = Map::new();
    for field in fields {
        let value = match *field {
            "source_code" => text(spec.map(|s| s.source_code.as_str())),
            "language_id" => json!(sub.language_id),
            "stdin" => text(test.map(|t| t.input.as_str()).filter(|s| !s.is_empty())),
            "expected_output" => text(test.and_then(|t| t.expected_output.as_deref())),
            "stdout" => text(outcome.stdout.as_deref()),
            "status_id" => json!(outcome.status.id()),
            "created_at" => json!(timestamp(record.created_at)),
            "finished_at" => json!(record.finished_at.map(timestamp)),
            "time" => json!(outcome.time),
            "memory" => json!(outcome.memory),
            "stderr" => text(outcome.stderr.as_deref()),
            "token" => json!(record.job_id),
            "number_of_runs" => json!(sub.number_of_runs),
            "cpu_time_limit" => json!(decimal(sub.cpu_time_limit)),
            "cpu_extra_time" => json!(decimal(sub.cpu_extra_time)),
            "wall_time_limit" => json!(decimal(sub.wall_time_limit)),
            "memory_limit" => json!(sub.memory_limit),
            "stack_limit" => json!(sub.stack_limit),
            "max_processes_and_or_threads" => json!(sub.max_processes_and_or_threads),
            "enable_per_process_and_thread_time_limit" => json!(sub.enable_per_process_and_thread_time_limit),
            "enable_per_process_and_thread_memory_limit" => json!(sub.enable_per_process_and_thread_memory_limit),
            "max_file_size" => json!(sub.max_file_size),
            "compile_output" => text(outcome.compile_output.as_deref()),
            "exit_code" => json!(outcome.exit_code),
            "exit_signal" => json!(outcome.exit_signal),
            "message" => text(outcome.message.as_deref()),
            "wall_time" => json!(outcome.wall_time),
            "compiler_options" => json!(sub.compiler_options),
            "command_line_arguments" => json!(sub.command_line_arguments),
            "redirect_stderr_to_stdout" => json!(sub.redirect_stderr_to_stdout),
            "callback_url" => json!(sub.callback_url),
            "additional_files" => Value::Null,
            "enable_network" => json!(sub.enable_network),
            "status" => outcome.status.json(),
            "language" => json!({ "id": sub.language_id, "name": language_name }),
            _ => continue,
        };
        out.insert(field.to_string(), value);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use optimus_common::{JobResult, Mode, TestCase};
    use uuid::Uuid;

    fn test_result(verdict: Verdict, exit_code: Option<i32>, signal: Option<i32>) -> TestResult {
        TestResult {
            verdict: Some(verdict),
            passed: Some(verdict == Verdict::Accepted),
            stdout: "out\n".into(),
            exit_code,
            signal,
            execution_time_ms: 31,
            cpu_time_ms: 12,
            memory_kb: 3400,
            message: Some("used more than the 64 MB memory limit".into()),
            ..TestResult::not_run(1)
        }
    }

    fn record(status: JobStatus, tests: Vec<TestResult>, overall: Option<Verdict>) -> JobRecord {
        let mut result = JobResult::from_tests(Mode::Run, tests, &[1], Some(String::new()));
        if overall.is_some() {
            result.overall_status = overall;
        }
        JobRecord {
            job_id: Uuid::nil(),
            language: "python".into(),
            status,
            created_at: DateTime::parse_from_rfc3339("2024-04-03T05:40:51.306Z").unwrap().with_timezone(&Utc),
            started_at: None,
            finished_at: None,
            attempts: 1,
            error: None,
            attempt_errors: vec![],
            retry_at: None,
            result: (status == JobStatus::Completed).then_some(result),
        }
    }

    fn submission() -> Submission {
        Submission {
            language_id: 71,
            number_of_runs: 1,
            cpu_time_limit: 5.0,
            cpu_extra_time: 1.0,
            wall_time_limit: 11.0,
            memory_limit: 262144,
            stack_limit: 64000,
            max_processes_and_or_threads: 64,
            enable_per_process_and_thread_time_limit: false,
            enable_per_process_and_thread_memory_limit: false,
            max_file_size: 1024,
            compiler_options: None,
            command_line_arguments: None,
            redirect_stderr_to_stdout: false,
            callback_url: None,
            enable_network: false,
        }
    }

    fn status_of(verdict: Verdict, exit: Option<i32>, signal: Option<i32>) -> (u32, Option<String>) {
        let o = Outcome::of(&record(JobStatus::Completed, vec![test_result(verdict, exit, signal)], None));
        (o.status.id(), o.message)
    }

    #[test]
    fn statuses_have_judge0s_ids_and_descriptions() {
        let ids: Vec<u32> = Status::ALL.iter().map(|s| s.id()).collect();
        assert_eq!(ids, (1..=14).collect::<Vec<_>>());
        assert_eq!(Status::Other.description(), "Runtime Error (Other)");
        assert_eq!(Status::Nzec.description(), "Runtime Error (NZEC)");
        assert_eq!(Status::ExecFormatError.description(), "Exec Format Error");
    }

    #[test]
    fn verdicts_map_as_judge0_maps_them() {
        assert_eq!(status_of(Verdict::Accepted, Some(0), None).0, 3);
        assert_eq!(status_of(Verdict::WrongAnswer, Some(0), None).0, 4);
        assert_eq!(status_of(Verdict::TimeLimitExceeded, None, Some(9)).0, 5);
        assert_eq!(status_of(Verdict::RuntimeError, None, Some(11)).0, 7);
        assert_eq!(status_of(Verdict::RuntimeError, None, Some(25)).0, 8);
        assert_eq!(status_of(Verdict::RuntimeError, None, Some(8)).0, 9);
        assert_eq!(status_of(Verdict::RuntimeError, None, Some(6)).0, 10);
        assert_eq!(status_of(Verdict::RuntimeError, None, Some(15)).0, 12);
        let (nzec, message) = status_of(Verdict::RuntimeError, Some(3), None);
        assert_eq!((nzec, message.as_deref()), (11, Some("Exited with error status 3")));
        let (mle, message) = status_of(Verdict::MemoryLimitExceeded, None, Some(9));
        assert_eq!(mle, 12);
        assert!(message.unwrap().starts_with("Memory limit exceeded"));
        let compile = record(JobStatus::Completed, vec![], Some(Verdict::CompilationError));
        assert_eq!(Outcome::of(&compile).status, Status::CompilationError);
        assert_eq!(Outcome::of(&record(JobStatus::Queued, vec![], None)).status, Status::InQueue);
        assert_eq!(Outcome::of(&record(JobStatus::Running, vec![], None)).status, Status::Processing);
        assert_eq!(Outcome::of(&record(JobStatus::Failed, vec![], None)).status, Status::InternalError);
    }

    #[test]
    fn fields_star_is_judge0s_whole_set_and_nothing_more() {
        let fields = parse_fields(Some("*")).unwrap();
        let rec = record(JobStatus::Completed, vec![test_result(Verdict::Accepted, Some(0), None)], None);
        let out = render(&rec, None, &submission(), "Python (3.11.2)", &fields, true);
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 35);
        for f in ALL_FIELDS {
            assert!(out.get(f).is_some(), "{f} missing");
        }
        assert_eq!(out["time"], "0.012");
        assert_eq!(out["wall_time"], "0.031");
        assert_eq!(out["memory"], 3400);
        assert_eq!(out["cpu_time_limit"], "5.0");
        assert_eq!(out["stdout"], "b3V0Cg==");
        assert_eq!(out["created_at"], "2024-04-03T05:40:51.306Z");
        assert_eq!(out["status"], json!({"id": 3, "description": "Accepted"}));
        assert_eq!(out["exit_code"], 0);
    }

    #[test]
    fn default_and_listed_fields() {
        assert_eq!(parse_fields(None).unwrap(), DEFAULT_FIELDS.to_vec());
        assert_eq!(parse_fields(Some("")).unwrap(), DEFAULT_FIELDS.to_vec());
        assert_eq!(parse_fields(Some("stdout,status_id")).unwrap(), vec!["stdout", "status_id"]);
        assert_eq!(parse_fields(Some("stdout,nope,x")).unwrap_err(), vec!["nope".to_string(), "x".to_string()]);
        let rec = record(JobStatus::Completed, vec![test_result(Verdict::Accepted, Some(0), None)], None);
        let plain = render(&rec, None, &submission(), "Python", &["stdout", "token"], false);
        assert_eq!(plain, json!({"stdout": "out\n", "token": Uuid::nil()}));
    }

    #[test]
    fn base64_round_trips_and_forgives_line_breaks() {
        assert_eq!(encode("héllo\n"), "aMOpbGxvCg==");
        assert_eq!(decode("aMOp\nbGxvCg==").unwrap(), "héllo\n");
        assert_eq!(decode("aMOpbGxvCg").unwrap(), "héllo\n");
        assert!(decode("not base64!").is_none());
        let spec = JobSpec {
            language: "python".into(),
            source_code: "print(1)".into(),
            test_cases: vec![TestCase { id: 1, input: "in".into(), expected_output: None, weight: 1, compare: None }],
            time_limit_ms: 1000,
            memory_limit_mb: 64,
            mode: Mode::Run,
            compare: Default::default(),
            checker: None,
            solution: None,
            harness: None,
            args: vec![],
            files: vec![],
        };
        let rec = record(JobStatus::Queued, vec![], None);
        let out =
            render(&rec, Some(&spec), &submission(), "Python", &["source_code", "stdin", "expected_output"], true);
        assert_eq!(out, json!({"source_code": "cHJpbnQoMSk=", "stdin": "aW4=", "expected_output": null}));
    }

    #[test]
    fn decimals_look_like_rails_decimals() {
        assert_eq!(decimal(5.0), "5.0");
        assert_eq!(decimal(0.002), "0.002");
        assert_eq!(decimal(1.5), "1.5");
    }
}
