//! Piston v2's routes, under `/api/v2` and `/api/v2/piston`: `GET runtimes` and
//! `POST execute`. An execute is a job with one test (its `stdin`), run and
//! waited for; the answer is Piston's `{language, version, run, compile?}`.
//!
//! Differences a client can see, all documented in the README:
//! - `run.output` is stdout followed by stderr (Piston interleaves them as they
//!   were written).
//! - `run_timeout` and `run_cpu_time` set the one limit Optimus has, CPU time
//!   (the wall-clock cap is twice it plus 1 s); `compile_*` limits are checked
//!   against the language's compile limits, which always apply.
//! - Files given as base64 or hex must decode to UTF-8 text.
//! - A form-encoded body (what the `pistonapi` wrapper sends) is accepted too;
//!   Piston itself answers it 415.

use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use optimus_common::settings::{MIN_MEMORY_MB, MIN_TIMEOUT_MS};
use optimus_common::store::Caller;
use optimus_common::{JobRecord, JobStatus, LanguageConfig, SourceFile, TestResult, Verdict};
use serde_json::{json, Map, Value};

use super::semver;
use crate::error::ApiError;
use crate::extract::{parse_bounded, ParseError};
use crate::validate::{Draft, Rules, TestDraft};
use crate::AppState;

/// Piston's answer to anything it refuses: `{"message": "..."}`.
#[derive(Debug)]
pub struct PistonError {
    status: StatusCode,
    message: String,
    /// The answer Optimus's own API gave, re-dressed (its status and headers kept).
    api: Option<ApiError>,
}

impl PistonError {
    fn bad(message: impl Into<String>) -> Self {
        PistonError { status: StatusCode::BAD_REQUEST, message: message.into(), api: None }
    }
}

impl From<ApiError> for PistonError {
    fn from(e: ApiError) -> Self {
        PistonError { status: StatusCode::OK, message: e.to_string(), api: Some(e) }
    }
}

impl IntoResponse for PistonError {
    fn into_response(self) -> Response {
        let body = json!({ "message": self.message }).to_string();
        let mut response = match self.api {
            Some(e) => e.into_response(),
            None => self.status.into_response(),
        };
        response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        response.headers_mut().remove(header::CONTENT_LENGTH);
        *response.body_mut() = Body::from(body);
        response
    }
}

type Result<T> = std::result::Result<T, PistonError>;

pub async fn not_found(uri: Uri) -> PistonError {
    PistonError {
        status: StatusCode::NOT_FOUND,
        message: format!("no Piston route {}; routes: GET runtimes, POST execute", uri.path()),
        api: None,
    }
}

/// Every language as a Piston runtime.
pub async fn runtimes(State(state): State<AppState>) -> impl IntoResponse {
    let list: Vec<Value> = state
        .registry
        .languages()
        .iter()
        .map(|l| {
            let mut rt = json!({ "language": l.name, "version": l.semver(), "aliases": l.aliases });
            if let Some(runtime) = &l.runtime {
                rt["runtime"] = json!(runtime);
            }
            rt
        })
        .collect();
    axum::Json(list)
}

/// The body as Piston's JSON; a form-encoded one is read into the same shape.
/// Either way, a body with more than `max_values` values (JSON values, or form
/// pairs) is refused before any is built (see [`crate::extract`]).
pub fn body_value(headers: &HeaderMap, body: &Bytes, max_values: usize) -> Result<Value> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let too_many = || PistonError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("the body holds more than {max_values} values (OPTIMUS_MAX_JSON_VALUES)"),
        api: None,
    };
    if content_type.starts_with("application/json") {
        return parse_bounded(body, max_values).map_err(|e| match e {
            ParseError::TooManyValues { .. } => too_many(),
            ParseError::Syntax(why) | ParseError::Shape(why) => {
                PistonError::bad(format!("the body is not valid JSON: {why}"))
            }
        });
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        if form_urlencoded::parse(body).nth(max_values).is_some() {
            return Err(too_many());
        }
        let mut out = Map::new();
        let (mut files, mut args) = (Vec::new(), Vec::new());
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "files" | "files[]" => files.push(json!({ "content": value })),
                "args" | "args[]" => args.push(json!(value)),
                k if k.ends_with("_timeout") || k.ends_with("_memory_limit") || k.ends_with("_cpu_time") => {
                    let number = value.trim().parse::<f64>().map(|n| json!(n)).unwrap_or(json!(value));
                    out.insert(k.to_string(), number);
                }
                k => {
                    out.insert(k.to_string(), json!(value));
                }
            }
        }
        out.insert("files".into(), json!(files));
        out.insert("args".into(), json!(args));
        return Ok(Value::Object(out));
    }
    Err(PistonError {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        message: "requests must be of type application/json (or application/x-www-form-urlencoded)".into(),
        api: None,
    })
}

