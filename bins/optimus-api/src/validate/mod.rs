//! The edge: every job, whichever API it came in through, becomes a [`JobSpec`]
//! here or is refused with a message that says what is accepted. Nothing
//! unchecked gets past this module.
//!
//! Two steps. A request becomes a typed [`Draft`]: Optimus's own JSON through
//! [`request::draft`] (its language names resolved, its comparison rules parsed),
//! and the compatible APIs build theirs directly from what they parsed in their
//! own terms. Then [`accept`] checks every draft alike against the limits (sizes,
//! counts, time and memory, names, the options that cannot go together). A
//! refusal is typed ([`Refused`]): its code, its message and the [`Part`] of the
//! job it is about, so that an API that names fields maps it without reading codes.

mod checks;
pub mod request;

use optimus_common::settings::{Limits, MIN_MEMORY_MB, MIN_TIMEOUT_MS};
use optimus_common::{
    Compare, Harness, JobSpec, LanguageConfig, LanguageRegistry, Mode, Program, Settings, SourceFile, TestCase,
};

pub use self::checks::{MAX_ARGS, MAX_ARG_BYTES, MAX_FILES};
pub use self::request::{parse_compare, FileRequest, JobRequest, ProgramRequest, TestCaseRequest};
use crate::error::ApiError;
use crate::ApiConfig;

/// What reading and checking a request needs, borrowed from the running API: its
/// languages, its limits and its own settings (where Judge0 callbacks may go).
/// No connection and no I/O, so every parser of every API runs without a server,
/// as the fuzz targets (`tests/fuzz`) run them.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'s> {
    pub registry: &'s LanguageRegistry,
    pub settings: &'s Settings,
    pub api: &'s ApiConfig,
}

/// A job as an API understood it, before its bounds are checked.
#[derive(Debug, Clone)]
pub struct Draft<'r> {
    pub lang: &'r LanguageConfig,
    pub source_code: String,
    /// `None`: the program runs once, with no input, and is not judged on output.
    pub tests: Option<Vec<TestDraft>>,
    /// The CPU-time limit of each test (`None`: the language's).
    pub time_limit_ms: Option<u64>,
    /// `None`: the language's.
    pub memory_limit_mb: Option<u32>,
    pub mode: Mode,
    /// `None`: the default rule, and no rule given (which some options care about).
    pub compare: Option<Compare>,
    pub checker: Option<(&'r LanguageConfig, String)>,
    pub solution: Option<(&'r LanguageConfig, String)>,
    pub harness: Option<Harness>,
    pub args: Vec<String>,
    pub files: Vec<SourceFile>,
}

/// One test of a [`Draft`].
#[derive(Debug, Clone)]
pub struct TestDraft {
    pub id: u64,
    pub input: String,
    pub expected_output: Option<String>,
    /// `None`: 1.
    pub weight: Option<u32>,
    pub compare: Option<Compare>,
}

/// What part of a job a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Language,
    /// The program's own source (not a checker's or a solution's).
    Source,
    Limits,
    Tests,
    Options,
    Args,
    Files,
}

/// Why a draft is refused: a 422 with `code` and `message` in Optimus's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub part: Part,
    pub code: &'static str,
    pub message: String,
}

impl Refused {
    pub fn new(part: Part, code: &'static str, message: impl Into<String>) -> Self {
        Refused { part, code, message: message.into() }
    }

    fn incompatible(message: impl Into<String>) -> Self {
        Refused::new(Part::Options, "incompatible_options", message)
    }
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        ApiError::invalid(r.code, r.message)
    }
}

/// The most a single test may weigh; keeps scores far from overflow.
const MAX_WEIGHT: u32 = 1_000_000;

