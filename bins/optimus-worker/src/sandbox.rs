//! The container lifecycle, and the only module that talks to Docker for jobs.
//!
//! [`Sandbox::execute`] is the whole interface the worker sees: acquire a container
//! for a job, run the job in it (unpack, compile once, every test through
//! `runner.sh`), destroy it. Destruction is a guard ([`Lease`]), so it happens on
//! every path out, cancellation and panics included; containers left by a worker
//! that was killed carry labels and are swept by [`Sandbox::sweep`].
//!
//! Speed work (a pool of pre-started containers) belongs here and changes nothing
//! outside this module.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::StartExecResults;
use bollard::models::{
    ContainerCreateBody, ContainerUpdateBody, ExecConfig, HostConfig, HostConfigLogConfig, ResourcesUlimits,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use optimus_common::{JobSpec, LanguageConfig};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tracing::{info_span, Instrument};
use uuid::Uuid;

use crate::protocol::{CompileStatus, Parser, ProtocolError, Report, TestRun};

/// The unprivileged user every sandboxed process runs as (created in each image).
const SANDBOX_USER: &str = "10001:10001";
const RUNNER: &str = "/opt/optimus/runner.sh";
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
const STALL_GRACE: Duration = Duration::from_secs(10);

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

/// What a job's run produced, before judging.
#[derive(Debug)]
pub enum Execution {
    /// The compile step failed (or hit its limits); no test ran.
    CompileFailed { output: String },
    /// Every test ran, in order. `compile_output` is what the compiler printed.
    Ran { compile_output: Option<String>, runs: Vec<TestRun> },
}

/// Where the time of one job went, for logs and benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Phases {
    pub create_ms: u64,
    pub prepare_ms: u64,
    pub compile_ms: u64,
    pub run_ms: u64,
}

