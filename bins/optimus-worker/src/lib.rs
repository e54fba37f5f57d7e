//! `optimus-worker`: takes one language's jobs from Redis, runs them in Docker
//! sandboxes, and writes the verdicts back.
//!
//! # Layout
//! - [`worker`]: the job loop: reliable pop, claim, cancel watch, finish; the
//!   heartbeat and the recovery of dead workers' jobs; drain on shutdown.
//! - [`sandbox`]: the container lifecycle (create, copy in, compile once, run every
//!   test through `runner.sh`, destroy); the only module that talks to Docker.
//! - [`protocol`]: the reader of what `runner.sh` reports.
//! - [`judge`]: verdicts and output comparison, pure.

pub mod judge;
pub mod protocol;
pub mod sandbox;
pub mod worker;

pub use worker::{Worker, WorkerConfig};
