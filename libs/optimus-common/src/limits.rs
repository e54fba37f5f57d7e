//! The time limit of a run, and the one rule for its wall-clock cap.
//!
//! A test's time limit is a limit on **CPU time** (`timeout_ms` in requests and in
//! the registry, `time_limit_ms` everywhere inside, `TIME_LIMIT_MS` in `runner.sh`,
//! `--time-limit-ms` to the launcher). A program that sleeps, blocks or is stopped
//! uses no CPU, so each run also has a wall-clock cap, derived from the limit here
//! and nowhere else: twice the limit, plus a second.

/// The wall-clock cap is this many times the CPU-time limit...
const WALL_CAP_FACTOR: u64 = 2;
/// ...plus this.
const WALL_CAP_SLACK_MS: u64 = 1000;

/// The wall-clock cap of a run whose CPU-time limit is `time_limit_ms`.
pub fn wall_cap_ms(time_limit_ms: u64) -> u64 {
    time_limit_ms.saturating_mul(WALL_CAP_FACTOR).saturating_add(WALL_CAP_SLACK_MS)
}

/// [`wall_cap_ms`] in seconds, for the APIs that speak seconds (Judge0).
pub fn wall_cap_secs(time_limit_secs: f64) -> f64 {
    time_limit_secs * WALL_CAP_FACTOR as f64 + WALL_CAP_SLACK_MS as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_twice_the_limit_and_a_second_in_either_unit() {
        assert_eq!(wall_cap_ms(5000), 11_000);
        assert_eq!(wall_cap_ms(0), 1000);
        assert_eq!(wall_cap_ms(u64::MAX), u64::MAX, "saturates");
        for ms in [1u64, 250, 1500, 5000, 20_000] {
            assert!((wall_cap_secs(ms as f64 / 1000.0) * 1000.0 - wall_cap_ms(ms) as f64).abs() < 1e-6, "{ms}");
        }
    }
}
