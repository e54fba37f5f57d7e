//! What the fuzz targets share: the configured languages, limits small enough
//! that random inputs cross every one of them, and the checks that a job which
//! passed the edge really is within those limits.

use std::sync::LazyLock;

use optimus_api::validate::Rules;
use optimus_api::ApiConfig;
use optimus_common::settings::{Limits, MIN_MEMORY_MB, MIN_TIMEOUT_MS};
use optimus_common::{JobSpec, LanguageRegistry, Settings};

/// The repository's own language list, as the API loads it.
pub static REGISTRY: LazyLock<LanguageRegistry> = LazyLock::new(|| {
    LanguageRegistry::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/languages.json"))
        .expect("config/languages.json loads")
});

/// Limits a few bytes wide, so that a mutated input lands on both sides of each.
pub static SETTINGS: LazyLock<Settings> = LazyLock::new(|| Settings {
    limits: Limits {
        max_source_bytes: 64,
        max_tests: 4,
        max_test_bytes: 32,
        max_json_values: 64,
        max_time_limit_ms: 10_000,
        max_memory_mb: 256,
        ..Limits::default()
    },
    ..Settings::default()
});

pub static API: LazyLock<ApiConfig> = LazyLock::new(ApiConfig::default);

pub fn rules() -> Rules<'static> {
    Rules { registry: &REGISTRY, settings: &SETTINGS, api: &API }
}

/// Panics unless `spec` is within the limits the edge checked it against, and
/// survives the trip through Redis (JSON) unchanged.
pub fn assert_within_limits(spec: &JobSpec) {
    let l = &SETTINGS.limits;
    assert!(REGISTRY.find(&spec.language).is_some(), "unknown language {:?} accepted", spec.language);
    assert!(spec.source_code.len() <= l.max_source_bytes, "source of {} bytes accepted", spec.source_code.len());
    assert!(!spec.test_cases.is_empty() && spec.test_cases.len() <= l.max_tests, "{} tests", spec.test_cases.len());
    for t in &spec.test_cases {
        assert!(t.input.len() <= l.max_test_bytes, "input of {} bytes accepted", t.input.len());
        let expected = t.expected_output.as_deref().unwrap_or("");
        assert!(expected.len() <= l.max_test_bytes, "expected output of {} bytes accepted", expected.len());
    }
    assert!((MIN_TIMEOUT_MS..=l.max_time_limit_ms).contains(&spec.time_limit_ms), "{} ms", spec.time_limit_ms);
    assert!((MIN_MEMORY_MB..=l.max_memory_mb).contains(&spec.memory_limit_mb), "{} MB", spec.memory_limit_mb);
    for program in spec.checker.iter().chain(&spec.solution) {
        assert!(REGISTRY.find(&program.language).is_some());
        assert!(program.source_code.len() <= l.max_source_bytes);
    }
    let stored = serde_json::to_string(spec).expect("a spec serializes");
    let loaded: JobSpec = serde_json::from_str(&stored).expect("a stored spec loads");
    assert_eq!(&loaded, spec, "the spec changed on its way through Redis");
}

/// An input as the multi-part targets read it: the first byte picks what is
/// fuzzed (and how), the rest is its bytes, also read as (lossy) text.
pub fn mode_and_text(data: &[u8]) -> Option<(u8, &[u8], std::borrow::Cow<'_, str>)> {
    let (&mode, rest) = data.split_first()?;
    Some((mode, rest, String::from_utf8_lossy(rest)))
}
