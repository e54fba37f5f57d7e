//! What the worker and a sandbox container say to each other over the
//! container's attached stream: the worker's [`request`]s to the container's
//! init (start a runner session, feed its stdin, end its stdin), and the reports
//! that `optimus-launcher` and `runner.sh` write back on stdout. This crate owns
//! both sides of both directions, so they cannot drift apart; `vectors/` holds
//! the byte-exact examples that the writers and the readers are tested against.
//!
//! A report is one header line followed by raw bytes whose lengths the header
//! gives, so any output (binary, huge, without newlines) passes intact:
//!
//! ```text
//! @@optimus compile <ok|error|timeout|oom|none> <exit> <wall_ms> <len>\n<compiler output>
//! @@optimus test <i> <exit> <wall_us> <cpu_us> <peak_kb> <oom 0|1> <timed_out 0|1> <started_us> <setup_us> <teardown_us> <out_len> <err_len>\n<stdout><stderr>
//! @@optimus artifact <len>\n<tar of what the compile left beside the sources>
//! @@optimus artifact-skipped <len>\n
//! @@optimus done\n
//! @@optimus ended <exit>\n
//! ```
//!
//! An `artifact` follows a `compile ok` only when the worker asked for one (it
//! keeps compiles in its cache); `artifact-skipped` says the tar was over the
//! most the worker asked for, and how long it was.
//!
//! `done` is the runner's word that the job is over; `ended` is init's, once the
//! runner process has exited (after its wipe), with its exit status: a container
//! serves another session only after `ended 0`.
//!
//! `exit` is the exit code, or 128+N when signal N ended the process.
//! `started_us`, `setup_us` and `teardown_us` are the launcher's [`Timing`] of
//! the run, for the worker's account of where a job's time went; nothing is
//! judged by them. The reader
//! checks every length against its [`Caps`] before it keeps a byte, so a corrupt or
//! hostile stream can never make the worker hold more than the caps.

use std::fmt;

pub mod request;

/// Bumped whenever the format changes; images carry the version they speak.
pub const VERSION: u32 = 5;

/// The first of the uids (each also a gid) sandboxed programs run as. Every
/// container has one of them for its whole life, chosen by the worker so that no
/// other container on the engine holds it: the kernel's per-user limits (inotify
/// instances, pipe buffer pages, pending signals, message-queue bytes) are then
/// per container, not shared by every tenant's concurrent jobs. The launcher drops
/// to it, the worker's `/work` tmpfs belongs to it, and the base image names each
/// one (`optimus-cli build-image` passes both numbers to `dockerfiles/base/Dockerfile`).
pub const SANDBOX_UID: u32 = 10001;
/// How many sandbox uids there are: `SANDBOX_UID .. SANDBOX_UID + SANDBOX_USERS`,
/// more than the containers one engine runs at once.
pub const SANDBOX_USERS: u32 = 1024;
/// The container's environment variable that gives the launcher its uid.
pub const SANDBOX_UID_ENV: &str = "OPTIMUS_SANDBOX_UID";

/// `raw` as a sandbox uid, if it is one (never root, never outside the range).
pub fn sandbox_uid(raw: &str) -> Option<u32> {
    let uid: u32 = raw.trim().parse().ok()?;
    (SANDBOX_UID..SANDBOX_UID + SANDBOX_USERS).contains(&uid).then_some(uid)
}

/// Compiler output kept, in bytes.
pub const COMPILE_OUTPUT_LIMIT: usize = 64 * 1024;
/// The longest artifact (the tar of a compile's program directory) the worker
/// takes: a compile that made more is not cached (`artifact-skipped`).
pub const ARTIFACT_LIMIT: usize = 32 * 1024 * 1024;

const MAGIC: &str = "@@optimus ";
/// A header line longer than this is not a header: the stream is corrupt.
const MAX_HEADER: usize = 256;

/// How the compile step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileStatus {
    /// The language has no compile step.
    None,
    Ok,
    Error,
    Timeout,
    /// The compiler was killed for exceeding the compile memory limit.
    OutOfMemory,
}

impl CompileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CompileStatus::None => "none",
            CompileStatus::Ok => "ok",
            CompileStatus::Error => "error",
            CompileStatus::Timeout => "timeout",
            CompileStatus::OutOfMemory => "oom",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::None, Self::Ok, Self::Error, Self::Timeout, Self::OutOfMemory].into_iter().find(|c| c.as_str() == s)
    }
}

/// What one run of a test (or of a checker on a test) did, measured by the launcher.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestRun {
    /// Position of the test in the job (0-based).
    pub index: usize,
    /// The exit code, or 128+N when signal N ended the program.
    pub exit_status: i32,
    /// Wall-clock time from start to the end of the program's process tree.
    pub wall_us: u64,
    /// CPU time (user + system) of the whole process tree.
    pub cpu_us: u64,
    /// Peak memory of the whole process tree, in KiB.
    pub peak_kb: u64,
    /// The kernel's OOM killer struck during this run.
    pub oom_killed: bool,
    /// The run was killed at its CPU-time limit or its wall-clock cap.
    pub timed_out: bool,
    pub timing: Timing,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Where the launcher's own time around one run went, on the host's clock
