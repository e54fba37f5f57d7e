//! The comparison rules of `compare`: does a program's output match the expected
//! output, and if not, where it first differs. Pure.

use optimus_common::Compare;

/// `Ok` when `actual` matches `expected` under `rule`; otherwise where they first differ.
pub fn compare(rule: Compare, actual: &str, expected: &str) -> Result<(), String> {
    match rule {
        Compare::Exact => exact(actual, expected),
        Compare::Trim => same_lines(trimmed_lines(actual), trimmed_lines(expected)),
        Compare::CaseInsensitive => {
            same_lines(trimmed_lines(&actual.to_lowercase()), trimmed_lines(&expected.to_lowercase()))
        }
        Compare::UnorderedLines => {
            let (mut a, mut e) = (trimmed_lines(actual), trimmed_lines(expected));
            a.sort_unstable();
            e.sort_unstable();
            if a == e {
                Ok(())
            } else {
                Err(match first_missing(&a, &e) {
                    Some(line) => format!("expected line {} is missing (lines in any order)", quote(line)),
                    None => format!("{} lines expected, {} printed (lines in any order)", e.len(), a.len()),
                })
            }
        }
        Compare::Tokens => tokens(actual, expected, |a, e| a == e),
        Compare::Float { abs_tol, rel_tol } => tokens(actual, expected, |a, e| {
            a == e
                || match (number(a), number(e)) {
                    (Some(a), Some(e)) => {
                        let diff = (a - e).abs();
                        diff <= abs_tol || diff <= rel_tol * e.abs()
                    }
                    _ => false,
                }
        }),
    }
}

/// The first line of `expected` (sorted) that `actual` (sorted) lacks, counting
/// repeats: one merge walk over both, so linear after the sort.
fn first_missing<'a>(actual: &[&str], expected: &[&'a str]) -> Option<&'a str> {
    let mut i = 0;
    for &e in expected {
        while i < actual.len() && actual[i] < e {
            i += 1;
        }
        if i < actual.len() && actual[i] == e {
            i += 1;
        } else {
            return Some(e);
        }
    }
    None
}

fn quote(s: &str) -> String {
    let cut: String = s.chars().take(60).collect();
    if cut.len() < s.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

fn exact(actual: &str, expected: &str) -> Result<(), String> {
    if actual == expected {
        return Ok(());
    }
    let at = actual.bytes().zip(expected.bytes()).take_while(|(a, e)| a == e).count();
    Err(format!("outputs differ from byte {at} on ({} bytes printed, {} expected)", actual.len(), expected.len()))
}

/// Lines without their trailing whitespace, without the blank lines at the end.
fn trimmed_lines(s: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = s.split('\n').map(str::trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn same_lines(actual: Vec<&str>, expected: Vec<&str>) -> Result<(), String> {
    for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
        if a != e {
            return Err(format!("line {}: expected {}, got {}", i + 1, quote(e), quote(a)));
        }
    }
    if actual.len() != expected.len() {
        return Err(format!("{} lines expected, {} printed", expected.len(), actual.len()));
    }
    Ok(())
}

fn tokens(actual: &str, expected: &str, equal: impl Fn(&str, &str) -> bool) -> Result<(), String> {
    let (a, e): (Vec<&str>, Vec<&str>) = (actual.split_whitespace().collect(), expected.split_whitespace().collect());
    for (i, (x, y)) in a.iter().zip(&e).enumerate() {
        if !equal(x, y) {
            return Err(format!("token {}: expected {}, got {}", i + 1, quote(y), quote(x)));
        }
    }
    if a.len() != e.len() {
        return Err(format!("{} tokens expected, {} printed", e.len(), a.len()));
    }
    Ok(())
}

/// A token that reads as a finite number; `inf` and `nan` compare as words.
fn number(token: &str) -> Option<f64> {
    token.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(rule: Compare, a: &str, e: &str) -> bool {
        compare(rule, a, e).is_ok()
    }

    #[test]
    fn exact_is_byte_for_byte() {
        assert!(ok(Compare::Exact, "1 2\n", "1 2\n"));
        assert!(!ok(Compare::Exact, "1 2", "1 2\n"));
        assert!(compare(Compare::Exact, "abc", "abd").unwrap_err().contains("byte 2"));
    }

    #[test]
    fn trim_ignores_trailing_whitespace_and_blank_lines_only() {
        assert!(ok(Compare::Trim, "1 2  \n3\r\n\n\n", "1 2\n3"));
        assert!(!ok(Compare::Trim, "1  2\n3", "1 2\n3"));
        assert!(!ok(Compare::Trim, "\n1", "1"));
        assert!(!ok(Compare::Trim, "1\n\n2", "1\n2"));
        assert_eq!(compare(Compare::Trim, "1\n5\n", "1\n4\n").unwrap_err(), "line 2: expected \"4\", got \"5\"");
    }

    #[test]
    fn tokens_ignore_all_whitespace() {
        assert!(ok(Compare::Tokens, "1   2\n\n3 ", "1 2 3"));
        assert!(!ok(Compare::Tokens, "1 2", "1 2 3"));
        assert!(!ok(Compare::Tokens, "12 3", "1 2 3"));
    }

    #[test]
    fn float_compares_numbers_within_either_tolerance() {
        let f = Compare::Float { abs_tol: 1e-6, rel_tol: 1e-9 };
        assert!(ok(f, "3.1415927 x", "3.14159265 x"));
        assert!(!ok(f, "3.1416", "3.14159265"));
        assert!(!ok(f, "3.1415927 y", "3.14159265 x"));
        // Relative tolerance carries large numbers.
        assert!(ok(f, "1000000000000.001", "1000000000000"));
        assert!(!ok(Compare::Float { abs_tol: 0.0, rel_tol: 0.0 }, "0.1", "0.10000001"));
        assert!(ok(f, "nan", "nan") && !ok(f, "inf", "1e308"));
    }

    #[test]
    fn case_insensitive_and_unordered_lines() {
        assert!(ok(Compare::CaseInsensitive, "YES\nNo \n", "yes\nno"));
        assert!(!ok(Compare::CaseInsensitive, "yes", "no"));
        assert!(ok(Compare::UnorderedLines, "b\na\nc  \n", "a\nb\nc\n"));
        assert!(!ok(Compare::UnorderedLines, "a\na\nc", "a\nb\nc"));
        assert!(compare(Compare::UnorderedLines, "a\nc", "a\nb\nc").unwrap_err().contains("\"b\""));
        // Repeats count: a second "a" is missing.
        assert!(compare(Compare::UnorderedLines, "a\nb", "a\na\nb").unwrap_err().contains("\"a\""));
        assert!(compare(Compare::UnorderedLines, "a\na\nb", "a\nb")
            .unwrap_err()
            .contains("2 lines expected, 3 printed"));
    }

    #[test]
    fn unordered_lines_name_the_missing_line_of_a_large_wrong_output() {
        // 100,000 distinct lines, none expected: quadratic would be 10^10 steps.
        let actual: String = (0..100_000).map(|i| format!("x{i}\n")).collect();
        let expected: String = (0..100_000).map(|i| format!("y{i}\n")).collect();
        let why = compare(Compare::UnorderedLines, &actual, &expected).unwrap_err();
        assert!(why.contains("\"y0\""), "{why}");
    }
}
