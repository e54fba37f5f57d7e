//! Turns what a run measured into verdicts. Pure: no I/O, so every rule is unit-tested.

use optimus_common::verdict::signal_name;
use optimus_common::{TestResult, Verdict};

use optimus_protocol::TestRun;

/// SIGXFSZ: the program wrote past the file-size limit that caps its output.
const SIGXFSZ: i32 = 25;

/// The limits of a run: what its container is given and what it is judged against.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// CPU time of each run; its wall-clock cap is [`optimus_common::limits::wall_cap_ms`] of it.
    pub time_limit_ms: u64,
    pub memory_limit_mb: u32,
    /// stdout and stderr bytes kept per run.
    pub output_limit: usize,
}

impl RunLimits {
    /// The wall-clock cap of one run, as `runner.sh` gives it to the launcher.
    pub fn wall_cap(&self) -> std::time::Duration {
        std::time::Duration::from_millis(optimus_common::limits::wall_cap_ms(self.time_limit_ms))
    }
}

/// A run as the result reports it: outputs cut to the cap, its exit split into a
/// code or a signal, and the limit it broke or the way it crashed, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Wall-clock time.
    pub time_ms: u64,
    pub cpu_time_ms: u64,
    pub memory_kb: u64,
    pub truncated: bool,
    /// Why the run did not end cleanly: a verdict other than accepted, and why.
    pub failure: Option<(Verdict, String)>,
}

/// Splits the runner's exit status into an exit code or a signal.
fn exit_or_signal(status: i32) -> (Option<i32>, Option<i32>) {
    if (129..=128 + 64).contains(&status) {
        (None, Some(status - 128))
    } else {
        (Some(status), None)
    }
}

/// Cuts `bytes` to `limit` and makes text of it; says whether it cut.
fn text(mut bytes: Vec<u8>, limit: usize) -> (String, bool) {
    let cut = bytes.len() > limit;
    bytes.truncate(limit);
    (String::from_utf8_lossy(&bytes).into_owned(), cut)
}

/// How a run ended, judged against its limits; its output is not looked at here.
pub fn observe(run: TestRun, limits: &RunLimits) -> Observed {
    let (exit_code, signal) = exit_or_signal(run.exit_status);
    let (stdout, out_cut) = text(run.stdout, limits.output_limit);
    let (stderr, err_cut) = text(run.stderr, limits.output_limit);
    let limit_kb = u64::from(limits.memory_limit_mb) * 1024;
    let cpu_ms = run.cpu_us / 1000;
    // The JVM reports its own heap exhaustion instead of being killed.
    let java_oom = exit_code.is_some_and(|c| c != 0) && stderr.contains("java.lang.OutOfMemoryError");

    // Past the output cap first: a program that ignores SIGXFSZ (the JVM does) and
    // keeps writing into the cap until its time runs out still flooded.
    let failure = if out_cut || err_cut || signal == Some(SIGXFSZ) {
        Some((Verdict::OutputLimitExceeded, format!("wrote more than {} bytes", limits.output_limit)))
    } else if run.timed_out || cpu_ms > limits.time_limit_ms {
        let why = if cpu_ms >= limits.time_limit_ms {
            format!("used {cpu_ms} ms of CPU time, over its {} ms time limit", limits.time_limit_ms)
        } else {
            format!(
                "killed at the wall-clock cap of {} ms (twice its {} ms time limit, plus 1 s) while it waited or slept",
                optimus_common::limits::wall_cap_ms(limits.time_limit_ms),
                limits.time_limit_ms
            )
        };
        Some((Verdict::TimeLimitExceeded, why))
    } else if run.oom_killed || run.peak_kb > limit_kb || java_oom {
        Some((Verdict::MemoryLimitExceeded, format!("used more than the {} MB memory limit", limits.memory_limit_mb)))
    } else if let Some(sig) = signal {
        Some((Verdict::RuntimeError, format!("killed by signal {sig} ({})", signal_name(sig).unwrap_or("signal"))))
    } else if exit_code != Some(0) {
        Some((Verdict::RuntimeError, format!("exited with code {}", exit_code.unwrap_or(-1))))
    } else {
        None
    };
    Observed {
        stdout,
        stderr,
        exit_code,
        signal,
        time_ms: run.wall_us / 1000,
        cpu_time_ms: cpu_ms,
        memory_kb: run.peak_kb,
        truncated: out_cut || err_cut,
        failure,
    }
}

/// A test's result: its run, and the verdict on it (`None`: not judged).
pub fn test_result(test_id: u64, run: Observed, verdict: Option<Verdict>, message: Option<String>) -> TestResult {
    TestResult {
        test_id,
        verdict,
        passed: verdict.map(|v| v == Verdict::Accepted),
        stdout: run.stdout,
        stderr: run.stderr,
        exit_code: run.exit_code,
        signal: run.signal,
        execution_time_ms: run.time_ms,
        cpu_time_ms: run.cpu_time_ms,
        memory_kb: run.memory_kb,
        output_truncated: run.truncated,
        message,
        checker_message: None,
        expected_output: None,
        solution_time_ms: None,
        solution_memory_kb: None,
    }
}