/// Checks a draft, from any API, against the limits: the one gate to a [`JobSpec`].
pub fn accept(draft: Draft<'_>, limits: &Limits) -> Result<JobSpec, Refused> {
    let lang = draft.lang;
    checks::check_source(&draft.source_code, "source_code", limits)?;
    // The request's `timeout_ms` is the CPU-time limit: `time_limit_ms` from here on.
    let time_limit_ms = draft.time_limit_ms.unwrap_or(lang.time_limit_ms);
    if !(MIN_TIMEOUT_MS..=limits.max_time_limit_ms).contains(&time_limit_ms) {
        return Err(Refused::new(
            Part::Limits,
            "limit_out_of_range",
            format!(
                "timeout_ms is {time_limit_ms}; accepted: {MIN_TIMEOUT_MS} to {} (per test)",
                limits.max_time_limit_ms
            ),
        ));
    }
    let memory_limit_mb = draft.memory_limit_mb.unwrap_or(lang.memory_limit_mb);
    if !(MIN_MEMORY_MB..=limits.max_memory_mb).contains(&memory_limit_mb) {
        return Err(Refused::new(
            Part::Limits,
            "limit_out_of_range",
            format!("memory_limit_mb is {memory_limit_mb}; accepted: {MIN_MEMORY_MB} to {}", limits.max_memory_mb),
        ));
    }
    let test_cases = match draft.tests {
        None => vec![TestCase { id: 1, input: String::new(), expected_output: None, weight: 1, compare: None }],
        Some(tests) => accept_tests(tests, limits)?,
    };
    let program = |role: &(&LanguageConfig, String), field: &str| {
        checks::check_source(&role.1, field, limits)
            .map(|()| Program { language: role.0.name.clone(), source_code: role.1.clone() })
    };
    let checker = draft.checker.as_ref().map(|c| program(c, "checker.source_code")).transpose()?;
    let solution = draft.solution.as_ref().map(|s| program(s, "solution_code")).transpose()?;
    checks::check_args(&draft.args)?;
    let taken: Vec<&str> =
        std::iter::once(lang.source_file.as_str()).chain(draft.harness.map(Harness::submission_file)).collect();
    checks::check_files(&draft.files, &taken, limits)?;
    let spec = JobSpec {
        language: lang.name.clone(),
        source_code: draft.source_code,
        test_cases,
        time_limit_ms,
        memory_limit_mb,
        mode: draft.mode,
        compare: draft.compare.unwrap_or_default(),
        checker,
        solution,
        harness: draft.harness,
        args: draft.args,
        files: draft.files,
    };
    checks::check_options(&spec, draft.compare.is_some())?;
    Ok(spec)
}

