//! Every verdict in each shipped language.

use serde_json::json;

use optimus_common::testkit::RedisServer;

use optimus_tests::programs::*;

use crate::helpers::{expect, job, stack, stack_with, sum_tests, verdicts, Stack};

/// Every case of one language, submitted together and judged.
async fn every_verdict(p: &Programs) {
    let mut stack: Stack = stack(&[p.lang]).await;
    let one = json!([{ "input": "2 3\n", "expected_output": "5\n" }]);
    let limited = |source: &str, timeout_ms: u64, memory_mb: u32| {
        let mut j = job(p.lang, source, json!([{ "input": "" }]));
        j["timeout_ms"] = json!(timeout_ms);
        j["memory_limit_mb"] = json!(memory_mb);
        j
    };
    // 1 MiB of lines, which must come back byte for byte.
    let big: String = (0..1024 * 1024 / 16).map(|i| format!("{i:015}\n")).collect();
    assert_eq!(big.len(), 1024 * 1024);

    let accepted = stack.submit(&job(p.lang, p.sum, sum_tests(10))).await;
    let wrong = stack.submit(&job(p.lang, p.wrong, one.clone())).await;
    let crash = stack.submit(&job(p.lang, p.crash, one.clone())).await;
    let spin = stack.submit(&limited(p.spin, 1000, 256)).await;
    // A wide time limit: on a loaded machine memory must still run out first.
    let hog = stack.submit(&limited(p.hog, 15000, 128)).await;
    let flood = stack.submit(&limited(p.flood, 5000, 256)).await;
    let echo = stack.submit(&job(p.lang, p.echo, json!([{ "input": big, "expected_output": big }]))).await;
    let broken = match p.broken {
        Some((src, at)) => Some((stack.submit(&job(p.lang, src, one.clone())).await, at)),
        None => None,
    };

    let r = expect(&stack.wait(&accepted).await, "accepted");
    assert_eq!(
        (r["passed_tests"].as_u64(), r["score"].as_u64(), r["max_score"].as_u64()),
        (Some(10), Some(10), Some(10))
    );
    for t in r["test_results"].as_array().unwrap() {
        assert!(t["memory_kb"].as_u64().unwrap() > 0, "memory is measured: {t}");
        assert_eq!(t["exit_code"], 0);
    }

    let r = expect(&stack.wait(&wrong).await, "wrong_answer");
    assert_eq!(r["test_results"][0]["passed"], false);

    let r = expect(&stack.wait(&crash).await, "runtime_error");
    let t = &r["test_results"][0];
    assert!(t["exit_code"].as_i64().is_some_and(|c| c != 0) || t["signal"].is_number(), "{t}");
    assert!(!t["stderr"].as_str().unwrap().is_empty(), "the crash's message comes back: {t}");

    let r = expect(&stack.wait(&spin).await, "time_limit_exceeded");
    // Killed at 1000 ms of CPU time, or, on a machine too loaded to give it that
    // much, at the wall-clock cap of 3000 ms: never later.
    let t = &r["test_results"][0];
    let (ms, cpu) = (t["execution_time_ms"].as_u64().unwrap(), t["cpu_time_ms"].as_u64().unwrap());
    assert!(cpu >= 1000 || ms >= 3000, "killed before its limit: {t}");
    assert!(ms < 3500, "killed at its limit, not later: {t}");

    let r = expect(&stack.wait(&hog).await, "memory_limit_exceeded");
    assert!(r["test_results"][0]["passed"] == false);

    let r = expect(&stack.wait(&flood).await, "output_limit_exceeded");
    let t = &r["test_results"][0];
    assert_eq!(t["output_truncated"], true, "{}", t["message"]);
    assert_eq!(t["stdout"].as_str().unwrap().len(), 1024 * 1024);

    let r = expect(&stack.wait(&echo).await, "accepted");
    assert!(r["test_results"][0]["stdout"].as_str().unwrap() == big, "1 MiB echoed intact");

    if let Some((broken, at)) = broken {
        let r = expect(&stack.wait(&broken).await, "compilation_error");
        let out = r["compile_output"].as_str().unwrap();
        assert!(out.contains(at), "file and line {at}: {out}");
        assert!(!out.contains("/work/"), "no sandbox paths in compiler errors: {out}");
        assert!(r["test_results"].as_array().unwrap().is_empty(), "no test runs after a compile error");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_verdicts() {
    every_verdict(&PYTHON).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn java_verdicts() {
    every_verdict(&JAVA).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_verdicts() {
    every_verdict(&RUST).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn c_verdicts() {
    every_verdict(&C).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cpp_verdicts() {
    every_verdict(&CPP).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn go_verdicts() {
    every_verdict(&GO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_verdicts() {
    every_verdict(&JAVASCRIPT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bash_verdicts() {
    every_verdict(&BASH).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_test_without_expected_output_reports_how_it_ended() {
    let mut stack = stack(&["python"]).await;
    let finished = stack
        .run(&job(
            "python",
            "import sys\nprint('hi')\nsys.exit(int(input()))\n",
            json!([{ "input": "0" }, { "input": "4" }]),
        ))
        .await;
    let r = expect(&finished, "runtime_error");
    assert_eq!(verdicts(&finished), ["accepted", "runtime_error"]);
    assert_eq!(r["test_results"][0]["stdout"], "hi\n");
    assert_eq!(r["test_results"][1]["exit_code"], 4);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn weights_score_the_passed_tests() {
    let mut stack = stack(&["python"]).await;
    let tests = json!([
        { "input": "1", "expected_output": "1", "weight": 2 },
        { "input": "2", "expected_output": "3", "weight": 5 },
        { "input": "3", "expected_output": "3", "weight": 1 },
    ]);
    let finished = stack.run(&job("python", "print(input())", tests)).await;
    let r = expect(&finished, "wrong_answer");
    assert_eq!((r["score"].as_u64(), r["max_score"].as_u64(), r["passed_tests"].as_u64()), (Some(3), Some(8), Some(2)));
    assert_eq!(verdicts(&finished), ["accepted", "wrong_answer", "accepted"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compiler_reading_forever_hits_the_compile_time_limit() {
    let cases = [
        (
            &RUST,
            "static NOISE: &[u8] = include_bytes!(\"/dev/urandom\");\nfn main() { println!(\"{}\", NOISE.len()); }\n",
        ),
        (&CPP, "#include </dev/random>\nint main() {}\n"),
    ];
    for (p, source) in cases {
        let mut stack = stack_with(RedisServer::start(), &[p.lang], |lang| lang.compile_timeout_ms = 10_000).await;
        let finished = stack.run(&job(p.lang, source, json!([{ "input": "" }]))).await;
        let r = expect(&finished, "compilation_error");
        // Reading an endless file ends at the time limit, or earlier at the memory limit.
        let out = r["compile_output"].as_str().unwrap();
        assert!(out.contains("10000 ms time limit") || out.contains("MB memory limit"), "{out}");
        // The worker goes on (10 s is ample for a real compile, even on a loaded machine).
        expect(&stack.run(&job(p.lang, p.sum, sum_tests(2))).await, "accepted");
        stack.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_largest_source_and_many_tests_pass_through() {
    let mut stack = stack(&["python"]).await;
    let mut source = String::from(PYTHON.sum);
    while source.len() < 64 * 1024 - 100 {
        source.push_str("# padding to reach the 64 KiB source limit\n");
    }
    let finished = stack.run(&job("python", &source, sum_tests(100))).await;
    let r = expect(&finished, "accepted");
    assert_eq!(r["passed_tests"], 100);
    stack.stop().await;
}
