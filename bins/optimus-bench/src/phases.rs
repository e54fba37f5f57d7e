//! Where a job's time went: the phases its worker stored with its result
//! (`result.timings`, `optimus_common::Timings`), as medians over a benchmark's
//! jobs, beside the latency the benchmark saw from outside.

use optimus_common::{TestTimings, Timings};

use crate::{median, Finished};

/// The phases of one job: those paid once, the mean per test of its tests',
/// and the rest of its latency past the phases that follow one another.
pub struct Breakdown {
    /// (phase, median ms), in the order a job goes through them.
    pub job: Vec<(&'static str, f64)>,
    /// (phase, median ms per test).
    pub per_test: Vec<(&'static str, f64)>,
    /// Latency minus the sequential phases (`Timings::sequential_us`), median ms:
    /// submit, queue, the last test's worker phases (every test's in `submit`
    /// mode), the final store, polling.
    pub rest: f64,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn per_test(t: &TestTimings) -> [(&'static str, f64); 7] {
    let n = t.count.max(1) as f64;
    [
        ("runner", ms(t.runner_us) / n),
        ("setup", ms(t.setup_us) / n),
        ("run", ms(t.run_us) / n),
        ("teardown", ms(t.teardown_us) / n),
        ("transport", ms(t.transport_us) / n),
        ("judge", ms(t.judge_us) / n),
        ("event", ms(t.event_us) / n),
    ]
}

fn once(t: &Timings, queue_ms: f64) -> [(&'static str, f64); 5] {
    [
        ("queue", queue_ms),
        ("claim", ms(t.claim_us)),
        ("acquire", ms(t.acquire_us)),
        ("exec", ms(t.exec_us)),
        ("compile", ms(t.compile_us)),
    ]
}

/// The medians of each phase over `jobs` (those that carry timings); `None` if none does.
pub fn breakdown(jobs: &[Finished]) -> Option<Breakdown> {
    let timed: Vec<(&Finished, Timings)> = jobs.iter().filter_map(|f| Some((f, f.timings?))).collect();
    if timed.is_empty() {
        return None;
    }
    let column = |rows: &[Vec<(&'static str, f64)>]| -> Vec<(&'static str, f64)> {
        (0..rows[0].len()).map(|i| (rows[0][i].0, median(&rows.iter().map(|r| r[i].1).collect::<Vec<_>>()))).collect()
    };
    let job_rows: Vec<Vec<_>> = timed.iter().map(|(f, t)| once(t, crate::ms(f.queue_wait)).to_vec()).collect();
    let test_rows: Vec<Vec<_>> = timed.iter().map(|(_, t)| per_test(&t.tests).to_vec()).collect();
    let rest: Vec<f64> = timed.iter().map(|(f, t)| crate::ms(f.latency) - ms(t.sequential_us())).collect();
    Some(Breakdown { job: column(&job_rows), per_test: column(&test_rows), rest: median(&rest) })
}

impl Breakdown {
    /// One line: the phases paid once, then per test.
    pub fn line(&self) -> String {
        let fmt = |v: &[(&str, f64)]| v.iter().map(|(k, v)| format!("{k} {v:.2}")).collect::<Vec<_>>().join(", ");
        format!(
            "once: {}; per test: {}; the rest of the latency: {:.1} (ms)",
            fmt(&self.job),
            fmt(&self.per_test),
            self.rest
        )
    }

    /// CSV rows `language,scope,phase,ms`.
    pub fn rows(&self, language: &str) -> Vec<String> {
        let mut rows: Vec<String> = self.job.iter().map(|(k, v)| format!("{language},job,{k},{v:.3}")).collect();
        rows.extend(self.per_test.iter().map(|(k, v)| format!("{language},test,{k},{v:.3}")));
        rows.push(format!("{language},job,rest,{:.3}", self.rest));
        rows
    }
}