/// `POST execute`: runs the program and answers how its compile and run went.
pub async fn execute(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let body = body_value(&headers, &body, state.settings.limits.max_json_values)?;
    let draft = parse_execute(state.rules(), &body)?;
    let lang = draft.lang.clone();
    let spec = crate::routes::jobs::accept(&state, draft).map_err(|refused| PistonError::bad(refused.message))?;
    let id = crate::routes::jobs::queue(&state, &caller, spec, &lang, None).await?;
    let budget = super::wait_budget(&state);
    let record = super::wait_for_end(&state, id, &caller, budget).await?;
    let Some(record) = record.filter(|r| r.status.is_terminal()) else {
        let _ = state.store.cancel(id, &caller).await;
        return Err(PistonError {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: format!("job {id} did not finish within {} s, so it was cancelled; retry later", budget.as_secs()),
            api: None,
        });
    };
    let answer = answer(&record, &lang).map_err(|message| PistonError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message,
        api: None,
    })?;
    Ok((StatusCode::OK, axum::Json(answer)).into_response())
}

/// A limit as Piston checks it: absent, 0 or -1 mean the default; otherwise a
/// number from Optimus's minimum to `max`.
fn limit(body: &Value, name: &str, min: f64, max: f64) -> Result<Option<f64>> {
    let value = match body.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(_) => return Err(PistonError::bad(format!("If specified, {name} must be a number"))),
    };
    if value == 0.0 || value == -1.0 {
        return Ok(None);
    }
    if value > max {
        return Err(PistonError::bad(format!("{name} cannot exceed the configured limit of {max}")));
    }
    if value < 0.0 {
        return Err(PistonError::bad(format!("{name} must be non-negative")));
    }
    if value < min {
        return Err(PistonError::bad(format!("{name} must be at least {min}")));
    }
    Ok(Some(value))
}

