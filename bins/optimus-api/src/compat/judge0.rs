//! Judge0 CE 1.13.1's routes, under `/judge0`. A submission is a job with one
//! test (its `stdin` and `expected_output`), compared as Judge0 compares
//! (trailing whitespace of each line and of the end ignored); its token is the
//! job id. Limits are Judge0's units (seconds, KB) mapped onto Optimus's, and
//! checked against Optimus's real maxima, which `/config_info` reports.
//!
//! Not offered, and refused with Judge0's own 422 messages: compiler options,
//! additional files (zip archives), network access, per-process limits,
//! `number_of_runs` above 1, and (not in Judge0) `redirect_stderr_to_stdout`.
//! `cpu_extra_time`, `wall_time_limit`, `stack_limit`, `max_processes_and_or_threads`
//! and `max_file_size` are checked and echoed; the sandbox's own caps apply
//! (wall time: twice the CPU limit plus 1 s; processes: the language's limit;
//! output: `OPTIMUS_OUTPUT_LIMIT_BYTES`).

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use optimus_common::limits::wall_cap_secs;
use optimus_common::settings::{MIN_MEMORY_MB, MIN_TIMEOUT_MS};
use optimus_common::store::{Caller, Origin};
use optimus_common::LanguageConfig;
use serde_json::{json, Value};
use uuid::Uuid;

use super::judge0_view::{self, parse_fields, render, Status, Submission, VERSION};
use crate::error::ApiError;
use crate::extract::Json;
use crate::validate::{JobRequest, TestCaseRequest};
use crate::AppState;

/// The most submissions a batch holds (Judge0's default).
pub const MAX_BATCH: usize = 20;
/// Judge0's bounds on what Optimus accepts but does not enforce separately.
const MAX_CPU_EXTRA_TIME: f64 = 5.0;
const STACK_LIMIT_KB: u64 = 64_000;
const MAX_STACK_LIMIT_KB: u64 = 128_000;
const MAX_ARGUMENTS_LENGTH: usize = 512;

/// Judge0's error answers: 422 `{"field": ["message"]}`, or `{"error": "..."}`.
#[derive(Debug)]
pub enum Judge0Error {
    Fields(BTreeMap<String, Vec<String>>),
    Status(StatusCode, String),
    Api(ApiError),
}

impl From<ApiError> for Judge0Error {
    fn from(e: ApiError) -> Self {
        Judge0Error::Api(e)
    }
}

impl IntoResponse for Judge0Error {
    fn into_response(self) -> Response {
        match self {
            Judge0Error::Fields(errors) => (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(errors)).into_response(),
            Judge0Error::Status(status, error) => (status, axum::Json(json!({ "error": error }))).into_response(),
            Judge0Error::Api(ApiError::QueueFull { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({ "error": "queue is full" }))).into_response()
            }
            Judge0Error::Api(ApiError::BadBody { status, message, .. }) => {
                (status, axum::Json(json!({ "error": message }))).into_response()
            }
            Judge0Error::Api(e) => e.into_response(),
        }
    }
}

type Result<T> = std::result::Result<T, Judge0Error>;

pub async fn not_found(uri: Uri) -> Judge0Error {
    Judge0Error::Status(StatusCode::NOT_FOUND, format!("no Judge0 route {}", uri.path()))
}

pub async fn about() -> impl IntoResponse {
    axum::Json(json!({
        "version": VERSION,
        "homepage": null,
        "source_code": null,
        "maintainer": "Optimus, serving Judge0 CE 1.13.1's API",
    }))
}

/// The largest of a value over the languages Judge0 clients can use.
fn most<T: Ord + Default>(state: &AppState, f: impl Fn(&LanguageConfig) -> T) -> T {
    state.registry.languages().iter().filter(|l| !l.judge0_ids.is_empty()).map(f).max().unwrap_or_default()
}

