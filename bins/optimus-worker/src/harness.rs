//! The `python_call` harness: what runs in the container in place of the
//! submission (`harness/python_call.py`), and how two of its answers compare.
//!
//! The harness prints one JSON object per call: `{"value": <encoded>, "repr": ...}`
//! or `{"raised": {"type", "message"}}`; its encoding makes structural equality
//! JSON equality, except that numbers may be compared within a tolerance.

use optimus_common::{Compare, Harness, Verdict};
use serde_json::Value;

/// The harness, shipped with every such job so that it always matches this worker.
const PYTHON_CALL: &str = include_str!("harness/python_call.py");

/// The files a harnessed job unpacks: the harness as the language's source file,
/// the code under test beside it.
pub fn sources<'a>(source_file: &'a str, code: &'a str) -> [(&'a str, &'a [u8]); 2] {
    // The harness finds the code it calls in this file (python_call.py imports it).
    [(source_file, PYTHON_CALL.as_bytes()), (Harness::PythonCall.submission_file(), code.as_bytes())]
}

/// What one call did.
enum Outcome {
    Returned { value: Value, repr: String },
    Raised { kind: String, message: String },
}

fn parse(output: &str) -> Option<Outcome> {
    let v: Value = serde_json::from_str(output.trim()).ok()?;
    if let Some(raised) = v.get("raised") {
        return Some(Outcome::Raised {
            kind: raised.get("type")?.as_str()?.to_string(),
            message: raised.get("message")?.as_str()?.to_string(),
        });
    }
    Some(Outcome::Returned { value: v.get("value")?.clone(), repr: v.get("repr")?.as_str()?.to_string() })
}

/// Judges the program's answer to `call` against the solution's. Under a `float`
/// rule, numbers match within its tolerances.
pub fn judge(call: &str, actual: &str, expected: &str, rule: Compare) -> (Verdict, Option<String>) {
    let call: String = call.trim().chars().take(100).collect();
    let Some(expected) = parse(expected) else {
        return (Verdict::InternalError, Some("the reference solution's answer was unreadable".into()));
    };
    let Some(actual) = parse(actual) else {
        return (
            Verdict::WrongAnswer,
            Some(format!("{call}: no readable result (the program wrote over the harness's output, or exited)")),
        );
    };
    let wrong = |message: String| (Verdict::WrongAnswer, Some(message));
    match (actual, expected) {
        (Outcome::Returned { value: a, repr: ar }, Outcome::Returned { value: e, repr: er }) => {
            if same(&a, &e, rule) {
                (Verdict::Accepted, None)
            } else {
                wrong(format!("{call} returned {ar}; expected {er}"))
            }
        }
        (Outcome::Raised { kind, message }, Outcome::Returned { repr, .. }) => {
            wrong(format!("{call} raised {kind}: {message}; expected {repr}"))
        }
        (Outcome::Returned { repr, .. }, Outcome::Raised { kind, .. }) => {
            wrong(format!("{call} returned {repr}; expected it to raise {kind}"))
        }
        // Messages vary between correct programs; the exception's type is the contract.
        (Outcome::Raised { kind: a, message }, Outcome::Raised { kind: e, .. }) if a != e => {
            wrong(format!("{call} raised {a}: {message}; expected {e}"))
        }
        (Outcome::Raised { .. }, Outcome::Raised { .. }) => (Verdict::Accepted, None),
    }
}

/// Structural equality of two encoded values.
fn same(a: &Value, e: &Value, rule: Compare) -> bool {
    match (a, e) {
        (Value::Number(x), Value::Number(y)) => match rule {
            Compare::Float { abs_tol, rel_tol } => match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() <= abs_tol || (x - y).abs() <= rel_tol * y.abs(),
                _ => false,
            },
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y, rule)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w, rule)))
        }
        _ => a == e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(actual: &str, expected: &str) -> Verdict {
        judge("f()", actual, expected, Compare::Trim).0
    }

    #[test]
    fn values_compare_structurally() {
        let point = r#"{"value": {"$object": {"x": 1, "y": [2, 3.5]}}, "repr": "P(x=1)"}"#;
        assert_eq!(verdict(point, point), Verdict::Accepted);
        let other = r#"{"value": {"$object": {"x": 1, "y": [2, 3.25]}}, "repr": "Q(x=1)"}"#;
        let (v, msg) = judge("f()", other, point, Compare::Trim);
        assert_eq!(v, Verdict::WrongAnswer);
        assert_eq!(msg.unwrap(), "f() returned Q(x=1); expected P(x=1)");
        let close = r#"{"value": 0.30000000000000004, "repr": "0.30000000000000004"}"#;
        let exact = r#"{"value": 0.3, "repr": "0.3"}"#;
        assert_eq!(verdict(close, exact), Verdict::WrongAnswer);
        assert_eq!(judge("f()", close, exact, Compare::Float { abs_tol: 1e-9, rel_tol: 0.0 }).0, Verdict::Accepted);
    }

    #[test]
    fn exceptions_compare_by_type() {
        let raised = |t: &str| format!(r#"{{"raised": {{"type": "{t}", "message": "m {t}"}}}}"#);
        assert_eq!(verdict(&raised("ValueError"), &raised("ValueError")), Verdict::Accepted);
        let (v, msg) = judge("f()", &raised("KeyError"), &raised("ValueError"), Compare::Trim);
        assert_eq!(
            (v, msg.unwrap().as_str()),
            (Verdict::WrongAnswer, "f() raised KeyError: m KeyError; expected ValueError")
        );
        let value = r#"{"value": null, "repr": "None"}"#;
        assert!(judge("f()", &raised("ZeroDivisionError"), value, Compare::Trim)
            .1
            .unwrap()
            .contains("ZeroDivisionError"));
        assert_eq!(verdict(value, &raised("ValueError")), Verdict::WrongAnswer);
    }

    #[test]
    fn unreadable_answers() {
        let value = r#"{"value": 1, "repr": "1"}"#;
        assert_eq!(verdict("garbage", value), Verdict::WrongAnswer);
        assert_eq!(verdict(value, ""), Verdict::InternalError);
        assert!(parse(value).is_some() && parse("1").is_none());
    }
}
