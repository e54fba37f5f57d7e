//! `soak`: many mixed jobs at a steady rate (every language; accepted, wrong,
//! crashing, timed-out and hostile programs), each checked against the verdict it
//! must get. Prints how many accepted jobs never ended (lost), ended `failed`, or
//! got a verdict other than the expected one. `scripts/soak.sh` wraps it with the
//! checks that need the processes (duplicates, leaked containers, peak memory).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::programs;
use crate::Client;

/// One kind of job and the verdict it must end with.
struct Kind {
    name: &'static str,
    job: Value,
    expect: &'static str,
}

fn kinds() -> anyhow::Result<Vec<Kind>> {
    let mut kinds = Vec::new();
    for p in programs::PROGRAMS {
        kinds.push(Kind { name: p.language, job: programs::job(p.language, 3)?, expect: "accepted" });
    }
    let python = |name, source: &str, timeout_ms: u64, expect| Kind {
        name,
        job: json!({
            "language": "python", "source_code": source, "timeout_ms": timeout_ms,
            "test_cases": [{ "input": "1 2\n", "expected_output": "3\n" }],
        }),
        expect,
    };
    kinds.push(python("wrong", "print(4)", 2000, "wrong_answer"));
    kinds.push(python("crash", "raise SystemExit(3)", 2000, "runtime_error"));
    kinds.push(python("spin", "while True: pass", 300, "time_limit_exceeded"));
    kinds.push(python("memory bomb", "x = bytearray(1 << 30)", 2000, "memory_limit_exceeded"));
    kinds.push(python(
        "output flood",
        "import sys\nwhile True: sys.stdout.write('x' * 65536)",
        2000,
        "output_limit_exceeded",
    ));
    kinds.push(python(
        "fork bomb",
        "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
        500,
        "time_limit_exceeded",
    ));
    kinds.push(Kind {
        name: "bash sleeper",
        job: json!({
            "language": "bash", "source_code": "sleep 5 & sleep 5 & read a b; echo $((a + b))",
            "test_cases": [{ "input": "1 2\n", "expected_output": "3\n" }],
        }),
        expect: "accepted",
    });
    Ok(kinds)
}

/// What became of one submission.
enum Outcome {
    Done {
        kind: usize,
        status: String,
        overall: String,
    },
    /// Accepted (202) and still not terminal when the soak gave up on it.
    Lost(String),
    /// Never accepted: refused with 503 (queue full) after every retry.
    Refused,
}

/// `only`: the names of the kinds to run (all when empty), e.g. "fork bomb".
pub async fn soak(client: &Client, jobs: usize, rate: f64, only: &[String]) -> anyhow::Result<()> {
    let mut kinds = kinds()?;
    if !only.is_empty() {
        kinds.retain(|k| only.iter().any(|o| o == k.name));
        if kinds.is_empty() {
            bail!("no soak job kind is named {only:?}");
        }
    }
    let kinds = Arc::new(kinds);
    let client = Arc::new(Client { http: client.http.clone(), api: client.api.clone() });
    // At most this many jobs polled at once, so the soak cannot overrun the API itself.
    let polling = Arc::new(Semaphore::new(400));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(jobs);
    for i in 0..jobs {
        tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + Duration::from_secs_f64(i as f64 / rate))).await;
        let (client, kinds, polling) = (client.clone(), kinds.clone(), polling.clone());
        let kind = i % kinds.len();
        tasks.push(tokio::spawn(async move { one(&client, &kinds[kind].job, kind, &polling).await }));
        if (i + 1) % 500 == 0 {
            println!("{} submitted after {:.0} s", i + 1, t0.elapsed().as_secs_f64());
        }
    }
    let (mut lost, mut refused, mut failed, mut wrong) = (Vec::new(), 0, 0, 0);
    let mut done = 0;
    for task in tasks {
        match task.await? {
            Outcome::Done { kind, status, overall } => {
                done += 1;
                let k = &kinds[kind];
                if status == "failed" {
                    failed += 1;
                } else if status != "completed" || overall != k.expect {
                    wrong += 1;
                    eprintln!("{}: ended {status} {overall}, expected {}", k.name, k.expect);
                }
            }
            Outcome::Lost(id) => lost.push(id),
            Outcome::Refused => refused += 1,
        }
    }
    println!("soak: {jobs} jobs at {rate}/s over {:.0} s", t0.elapsed().as_secs_f64());
    println!("  ended:            {done}");
    println!("  lost (accepted, never ended): {}", lost.len());
    println!("  failed (platform): {failed}");
    println!("  unexpected verdict: {wrong}");
    println!("  refused (503 after retries, never accepted): {refused}");
    for id in lost.iter().take(20) {
        println!("  lost: {id}");
    }
    if !lost.is_empty() || failed > 0 || wrong > 0 {
        bail!("the soak found lost, failed or misjudged jobs");
    }
    Ok(())
}

/// The longest one job may take from submission to its end.
const JOB_DEADLINE: Duration = Duration::from_secs(900);

async fn one(client: &Client, job: &Value, kind: usize, polling: &Semaphore) -> Outcome {
    let mut id = None;
    for _ in 0..60 {
        match client.http.post(format!("{}/jobs", client.api)).json(job).send().await {
            Ok(res) if res.status().as_u16() == 202 => {
                id = res.json::<Value>().await.ok().and_then(|b| b["job_id"].as_str().map(str::to_string));
                break;
            }
            _ => tokio::time::sleep(Duration::from_secs(5)).await,
        }
    }
    let Some(id) = id else { return Outcome::Refused };
    let _permit = polling.acquire().await.expect("semaphore open");
    let start = Instant::now();
    while start.elapsed() < JOB_DEADLINE {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(record) = client.get(&id).await else { continue };
        let status = record["status"].as_str().unwrap_or("");
        if matches!(status, "completed" | "failed" | "cancelled") {
            return Outcome::Done {
                kind,
                status: status.to_string(),
                overall: record["result"]["overall_status"].as_str().unwrap_or("").to_string(),
            };
        }
    }
    Outcome::Lost(id)
}