/// Judge0's 39 settings, as Judge0 1.13.1 names them, describing Optimus's limits.
pub async fn config_info(State(state): State<AppState>) -> impl IntoResponse {
    let limits = &state.settings.limits;
    let max_cpu = limits.max_time_limit_ms as f64 / 1000.0;
    let cpu_default = most(&state, |l| l.time_limit_ms) as f64 / 1000.0;
    let pids = most(&state, |l| l.pids_limit);
    let output_kb = (limits.output_limit_bytes / 1024) as u64;
    axum::Json(json!({
        "maintenance_mode": false,
        "enable_wait_result": true,
        "enable_compiler_options": false,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": true,
        "enable_submission_delete": false,
        "enable_callbacks": state.api.callback_targets.enabled(),
        "callbacks_max_tries": crate::callbacks::MAX_TRIES,
        "callbacks_timeout": crate::callbacks::TIMEOUT.as_secs_f64(),
        "enable_additional_files": false,
        "max_queue_size": most(&state, |l| l.max_queue_depth),
        "cpu_time_limit": cpu_default,
        "max_cpu_time_limit": max_cpu,
        "cpu_extra_time": 0.0,
        "max_cpu_extra_time": MAX_CPU_EXTRA_TIME,
        "wall_time_limit": wall_cap_secs(cpu_default),
        "max_wall_time_limit": wall_cap_secs(max_cpu),
        "memory_limit": u64::from(most(&state, |l| l.memory_limit_mb)) * 1024,
        "max_memory_limit": u64::from(limits.max_memory_mb) * 1024,
        "stack_limit": STACK_LIMIT_KB,
        "max_stack_limit": MAX_STACK_LIMIT_KB,
        "max_processes_and_or_threads": pids,
        "max_max_processes_and_or_threads": pids,
        "enable_per_process_and_thread_time_limit": false,
        "allow_enable_per_process_and_thread_time_limit": false,
        "enable_per_process_and_thread_memory_limit": false,
        "allow_enable_per_process_and_thread_memory_limit": false,
        "max_file_size": output_kb,
        "max_max_file_size": output_kb,
        "number_of_runs": 1,
        "max_number_of_runs": 1,
        "redirect_stderr_to_stdout": false,
        "max_extract_size": 0,
        "enable_batched_submissions": true,
        "max_submission_batch_size": MAX_BATCH,
        "submission_cache_duration": 0.0,
        "use_docs_as_homepage": false,
        "allow_enable_network": false,
        "enable_network": false,
    }))
}

pub async fn statuses() -> impl IntoResponse {
    axum::Json(Status::ALL.iter().map(|s| s.json()).collect::<Vec<_>>())
}

/// Every Judge0 id of every language, by name as Judge0 orders them.
fn judge0_languages(state: &AppState) -> Vec<(u32, String, &LanguageConfig)> {
    let mut all: Vec<(u32, String, &LanguageConfig)> = state
        .registry
        .languages()
        .iter()
        .flat_map(|l| l.judge0_ids.iter().map(move |id| (*id, l.judge0_display_name(), l)))
        .collect();
    all.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    all
}

pub async fn languages(State(state): State<AppState>) -> impl IntoResponse {
    let list: Vec<Value> =
        judge0_languages(&state).into_iter().map(|(id, name, _)| json!({"id": id, "name": name})).collect();
    axum::Json(list)
}

pub async fn language(State(state): State<AppState>, Path(raw): Path<String>) -> Result<impl IntoResponse> {
    let found = raw.parse::<u32>().ok().and_then(|id| judge0_languages(&state).into_iter().find(|(i, _, _)| *i == id));
    let Some((id, name, lang)) = found else {
        return Err(Judge0Error::Status(StatusCode::NOT_FOUND, format!("language with id {raw} doesn't exist")));
    };
    Ok(axum::Json(json!({
        "id": id,
        "name": name,
        "is_archived": false,
        "source_file": lang.source_file,
        "compile_cmd": lang.compile_command,
        "run_cmd": lang.run_command,
    })))
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query.get(name).is_some_and(|v| v == "true")
}

fn fields_of(query: &HashMap<String, String>) -> Result<Vec<&'static str>> {
    parse_fields(query.get("fields").map(String::as_str)).map_err(|invalid| {
        Judge0Error::Status(StatusCode::BAD_REQUEST, format!("invalid fields: [{}]", invalid.join(", ")))
    })
}

