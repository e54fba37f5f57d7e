//! The sandbox against a program that attacks the runner itself: forged reports,
//! stopped clocks, jammed or swapped paths, peeking at other tests, orphans, and
//! memory split across processes. Each ends in a verdict for the program, and the
//! worker goes on serving.

use serde_json::{json, Value};

use crate::helpers::{expect, job, stack, summary};

fn python(source: &str, tests: Value, timeout_ms: u64, memory_mb: u64) -> Value {
    let mut j = job("python", source, tests);
    j["timeout_ms"] = json!(timeout_ms);
    j["memory_limit_mb"] = json!(memory_mb);
    j
}

fn test_field<'a>(result: &'a Value, i: usize, key: &str) -> &'a Value {
    &result["test_results"][i][key]
}

/// Tries every descriptor of every other process, and the old runner's path, to
/// write a report that would make test 0 accepted in 1 ms; then sleeps far past
/// its limit. Prints on stderr whatever it reached.
const FORGER: &str = r#"
import os, sys, time
forged = b"@@optimus test 0 0 1000 1000 1000 0 0 3 0\nWIN@@optimus done\n"
reached = []
for pid in os.listdir('/proc'):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    try:
        fds = os.listdir(f'/proc/{pid}/fd')
    except OSError:
        fds = ['0', '1', '2']
    for fd in fds:
        try:
            f = os.open(f'/proc/{pid}/fd/{fd}', os.O_WRONLY | os.O_NONBLOCK)
            os.write(f, forged)
            reached.append(f'{pid}/{fd}')
        except OSError:
            pass
