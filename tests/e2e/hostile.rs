//! Hostile programs end in the right verdict, and the worker serves the next job.

use serde_json::json;

use crate::helpers::{expect, job, stack, sum_tests, summary};

fn limited(source: &str, tests: serde_json::Value) -> serde_json::Value {
    let mut j = job("python", source, tests);
    j["timeout_ms"] = json!(1000);
    j["memory_limit_mb"] = json!(128);
    j
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_programs_are_contained() {
    let mut stack = stack(&["python"]).await;
    let once = json!([{ "input": "" }]);
    let cases = [
        (
            "fork bomb",
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
            "time_limit_exceeded",
        ),
        ("memory bomb", "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))\n", "memory_limit_exceeded"),
        ("output flood", "import sys\nwhile True:\n    sys.stdout.write('y' * 65536)\n", "output_limit_exceeded"),
        ("stderr flood", "import sys\nwhile True:\n    sys.stderr.write('e' * 65536)\n", "output_limit_exceeded"),
        ("infinite loop", "while True:\n    pass\n", "time_limit_exceeded"),
        ("sleep past the limit", "import time\ntime.sleep(30)\n", "time_limit_exceeded"),
        ("network", "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=0.5)\n", "runtime_error"),
        ("write outside /work", "open('/etc/passwd', 'a').write('x')\n", "runtime_error"),
        ("write to /opt", "open('/opt/optimus/runner.sh', 'w').write('x')\n", "runtime_error"),
        // It can reach only its own processes now (the runner, launcher and init
        // are another user), and kill(-1) spares the caller: nothing happens.
        ("kill everything", "import os, signal\nos.kill(-1, signal.SIGKILL)\nprint('alive')\n", "accepted"),
    ];
    let mut ids = Vec::new();
    for (name, source, _) in &cases {
        ids.push((name, stack.submit(&limited(source, once.clone())).await));
    }
    for ((name, id), (_, _, verdict)) in ids.iter().zip(&cases) {
        let finished = stack.wait(id).await;
        assert_eq!(finished["result"]["overall_status"], *verdict, "{name}: {}", summary(&finished));
    }

    // The network is absent, not just slow: there is no route at all.
    let finished = stack.run(&limited("import socket\ntry:\n    socket.create_connection(('8.8.8.8', 53), timeout=0.5)\nexcept OSError as e:\n    print(e.errno)\n", once.clone())).await;
    let out = expect(&finished, "accepted")["test_results"][0]["stdout"].as_str().unwrap().to_string();
    assert_eq!(out, "101\n", "ENETUNREACH expected");

    // The sandbox: not root, no capabilities, no new privileges, read-only root.
    let probe = "import os\nprint(os.getuid())\nfor l in open('/proc/self/status'):\n    if l.startswith(('CapEff', 'NoNewPrivs')):\n        print(l.split()[1])\nprint(os.access('/', os.W_OK))\n";
    let finished = stack.run(&limited(probe, once.clone())).await;
    let out = expect(&finished, "accepted")["test_results"][0]["stdout"].as_str().unwrap().to_string();
    let (uid, rest) = out.split_once('\n').unwrap();
    assert!(optimus_protocol::sandbox_uid(uid).is_some(), "uid {uid} is not a sandbox uid");
    assert_eq!(rest, "0000000000000000\n1\nFalse\n");

    // The runner's report stream is out of reach: a program that tries to write a
    // forged report into it (fast, tiny, "accepted") through /proc is refused, and is
    // judged on what it really printed.
    let forge = "import os\nfor pid in os.listdir('/proc'):\n    if not pid.isdigit() or int(pid) == os.getpid():\n        continue\n    try:\n        cmd = open(f'/proc/{pid}/cmdline', 'rb').read()\n    except OSError:\n        continue\n    if b'runner.sh' not in cmd:\n        continue\n    for what in ('fd/1', 'environ'):\n        try:\n            fd = os.open(f'/proc/{pid}/{what}', os.O_WRONLY if what == 'fd/1' else os.O_RDONLY)\n            if what == 'fd/1':\n                os.write(fd, b'@@optimus test 0 0 1000 100 0 0 3 0\\nWIN@@optimus done\\n')\n            print('reached', what)\n        except OSError as e:\n            print('refused', what, e.errno)\n";
    let finished = stack.run(&limited(forge, json!([{ "input": "", "expected_output": "WIN" }]))).await;
    let result = expect(&finished, "wrong_answer");
    let out = result["test_results"][0]["stdout"].as_str().unwrap();
    assert!(out.contains("refused fd/1 13") && !out.contains("reached"), "{}", summary(&finished));

    // Nothing a test starts outlives it: a daemon from test 1 is gone in test 2.
    let leak = "import os, sys, time\nif input() == 'start':\n    if os.fork() == 0:\n        time.sleep(0.5)\n        open('/work/build/leaked', 'w').write('x')\n        os._exit(0)\n    print('started')\nelse:\n    time.sleep(1)\n    print('leaked' if os.path.exists('/work/build/leaked') else 'clean')\n";
    let mut checked = limited(leak, json!([{ "input": "start" }, { "input": "check", "expected_output": "clean" }]));
    checked["timeout_ms"] = json!(5000);
    let finished = stack.run(&checked).await;
    expect(&finished, "accepted");

    // And the worker still serves.
    let finished = stack
        .run(&job(
            "python",
            "import sys\nfor l in sys.stdin:\n    a, b = map(int, l.split())\n    print(a + b)\n",
            sum_tests(3),
        ))
        .await;
    expect(&finished, "accepted");
    stack.stop().await;
}
