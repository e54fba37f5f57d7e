//! `optimus-launcher`: the one program in a language image that starts what the
//! sandbox runs. As the container's init it starts `runner.sh` once per job and
//! role; the runner (which knows each language's commands) calls it once per
//! compile, once for all of a job's tests (`tests`, which forks itself per test)
//! and once per checker run; it runs as the container's root with only
//! the capabilities to change user and to kill, and it:
//!
//! - kills whatever an earlier run left and empties the sandbox user's writable
//!   places (so each test sees a fresh scratch space and nothing of the last);
//! - forks the program with its input file as stdin and two path-less in-memory
//!   files as stdout and stderr, every other descriptor closed, limits set, and
//!   then drops to the sandbox user for good (which also drops every capability);
//! - times it by CPU time of the whole process tree and by wall clock, and kills
//!   the tree at either limit; samples the tree's memory from the container's
//!   cgroup; reaps every descendant (it is their subreaper) and reports.
//!
//! A program under test runs as another user than the launcher, the runner and
//! init, so it can neither signal, trace nor stop them, nor open their
//! descriptors through /proc; the report stream is theirs alone. As PID 1
//! (`optimus-launcher init`, [`serve`]) it reaps orphans, ignores stop signals
//! and starts the runner's sessions on the worker's requests.
//!
//! Reports are written with `optimus_protocol`, the worker's own reader's crate.

mod cgroup;
mod scratch;
mod serve;
mod sys;
mod tree;

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use optimus_protocol::{clock_us, test_header, CompileStatus, Report, TestRun, Timing, COMPILE_OUTPUT_LIMIT, VERSION};

/// The unprivileged user (uid and gid alike) every process this container's
/// programs run as: the container's own, one of `optimus_protocol`'s sandbox uids,
/// given by the worker that made the container in its environment.
fn sandbox_user() -> std::io::Result<libc::uid_t> {
    let var = optimus_protocol::SANDBOX_UID_ENV;
    std::env::var(var).ok().as_deref().and_then(optimus_protocol::sandbox_uid).ok_or_else(|| {
        std::io::Error::other(format!(
            "{var} must be one of the sandbox uids {}..{} (the worker sets it)",
            optimus_protocol::SANDBOX_UID,
            optimus_protocol::SANDBOX_UID + optimus_protocol::SANDBOX_USERS
        ))
    })
}

/// Exit status of the launcher when it, not the program, failed.
const FAILED: u8 = 70;

/// The environment a program gets: nothing of the runner's.
const PROGRAM_ENV: [&str; 4] =
    ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/work", "LANG=C.UTF-8", "TMPDIR=/tmp"];

/// How often the tree's CPU time and memory are sampled while it runs.
const SAMPLE_EVERY: Duration = Duration::from_millis(2);

const USAGE: &str = "usage: optimus-launcher init | wipe | done | compile-none | protocol
       optimus-launcher run --report test:<i>|compile --stdin FILE --cwd DIR [--seed DIR]
                        --time-limit-ms N --wall-ms N --output-limit BYTES [--fsize BYTES]
                        [--stack-mb N] [--merge] -- COMMAND [ARG...]
       optimus-launcher tests --count N --inputs DIR [--step] --cwd DIR ... -- COMMAND [ARG...]
                        (run's options but --report and --stdin: test i reads DIR/<i>.in)
       optimus-launcher artifact --max BYTES FILE   (reports FILE, a tar, if it is no longer)";

/// What `run` reports.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Test(usize),
    Compile,
}

#[derive(Debug, Clone)]
struct RunArgs {
    kind: Kind,
    stdin: PathBuf,
    cwd: PathBuf,
    seed: Option<PathBuf>,
    /// CPU time the run may use (`optimus_common::limits`: the one name for it).
    time_limit_ms: u64,
    /// Its wall-clock cap, derived by the worker from the time limit.
    wall_ms: u64,
    output_limit: u64,
    fsize: u64,
    stack_mb: Option<u64>,
    merge: bool,
    command: Vec<CString>,
}

