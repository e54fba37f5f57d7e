#!/bin/bash
# Optimus's runner: the one place that knows how each language compiles and runs.
# Every language image carries it as /opt/optimus/runner.sh; the worker calls it
# through `docker exec`, always as the sandbox user, in a container with no network,
# no capabilities, a read-only root and a tmpfs at /work. It runs under
# /opt/optimus/bash, an execute-only copy of bash: a process started from a binary
# it cannot read is not dumpable, so the programs it runs (same user) cannot reach
# its stdout through /proc to forge reports.
#
#   runner.sh init      the container's PID 1: idles and reaps orphans. As init it
#                       is immune to the kill(-1) sweep that follows every test.
#   runner.sh prepare   stdin: a tar of src/ (SOURCE_FILE and any files beside it)
#                       and tests/<i>.in (i = 0..); unpacks it, compiles once,
#                       reports the compile step.
#   runner.sh run FIRST runs tests FIRST.. one after another, reporting each. With
#                       STEP=1 it reads a line from stdin after each report and
#                       goes on only if the line is "next" (submit mode stops early).
#   runner.sh check     the program is a checker: for each request on stdin,
#                       "case <i> <expected_len> <output_len>\n<expected><output>",
#                       runs it as `checker tests/<i>.in expected output` and reports
#                       the run like a test's. Ends at end of input.
#
# Reports go to stdout as a header line followed by raw bytes whose lengths the
# header gives, so any output (binary, huge, without newlines) passes intact:
#   @@optimus compile <ok|error|timeout|oom|none> <exit> <time_ms> <len>\n<compiler output>
#   @@optimus test <i> <exit> <time_us> <peak_rss_kb> <oom 0|1> <timed_out 0|1> <out_len> <err_len>\n<stdout><stderr>
#   @@optimus done\n
#
# Environment (set by the worker, nothing else reaches the container):
#   LANGUAGE, SOURCE_FILE            which recipe, and the source's file name
#   COMPILE_CMD, RUN_CMD             optional shell commands overriding the recipe
#   TIME_LIMIT_MS, COMPILE_TIME_LIMIT_MS, OUTPUT_LIMIT (bytes kept per stream)
#   TEST_COUNT                       how many tests the job has
#   STEP                             1: `run` waits for "next" between tests
set -u

WORK=/work
BUILD=$WORK/build
COMPILE_OUTPUT_LIMIT=65536

die() { echo "runner: $*" >&2; exit 70; }