# The old runner's output path, linked to its own stdout: read by no one now.
os.makedirs('/work/out', exist_ok=True)
os.symlink('/proc/self/fd/1', '/work/out/stdout')
# Its own stdout is only its output, whatever it writes there.
sys.stdout.buffer.write(forged)
sys.stdout.flush()
print('reached:', reached, file=sys.stderr)
time.sleep(30)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_report_is_not_believed() {
    let mut stack = stack(&["python"]).await;
    let done = stack.run(&python(FORGER, json!([{ "input": "", "expected_output": "WIN" }]), 500, 64)).await;
    let result = expect(&done, "time_limit_exceeded");
    assert_eq!(test_field(&result, 0, "stderr"), "reached: []\n", "{}", summary(&done));
    // Killed at the wall-clock cap (2 x 500 ms + 1 s), not in the forged 1 ms.
    assert!(test_field(&result, 0, "execution_time_ms").as_u64().unwrap() >= 2000, "{}", summary(&done));
    assert!(test_field(&result, 0, "memory_kb").as_u64().unwrap() > 1000, "{}", summary(&done));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_announced_huge_report_is_only_output_and_is_capped() {
    let mut stack = stack(&["python"]).await;
    // A header announcing 96 MiB, and usize::MAX, then 2 MiB: output, cut at the cap.
    let source = "import sys\nw = sys.stdout.buffer.write\nw(b'@@optimus test 0 0 1 1 1 0 0 100663296 0\\n')\nw(b'@@optimus test 0 0 1 1 1 0 0 18446744073709551615 0\\n')\nw(b'y' * (2 << 20))\n";
    let done = stack.run(&python(source, json!([{ "input": "" }]), 2000, 64)).await;
    let result = expect(&done, "output_limit_exceeded");
    let stdout = test_field(&result, 0, "stdout").as_str().unwrap();
    assert_eq!(stdout.len(), 1 << 20, "cut at the 1 MiB cap");
    assert!(stdout.starts_with("@@optimus test 0 0 1 1 1 0 0 100663296 0\n"));
    // The slot is alive: the next job is judged.
    expect(
        &stack.run(&python("print(input())", json!([{ "input": "7", "expected_output": "7" }]), 2000, 64)).await,
        "accepted",
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_anything_ends_in_time_limit_exceeded_at_the_wall_cap() {
    let mut stack = stack(&["python"]).await;
    // The launcher (its parent) is another user: SIGSTOP is refused. kill(-1)
    // reaches only its own processes. Stopping itself freezes the clock it can
    // reach, not the launcher's.
    let source = r#"
import os, signal, sys
try:
    os.kill(os.getppid(), signal.SIGSTOP)
    print('stopped the launcher', file=sys.stderr)
except PermissionError:
    print('parent: EPERM', file=sys.stderr)
try:
    os.kill(1, signal.SIGSTOP)
    print('stopped init', file=sys.stderr)
except PermissionError:
    print('init: EPERM', file=sys.stderr)
if os.fork() == 0:
    os.kill(-1, signal.SIGSTOP)
    os._exit(0)
sys.stderr.flush()
os.kill(os.getpid(), signal.SIGSTOP)
"#;
    let done = stack.run(&python(source, json!([{ "input": "" }, { "input": "" }]), 500, 64)).await;
    let result = expect(&done, "time_limit_exceeded");
    for i in 0..2 {
        assert_eq!(test_field(&result, i, "verdict"), "time_limit_exceeded", "{}", summary(&done));
        assert_eq!(test_field(&result, i, "stderr"), "parent: EPERM\ninit: EPERM\n", "{}", summary(&done));
        assert!(test_field(&result, i, "message").as_str().unwrap().contains("wall-clock cap"), "{}", summary(&done));
    }
    expect(
        &stack.run(&python("print(input())", json!([{ "input": "7", "expected_output": "7" }]), 2000, 64)).await,
        "accepted",
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fifos_and_links_anywhere_it_can_write_change_nothing() {
    let mut stack = stack(&["python"]).await;
    // Test 1 plants FIFOs and links in every writable place and in the old
    // runner's paths, and tries the runner's own directories. Test 2 finds a
    // fresh, empty scratch space and is judged normally.
    let source = r#"
import os, sys
if input() == 'plant':
    for d in ['/work', '/tmp', '/dev/shm', '/work/out', '/work/build']:
        os.makedirs(d, exist_ok=True)
        for name in ['stdout', 'stderr', 'rss', 'compile.log', 'fifo']:
            try:
                os.mkfifo(f'{d}/{name}')
            except OSError:
                pass
        try:
            os.symlink('/etc/passwd', f'{d}/link')
        except OSError:
            pass
    os.chmod('/work', 0)
    for d in ['/judge', '/box/prog', '/box/check', '/opt/optimus']:
        try:
            open(f'{d}/planted', 'w').write('x')
            print('wrote into', d)
        except OSError:
            print(d, 'refused')
else:
    left = {d: sorted(os.listdir(d)) for d in ['/work', '/tmp', '/dev/shm']}
    print('clean' if not any(left.values()) else left)
"#;
    let tests = json!([
        { "input": "plant", "expected_output": "/judge refused\n/box/prog refused\n/box/check refused\n/opt/optimus refused" },
        { "input": "check", "expected_output": "clean" }
    ]);
    let done = stack.run(&python(source, tests, 2000, 64)).await;
    expect(&done, "accepted");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_test_sees_only_its_own_input_and_a_fresh_scratch_space() {
    let mut stack = stack(&["python"]).await;
    // Each test looks for the other tests' inputs wherever it can read, and
    // leaves its own everywhere it can write, in files and in System V IPC.
    let source = r#"
import os, sys
mine = sys.stdin.read().strip()
found = set()
for top in ['/judge', '/box', '/work', '/tmp', '/dev/shm', '/dev/mqueue']:
    for root, dirs, files in os.walk(top):
        for f in files:
            try:
                data = open(os.path.join(root, f), 'rb').read()
            except OSError:
                continue
            for n in range(3):
                if f'SECRET-{n}'.encode() in data and f'SECRET-{n}' != mine:
                    found.add(f'SECRET-{n}')
for d in ['/work', '/tmp', '/dev/shm']:
    open(f'{d}/{mine}', 'w').write(mine)
try:
    import ctypes
    libc = ctypes.CDLL(None)
    if libc.msgget(1234, 0o1666) != -1:
        found.add('made a message queue')
    if libc.semget(4321, 1, 0) != -1:
        found.add('saw an earlier semaphore set')
    if libc.semget(4321, 1, 0o1666) != -1:
        found.add('made a semaphore set')
except OSError:
    pass
print(mine, sorted(found))
"#;
    let tests: Vec<Value> = (0..3)
        .map(|i| json!({ "input": format!("SECRET-{i}\n"), "expected_output": format!("SECRET-{i} []") }))
        .collect();
    let done = stack.run(&python(source, Value::Array(tests), 5000, 64)).await;
    expect(&done, "accepted");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_orphan_is_killed_and_cannot_touch_the_figures() {
    let mut stack = stack(&["python"]).await;
    // Test 1 leaves a daemon (new session, double fork) that tries to write over
    // every descriptor it can find, then exits at once. Test 2 finds no process
    // of the sandbox user but itself.
    let source = r#"
import os, sys, time
if input() == 'leave':
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for _ in range(200):
                for pid in os.listdir('/proc'):
                    # Other users' processes: the runner's, the launcher's, init.
                    try:
                        theirs = pid.isdigit() and os.stat(f'/proc/{pid}').st_uid != os.getuid()
                    except OSError:
                        theirs = False
                    if theirs:
                        for fd in ('1', '2', '3', '4', '5'):
                            try:
                                f = os.open(f'/proc/{pid}/fd/{fd}', os.O_WRONLY | os.O_NONBLOCK)
                                os.write(f, b'@@optimus test 0 0 1 1 1 0 0 0 0\n')
                            except OSError:
                                pass
                time.sleep(0.01)
        os._exit(0)
    print('left')
else:
    time.sleep(0.3)
    others = []
    for p in os.listdir('/proc'):
        try:
            if p.isdigit() and int(p) != os.getpid() and os.stat(f'/proc/{p}').st_uid == os.getuid():
                others.append(p)
        except OSError:
            pass
    print('alone' if not others else others)
"#;
    let tests =
        json!([{ "input": "leave", "expected_output": "left" }, { "input": "check", "expected_output": "alone" }]);
    let done = stack.run(&python(source, tests, 3000, 64)).await;
    let result = expect(&done, "accepted");
    for i in 0..2 {
        let memory = test_field(&result, i, "memory_kb").as_u64().unwrap();
        assert!(memory > 4000, "a python run holds megabytes, not {memory} kB: {}", summary(&done));
    }
    stack.stop().await;
}

/// Four children that each hold 50 MiB at once.
const FOUR_CHILDREN: &str = r#"
import os, time
kids = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        block = bytearray(b'\x01') * (50 << 20)
        time.sleep(0.6)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
print('done')
"#;

/// A tree of spinning processes shares the container's CPU quota with the
/// launcher that must stop it: the launcher runs at a priority the program has
/// and can never get, so it is not starved (a soak of fork bombs under load
/// found runs outliving every deadline before it did).
#[tokio::test(flavor = "multi_thread")]
async fn the_program_runs_below_its_watchers_priority_and_cannot_rise() {
    let mut stack = stack(&["python"]).await;
    let source = r#"
import os
print(os.getpriority(os.PRIO_PROCESS, 0), os.getpriority(os.PRIO_PROCESS, os.getppid()))
try:
    os.setpriority(os.PRIO_PROCESS, 0, -1)
    print('raised')
except PermissionError:
    print('refused')
"#;
    let done = stack.run(&python(source, json!([{ "input": "" }]), 2000, 128)).await;
    let result = expect(&done, "accepted");
    assert_eq!(test_field(&result, 0, "stdout"), "0 -20\nrefused\n", "{}", summary(&done));
    stack.stop().await;
}

/// One launcher runs all of a job's tests: each test's memory is its own peak,
/// never an earlier test's.
#[tokio::test(flavor = "multi_thread")]
async fn each_test_reports_its_own_peak_memory() {
    let mut stack = stack(&["python"]).await;
    let source = "n = int(input())\nblock = bytearray(b'\\x01') * (n << 20)\nprint('held')";
    let tests = json!([{ "input": "120", "expected_output": "held" }, { "input": "0", "expected_output": "held" }]);
    let done = stack.run(&python(source, tests, 5000, 256)).await;
    let result = expect(&done, "accepted");
    let (big, small) =
        (test_field(&result, 0, "memory_kb").as_u64().unwrap(), test_field(&result, 1, "memory_kb").as_u64().unwrap());
    assert!(big > 120 * 1024, "test 0 held 120 MiB: {big} kB: {}", summary(&done));
    assert!(small < 60 * 1024, "test 1 held nothing, yet reports {small} kB: {}", summary(&done));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_is_the_peak_of_the_whole_process_tree() {
    let mut stack = stack(&["python"]).await;
    let done = stack.run(&python(FOUR_CHILDREN, json!([{ "input": "", "expected_output": "done" }]), 5000, 512)).await;
    let result = expect(&done, "accepted");
    let memory = test_field(&result, 0, "memory_kb").as_u64().unwrap();
    assert!((200 * 1024..280 * 1024).contains(&memory), "four 50 MiB children: {memory} kB: {}", summary(&done));
    // The same tree under a limit one child fits in is over it.
    let done = stack.run(&python(FOUR_CHILDREN, json!([{ "input": "" }]), 5000, 128)).await;
    expect(&done, "memory_limit_exceeded");
    stack.stop().await;
}

/// Fills 160 pipes of 256 KiB each (40 MiB of kernel memory, next to no memory
/// of its own) and holds them a moment before it ends.
const PIPES: &str = r#"
import fcntl, os, time
held = []
for _ in range(160):
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 256 * 1024)
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b'x' * 65536)
    except BlockingIOError:
        pass
    held.append((r, w))
time.sleep(0.6)
print('held', len(held))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn pipe_buffers_count_as_the_programs_memory() {
    let mut stack = stack(&["python"]).await;
    let done = stack.run(&python(PIPES, json!([{ "input": "", "expected_output": "held 160" }]), 5000, 128)).await;
    let result = expect(&done, "accepted");
    let memory = test_field(&result, 0, "memory_kb").as_u64().unwrap();
    assert!(memory >= 40 * 1024, "40 MiB in pipe buffers: {memory} kB: {}", summary(&done));
    let done = stack.run(&python(PIPES, json!([{ "input": "" }]), 5000, 32)).await;
    expect(&done, "memory_limit_exceeded");
    stack.stop().await;
}

/// Opens inotify instances until the kernel refuses (the per-user limit), prints
/// how many it got and the limit, and holds them.
const INOTIFY: &str = r#"
import ctypes, time
libc = ctypes.CDLL(None)
held = 0
while libc.inotify_init1(0) != -1:
    held += 1
print(held, open('/proc/sys/fs/inotify/max_user_instances').read().strip(), flush=True)
time.sleep(float(input()))
"#;

/// The most inotify instances that the processes of any one sandbox uid hold, read
/// from the host's /proc (a pooled container is not labelled with its job).
fn inotify_held() -> usize {
    use std::os::unix::fs::MetadataExt;
    let mut by_uid = std::collections::HashMap::<u32, usize>::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if optimus_protocol::sandbox_uid(&meta.uid().to_string()).is_none() {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        *by_uid.entry(meta.uid()).or_default() += fds
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.to_string_lossy() == "anon_inode:inotify")
            .count();
    }
    by_uid.into_values().max().unwrap_or(0)
}

/// The kernel's per-user limits are per container: a job that holds every
/// inotify instance its user may have leaves a concurrent job (in another
/// container, under another uid) all of its own.
#[tokio::test(flavor = "multi_thread")]
async fn one_jobs_per_user_limits_are_not_another_jobs() {
    let mut stack = stack(&["python"]).await;
    let holder = stack.submit(&python(INOTIFY, json!([{ "input": "60" }]), 30_000, 64)).await;
    let start = std::time::Instant::now();
    let limit: usize =
        std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances").unwrap().trim().parse().unwrap();
    while inotify_held() < limit {
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "the holder never held {limit} instances");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let done = stack.run(&python(INOTIFY, json!([{ "input": "0" }]), 5000, 64)).await;
    let result = expect(&done, "accepted");
    assert_eq!(test_field(&result, 0, "stdout"), &json!(format!("{limit} {limit}\n")), "{}", summary(&done));
    assert_eq!(inotify_held(), limit, "the holder still held its instances");
    stack.cancel(&holder).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn time_is_judged_on_cpu_time_with_a_wall_clock_cap() {
    let mut stack = stack(&["python"]).await;
    // Sleeping uses no CPU: under the wall-clock cap (2 x 1000 ms + 1 s) it passes.
    let done = stack
        .run(&python(
            "import time\ntime.sleep(1.3)\nprint('ok')",
            json!([{ "input": "", "expected_output": "ok" }]),
            1000,
            64,
        ))
        .await;
    let result = expect(&done, "accepted");
    assert!(test_field(&result, 0, "execution_time_ms").as_u64().unwrap() >= 1300, "{}", summary(&done));
    assert!(test_field(&result, 0, "cpu_time_ms").as_u64().unwrap() < 500, "{}", summary(&done));
    // Spinning uses it: past 1000 ms of CPU time it is killed.
    let done = stack.run(&python("while True: pass", json!([{ "input": "" }]), 1000, 64)).await;
    let result = expect(&done, "time_limit_exceeded");
    assert!(test_field(&result, 0, "cpu_time_ms").as_u64().unwrap() >= 1000, "{}", summary(&done));
    assert!(test_field(&result, 0, "message").as_str().unwrap().contains("CPU time"), "{}", summary(&done));
    // CPU time spread over processes counts whole.
    let spin = "import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        t = time.process_time()\n        while time.process_time() - t < 0.5: pass\n        os._exit(0)\nfor _ in range(3): os.wait()\nprint('ok')";
    let done = stack.run(&python(spin, json!([{ "input": "" }]), 1000, 64)).await;
    let result = expect(&done, "time_limit_exceeded");
    assert!(test_field(&result, 0, "cpu_time_ms").as_u64().unwrap() >= 1000, "{}", summary(&done));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_stores_its_outputs_within_its_budget() {
    let mut stack = stack(&["python"]).await;
    // Each test prints just under the 1 MiB cap in control bytes (about 6 MiB
    // once stored as JSON) and a short line on stderr.
    let flood =
        "import sys\nsys.stdout.buffer.write(b'\\x01' * ((1 << 20) - 16))\nprint('test', input(), file=sys.stderr)";
    let tests: Vec<Value> = (0..8).map(|i| json!({ "input": i.to_string() })).collect();
    let done = stack.run(&python(flood, Value::Array(tests), 5000, 128)).await;
    let result = expect(&done, "accepted");
    assert_eq!(result["outputs_cut"], true, "{}", summary(&done));
    let stored: usize = result["test_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            serde_json::to_string(&t["stdout"]).unwrap().len() + serde_json::to_string(&t["stderr"]).unwrap().len()
        })
        .sum();
    assert!(stored <= 4 * 1024 * 1024 + 8 * 2 * 2, "{stored} bytes stored");
    for i in 0..8 {
        assert_eq!(test_field(&result, i, "stderr"), &json!(format!("test {i}\n")), "short outputs are kept whole");
        assert!(test_field(&result, i, "stdout").as_str().unwrap().len() > 60_000, "each flood keeps a fair share");
    }
    stack.stop().await;
}
