//! The container lifecycle, and the only module that talks to Docker for jobs.
//!
//! A [`Sandbox`] makes containers of one language's image; a [`Container`] is one
//! of them, started for one [`Role`] in one job: unpack and compile once
//! ([`Container::prepare`]), then talk to `runner.sh` through a [`Session`] (run the
//! tests, or serve checker requests). Destruction is a guard ([`Lease`]), so it
//! happens on every path out, cancellation and panics included; containers left by
//! a worker that was killed carry labels and are swept by [`Sandbox::sweep`].
//!
//! Speed work (a pool of pre-started containers) belongs here and changes nothing
//! outside this module.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::StartExecResults;
use bollard::models::{
    ContainerCreateBody, ContainerUpdateBody, ExecConfig, HostConfig, HostConfigLogConfig, ResourcesUlimits,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::{Stream, StreamExt};
use optimus_common::LanguageConfig;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use uuid::Uuid;

use crate::protocol::{CompileStatus, Parser, ProtocolError, Report, TestRun};

/// The unprivileged user every sandboxed process runs as (created in each image).
const SANDBOX_USER: &str = "10001:10001";
const RUNNER: &str = "/opt/optimus/runner.sh";
/// The shell the runner runs in: a root-owned copy of bash that the sandbox user may
/// execute but not read. The kernel marks a process started from a binary it cannot
/// read as not dumpable, so the program under test (same user) can neither open the
/// runner's `/proc/<pid>/fd/1` to forge reports, nor read its environment or memory.
const RUNNER_SHELL: &str = "/opt/optimus/bash";
/// Labels that mark a container as Optimus's, for the sweep.
const LABEL_SANDBOX: &str = "optimus.sandbox";
const LABEL_LANGUAGE: &str = "optimus.language";
const LABEL_WORKER: &str = "optimus.worker";
/// Which deployment (which Redis) a container belongs to: only that deployment's
/// workers know whether its owner is alive.
const LABEL_DEPLOYMENT: &str = "optimus.deployment";
/// Memory for the runner's shell, `time` and `timeout` beside the program.
const RUNNER_OVERHEAD_MB: i64 = 16;
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
    #[error("the runner failed: {0}")]
    Runner(String),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("the container did not finish within {0:?} of its limits")]
    Stalled(Duration),
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

/// The limits a container's runs get.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// Wall time of each run.
    pub time_ms: u64,
    pub memory_mb: u32,
}

/// How the compile step went.
#[derive(Debug)]
pub enum Compiled {
    /// Ready to run. `output` is what the compiler printed (`None`: no compile step).
    Ok { output: Option<String>, time_ms: u64 },
    /// The compile failed or hit its limits; `output` says so.
    Failed { output: String },
}

/// Makes throw-away containers of one language's image.
#[derive(Clone)]
pub struct Sandbox {
    docker: Docker,
    language: LanguageConfig,
    worker_id: String,
    deployment: String,
    output_limit: usize,
}

/// A container that is removed when dropped, whatever happened.
struct Lease {
    docker: Docker,
    id: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let id = std::mem::take(&mut self.id);
        // Removal must not wait for the caller (a cancel answers at once), and
        // force-removal kills whatever still runs inside.
        tokio::spawn(async move {
            if let Err(e) = docker.remove_container(&id, Some(force_remove())).await {
                tracing::warn!(container = %id, error = %e, "could not remove sandbox container");
            }
        });
    }
}

fn force_remove() -> bollard::query_parameters::RemoveContainerOptions {
    RemoveContainerOptionsBuilder::new().force(true).v(true).build()
}

fn mb(n: i64) -> i64 {
    n * 1024 * 1024
}

impl Sandbox {
    /// Connects to the engine named by `DOCKER_HOST` (or the local socket) and
    /// checks that the language's image is there. `deployment` names the job
    /// store this worker serves, so that sweeps leave other deployments alone.
    pub async fn connect(
        language: LanguageConfig,
        worker_id: String,
        deployment: String,
        output_limit: usize,
    ) -> Result<Self, SandboxError> {
        let docker = Docker::connect_with_defaults()?.negotiate_version().await?;
        let sandbox = Sandbox { docker, language, worker_id, deployment, output_limit };
        sandbox.check_image().await?;
        Ok(sandbox)
    }

    /// A sandbox for another language on the same engine (a checker or a reference
    /// solution written in it), its image checked.
    pub async fn for_language(&self, language: &LanguageConfig) -> Result<Self, SandboxError> {
        if language.name == self.language.name {
            return Ok(self.clone());
        }
        let sandbox = Sandbox { language: language.clone(), ..self.clone() };
        sandbox.check_image().await?;
        Ok(sandbox)
    }

