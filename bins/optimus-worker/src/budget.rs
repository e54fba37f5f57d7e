//! The job's budget for stored output: every text a job's result carries (each
//! test's stdout, stderr, expected output, checker message and verdict message,
//! and the job's compile output and message), together, may take at most so many
//! bytes in Redis, counted as they are stored and served (JSON-escaped: a control
//! byte costs six), so that one job costs the store a bounded amount whatever its
//! program, checker, solution or compiler print. Pure.
//!
//! When over, the outputs are cut fairly: every output keeps all of itself up to
//! one common level, and only those longer are cut to it, so a test's short
//! stderr survives another test's flood.

use optimus_common::{JobResult, TestResult};

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

/// Every text of a test that a program, checker or solution can make long:
/// stdout, stderr, the expected output a reference solution produced, what the
/// checker said, and the verdict's message (which may quote the output).
fn texts(t: &mut TestResult) -> impl Iterator<Item = &mut String> {
    [&mut t.stdout, &mut t.stderr]
        .into_iter()
        .chain(t.expected_output.as_mut())
        .chain(t.checker_message.as_mut())
        .chain(t.message.as_mut())
}

/// Every text of a job's result: its compile output and message, and each test's.
fn result_texts(r: &mut JobResult) -> impl Iterator<Item = &mut String> {
    r.compile_output.as_mut().into_iter().chain(r.message.as_mut()).chain(r.test_results.iter_mut().flat_map(texts))
}

/// Cuts `texts` to fit `budget` stored bytes together; true if it cut any.
fn fit_texts<'a>(texts: impl Iterator<Item = &'a mut String>, budget: usize) -> bool {
    let mut texts: Vec<&mut String> = texts.collect();
    let costs: Vec<usize> = texts.iter().map(|s| stored_len(s)).collect();
    if costs.iter().sum::<usize>() <= budget {
        return false;
    }
    let cap = level(&costs, budget);
    for s in texts.iter_mut() {
        if stored_len(s) > cap {
            cut_to(s, cap);
        }
    }
    true
}

/// Cuts a job's result to fit `budget`, and says so in `outputs_cut`.
pub fn fit(result: &mut JobResult, budget: usize) {
    if fit_texts(result_texts(result), budget) {
        result.outputs_cut = true;
    }
}

/// Cuts one test's texts to fit `budget` (the share a test event may carry).
pub fn fit_test(result: &mut TestResult, budget: usize) {
    fit_texts(texts(result), budget);
}

/// Cuts one text to fit `budget` (the share the compile event may carry).
pub fn fit_text(text: &mut String, budget: usize) {
    fit_texts(std::iter::once(text), budget);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(stdout: &str, stderr: &str) -> TestResult {
        TestResult { stdout: stdout.into(), stderr: stderr.into(), message: None, ..TestResult::not_run(1) }
    }

    fn job(tests: Vec<TestResult>) -> JobResult {
        let weights = vec![1; tests.len()];
        JobResult::from_tests(optimus_common::Mode::Run, tests, &weights, None)
    }

    fn stored(r: &mut JobResult) -> usize {
        result_texts(r).map(|s| stored_len(s)).sum()
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
        let mut r = job(vec![test("a", "b"), test("cc", "")]);
        fit(&mut r, 4);
        assert!(!r.outputs_cut);
        assert_eq!((r.test_results[0].stdout.as_str(), r.test_results[1].stdout.as_str()), ("a", "cc"));
    }

    #[test]
    fn a_flood_is_cut_and_short_outputs_survive() {
        let flood = "\u{1}".repeat(1000);
        let mut r = job(vec![test(&flood, "short error"), test("ok", ""), test(&"y".repeat(500), "")]);
        fit(&mut r, 700);
        assert!(r.outputs_cut);
        assert!(stored(&mut r) <= 700, "{}", stored(&mut r));
        let t = &r.test_results;
        assert_eq!((t[0].stderr.as_str(), t[1].stdout.as_str()), ("short error", "ok"));
        // The two long ones are cut to one level: the flood's 6-byte characters
        // and the y's fill about the same number of stored bytes.
        let (a, b) = (stored_len(&t[0].stdout), stored_len(&t[2].stdout));
        assert!(a.abs_diff(b) <= 6 && a > 300, "{a} {b}");
    }

    #[test]
    fn every_role_counts_against_the_one_budget() {
        // A checker that floods its message, a compiler that floods its output, a
        // verdict message that quotes a flood: all of it is cut to the budget.
        let flood = "\u{1}".repeat(100_000);
        let mut tests: Vec<TestResult> = (1..=4)
            .map(|i| TestResult {
                checker_message: Some(flood.clone()),
                message: Some(flood.clone()),
                expected_output: Some(flood.clone()),
                test_id: i,
                ..test(&flood, &flood)
            })
            .collect();
        tests[0].stdout = "1\n".into();
        let mut r = job(tests);
        r.compile_output = Some(flood.clone());
        r.message = Some("short".into());
        let budget = 64 * 1024;
        fit(&mut r, budget);
        assert!(r.outputs_cut);
        assert!(stored(&mut r) <= budget, "{}", stored(&mut r));
        assert_eq!((r.message.as_deref(), r.test_results[0].stdout.as_str()), (Some("short"), "1\n"));
        // As served: the whole record is the budget plus a small fixed part per test.
        let served = serde_json::to_string(&r).unwrap().len();
        assert!(served <= budget + 4 * 512 + 512, "{served}");
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let mut s = "ééé".to_string();
        cut_to(&mut s, 5);
        assert_eq!(s, "éé");
    }
}
