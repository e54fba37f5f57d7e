//! `optimus-worker`: takes one language's jobs from Redis, runs them in Docker
//! sandboxes, and writes the verdicts back.
//!
//! # Layout
//! - [`worker`]: the job loop: reliable pop, claim, cancel watch, finish; the
//!   heartbeat and the recovery of dead workers' jobs; drain on shutdown.
//! - [`execute`]: one job end to end: its containers (program, reference solution,
//!   checker), the order they run in, the mode, each test's verdict.
//! - [`sandbox`]: the container lifecycle (create, copy in, compile once, talk to
//!   `runner.sh`, destroy); the only module that talks to Docker.
//! - [`protocol`]: the reader of what `runner.sh` reports.
//! - [`judge`]: verdicts from a run's measurements and from a checker's exit, pure.
//! - [`compare`]: the output comparison rules, pure.
//! - [`harness`]: the `python_call` harness and how its answers compare.

pub mod compare;
pub mod execute;
pub mod harness;
pub mod judge;
pub mod protocol;
pub mod sandbox;
pub mod worker;

pub use worker::{Worker, WorkerConfig};
