//! The job loop of one worker process, serving one language.
//!
//! Each of `concurrency` slots pops with `BLMOVE` (queue -> this worker's processing
//! list), claims the job, runs it in the [`Sandbox`] while watching for a cancel, and
//! finishes it (result + removal from the processing list, atomically). A heartbeat
//! keeps this worker's claim on its jobs; the same task gives back the jobs of dead
//! peers (once it has itself been connected for a heartbeat timeout, and only if
//! they are still silent when their jobs are taken), and those on its own list that
//! no slot holds. A task moves retried jobs whose backoff passed back to the queue.
//! On shutdown the slots stop popping and drain; a job still running at the drain
//! deadline goes back to the front of its queue.
//!
//! This file: the worker, its slots and one job's handling. [`liveness`]: the
//! heartbeat, rescans, recovery, sweeps and promotion; [`engine`]: the gate that
//! holds the slots while the container engine is away.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use optimus_common::store::{Claimed, JobRef, Popper, RequeueOutcome};
use optimus_common::sync::Unpoisoned;
use optimus_common::{JobStatus, LanguageConfig, LanguageRegistry, Settings, Store};
use tokio::task::JoinSet;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{error, info, info_span, warn, Instrument};
use uuid::Uuid;

mod engine;
mod liveness;

use self::engine::EngineGate;
use crate::execute::{execute, Context};
use crate::host::HostSlots;
use crate::metrics::Metrics;
use crate::progress::Progress;
use crate::sandbox::{PoolConfig, Sandbox, SandboxError};

/// How a worker runs; built by `main` from flags and environment, or by tests.
#[derive(Clone)]
pub struct WorkerConfig {
    pub language: LanguageConfig,
    /// Every language: checkers and reference solutions may be written in any.
    pub registry: Arc<LanguageRegistry>,
    /// Jobs run at once.
    pub concurrency: usize,
    pub settings: Settings,
    /// How long in-flight jobs may run after shutdown begins before they are
    /// stopped and handed back to their queue.
    pub drain_timeout: Duration,
    /// The warm containers this worker keeps.
    pub pool: PoolConfig,
    /// The host's job slots, shared with every worker on this host.
    pub host_slots: HostSlots,
    /// The container engine's Unix socket (`None`: `DOCKER_HOST`, else the local one).
    pub docker_socket: Option<std::path::PathBuf>,
    /// The host's compile cache (`None`: every job compiles).
    pub compile_cache: Option<Arc<crate::CompileCache>>,
}

/// How long a worker keeps a finished job's result and retries storing it while
/// Redis does not answer, before it hands the job back.
pub const STORE_RETRY_FOR: Duration = Duration::from_secs(120);
/// Every how many heartbeats the containers of dead workers are swept.
const SWEEP_EVERY_BEATS: u32 = 6;

/// How often the retry set is checked for jobs whose backoff has passed.
const PROMOTE_EVERY: Duration = Duration::from_millis(250);

/// How often a running job's cancel marker is checked: cancels take effect within this.
const CANCEL_POLL: Duration = Duration::from_millis(200);
/// How long one `BLMOVE` waits; bounds how late a slot notices shutdown.
const POP_WAIT: Duration = Duration::from_secs(1);

/// The least of its outputs a result keeps when its owner is at its quota.
const ROOM_FLOOR: usize = 64 * 1024;

pub struct Worker {
    id: String,
    config: WorkerConfig,
    store: Store,
    sandbox: Sandbox,
    /// The jobs this worker's slots hold right now.
    held: Mutex<HashSet<Uuid>>,
    /// Jobs found on this worker's processing list, held by no slot, at the last
    /// rescan: handed back if the next rescan finds them so again.
    stranded: Mutex<HashSet<Uuid>>,
    /// The container engine stopped answering: slots wait until a probe finds it back.
    engine: EngineGate,
    /// Since when every heartbeat has reached Redis (`None`: the last one failed).
    /// Peers are presumed dead only after this worker has been connected for a
    /// whole heartbeat timeout: after an outage, live peers need that long to beat again.
    connected_since: Mutex<Option<tokio::time::Instant>>,
    /// Jobs whose end this worker could not store because a peer had taken them
    /// (this worker was presumed dead).
    lost_ownership: std::sync::atomic::AtomicU64,
    metrics: Arc<Metrics>,
    /// Stops the pool (and removes its idle containers) when the worker goes.
    _pool: DropGuard,
}

