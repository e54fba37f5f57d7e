//! Tunables read from the environment once at start. Each field says its variable
//! and its default; [`Settings::default`] is exactly the defaults.

use std::path::PathBuf;
use std::str::FromStr;

/// Settings that the API and the worker both need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `REDIS_URL`, default `redis://127.0.0.1:6379`.
    pub redis_url: String,
    /// `OPTIMUS_LANGUAGES`, default `config/languages.json`.
    pub languages_file: PathBuf,
    /// `OPTIMUS_JOB_TTL_SECS`, default 86400: how long job records and results are kept.
    pub job_ttl_secs: u64,
    /// `OPTIMUS_MAX_ATTEMPTS`, default 3: how many times a job is started before a
    /// job whose worker keeps dying (or whose engine keeps failing) ends `failed`.
    pub max_attempts: u32,
    /// `OPTIMUS_HEARTBEAT_TIMEOUT_SECS`, default 15: a worker silent this long is
    /// dead, and its jobs go back to their queue.
    pub heartbeat_timeout_secs: u64,
    /// `OPTIMUS_RETRY_BASE_MS`, default 2000: the backoff before a job's second
    /// attempt; it doubles with each attempt after.
    pub retry_base_ms: u64,
    /// `OPTIMUS_RETRY_MAX_MS`, default 60000: the longest backoff.
    pub retry_max_ms: u64,
    /// What a job may ask for.
    pub limits: Limits,
}

/// Bounds on what one job may carry or ask for, checked by the API.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `OPTIMUS_MAX_SOURCE_BYTES`, default 65536.
    pub max_source_bytes: usize,
    /// `OPTIMUS_MAX_TESTS`, default 100.
    pub max_tests: usize,
    /// `OPTIMUS_MAX_TEST_BYTES`, default 1048576: cap on each test's input and
    /// expected output.
    pub max_test_bytes: usize,
    /// `OPTIMUS_MAX_BODY_BYTES`, default 67108864: larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `OPTIMUS_MAX_JSON_VALUES`, default 10000 or 32 per allowed test, whichever
    /// is more: the most values (array items and object members, nested ones
    /// included) a request body may hold. A body with more gets 413 after one pass
    /// over its bytes, before anything is built from it, so that a body's cost in
    /// memory is its size and a bounded number of nodes.
    pub max_json_values: usize,
    /// `OPTIMUS_BODY_BUDGET_BYTES`, default 268435456: the request bodies being read
    /// and handled at once, together, may announce at most this many bytes (a body
    /// without a length counts as `OPTIMUS_MAX_BODY_BYTES`); a request past it waits
    /// a moment, then gets 503 `busy` with `Retry-After`.
    pub body_budget_bytes: usize,
    /// `OPTIMUS_MAX_TIMEOUT_MS`, default 30000: the most a CPU-time limit (`timeout_ms`) may be (least: 50).
    pub max_time_limit_ms: u64,
    /// `OPTIMUS_MAX_MEMORY_MB`, default 2048: the most `memory_limit_mb` may be (least: 16).
    pub max_memory_mb: u32,
    /// `OPTIMUS_OUTPUT_LIMIT_BYTES`, default 1048576: stdout and stderr kept per
    /// test; a program writing more ends `output_limit_exceeded`.
    pub output_limit_bytes: usize,
    /// `OPTIMUS_JOB_OUTPUT_BUDGET_BYTES`, default 4194304: all the outputs a job
    /// stores, together, counted as stored (JSON-escaped); cut fairly past it.
    pub job_output_budget_bytes: usize,
}

impl Limits {
    /// The default `max_json_values` for a given `max_tests`.
    pub fn json_values_for(max_tests: usize) -> usize {
        max_tests.saturating_mul(32).max(10_000)
    }
}

/// The smallest limits a job may ask for; below them no runtime even starts.
pub const MIN_TIMEOUT_MS: u64 = 50;
pub const MIN_MEMORY_MB: u32 = 16;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            redis_url: "redis://127.0.0.1:6379".into(),
            languages_file: PathBuf::from("config/languages.json"),
            job_ttl_secs: 86_400,
            max_attempts: 3,
            heartbeat_timeout_secs: 15,
            retry_base_ms: 2_000,
            retry_max_ms: 60_000,
            limits: Limits::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_source_bytes: 64 * 1024,
            max_tests: 100,
            max_test_bytes: 1024 * 1024,
            max_body_bytes: 64 * 1024 * 1024,
            max_json_values: Limits::json_values_for(100),
            body_budget_bytes: 256 * 1024 * 1024,
            max_time_limit_ms: 30_000,
            max_memory_mb: 2048,
            output_limit_bytes: 1024 * 1024,
            job_output_budget_bytes: 4 * 1024 * 1024,
        }
    }
}

/// An environment variable that is set but does not parse.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?} is not valid: expected {expected}")]
pub struct SettingsError {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// Reads `name`, or `default` when it is unset or blank; `expected` says what parses.
pub fn env_or<T: FromStr>(name: &'static str, default: T, expected: &'static str) -> Result<T, SettingsError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            value.trim().parse().map_err(|_| SettingsError { name, value, expected })
        }
        _ => Ok(default),
    }
}

impl Settings {
    /// Reads every variable above; unset ones take their default.
    pub fn from_env() -> Result<Self, SettingsError> {
        let d = Settings::default();
        let l = d.limits;
        let count = "a whole number";
        let max_tests = env_or("OPTIMUS_MAX_TESTS", l.max_tests, count)?;
        Ok(Settings {
            redis_url: env_or("REDIS_URL", d.redis_url, "a redis:// URL")?,
            languages_file: env_or("OPTIMUS_LANGUAGES", d.languages_file, "a path")?,
            job_ttl_secs: env_or("OPTIMUS_JOB_TTL_SECS", d.job_ttl_secs, count)?,
            max_attempts: env_or("OPTIMUS_MAX_ATTEMPTS", d.max_attempts, count)?,
            heartbeat_timeout_secs: env_or("OPTIMUS_HEARTBEAT_TIMEOUT_SECS", d.heartbeat_timeout_secs, count)?,
            retry_base_ms: env_or("OPTIMUS_RETRY_BASE_MS", d.retry_base_ms, count)?,
            retry_max_ms: env_or("OPTIMUS_RETRY_MAX_MS", d.retry_max_ms, count)?,
            limits: Limits {
                max_source_bytes: env_or("OPTIMUS_MAX_SOURCE_BYTES", l.max_source_bytes, count)?,
                max_tests,
                max_test_bytes: env_or("OPTIMUS_MAX_TEST_BYTES", l.max_test_bytes, count)?,
                max_body_bytes: env_or("OPTIMUS_MAX_BODY_BYTES", l.max_body_bytes, count)?,
                max_json_values: env_or("OPTIMUS_MAX_JSON_VALUES", Limits::json_values_for(max_tests), count)?,
                body_budget_bytes: env_or("OPTIMUS_BODY_BUDGET_BYTES", l.body_budget_bytes, count)?,
                max_time_limit_ms: env_or("OPTIMUS_MAX_TIMEOUT_MS", l.max_time_limit_ms, count)?,
                max_memory_mb: env_or("OPTIMUS_MAX_MEMORY_MB", l.max_memory_mb, count)?,
                output_limit_bytes: env_or("OPTIMUS_OUTPUT_LIMIT_BYTES", l.output_limit_bytes, count)?,
                job_output_budget_bytes: env_or("OPTIMUS_JOB_OUTPUT_BUDGET_BYTES", l.job_output_budget_bytes, count)?,
            },
        })
    }
}
