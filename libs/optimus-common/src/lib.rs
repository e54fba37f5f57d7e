//! What the API, the worker and the CLI share, so that they can never disagree.
//!
//! # Layout
//! - [`config`]: the language registry (`config/languages.json`): one typed
//!   [`LanguageConfig`] per language, loaded and validated once, saved by the CLI.
//! - [`settings`]: every tunable read from the environment, with its default.
//! - [`job`]: what a user submits ([`JobSpec`], [`TestCase`]) and the job's life
//!   ([`JobStatus`], [`JobRecord`]).
//! - [`verdict`]: what the judge says ([`Verdict`], [`TestResult`], [`JobResult`]).
//! - [`keys`]: the Redis key schema; no other file spells a key.
//! - [`store`]: every Redis operation on jobs, the multi-key ones as Lua scripts
//!   (`src/lua/*.lua`) so that they are atomic.
//! - `testkit` (feature `testkit`): a private `redis-server` for tests.

pub mod config;
pub mod job;
pub mod keys;
pub mod settings;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod verdict;

pub use config::{ConfigError, LanguageConfig, LanguageRegistry};
pub use job::{JobRecord, JobSpec, JobStatus, TestCase};
pub use settings::Settings;
pub use store::{Store, StoreError};
pub use verdict::{JobResult, TestResult, Verdict};
