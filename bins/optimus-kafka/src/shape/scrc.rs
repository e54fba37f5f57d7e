//! SCRC's envelopes. A script message (`type` `script`, the default, or `done`;
//! `id`, else the message key, else its place in the topic; `language`, `source`,
//! `limits.time_limit_ms` and `limits.memory_limit_bytes`, 0 meaning the
//! language's default; `tests[]` with `number` auto-assigned from 1, `input`,
//! `expected_output`) becomes a job in `run` mode. Its result carries SCRC's
//! status codes, per test and overall:
//!
//! | Optimus verdict | SCRC `status` | `error` |
//! | --- | --- | --- |
//! | accepted | `OK` | empty |
//! | wrong answer | `WA` | empty |
//! | runtime error | `WA` | `runtime error: exit code N` (or `killed by signal N`) |
//! | output limit exceeded | `WA` | `output limit exceeded` |
//! | time limit exceeded | `TL` | `time limit exceeded` |
//! | memory limit exceeded | `ML` | `memory limit exceeded` |
//! | compilation error | `BF` (its tests `-`) | the compiler's output is the `stderr` |
//! | not run | `-` | `not run: an earlier test failed` |
//! | internal error, job failed or cancelled | `-` | why |
//!
//! SCRC has no codes for a crash or an output flood; both are wrong answers there
//! (the program did not print what was expected), and `error` says which.

use optimus_api::validate::{accept, Draft, Rules, TestDraft};
use optimus_common::settings::{MIN_MEMORY_MB, MIN_TIMEOUT_MS};
use optimus_common::verdict::{TestResult, Verdict};
use optimus_common::{JobRecord, JobStatus};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{timestamp, Envelope, Intake, Outgoing, Parsed, Rejection};

/// The texts a result echoes (each test's input and expected output) are kept
/// whole up to this size and emptied past it, as a finished job keeps its spec.
pub const ECHO_TEXT_BYTES: usize = optimus_common::job::KEPT_TEXT_BYTES;

#[derive(Debug, Deserialize)]
struct Script {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    tests: Option<Vec<Test>>,
}

