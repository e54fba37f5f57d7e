//! The README's job examples, submitted as printed: each must be accepted, and
//! each documented outcome must be part of what the job really ends as.

use serde_json::Value;

use crate::helpers::{stack, summary};

/// A `curl ... -X POST .../jobs ... -d '<body>'` block of the README, and the JSON
/// block printed after it.
struct Example {
    body: Value,
    shown: Value,
}

fn examples(readme: &str) -> Vec<Example> {
    let blocks: Vec<(&str, &str)> =
        readme.split("```").skip(1).step_by(2).map(|b| b.split_once('\n').unwrap_or((b, ""))).collect();
    let mut found = Vec::new();
    for pair in blocks.windows(2) {
        let ((lang, code), (next_lang, next)) = (pair[0], pair[1]);
        if lang != "bash" || !code.contains("-X POST http://127.0.0.1:8080/jobs") || next_lang != "json" {
            continue;
        }
        let body = code.split_once("-d '").map(|(_, b)| b.trim_end().trim_end_matches('\'')).expect("a -d body");
        found.push(Example {
            body: serde_json::from_str(body).unwrap_or_else(|e| panic!("README body is not JSON ({e}):\n{body}")),
            shown: serde_json::from_str(next).unwrap_or_else(|e| panic!("README output is not JSON ({e}):\n{next}")),
        });
    }
    found
}

/// Every field `shown` gives is in `actual` with the same value (arrays element by element).
fn contains(actual: &Value, shown: &Value) -> bool {
    match (actual, shown) {
        (Value::Object(a), Value::Object(s)) => s.iter().all(|(k, v)| a.get(k).is_some_and(|x| contains(x, v))),
        (Value::Array(a), Value::Array(s)) => a.len() == s.len() && a.iter().zip(s).all(|(x, v)| contains(x, v)),
        _ => actual == shown,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_examples_end_as_shown() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let examples = examples(&readme);
    assert!(examples.len() >= 7, "found only {} examples", examples.len());
    let mut stack = stack(&["python"]).await;
    for example in &examples {
        let id = stack.submit(&example.body).await;
        if example.shown.get("result").is_none() {
            // The submission's own answer is shown: it is queued.
            assert_eq!(example.shown["status"], "queued");
            continue;
        }
        let job = stack.wait(&id).await;
        assert!(
            contains(&job, &example.shown),
            "README example ended otherwise:\nshown: {}\nreal:  {}\n{}",
            example.shown,
            job["result"],
            summary(&job)
        );
    }
    stack.stop().await;
}

#[test]
fn containment_is_strict_where_it_matters() {
    let real = serde_json::json!({"a": 1, "b": [{"x": 1, "y": 2}, {"x": 3}]});
    assert!(contains(&real, &serde_json::json!({"b": [{"x": 1}, {}]})));
    assert!(!contains(&real, &serde_json::json!({"b": [{"x": 1}]})));
    assert!(!contains(&real, &serde_json::json!({"a": 2})));
    assert!(!contains(&real, &serde_json::json!({"c": null})));
}
