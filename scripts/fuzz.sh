#!/usr/bin/env bash
# Runs each cargo fuzz target (tests/fuzz: the runner's report stream, Optimus's
# job request, Judge0's and Piston's requests) for a bounded time, starting from
# the committed seeds, and fails on the first crash, leak or hang, printing the
# input that caused it (also kept in tests/fuzz/artifacts/, to commit as a seed
# once fixed).
#
#   scripts/fuzz.sh [seconds per target] [target ...]
#
# Seconds default to OPTIMUS_FUZZ_SECS, or 60. Installs cargo-fuzz if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-${OPTIMUS_FUZZ_SECS:-60}}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(report job_request judge0 piston)

command -v cargo-fuzz >/dev/null || cargo install -q --locked cargo-fuzz
# cargo fuzz passes nightly-only flags (the sanitizer, coverage counters); the
# machine's one toolchain is told to accept them, so every machine fuzzes with the
# compiler it builds Optimus with.
export RUSTC_BOOTSTRAP=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo fuzz build --fuzz-dir tests/fuzz -O

for target in "${targets[@]}"; do
  mkdir -p "$work/$target"
  # The first corpus (a scratch one) gets what the run finds; the seeds stay as committed.
  if ! cargo fuzz run --fuzz-dir tests/fuzz -O "$target" "$work/$target" "tests/fuzz/seeds/$target" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/" -print_final_stats=1 \
    >"$work/$target.log" 2>&1; then
    tail -n 60 "$work/$target.log" >&2
    mkdir -p tests/fuzz/artifacts
    for found in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
      [ -e "$found" ] || continue
      cp "$found" "tests/fuzz/artifacts/$target-$(basename "$found")"
      echo "fuzz target $target failed on this input (base64), kept as tests/fuzz/artifacts/$target-$(basename "$found"):" >&2
      base64 -w0 "$found" >&2
      echo >&2
    done
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$target.log" | grep -o '[0-9]*$' || echo '?')"
  cov="$(grep -o 'cov: [0-9]* ft: [0-9]*' "$work/$target.log" | tail -n 1 || true)"
  echo "fuzz $target: $runs inputs in ${secs} s, no failure ($cov, corpus $(ls "$work/$target" | wc -l) new + $(ls "tests/fuzz/seeds/$target" | wc -l) seeds)"
done