/// `POST /submissions?base64_encoded=&wait=&fields=`: 201 `{"token"}`, or with
/// `wait=true` the finished submission's fields.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let fields = fields_of(&query)?;
    let base64 = flag(&query, "base64_encoded");
    let (req, sub) = parse_submission(&state, &body, base64).map_err(Judge0Error::Fields)?;
    let id = enqueue(&state, &caller, req, &sub).await?;
    if !flag(&query, "wait") {
        return Ok((StatusCode::CREATED, axum::Json(json!({ "token": id }))).into_response());
    }
    super::wait_for_end(&state, id, &caller, super::wait_budget(&state)).await?;
    let shown = show_one(&state, &caller, id, &fields, base64).await?.unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, axum::Json(shown)).into_response())
}

async fn enqueue(state: &AppState, caller: &Caller, req: JobRequest, sub: &Submission) -> Result<Uuid> {
    let origin = Origin { json: serde_json::to_string(sub).expect("serializes"), callback: sub.callback_url.is_some() };
    crate::routes::jobs::enqueue(state, caller, req, Some(&origin)).await.map_err(|e| match e {
        // What Optimus's own validation refuses (a source over the cap, say) is
        // still a 422 in Judge0's shape.
        ApiError::Invalid { code, message } => {
            let field = if code.starts_with("source") || code == "empty_source" { "source_code" } else { "base" };
            Judge0Error::Fields(BTreeMap::from([(field.to_string(), vec![message])]))
        }
        other => Judge0Error::Api(other),
    })
}

/// The fields of one submission of `caller`'s; `None` when there is none.
pub async fn show_one(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    fields: &[&str],
    base64: bool,
) -> std::result::Result<Option<Value>, ApiError> {
    let Some(record) = state.store.get(id, caller).await? else { return Ok(None) };
    let needs_spec = fields.iter().any(|f| matches!(*f, "source_code" | "stdin" | "expected_output"));
    let needs_origin = fields.iter().any(|f| !judge0_view::DEFAULT_FIELDS.contains(f));
    let origin = if needs_origin { state.store.origin(id, Some(caller)).await?.flatten() } else { None };
    // A job submitted through Optimus's own API has no origin: its limits come from its spec.
    let spec =
        if needs_spec || (needs_origin && origin.is_none()) { state.store.spec(id, caller).await? } else { None };
    let lang = state.registry.find(&record.language);
    let sub = origin.and_then(|o| serde_json::from_str::<Submission>(&o).ok()).unwrap_or_else(|| {
        // A job submitted through Optimus's own API: its limits, in Judge0's units.
        let spec = spec.as_ref();
        Submission {
            language_id: lang.and_then(|l| l.judge0_ids.first().copied()).unwrap_or(0),
            cpu_time_limit: spec.map_or(0.0, |s| s.time_limit_ms as f64 / 1000.0),
            wall_time_limit: spec.map_or(0.0, |s| wall_cap_secs(s.time_limit_ms as f64 / 1000.0)),
            memory_limit: spec.map_or(0, |s| u64::from(s.memory_limit_mb) * 1024),
            ..default_submission(state, lang)
        }
    });
    let name = lang.map(LanguageConfig::judge0_display_name).unwrap_or_else(|| record.language.clone());
    Ok(Some(render(&record, spec.as_ref(), &sub, &name, fields, base64)))
}

fn token(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw.trim()).ok()
}

pub async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(raw): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse> {
    let fields = fields_of(&query)?;
    let missing = || Judge0Error::Status(StatusCode::NOT_FOUND, format!("submission with token {raw} not found"));
    let id = token(&raw).ok_or_else(missing)?;
    let shown = show_one(&state, &caller, id, &fields, flag(&query, "base64_encoded")).await?.ok_or_else(missing)?;
    Ok(axum::Json(shown))
}

pub async fn destroy() -> Judge0Error {
    Judge0Error::Status(StatusCode::BAD_REQUEST, "delete not allowed".into())
}

