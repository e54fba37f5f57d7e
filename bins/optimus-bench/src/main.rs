//! `optimus-bench`: measures a running Optimus (`./setup.sh`) from outside, as its
//! users see it: from `POST /jobs` to the terminal status seen by polling.
//!
//! - `latency`: per language, a 10-test job's p50/p90/max; the cost of one more
//!   test (the slope from 1 to 21 tests); and, in the same run, a bare run of the
//!   same program in the same image (no runner, no launcher), so that the overhead
//!   is a difference of two figures measured side by side. Beside them, the
//!   10-test job's phases as its worker measured them (see `phases.rs`).
//! - `burst`: N jobs submitted at once: jobs/min, latency percentiles, the longest
//!   queue wait.
//! - `rate`: a constant arrival rate for a duration (languages in turn): the same
//!   figures, with the queue depth sampled over time.
//! - `judging`: the Python job judged each way (modes, rules, checkers, solutions).
//! - `bodies`: large hostile bodies at once, and the API's peak memory under them.
//! - `silent`: thousands of connections that send nothing, and `/health` beside them.
//! - `kafka`: the Kafka bridge beside the API: one job's latency each way, and
//!   jobs/s for a burst each way (see `kafka.rs`).
//! - `soak`: many mixed jobs at a steady rate, each checked for its verdict, for
//!   lost and failed jobs (see `scripts/soak.sh`).
//!
//! Under load each job is polled every 100 ms (one at a time, every 5 ms), so
//! latencies under load are accurate to about 100 ms.
//!
//! Each writes CSV files and SVG charts to `--out`. These are benchmark figures,
//! not tests: compare figures from one run only.

mod chart;
mod edge;
mod fair;
mod kafka;
mod phases;
mod programs;
mod scale;
mod soak;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use serde_json::Value;