# The recipes. A language listed in config/languages.json with compile/run commands
# of its own does not need a case here.
recipe() {
  compile=()
  run=()
  case "$LANGUAGE" in
    python) run=(python3 -B "$SOURCE_FILE") ;;
    java)
      # javac starts from a class-data archive made at image build (see the
      # Dockerfile): roughly half of its start-up time.
      compile=(javac -J-XX:SharedArchiveFile=/opt/optimus/javac.jsa -J-Xshare:auto -J-Xlog:disable
        -J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1 -encoding UTF-8 -d . "$SOURCE_FILE")
      run=(java -XX:+UseSerialGC -XX:MaxRAMPercentage=70 -XX:-UsePerfData -Xshare:auto -Xss64m -cp . Main)
      ;;
    c)
      compile=(gcc -std=c11 -O2 -pipe -Wall -o main "$SOURCE_FILE" -lm)
      run=(./main)
      ;;
    cpp)
      compile=(g++ -std=c++17 -O2 -pipe -Wall -o main "$SOURCE_FILE")
      run=(./main)
      ;;
    go)
      # The image holds a build cache of the standard library; a copy of it in the
      # work directory makes go build compile only the job's own code.
      [ -d /opt/optimus/gocache ] && [ ! -d "$WORK/gocache" ] && cp -r /opt/optimus/gocache "$WORK/gocache"
      compile=(env GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" GO111MODULE=off CGO_ENABLED=0
        go build -o main "$SOURCE_FILE")
      run=(./main)
      ;;
    javascript) run=(node "$SOURCE_FILE") ;;
    bash) run=(bash "$SOURCE_FILE") ;;
    rust)
      # Stripping at link time makes the link markedly faster.
      compile=(rustc --edition 2021 -O -C strip=symbols -o main "$SOURCE_FILE")
      run=(./main)
      ;;
  esac
  if [ -n "${COMPILE_CMD:-}" ]; then compile=(bash -c "$COMPILE_CMD"); fi
  # "$@" passes a checker its three paths.
  if [ -n "${RUN_CMD:-}" ]; then run=(bash -c "exec $RUN_CMD \"\$@\"" run); fi
  [ ${#run[@]} -gt 0 ] || die "no recipe for language '$LANGUAGE' and no RUN_CMD"
}

# Kills everything the sandbox user started, except this shell: a test's children,
# daemons it forked, whatever survived its time limit. kill(-1) spares the caller
# and the container's init. Zombies still count as signalled until init reaps them,
# so the loop is bounded.
sweep() {
  local n=0
  while kill -KILL -1 2>/dev/null && [ $n -lt 200 ]; do n=$((n + 1)); done
}

# Sets OOM_KILLS to how many times the kernel's OOM killer has struck in this
# container (cgroup v1 or v2). A variable, not output: no subshell per test.
oom_kills() {
  local key value file
  OOM_KILLS=0
  for file in /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events; do
    [ -r "$file" ] || continue
    while read -r key value; do
      if [ "$key" = oom_kill ]; then OOM_KILLS=$value; return; fi
    done <"$file"
  done
}

seconds() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
# Sets NOW_US to the wall clock in microseconds, without a subshell.
now_us() { local t=${EPOCHREALTIME/./}; NOW_US=$((10#$t)); }

prepare() {
  mkdir -p "$WORK/out" "$BUILD" || die "cannot create $WORK"
  tar -x -C "$WORK" --no-same-owner --no-same-permissions || die "cannot unpack the job"
  [ -f "$WORK/src/$SOURCE_FILE" ] || die "no source file $SOURCE_FILE"
  cp -r "$WORK/src/." "$BUILD/" || die "cannot copy the sources"
  recipe
  if [ ${#compile[@]} -eq 0 ]; then
    echo "@@optimus compile none 0 0 0"
    return
  fi
  local log=$WORK/out/compile.log start end code status oom_before NOW_US OOM_KILLS
  oom_kills; oom_before=$OOM_KILLS
  now_us; start=$NOW_US
  # The compiler's output is cut at the cap by head (a flood then dies of SIGPIPE);
  # the file-size limit only bounds what the build may write.
  (cd "$BUILD" && ulimit -c 0 -f $((256 * 1024)) &&
    exec timeout -s KILL "$(seconds "$COMPILE_TIME_LIMIT_MS")" "${compile[@]}") </dev/null 2>&1 |
    head -c $((COMPILE_OUTPUT_LIMIT + 1)) >"$log"
  code=${PIPESTATUS[0]}
  now_us; end=$NOW_US
  sweep
  local ms=$(((end - start) / 1000))
  oom_kills
  if [ $code -eq 0 ]; then status=ok
  elif [ $ms -ge "$COMPILE_TIME_LIMIT_MS" ]; then status=timeout
  elif [ "$OOM_KILLS" != "$oom_before" ]; then status=oom
  else status=error
  fi
  local len
  len=$(stat -c %s "$log")
  [ "$len" -gt $COMPILE_OUTPUT_LIMIT ] && len=$COMPILE_OUTPUT_LIMIT
  echo "@@optimus compile $status $code $ms $len"
  head -c "$len" "$log"
  rm -f "$log"
}

# Sets the per-run limits from the environment. The time limit is enforced here
# (timeout) and judged by the worker from the measured time. Two seconds of CPU time
# over it are the backstop for a program that slips past timeout; a file-size limit
# just over the output cap stops floods.
set_limits() {
  LIMIT_S=$(seconds "$TIME_LIMIT_MS")
  FSIZE_KB=$((OUTPUT_LIMIT / 1024 + 1))
  CPU_S=$((TIME_LIMIT_MS / 1000 + 2))
}

# measure INDEX INPUT COMMAND...: runs COMMAND in the build directory with INPUT as
# its stdin, under the limits, then kills whatever it left behind and reports the run.
measure() {
  local index=$1 input=$2
  shift 2
  # Output files are opened here and unlinked at once: what is read back below is
  # exactly what the program wrote through its stdout and stderr, whatever it
  # does to paths under /work.
  exec 3>"$WORK/out/stdout" 4>"$WORK/out/stderr" 5>"$WORK/out/rss"
  rm -f "$WORK/out/stdout" "$WORK/out/stderr" "$WORK/out/rss"
  local oom_before oom_after start end code peak=0 timed_out=0 oom=0 NOW_US OOM_KILLS
  oom_kills; oom_before=$OOM_KILLS
  now_us; start=$NOW_US
  (cd "$BUILD" && ulimit -c 0 -t "$CPU_S" -f "$FSIZE_KB" &&
    exec /usr/bin/time -q -f '%M' -o /proc/self/fd/5 timeout -s KILL "$LIMIT_S" "$@") \
    <"$input" >&3 2>&4 3>&- 4>&-
  code=$?
  now_us; end=$NOW_US
  sweep
  oom_kills; oom_after=$OOM_KILLS
  [ "$oom_after" != "$oom_before" ] && oom=1
  [ $(((end - start) / 1000)) -ge "$TIME_LIMIT_MS" ] && timed_out=1
  read -r peak </proc/self/fd/5
  [[ "$peak" =~ ^[0-9]+$ ]] || peak=0
  local sizes
  sizes=$(stat -L -c %s /proc/self/fd/3 /proc/self/fd/4)
  echo "@@optimus test $index $code $((end - start)) $peak $oom $timed_out ${sizes//$'\n'/ }"
  cat /proc/self/fd/3 /proc/self/fd/4
  exec 3>&- 4>&- 5>&-
}

run_tests() {
  local first=${1:-0} i cmd
  # A program that killed the previous runner may still be running.
  sweep
  recipe
  set_limits
  for ((i = first; i < TEST_COUNT; i++)); do
    local input=$WORK/tests/$i.in
    # The program shares this user and could have planted a FIFO or a link here.
    if [ ! -f "$input" ] || [ -L "$input" ]; then input=/dev/null; fi
    measure "$i" "$input" "${run[@]}"
    if [ "${STEP:-0}" = 1 ] && [ $((i + 1)) -lt "$TEST_COUNT" ]; then
      read -r cmd || break
      [ "$cmd" = next ] || break
    fi
  done
  echo "@@optimus done"
}

check() {
  local verb index exp_len out_len dir=$WORK/check
  recipe
  set_limits
  mkdir -p "$dir" || die "cannot create $dir"
  while read -r verb index exp_len out_len; do
    [ "$verb" = case ] && [[ $index =~ ^[0-9]+$ && $exp_len =~ ^[0-9]+$ && $out_len =~ ^[0-9]+$ ]] || die "bad check request '$verb $index'"
    # head -c reads exactly what it is asked for, never past it.
    head -c "$exp_len" >"$dir/expected" && head -c "$out_len" >"$dir/output" || die "short check request"
    measure "$index" /dev/null "${run[@]}" "$WORK/tests/$index.in" "$dir/expected" "$dir/output"
  done
  echo "@@optimus done"
}

if [ "${1:-}" = init ]; then
  trap '' TERM INT HUP
  # bash reaps every child that exits while it waits, orphans included.
  while :; do
    sleep 86400 &
    wait
  done
fi

[ -n "${LANGUAGE:-}" ] || die "LANGUAGE is not set"
: "${SOURCE_FILE:?}" "${TEST_COUNT:=0}" "${TIME_LIMIT_MS:=5000}" "${COMPILE_TIME_LIMIT_MS:=30000}" "${OUTPUT_LIMIT:=1048576}"

case "${1:-}" in
  prepare) prepare ;;
  run) run_tests "${2:-0}" ;;
  check) check ;;
  *) die "usage: runner.sh init | prepare | run FIRST | check" ;;
esac
