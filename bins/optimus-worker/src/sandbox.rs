//! Sandboxes: the only module that talks to Docker for jobs.
//!
//! A [`Sandbox`] makes containers of one language's image; a [`Container`] is one
//! of them, started for one [`Role`] in one job. Everything a role does in it is
//! one `runner.sh` session ([`Session`], started by the container's init on a
//! request over the stream attached when the container was made): the archive of
//! sources and inputs goes in, the compile report comes out
//! ([`Container::open`]), then the tests' or the checker's reports.
//!
//! - [`container`]: create (hardened), remove (a guard), sweep what dead workers left.
//! - [`pool`]: containers started before jobs need them, reused after a verified wipe.
//! - [`session`]: the runner session and its capped report reader.
//!
//! A container is either given back ([`Container::release`]: its session drained,
//! then wiped and kept, or destroyed) or, on every other way out (cancel, error,
//! panic), destroyed when dropped.
//!
//! Inside, the runner and `optimus-launcher` run as the container's root with only
//! the capabilities to change user and kill; the program runs as its container's
//! own sandbox uid (no other container on the engine has it) and can reach none of
//! their files, descriptors or processes.

mod container;
mod pool;
mod session;

use std::sync::Arc;
use std::time::Duration;

use crate::compile_cache::{self, CompileCache, Key};
use crate::judge::RunLimits;
use bollard::Docker;
use optimus_common::{image, LanguageConfig};
use optimus_protocol::request::Verb;
use optimus_protocol::{Caps, CompileStatus, ProtocolError, Report};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use container::mb;
use pool::Warm;
pub use pool::{Pool, PoolConfig};
pub use session::Session;

/// Memory for the runner, the launcher and the job's own files (sources, build)
/// beside the program; the program is judged against its own peak.
const RUNNER_OVERHEAD_MB: i64 = 24;
/// Slack the worker allows the runner past the limits it enforces itself, before
/// declaring the container stuck.
pub const STALL_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("docker: {0}")]
    Docker(#[from] bollard::errors::Error),
    #[error(
        "image {image} for language '{language}' is missing; build it with: optimus-cli build-image --name {language}"
    )]
    ImageMissing { language: String, image: String },
    #[error("image {image} for language '{language}' cannot be used: {why}; rebuild it with: optimus-cli build-image --name {language}")]
    ImageOutdated { language: String, image: String, why: String },
    #[error("the runner failed: {0}")]
    Runner(String),
    /// The container's attached stream failed: the engine's doing (or the
    /// container's death), never the program's, which cannot reach it.
    #[error("the container's stream failed: {0}")]
    Stream(String),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Every one of the sandbox uids is held by a container on this engine (or
    /// others kept taking the free ones at the same moment).
    #[error("no sandbox uid is free: the {0} of them are held by containers on this engine")]
    NoUid(u32),
    #[error("the container did not finish within {0:?} of its limits")]
    Stalled(Duration),
    /// Judging the job panicked (a bug): the job is handed back, the slot goes on.
    #[error("judging the job panicked: {0}")]
    Panicked(String),
    /// The job's cancel token fired; the container is being removed.
    #[error("cancelled")]
    Cancelled,
}

/// What a container is for. Each role gets its own container, so a program never
/// shares a filesystem with the checker that judges it or the solution it is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Program,
    Solution,
    Checker,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Program => "program",
            Role::Solution => "solution",
            Role::Checker => "checker",
        }
    }
}

/// How the compile step went.
#[derive(Debug)]
pub enum Compiled {
    /// Ready to run. `output` is what the compiler printed (`None`: no compile
    /// step); `cached`: an identical compile's, from the compile cache.
    Ok { output: Option<String>, cached: bool },
    /// The compile failed or hit its limits; `output` says so.
    Failed { output: String },
}

/// Makes containers of one language's image.
#[derive(Clone)]
pub struct Sandbox {
    docker: Docker,
    language: LanguageConfig,
    worker_id: String,
    deployment: String,
    output_limit: usize,
    /// Warm containers of this language, when the worker keeps them.
    pool: Option<Pool>,
    /// The volume this language's containers mount as `/usr`, on an engine that
    /// serves image files from a user-space daemon ([`image::FUSE_STORAGE`]).
    usr_volume: Option<String>,
    /// The id of the language's image, checked at connect: part of every compile's key.
    image_id: String,
    /// The host's compile cache, when the worker keeps one.
    compile_cache: Option<Arc<CompileCache>>,
}