/// `POST /submissions/batch`: each submission is queued or answered with its
/// errors, in order; 201 if any was queued, else 422.
pub async fn batch_create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Result<impl IntoResponse> {
    let base64 = flag(&query, "base64_encoded");
    let items = body.get("submissions").and_then(Value::as_array).cloned().unwrap_or_default();
    batch_size(items.len())?;
    let mut answers = Vec::with_capacity(items.len());
    let mut any = false;
    for item in &items {
        let answer = match parse_submission(&state, item, base64) {
            Err(errors) => json!(errors),
            Ok((req, sub)) => match enqueue(&state, &caller, req, &sub).await {
                Ok(id) => {
                    any = true;
                    json!({ "token": id })
                }
                Err(Judge0Error::Fields(errors)) => json!(errors),
                Err(other) => return Err(other),
            },
        };
        answers.push(answer);
    }
    let status = if any { StatusCode::CREATED } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, axum::Json(answers)))
}

fn batch_size(n: usize) -> Result<()> {
    if n > MAX_BATCH {
        return Err(Judge0Error::Status(
            StatusCode::BAD_REQUEST,
            format!("number of submissions in a batch should be less than or equal to {MAX_BATCH}"),
        ));
    }
    if n == 0 {
        return Err(Judge0Error::Status(
            StatusCode::BAD_REQUEST,
            "there should be at least one submission in a batch".into(),
        ));
    }
    Ok(())
}

/// `GET /submissions/batch?tokens=a,b`: `{"submissions": [...]}` in token order,
/// `null` for a token that is not the caller's submission.
pub async fn batch_show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse> {
    let fields = fields_of(&query)?;
    let base64 = flag(&query, "base64_encoded");
    let raw = headers
        .get("tokens")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| query.get("tokens").cloned());
    let tokens: Vec<String> =
        raw.unwrap_or_default().split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
    batch_size(tokens.len())?;
    let mut shown = Vec::with_capacity(tokens.len());
    for raw in &tokens {
        let one = match token(raw) {
            Some(id) => show_one(&state, &caller, id, &fields, base64).await?,
            None => None,
        };
        shown.push(one.unwrap_or(Value::Null));
    }
    Ok(axum::Json(json!({ "submissions": shown })))
}

/// Judge0's defaults for a language: what a submission gets for what it leaves out.
fn default_submission(state: &AppState, lang: Option<&LanguageConfig>) -> Submission {
    let cpu = lang.map_or(5.0, |l| l.time_limit_ms as f64 / 1000.0);
    Submission {
        language_id: lang.and_then(|l| l.judge0_ids.first().copied()).unwrap_or(0),
        number_of_runs: 1,
        cpu_time_limit: cpu,
        cpu_extra_time: 0.0,
        wall_time_limit: wall_cap_secs(cpu),
        memory_limit: lang.map_or(0, |l| u64::from(l.memory_limit_mb) * 1024),
        stack_limit: STACK_LIMIT_KB,
        max_processes_and_or_threads: lang.map_or(0, |l| l.pids_limit.max(0) as u64),
        enable_per_process_and_thread_time_limit: false,
        enable_per_process_and_thread_memory_limit: false,
        max_file_size: (state.settings.limits.output_limit_bytes / 1024) as u64,
        compiler_options: None,
        command_line_arguments: None,
        redirect_stderr_to_stdout: false,
        callback_url: None,
        enable_network: false,
    }
}

