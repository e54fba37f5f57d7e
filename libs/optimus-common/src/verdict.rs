//! What the judge says about a job and each of its tests.

use serde::{Deserialize, Serialize};

/// The outcome of one test, or of a whole job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The sandbox could not judge this job or test; never the program's fault.
    InternalError,
}

/// How one test went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub test_id: u64,
    pub verdict: Verdict,
    pub passed: bool,
    pub stdout: String,
    pub stderr: String,
    /// `None` when the program was killed by a signal.
    pub exit_code: Option<i32>,
    /// The signal that ended the program, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Wall time of this test's run alone.
    pub execution_time_ms: u64,
    /// Peak resident memory of this test's run, measured.
    pub memory_kb: u64,
    /// stdout or stderr went past the output cap and was cut.
    pub output_truncated: bool,
    /// Why the verdict is what it is, where the verdict alone does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The judgement of a whole job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// `accepted` when every test passed, else the first failing test's verdict,
    /// or `compilation_error` / `internal_error` for the job as a whole.
    pub overall_status: Verdict,
    pub total_tests: usize,
    pub passed_tests: usize,
    /// Sum of the weights of the passed tests.
    pub score: u64,
    /// Sum of all the weights.
    pub max_score: u64,
    /// What the compiler printed (compiled languages only).
    pub compile_output: Option<String>,
    pub test_results: Vec<TestResult>,
    /// Why a job-level `internal_error` happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl JobResult {
    /// Builds the summary from the per-test results.
    pub fn from_tests(test_results: Vec<TestResult>, weights: &[u32], compile_output: Option<String>) -> Self {
        let passed_tests = test_results.iter().filter(|t| t.passed).count();
        let score = test_results.iter().zip(weights).filter(|(t, _)| t.passed).map(|(_, w)| u64::from(*w)).sum();
        let overall_status = test_results.iter().find(|t| !t.passed).map_or(Verdict::Accepted, |t| t.verdict);
        JobResult {
            overall_status,
            total_tests: test_results.len(),
            passed_tests,
            score,
            max_score: weights.iter().map(|w| u64::from(*w)).sum(),
            compile_output,
            test_results,
            message: None,
        }
    }

    /// A job that never reached its tests (compile error, sandbox failure).
    pub fn without_tests(
        verdict: Verdict,
        weights: &[u32],
        compile_output: Option<String>,
        message: Option<String>,
    ) -> Self {
        JobResult {
            overall_status: verdict,
            total_tests: weights.len(),
            passed_tests: 0,
            score: 0,
            max_score: weights.iter().map(|w| u64::from(*w)).sum(),
            compile_output,
            test_results: Vec::new(),
            message,
        }
    }
}