pub fn decode_file(i: usize, content: &str, encoding: &str) -> Result<String> {
    let bytes = match encoding {
        "utf8" => return Ok(content.to_string()),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(content.trim())
            .map_err(|e| PistonError::bad(format!("files[{i}].content is not valid base64: {e}")))?,
        "hex" => (0..content.len())
            .step_by(2)
            .map(|at| content.get(at..at + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| PistonError::bad(format!("files[{i}].content is not valid hex")))?,
        other => {
            return Err(PistonError::bad(format!("files[{i}].encoding '{other}' is not one of utf8, base64, hex")))
        }
    };
    String::from_utf8(bytes).map_err(|_| {
        PistonError::bad(format!("files[{i}] is not UTF-8 text once decoded; binary files are not supported"))
    })
}

/// Piston's checks, in Piston's order and words, then the job request.
pub fn parse_execute<'s>(rules: Rules<'s>, body: &Value) -> Result<Draft<'s>> {
    let language = body.get("language").and_then(Value::as_str).filter(|s| !s.is_empty());
    let language = language.ok_or_else(|| PistonError::bad("language is required as a string"))?;
    let version = body.get("version").and_then(Value::as_str).filter(|s| !s.is_empty());
    let version = version.ok_or_else(|| PistonError::bad("version is required as a string"))?;
    let files =
        body.get("files").and_then(Value::as_array).ok_or_else(|| PistonError::bad("files is required as an array"))?;
    let mut decoded = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        let content = file
            .get("content")
            .and_then(Value::as_str)
            .ok_or_else(|| PistonError::bad(format!("files[{i}].content is required as a string")))?;
        let encoding = file.get("encoding").and_then(Value::as_str).unwrap_or("utf8");
        let name = file.get("name").and_then(Value::as_str).map(str::to_string);
        decoded.push((
            name.unwrap_or_else(|| format!("file{i}.code")),
            decode_file(i, content, encoding)?,
            encoding == "utf8",
        ));
    }
    let lang = rules
        .registry
        .languages()
        .iter()
        .find(|l| l.answers_to(language) && semver::satisfies(&l.semver(), version))
        .ok_or_else(|| PistonError::bad(format!("{language}-{version} runtime is unknown")))?;
    let main = decoded
        .iter()
        .position(|(_, _, utf8)| *utf8)
        .ok_or_else(|| PistonError::bad("files must include at least one utf8 encoded file"))?;

    let limits = &rules.settings.limits;
    let max_run_ms = limits.max_time_limit_ms as f64;
    let min_ms = MIN_TIMEOUT_MS as f64;
    let run_timeout = limit(body, "run_timeout", min_ms, max_run_ms)?;
    let run_cpu_time = limit(body, "run_cpu_time", min_ms, max_run_ms)?;
    limit(body, "compile_timeout", min_ms, lang.compile_timeout_ms as f64)?;
    limit(body, "compile_cpu_time", min_ms, lang.compile_timeout_ms as f64)?;
    let min_bytes = f64::from(MIN_MEMORY_MB) * 1024.0 * 1024.0;
    let run_memory = limit(body, "run_memory_limit", min_bytes, f64::from(limits.max_memory_mb) * 1024.0 * 1024.0)?;
    limit(body, "compile_memory_limit", min_bytes, f64::from(lang.compile_memory_mb) * 1024.0 * 1024.0)?;

    let stdin = match body.get("stdin") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(PistonError::bad("stdin must be a string")),
    };
    let args = match body.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|a| match a {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| PistonError::bad("args must be an array of strings"))?,
        Some(_) => return Err(PistonError::bad("args must be an array of strings")),
    };
    let source_code = decoded[main].1.clone();
    let files: Vec<SourceFile> = decoded
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != main)
        .map(|(_, (name, content, _))| SourceFile { name, content })
        .collect();
    Ok(Draft {
        lang,
        source_code,
        tests: Some(vec![TestDraft { id: 1, input: stdin, expected_output: None, weight: None, compare: None }]),
        time_limit_ms: run_cpu_time.or(run_timeout).map(|ms| ms.round() as u64),
        memory_limit_mb: run_memory.map(|bytes| (bytes / (1024.0 * 1024.0)).ceil() as u32),
        mode: Default::default(),
        compare: None,
        checker: None,
        solution: None,
        harness: None,
        args,
        files,
    })
}

/// The compile stage: what the compiler printed, and whether it failed.
fn compile_stage(output: &str, failed: bool) -> Value {
    json!({
        "stdout": "",
        "stderr": output,
        "output": output,
        "code": if failed { 1 } else { 0 },
        "signal": null,
        "message": if failed { json!("Exited with error status 1") } else { Value::Null },
        "status": if failed { json!("RE") } else { Value::Null },
        "cpu_time": null,
        "wall_time": null,
        "memory": null,
    })
}

/// The run stage of one test, with isolate's status codes as Piston passes them on.
pub fn run_stage(test: &TestResult) -> Value {
    let killed = || Some("SIGKILL".to_string());
    let (status, message, signal) = match test.verdict {
        Some(Verdict::Accepted) | Some(Verdict::WrongAnswer) | None => (None, None, None),
        Some(Verdict::TimeLimitExceeded) => (Some("TO"), Some("Time limit exceeded".to_string()), killed()),
        Some(Verdict::MemoryLimitExceeded) => {
            (Some("SG"), Some(format!("Memory limit exceeded: {}", test.message.clone().unwrap_or_default())), killed())
        }
        Some(Verdict::OutputLimitExceeded) => (Some("OL"), Some("stdout length exceeded".to_string()), killed()),
        Some(Verdict::RuntimeError) => match test.signal {
            Some(sig) => (
                Some("SG"),
                Some(format!("Caught fatal signal {sig}")),
                optimus_common::verdict::signal_name(sig).map(str::to_string),
            ),
            None => (Some("RE"), Some(format!("Exited with error status {}", test.exit_code.unwrap_or(1))), None),
        },
        Some(_) => (Some("XX"), test.message.clone(), None),
    };
    json!({
        "stdout": test.stdout,
        "stderr": test.stderr,
        "output": format!("{}{}", test.stdout, test.stderr),
        "code": test.exit_code,
        "signal": signal,
        "message": message,
        "status": status,
        "cpu_time": test.cpu_time_ms,
        "wall_time": test.execution_time_ms,
        "memory": test.memory_kb * 1024,
    })
}

