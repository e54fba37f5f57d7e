//! `soak`: many mixed jobs at a steady rate (every language; accepted, wrong,
//! crashing, timed-out and hostile programs), each checked against the verdict it
//! must get. Prints how many accepted jobs never ended (lost), ended `failed`, or
//! got a verdict other than the expected one. `scripts/soak.sh` wraps it with the
//! checks that need the processes (duplicates, leaked containers, peak memory).
//! With a flooding key beside the mix (`--flood-key`), it also prints what the
//! flood got (accepted, refused by which limit) and the mix's latency per kind,
//! which fair share keeps near its bare figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::fair::{keyed, Flood};
use crate::{between, median, ms, percentile, programs, Client};

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
        /// From the record: created to finished, in ms (polling every 500 ms
        /// would blur a figure measured from outside).
        latency_ms: Option<f64>,
    },
    /// Accepted (202) and still not terminal when the soak gave up on it.
    Lost(String),
    /// Never accepted: refused with 503 (queue full) after every retry.
    Refused,
}

/// The flooding key beside the mix.
pub struct FloodArgs {
    pub key: String,
    pub mib: usize,
    pub backlog: usize,
}

pub struct SoakRun<'a> {
    pub jobs: usize,
    /// Jobs per second.
    pub rate: f64,
    /// The names of the kinds to run (all when empty), e.g. "fork bomb".
    pub only: &'a [String],
    pub flood: Option<FloodArgs>,
}

pub async fn soak(client: &Client, run: SoakRun<'_>) -> anyhow::Result<()> {
    let SoakRun { jobs, rate, only, flood } = run;
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
    let flood = match &flood {
        Some(f) => {
            println!("flood: another key keeps {} Python jobs of {} MiB queued", f.backlog, f.mib);
            Some(Flood::start(&keyed(&client.api, &f.key)?, f.mib, f.backlog))
        }
        None => None,
    };
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
    let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    for task in tasks {
        match task.await? {
            Outcome::Done { kind, status, overall, latency_ms } => {
                done += 1;
                latencies[kind].extend(latency_ms);
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
    println!("  {:<16} {:>6} {:>9} {:>9}", "latency (ms)", "jobs", "p50", "p99");
    for (kind, ms) in kinds.iter().zip(&latencies) {
        println!("  {:<16} {:>6} {:>9.0} {:>9.0}", kind.name, ms.len(), median(ms), percentile(ms, 99.0));
    }
    let all: Vec<f64> = latencies.concat();
    println!("  {:<16} {:>6} {:>9.0} {:>9.0}", "all", all.len(), median(&all), percentile(&all, 99.0));
    if let Some(flood) = flood {
        let tally = flood.stop().await?;
        println!("  flood: {} jobs accepted beside the mix", tally.submitted);
        for (why, n) in &tally.refused {
            println!("  flood refused: {n} x {why}");
        }
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
            let latency_ms = between(&record, "created_at", "finished_at").map(ms);
            return Outcome::Done {
                kind,
                status: status.to_string(),
                overall: record["result"]["overall_status"].as_str().unwrap_or("").to_string(),
                latency_ms,
            };
        }
    }
    Outcome::Lost(id)
}