/// What a checker's run says about a test, testlib-style: exit 0 accepts, 1 or 2
/// rejects, and anything else (another code, a signal, a limit) is the checker's
/// failure, never the program's pass.
pub fn checker_verdict(checker: &Observed) -> (Verdict, Option<String>) {
    match (&checker.failure, checker.exit_code) {
        (None, _) => (Verdict::Accepted, None),
        (Some((Verdict::RuntimeError, _)), Some(1 | 2)) => (Verdict::WrongAnswer, None),
        (Some((Verdict::RuntimeError, _)), Some(code)) => (
            Verdict::InternalError,
            Some(format!("the checker exited with code {code}; a checker exits 0 to accept, 1 or 2 to reject")),
        ),
        (Some((_, why)), _) => (Verdict::InternalError, Some(format!("the checker failed: {why}"))),
    }
}

/// What a checker printed, as the test's `checker_message`.
pub fn checker_message(checker: &Observed) -> Option<String> {
    let said = format!("{}\n{}", checker.stdout.trim(), checker.stderr.trim());
    let said = said.trim();
    (!said.is_empty()).then(|| said.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: RunLimits = RunLimits { time_limit_ms: 1000, memory_limit_mb: 64, output_limit: 16 };

    fn run(stdout: &str, exit: i32) -> TestRun {
        TestRun {
            exit_status: exit,
            stdout: stdout.into(),
            wall_us: 12_345,
            cpu_us: 9_000,
            peak_kb: 1000,
            ..TestRun::default()
        }
    }

    fn failure(r: TestRun) -> Option<Verdict> {
        observe(r, &B).failure.map(|f| f.0)
    }

    #[test]
    fn each_limit_gets_its_verdict() {
        assert_eq!(failure(run("anything", 0)), None);
        assert_eq!(failure(run("", 1)), Some(Verdict::RuntimeError));
        assert_eq!(failure(run("", 139)), Some(Verdict::RuntimeError));
        assert_eq!(failure(TestRun { timed_out: true, ..run("", 137) }), Some(Verdict::TimeLimitExceeded));
        // Judged on CPU time: a slow wall clock alone is no TLE, CPU past the limit is.
        assert_eq!(failure(TestRun { wall_us: 1_900_000, ..run("", 0) }), None);
        assert_eq!(failure(TestRun { cpu_us: 1_001_000, ..run("", 0) }), Some(Verdict::TimeLimitExceeded));
        assert_eq!(failure(TestRun { oom_killed: true, ..run("", 137) }), Some(Verdict::MemoryLimitExceeded));
        assert_eq!(failure(TestRun { peak_kb: 65 * 1024, ..run("", 0) }), Some(Verdict::MemoryLimitExceeded));
        assert_eq!(failure(run("0123456789abcdefXYZ", 0)), Some(Verdict::OutputLimitExceeded));
        assert_eq!(failure(run("", 128 + 25)), Some(Verdict::OutputLimitExceeded));
    }

    #[test]
    fn signal_and_measurements_are_reported() {
        let o = observe(run("", 139), &B);
        assert_eq!((o.exit_code, o.signal), (None, Some(11)));
        assert_eq!((o.time_ms, o.cpu_time_ms, o.memory_kb), (12, 9, 1000));
        assert!(o.failure.unwrap().1.contains("SIGSEGV"));
        let r = test_result(7, observe(run("ok", 0), &B), Some(Verdict::Accepted), None);
        assert_eq!((r.test_id, r.passed, r.stdout.as_str()), (7, Some(true), "ok"));
        let r = test_result(7, observe(run("ok", 0), &B), None, None);
        assert_eq!((r.verdict, r.passed), (None, None));
    }

    #[test]
    fn checker_exit_codes_follow_testlib() {
        let verdict = |r: TestRun| checker_verdict(&observe(r, &B)).0;
        assert_eq!(verdict(run("ok", 0)), Verdict::Accepted);
        assert_eq!(verdict(run("wrong", 1)), Verdict::WrongAnswer);
        assert_eq!(verdict(run("presentation", 2)), Verdict::WrongAnswer);
        assert_eq!(verdict(run("", 3)), Verdict::InternalError);
        assert_eq!(verdict(run("", 139)), Verdict::InternalError);
        assert_eq!(verdict(TestRun { timed_out: true, ..run("", 137) }), Verdict::InternalError);
        assert_eq!(verdict(TestRun { oom_killed: true, ..run("", 1) }), Verdict::InternalError);
        let said = checker_message(&observe(TestRun { stderr: b"expected 3\n".to_vec(), ..run(" ", 1) }, &B));
        assert_eq!(said.as_deref(), Some("expected 3"));
    }
}
