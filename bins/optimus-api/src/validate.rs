//! The edge: a raw `POST /jobs` body becomes a [`JobSpec`] here or is refused with
//! a message that says what is accepted. Nothing unchecked gets past this module.

use std::collections::HashSet;

use optimus_common::settings::{Limits, MIN_MEMORY_MB, MIN_TIMEOUT_MS};
use optimus_common::{
    Compare, Harness, JobSpec, LanguageConfig, LanguageRegistry, Mode, Program, SourceFile, TestCase,
};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;

/// `POST /jobs` as sent. Unknown fields are refused, so a misspelt option never
/// silently falls back to its default.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    pub language: String,
    pub source_code: String,
    #[serde(default)]
    pub test_cases: Option<Vec<TestCaseRequest>>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub memory_limit_mb: Option<u32>,
    #[serde(default)]
    pub mode: Mode,
    /// A rule name or `{"type": ..., options}`; parsed by [`parse_compare`] so that
    /// a wrong one gets a message naming what is accepted.
    #[serde(default)]
    pub compare: Option<Value>,
    #[serde(default)]
    pub checker: Option<ProgramRequest>,
    #[serde(default)]
    pub solution_code: Option<String>,
    /// Defaults to the job's language.
    #[serde(default)]
    pub solution_language: Option<String>,
    #[serde(default)]
    pub harness: Option<Harness>,
    /// Command-line arguments of the program, on every test.
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// More files beside the main source.
    #[serde(default)]
    pub files: Option<Vec<FileRequest>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRequest {
    pub name: String,
    pub content: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramRequest {
    pub language: String,
    pub source_code: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCaseRequest {
    /// Defaults to the test's position, from 1.
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub input: String,
    #[serde(default)]
    pub expected_output: Option<String>,
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub compare: Option<Value>,
}

/// The most arguments a program gets, and the longest one (bytes).
pub const MAX_ARGS: usize = 64;
pub const MAX_ARG_BYTES: usize = 4096;
/// The most extra files a job carries beside its main source.
pub const MAX_FILES: usize = 16;
/// The longest extra file name.
const MAX_FILE_NAME: usize = 100;

/// The most a single test may weigh; keeps scores far from overflow.
const MAX_WEIGHT: u32 = 1_000_000;

/// Checks a request against the registry and the limits; returns the spec and its
/// language's config.
pub fn validate<'r>(
    req: JobRequest,
    registry: &'r LanguageRegistry,
    limits: &Limits,
) -> Result<(JobSpec, &'r LanguageConfig), ApiError> {
    let lang = language(registry, &req.language, "language")?;
    check_source(&req.source_code, "source_code", limits)?;

    // The request's `timeout_ms` is the CPU-time limit: `time_limit_ms` from here on.
    let time_limit_ms = req.timeout_ms.unwrap_or(lang.time_limit_ms);
    if !(MIN_TIMEOUT_MS..=limits.max_time_limit_ms).contains(&time_limit_ms) {
        return Err(ApiError::invalid(
            "limit_out_of_range",
            format!(
                "timeout_ms is {time_limit_ms}; accepted: {MIN_TIMEOUT_MS} to {} (per test)",
                limits.max_time_limit_ms
            ),
        ));
    }
    let memory_limit_mb = req.memory_limit_mb.unwrap_or(lang.memory_limit_mb);
    if !(MIN_MEMORY_MB..=limits.max_memory_mb).contains(&memory_limit_mb) {
        return Err(ApiError::invalid(
            "limit_out_of_range",
            format!("memory_limit_mb is {memory_limit_mb}; accepted: {MIN_MEMORY_MB} to {}", limits.max_memory_mb),
        ));
    }

    let test_cases = match req.test_cases {
        None => vec![TestCase { id: 1, input: String::new(), expected_output: None, weight: 1, compare: None }],
        Some(tests) => validate_tests(tests, limits)?,
    };
    let compare = req.compare.map(|v| parse_compare(v, "compare")).transpose()?;

    let checker = match req.checker {
        None => None,
        Some(c) => {
            let checker_lang = language(registry, &c.language, "checker.language")?;
            check_source(&c.source_code, "checker.source_code", limits)?;
            Some(Program { language: checker_lang.name.clone(), source_code: c.source_code })
        }
    };
    let solution = match (req.solution_code, req.solution_language) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "incompatible_options",
                "solution_language is set but solution_code is not; send the reference solution's source",
            ))
        }
        (Some(code), language_name) => {
            let solution_lang = match language_name {
                Some(name) => language(registry, &name, "solution_language")?,
                None => lang,
            };
            check_source(&code, "solution_code", limits)?;
            Some(Program { language: solution_lang.name.clone(), source_code: code })
        }
    };

    let args = req.args.unwrap_or_default();
    check_args(&args)?;
    let files = req.files.unwrap_or_default();
    let taken: Vec<&str> =
        std::iter::once(lang.source_file.as_str()).chain(req.harness.map(Harness::submission_file)).collect();
    check_files(&files, &taken, limits)?;

    let spec = JobSpec {
        language: lang.name.clone(),
        source_code: req.source_code,
        test_cases,
        time_limit_ms,
        memory_limit_mb,
        mode: req.mode,
        compare: compare.unwrap_or_default(),
        checker,
        solution,
        harness: req.harness,
        args,
        files: files.into_iter().map(|f| SourceFile { name: f.name, content: f.content }).collect(),
    };
    check_options(&spec, compare.is_some())?;
    Ok((spec, lang))
}

