//! What parsing a hostile body costs in memory, read as the process's peak
//! resident set. Its own test binary with one test: the peak is the whole
//! process's, so nothing else may run beside it.

use optimus_api::extract::{parse_bounded, ParseError};
use optimus_api::validate::JobRequest;
use optimus_common::settings::Limits;

/// A field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 1024
}

/// The most memory `parse` takes above what was resident before it, in bytes:
/// the peak resident set is reset first (`clear_refs` 5), then read after.
fn peak_of<T>(parse: impl FnOnce() -> T) -> usize {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_bytes("VmRSS:");
    drop(parse());
    status_bytes("VmHWM:").saturating_sub(before)
}

/// `{"language": "python", "source_code": "x", "test_cases": [{}, {}, …]}`, `len` bytes or so.
fn empty_tests(len: usize) -> Vec<u8> {
    let mut body = br#"{"language":"python","source_code":"x","test_cases":["#.to_vec();
    while body.len() < len {
        body.extend_from_slice(b"{},");
    }
    body.extend_from_slice(b"{}]}");
    body
}

#[test]
fn hostile_bodies_cost_a_small_multiple_of_their_size() {
    let limits = Limits::default();
    let body = empty_tests(16 * 1024 * 1024);

    // Five million empty tests: refused after one pass, none of them built.
    let mut refused = false;
    let peak = peak_of(|| {
        refused =
            matches!(parse_bounded::<JobRequest>(&body, limits.max_json_values), Err(ParseError::TooManyValues { .. }))
    });
    assert!(refused, "five million tests were not refused as too many values");
    assert!(peak < body.len(), "parsing a {} byte body took {peak} bytes", body.len());

    // The same as a JSON value (the Judge0 and Piston routes parse into one), and
    // as an array of numbers, the densest nodes per byte.
    let peak = peak_of(|| parse_bounded::<serde_json::Value>(&body, limits.max_json_values));
    assert!(peak < body.len(), "as a value: {peak} bytes");
    let mut zeros = b"[0".to_vec();
    zeros.extend(b",0".repeat(8 * 1024 * 1024));
    zeros.push(b']');
    let peak = peak_of(|| parse_bounded::<serde_json::Value>(&zeros, limits.max_json_values));
    assert!(peak < zeros.len(), "zeros: {peak} bytes");

    // What a body within the bound costs: its strings, and a few small nodes.
    let big_source = serde_json::to_vec(&serde_json::json!({
        "language": "python",
        "source_code": "x".repeat(8 * 1024 * 1024),
        "test_cases": (0..100).map(|i| serde_json::json!({"input": i.to_string(), "expected_output": "1"})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let peak = peak_of(|| parse_bounded::<JobRequest>(&big_source, limits.max_json_values).unwrap());
    assert!(peak < 2 * big_source.len(), "a big source: {peak} bytes for {}", big_source.len());
}
