//! One `runner.sh` process in a container (one `docker exec`): the job's archive
//! and requests go in on its stdin, reports come out on its stdout and are read
//! with the capped reader of `optimus_protocol`, so nothing the sandbox writes can
//! make the worker hold more than the caps.

use std::pin::Pin;

use bollard::container::LogOutput;
use bollard::exec::StartExecResults;
use bollard::models::ExecConfig;
use bollard::Docker;
use futures_util::{Stream, StreamExt};
use optimus_common::TestTimings;
use optimus_protocol::{clock_us, Caps, Parser, Report, TestRun};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::{SandboxError, STALL_GRACE};

const RUNNER: &str = "/opt/optimus/runner.sh";
/// What the runner itself says on stderr is kept up to this, for the log.
const DIAGNOSTICS_CAP: usize = 64 * 1024;

pub struct Session {
    docker: Docker,
    exec_id: String,
    output: Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    input: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    parser: Parser,
    diagnostics: Vec<u8>,
    /// Past it, the runner is stuck: everything it runs has limits well inside it.
    deadline: Instant,
    /// How long the exec took to start, in µs.
    exec_us: u64,
    /// When the runner could last go on ([`clock_us`]): the worker's last word
    /// to it, or the end of its last report, whichever came later.
    ready_us: u64,
    /// The phases of the test reports read so far, as far as the session sees them.
    timings: TestTimings,
}

impl Session {
    /// Starts `runner.sh <verb>` as the container's root (which holds only the
    /// capabilities to become the sandbox user and to kill).
    pub(super) async fn start(
        docker: &Docker,
        container: &str,
        verb: &str,
        env: Vec<String>,
        caps: Caps,
        deadline: Instant,
    ) -> Result<Self, SandboxError> {
        let began = Instant::now();
        let config = ExecConfig {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            env: Some(env),
            cmd: Some(vec!["/bin/bash".into(), RUNNER.into(), verb.into()]),
            user: Some("0:0".into()),
            working_dir: Some("/".into()),
            ..Default::default()
        };
        let exec = docker.create_exec(container, config).await?;
        let StartExecResults::Attached { output, input } = docker.start_exec(&exec.id, None).await? else {
            return Err(SandboxError::Runner("exec started detached".into()));
        };
        Ok(Session {
            docker: docker.clone(),
            exec_id: exec.id,
            output,
            input: Some(input),
            parser: Parser::new(caps),
            diagnostics: Vec::new(),
            deadline,
            exec_us: began.elapsed().as_micros() as u64,
            ready_us: clock_us(),
            timings: TestTimings::default(),
        })
    }

    /// How long the runner's exec took to start, in µs.
    pub fn exec_us(&self) -> u64 {
        self.exec_us
    }

    /// The phases of every test report this session read (their judging and
    /// events are the caller's to add).
    pub fn timings(&self) -> TestTimings {
        self.timings
    }

    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// The next report; `None` once the runner's output has ended.
    pub async fn next(&mut self) -> Result<Option<Report>, SandboxError> {
        loop {
            if let Some(report) = self.parser.next_report()? {
                return Ok(Some(report));
            }
            let chunk = tokio::time::timeout_at(self.deadline, self.output.next())
                .await
                .map_err(|_| SandboxError::Stalled(STALL_GRACE))?;
            match chunk {
                None => return Ok(None),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(LogOutput::StdOut { message })) => self.parser.feed(&message),
                Some(Ok(LogOutput::StdErr { message })) => {
                    let room = DIAGNOSTICS_CAP.saturating_sub(self.diagnostics.len());
                    self.diagnostics.extend_from_slice(&message[..message.len().min(room)]);
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next test report; `None` after `done`. Anything else is the runner's failure.
    pub async fn next_test(&mut self) -> Result<Option<TestRun>, SandboxError> {
        let asked_us = clock_us();
        match self.next().await? {
            Some(Report::Test(run)) => {
                self.measure(&run, asked_us);
                Ok(Some(run))
            }
            Some(Report::Done) => Ok(None),
            Some(Report::Compile { .. }) => Err(SandboxError::Runner("a second compile report".into())),
            None => Err(self.runner_error("the test run").await),
        }
    }

    /// Adds a test report's phases: the runner's turn since it could go on, the
    /// launcher's own account, and the stream's share of the wait for it (from
    /// its writing, or from when the worker asked, whichever came later).
    fn measure(&mut self, run: &TestRun, asked_us: u64) {
        let timing = run.timing;
        let reported_us = timing.reported_us(run.wall_us);
        self.timings += TestTimings {
            count: 1,
            runner_us: timing.started_us.saturating_sub(self.ready_us),
            setup_us: timing.setup_us,
            run_us: run.wall_us,
            teardown_us: timing.teardown_us,
            transport_us: clock_us().saturating_sub(reported_us.max(asked_us)),
            ..TestTimings::default()
        };
        self.ready_us = self.ready_us.max(reported_us);
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
            .map_err(|e| SandboxError::Runner(format!("cannot write to the runner: {e}")))?;
        self.ready_us = clock_us();
        Ok(())
    }

    pub async fn close_input(&mut self) {
        if let Some(mut input) = self.input.take() {
            let _ = input.shutdown().await;
        }
    }

    /// Tells a waiting runner to run the next test (`go_on`), or to stop.
    pub async fn step(&mut self, go_on: bool) -> Result<(), SandboxError> {
        if go_on {
            self.send(b"next\n").await
        } else {
            self.close_input().await;
            Ok(())
        }
    }

    /// `checker`: judges one test's output; the checker's run comes back as a test run.
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

    /// Waits for the runner to end and says whether it ended well (`reset`).
    pub async fn finish(mut self, what: &str) -> Result<(), SandboxError> {
        self.close_input().await;
        while self.next().await?.is_some() {}
        let exit = self.docker.inspect_exec(&self.exec_id).await?.exit_code;
        match exit {
            Some(0) => Ok(()),
            exit => Err(self.failure(what, exit)),
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