/// ([`clock_us`]), which the worker reads too: the worker can then tell the
/// runner's and the engine's share of a test from the launcher's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// When the launcher started on the run ([`clock_us`]).
    pub started_us: u64,
    /// From then to the program's fork: killing leftovers, emptying the scratch
    /// places, opening the output files.
    pub setup_us: u64,
    /// From the end of the program's tree to the report's first byte: the sweep,
    /// the reaping, reading the outputs back.
    pub teardown_us: u64,
}

impl Timing {
    /// When the report was written ([`clock_us`]), given the run's wall time.
    pub fn reported_us(&self, wall_us: u64) -> u64 {
        self.started_us.saturating_add(self.setup_us).saturating_add(wall_us).saturating_add(self.teardown_us)
    }
}

/// Microseconds since the Unix epoch on the host's clock. The launcher, inside
/// a container, and the worker, outside, read the one kernel's clock, so their
/// stamps can be compared (containers get no clock of their own).
pub fn clock_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// One report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Compile {
        status: CompileStatus,
        exit_code: i32,
        time_ms: u64,
        output: Vec<u8>,
    },
    Test(TestRun),
    /// The program directory as the compile left it, as a tar.
    Artifact {
        tar: Vec<u8>,
    },
    /// The artifact was `len` bytes, over what the worker asked for.
    ArtifactSkipped {
        len: u64,
    },
    Done,
    /// The runner process exited with this status (128+N for signal N).
    Ended {
        exit: i32,
    },
}

impl Report {
    /// The report's bytes, exactly as the reader expects them.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Report::Compile { status, exit_code, time_ms, output } => {
                out.extend(
                    format!("{MAGIC}compile {} {exit_code} {time_ms} {}\n", status.as_str(), output.len()).bytes(),
                );
                out.extend_from_slice(output);
            }
            Report::Test(t) => {
                out.extend(test_header(t, t.stdout.len(), t.stderr.len()).bytes());
                out.extend_from_slice(&t.stdout);
                out.extend_from_slice(&t.stderr);
            }
            Report::Artifact { tar } => {
                out.extend(format!("{MAGIC}artifact {}\n", tar.len()).bytes());
                out.extend_from_slice(tar);
            }
            Report::ArtifactSkipped { len } => out.extend(format!("{MAGIC}artifact-skipped {len}\n").bytes()),
            Report::Done => out.extend(format!("{MAGIC}done\n").bytes()),
            Report::Ended { exit } => out.extend(format!("{MAGIC}ended {exit}\n").bytes()),
        }
        out
    }
}

/// A test report's header line; the launcher writes the bodies itself, straight
/// from the program's output files, so they are never copied whole.
pub fn test_header(t: &TestRun, out_len: usize, err_len: usize) -> String {
    format!(
        "{MAGIC}test {} {} {} {} {} {} {} {} {} {} {out_len} {err_len}\n",
        t.index,
        t.exit_status,
        t.wall_us,
        t.cpu_us,
        t.peak_kb,
        u8::from(t.oom_killed),
        u8::from(t.timed_out),
        t.timing.started_us,
        t.timing.setup_us,
        t.timing.teardown_us,
    )
}

/// The most the reader accepts in one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Bytes of one test's stdout, and of its stderr. The launcher sends one byte
    /// past the output limit, so that the worker sees that the program went over.
    pub stream: usize,
    /// Bytes of compiler output.
    pub compile: usize,
    /// Bytes of a compile's artifact.
    pub artifact: usize,
}