/// Memory limits are set in steps of this, so that jobs with the language's
/// default limits fit a pooled container as it is, with no update on their path.
const MEMORY_STEP: i64 = 16 * 1024 * 1024;

impl Sandbox {
    /// Connects to the engine named by `DOCKER_HOST` (or the local socket) and
    /// checks that the language's image is there and carries this worker's runner.
    /// `deployment` names the job store this worker serves, so that sweeps leave
    /// other deployments alone.
    pub async fn connect(
        language: LanguageConfig,
        worker_id: String,
        deployment: String,
        output_limit: usize,
        docker_socket: Option<&std::path::Path>,
    ) -> Result<Self, SandboxError> {
        let docker = match docker_socket {
            Some(path) => Docker::connect_with_unix(&path.to_string_lossy(), 120, bollard::API_DEFAULT_VERSION)?,
            None => Docker::connect_with_defaults()?,
        };
        let docker = docker.negotiate_version().await?;
        let mut sandbox = Sandbox {
            docker,
            language,
            worker_id,
            deployment,
            output_limit,
            pool: None,
            usr_volume: None,
            image_id: String::new(),
            compile_cache: None,
        };
        let image_id = sandbox.check_image().await?;
        sandbox.image_id.clone_from(&image_id);
        if sandbox.docker.info().await?.driver.as_deref() == Some(image::FUSE_STORAGE) {
            let (image, volume) = (&sandbox.language.image, image::usr_volume(&image_id));
            match container::fill_usr_volume(&sandbox.docker, image, &volume).await {
                Ok(()) => sandbox.usr_volume = Some(volume),
                Err(e) => tracing::warn!(error = %e, "no /usr volume; the image's /usr is used as it is"),
            }
        }
        Ok(sandbox)
    }

    /// Keeps a pool of warm containers of this language until `stop` fires.
    pub fn with_pool(mut self, config: PoolConfig, stop: CancellationToken) -> Self {
        let lang = &self.language;
        let (memory, _) = self.memory_for(self.limits(lang.time_limit_ms, lang.memory_limit_mb), 0);
        self.pool = Some(Pool::start(&self, memory, config, stop));
        self
    }

    /// Keeps the compiles that work in `cache`, and takes identical ones from it.
    pub fn with_compile_cache(mut self, cache: Option<Arc<CompileCache>>) -> Self {
        self.compile_cache = cache;
        self
    }

    /// Whether the engine answers now (within a few seconds).
    pub async fn engine_answers(&self) -> bool {
        matches!(tokio::time::timeout(Duration::from_secs(5), self.docker.ping()).await, Ok(Ok(_)))
    }

    pub fn pool(&self) -> Option<&Pool> {
        self.pool.as_ref()
    }

    /// A run's limits in this sandbox: the given time and memory, and the worker's
    /// output limit.
    pub fn limits(&self, time_limit_ms: u64, memory_limit_mb: u32) -> RunLimits {
        RunLimits { time_limit_ms, memory_limit_mb, output_limit: self.output_limit }
    }

    /// The memory limits of a container for these limits and inputs: while it
    /// compiles, and while it runs tests. The inputs sit in the runner's tmpfs and
    /// the outputs in memory files, all charged to the container, beside the program.
    fn memory_for(&self, limits: RunLimits, inputs: usize) -> (i64, i64) {
        let step = |bytes: i64| (bytes + MEMORY_STEP - 1) / MEMORY_STEP * MEMORY_STEP;
        let run = step(
            mb(i64::from(limits.memory_limit_mb) + RUNNER_OVERHEAD_MB)
                + inputs as i64
                + 2 * (limits.output_limit as i64 + 1),
        );
        let lang = &self.language;
        let compile = if lang.compiled { run.max(step(mb(i64::from(lang.compile_memory_mb)))) } else { run };
        (compile, run)
    }