fn parse_run(args: &[String]) -> Result<RunArgs, String> {
    let mut kind = None;
    let (mut stdin, mut cwd, mut seed) = (None, None, None);
    let (mut time_limit_ms, mut wall_ms, mut output_limit, mut fsize, mut stack_mb) = (None, None, None, None, None);
    let mut merge = false;
    let mut it = args.iter();
    let number = |v: Option<&String>, flag: &str| -> Result<u64, String> {
        v.and_then(|v| v.parse().ok()).ok_or_else(|| format!("{flag} needs a whole number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--report" => {
                kind = Some(match it.next().map(String::as_str) {
                    Some("compile") => Kind::Compile,
                    Some(t) => Kind::Test(
                        t.strip_prefix("test:")
                            .and_then(|i| i.parse().ok())
                            .ok_or("--report takes test:<i> or compile")?,
                    ),
                    None => return Err("--report takes test:<i> or compile".into()),
                })
            }
            "--stdin" => stdin = it.next().map(PathBuf::from),
            "--cwd" => cwd = it.next().map(PathBuf::from),
            "--seed" => seed = it.next().map(PathBuf::from),
            "--time-limit-ms" => time_limit_ms = Some(number(it.next(), arg)?),
            "--wall-ms" => wall_ms = Some(number(it.next(), arg)?),
            "--output-limit" => output_limit = Some(number(it.next(), arg)?),
            "--fsize" => fsize = Some(number(it.next(), arg)?),
            "--stack-mb" => stack_mb = Some(number(it.next(), arg)?),
            "--merge" => merge = true,
            "--" => break,
            other => return Err(format!("unknown option {other}")),
        }
    }
    let command: Vec<CString> = it
        .map(|a| CString::new(a.as_bytes()).map_err(|_| "a NUL byte in the command".to_string()))
        .collect::<Result<_, _>>()?;
    if command.is_empty() {
        return Err("no command after --".into());
    }
    let output_limit = output_limit.ok_or("--output-limit is required")?;
    Ok(RunArgs {
        kind: kind.ok_or("--report is required")?,
        stdin: stdin.ok_or("--stdin is required")?,
        cwd: cwd.ok_or("--cwd is required")?,
        seed,
        time_limit_ms: time_limit_ms.ok_or("--time-limit-ms is required")?,
        wall_ms: wall_ms.ok_or("--wall-ms is required")?,
        // One byte past the limit is kept, so that going over shows.
        fsize: fsize.unwrap_or(output_limit + 1),
        output_limit,
        stack_mb,
        merge,
        command,
    })
}

/// `tests`: every test of a job, one after another, from one launcher.
#[derive(Debug)]
struct TestsArgs {
    count: usize,
    inputs: PathBuf,
    /// Wait for a line `next` on stdin before each test after the first.
    step: bool,
    /// The runs' options; each test gets its own report index and input.
    run: RunArgs,
}

fn parse_tests(args: &[String]) -> Result<TestsArgs, String> {
    let (mut count, mut inputs, mut step) = (None, None, false);
    let mut rest = args;
    loop {
        match rest {
            [flag, n, more @ ..] if flag == "--count" => {
                count = Some(n.parse().map_err(|_| "--count needs a whole number")?);
                rest = more;
            }
            [flag, dir, more @ ..] if flag == "--inputs" => {
                inputs = Some(PathBuf::from(dir));
                rest = more;
            }
            [flag, more @ ..] if flag == "--step" => {
                step = true;
                rest = more;
            }
            _ => break,
        }
    }
    if rest.iter().take_while(|a| *a != "--").any(|a| a == "--report" || a == "--stdin") {
        return Err("tests sets each test's --report and --stdin itself".into());
    }
    // Each test's own report and input replace these.
    let placeholders = ["--report", "test:0", "--stdin", "/dev/null"].map(String::from);
    let run = parse_run(&placeholders.iter().chain(rest).cloned().collect::<Vec<_>>())?;
    Ok(TestsArgs {
        count: count.ok_or("--count is required")?,
        inputs: inputs.ok_or("--inputs is required")?,
        step,
        run,
    })
}

/// Runs every test in turn, each in a forked copy of this process (so that each
/// run's accounting of its reaped children, its peak memory among them, starts
/// from nothing), which is far cheaper than a runner starting a launcher per test.
fn tests(t: &TestsArgs) -> Result<(), String> {
    for index in 0..t.count {
        if index > 0 && t.step && !next_requested().map_err(|e| format!("cannot read the step: {e}"))? {
            break;
        }
        let args = RunArgs { kind: Kind::Test(index), stdin: t.inputs.join(format!("{index}.in")), ..t.run.clone() };
        let pid = match sys::fork().map_err(|e| e.to_string())? {
            sys::Forked::Child => {
                let code = match run(&args) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("optimus-launcher: test {index}: {e}");
                        i32::from(FAILED)
                    }
                };
                sys::exit_now(code)
            }
            sys::Forked::Parent(pid) => pid,
        };
        match sys::wait_pid(pid, false).map_err(|e| e.to_string())? {
            Some(sys::Exit { status: 0 }) => {}
            _ => return Err(format!("the launcher failed on test {index}")),
        }
    }
    Ok(())
}

