//! Cancelling a running job stops it (well before its own limit would), and the
//! worker goes on.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{expect, job, stack, sum_tests};
use crate::lifecycle::{containers_of, program_runs};

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_running_job_stops_it() {
    for lang_source in
        [("python", "import time\ntime.sleep(60)\n"), ("rust", "fn main() { loop { std::hint::black_box(0); } }\n")]
    {
        let (lang, source) = lang_source;
        let mut stack = stack(&[lang]).await;
        let mut j = job(lang, source, json!([{ "input": "" }, { "input": "" }]));
        j["timeout_ms"] = json!(20_000);
        let id = stack.submit(&j).await;
        stack.wait_for(&id, |s| s == "running").await;
        // Running means claimed: wait until the program itself runs (the only job
        // of this stack, in one of its containers).
        let start = Instant::now();
        while !program_runs(&format!("optimus.deployment={}", stack.deployment)).await {
            assert!(start.elapsed() < Duration::from_secs(120), "{lang}: the program never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let asked = Instant::now();
        let (status, body) = stack.cancel(&id).await;
        assert_eq!((status, body["status"].as_str()), (202, Some("running")), "{body}");
        let finished = stack.wait(&id).await;
        let took = asked.elapsed();
        assert_eq!(finished["status"], "cancelled", "{finished:#}");
        // It was the cancel that ended it: the program's own limit was 20 s away.
        assert!(took < Duration::from_secs(20), "{lang}: cancel took {took:?}");
        println!("{lang}: cancelled {} ms after the request", took.as_millis());

        // Its container goes, and the worker takes the next job.
        let start = Instant::now();
        while !containers_of(&id).await.is_empty() {
            assert!(start.elapsed() < Duration::from_secs(10), "container of cancelled job {id} still there");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (status, again) = stack.cancel(&id).await;
        assert_eq!((status, again["status"].as_str()), (200, Some("cancelled")));
        if lang == "python" {
            let next = stack
                .run(&job(
                    lang,
                    "import sys\nfor l in sys.stdin:\n    a, b = map(int, l.split())\n    print(a + b)\n",
                    sum_tests(2),
                ))
                .await;
            expect(&next, "accepted");
        }
        stack.stop().await;
    }
}
