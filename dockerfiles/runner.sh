#!/bin/bash
# Optimus's runner: the one place that knows how each language compiles and runs.
# Every language image carries it as /opt/optimus/runner.sh beside
# /opt/optimus/launcher (bins/optimus-launcher). The container's init (the
# launcher, as PID 1) starts it once per job and per role, on the worker's request
# over the container's attached stream, as the container's root holding only the
# capabilities to change user and to kill; every compile, test and checker run
# goes through the launcher, which runs it as the container's sandbox user (its own
# uid, OPTIMUS_SANDBOX_UID, of no other container on the engine), times
# and measures it and writes its report. The program therefore never shares a
# user with this script, the launcher or init: it cannot signal, stop or trace
# them, nor reach their descriptors, and it cannot write where they keep files.
#
#   runner.sh job       stdin: "<length>\n" then a tar of that length holding
#                       box/prog/ (SOURCE_FILE and any files beside it), box/check/
#                       and judge/job/tests/<i>.in, unpacked at /.
#                       Unpacks it, compiles once and reports the compile; then
#                       waits for a line "next" before the first test and, with
#                       STEP=1, before each later one (submit mode stops early);
#                       without STEP the tests follow one another. Ends with done.
#   runner.sh checker   the same archive (the checker's sources and the inputs);
#                       compiles, reports, then for each request on stdin,
#                       "case <i> <expected_len> <output_len>\n<expected><output>",
#                       runs `checker input expected output` and reports it as test i.
#
# Both end with a verified wipe: everything the sandbox user runs is killed, its
# writable places are emptied and checked empty, the job's files are removed. A
# pooled container serves another job only after this session exited 0.
#
# Where things live (tmpfs mounts made by the worker):
#   /judge  root, 0700   the test inputs: no program can read them; a test gets its
#                        own input as stdin and nothing else (the launcher refuses to
#                        run anything unless /judge is root's alone)
#   /box    root, 0755   prog/: the sources and, after the compile, what it built,
#                        read-only to the program; check/: a checker's three files
#   /work   sandbox uid  the compile's build directory, then the program's HOME;
#                        emptied before every run, as are /tmp, /dev/shm, /dev/mqueue
#
# Reports (the format is owned by libs/optimus-protocol) come from the launcher;
# this script writes nothing else to stdout.
#
# Environment (set by the worker, nothing else reaches the container):
#   LANGUAGE, SOURCE_FILE            which recipe, and the source's file name
#   COMPILE_CMD, RUN_CMD             optional shell commands overriding the recipe
#   TIME_LIMIT_MS, WALL_LIMIT_MS     CPU time per test, and its wall-clock cap
#   COMPILE_TIME_LIMIT_MS, OUTPUT_LIMIT (bytes kept per stream), MEMORY_LIMIT_MB
#   TEST_COUNT                       how many tests the job has
#   STEP                             1: wait for "next" between tests
#   PREBUILT                         1: box/prog already holds what the compile
#                                    built (the worker's compile cache); no compile
#   ARTIFACT_MAX                     bytes: after a compile that worked, report
#                                    box/prog as a tar of at most this length, for
#                                    the worker's compile cache
set -u

