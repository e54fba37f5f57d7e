//! SCRC's envelopes, end to end: scripts in its five languages with each of its
//! outcomes, and malformed messages answered without stopping the bridge.

use std::collections::HashMap;
use std::time::Duration;

use optimus_tests::programs::{C, CPP, GO, JAVA, PYTHON};
use serde_json::{json, Value};

use crate::{send, KafkaStack, Reader};

#[tokio::test]
async fn scripts_in_five_languages_come_back_with_scrcs_status_and_bad_ones_with_an_error() {
    let languages = ["python", "go", "c", "cpp", "java"];
    // A body limit of 64 KiB (the API's and the bridge's), which one message crosses.
    let env = [("OPTIMUS_MAX_BODY_BYTES", "65536")];
    let stack = KafkaStack::start("scrc", &["scripts", "script-results"], &languages, &env).await;
    let producer = stack.broker.producer();
    let sum_tests = json!([
        { "input": "2 3\n", "expected_output": "5\n" },
        { "number": 5, "input": "10 20\n", "expected_output": "30\n" },
    ]);
    let one = json!([{ "input": "2 3\n", "expected_output": "5\n" }]);
    let mut expected: HashMap<String, &str> = HashMap::new();
    for p in [PYTHON, GO, C, CPP, JAVA] {
        let mut cases = vec![
            ("ok", p.sum, json!({}), sum_tests.clone(), "OK"),
            ("wa", p.wrong, json!({}), one.clone(), "WA"),
            ("tl", p.spin, json!({ "time_limit_ms": 1000 }), one.clone(), "TL"),
            // A wide time limit: on a loaded machine memory must still run out first.
            ("ml", p.hog, json!({ "time_limit_ms": 15000, "memory_limit_bytes": 128 << 20 }), one.clone(), "ML"),
        ];
        // Python has no build step here: a syntax error is a runtime error.
        if let Some((broken, _)) = p.broken {
            cases.push(("bf", broken, json!({}), one.clone(), "BF"));
        }
        for (case, source, limits, tests, status) in cases {
            let id = format!("{}-{case}", p.lang);
            let script = json!({
                "type": "script", "id": id, "language": p.lang, "source": source, "limits": limits, "tests": tests,
            });
            send(&producer, "scripts", None, &script.to_string()).await;
            expected.insert(id, status);
        }
    }
    // What cannot become a job is answered with an error, keyed by what names it.
    send(&producer, "scripts", Some("garbage"), "this is not JSON").await;
    send(&producer, "scripts", None, &json!({ "id": "cobol", "language": "cobol", "source": "x" }).to_string()).await;
    send(&producer, "scripts", None, &json!({ "id": "empty", "language": "python", "source": "" }).to_string()).await;
    let negative = json!({ "id": "negative", "language": "c", "source": "x", "limits": { "time_limit_ms": -5 } });
    send(&producer, "scripts", None, &negative.to_string()).await;
    let huge = json!({ "id": "in-huge", "language": "python", "source": "print(1)", "tests": [{ "input": "7".repeat(70_000) }] });
    send(&producer, "scripts", Some("huge"), &huge.to_string()).await;
    // The end-of-stream marker is consumed and answered by nothing; what follows it still runs.
    send(&producer, "scripts", None, r#"{"type":"done"}"#).await;
    let after = json!({ "language": "python", "source": "print(int(input()) * 2)", "tests": [{ "input": "21\n", "expected_output": "42\n" }] });
    send(&producer, "scripts", Some("after-done"), &after.to_string()).await;
    for (id, status) in
        [("garbage", "-"), ("cobol", "-"), ("empty", "-"), ("negative", "-"), ("huge", "-"), ("after-done", "OK")]
    {
        expected.insert(id.into(), status);
    }

    let mut reader = Reader::new(&stack.broker, &["script-results"]);
    let want = expected.len();
    reader.until_keys(want, Duration::from_secs(600), || stack.logs()).await;
    let answers = reader.by_key();
    for (id, status) in &expected {
        let answer = &answers.get(id).unwrap_or_else(|| panic!("no answer for {id}")).body;
        assert_eq!(answer["status"], *status, "{id}: {answer:#}");
        assert_eq!(answer["id"], *id, "the key and the id agree");
    }
    assert_eq!(reader.seen.len(), want, "one answer per script: {:#?}", reader.seen);

    // An accepted script: each test numbered, echoed and passed, its output aggregated.
    let ok = &answers["c-ok"].body;
    let tests = ok["tests"].as_array().unwrap();
    assert_eq!(tests.iter().map(|t| t["number"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 5]);
    assert_eq!((tests[1]["input"].as_str(), tests[1]["stdout"].as_str()), (Some("10 20\n"), Some("30\n")));
    assert_eq!(ok["stdout"], "5\n30\n");
    assert_eq!((ok["exit_code"].as_i64(), ok["error"].as_str()), (Some(0), Some("")));
    // It is an ordinary job, shown by the API like any other.
    let job_id = ok["job_id"].as_str().unwrap();
    let job: Value =
        stack.system.http.get(stack.system.url(&format!("/jobs/{job_id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(job["result"]["overall_status"], "accepted", "{job:#}");
    // The others say why.
    assert_eq!(answers["c-tl"].body["error"], "time limit exceeded");
    assert_eq!(answers["c-bf"].body["tests"][0]["status"], "-");
    assert!(answers["c-bf"].body["stderr"].as_str().unwrap().contains("main.c:4"), "{:#}", answers["c-bf"].body);
    let says = |id: &str, text: &str| {
        let error = answers[id].body["error"].as_str().unwrap().to_string();
        assert!(error.contains(text), "{id}: {error}");
    };
    says("garbage", "not a script envelope");
    says("cobol", "not served here");
    says("empty", "source is required");
    says("negative", "must not be negative");
    // Refused unread, so named by its key, not by the id inside it.
    says("huge", "past the limit of 65536 bytes");
    stack.stop();
}