/// Collects Judge0's validation messages, field by field.
#[derive(Default)]
struct Errors(BTreeMap<String, Vec<String>>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_string()).or_default().push(message.into());
    }

    /// A number, given as a JSON number or a numeric string (Rails takes both).
    fn number(&mut self, body: &Value, field: &str) -> Option<f64> {
        match body.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()).or_else(|| {
                self.add(field, "is not a number");
                None
            }),
            Some(_) => {
                self.add(field, "is not a number");
                None
            }
        }
    }

    /// A number within `[min, max]` (`min_exclusive`: above `min`), or the default.
    fn bounded(&mut self, body: &Value, field: &str, min: f64, min_exclusive: bool, max: f64, default: f64) -> f64 {
        let Some(x) = self.number(body, field) else { return default };
        if min_exclusive && x <= min {
            self.add(field, format!("must be greater than {}", trim_number(min)));
        } else if !min_exclusive && x < min {
            self.add(field, format!("must be greater than or equal to {}", trim_number(min)));
        } else if x > max {
            self.add(field, format!("must be less than or equal to {}", trim_number(max)));
        }
        x
    }

    fn flag(&mut self, body: &Value, field: &str) -> bool {
        match body.get(field) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        }
    }

    fn text(&mut self, body: &Value, field: &str, base64: bool) -> Option<String> {
        match body.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if base64 => {
                let decoded = judge0_view::decode(s);
                if decoded.is_none() {
                    self.add(field, "is not valid base64 (base64_encoded=true)");
                }
                decoded
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.add(field, "must be a string");
                None
            }
        }
    }
}