    /// A sandbox for another language on the same engine (a checker or a reference
    /// solution written in it), its image checked.
    pub async fn for_language(&self, language: &LanguageConfig) -> Result<Self, SandboxError> {
        if language.name == self.language.name {
            return Ok(self.clone());
        }
        // Another language's containers are made fresh: the pool (and the /usr
        // volume) are this language's.
        let mut sandbox = Sandbox { language: language.clone(), pool: None, usr_volume: None, ..self.clone() };
        sandbox.image_id = sandbox.check_image().await?;
        Ok(sandbox)
    }

    pub fn language(&self) -> &LanguageConfig {
        &self.language
    }

    /// Checks the image; its id.
    async fn check_image(&self) -> Result<String, SandboxError> {
        let lang = &self.language;
        let found = match self.docker.inspect_image(&lang.image).await {
            Ok(found) => found,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                return Err(SandboxError::ImageMissing { language: lang.name.clone(), image: lang.image.clone() })
            }
            Err(e) => return Err(e.into()),
        };
        let labels = found.config.and_then(|c| c.labels).unwrap_or_default();
        let label = |key: &str| labels.get(key).map(String::as_str);
        match image::mismatch(label(image::LABEL_RUNNER), label(image::LABEL_PROTOCOL)) {
            None => Ok(found.id.unwrap_or_default()),
            Some(why) => {
                Err(SandboxError::ImageOutdated { language: lang.name.clone(), image: lang.image.clone(), why })
            }
        }
    }

    /// Removes the sandbox containers of this deployment and language whose worker
    /// `is_alive` denies: those left by a worker that was killed. Returns how many went.
    pub async fn sweep(&self, is_alive: impl Fn(&str) -> bool) -> Result<usize, SandboxError> {
        container::sweep(&self.docker, &self.language.name, &self.deployment, &self.worker_id, is_alive).await
    }

    /// Removes every container of this worker's, waiting for each: for its last
    /// step, once no job runs. A container whose job ended just before holds a
    /// removal spawned when it was dropped, which the process may not live to
    /// finish.
    pub async fn remove_mine(&self) -> Result<usize, SandboxError> {
        let me = self.worker_id.as_str();
        container::sweep(&self.docker, &self.language.name, &self.deployment, "", |owner| owner != me).await
    }

    /// A started container for `role` in job `job_id` (a pooled one, or a fresh
    /// one), sized for `limits` and for `inputs` bytes of test input.
    pub async fn start(
        &self,
        job_id: Uuid,
        role: Role,
        limits: RunLimits,
        test_count: usize,
        inputs: usize,
    ) -> Result<Container, SandboxError> {
        let lang = &self.language;
        let (create_memory, run_memory) = self.memory_for(limits, inputs);
        let mut warm = match &self.pool {
            Some(pool) => pool.acquire().await?,
            None => {
                let name = match role {
                    Role::Program => format!("optimus-{}-{job_id}", lang.name),
                    other => format!("optimus-{}-{job_id}-{}", lang.name, other.as_str()),
                };
                let spec = container::Spec {
                    language: lang,
                    name,
                    labels: vec![("optimus.job", job_id.to_string()), ("optimus.role", role.as_str().to_string())],
                    worker: &self.worker_id,
                    deployment: &self.deployment,
                    memory: create_memory,
                    usr_volume: self.usr_volume.as_deref(),
                };
                let (lease, channel) = container::create(&self.docker, spec).await?;
                Warm { lease, channel: Some(channel), uses: 0, memory: create_memory }
            }
        };
        // The job's own limits, before any of its code runs.
        if warm.memory != create_memory {
            warm.lease.set_memory(create_memory).await?;
            warm.memory = create_memory;
        }
        let mut env = vec![
            format!("LANGUAGE={}", lang.name),
            format!("SOURCE_FILE={}", lang.source_file),
            format!("TEST_COUNT={test_count}"),
            format!("TIME_LIMIT_MS={}", limits.time_limit_ms),
            format!("WALL_LIMIT_MS={}", limits.wall_cap().as_millis()),
            format!("MEMORY_LIMIT_MB={}", limits.memory_limit_mb),
            format!("COMPILE_TIME_LIMIT_MS={}", lang.compile_timeout_ms),
            format!("OUTPUT_LIMIT={}", limits.output_limit),
        ];
        if let Some(cmd) = &lang.compile_command {
            env.push(format!("COMPILE_CMD={cmd}"));
        }
        if let Some(cmd) = &lang.run_command {
            env.push(format!("RUN_CMD={cmd}"));
        }
        Ok(Container { sandbox: self.clone(), warm: Some(warm), env, limits, run_memory })
    }
}

