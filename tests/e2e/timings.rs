//! Where a job's time went: its result carries the phases its worker measured,
//! and those that follow one another fit in what the job took.

use std::time::Instant;

use optimus_common::Timings;
use serde_json::json;

use crate::helpers::{job, stack};

#[tokio::test(flavor = "multi_thread")]
async fn a_judged_job_says_where_its_time_went() {
    let mut stack = stack(&["python"]).await;
    // Each test sleeps 50 ms of wall time: the run phase must hold them.
    let source = "import time\ntime.sleep(0.05)\nprint(int(input()) * 2)\n";
    let tests = json!([{"input": "1", "expected_output": "2"}, {"input": "2", "expected_output": "4"}, {"input": "3", "expected_output": "6"}]);
    let began = Instant::now();
    let id = stack.submit(&job("python", source, tests)).await;
    let record = stack.wait(&id).await;
    let took_us = began.elapsed().as_micros() as u64;
    assert_eq!(record["result"]["overall_status"], "accepted", "{record}");
    let timings: Timings = serde_json::from_value(record["result"]["timings"].clone())
        .unwrap_or_else(|e| panic!("no timings in the result ({e}): {record}"));
    let t = timings.tests;
    assert_eq!(t.count, 3, "{timings:?}");
    assert!(t.run_us >= 3 * 50_000, "three 50 ms sleeps ran in {} µs: {timings:?}", t.run_us);
    let times: u64 = record["result"]["test_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["execution_time_ms"].as_u64().unwrap_or(0))
        .sum();
    assert!(t.run_us / 1000 + 3 >= times, "run {} µs, the tests' own wall times {times} ms", t.run_us);
    // The launcher reported its own setup and teardown, and the worker its judging.
    assert!(t.setup_us > 0 && t.teardown_us > 0 && t.judge_us > 0 && t.event_us > 0, "{timings:?}");
    assert!(timings.exec_us > 0 && timings.compile_us > 0, "{timings:?}");
    let seen = timings.sequential_us();
    assert!(
        seen <= took_us,
        "the sequential phases sum to {seen} µs, more than the {took_us} µs the job took: {timings:?}"
    );
    stack.stop().await;
}
