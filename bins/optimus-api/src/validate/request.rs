//! `POST /jobs` as sent, and how it becomes a [`Draft`]: its language names
//! resolved (aliases too) and its comparison rules parsed, each refused with what
//! is accepted. Its bounds are [`super::accept`]'s.

use optimus_common::{Compare, Harness, LanguageConfig, LanguageRegistry, Mode, SourceFile};
use serde::Deserialize;
use serde_json::Value;

use super::{Draft, Part, Refused, TestDraft};

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

/// A request as a [`Draft`]: languages resolved, comparison rules parsed.
pub fn draft(req: JobRequest, registry: &LanguageRegistry) -> Result<Draft<'_>, Refused> {
    let lang = language(registry, &req.language, "language")?;
    let tests = match req.test_cases {
        None => None,
        Some(tests) => Some(
            tests
                .into_iter()
                .enumerate()
                .map(|(i, t)| {
                    let id = t.id.unwrap_or(i as u64 + 1);
                    let compare = t.compare.map(|v| parse_compare(v, &format!("test {id}: compare"))).transpose()?;
                    Ok(TestDraft { id, input: t.input, expected_output: t.expected_output, weight: t.weight, compare })
                })
                .collect::<Result<Vec<_>, Refused>>()?,
        ),
    };
    let compare = req.compare.map(|v| parse_compare(v, "compare")).transpose()?;
    let checker = match req.checker {
        None => None,
        Some(c) => Some((language(registry, &c.language, "checker.language")?, c.source_code)),
    };
    let solution = match (req.solution_code, req.solution_language) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(Refused::incompatible(
                "solution_language is set but solution_code is not; send the reference solution's source",
            ))
        }
        (Some(code), None) => Some((lang, code)),
        (Some(code), Some(name)) => Some((language(registry, &name, "solution_language")?, code)),
    };
    Ok(Draft {
        lang,
        source_code: req.source_code,
        tests,
        time_limit_ms: req.timeout_ms,
        memory_limit_mb: req.memory_limit_mb,
        mode: req.mode,
        compare,
        checker,
        solution,
        harness: req.harness,
        args: req.args.unwrap_or_default(),
        files: req
            .files
            .unwrap_or_default()
            .into_iter()
            .map(|f| SourceFile { name: f.name, content: f.content })
            .collect(),
    })
}

/// The language a name or one of its aliases (`py`, `c++`) means.
fn language<'r>(registry: &'r LanguageRegistry, name: &str, field: &str) -> Result<&'r LanguageConfig, Refused> {
    registry.find_alias(name).ok_or_else(|| {
        Refused::new(
            Part::Language,
            "unknown_language",
            format!("{field}: language '{name}' is not available; available: {}", registry.names()),
        )
    })
}

/// `"tokens"`, or `{"type": "float", "abs_tol": 1e-6, "rel_tol": 1e-9}`.
pub fn parse_compare(value: Value, field: &str) -> Result<Compare, Refused> {
    let bad = |what: String| {
        Refused::new(
            Part::Options,
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
