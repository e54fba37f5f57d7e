//! Turns what a run measured into verdicts. Pure: no I/O, so every rule is unit-tested.

use optimus_common::{JobResult, JobSpec, TestCase, TestResult, Verdict};

use crate::protocol::TestRun;

/// What the judge needs beyond the job itself.
pub struct JudgeLimits {
    /// stdout and stderr bytes kept per test.
    pub output_limit: usize,
}

/// SIGXFSZ: the program wrote past the file-size limit that caps its output.
const SIGXFSZ: i32 = 25;

/// Splits the runner's exit status into an exit code or a signal.
fn exit_or_signal(status: i32) -> (Option<i32>, Option<i32>) {
    if (129..=128 + 64).contains(&status) {
        (None, Some(status - 128))
    } else {
        (Some(status), None)
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => "signal",
    }
}

/// Equal after dropping whitespace at each line's end and blank lines at the end.
pub fn outputs_match(actual: &str, expected: &str) -> bool {
    fn lines(s: &str) -> Vec<&str> {
        let mut v: Vec<&str> = s.split('\n').map(|l| l.trim_end()).collect();
        while v.last().is_some_and(|l| l.is_empty()) {
            v.pop();
        }
        v
    }
    lines(actual) == lines(expected)
}

/// Cuts `bytes` to `limit` and makes text of it; says whether it cut.
fn text(mut bytes: Vec<u8>, limit: usize) -> (String, bool) {
    let cut = bytes.len() > limit;
    bytes.truncate(limit);
    (String::from_utf8_lossy(&bytes).into_owned(), cut)
}

/// The verdict on one test.
pub fn judge_test(test: &TestCase, run: TestRun, spec: &JobSpec, limits: &JudgeLimits) -> TestResult {
    let (exit_code, signal) = exit_or_signal(run.exit_status);
    let (stdout, out_cut) = text(run.stdout, limits.output_limit);
    let (stderr, err_cut) = text(run.stderr, limits.output_limit);
    let limit_kb = u64::from(spec.memory_limit_mb) * 1024;
    // The JVM reports its own heap exhaustion instead of being killed.
    let java_oom = exit_code.is_some_and(|c| c != 0) && stderr.contains("java.lang.OutOfMemoryError");

    // Past the output cap first: a program that ignores SIGXFSZ (the JVM does) and
    // keeps writing into the cap until its time runs out still flooded.
    let (verdict, message) = if out_cut || err_cut || signal == Some(SIGXFSZ) {
        (Verdict::OutputLimitExceeded, Some(format!("wrote more than {} bytes", limits.output_limit)))
    } else if run.timed_out {
        (Verdict::TimeLimitExceeded, Some(format!("killed at the {} ms time limit", spec.timeout_ms)))
    } else if run.oom_killed || run.peak_kb > limit_kb || java_oom {
        (Verdict::MemoryLimitExceeded, Some(format!("used more than the {} MB memory limit", spec.memory_limit_mb)))
    } else if let Some(sig) = signal {
        (Verdict::RuntimeError, Some(format!("killed by signal {sig} ({})", signal_name(sig))))
    } else if exit_code != Some(0) {
        (Verdict::RuntimeError, Some(format!("exited with code {}", exit_code.unwrap_or(-1))))
    } else {
        match &test.expected_output {
            None => (Verdict::Accepted, None),
            Some(expected) if outputs_match(&stdout, expected) => (Verdict::Accepted, None),
            Some(_) => (Verdict::WrongAnswer, None),
        }
    };
    TestResult {
        test_id: test.id,
        verdict,
        passed: verdict == Verdict::Accepted,
        stdout,
        stderr,
        exit_code,
        signal,
        execution_time_ms: run.time_us / 1000,
        memory_kb: run.peak_kb,
        output_truncated: out_cut || err_cut,
        message,
    }
}