impl Caps {
    /// The caps for a worker that keeps `output_limit` bytes per stream.
    pub fn for_output_limit(output_limit: usize) -> Self {
        Caps { stream: output_limit.saturating_add(1), compile: COMPILE_OUTPUT_LIMIT, artifact: ARTIFACT_LIMIT }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "runner report is malformed: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// A header line: a whole report, or the start of one with a body to come.
enum Header {
    Whole(Report),
    Body(Pending),
}

enum Pending {
    Compile { status: CompileStatus, exit_code: i32, time_ms: u64, len: usize },
    Test { run: TestRun, out_len: usize, err_len: usize },
    Artifact { len: usize },
}

/// An incremental reader: feed it chunks as they arrive, take reports as they
/// complete. It never holds more than one report's capped body plus one chunk.
pub struct Parser {
    caps: Caps,
    buf: Vec<u8>,
    pending: Option<Pending>,
}

fn num<T: std::str::FromStr>(field: Option<&str>, what: &str, line: &str) -> Result<T, ProtocolError> {
    field.and_then(|f| f.parse().ok()).ok_or_else(|| ProtocolError(format!("bad {what} in {line:?}")))
}

fn flag(field: Option<&str>, what: &str, line: &str) -> Result<bool, ProtocolError> {
    match field {
        Some("0") => Ok(false),
        Some("1") => Ok(true),
        _ => Err(ProtocolError(format!("bad {what} in {line:?}"))),
    }
}

fn capped(len: usize, cap: usize, what: &str, line: &str) -> Result<usize, ProtocolError> {
    if len > cap {
        return Err(ProtocolError(format!("{what} {len} is over the cap of {cap} bytes in {line:?}")));
    }
    Ok(len)
}

impl Parser {
    pub fn new(caps: Caps) -> Self {
        Parser { caps, buf: Vec::new(), pending: None }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// No bytes received that do not yet form a whole report.
    pub fn is_idle(&self) -> bool {
        self.buf.is_empty() && self.pending.is_none()
    }

    /// The next complete report, if the bytes fed so far hold one.
    pub fn next_report(&mut self) -> Result<Option<Report>, ProtocolError> {
        if self.pending.is_none() {
            let Some(nl) = self.buf.iter().take(MAX_HEADER + 1).position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_HEADER {
                    return Err(ProtocolError("no header line".into()));
                }
                return Ok(None);
            };
            let line = String::from_utf8_lossy(&self.buf[..nl]).into_owned();
            self.buf.drain(..=nl);
            match self.header(&line)? {
                Header::Body(pending) => self.pending = Some(pending),
                Header::Whole(report) => return Ok(Some(report)),
            }
        }
        let need = match &self.pending {
            Some(Pending::Compile { len, .. }) => *len,
            Some(Pending::Test { out_len, err_len, .. }) => out_len + err_len,
            Some(Pending::Artifact { len }) => *len,
            None => unreachable!("set above"),
        };
        if self.buf.len() < need {
            return Ok(None);
        }
        let mut body: Vec<u8> = self.buf.drain(..need).collect();
        Ok(Some(match self.pending.take().expect("checked above") {
            Pending::Compile { status, exit_code, time_ms, .. } => {
                Report::Compile { status, exit_code, time_ms, output: body }
            }
            Pending::Test { mut run, out_len, .. } => {
                run.stderr = body.split_off(out_len);
                run.stdout = body;
                Report::Test(run)
            }
            Pending::Artifact { .. } => Report::Artifact { tar: body },
        }))
    }

    /// Parses a header.
    fn header(&self, line: &str) -> Result<Header, ProtocolError> {
        let Some(rest) = line.strip_prefix(MAGIC) else {
            return Err(ProtocolError(format!("unexpected line {line:?}")));
        };
        let mut f = rest.split(' ');
        let header = match f.next() {
            Some("done") => Header::Whole(Report::Done),
            Some("ended") => Header::Whole(Report::Ended { exit: num(f.next(), "exit status", line)? }),
            Some("artifact") => Header::Body(Pending::Artifact {
                len: capped(num(f.next(), "length", line)?, self.caps.artifact, "artifact length", line)?,
            }),
            Some("artifact-skipped") => Header::Whole(Report::ArtifactSkipped { len: num(f.next(), "length", line)? }),
            Some("compile") => {
                let status = f
                    .next()
                    .and_then(CompileStatus::parse)
                    .ok_or_else(|| ProtocolError(format!("bad compile status in {line:?}")))?;
                Header::Body(Pending::Compile {
                    status,
                    exit_code: num(f.next(), "exit code", line)?,
                    time_ms: num(f.next(), "time", line)?,
                    len: capped(num(f.next(), "length", line)?, self.caps.compile, "compile output length", line)?,
                })
            }
            Some("test") => {
                let run = TestRun {
                    index: num(f.next(), "index", line)?,
                    exit_status: num(f.next(), "exit status", line)?,
                    wall_us: num(f.next(), "wall time", line)?,
                    cpu_us: num(f.next(), "cpu time", line)?,
                    peak_kb: num(f.next(), "memory", line)?,
                    oom_killed: flag(f.next(), "oom flag", line)?,
                    timed_out: flag(f.next(), "timeout flag", line)?,
                    timing: Timing {
                        started_us: num(f.next(), "start time", line)?,
                        setup_us: num(f.next(), "setup time", line)?,
                        teardown_us: num(f.next(), "teardown time", line)?,
                    },
                    ..TestRun::default()
                };
                Header::Body(Pending::Test {
                    run,
                    out_len: capped(num(f.next(), "stdout length", line)?, self.caps.stream, "stdout length", line)?,
                    err_len: capped(num(f.next(), "stderr length", line)?, self.caps.stream, "stderr length", line)?,
                })
            }
            _ => return Err(ProtocolError(format!("unknown report {line:?}"))),
        };
        if f.next().is_some() {
            return Err(ProtocolError(format!("extra fields in {line:?}")));
        }
        Ok(header)
    }
}

#[cfg(test)]
mod tests;
