//! `scale`: how a job's cost grows with its work, measured from outside, one job
//! at a time. Python jobs of more and more tests, then of more and more input,
//! then jobs beside thousands of open event streams; per step the latency, the
//! peak resident memory the API and the Python worker added while the job ran, and
//! the slope from the step before. A cost that grows faster than the work shows
//! as a slope that rises from step to step. Memory is read from `/proc` (the
//! peaks reset before each job), so this runs on the stack's machine.
//!
//! Past the default bounds the stack must be started with larger ones, say
//! `OPTIMUS_MAX_TESTS=1000 OPTIMUS_MAX_STREAMS_PER_KEY=5000 ./setup.sh`; a step the
//! API refuses says which bound it crossed.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::edge::{find_process, status_mib};
use crate::{median, ms, programs, Client, POLL_ONE};

/// The bytes of each test of the input steps: just under the default
/// `OPTIMUS_MAX_TEST_BYTES` (1 MiB).
const TEST_BYTES: usize = 1_000_000;
/// Sums every number of its input.
const SUM_ALL: &str = "import sys\nprint(sum(map(int, sys.stdin.buffer.read().split())))\n";

pub struct ScaleRun<'a> {
    pub tests: &'a [usize],
    pub input_mb: &'a [usize],
    pub streams: usize,
    pub per_address: usize,
    pub runs: usize,
}

/// The processes whose memory is followed.
struct Watched {
    api: u32,
    worker: u32,
}

impl Watched {
    fn find() -> anyhow::Result<Self> {
        Ok(Watched { api: find_process("optimus-api", None)?, worker: find_process("optimus-worker", Some("python"))? })
    }

    /// Resets both peaks; their resident sets now.
    fn reset(&self) -> anyhow::Result<(f64, f64)> {
        for pid in [self.api, self.worker] {
            // 5 resets the peak resident set to the current one (proc(5), clear_refs).
            std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("cannot reset a peak RSS (root?)")?;
        }
        Ok((status_mib(self.api, "VmRSS:")?, status_mib(self.worker, "VmRSS:")?))
    }

    /// What each peaked above `base` since the reset.
    fn added(&self, base: (f64, f64)) -> anyhow::Result<(f64, f64)> {
        Ok((status_mib(self.api, "VmHWM:")? - base.0, status_mib(self.worker, "VmHWM:")? - base.1))
    }
}

/// One step: the median latency of `runs` runs of `job`, and the largest peaks added.
async fn step(client: &Client, watched: &Watched, job: &Value, runs: usize) -> anyhow::Result<(f64, f64, f64)> {
    let t0 = Instant::now();
    let (mut latencies, mut api, mut worker) = (Vec::new(), 0f64, 0f64);
    for _ in 0..runs {
        let base = watched.reset()?;
        let f = client.run(job, t0, POLL_ONE).await?;
        if f.overall != "accepted" {
            bail!("a scale job ended {} {}", f.status, f.overall);
        }
        let (a, w) = watched.added(base)?;
        latencies.push(ms(f.latency));
        (api, worker) = (api.max(a), worker.max(w));
    }
    Ok((median(&latencies), api, worker))
}

pub async fn scale(client: &Client, run: ScaleRun<'_>) -> anyhow::Result<()> {
    let watched = Watched::find()?;
    // One job first, so that nothing measured pays for a cold cache.
    client.run(&programs::job("python", 10)?, Instant::now(), POLL_ONE).await?;

    println!(
        "tests      p50 ms   ms/test since the step before   API peak +MiB   worker peak +MiB  (median of {})",
        run.runs
    );
    let mut before: Option<(usize, f64)> = None;
    for &n in run.tests {
        let (p50, api, worker) = step(client, &watched, &programs::job("python", n)?, run.runs)
            .await
            .with_context(|| format!("{n} tests (past OPTIMUS_MAX_TESTS? start the stack with a larger one)"))?;
        let slope = before.map(|(m, l)| format!("{:.2}", (p50 - l) / (n - m) as f64)).unwrap_or_else(|| "-".into());
        println!("{n:>5} {p50:>11.0} {slope:>31} {api:>15.1} {worker:>18.1}");
        before = Some((n, p50));
    }

    println!("input MB   p50 ms   ms/MB since the step before     API peak +MiB   worker peak +MiB  (tests of {TEST_BYTES} bytes)");
    let mut before: Option<(usize, f64)> = None;
    for &mb in run.input_mb {
        let (p50, api, worker) = step(client, &watched, &input_job(mb), run.runs)
            .await
            .with_context(|| format!("{mb} MB of input (past OPTIMUS_MAX_BODY_BYTES or OPTIMUS_MAX_TESTS?)"))?;
        let slope = before.map(|(m, l)| format!("{:.2}", (p50 - l) / (mb - m) as f64)).unwrap_or_else(|| "-".into());
        println!("{mb:>8} {p50:>8.0} {slope:>31} {api:>15.1} {worker:>18.1}");
        before = Some((mb, p50));
    }

    if run.streams > 0 {
        streams(client, &watched, &run).await?;
    }
    Ok(())
}