impl Worker {
    /// Connects to Redis and Docker, checks the image, registers the worker.
    pub async fn start(config: WorkerConfig) -> anyhow::Result<Self> {
        let id = format!("{}-{}", config.language.name, &Uuid::new_v4().simple().to_string()[..12]);
        let metrics = Arc::new(Metrics::new(&config.language.name));
        let store = Store::connect(&config.settings).await?;
        // Containers are labelled with the job store they serve (its URL may hold a
        // password, hence the fingerprint).
        let deployment = optimus_common::fingerprint(&[config.settings.redis_url.as_bytes()]);
        let sandbox = Sandbox::connect(
            config.language.clone(),
            id.clone(),
            deployment,
            config.settings.limits.output_limit_bytes,
            config.docker_socket.as_deref(),
        )
        .await?;
        let stop_pool = CancellationToken::new();
        let sandbox =
            sandbox.with_compile_cache(config.compile_cache.clone()).with_pool(config.pool, stop_pool.clone());
        store.register_worker(&config.language.name, &id).await?;
        Ok(Worker {
            id,
            config,
            store,
            sandbox,
            held: Mutex::new(HashSet::new()),
            stranded: Mutex::new(HashSet::new()),
            engine: EngineGate::default(),
            connected_since: Mutex::new(Some(tokio::time::Instant::now())),
            lost_ownership: std::sync::atomic::AtomicU64::new(0),
            metrics,
            _pool: stop_pool.drop_guard(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Serves this worker's metrics on `addr` until `shutdown`; returns the
    /// address bound (`:0` picks a free port).
    pub async fn serve_metrics(&self, addr: SocketAddr, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
        let (metrics, pool) = (self.metrics.clone(), self.sandbox.pool().cloned());
        let refresh = {
            let metrics = metrics.clone();
            move || {
                if let Some(pool) = &pool {
                    let (idle, busy, waits) = pool.counts();
                    metrics.pool_containers.with_label_values(&["idle"]).set(idle as i64);
                    metrics.pool_containers.with_label_values(&["busy"]).set(busy as i64);
                    metrics.pool_waits.inc_by(waits.saturating_sub(metrics.pool_waits.get()));
                }
            }
        };
        crate::metrics::serve(addr, metrics, refresh, shutdown).await
    }

    /// Serves until `shutdown` fires, then drains.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let this = Arc::new(self);
        let lang = this.config.language.name.clone();
        this.sweep_containers().await;

        // Fires when the drain deadline passes: running jobs are then handed back.
        let abort = CancellationToken::new();
        let mut slots = JoinSet::new();
        for slot in 0..this.config.concurrency {
            let (this, shutdown, abort) = (this.clone(), shutdown.clone(), abort.clone());
            slots.spawn(async move { this.slot(shutdown, abort).await }.instrument(info_span!("slot", slot)));
        }
        let stop_beat = CancellationToken::new();
        let beat = tokio::spawn({
            let (this, stop) = (this.clone(), stop_beat.clone());
            async move { this.heartbeat(stop).await }
        });
        let promote = tokio::spawn({
            let (this, stop) = (this.clone(), stop_beat.clone());
            async move { this.promote(stop).await }
        });
        info!(
            worker = %this.id,
            language = %lang,
            concurrency = this.config.concurrency,
            host_slots = this.config.host_slots.budget(),
            pool = this.config.pool.size,
            reuse = this.config.pool.reuse,
            "worker serving"
        );

        shutdown.cancelled().await;
        info!("shutting down: no new jobs; draining the ones running");
        let drained =
            tokio::time::timeout(this.config.drain_timeout, async { while slots.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!("drain deadline passed: handing running jobs back to their queue");
            abort.cancel();
            while slots.join_next().await.is_some() {}
        }
        stop_beat.cancel();
        let _ = beat.await;
        let _ = promote.await;
        if let Some(pool) = this.sandbox.pool() {
            pool.close().await;
        }
        match this.sandbox.remove_mine().await {
            Ok(0) => {}
            Ok(n) => info!(removed = n, "removed this worker's containers whose removal was under way"),
            Err(e) => warn!(error = %e, "could not remove this worker's last containers"),
        }
        // No slot runs now: whatever is still on this worker's list goes back. A
        // worker whose list cannot be emptied stays registered, so that a peer
        // recovers its jobs once its heartbeat has expired.
        if this.rescan(true).await > 0 {
            warn!("jobs remain on this worker's list; leaving them to a peer's recovery");
            return Ok(());
        }
        this.store.deregister_worker(&lang, &this.id).await?;
        let lost = this.lost_ownership.load(std::sync::atomic::Ordering::Relaxed);
        info!(jobs_taken_over_by_peers = lost, "worker stopped");
        Ok(())
    }

    async fn slot(&self, shutdown: CancellationToken, abort: CancellationToken) {
        let mut popper: Option<Popper> = None;
        let mut backoff = optimus_common::sync::Backoff::dependency();
        while !shutdown.is_cancelled() {
            // No job is taken while the engine is away: it would only fail.
            tokio::select! {
                _ = self.engine.ready() => {}
                _ = shutdown.cancelled() => break,
            }
            if popper.is_none() {
                match self.store.popper(&self.config.language.name, &self.id).await {
                    Ok(p) => popper = Some(p),
                    Err(e) => {
                        self.metrics.redis_errors.inc();
                        warn!(error = %e, "cannot reach Redis; retrying");
                        let wait = backoff.next_wait();
                        tokio::select! { _ = shutdown.cancelled() => break, _ = tokio::time::sleep(wait) => {} }
                        continue;
                    }
                }
            }
            let pop = popper.as_mut().expect("set above").pop(POP_WAIT).await;
            match pop {
                Ok(Some(id)) => {
                    backoff.reset();
                    self.held.locked().insert(id);
                    let span = info_span!(
                        "job",
                        job_id = %id,
                        language = %self.config.language.name,
                        mode = tracing::field::Empty,
                        verdict = tracing::field::Empty,
                    );
                    // The job's trace began at its submission, in the API, and the
                    // claim is what reads its context: the claim runs before the
                    // job's span is entered, and is recorded in it afterwards.
                    let started = std::time::SystemTime::now();
                    let claiming = tokio::time::Instant::now();
                    let claimed = self.store.claim(id, &self.config.language.name, &self.id).await;
                    let claim_us = claiming.elapsed().as_micros() as u64;
                    if let Ok(Some(parent)) =
                        claimed.as_ref().map(|c| c.as_ref().and_then(|c| c.traceparent.as_deref()))
                    {
                        optimus_common::telemetry::continue_trace(&span, parent);
                    }
                    optimus_common::telemetry::record_child(&span, "claim", started, std::time::SystemTime::now());
                    self.handle(id, claimed, claim_us, &abort).instrument(span).await;
                    self.held.locked().remove(&id);
                }
                Ok(None) => {}
                Err(e) => {
                    self.metrics.redis_errors.inc();
                    warn!(error = %e, "pop failed; reconnecting");
                    popper = None;
                }
            }
        }
    }

    /// One job, from its claim to a terminal state (or back to its queue).
    async fn handle(
        &self,
        id: Uuid,
        claimed: Result<Option<Claimed>, optimus_common::StoreError>,
        claim_us: u64,
        abort: &CancellationToken,
    ) {
        let Claimed { job, spec, attempt, created_at, .. } = match claimed {
            Ok(Some(claimed)) => claimed,
            Ok(None) => return,
            Err(e) => {
                // The job stays on our processing list: it is requeued when this
                // worker's next attempt fails too, or recovered if we die.
                self.metrics.redis_errors.inc();
                error!(error = %e, "claim failed");
                let _ = self.store.requeue(id, &self.id, "claim failed").await;
                return;
            }
        };
        tracing::Span::current().record("mode", spec.mode.as_str());
        let claimed_at = tokio::time::Instant::now();
        if let Some(created) = created_at {
            let waited = (chrono::Utc::now() - created).to_std().unwrap_or_default();
            self.metrics.queue_wait.observe(waited.as_secs_f64());
        }
        let cancel = abort.child_token();
        let watch = tokio::spawn(watch_cancel(self.store.clone(), id, cancel.clone()));
        let budget = self.output_budget(&job).await;
        let progress = Progress::new(self.store.clone(), id, attempt, budget, spec.test_cases.len());
        let ctx = Context {
            sandbox: &self.sandbox,
            registry: &self.config.registry,
            output_limit: self.config.settings.limits.output_limit_bytes,
            output_budget: budget,
            progress: Some(&progress),
        };
        // Dropping the job's future on a cancel drops its containers, which removes
        // them. A panic while judging ends this job (handed back like any sandbox
        // failure), never the slot.
        let judged = AssertUnwindSafe(async {
            // The job runs only while it holds one of the host's slots.
            let _slot = match self.config.host_slots.acquire().await {
                Ok(slot) => slot,
                Err(e) => return Err(SandboxError::Runner(format!("cannot take a host slot: {e}"))),
            };
            execute(&ctx, id, &spec).await
        })
        .catch_unwind();
        let outcome = tokio::select! {
            outcome = judged => outcome.unwrap_or_else(|panic| Err(SandboxError::Panicked(optimus_common::sync::panic_message(&*panic)))),
            _ = cancel.cancelled() => Err(SandboxError::Cancelled),
        };
        watch.abort();

        let finished = match outcome {
            Ok(mut result) => {
                let timings = result.timings.get_or_insert_with(Default::default);
                timings.claim_us = claim_us;
                let timings = *timings;
                info!(
                    verdict = ?result.overall_status,
                    mode = spec.mode.as_str(),
                    acquire_us = timings.acquire_us,
                    exec_us = timings.exec_us,
                    compile_us = timings.compile_us,
                    tests_sandbox_us = timings.tests.sandbox_us(),
                    tests = spec.test_cases.len(),
                    "job judged"
                );
                let verdict = crate::metrics::label(&result.overall_status);
                tracing::Span::current().record("verdict", verdict.as_str());
                let stored = self.store_end(&job, &spec, JobStatus::Completed, Some(&result), abort).await;
                self.record(&result, &timings, claimed_at.elapsed());
                stored
            }
            Err(SandboxError::Cancelled) if !abort.is_cancelled() => {
                info!("job cancelled while running");
                self.metrics.jobs_finished.with_label_values(&["cancelled"]).inc();
                self.store_end(&job, &spec, JobStatus::Cancelled, None, abort).await
            }
            Err(SandboxError::Cancelled) => {
                // Not the job's fault: back to the front of the queue, uncounted.
                self.metrics.requeued.with_label_values(&["uncounted"]).inc();
                match self.store.requeue_uncounted(id, &self.id, "its worker shut down while running it").await {
                    Ok(outcome) => info!(?outcome, "job handed back at shutdown"),
                    Err(e) => error!(error = %e, "could not hand the job back; a peer's recovery will"),
                }
                return;
            }
            Err(e @ (SandboxError::Docker(_) | SandboxError::Stream(_) | SandboxError::ImageMissing { .. }))
                if !self.sandbox.engine_answers().await =>
            {
                // The platform failed, not the job: it goes back without using an
                // attempt, and no slot takes another until the engine answers.
                warn!(error = %e, "the container engine does not answer; pausing this worker's slots");
                self.metrics.docker_errors.inc();
                self.metrics.requeued.with_label_values(&["uncounted"]).inc();
                self.engine.down(self.sandbox.clone());
                match self.store.requeue_uncounted(id, &self.id, "the container engine did not answer").await {
                    Ok(outcome) => info!(?outcome, "job handed back uncounted"),
                    Err(e) => error!(error = %e, "could not hand the job back; this worker's rescan will"),
                }
                return;
            }
            Err(e) => {
                if matches!(e, SandboxError::Docker(_)) {
                    self.metrics.docker_errors.inc();
                }
                error!(error = %e, "sandbox failed");
                self.give_back(id, &format!("sandbox failure: {e}")).await;
                return;
            }
        };
        if !finished {
            // Left on our processing list: handed back now if Redis answers again,
            // else by this worker's rescan, or a peer's recovery if we die.
            self.give_back(id, "its result could not be stored").await;
        }
    }

    /// Stores a job's end. While Redis does not answer, the result is kept and the
    /// store retried with backoff, for up to [`STORE_RETRY_FOR`] (less if the
    /// worker is being stopped); false if it never could.
    /// What the job may store of what its programs print (its result and the
    /// events that carry it): the worker's output budget, or less when the job's
    /// owner has less room left in its quota (half for the result, half for the
    /// events), never below [`ROOM_FLOOR`], so every verdict keeps a little of
    /// what it printed. Read once as the job starts: jobs of one key that run at
    /// once may each take the room, so a key can pass its quota by that much.
    async fn output_budget(&self, job: &JobRef) -> usize {
        let budget = self.config.settings.limits.job_output_budget_bytes;
        match self.store.room(job).await {
            Ok(Some(room)) => budget.min(((room / 2) as usize).max(ROOM_FLOOR)),
            Ok(None) => budget,
            Err(e) => {
                warn!(error = %e, "could not read the owner's quota; the job gets the whole output budget");
                budget
            }
        }
    }

    async fn store_end(
        &self,
        job: &JobRef,
        spec: &optimus_common::JobSpec,
        status: JobStatus,
        result: Option<&optimus_common::JobResult>,
        abort: &CancellationToken,
    ) -> bool {
        let span = info_span!("store", status = status.as_str());
        async {
            let start = tokio::time::Instant::now();
            let mut backoff = optimus_common::sync::Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
            loop {
                match self.store.finish(job, &self.id, status, result, None, Some(spec)).await {
                    Ok(true) => {
                        info!(status = status.as_str(), "job stored");
                        return true;
                    }
                    Ok(false) => {
                        let lost = self.lost_ownership.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        warn!(
                            jobs_taken_over_by_peers = lost,
                            "the job was no longer this worker's (presumed dead and recovered); its end is not stored"
                        );
                        return true;
                    }
                    Err(e) if start.elapsed() < STORE_RETRY_FOR && !abort.is_cancelled() => {
                        self.metrics.redis_errors.inc();
                        let wait = backoff.next_wait();
                        let retry_in_ms = wait.as_millis() as u64;
                        warn!(error = %e, retry_in_ms, "cannot store the job's end; keeping it and retrying");
                        // Jitter, so that workers do not all come back at once.
                        let jitter = Duration::from_millis(u64::from(Uuid::new_v4().as_bytes()[0]) % 100);
                        tokio::select! {
                            _ = tokio::time::sleep(wait + jitter) => {}
                            _ = abort.cancelled() => {}
                        }
                    }
                    Err(e) => {
                        self.metrics.redis_errors.inc();
                        error!(error = %e, "could not store the job's end; giving up");
                        return false;
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Counts a judged job: its verdict, its tests', and how long its parts took.
    fn record(&self, result: &optimus_common::JobResult, timings: &optimus_common::Timings, took: Duration) {
        let m = &self.metrics;
        m.jobs_finished.with_label_values(&[&crate::metrics::label(&result.overall_status)]).inc();
        for test in &result.test_results {
            m.test_verdicts.with_label_values(&[&crate::metrics::label(&test.verdict)]).inc();
            m.test_run.observe(test.execution_time_ms as f64 / 1000.0);
        }
        if self.config.language.compiled {
            m.compile.observe(timings.compile_us as f64 / 1e6);
            if self.config.compile_cache.is_some() {
                m.compile_cache.with_label_values(&[if result.compile_cached { "hit" } else { "miss" }]).inc();
            }
        }
        m.job.observe(took.as_secs_f64());
    }

    async fn give_back(&self, id: Uuid, reason: &str) {
        match self.store.requeue(id, &self.id, reason).await {
            Ok(RequeueOutcome::Failed) => {
                self.metrics.failed.inc();
                self.metrics.jobs_finished.with_label_values(&["failed"]).inc();
                warn!(reason, "job failed: out of attempts; on the dead-letter list")
            }
            Ok(outcome) => {
                self.metrics.requeued.with_label_values(&["counted"]).inc();
                info!(?outcome, reason, "job handed back")
            }
            Err(e) => {
                self.metrics.redis_errors.inc();
                error!(error = %e, "could not hand the job back; it is recovered when this worker stops")
            }
        }
    }
}

async fn watch_cancel(store: Store, id: Uuid, cancel: CancellationToken) {
    loop {
        tokio::time::sleep(CANCEL_POLL).await;
        if let Ok(true) = store.is_cancel_requested(id).await {
            cancel.cancel();
            return;
        }
    }
}