#[derive(Parser)]
#[command(about = "Benchmarks a running Optimus API")]
struct Args {
    /// The API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    api: String,
    /// Where CSV files and charts go.
    #[arg(long, default_value = "bench-out", global = true)]
    out: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The Kafka bridge (SCRC shape) against POST /jobs: latency and jobs/s.
    Kafka {
        /// The brokers optimus-kafka reads from.
        #[arg(long, default_value = "127.0.0.1:9092")]
        brokers: String,
        #[arg(long, default_value = "scripts")]
        scripts: String,
        #[arg(long, default_value = "script-results")]
        results: String,
        /// Jobs one at a time, each way (median of these).
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Jobs at once, each way.
        #[arg(long, default_value_t = 200)]
        jobs: usize,
    },
    /// Latency of one job at a time, the per-test slope, and the bare run.
    Latency {
        /// Languages, comma-separated.
        #[arg(long, default_value = "python,java,rust")]
        languages: String,
        /// Jobs per figure (median of these).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// N jobs submitted at once.
    Burst {
        #[arg(long, default_value = "python")]
        language: String,
        #[arg(long, default_value_t = 100)]
        jobs: usize,
        #[arg(long, default_value_t = 10)]
        tests: usize,
    },
    /// A constant arrival rate for a while.
    Rate {
        /// Jobs per second.
        #[arg(long, default_value_t = 5.0)]
        rate: f64,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Languages, comma-separated, submitted in turn.
        #[arg(long, default_value = "python")]
        languages: String,
        #[arg(long, default_value_t = 10)]
        tests: usize,
    },
    /// The Python 10-test job judged each way.
    Judging {
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Large bodies at once (`{"test_cases": [{},{},…]}`): the API's peak RSS under them.
    Bodies {
        /// The API's pid (default: the one process named optimus-api).
        #[arg(long)]
        api_pid: Option<u32>,
        #[arg(long, default_value_t = 3)]
        count: usize,
        /// Each body's size.
        #[arg(long, default_value_t = 64)]
        mib: usize,
    },
    /// How cost grows with the work: jobs of more tests, of more input, and
    /// beside thousands of open event streams; latency, memory and slopes.
    Scale {
        /// Test counts of the tests steps (1000 needs OPTIMUS_MAX_TESTS=1000).
        #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
        tests: Vec<usize>,
        /// MB (10^6 bytes) of input of the input steps, in tests of 1 MB.
        #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
        input_mb: Vec<usize>,
        /// Event streams opened (more than 1000 needs OPTIMUS_MAX_STREAMS_PER_KEY); 0: none.
        #[arg(long, default_value_t = 2000)]
        streams: usize,
        /// Streams per source address (127.0.0.2, 127.0.0.3, ...).
        #[arg(long, default_value_t = 1000)]
        per_address: usize,
        /// Jobs per step (median of these).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Connections that send nothing, and `GET /health`'s latency beside them.
    Silent {
        #[arg(long, default_value_t = 20_000)]
        connections: usize,
        /// Silent connections per source address (127.0.0.2, 127.0.0.3, ...).
        #[arg(long, default_value_t = 1000)]
        per_address: usize,
        #[arg(long, default_value_t = 500)]
        requests: usize,
        /// How long to wait before counting the connections the API closed.
        #[arg(long, default_value_t = 12)]
        wait_secs: u64,
    },
    /// One key floods large jobs while another submits a small one a second: the
    /// small key's latency beside the flood and without it (fair share).
    Fair {
        /// The flooding key (`optimus-cli keys add --name flood`).
        #[arg(long)]
        flood_key: String,
        /// The probing key.
        #[arg(long)]
        probe_key: String,
        #[arg(long, default_value_t = 30)]
        probes: usize,
        /// Each flood job's input, in MiB.
        #[arg(long, default_value_t = 2)]
        mib: usize,
        /// Flood jobs kept queued.
        #[arg(long, default_value_t = 200)]
        backlog: usize,
        /// Python jobs that run at once (setup's worker: one per core), for the
        /// arrival-order estimate.
        #[arg(long, default_value_t = 2)]
        slots: usize,
    },
    /// Many mixed jobs (all languages, all verdicts, some hostile) at a steady rate.
    Soak {
        #[arg(long, default_value_t = 1000)]
        jobs: usize,
        /// Jobs per second.
        #[arg(long, default_value_t = 4.0)]
        rate: f64,
        /// Only these kinds of job, comma-separated (e.g. "fork bomb"); default all.
        #[arg(long, value_delimiter = ',')]
        kinds: Vec<String>,
        /// The key the mix is submitted with (none: anonymous).
        #[arg(long)]
        key: Option<String>,
        /// A second key that floods Python jobs of `--flood-mib` MiB beside the mix,
        /// keeping `--flood-backlog` of them queued, for the whole soak.
        #[arg(long)]
        flood_key: Option<String>,
        #[arg(long, default_value_t = 2)]
        flood_mib: usize,
        #[arg(long, default_value_t = 200)]
        flood_backlog: usize,
    },
}

/// One finished job as the benchmark saw it.
#[derive(Clone)]
struct Finished {
    language: String,
    /// When it was submitted, from the benchmark's start.
    submitted: Duration,
    /// Submit to terminal status.
    latency: Duration,
    /// From the job record: created to started.
    queue_wait: Duration,
    status: String,
    overall: String,
    /// Where the worker says the job's time went (`result.timings`).
    timings: Option<optimus_common::Timings>,
}

struct Client {
    http: reqwest::Client,
    api: String,
}

/// How often one job is polled: finely when jobs run one at a time (latency is
/// the figure), coarsely under load, where a poll every 5 ms of hundreds of jobs
/// would be the benchmark's own load on the API, not a user's.
const POLL_ONE: Duration = Duration::from_millis(5);
const POLL_UNDER_LOAD: Duration = Duration::from_millis(100);

impl Client {
    async fn submit(&self, job: &Value) -> anyhow::Result<String> {
        let res = self.http.post(format!("{}/jobs", self.api)).json(job).send().await?;
        let status = res.status();
        let body: Value = res.json().await?;
        if status.as_u16() != 202 {
            bail!("POST /jobs answered {status}: {body}");
        }
        Ok(body["job_id"].as_str().context("no job_id")?.to_string())
    }

    async fn get(&self, id: &str) -> anyhow::Result<Value> {
        Ok(self.http.get(format!("{}/jobs/{id}", self.api)).send().await?.json().await?)
    }

    /// Submits and polls every `every` until the job ends.
    async fn run(&self, job: &Value, t0: Instant, every: Duration) -> anyhow::Result<Finished> {
        let submitted = t0.elapsed();
        let start = Instant::now();
        let id = self.submit(job).await?;
        loop {
            let record = self.get(&id).await?;
            let status = record["status"].as_str().unwrap_or("").to_string();
            if matches!(status.as_str(), "completed" | "failed" | "cancelled") {
                let latency = start.elapsed();
                let queue_wait = between(&record, "created_at", "started_at").unwrap_or_default();
                return Ok(Finished {
                    language: job["language"].as_str().unwrap_or("").to_string(),
                    submitted,
                    latency,
                    queue_wait,
                    status,
                    overall: record["result"]["overall_status"].as_str().unwrap_or("").to_string(),
                    timings: serde_json::from_value(record["result"]["timings"].clone()).ok(),
                });
            }
            if start.elapsed() > Duration::from_secs(600) {
                bail!("job {id} still {status} after 10 minutes");
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Queued jobs over every language.
    async fn queued(&self) -> anyhow::Result<u64> {
        let v: Value = self.http.get(format!("{}/languages", self.api)).send().await?.json().await?;
        Ok(v["languages"].as_array().into_iter().flatten().filter_map(|l| l["queued_jobs"].as_u64()).sum())
    }
}

/// The time from a job record's timestamp `from` to its `to`, where both are set.
fn between(record: &Value, from: &str, to: &str) -> Option<Duration> {
    let time = |k: &str| record[k].as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    (time(to)? - time(from)?).to_std().ok()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The nearest-rank percentile `p` (0-100) of `values`.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

fn write_csv(path: &Path, header: &str, rows: impl IntoIterator<Item = String>) -> anyhow::Result<()> {
    let mut text = format!("{header}\n");
    for row in rows {
        text.push_str(&row);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn finished_csv(path: &Path, jobs: &[Finished]) -> anyhow::Result<()> {
    write_csv(
        path,
        "language,submitted_ms,latency_ms,queue_wait_ms,status,overall_status",
        jobs.iter().map(|f| {
            format!(
                "{},{:.1},{:.1},{:.1},{},{}",
                f.language,
                ms(f.submitted),
                ms(f.latency),
                ms(f.queue_wait),
                f.status,
                f.overall
            )
        }),
    )
}

/// A bare run of the language's program in its own image: compiled once, then
/// run `n` times from a shell loop on one test's input, in a container with the
/// sandbox's CPU share and, where the workers mount one, the same `/usr` volume
/// (`optimus_common::image::usr_volume`), so that both read the runtime from the
/// same storage. Returns the mean wall time of one run.
/// The bare run: the program started `n` times back to back by a shell loop in a
/// container of its image (same CPU limit, `/usr` from the same volume), with no
/// runner and no launcher; as root, and then as a sandbox uid (the kernel's
/// permission checks differ: on fuse-overlayfs a non-owner pays a round trip to
/// the daemon per lookup from `/`). Returns the mean per run of each.
async fn bare_run(language: &str, n: u32) -> anyhow::Result<(Duration, Duration)> {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    use bollard::models::{ContainerCreateBody, HostConfig};
    use bollard::query_parameters::RemoveContainerOptionsBuilder;
    use futures_util::StreamExt;

    let p = programs::program(language)?;
    let docker = bollard::Docker::connect_with_defaults()?.negotiate_version().await?;
    let image = format!("optimus-{language}:latest");
    let image_id = docker.inspect_image(&image).await?.id.unwrap_or_default();
    let volume = optimus_common::image::usr_volume(&image_id);
    let usr = docker.inspect_volume(&volume).await.is_ok().then(|| {
        vec![bollard::models::Mount {
            target: Some("/usr".into()),
            source: Some(volume),
            typ: Some(bollard::models::MountTypeEnum::VOLUME),
            read_only: Some(true),
            volume_options: Some(bollard::models::MountVolumeOptions { no_copy: Some(true), ..Default::default() }),
            ..Default::default()
        }]
    });
    let body = ContainerCreateBody {
        image: Some(image),
        cmd: Some(vec!["sleep".into(), "3600".into()]),
        // Root, in /box/prog: the directory the sandbox runs tests in (Java's
        // class-data archive is valid for that class path only).
        user: Some("0:0".into()),
        working_dir: Some("/".into()),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            nano_cpus: Some(1_000_000_000),
            memory: Some(1 << 30),
            mounts: usr,
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker.create_container(None::<bollard::query_parameters::CreateContainerOptions>, body).await?.id;
    let measured = async {
        docker.start_container(&id, None::<bollard::query_parameters::StartContainerOptions>).await?;
        let uid = optimus_protocol::SANDBOX_UID;
        let script = format!(
            "mkdir -p /box/prog && cd /box/prog && printf '%s' \"$SRC\" > {file} && printf '3 21\\n' > in && {compile} \
             printf '%s\\n' 'for i in 1 2 3; do {run} < in > /dev/null; done' \
               's=$(date +%s%N); for i in $(seq {n}); do {run} < in > /dev/null; done; e=$(date +%s%N)' \
               'echo $(( (e - s) / {n} / 1000 ))' > loop.sh && chmod -R a+rX /box/prog && \
             bash loop.sh && setpriv --reuid={uid} --regid={uid} --clear-groups bash loop.sh",
            file = p.file,
            compile = p.compile.map(|c| format!("{c} &&")).unwrap_or_default(),
            run = p.run,
        );
        let exec = docker
            .create_exec(
                &id,
                CreateExecOptions {
                    cmd: Some(vec!["bash".to_string(), "-c".to_string(), script]),
                    env: Some(vec![format!("SRC={}", p.source), "HOME=/tmp".to_string()]),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await?;
        let StartExecResults::Attached { mut output, .. } = docker.start_exec(&exec.id, None).await? else {
            bail!("exec started detached");
        };
        let mut said = String::new();
        while let Some(chunk) = output.next().await {
            said.push_str(&chunk?.to_string());
        }
        let lines: Vec<&str> = said.trim().lines().collect();
        let us = |line: Option<&&str>| -> anyhow::Result<Duration> {
            let us: u64 = line.unwrap_or(&"").trim().parse().with_context(|| format!("bare run: {said}"))?;
            Ok(Duration::from_micros(us))
        };
        Ok((us(lines.len().checked_sub(2).and_then(|i| lines.get(i)))?, us(lines.last())?))
    };
    let result = measured.await;
    let _ = docker.remove_container(&id, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await;
    result
}

async fn latency(client: &Client, out: &Path, languages: &str, runs: usize) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let mut rows = Vec::new();
    let mut phase_rows = Vec::new();
    println!(
        "{:<17} {:>8} {:>8} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9}  (ms; median of {runs}; bare as root, and as a sandbox uid)",
        "language", "p50", "p90", "max", "per test", "bare run", "overhead", "bare uid", "over uid"
    );
    for language in languages.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        // One job first, so that nothing measured pays for a cold cache.
        client.run(&programs::job(language, 10)?, t0, POLL_ONE).await?;
        let (bare, bare_uid) = bare_run(language, 20).await?;
        let (bare, bare_uid) = (ms(bare), ms(bare_uid));
        // A compiled language is measured twice: each job's source new (a
        // comment no compile has seen), so that it compiles; then the same
        // source every time, whose build the compile cache keeps.
        let compiled = programs::program(language)?.compile.is_some();
        for cached in if compiled { &[false, true][..] } else { &[false][..] } {
            let name = if *cached { format!("{language} (cached)") } else { language.to_string() };
            let (mut ten, mut ten_jobs, mut one, mut many) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for run in 0..runs {
                for (n, into) in [(10, &mut ten), (1, &mut one), (21, &mut many)] {
                    let job = if *cached || !compiled {
                        programs::job(language, n)?
                    } else {
                        programs::fresh_job(language, n, &uuid::Uuid::new_v4().to_string())?
                    };
                    let f = client.run(&job, t0, POLL_ONE).await?;
                    if f.overall != "accepted" {
                        bail!("a {language} job of {n} tests ended {} {}", f.status, f.overall);
                    }
                    rows.push(format!("{name},{n},{run},{:.1}", ms(f.latency)));
                    into.push(ms(f.latency));
                    if n == 10 {
                        ten_jobs.push(f);
                    }
                }
            }
            let slope = (median(&many) - median(&one)) / 20.0;
            println!(
                "{name:<17} {:>8.0} {:>8.0} {:>8.0} {:>10.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                median(&ten),
                percentile(&ten, 90.0),
                percentile(&ten, 100.0),
                slope,
                bare,
                slope - bare,
                bare_uid,
                slope - bare_uid
            );
            match phases::breakdown(&ten_jobs) {
                Some(b) => {
                    println!("  {name} 10-test phases (median): {}", b.line());
                    phase_rows.extend(b.rows(&name));
                }
                None => println!("  {name}: the worker stored no timings (an older worker?)"),
            }
        }
        rows.push(format!("{language},bare,0,{bare:.2}"));
        rows.push(format!("{language},bare-uid,0,{bare_uid:.2}"));
    }
    write_csv(&out.join("latency.csv"), "language,tests,run,latency_ms", rows)?;
    write_csv(&out.join("phases.csv"), "language,scope,phase,ms", phase_rows)?;
    println!("wrote {} and phases.csv", out.join("latency.csv").display());
    Ok(())
}

/// Runs `jobs` (each at its own offset from now) while sampling the queue depth.
async fn load(client: &Client, jobs: Vec<(Duration, Value)>) -> anyhow::Result<(Vec<Finished>, Vec<(f64, f64)>)> {
    let t0 = Instant::now();
    let client = std::sync::Arc::new(Client { http: client.http.clone(), api: client.api.clone() });
    let mut tasks = Vec::new();
    for (at, job) in jobs {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + at)).await;
            client.run(&job, t0, POLL_UNDER_LOAD).await
        }));
    }
    let depth = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampling = tokio::spawn({
        let (client, depth) = (client.clone(), depth.clone());
        async move {
            loop {
                if let Ok(q) = client.queued().await {
                    depth.lock().expect("depth lock").push((t0.elapsed().as_secs_f64(), q as f64));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    });
    let mut finished = Vec::new();
    for task in tasks {
        finished.push(task.await??);
    }
    sampling.abort();
    let depth = depth.lock().expect("depth lock").clone();
    Ok((finished, depth))
}

fn summarize(what: &str, finished: &[Finished]) {
    let lat: Vec<f64> = finished.iter().map(|f| ms(f.latency)).collect();
    let first = finished.iter().map(|f| f.submitted).min().unwrap_or_default();
    let last = finished.iter().map(|f| f.submitted + f.latency).max().unwrap_or_default();
    let span = (last - first).as_secs_f64();
    let not_ok = finished.iter().filter(|f| f.overall != "accepted").count();
    println!(
        "{what}: {} jobs in {span:.1} s = {:.0} jobs/min; latency p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms; \
         longest queue wait {:.0} ms; not accepted: {not_ok}",
        finished.len(),
        finished.len() as f64 / span * 60.0,
        percentile(&lat, 50.0),
        percentile(&lat, 90.0),
        percentile(&lat, 99.0),
        percentile(&lat, 100.0),
        finished.iter().map(|f| ms(f.queue_wait)).fold(0.0, f64::max)
    );
}

/// Latency percentiles and completions per second, by second of submission.
fn over_time(finished: &[Finished]) -> (Vec<chart::Series>, chart::Series) {
    let end = finished.iter().map(|f| (f.submitted + f.latency).as_secs()).max().unwrap_or(0);
    let (mut p50, mut p90, mut done) = (Vec::new(), Vec::new(), Vec::new());
    for s in 0..=end {
        let lat: Vec<f64> = finished.iter().filter(|f| f.submitted.as_secs() == s).map(|f| ms(f.latency)).collect();
        if !lat.is_empty() {
            p50.push((s as f64, percentile(&lat, 50.0)));
            p90.push((s as f64, percentile(&lat, 90.0)));
        }
        let n = finished.iter().filter(|f| (f.submitted + f.latency).as_secs() == s).count();
        done.push((s as f64, n as f64 * 60.0));
    }
    (
        vec![chart::Series { name: "p50".into(), points: p50 }, chart::Series { name: "p90".into(), points: p90 }],
        chart::Series { name: "completed (jobs/min)".into(), points: done },
    )
}

fn charts(out: &Path, name: &str, finished: &[Finished], depth: Vec<(f64, f64)>) -> anyhow::Result<()> {
    let (latency, throughput) = over_time(finished);
    chart::lines(&out.join(format!("{name}-latency.svg")), "Latency by second of submission", "s", "ms", &latency)?;
    chart::lines(&out.join(format!("{name}-throughput.svg")), "Jobs completed", "s", "jobs/min", &[throughput])?;
    chart::lines(
        &out.join(format!("{name}-queue.svg")),
        "Queued jobs",
        "s",
        "jobs",
        &[chart::Series { name: "queued".into(), points: depth }],
    )?;
    println!("wrote {}/{name}.csv and {name}-{{latency,throughput,queue}}.svg", out.display());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let client = Client { http: reqwest::Client::new(), api: args.api.trim_end_matches('/').to_string() };
    client.http.get(format!("{}/health", client.api)).send().await.with_context(|| {
        format!("the API does not answer at {} (start it with ./setup.sh, or pass --api)", client.api)
    })?;
    match args.command {
        Command::Latency { languages, runs } => latency(&client, &args.out, &languages, runs.max(1)).await,
        Command::Burst { language, jobs, tests } => {
            let job = programs::job(&language, tests)?;
            let (finished, depth) = load(&client, (0..jobs).map(|_| (Duration::ZERO, job.clone())).collect()).await?;
            summarize(&format!("burst of {jobs} {language} jobs of {tests} tests"), &finished);
            finished_csv(&args.out.join("burst.csv"), &finished)?;
            charts(&args.out, "burst", &finished, depth)
        }
        Command::Rate { rate, seconds, languages, tests } => {
            let langs: Vec<&str> = languages.split(',').map(str::trim).filter(|l| !l.is_empty()).collect();
            let n = (rate * seconds as f64).round() as usize;
            let jobs = (0..n)
                .map(|i| Ok((Duration::from_secs_f64(i as f64 / rate), programs::job(langs[i % langs.len()], tests)?)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let (finished, depth) = load(&client, jobs).await?;
            summarize(&format!("{rate} jobs/s for {seconds} s ({languages}, {tests} tests each)"), &finished);
            finished_csv(&args.out.join("rate.csv"), &finished)?;
            charts(&args.out, "rate", &finished, depth)
        }
        Command::Kafka { brokers, scripts, results, runs, jobs } => {
            let run =
                kafka::KafkaRun { brokers: &brokers, scripts: &scripts, results: &results, runs: runs.max(1), jobs };
            kafka::kafka(&client, run).await
        }
        Command::Bodies { api_pid, count, mib } => edge::bodies(&client.api, api_pid, count, mib).await,
        Command::Scale { tests, input_mb, streams, per_address, runs } => {
            let run = scale::ScaleRun { tests: &tests, input_mb: &input_mb, streams, per_address, runs };
            scale::scale(&client, run).await
        }
        Command::Silent { connections, per_address, requests, wait_secs } => {
            edge::silent(&client.api, connections, per_address, requests, wait_secs).await
        }
        Command::Fair { flood_key, probe_key, probes, mib, backlog, slots } => {
            let run = fair::FairRun { flood_key: &flood_key, probe_key: &probe_key, probes, mib, backlog, slots };
            fair::fair(&client.api, run).await
        }
        Command::Soak { jobs, rate, kinds, key, flood_key, flood_mib, flood_backlog } => {
            let mix = match key {
                Some(key) => fair::keyed(&client.api, &key)?,
                None => client,
            };
            let flood = flood_key.map(|key| soak::FloodArgs { key, mib: flood_mib, backlog: flood_backlog });
            soak::soak(&mix, soak::SoakRun { jobs, rate, only: &kinds, flood }).await
        }
        Command::Judging { runs } => {
            let t0 = Instant::now();
            println!("{:<20} {:>8}  (ms, median of {runs})", "python job", "p50");
            for (name, job) in programs::judging() {
                client.run(&job, t0, POLL_ONE).await?;
                let mut lat = Vec::new();
                for _ in 0..runs.max(1) {
                    let f = client.run(&job, t0, POLL_ONE).await?;
                    if f.overall != "accepted" {
                        bail!("{name} ended {} {}", f.status, f.overall);
                    }
                    lat.push(ms(f.latency));
                }
                println!("{name:<20} {:>8.0}", median(&lat));
            }
            Ok(())
        }
    }
}