/// A job of `mb` MB (10^6 bytes) of input: `mb` tests of [`TEST_BYTES`]. 64 MB
/// is the most that fits the default `OPTIMUS_MAX_BODY_BYTES` (64 MiB) with the
/// JSON around it.
fn input_job(mb: usize) -> Value {
    // 83,333 pairs and four spaces: exactly TEST_BYTES, and as many in JSON (no
    // byte of it needs escaping, so 64 of them fit a 64 MiB body).
    let line = "12345 67890 ";
    let lines = TEST_BYTES / line.len();
    let input = format!("{}{}", line.repeat(lines), " ".repeat(TEST_BYTES - lines * line.len()));
    let expected = format!("{}\n", lines * (12345 + 67890));
    let tests: Vec<Value> = (0..mb.max(1)).map(|_| json!({"input": input, "expected_output": expected})).collect();
    json!({"language": "python", "source_code": SUM_ALL, "test_cases": tests})
}

/// Opens `run.streams` event streams on a job that sleeps, then measures
/// 10-test jobs beside them, against the same jobs beside the sleeper alone.
async fn streams(client: &Client, watched: &Watched, run: &ScaleRun<'_>) -> anyhow::Result<()> {
    let sleeper = json!({
        "language": "python", "source_code": "import time\ntime.sleep(50)\n", "timeout_ms": 30000,
        "test_cases": [{"input": ""}],
    });
    let holder = client.submit(&sleeper).await?;
    let job = programs::job("python", 10)?;
    let (alone, _, _) = step(client, watched, &job, run.runs).await?;
    let (api_before, _) = watched.reset()?;
    let started = Instant::now();
    let (open, refused) = open_streams(&client.api, &holder, run.streams, run.per_address).await?;
    let opened_in = started.elapsed();
    let api_with = status_mib(watched.api, "VmRSS:")?;
    let (beside, api_peak, worker_peak) = step(client, watched, &job, run.runs).await?;
    println!(
        "{} event streams open ({refused} refused{}) in {opened_in:.2?}: API resident +{:.1} MiB ({:.1} KiB a stream)",
        open.len(),
        if refused > 0 { ": past OPTIMUS_MAX_STREAMS_PER_KEY?" } else { "" },
        api_with - api_before,
        (api_with - api_before) * 1024.0 / open.len().max(1) as f64,
    );
    println!(
        "10-test job p50: {alone:.0} ms beside the sleeper alone, {beside:.0} ms beside the streams too \
         (API peak +{api_peak:.1} MiB, worker +{worker_peak:.1} MiB while it ran)"
    );
    drop(open);
    let _ = client.http.delete(format!("{}/jobs/{holder}", client.api)).send().await;
    Ok(())
}

/// `count` raw event-stream requests on `job`, `per_address` from each source
/// address (127.0.0.2, 127.0.0.3, ...); the ones answered 200, and how many were not.
async fn open_streams(
    api: &str,
    job: &str,
    count: usize,
    per_address: usize,
) -> anyhow::Result<(Vec<tokio::net::TcpStream>, usize)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr: std::net::SocketAddr = tokio::net::lookup_host(api.trim_start_matches("http://"))
        .await?
        .next()
        .context("the API's address does not resolve")?;
    let request = format!("GET /jobs/{job}/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    let (mut open, mut refused) = (Vec::with_capacity(count), 0);
    for i in 0..count {
        let n = 2 + i / per_address.max(1);
        let source = std::net::Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8);
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind((source, 0).into())?;
        let mut stream = socket.connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut head = [0u8; 12];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut head)).await;
        match read {
            Ok(Ok(_)) if head.starts_with(b"HTTP/1.1 200") => open.push(stream),
            _ => refused += 1,
        }
    }
    Ok((open, refused))
}