L=/opt/optimus/launcher
JUDGE=/judge
PROG=/box/prog
CHECK=/box/check
BUILD=/work/build

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
      # Every JVM maps the image's archive of commonly used JDK classes; CDS never
      # logs into the program's stderr. Both JIT compilers stay: C1 alone
      # (-XX:TieredStopAtLevel=1) starts 9 ms sooner but ran a CPU-bound program
      # 22% slower, which a time limit would judge.
      run=(java -XX:SharedArchiveFile=/opt/optimus/run.jsa -Xlog:cds*=off -XX:+UseSerialGC -XX:MaxRAMPercentage=70
        -XX:-UsePerfData -Xshare:auto -Xss64m -cp . Main)
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
      # scratch directory makes go build compile only the job's own code.
      compile=(bash -c 'cp -r /opt/optimus/gocache /work/gocache &&
        exec env GOCACHE=/work/gocache GOPATH=/work/gopath GO111MODULE=off CGO_ENABLED=0 go build -o main "$1"' go "$SOURCE_FILE")
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

# Reads "<length>\n" and exactly that many bytes of tar from stdin, and unpacks
# them at /: the worker's archive holds box/prog/ (the sources), box/check/,
# judge/job/tests/<i>.in and judge/job/args, and nothing else can be written here
# (read-only root).
# head -c never reads past what it is asked for, so what follows on stdin stays.
unpack() {
  local len
  read -r len || die "no archive"
  [[ $len =~ ^[0-9]+$ ]] || die "bad archive length '$len'"
  head -c "$len" | tar -x -C / --no-same-owner --no-same-permissions || die "cannot unpack the job"
  [ -f "$PROG/$SOURCE_FILE" ] || die "no source file $SOURCE_FILE"
}

# Compiles in the sandbox user's build directory and, if that worked, puts what it
# built beside the sources, where the program can read but not change it.
compile() {
  recipe
  if [ ${#compile[@]} -eq 0 ] || [ "${PREBUILT:-0}" = 1 ]; then
    "$L" compile-none
    return 0
  fi
  local report
  "$L" run --report compile --stdin /dev/null --cwd "$BUILD" --seed "$PROG" \
    --time-limit-ms "$COMPILE_TIME_LIMIT_MS" --wall-ms "$COMPILE_TIME_LIMIT_MS" --output-limit 65536 \
    --fsize $((256 * 1024 * 1024)) --merge -- "${compile[@]}" >"$JUDGE/compile.report" ||
    die "the launcher failed on the compile"
  read -r report <"$JUDGE/compile.report"
  cat "$JUDGE/compile.report"
  rm -f "$JUDGE/compile.report"
  case "$report" in
    "@@optimus compile ok "*)
      cp -R --preserve=mode "$BUILD/." "$PROG/" || die "cannot keep what the compile built"
      chmod -R a+rX,go-w "$PROG" || die "cannot open the build to the sandbox user"
      if [ -n "${ARTIFACT_MAX:-}" ]; then
        # Root's tar of root's copy: the compile's processes are gone (the
        # launcher swept them) and the sandbox user cannot write here.
        tar -c --format=gnu -f "$JUDGE/artifact.tar" -C "$PROG" . &&
          "$L" artifact --max "$ARTIFACT_MAX" "$JUDGE/artifact.tar" || die "cannot report the artifact"
        rm -f "$JUDGE/artifact.tar"
      fi
      return 0 ;;
  esac
  return 1
}

# The options of every test run (the program's or the checker's).
test_options() {
  options=(--cwd "$PROG" --time-limit-ms "$TIME_LIMIT_MS" --wall-ms "$WALL_LIMIT_MS"
    --output-limit "$OUTPUT_LIMIT" --stack-mb "$MEMORY_LIMIT_MB")
}

# test INDEX STDIN [ARG...]: one run of the checker, with ARGs.
test_run() {
  local index=$1 input=$2 options
  shift 2
  test_options
  "$L" run --report "test:$index" --stdin "$input" "${options[@]}" -- "${run[@]}" "$@" ||
    die "the launcher failed on test $index"
}

# The job is over: say so, then leave the container as it was before the job
# (the worker waits for this session's exit before another job may use it).
finish() {
  "$L" done
  reset
}

job() {
  local cmd options
  local -a args=() step=()
  unpack
  # The program's arguments, each ended by a NUL (never through a shell).
  if [ -f "$JUDGE/job/args" ]; then mapfile -d '' -t args <"$JUDGE/job/args"; fi
  compile || { finish; return; }
  read -r cmd && [ "$cmd" = next ] || { finish; return; }
  # One launcher runs every test in turn (test i reads tests/<i>.in); with
  # STEP it reads "next" from this stdin before each test after the first.
  if [ "${STEP:-0}" = 1 ]; then step=(--step); fi
  test_options
  "$L" tests --count "$TEST_COUNT" --inputs "$JUDGE/job/tests" "${step[@]}" "${options[@]}" \
    -- "${run[@]}" "${args[@]}" || die "the launcher failed on the tests"
  finish
}

checker() {
  local verb index exp_len out_len
  unpack
  compile || { finish; return; }
  while read -r verb index exp_len out_len; do
    [ "$verb" = case ] && [[ $index =~ ^[0-9]+$ && $exp_len =~ ^[0-9]+$ && $out_len =~ ^[0-9]+$ ]] ||
      die "bad check request '$verb $index'"
    [ -f "$JUDGE/job/tests/$index.in" ] || die "no test $index"
    cp "$JUDGE/job/tests/$index.in" "$CHECK/input" &&
      head -c "$exp_len" >"$CHECK/expected" && head -c "$out_len" >"$CHECK/output" || die "short check request"
    chmod 0644 "$CHECK/input" "$CHECK/expected" "$CHECK/output"
    test_run "$index" /dev/null "$CHECK/input" "$CHECK/expected" "$CHECK/output"
  done
  finish
}

# Kills everything the sandbox user runs, empties its writable places (checked
# empty by the launcher) and removes the job's files: a verified wipe.
reset() {
  "$L" wipe || die "the sandbox could not be emptied"
  rm -rf "${JUDGE:?}"/* /box/* || die "cannot remove the job's files"
}

[ -n "${LANGUAGE:-}" ] || die "LANGUAGE is not set"
: "${SOURCE_FILE:?}" "${TEST_COUNT:=0}" "${TIME_LIMIT_MS:=5000}" "${COMPILE_TIME_LIMIT_MS:=30000}"
: "${OUTPUT_LIMIT:=1048576}" "${MEMORY_LIMIT_MB:=256}" "${WALL_LIMIT_MS:?the worker sets the wall-clock cap}"
umask 022

case "${1:-}" in
  job) job ;;
  checker) checker ;;
  *) die "usage: runner.sh job | checker" ;;
esac
