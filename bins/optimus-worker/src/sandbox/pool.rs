//! A warm pool of one language's sandbox containers: created, hardened exactly as
//! a fresh one and started before any job needs them, so that no create or start
//! is on a job's path. A background task keeps `size` of them waiting.
//!
//! With reuse on, a container that served a job cleanly goes back after a
//! verified wipe (the last step of the job's own runner session: every process of
//! the sandbox user killed, every writable place emptied and checked empty, the
//! job's files removed; the session must exit 0) and its memory limit put back, at most `max_uses` times; after any anomaly (a failed
//! run or reset, an OOM kill, a cancel) it is destroyed. With reuse off each
//! container serves one job. A pool with no job for a minute keeps one container
//! waiting, so an idle language costs next to nothing; the next job refills it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::query_parameters::InspectContainerOptions;
use bollard::Docker;
use optimus_common::sync::Unpoisoned;
use optimus_common::LanguageConfig;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::container::{self, Lease};
use super::session::{Channel, Session};
use super::{Sandbox, SandboxError, STALL_GRACE};

/// How long a pool keeps all its containers waiting after the last job.
const IDLE_AFTER: Duration = Duration::from_secs(60);

/// How long a job waits for a container that is being created or wiped before
/// it makes one of its own.
const ACQUIRE_WAIT: Duration = Duration::from_secs(2);

/// How long a job's runner may take to end after its job, before its container
/// is destroyed rather than reused.
const RUNNER_END: Duration = Duration::from_secs(2);

/// How a pool behaves; from the language's config and the worker's settings.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Containers kept started and waiting.
    pub size: usize,
    /// Whether a container may serve another job after a verified wipe.
    pub reuse: bool,
    /// Jobs one container serves at most, with reuse.
    pub max_uses: u32,
}

impl PoolConfig {
    /// The defaults: `pool_size` from the language (else `concurrency` + 1), reuse
    /// on, 20 jobs per container.
    pub fn for_language(language: &LanguageConfig, concurrency: usize) -> Self {
        PoolConfig { size: language.pool_size.unwrap_or(concurrency + 1), reuse: true, max_uses: 20 }
    }
}

/// A started container, as the pool hands it out or takes it back.
pub(super) struct Warm {
    pub lease: Lease,
    /// Its init's stream; a session holds it while it runs.
    pub channel: Option<Channel>,
    /// Jobs it has served.
    pub uses: u32,
    /// Its memory limit now.
    pub memory: i64,
}

/// What the pool holds, changed only under its lock, so that no container is
/// started after `close` looked and none is counted twice.
#[derive(Default)]
struct State {
    idle: VecDeque<Warm>,
    /// Containers being created or wiped: counted towards `size`.
    pending: usize,
    /// Containers being removed: close() waits for them too.
    removing: usize,
    /// close() has begun: nothing new is created or kept.
    stopped: bool,
    /// When a job last took a container (`None`: none yet).
    last_acquire: Option<Instant>,
    /// Every container this pool made that may still exist, idle or in use, and
    /// when it was made.
    known: HashMap<String, Instant>,
}

impl State {
    /// No job has taken a container for [`IDLE_AFTER`] (or ever).
    fn quiet(&self) -> bool {
        self.last_acquire.is_none_or(|t| t.elapsed() >= IDLE_AFTER)
    }

    /// How many containers to make sure are waiting: all `size` while jobs come,
    /// at most one in a quiet pool (an idle language costs one container).
    fn target(&self, size: usize) -> usize {
        if self.quiet() {
            size.min(1)
        } else {
            size
        }
    }
}

struct Inner {
    docker: Docker,
    language: LanguageConfig,
    worker: String,
    deployment: String,
    /// The memory limit containers are created with and put back to.
    memory: i64,
    usr_volume: Option<String>,
    config: PoolConfig,
    state: Mutex<State>,
    /// Wakes the refill task.
    wake: Notify,
    /// Wakes acquirers: a container became idle, or one under way ended otherwise.
    changed: Notify,
    stop: CancellationToken,
    /// Acquisitions that found no idle container.
    waits: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    /// Starts the pool's refill task for `sandbox`'s language; it runs until
    /// `stop` fires or [`Pool::close`].
    pub(super) fn start(sandbox: &Sandbox, memory: i64, config: PoolConfig, stop: CancellationToken) -> Self {
        let inner = Arc::new(Inner {
            docker: sandbox.docker.clone(),
            language: sandbox.language.clone(),
            worker: sandbox.worker_id.clone(),
            deployment: sandbox.deployment.clone(),
            memory,
            usr_volume: sandbox.usr_volume.clone(),
            config,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            changed: Notify::new(),
            stop,
            waits: Default::default(),
        });
        let pool = Pool { inner };
        tokio::spawn(pool.clone().refill());
        pool
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.locked()
    }

