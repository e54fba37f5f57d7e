//! The edge: a raw `POST /jobs` body becomes a [`JobSpec`] here or is refused with
//! a message that says what is accepted. Nothing unchecked gets past this module.

use std::collections::HashSet;

use optimus_common::settings::{Limits, MIN_MEMORY_MB, MIN_TIMEOUT_MS};
use optimus_common::{JobSpec, LanguageConfig, LanguageRegistry, TestCase};
use serde::Deserialize;

use crate::error::ApiError;

/// `POST /jobs` as sent. Unknown fields are refused, so a misspelt option never
/// silently falls back to its default.
#[derive(Debug, Deserialize)]
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
}

#[derive(Debug, Deserialize)]
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
}

/// The most a single test may weigh; keeps scores far from overflow.
const MAX_WEIGHT: u32 = 1_000_000;

/// Checks a request against the registry and the limits; returns the spec and its
/// language's config.
pub fn validate<'r>(
    req: JobRequest,
    registry: &'r LanguageRegistry,
    limits: &Limits,
) -> Result<(JobSpec, &'r LanguageConfig), ApiError> {
    let lang = registry.find(&req.language).ok_or_else(|| {
        ApiError::invalid(
            "unknown_language",
            format!("language '{}' is not available; available: {}", req.language, registry.names()),
        )
    })?;

    if req.source_code.trim().is_empty() {
        return Err(ApiError::invalid("empty_source", "source_code is empty; send the program's source text"));
    }
    if req.source_code.len() > limits.max_source_bytes {
        return Err(ApiError::invalid(
            "source_too_large",
            format!(
                "source_code is {} bytes; the most accepted is {} bytes",
                req.source_code.len(),
                limits.max_source_bytes
            ),
        ));
    }

    let timeout_ms = req.timeout_ms.unwrap_or(lang.timeout_ms);
    if !(MIN_TIMEOUT_MS..=limits.max_timeout_ms).contains(&timeout_ms) {
        return Err(ApiError::invalid(
            "limit_out_of_range",
            format!("timeout_ms is {timeout_ms}; accepted: {MIN_TIMEOUT_MS} to {} (per test)", limits.max_timeout_ms),
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
        None => vec![TestCase { id: 1, input: String::new(), expected_output: None, weight: 1 }],
        Some(tests) => validate_tests(tests, limits)?,
    };

    let spec =
        JobSpec { language: lang.name.clone(), source_code: req.source_code, test_cases, timeout_ms, memory_limit_mb };
    Ok((spec, lang))
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
            Ok(TestCase { id, input: t.input, expected_output: t.expected_output, weight })
        })
        .collect()
}