/// Reads one line from stdin, a byte at a time (nothing past it is taken from
/// the runner's stream): whether it was `next`. The end of stdin is a stop.
fn next_requested() -> std::io::Result<bool> {
    let mut line = Vec::new();
    let mut byte = [0u8];
    loop {
        if sys::read(0, &mut byte)? == 0 {
            return Ok(false);
        }
        if byte[0] == b'\n' {
            return Ok(line == b"next");
        }
        if line.len() < 16 {
            line.push(byte[0]);
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("init") => serve::init(),
        Some("run") => parse_run(&args[1..]).and_then(|a| run(&a).map_err(|e| e.to_string())),
        Some("tests") => parse_tests(&args[1..]).and_then(|t| tests(&t)),
        Some("wipe") => sandbox_user().and_then(prepare_scratch).map_err(|e| e.to_string()),
        Some("done") => emit(&Report::Done.encode()),
        Some("compile-none") => emit(
            &Report::Compile { status: CompileStatus::None, exit_code: 0, time_ms: 0, output: Vec::new() }.encode(),
        ),
        Some("artifact") => artifact(&args[1..]),
        Some("protocol") => emit(format!("{VERSION}\n").as_bytes()),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("optimus-launcher: {why}");
            ExitCode::from(FAILED)
        }
    }
}

fn emit(bytes: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|_| out.flush()).map_err(|e| format!("cannot write the report: {e}"))
}

/// `artifact --max BYTES FILE`: reports the tar the runner made of what a compile
/// left, or only its length when it is over what the worker asked for. The runner
/// made FILE as root, of a directory only root writes, after the compile's
/// processes were killed: nothing of the program's can change it meanwhile.
fn artifact(args: &[String]) -> Result<(), String> {
    let [flag, max, file] = args else { return Err(USAGE.to_string()) };
    let max: u64 = match (flag.as_str(), max.parse()) {
        ("--max", Ok(max)) => max,
        _ => return Err(USAGE.to_string()),
    };
    let len = std::fs::metadata(file).map_err(|e| format!("cannot read {file}: {e}"))?.len();
    if len > max {
        return emit(&Report::ArtifactSkipped { len }.encode());
    }
    let tar = std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))?;
    emit(&Report::Artifact { tar }.encode())
}

/// Kills what earlier runs left and empties the writable places.
fn prepare_scratch(user: libc::uid_t) -> std::io::Result<()> {
    if !tree::sweep(&tree::Spared::me_and_my_ancestors()) {
        return Err(std::io::Error::other("processes of an earlier run could not be killed"));
    }
    scratch::wipe(user)
}

/// The child's side of a run: everything up to exec, then exec. Never returns.
fn child(args: &RunArgs, user: libc::uid_t, stdin: &OwnedFd, stdout: &OwnedFd, stderr: &OwnedFd, env: &[CString]) -> ! {
    let fail = |what: &str, e: std::io::Error| -> ! {
        let _ = writeln!(std::io::stderr(), "optimus-launcher: {what}: {e}");
        sys::exit_now(127)
    };
    sys::reset_signals();
    // The program runs at the ordinary priority, below its watcher's; once it is
    // the sandbox user it can never raise it.
    if let Err(e) = sys::set_nice(0) {
        fail("cannot reset the priority", e);
    }
    // The OOM killer takes the program before the runner or the launcher.
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    let _ = sys::setsid();
    for (fd, target) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
        if let Err(e) = sys::dup2(fd.as_raw_fd(), target) {
            fail("cannot set up the standard streams", e);
        }
    }
    sys::close_from(3);
    let cpu_s = args.time_limit_ms.div_ceil(1000) + 1;
    let mut limits = vec![
        (libc::RLIMIT_CORE, 0, 0),
        // A backstop per process; the whole tree's CPU time is watched by the parent.
        (libc::RLIMIT_CPU, cpu_s, cpu_s + 1),
        (libc::RLIMIT_FSIZE, args.fsize, args.fsize),
    ];
    if let Some(mb) = args.stack_mb {
        limits.push((libc::RLIMIT_STACK, mb * 1024 * 1024, mb * 1024 * 1024));
    }
    for (resource, soft, hard) in limits {
        if let Err(e) = sys::set_rlimit(resource, soft, hard) {
            fail("cannot set a limit", e);
        }
    }
    if let Err(e) = sys::become_user(user, user) {
        fail("cannot drop to the sandbox user", e);
    }
    sys::umask(0o022);
    if let Some(seed) = &args.seed {
        if let Err(e) = scratch::seed(seed, &args.cwd) {
            fail("cannot copy the sources into the build directory", e);
        }
    }
    if let Err(e) = std::env::set_current_dir(&args.cwd) {
        fail(&format!("cannot enter {}", args.cwd.display()), e);
    }
    let e = sys::exec(&args.command, env);
    fail(&format!("cannot run {}", args.command[0].to_string_lossy()), e)
}

