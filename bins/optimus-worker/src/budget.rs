//! The job's budget for stored output: all its tests' outputs together may take
//! at most so many bytes in Redis, counted as they are stored (JSON-escaped: a
//! control byte costs six), so that one job costs the store a bounded amount
//! whatever its programs print. Pure.
//!
//! When over, the outputs are cut fairly: every output keeps all of itself up to
//! one common level, and only those longer are cut to it, so a test's short
//! stderr survives another test's flood.

use optimus_common::TestResult;

/// How many bytes `c` takes inside a JSON string.
fn escaped(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// How many bytes `s` takes inside a JSON string.
pub fn stored_len(s: &str) -> usize {
    s.chars().map(escaped).sum()
}

/// Cuts `s` to the longest prefix (on a character boundary) that stores in `cap` bytes.
fn cut_to(s: &mut String, cap: usize) {
    let mut used = 0;
    let end = s
        .char_indices()
        .find(|(_, c)| {
            used += escaped(*c);
            used > cap
        })
        .map_or(s.len(), |(i, _)| i);
    s.truncate(end);
}

/// The largest level such that the outputs, each cut to it, fit `budget`.
fn level(costs: &[usize], budget: usize) -> usize {
    let mut sorted = costs.to_vec();
    sorted.sort_unstable();
    let mut left = budget;
    for (i, cost) in sorted.iter().enumerate() {
        let share = left / (sorted.len() - i);
        if *cost > share {
            return share;
        }
        left -= cost;
    }
    usize::MAX
}

/// The stored outputs of a test: stdout, stderr, and an expected output that a
/// reference solution produced.
fn outputs(t: &mut TestResult) -> impl Iterator<Item = &mut String> {
    [&mut t.stdout, &mut t.stderr].into_iter().chain(t.expected_output.as_mut())
}

/// Cuts the tests' stored outputs to fit `budget` bytes; true if it cut any.
pub fn fit(results: &mut [TestResult], budget: usize) -> bool {
    let costs: Vec<usize> = results.iter_mut().flat_map(|t| outputs(t).map(|s| stored_len(s))).collect();
    if costs.iter().sum::<usize>() <= budget {
        return false;
    }
    let cap = level(&costs, budget);
    for s in results.iter_mut().flat_map(outputs) {
        if stored_len(s) > cap {
            cut_to(s, cap);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(stdout: &str, stderr: &str) -> TestResult {
        TestResult { stdout: stdout.into(), stderr: stderr.into(), ..TestResult::not_run(1) }
    }

    #[test]
    fn lengths_are_counted_as_stored() {
        assert_eq!(stored_len("ab\n\"\\"), 2 + 2 + 2 + 2);
        assert_eq!(stored_len("\u{1}"), 6);
        assert_eq!(stored_len("é"), 2);
        for s in ["plain", "a\u{1}b\n\"é", ""] {
            assert_eq!(stored_len(s), serde_json::to_string(s).unwrap().len() - 2, "{s:?}");
        }
    }

    #[test]
    fn under_the_budget_nothing_changes() {
        let mut r = vec![test("a", "b"), test("cc", "")];
        assert!(!fit(&mut r, 4));
        assert_eq!((r[0].stdout.as_str(), r[1].stdout.as_str()), ("a", "cc"));
    }

    #[test]
    fn a_flood_is_cut_and_short_outputs_survive() {
        let flood = "\u{1}".repeat(1000);
        let mut r = vec![test(&flood, "short error"), test("ok", ""), test(&"y".repeat(500), "")];
        assert!(fit(&mut r, 700));
        let stored: usize = r.iter_mut().flat_map(|t| outputs(t).map(|s| stored_len(s))).sum();
        assert!(stored <= 700, "{stored}");
        assert_eq!((r[0].stderr.as_str(), r[1].stdout.as_str()), ("short error", "ok"));
        // The two long ones are cut to one level: the flood's 6-byte characters
        // and the y's fill about the same number of stored bytes.
        let (a, b) = (stored_len(&r[0].stdout), stored_len(&r[2].stdout));
        assert!(a.abs_diff(b) <= 6 && a > 300, "{a} {b}");
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let mut s = "ééé".to_string();
        cut_to(&mut s, 5);
        assert_eq!(s, "éé");
    }
}