#[derive(Debug, Deserialize)]
struct Limits {
    #[serde(default)]
    time_limit_ms: Option<i64>,
    #[serde(default)]
    memory_limit_bytes: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Test {
    #[serde(default)]
    number: Option<u64>,
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    expected_output: Option<String>,
}

/// What an SCRC result echoes: the script id, and each test's input and expected output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Echo {
    pub id: String,
    /// `None`: the script had no tests (its result has no `tests`).
    pub tests: Option<Vec<TestEcho>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestEcho {
    pub number: u64,
    pub input: String,
    pub expected_output: String,
}

/// The script id: its `id`, else the message key, else its place in the topic
/// (topic, partition and offset: offsets count per partition).
fn script_id(script_id: Option<&str>, message: &Envelope<'_>) -> String {
    match script_id.filter(|id| !id.is_empty()) {
        Some(id) => id.to_string(),
        None => match message.key.filter(|k| !k.is_empty()) {
            Some(key) => String::from_utf8_lossy(key).into_owned(),
            None => message.place(),
        },
    }
}

pub fn parse<'r>(rules: Rules<'r>, message: &Envelope<'_>) -> Parsed<'r> {
    let script: Script = match serde_json::from_slice(message.payload) {
        Ok(script) => script,
        Err(e) => {
            let mut rejection = Rejection::new(format!("the message is not a script envelope: {e}"));
            rejection.correlation = Some(Value::String(script_id(None, message)));
            return Parsed::Rejected(rejection);
        }
    };
    let id = script_id(script.id.as_deref(), message);
    let reject = |reason: String| Parsed::Rejected(Rejection { reason, correlation: Some(Value::String(id.clone())) });
    match script.kind.as_deref() {
        None | Some("script") => {}
        Some("done") => return Parsed::Done,
        Some(other) => return reject(format!("type {other:?} is not a message type; send \"script\" or \"done\"")),
    }
    let Some(language) = script.language.filter(|l| !l.is_empty()) else {
        return reject(format!("language is required: one of {}", rules.registry.names()));
    };
    let Some(lang) = rules.registry.find(&language).or_else(|| rules.registry.find_alias(&language)) else {
        return reject(format!("language {language:?} is not served here; send one of {}", rules.registry.names()));
    };
    let source = script.source.unwrap_or_default();
    if source.is_empty() {
        return reject("source is required and must not be empty".into());
    }
    let limits = &rules.settings.limits;
    // 0 (or absent) is the language's default.
    let nonzero = |v: Option<i64>| v.filter(|&v| v != 0);
    let (time, memory) = match script.limits {
        None => (None, None),
        Some(l) => (nonzero(l.time_limit_ms), nonzero(l.memory_limit_bytes)),
    };
    let time_limit_ms = match time {
        Some(ms) if ms < 0 => return reject(format!("limits.time_limit_ms is {ms}; it must not be negative")),
        Some(ms) if !(MIN_TIMEOUT_MS..=limits.max_time_limit_ms).contains(&(ms as u64)) => {
            return reject(format!(
                "limits.time_limit_ms is {ms}; send 0 (the language's default, {} ms) or {MIN_TIMEOUT_MS} to {}",
                lang.time_limit_ms, limits.max_time_limit_ms
            ))
        }
        other => other.map(|ms| ms as u64),
    };
    let min_bytes = i64::from(MIN_MEMORY_MB) << 20;
    let max_bytes = i64::from(limits.max_memory_mb) << 20;
    let memory_limit_mb = match memory {
        Some(b) if b < 0 => return reject(format!("limits.memory_limit_bytes is {b}; it must not be negative")),
        Some(b) if !(min_bytes..=max_bytes).contains(&b) => {
            return reject(format!(
            "limits.memory_limit_bytes is {b}; send 0 (the language's default, {} MiB) or {min_bytes} to {max_bytes}",
            lang.memory_limit_mb
        ))
        }
        other => other.map(|b| ((b + (1 << 20) - 1) >> 20) as u32),
    };
    let tests: Option<Vec<(u64, String, Option<String>)>> = script.tests.map(|tests| {
        tests
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t.number.unwrap_or(i as u64 + 1), t.input.unwrap_or_default(), t.expected_output))
            .collect()
    });
    let text = |t: &str| if t.len() <= ECHO_TEXT_BYTES { t.to_string() } else { String::new() };
    let echo = Echo {
        id: id.clone(),
        tests: tests.as_ref().map(|tests| {
            tests
                .iter()
                .map(|(number, input, expected)| TestEcho {
                    number: *number,
                    input: text(input),
                    expected_output: expected.as_deref().map(text).unwrap_or_default(),
                })
                .collect()
        }),
    };
    let draft = Draft {
        lang,
        source_code: source,
        tests: tests.map(|tests| {
            tests
                .into_iter()
                .map(|(id, input, expected_output)| TestDraft {
                    id,
                    input,
                    expected_output,
                    weight: None,
                    compare: None,
                })
                .collect()
        }),
        time_limit_ms,
        memory_limit_mb,
        mode: Default::default(),
        compare: None,
        checker: None,
        solution: None,
        harness: None,
        args: Vec::new(),
        files: Vec::new(),
    };
    // Checked here as POST /jobs checks it, so that a refusal is this message's
    // answer rather than a failure later.
    if let Err(refused) = accept(draft.clone(), limits) {
        return reject(refused.message);
    }
    Parsed::Job(Box::new(Intake { identity: format!("script:{id}"), draft, echo: super::Echo::Scrc(echo) }))
}

/// A script that became no job: a result with status `-` and the reason in `error`.
pub fn rejected(topic: &str, message: &Envelope<'_>, rejection: &Rejection, now: &str) -> Outgoing {
    let id = match &rejection.correlation {
        Some(Value::String(id)) => id.clone(),
        _ => script_id(None, message),
    };
    let body = json!({
        "id": id, "status": "-", "exit_code": null, "stdout": "", "stderr": "", "duration_ms": null,
        "error": rejection.reason, "timestamp": now,
    });
    Outgoing { topic: topic.to_string(), key: id, payload: body.to_string() }
}

