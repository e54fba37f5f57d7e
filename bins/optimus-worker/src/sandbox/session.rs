//! A container's attached stream (a [`Channel`], open for the container's
//! life) and one `runner.sh` session on it: the worker asks the container's init
//! to start the runner (`optimus_protocol::request`), sends the job's archive and
//! requests as data frames for the runner's stdin, and reads the reports on
//! stdout with the capped reader of `optimus_protocol`, so nothing the sandbox
//! writes can make the worker hold more than the caps. Init's `ended` report
//! closes each session; a container serves the next only after `ended 0`.

use std::pin::Pin;

use bollard::container::LogOutput;
use bollard::query_parameters::AttachContainerOptionsBuilder;
use bollard::Docker;
use futures_util::{FutureExt, Stream, StreamExt};
use optimus_common::TestTimings;
use optimus_protocol::request::{self, Verb};
use optimus_protocol::{clock_us, Caps, Parser, Report, TestRun};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::{SandboxError, STALL_GRACE};

/// What the runner itself says on stderr is kept up to this, for the log.
const DIAGNOSTICS_CAP: usize = 64 * 1024;

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// A container's attached stdin and stdout/stderr: its init's, which serves one
/// runner session at a time on them.
pub struct Channel {
    output: Output,
    input: Pin<Box<dyn AsyncWrite + Send>>,
}

impl Channel {
    /// Attaches to a container made with an open stdin (before it starts, so
    /// that nothing it says is missed).
    pub(super) async fn attach(docker: &Docker, container: &str) -> Result<Self, SandboxError> {
        let options = AttachContainerOptionsBuilder::new().stdin(true).stdout(true).stderr(true).stream(true).build();
        let attached = docker.attach_container(container, Some(options)).await?;
        Ok(Channel { output: attached.output, input: attached.input })
    }

    /// Whether the stream is still open, as far as what has arrived shows (a
    /// connection to the engine that was cut ends it). Anything init said
    /// between sessions is dropped.
    pub(super) fn is_open(&mut self) -> bool {
        loop {
            match self.output.next().now_or_never() {
                None => return true,
                Some(Some(Ok(_))) => {}
                Some(None | Some(Err(_))) => return false,
            }
        }
    }
}

pub struct Session {
    channel: Channel,
    /// The runner's stdin has been ended.
    eof_sent: bool,
    /// The runner's exit status, once init said it ended.
    exit: Option<i32>,
    parser: Parser,
    diagnostics: Vec<u8>,
    /// Past it, the runner is stuck: everything it runs has limits well inside it.
    deadline: Instant,
    /// How long asking init for the runner took, in µs.
    exec_us: u64,
    /// When the runner could last go on ([`clock_us`]): the worker's last word
    /// to it, or the end of its last report, whichever came later.
    ready_us: u64,
    /// The phases of the test reports read so far, as far as the session sees them.
    timings: TestTimings,
}

impl Session {
    /// Starts `runner.sh <verb>` on `channel`, as the container's root (which
    /// holds only the capabilities to become the sandbox user and to kill), with
    /// `env` added to the container's environment.
    pub(super) async fn start(
        channel: Channel,
        verb: Verb,
        env: &[String],
        caps: Caps,
        deadline: Instant,
    ) -> Result<Self, SandboxError> {
        let began = Instant::now();
        let mut session = Session {
            channel,
            eof_sent: false,
            exit: None,
            parser: Parser::new(caps),
            diagnostics: Vec::new(),
            deadline,
            exec_us: 0,
            ready_us: 0,
            timings: TestTimings::default(),
        };
        session.write(&request::start(verb, env)).await?;
        session.exec_us = began.elapsed().as_micros() as u64;
        session.ready_us = clock_us();
        Ok(session)
    }

    /// How long asking for the runner took, in µs.
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

    /// Lets a compiled job's tests start, to be done by `deadline`.
    pub async fn begin_tests(&mut self, deadline: Instant) -> Result<(), SandboxError> {
        self.set_deadline(deadline);
        self.step(true).await
    }

    /// The next report; `None` once the runner has ended (init said so).
    pub async fn next(&mut self) -> Result<Option<Report>, SandboxError> {
        if self.exit.is_some() {
            return Ok(None);
        }
        loop {
            match self.parser.next_report()? {
                Some(Report::Ended { exit }) => {
                    self.exit = Some(exit);
                    return Ok(None);
                }
                Some(report) => return Ok(Some(report)),
                None => {}
            }
            let chunk = tokio::time::timeout_at(self.deadline, self.channel.output.next())
                .await
                .map_err(|_| SandboxError::Stalled(STALL_GRACE))?;
            match chunk {
                None => {
                    return Err(SandboxError::Stream(
                        "it ended (the container's init is gone, or the engine let go)".into(),
                    ))
                }
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
            Some(Report::Compile { .. } | Report::Artifact { .. } | Report::ArtifactSkipped { .. }) => {
                Err(SandboxError::Runner("a compile's report among the tests".into()))
            }
            // `next` takes init's `ended` report itself.
            Some(Report::Ended { .. }) | None => Err(self.runner_error("the test run")),
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

    /// Writes `bytes` to the runner's stdin.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), SandboxError> {
        if self.eof_sent {
            return Err(SandboxError::Runner("input already closed".into()));
        }
        self.write(request::data_header(bytes.len()).as_bytes()).await?;
        self.write(bytes).await?;
        self.ready_us = clock_us();
        Ok(())
    }

    /// Writes a request to init.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), SandboxError> {
        let input = &mut self.channel.input;
        let write = async {
            input.write_all(bytes).await?;
            input.flush().await
        };
        tokio::time::timeout_at(self.deadline, write)
            .await
            .map_err(|_| SandboxError::Stalled(STALL_GRACE))?
            .map_err(|e| SandboxError::Stream(format!("cannot write to it: {e}")))
    }

    /// Ends the runner's stdin.
    pub async fn close_input(&mut self) -> Result<(), SandboxError> {
        if !self.eof_sent {
            self.eof_sent = true;
            self.write(request::EOF).await?;
        }
        Ok(())
    }

    /// Tells a waiting runner to run the next test (`go_on`), or to stop.
    pub async fn step(&mut self, go_on: bool) -> Result<(), SandboxError> {
        if go_on {
            self.send(b"next\n").await
        } else {
            self.close_input().await
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
            None => Err(self.runner_error("check")),
        }
    }

    /// Waits for the runner to end; if it ended well (its wipe held), the
    /// channel, ready for the container's next session.
    pub async fn finish(mut self, what: &str) -> Result<Channel, SandboxError> {
        self.close_input().await?;
        while self.next().await?.is_some() {}
        match self.exit {
            Some(0) => Ok(self.channel),
            _ => Err(self.runner_error(what)),
        }
    }

    /// The runner failed by itself: what it said, for the log.
    pub fn runner_error(&self, what: &str) -> SandboxError {
        let said = String::from_utf8_lossy(&self.diagnostics).trim().to_string();
        SandboxError::Runner(format!("{what} ended early (exit {:?}): {said}", self.exit))
    }
}
