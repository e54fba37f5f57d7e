//! Fair share from outside: one key floods a language's queue with large jobs
//! while another submits one small job a second; the small key's latency, beside
//! the same probes with no flood. Both keys are made by `optimus-cli keys add`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use crate::{median, percentile, Client, POLL_ONE};

/// A client that sends `key` with every request.
fn keyed(api: &str, key: &str) -> anyhow::Result<Client> {
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

    // The flood: keeps `backlog` of its jobs queued (submitting again whenever the
    // queue has room), and measures how long one of them takes to run.
    let stop = Arc::new(AtomicBool::new(false));
    let submitted = Arc::new(AtomicUsize::new(0));
    let job = flood_job(mib);
    let refused = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (client, job, stop, submitted, refused) = (
            Client { http: flooder.http.clone(), api: flooder.api.clone() },
            job.clone(),
            stop.clone(),
            submitted.clone(),
            refused.clone(),
        );
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if client.queued().await.unwrap_or(0) as usize >= backlog {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                match client.submit(&job).await {
                    Ok(_) => {
                        submitted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        *refused.lock().expect("not poisoned") = Some(e.to_string());
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }));
    }
    let start = Instant::now();
    while (flooder.queued().await? as usize) < backlog / 2 {
        let why = refused.lock().expect("not poisoned").clone().unwrap_or_default();
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
    let one = flooder.run(&job, Instant::now(), POLL_ONE).await?;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await?;
    }

    println!("  {:<34} {:>9} {:>9}", "probe latency (ms)", "p50", "p99");
    println!("  {:<34} {:>9.0} {:>9.0}", "bare (no flood)", median(&bare), percentile(&bare, 99.0));
    println!("  {:<34} {:>9.0} {:>9.0}", "beside the flood", median(&flooded), percentile(&flooded, 99.0));
    println!(
        "  the flood: {} jobs of {mib} MiB submitted, {depth_at_start} queued as the probes began and {depth_at_end} as they ended",
        submitted.load(Ordering::Relaxed)
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