/// Piston's answer for a finished job, or why there is none.
pub fn answer(record: &JobRecord, lang: &LanguageConfig) -> std::result::Result<Value, String> {
    match record.status {
        JobStatus::Completed => {}
        JobStatus::Cancelled => return Err("the job was cancelled".into()),
        _ => return Err(record.error.clone().unwrap_or_else(|| "the platform could not run the job".into())),
    }
    let result = record.result.as_ref().ok_or("the job completed without a result")?;
    let compile_output = result.compile_output.clone().unwrap_or_default();
    let mut out = json!({ "language": lang.name, "version": lang.semver() });
    if result.overall_status == Some(Verdict::CompilationError) {
        // As Piston does: a failed compile is also the run.
        let compile = compile_stage(&compile_output, true);
        out["run"] = compile.clone();
        out["compile"] = compile;
        return Ok(out);
    }
    let test = result
        .test_results
        .first()
        .ok_or_else(|| result.message.clone().unwrap_or_else(|| "the sandbox failed".into()))?;
    if test.verdict == Some(Verdict::InternalError) {
        return Err(test.message.clone().unwrap_or_else(|| "the sandbox failed".into()));
    }
    out["run"] = run_stage(test);
    if lang.compiled {
        out["compile"] = compile_stage(&compile_output, false);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(verdict: Verdict, exit: Option<i32>, signal: Option<i32>) -> TestResult {
        TestResult {
            verdict: Some(verdict),
            stdout: "a\n".into(),
            stderr: "b\n".into(),
            exit_code: exit,
            signal,
            cpu_time_ms: 7,
            execution_time_ms: 9,
            memory_kb: 2,
            ..TestResult::not_run(1)
        }
    }

    #[test]
    fn runs_report_isolates_statuses_and_signal_names() {
        let ok = run_stage(&test(Verdict::Accepted, Some(0), None));
        assert_eq!(ok["status"], Value::Null);
        assert_eq!(ok["output"], "a\nb\n");
        assert_eq!(ok["memory"], 2048);
        assert_eq!(ok["code"], 0);
        let re = run_stage(&test(Verdict::RuntimeError, Some(3), None));
        assert_eq!((re["status"].as_str(), re["code"].as_i64()), (Some("RE"), Some(3)));
        let sg = run_stage(&test(Verdict::RuntimeError, None, Some(11)));
        assert_eq!((sg["status"].as_str(), sg["signal"].as_str()), (Some("SG"), Some("SIGSEGV")));
        assert_eq!(sg["code"], Value::Null);
        let to = run_stage(&test(Verdict::TimeLimitExceeded, None, Some(9)));
        assert_eq!((to["status"].as_str(), to["signal"].as_str()), (Some("TO"), Some("SIGKILL")));
        let ol = run_stage(&test(Verdict::OutputLimitExceeded, None, Some(9)));
        assert_eq!(ol["status"], "OL");
    }

    #[test]
    fn files_decode_from_each_encoding() {
        assert_eq!(decode_file(0, "print(1)", "utf8").unwrap(), "print(1)");
        assert_eq!(decode_file(0, "cHJpbnQoMSk=", "base64").unwrap(), "print(1)");
        assert_eq!(decode_file(0, "7072696e742831", "hex").unwrap(), "print(1");
        assert!(decode_file(0, "zz", "hex").is_err());
        assert!(decode_file(0, "/w==", "base64").is_err(), "0xff is not UTF-8");
        assert!(decode_file(0, "x", "latin1").is_err());
    }
}
