//! `optimus-worker --language <name>`: serves one language's queue until SIGINT or
//! SIGTERM, then drains. Refuses to start, with the fix in its message, when the
//! language is unknown or its image is missing.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use optimus_common::{LanguageRegistry, Settings};
use optimus_worker::{HostSlots, PoolConfig, Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "Runs one language's Optimus jobs in Docker sandboxes")]
struct Args {
    /// Language to serve, as named in the language registry.
    #[arg(long, env = "WORKER_LANGUAGE")]
    language: String,
    /// Jobs run at once (default: the language's `concurrency`).
    #[arg(long, env = "WORKER_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Seconds running jobs may take to finish after a shutdown signal.
    #[arg(long, env = "WORKER_DRAIN_SECS", default_value_t = 30)]
    drain_secs: u64,
    /// Containers kept started and waiting (default: the language's `pool_size`,
    /// else concurrency + 1).
    #[arg(long, env = "WORKER_POOL_SIZE")]
    pool_size: Option<usize>,
    /// 1: a container serves further jobs after a verified wipe; 0: one job each.
    #[arg(long, env = "OPTIMUS_POOL_REUSE", default_value = "1", value_parser = clap::builder::BoolishValueParser::new())]
    pool_reuse: bool,
    /// Jobs one container serves at most when reused.
    #[arg(long, env = "OPTIMUS_POOL_MAX_USES", default_value_t = 20)]
    pool_max_uses: u32,
    /// Jobs running at once on this host, over all its workers (default: its cores).
    #[arg(long, env = "OPTIMUS_HOST_SLOTS")]
    host_slots: Option<usize>,
    /// The directory of slot files every worker of this host shares.
    #[arg(long, env = "OPTIMUS_SLOTS_DIR", default_value = "/tmp/optimus-slots")]
    slots_dir: std::path::PathBuf,
    /// The host's compile cache, shared by every worker of this host.
    #[arg(long, env = "OPTIMUS_COMPILE_CACHE_DIR", default_value = "/tmp/optimus-compile-cache")]
    compile_cache_dir: std::path::PathBuf,
    /// MiB the compile cache holds at most, least recently used entries evicted
    /// past it; 0 turns it off (every job compiles).
    #[arg(long, env = "OPTIMUS_COMPILE_CACHE_MB", default_value_t = 256)]
    compile_cache_mb: u64,
    /// Serve Prometheus metrics at http://<addr>/metrics (off when unset; port 0
    /// picks a free one, logged).
    #[arg(long, env = "WORKER_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = optimus_common::telemetry::init("optimus-worker")?;
    let args = Args::parse();
    let settings = Settings::from_env()?;
    let registry = LanguageRegistry::load(&settings.languages_file)?;
    let language = registry.get(&args.language)?.clone();
    let concurrency = args.concurrency.unwrap_or(language.concurrency).max(1);
    let mut pool = PoolConfig::for_language(&language, concurrency);
    pool.size = args.pool_size.unwrap_or(pool.size);
    pool.reuse = args.pool_reuse;
    pool.max_uses = args.pool_max_uses.max(1);
    let host_slots = HostSlots::open(args.slots_dir.clone(), args.host_slots.unwrap_or_else(HostSlots::default_budget))
        .with_context(|| format!("cannot use {} for the host's job slots", args.slots_dir.display()))?;
    let compile_cache = match args.compile_cache_mb {
        0 => None,
        mb => Some(Arc::new(
            optimus_worker::CompileCache::open(args.compile_cache_dir.clone(), mb * 1024 * 1024)
                .with_context(|| format!("cannot use {} for the compile cache", args.compile_cache_dir.display()))?,
        )),
    };
    let config = WorkerConfig {
        docker_socket: None,
        compile_cache,
        host_slots,
        pool,
        language,
        registry: Arc::new(registry),
        concurrency,
        settings,
        drain_timeout: Duration::from_secs(args.drain_secs),
    };

    let worker = Worker::start(config).await.context("the worker cannot start")?;
    let shutdown = CancellationToken::new();
    if let Some(addr) = args.metrics_addr {
        let bound = worker
            .serve_metrics(addr, shutdown.clone())
            .await
            .with_context(|| format!("cannot serve metrics on {addr} (--metrics-addr)"))?;
        tracing::info!(addr = %bound, "metrics served at /metrics");
    }
    optimus_common::sync::cancel_on_signal(
        shutdown.clone(),
        "shutting down: running jobs drain, then the pool is removed",
    );
    let served = worker.run(shutdown).await;
    // The spans still buffered are exported before the process ends.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    served
}
