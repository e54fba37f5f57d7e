//! The bridge's `/metrics` after real messages: what was consumed, refused,
//! queued and produced is counted as it happened, nothing is owed once every
//! result is out, the lag is 0 once all is read, and `promtool` accepts it all.

use std::time::{Duration, Instant};

use optimus_tests::{logged_field, promtool_accepts, sample};
use serde_json::json;

use crate::{send, KafkaStack, Reader};

#[tokio::test]
async fn the_bridges_metrics_count_what_it_did_and_pass_promtool() {
    let stack = KafkaStack::start("scrc", &["scripts", "script-results"], &["python"], &[]).await;
    let log = stack.bridge.log();
    let line = log.lines().find(|l| l.contains("optimus-kafka started")).expect("the start line");
    let url = format!("http://{}", logged_field(line, "metrics").expect("the metrics address"));
    let producer = stack.broker.producer();
    for i in 0..3 {
        let script = json!({
            "id": format!("m-{i}"), "language": "python", "source": "print(int(input()) + 1)",
            "tests": [{ "input": format!("{i}\n"), "expected_output": format!("{}\n", i + 1) }],
        });
        send(&producer, "scripts", None, &script.to_string()).await;
    }
    send(&producer, "scripts", Some("m-bad-json"), "{").await;
    send(&producer, "scripts", None, &json!({ "id": "m-klingon", "language": "klingon", "source": "x" }).to_string())
        .await;
    let mut reader = Reader::new(&stack.broker, &["script-results"]);
    reader.until_keys(5, Duration::from_secs(300), || stack.logs()).await;

    let http = reqwest::Client::new();
    let health: serde_json::Value = http.get(format!("{url}/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["assigned"], true, "{health:#}");
    // The lag is sampled every 10 s, and a result is counted once acknowledged.
    let start = Instant::now();
    let text = loop {
        let text = http.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
        let lag: Vec<Option<f64>> = (0..crate::PARTITIONS)
            .map(|p| {
                sample(&text, "optimus_kafka_consumer_lag", &[("topic", "scripts"), ("partition", &p.to_string())])
            })
            .collect();
        let settled = sample(&text, "optimus_kafka_produced_total", &[("topic", "script-results")]) == Some(5.0)
            && sample(&text, "optimus_kafka_results_owed", &[]) == Some(0.0)
            && lag.iter().all(|l| *l == Some(0.0));
        if settled {
            break text;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the metrics never settled:\n{text}\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let count = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name}:\n{text}"))
    };
    assert_eq!(count("optimus_kafka_consumed_total", &[("topic", "scripts"), ("shape", "scrc")]), 5.0);
    assert_eq!(count("optimus_kafka_malformed_total", &[("topic", "scripts")]), 2.0);
    assert_eq!(count("optimus_kafka_jobs_queued_total", &[("language", "python")]), 3.0);
    assert_eq!(count("optimus_kafka_paused", &[]), 0.0);
    promtool_accepts(&text, "bridge");
    stack.stop();
}
