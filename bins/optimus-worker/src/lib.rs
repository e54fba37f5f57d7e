//! `optimus-worker`: takes one language's jobs from Redis, runs them in Docker
//! sandboxes, and writes the verdicts back.
//!
//! # Layout
//! - [`worker`]: the job loop: reliable pop, claim, cancel watch, finish; the
//!   heartbeat and the recovery of dead workers' jobs; drain on shutdown.
//! - [`execute`]: one job end to end: its containers (program, reference solution,
//!   checker), the order they run in, the mode, each test's verdict.
//! - [`sandbox`]: the containers (create hardened, destroy, sweep) and the one
//!   `runner.sh` session per role and job; the only module that talks to Docker.
//!   The reports it reads are `optimus_protocol`'s, written by `optimus-launcher`.
//! - [`compile_cache`]: the host's cache of compiles that worked, keyed by what
//!   the compile saw; a hit skips the compiler.
//! - [`host`]: the host's job slots, shared by all its workers (one per core).
//! - [`judge`]: verdicts from a run's measurements and from a checker's exit, pure.
//! - [`progress`]: the `compiled` and per-test events of a job, as they happen.
//! - [`budget`]: the job's budget for stored output, cut fairly, pure.
//! - [`compare`]: the output comparison rules, pure.
//! - [`harness`]: the `python_call` harness and how its answers compare.
//! - [`metrics`]: the worker's Prometheus metrics and their endpoint.

pub mod budget;
pub mod compare;
pub mod compile_cache;
pub mod execute;
pub mod harness;
pub mod host;
pub mod judge;
pub mod metrics;
pub mod progress;
pub mod sandbox;
pub mod worker;

pub use compile_cache::CompileCache;
pub use host::HostSlots;
pub use sandbox::PoolConfig;
pub use worker::{Worker, WorkerConfig};