/// A test's SCRC status, and what its `error` says.
fn code(test: &TestResult) -> (&'static str, String) {
    match test.verdict {
        Some(Verdict::Accepted) => ("OK", String::new()),
        Some(Verdict::WrongAnswer) => ("WA", String::new()),
        Some(Verdict::RuntimeError) => (
            "WA",
            match (test.signal, test.exit_code) {
                (Some(signal), _) => format!("runtime error: killed by signal {signal}"),
                (None, Some(code)) => format!("runtime error: exit code {code}"),
                (None, None) => "runtime error".into(),
            },
        ),
        Some(Verdict::OutputLimitExceeded) => ("WA", "output limit exceeded".into()),
        Some(Verdict::TimeLimitExceeded) => ("TL", "time limit exceeded".into()),
        Some(Verdict::MemoryLimitExceeded) => ("ML", "memory limit exceeded".into()),
        Some(Verdict::CompilationError) => ("BF", "build failed".into()),
        Some(Verdict::NotRun) => ("-", test.message.clone().unwrap_or_else(|| "not run".into())),
        Some(Verdict::InternalError) => {
            ("-", format!("internal error: {}", test.message.as_deref().unwrap_or("the sandbox failed")))
        }
        // Custom mode judges nothing; a script always runs in run mode.
        None => ("OK", String::new()),
    }
}

fn overall_code(verdict: Option<Verdict>) -> &'static str {
    match verdict {
        Some(Verdict::Accepted) | None => "OK",
        Some(Verdict::WrongAnswer | Verdict::RuntimeError | Verdict::OutputLimitExceeded) => "WA",
        Some(Verdict::TimeLimitExceeded) => "TL",
        Some(Verdict::MemoryLimitExceeded) => "ML",
        Some(Verdict::CompilationError) => "BF",
        Some(Verdict::NotRun | Verdict::InternalError) => "-",
    }
}