fn accept_tests(tests: Vec<TestDraft>, limits: &Limits) -> Result<Vec<TestCase>, Refused> {
    if tests.is_empty() {
        return Err(Refused::new(
            Part::Tests,
            "no_tests",
            "test_cases is empty; send at least one test, or leave the field out to run the program once",
        ));
    }
    if tests.len() > limits.max_tests {
        return Err(Refused::new(
            Part::Tests,
            "too_many_tests",
            format!("{} test cases sent; the most accepted is {}", tests.len(), limits.max_tests),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    tests
        .into_iter()
        .map(|t| {
            let id = t.id;
            if !seen.insert(id) {
                return Err(Refused::new(
                    Part::Tests,
                    "duplicate_test_id",
                    format!("test id {id} is used twice; ids must be unique"),
                ));
            }
            let too_big = |field: &str, len: usize| {
                Refused::new(
                    Part::Tests,
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
                return Err(Refused::new(
                    Part::Tests,
                    "limit_out_of_range",
                    format!("test {id}: weight is {weight}; accepted: 0 to {MAX_WEIGHT}"),
                ));
            }
            Ok(TestCase { id, input: t.input, expected_output: t.expected_output, weight, compare: t.compare })
        })
        .collect()
}

/// The edge's rules without Redis, Docker or HTTP: seconds to run.
#[cfg(test)]
mod tests {
    use optimus_common::settings::Limits;
    use optimus_common::{Compare, LanguageConfig, LanguageRegistry, Mode};
    use serde_json::json;

    use super::*;

    fn python() -> LanguageConfig {
        let mut python = LanguageConfig::new("python", "py", "3.11.2");
        python.aliases = vec!["py".into()];
        python
    }

    fn draft(lang: &LanguageConfig) -> Draft<'_> {
        Draft {
            lang,
            source_code: "print(1)".into(),
            tests: Some(vec![TestDraft {
                id: 1,
                input: String::new(),
                expected_output: None,
                weight: None,
                compare: None,
            }]),
            time_limit_ms: None,
            memory_limit_mb: None,
            mode: Mode::Run,
            compare: Some(Compare::Trim),
            checker: None,
            solution: None,
            harness: None,
            args: Vec::new(),
            files: Vec::new(),
        }
    }

    #[test]
    fn a_draft_takes_its_languages_defaults_and_keeps_its_rule() {
        let lang = python();
        let spec = accept(draft(&lang), &Limits::default()).unwrap();
        assert_eq!((spec.time_limit_ms, spec.memory_limit_mb), (lang.time_limit_ms, lang.memory_limit_mb));
        assert_eq!((spec.compare, spec.test_cases[0].weight), (Compare::Trim, 1));
    }

    #[test]
    fn each_refusal_names_the_part_it_is_about() {
        let lang = python();
        let limits = Limits { max_source_bytes: 16, ..Limits::default() };
        let refused = |d: Draft<'_>| accept(d, &limits).unwrap_err();
        let big = Draft { source_code: "x".repeat(17), ..draft(&lang) };
        let empty = Draft { source_code: " ".into(), ..draft(&lang) };
        assert_eq!((refused(big).part, refused(empty).code), (Part::Source, "empty_source"));
        let slow = Draft { time_limit_ms: Some(limits.max_time_limit_ms + 1), ..draft(&lang) };
        let r = refused(slow);
        assert_eq!((r.part, r.code), (Part::Limits, "limit_out_of_range"));
        assert!(r.message.contains("accepted: 50 to 30000"), "{}", r.message);
        let none = Draft { tests: Some(Vec::new()), ..draft(&lang) };
        assert_eq!(refused(none).code, "no_tests");
        let twice = TestDraft { id: 1, input: String::new(), expected_output: None, weight: None, compare: None };
        let dup = Draft { tests: Some(vec![twice.clone(), twice]), ..draft(&lang) };
        assert_eq!(refused(dup).code, "duplicate_test_id");
        let custom = Draft { mode: Mode::Custom, ..draft(&lang) };
        let r = refused(custom);
        assert_eq!((r.part, r.code), (Part::Options, "incompatible_options"));
        let args = Draft { args: vec!["a\0b".into()], ..draft(&lang) };
        assert_eq!(refused(args).part, Part::Args);
    }

    #[test]
    fn a_request_resolves_aliases_and_parses_its_rules_once() {
        let registry =
            LanguageRegistry::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/languages.json")).unwrap();
        let req: JobRequest = serde_json::from_value(json!({
            "language": "py", "source_code": "print(1)",
            "test_cases": [{ "input": "1", "compare": { "type": "float", "abs_tol": 0.5 } }],
            "compare": "tokens"
        }))
        .unwrap();
        let d = request::draft(req, &registry).unwrap();
        assert_eq!(d.lang.name, "python");
        assert_eq!(d.compare, Some(Compare::Tokens));
        assert_eq!(d.tests.as_ref().unwrap()[0].compare, Some(Compare::Float { abs_tol: 0.5, rel_tol: 1e-9 }));
        let unknown: JobRequest = serde_json::from_value(json!({ "language": "pyhton", "source_code": "x" })).unwrap();
        let r = request::draft(unknown, &registry).unwrap_err();
        assert_eq!((r.part, r.code), (Part::Language, "unknown_language"));
        assert!(r.message.contains("available: python, java"), "{}", r.message);
    }
}
