//! Codex's topics, end to end: the topic sets the mode, the correlation id comes
//! back, and what fails or cannot be read goes to the dead-letter topic.

use std::time::Duration;

use serde_json::{json, Value};

use crate::{send, KafkaStack, Reader};

const TOPICS: [&str; 7] =
    ["SUBMISSION_JOBS", "RUN_JOBS", "CUSTOM_JOBS", "SUBMISSION_RESULTS", "RUN_RESULTS", "CUSTOM_RESULTS", "DLQ_QUEUE"];

fn verdicts(answer: &Value) -> Vec<String> {
    answer["result"]["test_results"]
        .as_array()
        .unwrap_or_else(|| panic!("no test results: {answer:#}"))
        .iter()
        .map(|t| t["verdict"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_topic_sets_the_mode_and_failures_go_to_the_dead_letter_topic() {
    // A job whose checker's image was never built fails in the sandbox every time.
    let (_dir, registry) = optimus_tests::registry_with_ghost();
    let env =
        [("OPTIMUS_LANGUAGES", registry.as_str()), ("OPTIMUS_RETRY_BASE_MS", "200"), ("OPTIMUS_MAX_ATTEMPTS", "2")];
    let stack = KafkaStack::start("codex", &TOPICS, &["python"], &env).await;
    let producer = stack.broker.producer();

    // Three tests, the second one failing.
    let job = |id_field: &str, id: &str, expected: bool| {
        let tests: Vec<Value> = [("1 2\n", "3\n"), ("2 2\n", "5\n"), ("3 4\n", "7\n")]
            .iter()
            .map(|(i, o)| if expected { json!({ "input": i, "expected_output": o }) } else { json!({ "input": i }) })
            .collect();
        json!({
            id_field: id, "language": "python",
            "source_code": "a, b = map(int, input().split())\nprint(a + b)", "test_cases": tests,
        })
        .to_string()
    };
    send(&producer, "SUBMISSION_JOBS", None, &job("submissionId", "sub-1", true)).await;
    send(&producer, "RUN_JOBS", None, &job("tempId", "run-1", true)).await;
    send(&producer, "CUSTOM_JOBS", None, &job("tempId", "custom-1", false)).await;
    // Cannot be read, cannot be served, and fails in the sandbox every time.
    send(&producer, "RUN_JOBS", Some("bad-json"), "{ not json").await;
    send(
        &producer,
        "RUN_JOBS",
        None,
        &json!({ "tempId": "klingon-1", "language": "klingon", "source_code": "x" }).to_string(),
    )
    .await;
    let mut poison: Value = serde_json::from_str(&job("submissionId", "poison-1", true)).unwrap();
    poison["checker"] = json!({ "language": "ghost", "source_code": "print('AC')" });
    send(&producer, "RUN_JOBS", None, &poison.to_string()).await;

    let mut reader = Reader::new(&stack.broker, &TOPICS[3..]);
    reader.until(Duration::from_secs(300), || stack.logs(), |seen| seen.len() >= 6).await;
    let answers = reader.by_key();
    let on = |key: &str, topic: &str| -> Value {
        let read = answers.get(key).unwrap_or_else(|| panic!("no answer keyed {key}: {:#?}", reader.seen));
        assert_eq!(read.topic, topic, "{key}");
        read.body.clone()
    };

    let submitted = on("sub-1", "SUBMISSION_RESULTS");
    assert_eq!(submitted["submissionId"], "sub-1");
    assert_eq!(submitted["mode"], "submit");
    assert_eq!(verdicts(&submitted), ["accepted", "wrong_answer", "not_run"], "submit stops at the first failure");
    let run = on("run-1", "RUN_RESULTS");
    assert_eq!(run["tempId"], "run-1");
    assert_eq!(verdicts(&run), ["accepted", "wrong_answer", "accepted"], "run runs them all");
    let custom = on("custom-1", "CUSTOM_RESULTS");
    assert_eq!(custom["result"]["overall_status"], Value::Null, "custom judges nothing: {custom:#}");
    let outputs: Vec<&str> =
        custom["result"]["test_results"].as_array().unwrap().iter().map(|t| t["stdout"].as_str().unwrap()).collect();
    assert_eq!(outputs, ["3\n", "4\n", "7\n"]);

    let unreadable = on("bad-json", "DLQ_QUEUE");
    assert_eq!(unreadable["stage"], "intake");
    assert!(unreadable["reason"].as_str().unwrap().contains("not JSON"), "{unreadable:#}");
    assert_eq!(unreadable["payload"], "{ not json");
    let unserved = on("klingon-1", "DLQ_QUEUE");
    assert_eq!(unserved["correlation"], "klingon-1");
    assert!(unserved["reason"].as_str().unwrap().contains("klingon"), "{unserved:#}");
    let failed = on("poison-1", "DLQ_QUEUE");
    assert_eq!((failed["stage"].as_str(), failed["submissionId"].as_str()), (Some("job"), Some("poison-1")));
    assert_eq!(failed["attempts"], 2, "{failed:#}");
    assert!(failed["reason"].as_str().unwrap().contains("gave up after 2 attempts"), "{failed:#}");
    assert_eq!(reader.seen.len(), 6, "one answer per message: {:#?}", reader.seen);
    stack.stop();
}