fn incompatible(message: impl Into<String>) -> ApiError {
    ApiError::invalid("incompatible_options", message)
}

/// The judging options that cannot go together, refused with what to change.
fn check_options(spec: &JobSpec, job_compare: bool) -> Result<(), ApiError> {
    let test_compare = spec.test_cases.iter().find(|t| t.compare.is_some()).map(|t| t.id);
    let any_compare = job_compare || test_compare.is_some();
    if spec.mode == Mode::Custom {
        let judging = [
            (any_compare, "compare"),
            (spec.checker.is_some(), "checker"),
            (spec.solution.is_some(), "solution_code"),
            (spec.harness.is_some(), "harness"),
            (spec.test_cases.iter().any(|t| t.expected_output.is_some()), "expected_output"),
        ];
        if let Some((_, field)) = judging.iter().find(|(set, _)| *set) {
            return Err(incompatible(format!(
                "mode 'custom' runs the program without judging it, so {field} has no use; \
                 leave it out, or use mode 'run' or 'submit'"
            )));
        }
    }
    if spec.checker.is_some() && any_compare {
        return Err(incompatible(
            "a checker decides every test, so compare has no use beside it; send one or the other",
        ));
    }
    if let Some(Harness::PythonCall) = spec.harness {
        if spec.language != "python" {
            return Err(incompatible(format!(
                "harness 'python_call' calls Python functions; the job's language is '{}'; use language 'python'",
                spec.language
            )));
        }
        match &spec.solution {
            None => {
                return Err(incompatible(
                    "harness 'python_call' compares each call's value with the reference solution's; \
                     send solution_code",
                ))
            }
            Some(s) if s.language != "python" => {
                return Err(incompatible(format!(
                    "harness 'python_call' needs a Python reference solution; solution_language is '{}'",
                    s.language
                )))
            }
            Some(_) => {}
        }
        if spec.checker.is_some() {
            return Err(incompatible("harness 'python_call' compares values itself; leave out checker"));
        }
        if let Some(t) = spec.test_cases.iter().find(|t| t.expected_output.is_some()) {
            return Err(incompatible(format!(
                "test {}: with harness 'python_call' the expected value comes from solution_code; \
                 leave out expected_output",
                t.id
            )));
        }
        if let Some(t) = spec.test_cases.iter().find(|t| t.input.trim().is_empty()) {
            return Err(incompatible(format!(
                "test {}: with harness 'python_call' each input is a call such as \"add(1, 2)\"; this one is empty",
                t.id
            )));
        }
        let rules = std::iter::once(spec.compare).chain(spec.test_cases.iter().filter_map(|t| t.compare));
        if rules.into_iter().any(|c| !matches!(c, Compare::Trim | Compare::Float { .. })) {
            return Err(incompatible(
                "harness 'python_call' compares values structurally; the only compare it takes is 'float' \
                 (number tolerances)",
            ));
        }
    }
    Ok(())
}

/// The language a name or one of its aliases (`py`, `c++`) means.
fn language<'r>(registry: &'r LanguageRegistry, name: &str, field: &str) -> Result<&'r LanguageConfig, ApiError> {
    registry.find_alias(name).ok_or_else(|| {
        ApiError::invalid(
            "unknown_language",
            format!("{field}: language '{name}' is not available; available: {}", registry.names()),
        )
    })
}

fn check_args(args: &[String]) -> Result<(), ApiError> {
    let bad = |message: String| Err(ApiError::invalid("invalid_args", message));
    if args.len() > MAX_ARGS {
        return bad(format!("args has {} arguments; the most accepted is {MAX_ARGS}", args.len()));
    }
    for (i, arg) in args.iter().enumerate() {
        if arg.len() > MAX_ARG_BYTES {
            return bad(format!("args[{i}] is {} bytes; the most accepted is {MAX_ARG_BYTES}", arg.len()));
        }
        if arg.contains('\0') {
            return bad(format!("args[{i}] holds a NUL byte, which no argument can carry"));
        }
    }
    Ok(())
}

