//! Fair share from outside: one key floods a language's queue with large jobs
//! while another submits one small job a second; the small key's latency, beside
//! the same probes with no flood. Both keys are made by `optimus-cli keys add`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use crate::{median, percentile, Client, POLL_ONE};

/// A client that sends `key` with every request.
pub fn keyed(api: &str, key: &str) -> anyhow::Result<Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {key}").parse().context("a key is one line")?);
    Ok(Client { http: reqwest::Client::builder().default_headers(headers).build()?, api: api.to_string() })
}

/// A Python job of `mib` tests of 1 MiB input each (the most a test's input may
/// be): each reads its input and prints its length.
fn flood_job(mib: usize) -> Value {
    let test = json!({"input": "x".repeat(1024 * 1024)});
    json!({
        "language": "python",
        "source_code": "import sys\nprint(len(sys.stdin.read()))",
        "test_cases": vec![test; mib],
    })
}

fn probe_job() -> Value {
    json!({"language": "python", "source_code": "print(int(input()) * 2)", "test_cases": [{"input": "21", "expected_output": "42"}]})
}

/// `probes` small jobs of the probe key, one a second; their latencies in ms.
async fn probe(client: &Client, probes: usize) -> anyhow::Result<Vec<f64>> {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..probes {
        tokio::time::sleep_until((t0 + Duration::from_secs(i as u64)).into()).await;
        let (client, job) = (Client { http: client.http.clone(), api: client.api.clone() }, probe_job());
        tasks.push(tokio::spawn(async move { client.run(&job, t0, POLL_ONE).await }));
    }
    let mut ms = Vec::new();
    for task in tasks {
        ms.push(task.await??.latency.as_secs_f64() * 1000.0);
    }
    Ok(ms)
}

/// The fair-share run; `slots` is how many of the language's jobs run at once
/// (for the arrival-order estimate it prints).
pub struct FairRun<'a> {
    pub flood_key: &'a str,
    pub probe_key: &'a str,
    pub probes: usize,
    pub mib: usize,
    pub backlog: usize,
    pub slots: usize,
}

pub async fn fair(api: &str, run: FairRun<'_>) -> anyhow::Result<()> {
    let FairRun { flood_key, probe_key, probes, mib, backlog, slots } = run;
    let (flooder, prober) = (keyed(api, flood_key)?, keyed(api, probe_key)?);
    println!(
        "fair share: {probes} probe jobs, one a second, of one key; the other key floods jobs of {mib} tests of 1 MiB"
    );
    let bare = probe(&prober, probes).await?;

    let flood = Flood::start(&flooder, mib, backlog);
    let start = Instant::now();
    while (flooder.queued().await? as usize) < backlog / 2 {
        let why = flood.last_refusal();
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(300),
            "the flood never reached {} queued: {why}",
            backlog / 2
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let depth_at_start = flooder.queued().await?;
    let flooded = probe(&prober, probes).await?;
    let depth_at_end = flooder.queued().await?;
    let one = flooder.run(&flood_job(mib), Instant::now(), POLL_ONE).await?;
    let flooded_jobs = flood.stop().await?.submitted;

    println!("  {:<34} {:>9} {:>9}", "probe latency (ms)", "p50", "p99");
    println!("  {:<34} {:>9.0} {:>9.0}", "bare (no flood)", median(&bare), percentile(&bare, 99.0));
    println!("  {:<34} {:>9.0} {:>9.0}", "beside the flood", median(&flooded), percentile(&flooded, 99.0));
    println!(
        "  the flood: {flooded_jobs} jobs of {mib} MiB submitted, {depth_at_start} queued as the probes began and {depth_at_end} as they ended"
    );
    // Its own run, from the record: started to finished (it waited behind its key's backlog first).
    let one_run = one.latency.saturating_sub(one.queue_wait).as_secs_f64();
    println!(
        "  one flood job runs in about {:.0} ms: in arrival order a probe would wait about {:.0} s behind \
         the {depth_at_start} queued, {slots} at a time",
        one_run * 1000.0,
        one_run * depth_at_start as f64 / slots.max(1) as f64
    );
    Ok(())
}

/// One key's flood: four writers keep `backlog` jobs queued (submitting again
/// whenever the queue has room), counting what was accepted and what refused.
pub struct Flood {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    writers: Vec<tokio::task::JoinHandle<()>>,
}

/// What a flood's submissions got.
#[derive(Clone, Default)]
pub struct Tally {
    pub submitted: usize,
    /// Refusals by HTTP status and error code (e.g. "429 over_quota").
    pub refused: BTreeMap<String, usize>,
    pub last_refusal: Option<String>,
}

impl Flood {
    pub fn start(client: &Client, mib: usize, backlog: usize) -> Flood {
        let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Tally::default())));
        let job = flood_job(mib);
        let writers = (0..4)
            .map(|_| {
                let client = Client { http: client.http.clone(), api: client.api.clone() };
                let (job, stop, tally) = (job.clone(), stop.clone(), tally.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        if client.queued().await.unwrap_or(0) as usize >= backlog {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                        let answer = match client.http.post(format!("{}/jobs", client.api)).json(&job).send().await {
                            Ok(res) => {
                                let status = res.status().as_u16();
                                let body: Value = res.json().await.unwrap_or_default();
                                (status == 202).then_some(()).ok_or_else(|| {
                                    format!("{status} {}", body["error"]["code"].as_str().unwrap_or("?"))
                                })
                            }
                            Err(e) => Err(format!("no answer: {e}")),
                        };
                        let refused = answer.is_err();
                        {
                            let mut t = tally.lock().expect("not poisoned");
                            match answer {
                                Ok(()) => t.submitted += 1,
                                Err(why) => {
                                    *t.refused.entry(why.clone()).or_default() += 1;
                                    t.last_refusal = Some(why);
                                }
                            }
                        }
                        if refused {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                })
            })
            .collect();
        Flood { stop, tally, writers }
    }

    pub fn last_refusal(&self) -> String {
        self.tally.lock().expect("not poisoned").last_refusal.clone().unwrap_or_default()
    }

    pub async fn stop(self) -> anyhow::Result<Tally> {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.writers {
            w.await?;
        }
        let tally = self.tally.lock().expect("not poisoned").clone();
        Ok(tally)
    }
}
