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
use optimus_common::store::{Caller, Notify, Origin};
use optimus_common::{LanguageConfig, LanguageRegistry};
use serde_json::{json, Value};
use uuid::Uuid;

pub mod address;
pub mod callbacks;
mod request;
pub mod view;

use self::request::{default_submission, MAX_CPU_EXTRA_TIME, MAX_STACK_LIMIT_KB, STACK_LIMIT_KB};
pub use self::request::{parse_submission, split_arguments};
use self::view::{parse_fields, render, Status, Submission, VERSION};
use crate::error::ApiError;
use crate::extract::Json;
use crate::validate::{Draft, Part};
use crate::AppState;

/// The most submissions a batch holds (Judge0's default).
pub const MAX_BATCH: usize = 20;
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
pub(super) fn most<T: Ord + Default>(registry: &LanguageRegistry, f: impl Fn(&LanguageConfig) -> T) -> T {
    registry.languages().iter().filter(|l| !l.judge0_ids.is_empty()).map(f).max().unwrap_or_default()
}

/// Judge0's 39 settings, as Judge0 1.13.1 names them, describing Optimus's limits.
pub async fn config_info(State(state): State<AppState>) -> impl IntoResponse {
    let limits = &state.settings.limits;
    let max_cpu = limits.max_time_limit_ms as f64 / 1000.0;
    let cpu_default = most(&state.registry, |l| l.time_limit_ms) as f64 / 1000.0;
    let pids = most(&state.registry, |l| l.pids_limit);
    let output_kb = (limits.output_limit_bytes / 1024) as u64;
    axum::Json(json!({
        "maintenance_mode": false,
        "enable_wait_result": true,
        "enable_compiler_options": false,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": true,
        "enable_submission_delete": false,
        "enable_callbacks": state.api.callback_targets.enabled(),
        "callbacks_max_tries": callbacks::MAX_TRIES,
        "callbacks_timeout": callbacks::TIMEOUT.as_secs_f64(),
        "enable_additional_files": false,
        "max_queue_size": most(&state.registry, |l| l.max_queue_depth),
        "cpu_time_limit": cpu_default,
        "max_cpu_time_limit": max_cpu,
        "cpu_extra_time": 0.0,
        "max_cpu_extra_time": MAX_CPU_EXTRA_TIME,
        "wall_time_limit": wall_cap_secs(cpu_default),
        "max_wall_time_limit": wall_cap_secs(max_cpu),
        "memory_limit": u64::from(most(&state.registry, |l| l.memory_limit_mb)) * 1024,
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
    let (draft, sub) = parse_submission(state.rules(), &body, base64).map_err(Judge0Error::Fields)?;
    let id = enqueue(&state, &caller, draft, &sub).await?;
    if !flag(&query, "wait") {
        return Ok((StatusCode::CREATED, axum::Json(json!({ "token": id }))).into_response());
    }
    super::wait_for_end(&state, id, &caller, super::wait_budget(&state)).await?;
    let shown = show_one(&state, &caller, id, &fields, base64).await?.unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, axum::Json(shown)).into_response())
}

async fn enqueue(state: &AppState, caller: &Caller, draft: Draft<'_>, sub: &Submission) -> Result<Uuid> {
    let lang = draft.lang;
    // What Optimus's own bounds refuse (a source over the cap, say) is still a 422
    // in Judge0's shape, on the field it is about.
    let spec = crate::routes::jobs::accept(state, draft).map_err(|refused| {
        let field = if refused.part == Part::Source { "source_code" } else { "base" };
        Judge0Error::Fields(BTreeMap::from([(field.to_string(), vec![refused.message])]))
    })?;
    let origin = Origin {
        json: serde_json::to_string(sub).expect("serializes"),
        notify: sub.callback_url.is_some().then_some(Notify::Callback),
    };
    Ok(crate::routes::jobs::queue(state, caller, spec, lang, Some(&origin)).await?)
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
    let needs_origin = fields.iter().any(|f| !view::DEFAULT_FIELDS.contains(f));
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
            ..default_submission(state.rules(), lang)
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
        let answer = match parse_submission(state.rules(), item, base64) {
            Err(errors) => json!(errors),
            Ok((draft, sub)) => match enqueue(&state, &caller, draft, &sub).await {
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