/// Up to `limit` bytes of an output file, from its start.
fn read_capped(fd: &OwnedFd, limit: u64) -> std::io::Result<Vec<u8>> {
    let len = sys::fd_size(fd)?.min(limit);
    let mut buf = vec![0; len as usize];
    let file = std::fs::File::from(fd.try_clone()?);
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// Where the runner keeps the test inputs: nothing runs unless it is root's alone
/// (a tmpfs takes its mode from the image's directory, so this is checked, not assumed).
const PRIVATE: &str = "/judge";

fn check_private() -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(PRIVATE)?;
    if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o777 != 0o700 {
        return Err(std::io::Error::other(format!(
            "{PRIVATE} must be a directory of root's with mode 0700 (it is {:o}, uid {})",
            meta.mode() & 0o7777,
            meta.uid()
        )));
    }
    Ok(())
}

/// The launcher's nice value while it watches a run. The program's processes
/// share the container's CPU quota with it: a tree of hundreds of spinning
/// processes at nice 0 would otherwise starve the launcher of the CPU it needs to
/// see the limit pass and kill them (a fork bomb then outlived every deadline).
const WATCHER_NICE: libc::c_int = -20;

fn run(args: &RunArgs) -> std::io::Result<()> {
    let started_us = clock_us();
    let setup = Instant::now();
    sys::set_nice(WATCHER_NICE)
        .map_err(|e| std::io::Error::other(format!("cannot raise the launcher's priority (CAP_SYS_NICE): {e}")))?;
    check_private()?;
    let user = sandbox_user()?;
    sys::become_subreaper()?;
    prepare_scratch(user)?;
    let env: Vec<CString> = PROGRAM_ENV.iter().map(|e| CString::new(*e).expect("no NUL")).collect();
    let stdin: OwnedFd = std::fs::File::open(&args.stdin)?.into();
    let stdout = sys::memfd(c"stdout")?;
    let stderr = if args.merge { stdout.try_clone()? } else { sys::memfd(c"stderr")? };

    let mut counters = cgroup::Counters::open();
    let oom_before = counters.oom_kills();
    let memory_base = counters.memory();
    let cpu_base = counters.cpu_us();
    let (usage_base, _) = sys::children_usage();
    let cpu_limit_us = args.time_limit_ms * 1000;
    let wall_cap = Duration::from_millis(args.wall_ms);

    let start = Instant::now();
    let setup_us = (start - setup).as_micros() as u64;
    let pid = match sys::fork()? {
        sys::Forked::Child => child(args, user, &stdin, &stdout, &stderr, &env),
        sys::Forked::Parent(pid) => pid,
    };
    drop(stdin);
    let exited = sys::pidfd(pid);
    let mut peak_bytes = 0u64;
    let mut timed_out = false;
    // The container's CPU time since the start, as last sampled: the whole tree's,
    // including processes still running when it was read.
    let mut cgroup_cpu_us = 0u64;
    let status = loop {
        let ended = match &exited {
            Some(fd) => sys::wait_readable(fd, SAMPLE_EVERY),
            None => {
                std::thread::sleep(SAMPLE_EVERY);
                false
            }
        };
        if let (Some(now), Some(base)) = (counters.memory(), memory_base) {
            peak_bytes = peak_bytes.max(now.saturating_sub(base));
        }
        if ended || exited.is_none() {
            if let Some(exit) = sys::wait_pid(pid, exited.is_none())? {
                break exit.status;
            }
        }
        let cpu_now = match (counters.cpu_us(), cpu_base) {
            (Some(now), Some(base)) => now.saturating_sub(base),
            _ => 0,
        };
        cgroup_cpu_us = cgroup_cpu_us.max(cpu_now);
        if cpu_now > cpu_limit_us || start.elapsed() >= wall_cap {
            timed_out = true;
            sys::kill(pid, libc::SIGKILL);
            break sys::wait_pid(pid, false)?.map_or(128 + libc::SIGKILL, |e| e.status);
        }
    };
    let ended = Instant::now();
    let wall = ended - start;
    // The test is over when its main process ends: whatever it left goes too.
    let swept = tree::sweep(&tree::Spared::me_and_my_ancestors());
    tree::reap_all();
    let (usage, max_rss_kb) = sys::children_usage();
    // The reaped tree's own account, or the cgroup's where that saw more (a run
    // killed at its limit: the cgroup counted the CPU time that triggered it).
    let cpu_us = usage.saturating_sub(usage_base).max(if timed_out { cgroup_cpu_us } else { 0 });
    if !timed_out && cpu_us > cpu_limit_us {
        timed_out = true;
    }
    let oom_killed = counters.oom_kills() != oom_before;
    if !swept {
        return Err(std::io::Error::other("the program's processes could not all be killed"));
    }

    let mut out = std::io::stdout().lock();
    match args.kind {
        Kind::Compile => {
            let compiled = if timed_out {
                CompileStatus::Timeout
            } else if oom_killed {
                CompileStatus::OutOfMemory
            } else if status == 0 {
                CompileStatus::Ok
            } else {
                CompileStatus::Error
            };
            let output = read_capped(&stdout, COMPILE_OUTPUT_LIMIT as u64)?;
            let report =
                Report::Compile { status: compiled, exit_code: status, time_ms: wall.as_millis() as u64, output };
            out.write_all(&report.encode())?;
        }
        Kind::Test(index) => {
            let keep = args.output_limit + 1;
            let (stdout, stderr) = (read_capped(&stdout, keep)?, read_capped(&stderr, keep)?);
            let timing = Timing { started_us, setup_us, teardown_us: ended.elapsed().as_micros() as u64 };
            let run = TestRun {
                index,
                exit_status: status,
                wall_us: wall.as_micros() as u64,
                cpu_us,
                peak_kb: max_rss_kb.max(peak_bytes / 1024),
                oom_killed,
                timed_out,
                timing,
                ..TestRun::default()
            };
            out.write_all(test_header(&run, stdout.len(), stderr.len()).as_bytes())?;
            out.write_all(&stdout)?;
            out.write_all(&stderr)?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn run_arguments_are_parsed_and_checked() {
        let a = parse_run(&args(
            "--report test:3 --stdin /judge/tests/3.in --cwd /box/prog --time-limit-ms 1000 --wall-ms 3000 --output-limit 16 -- python3 -B main.py",
        ))
        .unwrap();
        assert_eq!(a.kind, Kind::Test(3));
        assert_eq!((a.time_limit_ms, a.wall_ms, a.output_limit, a.fsize), (1000, 3000, 16, 17));
        assert_eq!(a.command.len(), 3);
        assert!(parse_run(&args(
            "--report test:x --stdin a --cwd b --time-limit-ms 1 --wall-ms 1 --output-limit 1 -- x"
        ))
        .is_err());
        assert!(parse_run(&args(
            "--report compile --stdin a --cwd b --time-limit-ms 1 --wall-ms 1 --output-limit 1 --"
        ))
        .is_err());
        assert!(parse_run(&args("--report compile --stdin a --cwd b --wall-ms 1 --output-limit 1 -- x")).is_err());
        assert!(parse_run(&args("--bogus")).is_err());
    }

    #[test]
    fn tests_arguments_give_each_test_its_own_report_and_input() {
        let t = parse_tests(&args(
            "--count 3 --inputs /judge/job/tests --step --cwd /box/prog --time-limit-ms 1000 --wall-ms 3000 --output-limit 16 -- ./main --report x",
        ))
        .unwrap();
        assert_eq!((t.count, t.step), (3, true));
        assert_eq!(t.inputs, PathBuf::from("/judge/job/tests"));
        assert_eq!(t.run.command.len(), 3, "what follows -- is the program's, --report included");
        assert!(
            !parse_tests(&args("--count 1 --inputs d --cwd b --time-limit-ms 1 --wall-ms 1 --output-limit 1 -- x"))
                .unwrap()
                .step
        );
        for bad in [
            "--inputs d --cwd b --time-limit-ms 1 --wall-ms 1 --output-limit 1 -- x",
            "--count 1 --cwd b --time-limit-ms 1 --wall-ms 1 --output-limit 1 -- x",
            "--count x --inputs d --cwd b --time-limit-ms 1 --wall-ms 1 --output-limit 1 -- x",
            "--count 1 --inputs d --report test:1 --cwd b --time-limit-ms 1 --wall-ms 1 --output-limit 1 -- x",
            "--count 1 --inputs d --stdin f --cwd b --time-limit-ms 1 --wall-ms 1 --output-limit 1 -- x",
        ] {
            assert!(parse_tests(&args(bad)).is_err(), "{bad}");
        }
    }
}