/// The result of a job whose tests ran; `runs` are in test order.
pub fn judge_job(
    spec: &JobSpec,
    runs: Vec<TestRun>,
    compile_output: Option<String>,
    limits: &JudgeLimits,
) -> JobResult {
    let results = spec.test_cases.iter().zip(runs).map(|(test, run)| judge_test(test, run, spec, limits)).collect();
    JobResult::from_tests(results, &weights(spec), compile_output)
}

pub fn weights(spec: &JobSpec) -> Vec<u32> {
    spec.test_cases.iter().map(|t| t.weight).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(expected: Option<&str>) -> JobSpec {
        JobSpec {
            language: "python".into(),
            source_code: "x".into(),
            test_cases: vec![TestCase {
                id: 7,
                input: String::new(),
                expected_output: expected.map(Into::into),
                weight: 3,
            }],
            timeout_ms: 1000,
            memory_limit_mb: 64,
        }
    }

    fn run(stdout: &str, exit: i32) -> TestRun {
        TestRun { exit_status: exit, stdout: stdout.into(), time_us: 12_345, peak_kb: 1000, ..TestRun::default() }
    }

    const L: JudgeLimits = JudgeLimits { output_limit: 16 };

    fn verdict(expected: Option<&str>, r: TestRun) -> Verdict {
        let s = spec(expected);
        judge_test(&s.test_cases[0], r, &s, &L).verdict
    }

    #[test]
    fn trailing_whitespace_and_blank_lines_do_not_matter() {
        assert!(outputs_match("1 2  \n3\r\n\n\n", "1 2\n3"));
        assert!(!outputs_match("1  2\n3", "1 2\n3"));
        assert!(!outputs_match("\n1", "1"));
        assert!(!outputs_match("1\n\n2", "1\n2"));
    }

    #[test]
    fn each_limit_gets_its_verdict() {
        assert_eq!(verdict(Some("ok"), run("ok\n", 0)), Verdict::Accepted);
        assert_eq!(verdict(Some("ok"), run("no\n", 0)), Verdict::WrongAnswer);
        assert_eq!(verdict(None, run("anything", 0)), Verdict::Accepted);
        assert_eq!(verdict(None, run("", 1)), Verdict::RuntimeError);
        assert_eq!(verdict(None, run("", 139)), Verdict::RuntimeError);
        assert_eq!(
            verdict(None, TestRun { timed_out: true, exit_status: 137, ..run("", 137) }),
            Verdict::TimeLimitExceeded
        );
        assert_eq!(verdict(None, TestRun { oom_killed: true, ..run("", 137) }), Verdict::MemoryLimitExceeded);
        assert_eq!(verdict(None, TestRun { peak_kb: 65 * 1024, ..run("", 0) }), Verdict::MemoryLimitExceeded);
        assert_eq!(verdict(Some("x"), run("0123456789abcdefXYZ", 0)), Verdict::OutputLimitExceeded);
        assert_eq!(verdict(None, run("", 128 + 25)), Verdict::OutputLimitExceeded);
    }

    #[test]
    fn signal_and_measurements_are_reported() {
        let s = spec(None);
        let r = judge_test(&s.test_cases[0], run("", 139), &s, &L);
        assert_eq!((r.exit_code, r.signal, r.test_id), (None, Some(11), 7));
        assert_eq!((r.execution_time_ms, r.memory_kb), (12, 1000));
        assert!(r.message.unwrap().contains("SIGSEGV"));
    }

    #[test]
    fn score_sums_passed_weights_and_overall_is_first_failure() {
        let mut s = spec(Some("a"));
        s.test_cases.push(TestCase { id: 8, input: String::new(), expected_output: Some("b".into()), weight: 2 });
        s.test_cases.push(TestCase { id: 9, input: String::new(), expected_output: Some("c".into()), weight: 5 });
        let res = judge_job(&s, vec![run("a", 0), run("x", 0), run("", 1)], None, &L);
        assert_eq!((res.score, res.max_score, res.passed_tests, res.total_tests), (3, 10, 1, 3));
        assert_eq!(res.overall_status, Verdict::WrongAnswer);
    }
}