/// Extra files: plain names (letters, digits, `.`, `_`, `-`; not starting with a
/// dot), none named like the job's own files (`taken`) or like another, each
/// within the source cap.
fn check_files(files: &[FileRequest], taken: &[&str], limits: &Limits) -> Result<(), ApiError> {
    let bad = |message: String| Err(ApiError::invalid("invalid_files", message));
    if files.len() > MAX_FILES {
        return bad(format!("files has {} files; the most accepted is {MAX_FILES}", files.len()));
    }
    let mut seen = HashSet::new();
    for (i, file) in files.iter().enumerate() {
        let name = &file.name;
        let plain = !name.is_empty()
            && name.len() <= MAX_FILE_NAME
            && !name.starts_with('.')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !plain {
            return bad(format!(
                "files[{i}].name {name:?} is not a plain file name: use 1 to {MAX_FILE_NAME} letters, digits, \
                 '.', '_' or '-', not starting with '.'"
            ));
        }
        if taken.contains(&name.as_str()) {
            return bad(format!(
                "files[{i}].name {name:?} is the name of the job's own source ({}); the main source is source_code",
                taken.join(", ")
            ));
        }
        if !seen.insert(name.as_str()) {
            return bad(format!("files[{i}].name {name:?} is given twice"));
        }
        if file.content.len() > limits.max_source_bytes {
            return bad(format!(
                "files[{i}] ({name}) is {} bytes; the most accepted is {} bytes",
                file.content.len(),
                limits.max_source_bytes
            ));
        }
    }
    Ok(())
}

fn check_source(source: &str, field: &str, limits: &Limits) -> Result<(), ApiError> {
    if source.trim().is_empty() {
        return Err(ApiError::invalid("empty_source", format!("{field} is empty; send the program's source text")));
    }
    if source.len() > limits.max_source_bytes {
        return Err(ApiError::invalid(
            "source_too_large",
            format!("{field} is {} bytes; the most accepted is {} bytes", source.len(), limits.max_source_bytes),
        ));
    }
    Ok(())
}

/// `"tokens"`, or `{"type": "float", "abs_tol": 1e-6, "rel_tol": 1e-9}`.
pub fn parse_compare(value: Value, field: &str) -> Result<Compare, ApiError> {
    let bad = |what: String| {
        ApiError::invalid(
            "invalid_compare",
            format!(
                "{field}: {what}; send one of {} as a string, or an object such as \
                 {{\"type\": \"float\", \"abs_tol\": 1e-6, \"rel_tol\": 1e-9}}",
                Compare::NAMES.map(|n| format!("\"{n}\"")).join(", ")
            ),
        )
    };
    let (name, mut options) = match value {
        Value::String(name) => (name, serde_json::Map::new()),
        Value::Object(mut map) => match map.remove("type") {
            Some(Value::String(name)) => (name, map),
            _ => return Err(bad("the object has no \"type\" string".into())),
        },
        other => return Err(bad(format!("{other} is neither a rule name nor an object"))),
    };
    let mut tolerance = |key: &str, default: f64| match options.remove(key) {
        None => Ok(default),
        Some(v) => match v.as_f64() {
            Some(t) if t.is_finite() && t >= 0.0 => Ok(t),
            _ => Err(bad(format!("{key} is {v}; it must be a number, 0 or more"))),
        },
    };
    let rule = match name.as_str() {
        "exact" => Compare::Exact,
        "trim" => Compare::Trim,
        "tokens" => Compare::Tokens,
        "float" => Compare::Float {
            abs_tol: tolerance("abs_tol", Compare::DEFAULT_ABS_TOL)?,
            rel_tol: tolerance("rel_tol", Compare::DEFAULT_REL_TOL)?,
        },
        "case_insensitive" => Compare::CaseInsensitive,
        "unordered_lines" => Compare::UnorderedLines,
        other => return Err(bad(format!("'{other}' is not a comparison rule"))),
    };
    if let Some(key) = options.keys().next() {
        return Err(bad(format!("'{name}' takes no option '{key}'")));
    }
    Ok(rule)
}

fn validate_tests(tests: Vec<TestCaseRequest>, limits: &Limits) -> Result<Vec<TestCase>, ApiError> {
    if tests.is_empty() {
        return Err(ApiError::invalid(
            "no_tests",
            "test_cases is empty; send at least one test, or leave the field out to run the program once",
        ));
    }
    if tests.len() > limits.max_tests {
        return Err(ApiError::invalid(
            "too_many_tests",
            format!("{} test cases sent; the most accepted is {}", tests.len(), limits.max_tests),
        ));
    }
    let mut seen = HashSet::new();
    tests
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let id = t.id.unwrap_or(i as u64 + 1);
            if !seen.insert(id) {
                return Err(ApiError::invalid(
                    "duplicate_test_id",
                    format!("test id {id} is used twice; ids must be unique"),
                ));
            }
            let too_big = |field: &str, len: usize| {
                ApiError::invalid(
                    "test_too_large",
                    format!("test {id}: {field} is {len} bytes; the most accepted is {} bytes", limits.max_test_bytes),
                )
            };
            if t.input.len() > limits.max_test_bytes {
                return Err(too_big("input", t.input.len()));
            }
            if let Some(expected) = &t.expected_output {
                if expected.len() > limits.max_test_bytes {
                    return Err(too_big("expected_output", expected.len()));
                }
            }
            let weight = t.weight.unwrap_or(1);
            if weight > MAX_WEIGHT {
                return Err(ApiError::invalid(
                    "limit_out_of_range",
                    format!("test {id}: weight is {weight}; accepted: 0 to {MAX_WEIGHT}"),
                ));
            }
            let compare = t.compare.map(|v| parse_compare(v, &format!("test {id}: compare"))).transpose()?;
            Ok(TestCase { id, input: t.input, expected_output: t.expected_output, weight, compare })
        })
        .collect()
}
