//! Where a judged job's time went, phase by phase, as its worker measured it:
//! stored with the result (`result.timings`), so that a user can see what a job
//! paid beside its programs' own run time, and `optimus-bench latency` can print
//! the breakdown. Nothing is judged by these figures.
//!
//! All are microseconds. The per-test phases are sums over the program's tests
//! (`tests.count` of them); a phase's mean per test is its sum over the count.
//!
//! The sandbox's phases of a test (runner, setup, run, teardown) follow one
//! another. The worker's (transport, judge, event) follow them in `submit` mode,
//! where the runner waits for each verdict; in the other modes the runner goes on
//! as soon as it has reported, so a test's worker phases overlap the next test's
//! sandbox phases, and only the last test's add to the job's time.

use serde::{Deserialize, Serialize};

/// The phases a job paid once, and the sums of its tests' phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timings {
    /// Reading the job's record and marking it running, once popped.
    pub claim_us: u64,
    /// Taking a container: a warm one from the pool, or a new one made.
    pub acquire_us: u64,
    /// Asking the container's init to start the runner (a request on its
    /// attached stream; the runner's own start is part of `compile_us`).
    pub exec_us: u64,
    /// Sending the sources and inputs, unpacking them, and compiling (or, for an
    /// interpreted language, the runner's word that there is nothing to compile).
    pub compile_us: u64,
    /// The program's tests.
    pub tests: TestTimings,
}

/// The sums of the phases of a job's tests, in the order each test goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestTimings {
    /// Tests measured.
    pub count: u64,
    /// From the worker's go-ahead (or the last test's report) to the launcher's
    /// start: the runner's turn and the launcher's own exec.
    pub runner_us: u64,
    /// The launcher's setup: killing leftovers, emptying the scratch places.
    pub setup_us: u64,
    /// The programs' own wall-clock time.
    pub run_us: u64,
    /// The launcher's teardown: the sweep, the reaping, reading the outputs.
    pub teardown_us: u64,
    /// From the report's writing to its arrival in the worker: the engine's stream.
    pub transport_us: u64,
    /// Reaching the verdict (comparing, or a checker's run).
    pub judge_us: u64,
    /// Telling the test's event (a Redis write).
    pub event_us: u64,
}

impl TestTimings {
    /// The sandbox's phases, which follow one another in every mode. Saturating,
    /// as every sum here: the launcher's figures come from inside a sandbox, and
    /// no figure read from there may make the worker overflow.
    pub fn sandbox_us(&self) -> u64 {
        [self.runner_us, self.setup_us, self.run_us, self.teardown_us].into_iter().fold(0, u64::saturating_add)
    }
}

impl Timings {
    /// The phases that follow one another in every mode: those paid once and the
    /// tests' sandbox phases. The job took at least this long.
    pub fn sequential_us(&self) -> u64 {
        [self.claim_us, self.acquire_us, self.exec_us, self.compile_us, self.tests.sandbox_us()]
            .into_iter()
            .fold(0, u64::saturating_add)
    }
}

impl std::ops::AddAssign for TestTimings {
    fn add_assign(&mut self, other: Self) {
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut self.count, other.count);
        add(&mut self.runner_us, other.runner_us);
        add(&mut self.setup_us, other.setup_us);
        add(&mut self.run_us, other.run_us);
        add(&mut self.teardown_us, other.teardown_us);
        add(&mut self.transport_us, other.transport_us);
        add(&mut self.judge_us, other.judge_us);
        add(&mut self.event_us, other.event_us);
    }
}

#[cfg(test)]
mod tests {
    use super::TestTimings;

    #[test]
    fn sums_of_forged_figures_saturate() {
        let huge = TestTimings { count: 1, run_us: u64::MAX, setup_us: u64::MAX, ..TestTimings::default() };
        assert_eq!(huge.sandbox_us(), u64::MAX);
        let mut sum = huge;
        sum += huge;
        assert_eq!((sum.count, sum.run_us), (2, u64::MAX));
        let small = TestTimings { count: 1, runner_us: 2, run_us: 3, event_us: 4, ..TestTimings::default() };
        assert_eq!(small.sandbox_us(), 5, "the worker's phases overlap the next test's");
        let job = super::Timings { claim_us: 1, compile_us: 10, tests: small, ..super::Timings::default() };
        assert_eq!(job.sequential_us(), 16);
    }
}