/// What a container's session does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Compile, then run the tests; `step`: wait for a go-ahead between tests.
    Job { step: bool },
    /// Compile a checker, then judge outputs on request.
    Checker,
}

/// One started container, for one role in one job.
pub struct Container {
    sandbox: Sandbox,
    /// Held until [`Container::release`]; dropping it removes the container.
    warm: Option<Warm>,
    env: Vec<String>,
    limits: RunLimits,
    /// The memory limit of the runs, set after a compile that ran with more.
    run_memory: i64,
}

impl Container {
    fn warm(&mut self) -> &mut Warm {
        self.warm.as_mut().expect("held until released")
    }

    /// The limits its runs get.
    pub fn limits(&self) -> RunLimits {
        self.limits
    }

    /// Starts the role's session: sends `sources` (file name, contents; the
    /// language's source file among them) and the test `inputs`, and waits for
    /// the compile. A job's tests start with [`Session::begin_tests`].
    pub async fn open(
        &mut self,
        script: Script,
        sources: &[(&str, &[u8])],
        inputs: &[&str],
        args: &[String],
    ) -> Result<(Session, Compiled), SandboxError> {
        let lang = self.sandbox.language.clone();
        let deadline = Instant::now() + Duration::from_millis(lang.compile_timeout_ms) + STALL_GRACE;
        let verb = match script {
            Script::Job { .. } => Verb::Job,
            Script::Checker => Verb::Checker,
        };
        let mut env = self.env.clone();
        if script == (Script::Job { step: true }) {
            env.push("STEP=1".into());
        }
        // An identical compile that worked before gives its program directory;
        // otherwise the runner is asked for this one's, to keep.
        let cache = self.sandbox.compile_cache.clone().filter(|_| lang.compiled);
        let compile_memory = self.warm().memory;
        let key = cache.as_ref().map(|_| Key::new(&self.sandbox.image_id, &lang, compile_memory, sources));
        let hit = match (&cache, key) {
            (Some(cache), Some(key)) => {
                let cache = cache.clone();
                tokio::task::spawn_blocking(move || cache.get(&key)).await.ok().flatten()
            }
            _ => None,
        };
        let prog: Vec<_> = match &hit {
            Some(artifact) => {
                env.push("PREBUILT=1".into());
                artifact.entries.iter().map(compile_cache::Entry::parts).collect()
            }
            None => {
                if key.is_some() {
                    env.push(format!("ARTIFACT_MAX={}", optimus_protocol::ARTIFACT_LIMIT));
                }
                sources.iter().map(|(name, data)| (*name, *data, tar::EntryType::Regular, 0o644)).collect()
            }
        };
        let caps = Caps::for_output_limit(self.sandbox.output_limit);
        let archive = archive(&prog, inputs, args);
        let run_memory = self.run_memory;
        let warm = self.warm();
        let channel = warm.channel.take().ok_or_else(|| SandboxError::Runner("a second session".into()))?;
        // A cached build runs no compile, so its runs' memory limit is set while
        // the runner unpacks it, not after (an engine round trip off the path).
        let early = hit.is_some() && warm.memory != run_memory;
        let lease = &warm.lease;
        let opening = async {
            let mut session = Session::start(channel, verb, &env, caps, deadline).await?;
            let mut framed = format!("{}\n", archive.len()).into_bytes();
            framed.extend_from_slice(&archive);
            session.send(&framed).await?;
            match session.next().await? {
                Some(Report::Compile { status, output, .. }) => Ok((session, status, output)),
                _ => Err(session.runner_error("the compile step")),
            }
        };
        let updating = async {
            if early {
                lease.set_memory(run_memory).await
            } else {
                Ok(())
            }
        };
        let (opened, updated) = tokio::join!(opening, updating);
        let (mut session, status, output) = opened?;
        updated?;
        if early {
            warm.memory = run_memory;
        }
        let output = String::from_utf8_lossy(&output).into_owned();
        let compiled = match (status, hit) {
            (CompileStatus::None, Some(artifact)) => Compiled::Ok { output: Some(artifact.output), cached: true },
            (_, Some(_)) => return Err(session.runner_error("the cached compile")),
            (CompileStatus::None, None) => Compiled::Ok { output: None, cached: false },
            (CompileStatus::Ok, None) => {
                if let (Some(cache), Some(key)) = (cache, key) {
                    match session.next().await? {
                        Some(Report::Artifact { tar }) => keep(cache, key, output.clone(), tar),
                        Some(Report::ArtifactSkipped { len }) => {
                            tracing::debug!(len, "the compile made more than the cache keeps")
                        }
                        _ => return Err(session.runner_error("the compile's artifact")),
                    }
                }
                Compiled::Ok { output: Some(output), cached: false }
            }
            (CompileStatus::Error, None) => Compiled::Failed { output },
            (CompileStatus::Timeout, None) => Compiled::Failed {
                output: format!("{output}\ncompilation exceeded its {} ms time limit\n", lang.compile_timeout_ms),
            },
            (CompileStatus::OutOfMemory, None) => Compiled::Failed {
                output: format!("{output}\ncompilation exceeded its {} MB memory limit\n", lang.compile_memory_mb),
            },
        };
        let warm = self.warm();
        if warm.memory != run_memory && matches!(compiled, Compiled::Ok { .. }) {
            warm.lease.set_memory(run_memory).await?;
            warm.memory = run_memory;
        }
        Ok((session, compiled))
    }