/// The result envelope of an ended job. Its `timestamp` is when the job ended, so
/// a result produced again (at least once) is the same message.
pub fn result(topic: &str, record: &JobRecord, echo: &Echo) -> Outgoing {
    let at = timestamp(record.finished_at.unwrap_or(record.created_at));
    let (status, error) = match (record.status, &record.result) {
        (JobStatus::Completed, Some(result)) => {
            let first_failed = result.test_results.iter().find(|t| !t.is_passed() && t.verdict.is_some());
            let error = match result.overall_status {
                Some(Verdict::CompilationError) => "build failed".to_string(),
                Some(Verdict::InternalError) => {
                    format!("internal error: {}", result.message.as_deref().unwrap_or("the sandbox failed"))
                }
                _ => first_failed.map(|t| code(t).1).unwrap_or_default(),
            };
            (overall_code(result.overall_status), error)
        }
        (JobStatus::Failed, _) => {
            ("-", format!("internal error: {}", record.error.as_deref().unwrap_or("the job failed")))
        }
        (JobStatus::Cancelled, _) => ("-", "cancelled before it finished".to_string()),
        (status, _) => ("-", format!("the job is {}", status.as_str())),
    };
    let results = record.result.as_ref().map(|r| r.test_results.as_slice()).unwrap_or_default();
    let tests: Option<Vec<Value>> = echo.tests.as_ref().map(|tests| {
        tests
            .iter()
            .map(|t| {
                let ran = results.iter().find(|r| r.test_id == t.number);
                let (code, error) = match ran {
                    Some(r) => code(r),
                    None if status == "BF" => ("-", "not run: build failed".into()),
                    None => ("-", "not run".into()),
                };
                json!({
                    "number": t.number,
                    "status": code,
                    "exit_code": ran.and_then(|r| r.exit_code),
                    "duration_ms": ran.filter(|r| r.verdict != Some(Verdict::NotRun)).map(|r| r.execution_time_ms),
                    "stdout": ran.map(|r| r.stdout.as_str()).unwrap_or(""),
                    "stderr": ran.map(|r| r.stderr.as_str()).unwrap_or(""),
                    "input": t.input,
                    "expected_output": t.expected_output,
                    "error": error,
                })
            })
            .collect()
    });
    let run: Vec<&TestResult> = results.iter().filter(|r| r.verdict != Some(Verdict::NotRun)).collect();
    let stdout: String = run.iter().map(|r| r.stdout.as_str()).collect();
    let mut stderr: String = run.iter().map(|r| r.stderr.as_str()).collect();
    if status == "BF" {
        stderr = record.result.as_ref().and_then(|r| r.compile_output.clone()).unwrap_or_default();
    }
    let deciding = run.iter().find(|r| !r.is_passed()).or(run.last());
    let mut body = json!({
        "id": echo.id,
        "status": status,
        "exit_code": deciding.and_then(|r| r.exit_code),
        "stdout": stdout,
        "stderr": stderr,
        "duration_ms": (!run.is_empty()).then(|| run.iter().map(|r| r.execution_time_ms).sum::<u64>()),
        "error": error,
        "timestamp": at,
        "job_id": record.job_id,
    });
    if let Some(tests) = tests {
        body["tests"] = Value::Array(tests);
    }
    Outgoing { topic: topic.to_string(), key: echo.id.clone(), payload: body.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::tests::{record, rules_fixture, test_result};

    fn envelope(payload: &str) -> Envelope<'_> {
        Envelope { topic: "scripts", partition: 2, offset: 17, key: None, payload: payload.as_bytes() }
    }

    fn job(parsed: Parsed<'_>) -> Intake<'_> {
        match parsed {
            Parsed::Job(intake) => *intake,
            other => panic!("not a job: {other:?}"),
        }
    }

    fn rejected(parsed: Parsed<'_>) -> Rejection {
        match parsed {
            Parsed::Rejected(r) => r,
            other => panic!("not rejected: {other:?}"),
        }
    }

    #[test]
    fn the_seeds_envelope_becomes_a_job_with_its_limits_and_numbered_tests() {
        let fx = rules_fixture();
        let msg = r#"{"type":"script","id":"submission-123","language":"go","source":"package main",
            "limits":{"time_limit_ms":2000,"memory_limit_bytes":67108864},
            "tests":[{"input":"2 3\n","expected_output":"5\n"},{"number":7,"input":"1 1\n"}]}"#;
        let intake = job(parse(fx.rules(), &envelope(msg)));
        assert_eq!(intake.identity, "script:submission-123");
        assert_eq!(intake.draft.lang.name, "go");
        assert_eq!((intake.draft.time_limit_ms, intake.draft.memory_limit_mb), (Some(2000), Some(64)));
        let tests = intake.draft.tests.as_ref().unwrap();
        assert_eq!(tests.iter().map(|t| t.id).collect::<Vec<_>>(), [1, 7]);
        assert_eq!(tests[1].expected_output, None, "no expected output: not judged on output");
        let crate::shape::Echo::Scrc(echo) = intake.echo else { panic!("an SCRC echo") };
        assert_eq!(
            echo.tests.unwrap()[0],
            TestEcho { number: 1, input: "2 3\n".into(), expected_output: "5\n".into() }
        );
    }

    #[test]
    fn zero_limits_are_the_languages_and_the_id_falls_back_to_key_then_place() {
        let fx = rules_fixture();
        let msg = r#"{"language":"python","source":"print(1)","limits":{"time_limit_ms":0,"memory_limit_bytes":0}}"#;
        let intake = job(parse(fx.rules(), &envelope(msg)));
        assert_eq!((intake.draft.time_limit_ms, intake.draft.memory_limit_mb), (None, None));
        assert_eq!(intake.identity, "script:scripts:2:17");
        assert!(intake.draft.tests.is_none());
        let keyed = Envelope { key: Some(b"k-9"), ..envelope(msg) };
        assert_eq!(job(parse(fx.rules(), &keyed)).identity, "script:k-9");
        assert!(matches!(parse(fx.rules(), &envelope(r#"{"type":"done"}"#)), Parsed::Done));
    }

    #[test]
    fn bad_scripts_are_refused_with_what_to_send() {
        let fx = rules_fixture();
        for (msg, says) in [
            ("not json", "not a script envelope"),
            (r#"{"id":"a","source":"x"}"#, "language is required"),
            (r#"{"id":"a","language":"cobol","source":"x"}"#, "not served here"),
            (r#"{"id":"a","language":"python","source":""}"#, "source is required"),
            (r#"{"id":"a","language":"python","source":"x","limits":{"time_limit_ms":-1}}"#, "must not be negative"),
            (r#"{"id":"a","language":"python","source":"x","limits":{"time_limit_ms":99999999}}"#, "send 0"),
            (
                r#"{"id":"a","language":"python","source":"x","limits":{"memory_limit_bytes":-5}}"#,
                "must not be negative",
            ),
            (r#"{"id":"a","language":"python","source":"x","limits":{"memory_limit_bytes":1024}}"#, "send 0"),
            (r#"{"id":"a","language":"python","source":"x","tests":[{"number":1},{"number":1}]}"#, "used twice"),
            (r#"{"id":"a","type":"other","language":"python","source":"x"}"#, "not a message type"),
        ] {
            let r = rejected(parse(fx.rules(), &envelope(msg)));
            assert!(r.reason.contains(says), "{msg}: {}", r.reason);
            if msg != "not json" {
                assert_eq!(r.correlation, Some(Value::String("a".into())), "{msg}");
            }
        }
        let answer = super::rejected("script-results", &envelope("x"), &Rejection::new("bad"), "2026-01-01T00:00:00Z");
        let body: Value = serde_json::from_str(&answer.payload).unwrap();
        assert_eq!((body["id"].as_str(), body["status"].as_str()), (Some("scripts:2:17"), Some("-")));
        assert_eq!(body["error"], "bad");
    }

    #[test]
    fn results_carry_scrcs_codes_per_test_and_overall() {
        let echo = Echo {
            id: "s1".into(),
            tests: Some(
                (1..=3)
                    .map(|n| TestEcho { number: n, input: format!("in{n}"), expected_output: "5\n".into() })
                    .collect(),
            ),
        };
        let mut crash = test_result(2, Verdict::RuntimeError);
        crash.exit_code = Some(3);
        let tests = vec![test_result(1, Verdict::Accepted), crash, test_result(3, Verdict::TimeLimitExceeded)];
        let body: Value =
            serde_json::from_str(&result("script-results", &record(Some(Verdict::RuntimeError), tests), &echo).payload)
                .unwrap();
        assert_eq!(body["status"], "WA");
        assert_eq!(body["error"], "runtime error: exit code 3");
        assert_eq!(body["exit_code"], 3);
        let statuses: Vec<&str> =
            body["tests"].as_array().unwrap().iter().map(|t| t["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["OK", "WA", "TL"]);
        assert_eq!(body["tests"][2]["input"], "in3");
        assert_eq!(body["duration_ms"], 30, "the tests' durations summed");

        let bf = record(Some(Verdict::CompilationError), Vec::new());
        let body: Value = serde_json::from_str(&result("r", &bf, &echo).payload).unwrap();
        assert_eq!(body["status"], "BF");
        assert_eq!(body["stderr"], "main.c:1: error");
        assert!(body["tests"].as_array().unwrap().iter().all(|t| t["status"] == "-"));

        let mut failed = record(None, Vec::new());
        failed.status = JobStatus::Failed;
        failed.result = None;
        failed.error = Some("the sandbox failed 3 times".into());
        let body: Value = serde_json::from_str(&result("r", &failed, &echo).payload).unwrap();
        assert_eq!(body["status"], "-");
        assert!(body["error"].as_str().unwrap().contains("the sandbox failed 3 times"));
        for (verdict, code) in [(Verdict::MemoryLimitExceeded, "ML"), (Verdict::OutputLimitExceeded, "WA")] {
            let body: Value = serde_json::from_str(
                &result("r", &record(Some(verdict), vec![test_result(1, verdict)]), &echo).payload,
            )
            .unwrap();
            assert_eq!((body["status"].as_str(), body["tests"][0]["status"].as_str()), (Some(code), Some(code)));
        }
    }

    #[test]
    fn a_result_produced_again_is_the_same_message() {
        let echo = Echo { id: "s1".into(), tests: None };
        let r = record(Some(Verdict::Accepted), vec![test_result(1, Verdict::Accepted)]);
        assert_eq!(result("r", &r, &echo), result("r", &r, &echo));
        let body: Value = serde_json::from_str(&result("r", &r, &echo).payload).unwrap();
        assert!(body.get("tests").is_none(), "a script without tests has no tests in its result");
        assert_eq!(body["job_id"], r.job_id.to_string());
    }
}