fn trim_number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A Judge0 submission as an Optimus job request, with what Judge0 keeps of it;
/// or every field's errors.
pub fn parse_submission(
    state: &AppState,
    body: &Value,
    base64: bool,
) -> std::result::Result<(JobRequest, Submission), BTreeMap<String, Vec<String>>> {
    let mut e = Errors::default();
    if !body.is_object() {
        e.add("base", "a submission is a JSON object");
        return Err(e.0);
    }
    let limits = &state.settings.limits;
    let source_code = e.text(body, "source_code", base64).filter(|s| !s.trim().is_empty());
    if source_code.is_none() && !e.0.contains_key("source_code") {
        e.add("source_code", "can't be blank");
    }
    let (language_id, lang) = match e.number(body, "language_id") {
        None if !e.0.contains_key("language_id") => {
            e.add("language_id", "can't be blank");
            (0, None)
        }
        None => (0, None),
        Some(id) => {
            let id = (id.fract() == 0.0 && id > 0.0 && id <= f64::from(u32::MAX)).then_some(id as u32).ok_or(id);
            let found = id.ok().and_then(|id| state.registry.find_judge0(id));
            if found.is_none() {
                let shown = id.map_or_else(trim_number, |id| id.to_string());
                e.add("language_id", format!("language with id {shown} doesn't exist"));
            }
            (id.unwrap_or(0), found)
        }
    };
    let d = default_submission(state, lang);
    let stdin = e.text(body, "stdin", base64);
    let expected_output = e.text(body, "expected_output", base64);
    let max_cpu = limits.max_time_limit_ms as f64 / 1000.0;
    let number_of_runs = e.bounded(body, "number_of_runs", 0.0, true, 1.0, 1.0);
    let cpu_time_limit =
        e.bounded(body, "cpu_time_limit", MIN_TIMEOUT_MS as f64 / 1000.0, false, max_cpu, d.cpu_time_limit);
    let cpu_extra_time = e.bounded(body, "cpu_extra_time", 0.0, false, MAX_CPU_EXTRA_TIME, 0.0);
    let wall_time_limit =
        e.bounded(body, "wall_time_limit", 1.0, false, wall_cap_secs(max_cpu), wall_cap_secs(cpu_time_limit));
    let memory_limit = e.bounded(
        body,
        "memory_limit",
        f64::from(MIN_MEMORY_MB * 1024),
        false,
        f64::from(limits.max_memory_mb) * 1024.0,
        d.memory_limit as f64,
    );
    let stack_limit = e.bounded(body, "stack_limit", 0.0, false, MAX_STACK_LIMIT_KB as f64, STACK_LIMIT_KB as f64);
    let max_pids = most(state, |l| l.pids_limit) as f64;
    let max_processes =
        e.bounded(body, "max_processes_and_or_threads", 0.0, true, max_pids, d.max_processes_and_or_threads as f64);
    let max_file_size = e.bounded(body, "max_file_size", 0.0, false, d.max_file_size as f64, d.max_file_size as f64);
    for field in ["enable_per_process_and_thread_time_limit", "enable_per_process_and_thread_memory_limit"] {
        if e.flag(body, field) {
            e.add(field, "this option cannot be enabled");
        }
    }
    let compiler_options = e.text(body, "compiler_options", false).filter(|s| !s.trim().is_empty());
    if compiler_options.is_some() {
        e.add("compiler_options", "setting compiler options is not allowed");
    }
    if e.text(body, "additional_files", false).is_some_and(|s| !s.trim().is_empty()) {
        e.add("additional_files", "setting additional files is not allowed");
    }
    if e.flag(body, "enable_network") {
        e.add("enable_network", "enabling network is not allowed");
    }
    if e.flag(body, "redirect_stderr_to_stdout") {
        e.add("redirect_stderr_to_stdout", "is not supported here: stdout and stderr are always kept apart");
    }
    let arguments = e.text(body, "command_line_arguments", false).filter(|s| !s.trim().is_empty());
    if arguments.as_ref().is_some_and(|a| a.chars().count() > MAX_ARGUMENTS_LENGTH) {
        e.add("command_line_arguments", format!("is too long (maximum is {MAX_ARGUMENTS_LENGTH} characters)"));
    }
    let callback_url = e.text(body, "callback_url", false).filter(|s| !s.trim().is_empty());
    if let Some(url) = &callback_url {
        if !state.api.callback_targets.enabled() {
            e.add("callback_url", "setting callback is not allowed");
        } else if let Err(why) = crate::callbacks::check_url(url) {
            e.add("callback_url", why);
        }
    }
    let (Some(source_code), Some(lang), true) = (source_code, lang, e.0.is_empty()) else { return Err(e.0) };
    let args = arguments.as_deref().map(split_arguments).unwrap_or_default();
    let req = JobRequest {
        language: lang.name.clone(),
        source_code,
        test_cases: Some(vec![TestCaseRequest {
            id: Some(1),
            input: stdin.unwrap_or_default(),
            expected_output,
            weight: None,
            compare: None,
        }]),
        timeout_ms: Some((cpu_time_limit * 1000.0).round() as u64),
        memory_limit_mb: Some((memory_limit / 1024.0).ceil() as u32),
        mode: Default::default(),
        compare: Some(json!("trim")),
        checker: None,
        solution_code: None,
        solution_language: None,
        harness: None,
        args: Some(args),
        files: None,
    };
    let sub = Submission {
        language_id,
        number_of_runs: number_of_runs.ceil() as u32,
        cpu_time_limit,
        cpu_extra_time,
        wall_time_limit,
        memory_limit: memory_limit as u64,
        stack_limit: stack_limit as u64,
        max_processes_and_or_threads: max_processes as u64,
        enable_per_process_and_thread_time_limit: false,
        enable_per_process_and_thread_memory_limit: false,
        max_file_size: max_file_size as u64,
        compiler_options: None,
        command_line_arguments: arguments,
        redirect_stderr_to_stdout: false,
        callback_url,
        enable_network: false,
    };
    Ok((req, sub))
}

/// `command_line_arguments` as the program's argv: Judge0 drops `$&;<>|` and
/// backquotes, then bash splits the rest into words (quotes group, a backslash
/// escapes); so does this, without a shell.
pub fn split_arguments(raw: &str) -> Vec<String> {
    let cleaned: String = raw.trim().chars().filter(|c| !"$&;<>|`".contains(*c)).collect();
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = cleaned.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    current.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\')) => current.push(n),
                            Some(n) => {
                                current.push('\\');
                                current.push(n);
                            }
                            None => current.push('\\'),
                        },
                        _ => current.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    args.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        args.push(current);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::split_arguments;

    #[test]
    fn arguments_split_like_bash_words_after_judge0s_filter() {
        assert_eq!(split_arguments("a b  c"), vec!["a", "b", "c"]);
        assert_eq!(split_arguments(r#"'two words' "and \"more\"" x\ y"#), vec!["two words", "and \"more\"", "x y"]);
        assert_eq!(split_arguments("a; rm -rf / | cat > f"), vec!["a", "rm", "-rf", "/", "cat", "f"]);
        assert_eq!(split_arguments("''"), vec![""]);
        assert!(split_arguments("   ").is_empty());
    }
}