/// Runs jobs of one language in throw-away containers.
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

    /// Runs a whole job: a fresh container, the source and inputs copied in, one
    /// compile, every test in order. The container is gone (or going) when this returns.
    pub async fn execute(
        &self,
        job_id: Uuid,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<(Execution, Phases), SandboxError> {
        let mut phases = Phases::default();
        let lang = &self.language;
        let inputs: usize = spec.test_cases.iter().map(|t| t.input.len()).sum();
        // Test inputs live in the tmpfs and count against the container's memory:
        // give the container room for them, and judge the program by its own peak.
        let run_memory = mb(i64::from(spec.memory_limit_mb) + RUNNER_OVERHEAD_MB) + inputs as i64;
        let create_memory =
            if lang.compiled { run_memory.max(mb(i64::from(lang.compile_memory_mb))) } else { run_memory };

        let t = Instant::now();
        let lease = self.create(job_id, create_memory, inputs).instrument(info_span!("create")).await?;
        phases.create_ms = t.elapsed().as_millis() as u64;

        let t = Instant::now();
        let archive = job_archive(lang, spec);
        let prepare_deadline = Duration::from_millis(lang.compile_timeout_ms) + STALL_GRACE;
        let mut prepared = self
            .exec(&lease, &["prepare"], self.env(spec), Some(archive), prepare_deadline, cancel)
            .instrument(info_span!("prepare"))
            .await?;
        phases.prepare_ms = t.elapsed().as_millis() as u64;
        let Some(Report::Compile { status, time_ms, output, .. }) = prepared.reports.pop() else {
            return Err(prepared.runner_error("prepare"));
        };
        phases.compile_ms = time_ms;
        let compile_output = (status != CompileStatus::None).then(|| String::from_utf8_lossy(&output).into_owned());
        match status {
            CompileStatus::Error | CompileStatus::Timeout | CompileStatus::OutOfMemory => {
                let mut output = compile_output.unwrap_or_default();
                match status {
                    CompileStatus::Timeout => output
                        .push_str(&format!("\ncompilation exceeded its {} ms time limit\n", lang.compile_timeout_ms)),
                    CompileStatus::OutOfMemory => output
                        .push_str(&format!("\ncompilation exceeded its {} MB memory limit\n", lang.compile_memory_mb)),
                    _ => {}
                }
                return Ok((Execution::CompileFailed { output }, phases));
            }
            CompileStatus::Ok if create_memory != run_memory => {
                let limit = ContainerUpdateBody {
                    memory: Some(run_memory),
                    memory_swap: Some(run_memory),
                    ..Default::default()
                };
                self.docker.update_container(&lease.id, limit).await?;
            }
            _ => {}
        }

        let t = Instant::now();
        let runs = self.run_tests(&lease, spec, cancel).instrument(info_span!("run")).await?;
        phases.run_ms = t.elapsed().as_millis() as u64;
        drop(lease);
        Ok((Execution::Ran { compile_output, runs }, phases))
    }

    /// Every test in order. A program may kill the runner itself (it runs as the
    /// same user): that test then ends as a runtime error, and the runner is
    /// started again from the next test.
    async fn run_tests(
        &self,
        lease: &Lease,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Vec<TestRun>, SandboxError> {
        let total = spec.test_cases.len();
        let mut runs: Vec<TestRun> = Vec::with_capacity(total);
        while runs.len() < total {
            let first = runs.len();
            let remaining = (total - first) as u32;
            let deadline = (Duration::from_millis(spec.timeout_ms) + Duration::from_secs(2)) * remaining + STALL_GRACE;
            let outcome =
                self.exec(lease, &["run", &first.to_string()], self.env(spec), None, deadline, cancel).await?;
            // Killed by a signal (128+N): the program, which runs as the same user,
            // killed it. Any other early end is the sandbox's failure.
            let runner_died = !outcome.complete;
            if runner_died && outcome.exit_code.is_none_or(|c| c <= 128) {
                return Err(outcome.runner_error("run"));
            }
            for report in outcome.reports {
                match report {
                    Report::Test(run) if run.index == runs.len() => runs.push(run),
                    Report::Test(run) => {
                        return Err(SandboxError::Runner(format!("test {} reported out of order", run.index)))
                    }
                    _ => {}
                }
            }
            if runs.len() < total && (runner_died || runs.len() == first) {
                runs.push(TestRun {
                    index: runs.len(),
                    exit_status: 128 + 9,
                    stderr: b"the program killed the judge's runner".to_vec(),
                    ..TestRun::default()
                });
            }
        }
        Ok(runs)
    }

    fn env(&self, spec: &JobSpec) -> Vec<String> {
        let lang = &self.language;
        let mut env = vec![
            format!("LANGUAGE={}", lang.name),
            format!("SOURCE_FILE={}", lang.source_file),
            format!("TEST_COUNT={}", spec.test_cases.len()),
            format!("TIME_LIMIT_MS={}", spec.timeout_ms),
            format!("COMPILE_TIME_LIMIT_MS={}", lang.compile_timeout_ms),
            format!("OUTPUT_LIMIT={}", self.output_limit),
        ];
        if let Some(cmd) = &lang.compile_command {
            env.push(format!("COMPILE_CMD={cmd}"));
        }
        if let Some(cmd) = &lang.run_command {
            env.push(format!("RUN_CMD={cmd}"));
        }
        env
    }

    async fn create(&self, job_id: Uuid, memory: i64, inputs: usize) -> Result<Lease, SandboxError> {
        let lang = &self.language;
        let labels = HashMap::from([
            (LABEL_SANDBOX.to_string(), "1".to_string()),
            (LABEL_LANGUAGE.to_string(), lang.name.clone()),
            (LABEL_WORKER.to_string(), self.worker_id.clone()),
            (LABEL_DEPLOYMENT.to_string(), self.deployment.clone()),
            ("optimus.job".to_string(), job_id.to_string()),
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
            cmd: Some(vec![RUNNER.into(), "init".into()]),
            user: Some(SANDBOX_USER.into()),
            working_dir: Some("/work".into()),
            env: Some(vec!["HOME=/work".into(), "LANG=C.UTF-8".into()]),
            labels: Some(labels),
            network_disabled: Some(true),
            host_config: Some(host),
            ..Default::default()
        };
        let name = format!("optimus-{}-{job_id}", lang.name);
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

    /// Runs `runner.sh <args>` in the container, feeding `stdin`, and returns its
    /// reports. Stops at `deadline` or when `cancel` fires.
    async fn exec(
        &self,
        lease: &Lease,
        args: &[&str],
        env: Vec<String>,
        stdin: Option<Vec<u8>>,
        deadline: Duration,
        cancel: &CancellationToken,
    ) -> Result<ExecOutcome, SandboxError> {
        let mut cmd = vec![RUNNER.to_string()];
        cmd.extend(args.iter().map(|a| a.to_string()));
        let config = ExecConfig {
            attach_stdin: Some(stdin.is_some()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            env: Some(env),
            cmd: Some(cmd),
            user: Some(SANDBOX_USER.into()),
            working_dir: Some("/work".into()),
            ..Default::default()
        };
        let exec = self.docker.create_exec(&lease.id, config).await?;
        let StartExecResults::Attached { mut output, mut input } = self.docker.start_exec(&exec.id, None).await? else {
            return Err(SandboxError::Runner("exec started detached".into()));
        };
        let feed = async move {
            if let Some(bytes) = stdin {
                // A runner that stops reading early is reported by its exit, not here.
                let _ = input.write_all(&bytes).await;
                let _ = input.shutdown().await;
            }
            std::future::pending::<()>().await
        };
        let mut parser = Parser::default();
        let mut reports = Vec::new();
        let mut diagnostics = Vec::new();
        let read = async {
            tokio::pin!(feed);
            loop {
                let chunk = tokio::select! {
                    chunk = output.next() => chunk,
                    _ = &mut feed => unreachable!("feed never completes"),
                };
                match chunk {
                    None => return Ok::<_, SandboxError>(()),
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(LogOutput::StdOut { message })) => {
                        parser.feed(&message);
                        while let Some(report) = parser.next_report()? {
                            reports.push(report);
                        }
                    }
                    Some(Ok(LogOutput::StdErr { message })) if diagnostics.len() < 65536 => {
                        diagnostics.extend_from_slice(&message)
                    }
                    Some(Ok(_)) => {}
                }
            }
        };
        tokio::select! {
            res = read => res?,
            _ = cancel.cancelled() => return Err(SandboxError::Cancelled),
            _ = tokio::time::sleep(deadline) => return Err(SandboxError::Stalled(deadline)),
        }
        let complete = matches!(reports.last(), Some(Report::Done) | Some(Report::Compile { .. })) && parser.is_idle();
        let exit_code = if complete { Some(0) } else { self.docker.inspect_exec(&exec.id).await?.exit_code };
        Ok(ExecOutcome {
            reports,
            complete,
            exit_code,
            diagnostics: String::from_utf8_lossy(&diagnostics).trim().to_string(),
        })
    }
}

/// What one `docker exec` of the runner delivered.
struct ExecOutcome {
    reports: Vec<Report>,
    /// The runner reached its last report.
    complete: bool,
    exit_code: Option<i64>,
    /// What the runner itself wrote to stderr.
    diagnostics: String,
}

impl ExecOutcome {
    /// The runner failed by itself, not because a program killed it.
    fn runner_error(&self, what: &str) -> SandboxError {
        SandboxError::Runner(format!("{what} ended early (exit {:?}): {}", self.exit_code, self.diagnostics))
    }
}

/// The tar the runner's `prepare` unpacks: `src/<source_file>` and `tests/<i>.in`.
fn job_archive(lang: &LanguageConfig, spec: &JobSpec) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: String, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, data).expect("writing to memory");
    };
    add(format!("src/{}", lang.source_file), spec.source_code.as_bytes());
    for (i, test) in spec.test_cases.iter().enumerate() {
        add(format!("tests/{i}.in"), test.input.as_bytes());
    }
    tar.into_inner().expect("writing to memory")
}