    pub fn language(&self) -> &LanguageConfig {
        &self.language
    }

    async fn check_image(&self) -> Result<(), SandboxError> {
        match self.docker.inspect_image(&self.language.image).await {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                Err(SandboxError::ImageMissing {
                    language: self.language.name.clone(),
                    image: self.language.image.clone(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the sandbox containers of this deployment and language whose worker
    /// `is_alive` denies: those left by a worker that was killed. Returns how many went.
    pub async fn sweep(&self, is_alive: impl Fn(&str) -> bool) -> Result<usize, SandboxError> {
        let filters = HashMap::from([(
            "label",
            vec![format!("{LABEL_SANDBOX}=1"), format!("{LABEL_LANGUAGE}={}", self.language.name)],
        )]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let mut removed = 0;
        for c in self.docker.list_containers(Some(options)).await? {
            // The engine's label filter is only a first cut (some engines do not
            // AND several labels): check every label here before removing anything.
            let labels = c.labels.unwrap_or_default();
            let label = |key: &str| labels.get(key).map(String::as_str).unwrap_or("");
            if label(LABEL_SANDBOX) != "1"
                || label(LABEL_LANGUAGE) != self.language.name
                || label(LABEL_DEPLOYMENT) != self.deployment
            {
                continue;
            }
            let owner = label(LABEL_WORKER);
            if owner == self.worker_id || is_alive(owner) {
                continue;
            }
            if let Some(id) = c.id {
                self.docker.remove_container(&id, Some(force_remove())).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Starts a fresh container for `role` in job `job_id`, sized for `limits` and
    /// for `inputs` bytes of test input. It is removed when the [`Container`] drops.
    pub async fn start(
        &self,
        job_id: Uuid,
        role: Role,
        limits: RunLimits,
        test_count: usize,
        inputs: usize,
    ) -> Result<Container, SandboxError> {
        let lang = &self.language;
        // Test inputs live in the tmpfs and count against the container's memory:
        // give the container room for them, and judge the program by its own peak.
        let run_memory = mb(i64::from(limits.memory_mb) + RUNNER_OVERHEAD_MB) + inputs as i64;
        let create_memory =
            if lang.compiled { run_memory.max(mb(i64::from(lang.compile_memory_mb))) } else { run_memory };
        let lease = self.create(job_id, role, create_memory, inputs).await?;
        let mut env = vec![
            format!("LANGUAGE={}", lang.name),
            format!("SOURCE_FILE={}", lang.source_file),
            format!("TEST_COUNT={test_count}"),
            format!("TIME_LIMIT_MS={}", limits.time_ms),
            format!("COMPILE_TIME_LIMIT_MS={}", lang.compile_timeout_ms),
            format!("OUTPUT_LIMIT={}", self.output_limit),
        ];
        if let Some(cmd) = &lang.compile_command {
            env.push(format!("COMPILE_CMD={cmd}"));
        }
        if let Some(cmd) = &lang.run_command {
            env.push(format!("RUN_CMD={cmd}"));
        }
        Ok(Container { sandbox: self.clone(), lease, env, limits, run_memory, resize: create_memory != run_memory })
    }

    async fn create(&self, job_id: Uuid, role: Role, memory: i64, inputs: usize) -> Result<Lease, SandboxError> {
        let lang = &self.language;
        let labels = HashMap::from([
            (LABEL_SANDBOX.to_string(), "1".to_string()),
            (LABEL_LANGUAGE.to_string(), lang.name.clone()),
            (LABEL_WORKER.to_string(), self.worker_id.clone()),
            (LABEL_DEPLOYMENT.to_string(), self.deployment.clone()),
            ("optimus.job".to_string(), job_id.to_string()),
            ("optimus.role".to_string(), role.as_str().to_string()),
        ]);
        // Room for the inputs, the build, and one test's capped output at a time;
        // what is written is charged to the memory limit anyway.
        let work_mb = (inputs / (1024 * 1024)) as i64 * 2 + 256;
        let tmpfs = HashMap::from([
            ("/work".to_string(), format!("rw,exec,nosuid,nodev,size={work_mb}m,uid=10001,gid=10001,mode=0700")),
            ("/tmp".to_string(), "rw,nosuid,nodev,size=64m,mode=1777".to_string()),
        ]);
        let ulimit = |name: &str, n: i64| ResourcesUlimits { name: Some(name.into()), soft: Some(n), hard: Some(n) };
        let host = HostConfig {
            memory: Some(memory),
            memory_swap: Some(memory),
            memory_swappiness: Some(0),
            nano_cpus: Some((lang.cpu_limit * 1e9) as i64),
            pids_limit: Some(lang.pids_limit),
            readonly_rootfs: Some(true),
            tmpfs: Some(tmpfs),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            network_mode: Some("none".into()),
            ipc_mode: Some("private".into()),
            log_config: Some(HostConfigLogConfig { typ: Some("none".into()), config: None }),
            ulimits: Some(vec![ulimit("nofile", 1024), ulimit("core", 0)]),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(lang.image.clone()),
            // runner.sh as PID 1 reaps orphans and, being init, survives the
            // kill(-1) sweep after each test.
            cmd: Some(vec![RUNNER_SHELL.into(), RUNNER.into(), "init".into()]),
            user: Some(SANDBOX_USER.into()),
            working_dir: Some("/work".into()),
            env: Some(vec!["HOME=/work".into(), "LANG=C.UTF-8".into()]),
            labels: Some(labels),
            network_disabled: Some(true),
            host_config: Some(host),
            ..Default::default()
        };
        let name = match role {
            Role::Program => format!("optimus-{}-{job_id}", lang.name),
            other => format!("optimus-{}-{job_id}-{}", lang.name, other.as_str()),
        };
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let created = match self.docker.create_container(Some(options.clone()), body.clone()).await {
            // A container of this job left by an earlier attempt (perhaps still
            // being removed): make sure it is gone, then create ours.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => {
                self.remove_and_wait(&name).await?;
                self.docker.create_container(Some(options), body).await?
            }
            other => other?,
        };
        let lease = Lease { docker: self.docker.clone(), id: created.id };
        self.docker.start_container(&lease.id, None::<bollard::query_parameters::StartContainerOptions>).await?;
        Ok(lease)
    }

    /// Force-removes a container and waits until the engine has let it go.
    async fn remove_and_wait(&self, name: &str) -> Result<(), SandboxError> {
        use bollard::errors::Error::DockerResponseServerError;
        match self.docker.remove_container(name, Some(force_remove())).await {
            // 404: already gone; 409: a removal is under way, waited for below.
            Ok(()) | Err(DockerResponseServerError { status_code: 404 | 409, .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let start = Instant::now();
        loop {
            match self.docker.inspect_container(name, None::<bollard::query_parameters::InspectContainerOptions>).await
            {
                Err(DockerResponseServerError { status_code: 404, .. }) => return Ok(()),
                Err(e) => return Err(e.into()),
                Ok(_) if start.elapsed() > STALL_GRACE => return Err(SandboxError::Stalled(STALL_GRACE)),
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// One started container, for one role in one job.
pub struct Container {
    sandbox: Sandbox,
    lease: Lease,
    env: Vec<String>,
    limits: RunLimits,
    /// The memory limit of the runs, set after a compile that ran with more.
    run_memory: i64,
    resize: bool,
}

impl Container {
    /// The limits its runs get.
    pub fn limits(&self) -> RunLimits {
        self.limits
    }

    /// Unpacks `sources` (file name, contents; the language's source file among
    /// them) and the test `inputs`, and compiles once.
    pub async fn prepare(&self, sources: &[(&str, &[u8])], inputs: &[&str]) -> Result<Compiled, SandboxError> {
        let lang = &self.sandbox.language;
        let deadline = Instant::now() + Duration::from_millis(lang.compile_timeout_ms) + STALL_GRACE;
        let mut session = self.session(&["prepare"], Vec::new(), deadline).await?;
        session.send(&archive(sources, inputs)).await?;
        session.close_input().await;
        let (status, time_ms, output) = match session.next().await? {
            Some(Report::Compile { status, time_ms, output, .. }) => (status, time_ms, output),
            _ => return Err(session.runner_error("prepare").await),
        };
        let output = String::from_utf8_lossy(&output).into_owned();
        match status {
            CompileStatus::None => Ok(Compiled::Ok { output: None, time_ms }),
            CompileStatus::Ok => {
                if self.resize {
                    let limit = ContainerUpdateBody {
                        memory: Some(self.run_memory),
                        memory_swap: Some(self.run_memory),
                        ..Default::default()
                    };
                    self.sandbox.docker.update_container(&self.lease.id, limit).await?;
                }
                Ok(Compiled::Ok { output: Some(output), time_ms })
            }
            CompileStatus::Error => Ok(Compiled::Failed { output }),
            CompileStatus::Timeout => Ok(Compiled::Failed {
                output: format!("{output}\ncompilation exceeded its {} ms time limit\n", lang.compile_timeout_ms),
            }),
            CompileStatus::OutOfMemory => Ok(Compiled::Failed {
                output: format!("{output}\ncompilation exceeded its {} MB memory limit\n", lang.compile_memory_mb),
            }),
        }
    }

    /// Runs the tests from `first` on, reporting each. With `step`, the runner
    /// waits after each test until [`Session::step`] says whether to go on.
    pub async fn run(&self, first: usize, step: bool, deadline: Instant) -> Result<Session, SandboxError> {
        let env = if step { vec!["STEP=1".to_string()] } else { Vec::new() };
        self.session(&["run", &first.to_string()], env, deadline).await
    }

    /// The runs of every test in order, as they finish; see [`Runs`].
    pub fn runs(&self, total: usize, step: bool, deadline: Instant) -> Runs<'_> {
        Runs { container: self, session: None, next: 0, total, step, stopped: false, deadline }
    }

    /// Serves checker requests ([`Session::check`]) until dropped.
    pub async fn check(&self, deadline: Instant) -> Result<Session, SandboxError> {
        self.session(&["check"], Vec::new(), deadline).await
    }

    async fn session(&self, args: &[&str], extra_env: Vec<String>, deadline: Instant) -> Result<Session, SandboxError> {
        let docker = &self.sandbox.docker;
        let mut cmd = vec![RUNNER_SHELL.to_string(), RUNNER.to_string()];
        cmd.extend(args.iter().map(|a| a.to_string()));
        let mut env = self.env.clone();
        env.extend(extra_env);
        let config = ExecConfig {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            env: Some(env),
            cmd: Some(cmd),
            user: Some(SANDBOX_USER.into()),
            working_dir: Some("/work".into()),
            ..Default::default()
        };
        let exec = docker.create_exec(&self.lease.id, config).await?;
        let StartExecResults::Attached { output, input } = docker.start_exec(&exec.id, None).await? else {
            return Err(SandboxError::Runner("exec started detached".into()));
        };
        Ok(Session {
            docker: docker.clone(),
            exec_id: exec.id,
            output,
            input: Some(input),
            parser: Parser::default(),
            diagnostics: Vec::new(),
            deadline,
            done: false,
        })
    }
}

/// One `runner.sh` process in a container: requests in on its stdin, reports out.
pub struct Session {
    docker: Docker,
    exec_id: String,
    output: Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    input: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    parser: Parser,
    /// What the runner itself wrote to stderr.
    diagnostics: Vec<u8>,
    /// Past it, the runner is stuck: everything it runs has limits well inside it.
    deadline: Instant,
    /// The runner reported `done`.
    done: bool,
}

/// The test runs of one container, in order. A program may kill the runner itself
/// (it runs as the same user): that test then comes back as killed by SIGKILL, and
/// the runner is started again from the next test.
pub struct Runs<'c> {
    container: &'c Container,
    session: Option<Session>,
    next: usize,
    total: usize,
    step: bool,
    stopped: bool,
    deadline: Instant,
}

impl Runs<'_> {
    /// The next test's run; `None` when all have run or [`Runs::step`] stopped them.
    pub async fn next(&mut self) -> Result<Option<TestRun>, SandboxError> {
        if self.stopped || self.next == self.total {
            return Ok(None);
        }
        if self.session.is_none() {
            self.session = Some(self.container.run(self.next, self.step, self.deadline).await?);
        }
        let session = self.session.as_mut().expect("started above");
        let index = self.next;
        match session.next_test().await? {
            Some(run) if run.index == index => {
                self.next += 1;
                Ok(Some(run))
            }
            Some(run) => Err(SandboxError::Runner(format!("test {} reported out of order", run.index))),
            None => match session.ending().await {
                Ending::KilledByProgram => {
                    self.session = None;
                    self.next += 1;
                    Ok(Some(TestRun {
                        index,
                        exit_status: 128 + 9,
                        stderr: b"the program killed the judge's runner".to_vec(),
                        ..TestRun::default()
                    }))
                }
                Ending::Failed(e) => Err(e),
            },
        }
    }

    /// In step mode, tells the runner whether to run the next test; stopping is
    /// final. Without step mode the runner never waits, so only stopping matters.
    pub async fn step(&mut self, go_on: bool) -> Result<(), SandboxError> {
        if !go_on {
            self.stopped = true;
        }
        match &mut self.session {
            Some(session) if self.step && self.next < self.total => session.step(go_on).await,
            _ => Ok(()),
        }
    }
}

/// How a session that ended without `done` ended.
pub enum Ending {
    /// Killed by a signal: the program (same user) killed the runner.
    KilledByProgram,
    /// Anything else is the runner's own failure.
    Failed(SandboxError),
}

impl Session {
    /// The next report; `None` once the runner's output has ended.
    pub async fn next(&mut self) -> Result<Option<Report>, SandboxError> {
        loop {
            if let Some(report) = self.parser.next_report()? {
                if report == Report::Done {
                    self.done = true;
                }
                return Ok(Some(report));
            }
            let chunk = tokio::time::timeout_at(self.deadline, self.output.next())
                .await
                .map_err(|_| SandboxError::Stalled(STALL_GRACE))?;
            match chunk {
                None => return Ok(None),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(LogOutput::StdOut { message })) => self.parser.feed(&message),
                Some(Ok(LogOutput::StdErr { message })) if self.diagnostics.len() < 65536 => {
                    self.diagnostics.extend_from_slice(&message)
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next test report, or how the session ended without one.
    pub async fn next_test(&mut self) -> Result<Option<TestRun>, SandboxError> {
        loop {
            match self.next().await? {
                Some(Report::Test(run)) => return Ok(Some(run)),
                Some(Report::Done) | None => return Ok(None),
                Some(Report::Compile { .. }) => {}
            }
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), SandboxError> {
        let input = self.input.as_mut().ok_or_else(|| SandboxError::Runner("input already closed".into()))?;
        let write = async {
            input.write_all(bytes).await?;
            input.flush().await
        };
        tokio::time::timeout_at(self.deadline, write)
            .await
            .map_err(|_| SandboxError::Stalled(STALL_GRACE))?
            .map_err(|e| SandboxError::Runner(format!("cannot write to the runner: {e}")))
    }

    pub async fn close_input(&mut self) {
        if let Some(mut input) = self.input.take() {
            let _ = input.shutdown().await;
        }
    }

    /// `run` with `step`: tells the runner whether to run the next test.
    pub async fn step(&mut self, go_on: bool) -> Result<(), SandboxError> {
        if go_on {
            self.send(b"next\n").await
        } else {
            self.close_input().await;
            Ok(())
        }
    }

    /// `check`: judges one test's output; the checker's run comes back as a test run.
    pub async fn check(&mut self, index: usize, expected: &[u8], output: &[u8]) -> Result<TestRun, SandboxError> {
        let mut request = format!("case {index} {} {}\n", expected.len(), output.len()).into_bytes();
        request.extend_from_slice(expected);
        request.extend_from_slice(output);
        self.send(&request).await?;
        match self.next_test().await? {
            Some(run) if run.index == index => Ok(run),
            Some(run) => Err(SandboxError::Runner(format!("checker answered for test {}, not {index}", run.index))),
            None => Err(self.runner_error("check").await),
        }
    }

    /// Why the runner's output ended before `done`.
    pub async fn ending(&mut self) -> Ending {
        if self.done && self.parser.is_idle() {
            return Ending::Failed(SandboxError::Runner("the runner reported done before every test had run".into()));
        }
        match self.docker.inspect_exec(&self.exec_id).await {
            Ok(info) if info.exit_code.is_some_and(|c| c > 128) => Ending::KilledByProgram,
            Ok(info) => Ending::Failed(self.failure("run", info.exit_code)),
            Err(e) => Ending::Failed(e.into()),
        }
    }

    /// The runner failed by itself: what it said, for the log.
    pub async fn runner_error(&mut self, what: &str) -> SandboxError {
        let exit = self.docker.inspect_exec(&self.exec_id).await.ok().and_then(|i| i.exit_code);
        self.failure(what, exit)
    }

    fn failure(&self, what: &str, exit: Option<i64>) -> SandboxError {
        let said = String::from_utf8_lossy(&self.diagnostics).trim().to_string();
        SandboxError::Runner(format!("{what} ended early (exit {exit:?}): {said}"))
    }
}

/// The tar the runner's `prepare` unpacks: `src/<file>` and `tests/<i>.in`.
fn archive(sources: &[(&str, &[u8])], inputs: &[&str]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: String, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, data).expect("writing to memory");
    };
    for (name, data) in sources {
        add(format!("src/{name}"), data);
    }
    for (i, input) in inputs.iter().enumerate() {
        add(format!("tests/{i}.in"), input.as_bytes());
    }
    tar.into_inner().expect("writing to memory")
}
