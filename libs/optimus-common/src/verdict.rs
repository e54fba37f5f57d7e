//! What the judge says about a job and each of its tests, and how it judges them ([`Mode`]).

use serde::{Deserialize, Serialize};

/// How a job's tests are run and judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every test runs and is judged.
    #[default]
    Run,
    /// Tests run in order until the first one that does not pass; the rest are
    /// reported `not_run` and never executed.
    Submit,
    /// Nothing is judged: each test's run is reported as it went.
    Custom,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Run, Mode::Submit, Mode::Custom];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Run => "run",
            Mode::Submit => "submit",
            Mode::Custom => "custom",
        }
    }
}

/// The outcome of one test, or of a whole job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    WrongAnswer,
    TimeLimitExceeded,
    MemoryLimitExceeded,
    /// Non-zero exit or killed by a signal.
    RuntimeError,
    OutputLimitExceeded,
    /// Job only: the program did not compile; no test ran.
    CompilationError,
    /// The platform could not judge this job or test: the sandbox, the checker or
    /// the reference solution failed. Never the program's fault.
    InternalError,
    /// `submit` mode: an earlier test failed, so this one was not executed.
    NotRun,
}

/// How one test went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestResult {
    pub test_id: u64,
    /// `None` in `custom` mode, where nothing is judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    pub stdout: String,
    pub stderr: String,
    /// `None` when the program was killed by a signal (or did not run).
    pub exit_code: Option<i32>,
    /// The signal that ended the program, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Wall-clock time of this test's run, from its start to the end of the
    /// last process it started.
    pub execution_time_ms: u64,
    /// CPU time (user + system) of every process of this test's run: what the
    /// time limit is judged on.
    #[serde(default)]
    pub cpu_time_ms: u64,
    /// Peak memory of this test's whole process tree: the largest of its
    /// processes' resident sets and the tree's sampled total.
    pub memory_kb: u64,
    /// stdout or stderr went past the output cap and was cut.
    pub output_truncated: bool,
    /// Why the verdict is what it is, where the verdict alone does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the custom checker printed about this test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker_message: Option<String>,
    /// The expected output, when the reference solution produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_output: Option<String>,
    /// The reference solution's wall time and peak memory on this test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution_time_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution_memory_kb: Option<u64>,
}

impl TestResult {
    /// A test that did not run: nothing measured, only the verdict.
    pub fn not_run(test_id: u64) -> Self {
        TestResult {
            test_id,
            verdict: Some(Verdict::NotRun),
            passed: Some(false),
            stdout: String::new(),
            stderr: String::new(),
            exit_code: None,
            signal: None,
            execution_time_ms: 0,
            cpu_time_ms: 0,
            memory_kb: 0,
            output_truncated: false,
            message: Some("not run: an earlier test failed".into()),
            checker_message: None,
            expected_output: None,
            solution_time_ms: None,
            solution_memory_kb: None,
        }
    }

    pub fn is_passed(&self) -> bool {
        self.passed == Some(true)
    }
}

/// The judgement of a whole job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobResult {
    #[serde(default)]
    pub mode: Mode,
    /// `accepted` when every test passed, else the first failing test's verdict,
    /// or `compilation_error` / `internal_error` for the job as a whole. `None` in
    /// `custom` mode once the program compiled: nothing is judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overall_status: Option<Verdict>,
    pub total_tests: usize,
    pub passed_tests: usize,
    /// Sum of the weights of the passed tests.
    pub score: u64,
    /// Sum of all the weights (0 in `custom` mode).
    pub max_score: u64,
    /// What the compiler printed (compiled languages only).
    pub compile_output: Option<String>,
    /// The program was not compiled again: an identical compile on this host
    /// (same image, language, sources, files and compile limits) had worked, and
    /// its build and `compile_output` came from the worker's compile cache.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compile_cached: bool,
    pub test_results: Vec<TestResult>,
    /// Why a job-level `internal_error` happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The tests' stored outputs were cut to fit the job's output budget
    /// (`OPTIMUS_JOB_OUTPUT_BUDGET_BYTES`); the verdicts were reached before, on
    /// the whole outputs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outputs_cut: bool,
    /// Where the job's time went, as its worker measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<crate::Timings>,
}

impl JobResult {
    /// Builds the summary from the per-test results.
    pub fn from_tests(
        mode: Mode,
        test_results: Vec<TestResult>,
        weights: &[u32],
        compile_output: Option<String>,
    ) -> Self {
        let judged = mode != Mode::Custom;
        let passed_tests = test_results.iter().filter(|t| t.is_passed()).count();
        let score = test_results.iter().zip(weights).filter(|(t, _)| t.is_passed()).map(|(_, w)| u64::from(*w)).sum();
        let overall_status = judged
            .then(|| test_results.iter().find(|t| !t.is_passed()).and_then(|t| t.verdict).unwrap_or(Verdict::Accepted));
        JobResult {
            mode,
            overall_status,
            total_tests: test_results.len(),
            passed_tests,
            score,
            max_score: if judged { weights.iter().map(|w| u64::from(*w)).sum() } else { 0 },
            compile_output,
            compile_cached: false,
            test_results,
            message: None,
            outputs_cut: false,
            timings: None,
        }
    }

    /// A job that never reached its tests (compile error, sandbox failure).
    pub fn without_tests(
        mode: Mode,
        verdict: Verdict,
        weights: &[u32],
        compile_output: Option<String>,
        message: Option<String>,
    ) -> Self {
        JobResult {
            mode,
            overall_status: Some(verdict),
            total_tests: weights.len(),
            passed_tests: 0,
            score: 0,
            max_score: if mode == Mode::Custom { 0 } else { weights.iter().map(|w| u64::from(*w)).sum() },
            compile_output,
            compile_cached: false,
            test_results: Vec::new(),
            message,
            outputs_cut: false,
            timings: None,
        }
    }
}

/// A signal's name (Linux's numbering), where it has one: the one table, for the
/// verdict messages and for the APIs that report signals by name.
pub fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        31 => "SIGSYS",
        _ => return None,
    })
}
