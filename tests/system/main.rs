//! Optimus as its users run it: the built binaries as processes on a private
//! Redis with an append-only file and the real Docker engine. Faults are real too:
//! Redis and workers are SIGKILLed under load, the engine's socket is cut.

mod auth;
mod chaos;
mod dead_letters;
mod deploy;
mod edge;
mod logs;
mod metrics;
mod openapi;
mod traces;

use serde_json::{json, Value};

/// A Python job: "a b" -> a + b, on `tests` tests.
pub fn sum_job(tests: u64) -> Value {
    let cases: Vec<Value> = (0..tests)
        .map(|i| json!({ "input": format!("{i} {}\n", i * 3), "expected_output": format!("{}\n", i * 4) }))
        .collect();
    json!({
        "language": "python",
        "source_code": "a, b = map(int, input().split())\nprint(a + b)",
        "test_cases": cases,
    })
}
