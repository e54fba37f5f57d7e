//! What the API, the worker and the CLI share, so that they can never disagree.
//!
//! # Layout
//! - [`config`]: the language registry (`config/languages.json`): one typed
//!   [`LanguageConfig`] per language, loaded and validated once, saved by the CLI.
//! - [`settings`]: every tunable read from the environment, with its default.
//! - [`job`]: what a user submits ([`JobSpec`], [`TestCase`], how it is judged:
//!   [`Mode`], [`Compare`], checker and solution [`Program`]s, [`Harness`]), the job's life
//!   ([`JobStatus`], [`JobRecord`]) and what it came in as through a compatible API ([`job::Origin`]).
//! - [`limits`]: the CPU-time limit of a run and the one rule for its wall-clock cap.
//! - [`verdict`]: what the judge says ([`Verdict`], [`TestResult`], [`JobResult`]),
//!   and the one table of signal names.
//! - [`timings`]: where a judged job's time went, phase by phase ([`Timings`]).
//! - [`image`]: what a language image must carry (runner, report format) to serve,
//!   and where every image is made from (`dockerfiles/base/`: the base sandbox image
//!   each language's Dockerfile is `FROM`, and the seal each one ends with).
//! - `telemetry` (feature `telemetry`): OTLP trace export, and the trace context a
//!   job carries from the API to its worker.
//! - [`logging`]: text or JSON log lines (`OPTIMUS_LOG_FORMAT`), with job and trace ids.
//! - [`auth`]: API keys (only their hashes are stored) and who a caller is.
//! - [`keys`]: the Redis key schema; no other file spells a key, and no Lua
//!   script builds one (each gets every key it touches in `KEYS`).
//! - [`store`]: every Redis operation (jobs, workers, retries and dead letters,
//!   read views, API keys, callbacks), the multi-key ones as Lua scripts
//!   (`src/lua/*.lua`) so that they are atomic.
//! - [`sync`]: locks that survive a panic, and the supervisor of long-lived tasks.
//! - `testkit` (feature `testkit`): a private `redis-server` for tests.
//!
//! The store's own tests are `tests/store/` (a real `redis-server` per test); the
//! pure modules test themselves (`cargo test -p optimus-common --lib`, seconds).

pub mod auth;
pub mod config;
pub mod image;
pub mod job;
pub mod keys;
pub mod limits;
pub mod logging;
pub mod settings;
pub mod store;
pub mod sync;
#[cfg(feature = "telemetry")]
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod timings;
pub mod verdict;

/// A stable 64-bit fingerprint (FNV-1a) of some byte strings, as 16 hex digits:
/// for telling build inputs or deployments apart, not for security.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(b"\0") {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

pub use auth::Quota;
pub use config::{ConfigError, LanguageConfig, LanguageRegistry};
pub use job::{AttemptError, Compare, Harness, JobRecord, JobSpec, JobStatus, Mode, Program, SourceFile, TestCase};
pub use settings::Settings;
pub use store::{Store, StoreError};
pub use timings::{TestTimings, Timings};
pub use verdict::{JobResult, TestResult, Verdict};

#[cfg(test)]
mod tests {
    #[test]
    fn fingerprint_changes_with_any_input() {
        let a = super::fingerprint(&[b"FROM x", b"runner"]);
        assert_eq!(a, super::fingerprint(&[b"FROM x", b"runner"]));
        assert_ne!(a, super::fingerprint(&[b"FROM x", b"runner2"]));
        assert_ne!(a, super::fingerprint(&[b"FROM xr", b"unner"]));
    }
}
