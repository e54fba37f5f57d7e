//! Fuzzing, in `cargo test`: every cargo fuzz target (tests/fuzz) for a bounded
//! time from its seeds, and schemathesis against a real stack (Redis, the API, a
//! Python worker on Docker) from the API's own `/openapi.json`. A test binary of
//! its own (cargo runs test binaries one at a time), so that the fuzzers' CPU does
//! not slow the system tests' timing; inside it, the two tests take turns (they
//! share the machine's two cores).

mod schema;
mod targets;

use std::sync::Mutex;

/// Held by each test for its whole run: the fuzzers and schemathesis' stack do not
/// run at once.
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The repository's root.
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Seconds per fuzz target and for schemathesis' run: `OPTIMUS_FUZZ_SECS`, or `default`.
pub fn budget(default: u64) -> u64 {
    std::env::var("OPTIMUS_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}
