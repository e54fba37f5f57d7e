//! Reads what `dockerfiles/runner.sh` reports on its stdout: header lines followed
//! by raw bytes whose lengths the header gives. See the runner's header comment for
//! the format; this is its only reader.

/// How the compile step ended, as the runner saw it.
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

/// One report from the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Compile { status: CompileStatus, exit_code: i32, time_ms: u64, output: Vec<u8> },
    Test(TestRun),
    Done,
}

/// What one test's run did, measured inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestRun {
    /// Position of the test in the job (0-based).
    pub index: usize,
    /// The runner's exit status: 128+N when the program died of signal N.
    pub exit_status: i32,
    pub time_us: u64,
    pub peak_kb: u64,
    /// The kernel's OOM killer struck during this test.
    pub oom_killed: bool,
    /// The run reached its wall-time limit and was killed.
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("runner report is malformed: {0}")]
pub struct ProtocolError(pub String);

enum Pending {
    Compile { status: CompileStatus, exit_code: i32, time_ms: u64, len: usize },
    Test { run: TestRun, out_len: usize, err_len: usize },
}

/// An incremental parser: feed it chunks as they arrive, take reports as they complete.
#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
    pending: Option<Pending>,
}

const MAGIC: &str = "@@optimus ";
/// A header line longer than this is not a header: the stream is corrupt.
const MAX_HEADER: usize = 256;

fn num<T: std::str::FromStr>(field: Option<&str>, what: &str, line: &str) -> Result<T, ProtocolError> {
    field.and_then(|f| f.parse().ok()).ok_or_else(|| ProtocolError(format!("bad {what} in {line:?}")))
}

impl Parser {
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes received that do not yet form a whole report.
    pub fn is_idle(&self) -> bool {
        self.buf.is_empty() && self.pending.is_none()
    }

    /// The next complete report, if the bytes fed so far hold one.
    pub fn next_report(&mut self) -> Result<Option<Report>, ProtocolError> {
        if self.pending.is_none() {
            let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_HEADER {
                    return Err(ProtocolError("no header line".into()));
                }
                return Ok(None);
            };
            let line = String::from_utf8_lossy(&self.buf[..nl]).into_owned();
            self.buf.drain(..=nl);
            let Some(rest) = line.strip_prefix(MAGIC) else {
                return Err(ProtocolError(format!("unexpected line {line:?}")));
            };
            let mut f = rest.split(' ');
            self.pending = Some(match f.next() {
                Some("done") => return Ok(Some(Report::Done)),
                Some("compile") => {
                    let status = match f.next() {
                        Some("none") => CompileStatus::None,
                        Some("ok") => CompileStatus::Ok,
                        Some("error") => CompileStatus::Error,
                        Some("timeout") => CompileStatus::Timeout,
                        Some("oom") => CompileStatus::OutOfMemory,
                        _ => return Err(ProtocolError(format!("bad compile status in {line:?}"))),
                    };
                    Pending::Compile {
                        status,
                        exit_code: num(f.next(), "exit code", &line)?,
                        time_ms: num(f.next(), "time", &line)?,
                        len: num(f.next(), "length", &line)?,
                    }
                }
                Some("test") => {
                    let run = TestRun {
                        index: num(f.next(), "index", &line)?,
                        exit_status: num(f.next(), "exit status", &line)?,
                        time_us: num(f.next(), "time", &line)?,
                        peak_kb: num(f.next(), "memory", &line)?,
                        oom_killed: num::<u8>(f.next(), "oom flag", &line)? == 1,
                        timed_out: num::<u8>(f.next(), "timeout flag", &line)? == 1,
                        ..TestRun::default()
                    };
                    Pending::Test {
                        run,
                        out_len: num(f.next(), "stdout length", &line)?,
                        err_len: num(f.next(), "stderr length", &line)?,
                    }
                }
                _ => return Err(ProtocolError(format!("unknown report {line:?}"))),
            });
        }
        let need = match &self.pending {
            Some(Pending::Compile { len, .. }) => *len,
            Some(Pending::Test { out_len, err_len, .. }) => out_len + err_len,
            None => unreachable!("set above"),
        };
        if self.buf.len() < need {
            return Ok(None);
        }
        let body: Vec<u8> = self.buf.drain(..need).collect();
        Ok(Some(match self.pending.take().expect("checked above") {
            Pending::Compile { status, exit_code, time_ms, .. } => {
                Report::Compile { status, exit_code, time_ms, output: body }
            }
            Pending::Test { mut run, out_len, .. } => {
                let mut body = body;
                run.stderr = body.split_off(out_len);
                run.stdout = body;
                Report::Test(run)
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8], chunk: usize) -> Result<Vec<Report>, ProtocolError> {
        let mut p = Parser::default();
        let mut out = Vec::new();
        for c in bytes.chunks(chunk) {
            p.feed(c);
            while let Some(r) = p.next_report()? {
                out.push(r);
            }
        }
        assert!(p.is_idle());
        Ok(out)
    }

    #[test]
    fn parses_a_whole_job_in_any_chunking() {
        let mut s = b"@@optimus compile error 1 250 5\nerr\n!".to_vec();
        s.extend_from_slice(b"@@optimus test 0 0 1200 5000 0 0 3 2\na\nbxy");
        s.extend_from_slice(b"@@optimus test 1 137 2000000 100 1 1 0 0\n@@optimus done\n");
        for chunk in [1, 3, 7, 1000] {
            let reports = all(&s, chunk).unwrap();
            assert_eq!(reports.len(), 4);
            assert_eq!(
                reports[0],
                Report::Compile {
                    status: CompileStatus::Error,
                    exit_code: 1,
                    time_ms: 250,
                    output: b"err\n!".to_vec()
                }
            );
            let Report::Test(t) = &reports[1] else { panic!() };
            assert_eq!((t.stdout.as_slice(), t.stderr.as_slice()), (&b"a\nb"[..], &b"xy"[..]));
            let Report::Test(t) = &reports[2] else { panic!() };
            assert!(t.oom_killed && t.timed_out && t.exit_status == 137 && t.time_us == 2_000_000);
            assert_eq!(reports[3], Report::Done);
        }
    }

    #[test]
    fn output_that_looks_like_a_header_is_just_output() {
        let s = b"@@optimus test 0 0 1 1 0 0 16 0\n@@optimus done\n\n@@optimus done\n";
        let reports = all(s, 4).unwrap();
        assert_eq!(reports.len(), 2);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(all(b"hello\n", 10).is_err());
        assert!(all(b"@@optimus test x\n", 10).is_err());
    }
}
