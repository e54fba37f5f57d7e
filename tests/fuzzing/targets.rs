//! `scripts/fuzz.sh`: each cargo fuzz target runs from the committed seeds with the
//! sanitizer on, and none crashes, leaks, hangs or breaks its invariants (the
//! limits an accepted job must be within, a report stream's framing). The script
//! prints the input of any failure.

use std::process::Command;

#[test]
fn every_fuzz_target_runs_clean_from_its_seeds() {
    let _one = crate::ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let secs = crate::budget(30).to_string();
    let out = Command::new("bash")
        .arg(crate::root().join("scripts/fuzz.sh"))
        .arg(&secs)
        .output()
        .expect("bash runs scripts/fuzz.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a fuzz target failed:\n{stdout}\n{stderr}");
    // Each target ran (and said how many inputs it tried); none was skipped.
    for target in ["report", "job_request", "judge0", "piston"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("fuzz {target}: ")))
            .unwrap_or_else(|| panic!("no line for target {target}:\n{stdout}\n{stderr}"));
        let runs: u64 = line.split_whitespace().nth(2).and_then(|n| n.parse().ok()).unwrap_or(0);
        assert!(runs > 1000, "target {target} tried only {runs} inputs: {line}");
        println!("{line}");
    }
}