    /// Gives the container back once its job is over. `clean`: the job ran to its
    /// end with no anomaly; a pooled container is then wiped (after its session
    /// ends) and kept for another job. Otherwise, or unpooled, it is destroyed.
    pub fn release(mut self, session: Session, clean: bool) {
        if let (Some(pool), Some(warm)) = (self.sandbox.pool.clone(), self.warm.take()) {
            pool.release(warm, session, clean);
        }
    }
}

/// Keeps a compile's artifact in the cache, off the job's path: the job goes on
/// with the program it already has.
fn keep(cache: Arc<CompileCache>, key: Key, output: String, tar: Vec<u8>) {
    tokio::task::spawn_blocking(move || {
        let kept =
            compile_cache::unpack(&tar).map_err(|why| format!("the sandbox's artifact was refused: {why}")).and_then(
                |entries| cache.put(&key, &compile_cache::Artifact { output, entries }).map_err(|e| e.to_string()),
            );
        match kept {
            Ok(true) => {}
            Ok(false) => tracing::debug!("the compile's artifact is larger than the whole compile cache"),
            Err(why) => tracing::warn!(%why, "compile not cached"),
        }
    });
}

/// The tar the runner unpacks at `/`: `box/prog/<file>` (readable by the
/// program), `box/check/` (a checker's files), `judge/job/tests/<i>.in` and
/// `judge/job/args` (the program's arguments, each ended by a NUL; root's alone).
/// Every path is made here; the only names from elsewhere are the extra files'
/// (which the API checked to be plain names) and a cached compile's (checked
/// plain by [`compile_cache::unpack`]). `prog`: path, contents, kind, mode.
fn archive(prog: &[(&str, &[u8], tar::EntryType, u32)], inputs: &[&str], args: &[String]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: String, data: &[u8], kind: tar::EntryType, mode: u32| {
        compile_cache::append(&mut tar, &path, data, kind, mode);
    };
    add("box/check/".into(), &[], tar::EntryType::Directory, 0o755);
    for (name, data, kind, mode) in prog {
        add(format!("box/prog/{name}"), data, *kind, *mode);
    }
    for (i, input) in inputs.iter().enumerate() {
        add(format!("judge/job/tests/{i}.in"), input.as_bytes(), tar::EntryType::Regular, 0o600);
    }
    if !args.is_empty() {
        let joined: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
        add("judge/job/args".into(), &joined, tar::EntryType::Regular, 0o600);
    }
    tar.into_inner().expect("writing to memory")
}