    /// Stops refilling, waits (boundedly) for the creations, wipes and removals
    /// under way, and removes every idle container, waiting for the engine:
    /// nothing of the pool outlives it.
    pub async fn close(&self) {
        self.state().stopped = true;
        self.inner.stop.cancel();
        let start = Instant::now();
        loop {
            // Once stopped nothing new becomes idle: what is under way ends removed.
            let (idle, busy) = {
                let mut state = self.state();
                (state.idle.drain(..).collect::<Vec<_>>(), state.pending + state.removing)
            };
            futures_util::future::join_all(idle.into_iter().map(|w| w.lease.remove())).await;
            if busy == 0 || start.elapsed() >= STALL_GRACE {
                // Nothing is being created now: any pooled container of this
                // worker still listed is one whose creation was lost.
                self.remove_unknown(0).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A started container: a waiting one; else one that is being created or
    /// wiped, if it is ready within [`ACQUIRE_WAIT`]; else a new one made now.
    pub(super) async fn acquire(&self) -> Result<Warm, SandboxError> {
        let deadline = Instant::now() + ACQUIRE_WAIT;
        let mut first = true;
        loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let under_way = {
                let mut state = self.state();
                state.last_acquire = Some(Instant::now());
                if let Some(mut warm) = state.idle.pop_front() {
                    drop(state);
                    self.inner.wake.notify_one();
                    // A stream the engine let go of (its connection was cut)
                    // cannot serve a job: that container goes, the next is tried.
                    if warm.channel.as_mut().is_some_and(|c| c.is_open()) {
                        return Ok(warm);
                    }
                    tracing::warn!(container = %warm.lease.id, "a waiting pooled container's stream is closed; replacing it");
                    self.discard(warm, None);
                    continue;
                }
                if first {
                    first = false;
                    self.inner.waits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                state.pending > 0 && !state.stopped
            };
            if !under_way || tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        self.inner.wake.notify_one();
        self.create().await
    }

    /// Containers idle, containers in use (or being made ready), and how many
    /// acquisitions found none idle, for the metrics.
    pub fn counts(&self) -> (usize, usize, u64) {
        let state = self.state();
        let idle = state.idle.len();
        let busy = state.known.len().saturating_sub(idle);
        (idle, busy, self.inner.waits.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Tells the refill task and any waiting acquirer that the state changed.
    fn notify(&self) {
        self.inner.wake.notify_one();
        self.inner.changed.notify_waiters();
    }

    async fn create(&self) -> Result<Warm, SandboxError> {
        let inner = &self.inner;
        let spec = container::Spec {
            language: &inner.language,
            name: format!("optimus-{}-{}", inner.language.name, &Uuid::new_v4().simple().to_string()[..12]),
            labels: vec![("optimus.pool", "1".into())],
            worker: &inner.worker,
            deployment: &inner.deployment,
            memory: inner.memory,
            usr_volume: inner.usr_volume.as_deref(),
        };
        let (lease, channel) = container::create(&inner.docker, spec).await?;
        self.state().known.insert(lease.id.clone(), Instant::now());
        Ok(Warm { lease, channel: Some(channel), uses: 0, memory: inner.memory })
    }

    /// Removes a container in the background; close() waits for it.
    fn discard(&self, warm: Warm, session: Option<Session>) {
        self.state().removing += 1;
        self.notify();
        let pool = self.clone();
        tokio::spawn(async move {
            drop(session);
            warm.lease.remove().await;
            pool.state().removing -= 1;
        });
    }

    /// Takes a container back after a job. `clean`: the job ran to its end with
    /// no anomaly; only then, with reuse on and uses left, is it wiped and kept.
    /// The wipe runs in the background, off the job's path.
    pub(super) fn release(&self, mut warm: Warm, session: Session, clean: bool) {
        warm.uses += 1;
        let config = self.inner.config;
        let keep = clean && config.reuse && warm.uses < config.max_uses && {
            let mut state = self.state();
            state.pending += usize::from(!state.stopped);
            !state.stopped
        };
        if !keep {
            return self.discard(warm, Some(session));
        }
        let pool = self.clone();
        tokio::spawn(async move {
            // The job's runner ends with the verified wipe (runner.sh reset) and
            // exits 0 only if it held (init says `ended 0`); one that does not
            // end promptly is an anomaly.
            let ended = tokio::time::timeout(RUNNER_END, session.finish("the job's runner and its wipe")).await;
            let reset = match ended {
                Ok(Ok(channel)) => {
                    warm.channel = Some(channel);
                    pool.reset(&mut warm).await
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(SandboxError::Stalled(RUNNER_END)),
            };
            if let Err(e) = &reset {
                tracing::warn!(error = %e, "a pooled container failed its wipe; destroying it");
            }
            let discard = {
                let mut state = pool.state();
                state.pending -= 1;
                if reset.is_ok() && !state.stopped {
                    state.idle.push_back(warm);
                    None
                } else {
                    Some(warm)
                }
            };
            match discard {
                Some(warm) => pool.discard(warm, None),
                None => pool.notify(),
            }
        });
    }

    /// The pool's memory limit put back (the wipe is the job's runner's last step).
    async fn reset(&self, warm: &mut Warm) -> Result<(), SandboxError> {
        let memory = self.inner.memory;
        if warm.memory != memory {
            warm.lease.set_memory(memory).await?;
            warm.memory = memory;
        }
        Ok(())
    }

    /// Destroys waiting containers that are no longer running (killed from outside,
    /// or their init died): no job is handed one. The refill replaces them.
    async fn replace_dead(&self) {
        let ids: Vec<String> = self.state().idle.iter().map(|w| w.lease.id.clone()).collect();
        for id in ids {
            let running = match self.inner.docker.inspect_container(&id, None::<InspectContainerOptions>).await {
                Ok(info) => info.state.and_then(|s| s.running).unwrap_or(false),
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => false,
                // The engine did not answer: nothing is known, nothing is done.
                Err(_) => continue,
            };
            if !running {
                let dead = {
                    let mut state = self.state();
                    let at = state.idle.iter().position(|w| w.lease.id == id);
                    at.and_then(|at| state.idle.remove(at))
                };
                if let Some(warm) = dead {
                    tracing::warn!(container = %id, "a waiting pooled container is not running; replacing it");
                    self.discard(warm, None);
                }
            }
        }
    }

    /// Removes this worker's pooled containers that the pool does not know: a
    /// create whose reply was lost (the engine went away mid-call) leaves one with
    /// no guard, and a live worker's containers are never swept by its peers.
    async fn remove_unknown(&self, min_age_secs: i64) {
        let inner = &self.inner;
        let filters =
            HashMap::from([("label", vec![format!("optimus.worker={}", inner.worker), "optimus.pool=1".to_string()])]);
        let options =
            bollard::query_parameters::ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let Ok(listed) = inner.docker.list_containers(Some(options)).await else { return };
        let now = chrono_now();
        let mut ids = HashSet::new();
        for c in listed {
            let Some(id) = c.id else { continue };
            let owned = c.labels.as_ref().and_then(|l| l.get("optimus.worker")) == Some(&inner.worker);
            // Old enough that no create of ours can still be on its way.
            let settled = c.created.is_some_and(|t| now - t >= min_age_secs);
            if owned && settled && !self.state().known.contains_key(&id) {
                tracing::warn!(container = %id, "removing a pooled container this pool lost track of");
                let _ = inner.docker.remove_container(&id, Some(container::force_remove())).await;
                continue;
            }
            ids.insert(id);
        }
        // Forget what no longer exists (a container made after the listing is
        // young, and kept).
        self.state().known.retain(|id, made| ids.contains(id) || made.elapsed() < Duration::from_secs(60));
    }

    /// Keeps `size` containers waiting (or on their way), until stopped.
    async fn refill(self) {
        let inner = &self.inner;
        let mut backoff = Duration::from_millis(200);
        loop {
            // Decided and counted under the lock: close() then waits for it.
            let (create, extra) = {
                let mut state = self.state();
                let target = state.target(inner.config.size);
                let want = !state.stopped && state.idle.len() + state.pending < target;
                state.pending += usize::from(want);
                // Containers back from jobs stay warm beyond `size` until the pool
                // has been quiet for a while; then it shrinks to its target.
                let keep = if state.quiet() { target.saturating_sub(state.pending) } else { usize::MAX };
                let extra: Vec<Warm> =
                    if state.idle.len() > keep { state.idle.drain(keep..).collect() } else { Vec::new() };
                (want, extra)
            };
            for warm in extra {
                self.discard(warm, None);
            }
            if create {
                // A creation is never abandoned half-way (the engine could finish it
                // unseen); what it makes is kept, or discarded if the pool closed.
                let made = self.create().await;
                let outcome = {
                    let mut state = self.state();
                    state.pending -= 1;
                    match made {
                        Ok(warm) if !state.stopped => {
                            state.idle.push_back(warm);
                            Ok(None)
                        }
                        Ok(warm) => Ok(Some(warm)),
                        Err(e) => Err(e),
                    }
                };
                self.inner.changed.notify_waiters();
                match outcome {
                    Ok(None) => {
                        backoff = Duration::from_millis(200);
                        continue;
                    }
                    Ok(Some(warm)) => self.discard(warm, None),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot create a pooled container; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = inner.stop.cancelled() => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                }
            }
            if self.state().stopped || inner.stop.is_cancelled() {
                return;
            }
            // Woken by a change, or now and then to trim an idle pool and check it.
            tokio::select! {
                _ = inner.wake.notified() => {}
                _ = tokio::time::sleep(IDLE_AFTER / 4) => {
                    self.replace_dead().await;
                    self.remove_unknown(30).await;
                }
                _ = inner.stop.cancelled() => {}
            }
        }
    }
}

/// Seconds since the epoch, as the engine dates containers.
fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
