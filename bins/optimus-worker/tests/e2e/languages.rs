//! Every verdict in each shipped language.

use serde_json::json;

use crate::helpers::{expect, job, stack, sum_tests, verdicts, Stack};

struct Programs {
    lang: &'static str,
    sum: &'static str,
    wrong: &'static str,
    broken: Option<&'static str>,
    crash: &'static str,
    spin: &'static str,
    hog: &'static str,
    flood: &'static str,
    echo: &'static str,
}

const PYTHON: Programs = Programs {
    lang: "python",
    sum: "import sys\nfor line in sys.stdin:\n    a, b = map(int, line.split())\n    print(a + b)\n",
    wrong: "a, b = map(int, input().split())\nprint(a - b)\n",
    broken: None,
    crash: "raise ValueError('boom')\n",
    spin: "while True:\n    pass\n",
    hog: "x = bytearray(1 << 30)\nprint(len(x))\n",
    flood: "while True:\n    print('x' * 1000)\n",
    echo: "import sys\nsys.stdout.write(sys.stdin.read())\n",
};

const JAVA: Programs = Programs {
    lang: "java",
    sum: "import java.util.*;\npublic class Main {\n  public static void main(String[] args) {\n    Scanner in = new Scanner(System.in);\n    while (in.hasNextLong()) System.out.println(in.nextLong() + in.nextLong());\n  }\n}\n",
    wrong: "import java.util.*;\npublic class Main {\n  public static void main(String[] args) {\n    Scanner in = new Scanner(System.in);\n    System.out.println(in.nextLong() - in.nextLong());\n  }\n}\n",
    broken: Some("public class Main {\n  public static void main(String[] args) {\n    int x = \"text\"\n  }\n}\n"),
    crash: "public class Main {\n  public static void main(String[] args) {\n    throw new IllegalStateException(\"boom\");\n  }\n}\n",
    spin: "public class Main {\n  public static void main(String[] args) {\n    long i = 0;\n    while (true) i++;\n  }\n}\n",
    hog: "public class Main {\n  public static void main(String[] args) {\n    long[] big = new long[1 << 27];\n    System.out.println(big.length);\n  }\n}\n",
    flood: "public class Main {\n  public static void main(String[] args) {\n    String s = \"x\".repeat(1000);\n    while (true) System.out.println(s);\n  }\n}\n",
    echo: "public class Main {\n  public static void main(String[] args) throws Exception {\n    System.in.transferTo(System.out);\n  }\n}\n",
};

const RUST: Programs = Programs {
    lang: "rust",
    sum: "use std::io::*;\nfn main() {\n    let mut s = String::new();\n    stdin().read_to_string(&mut s).unwrap();\n    let v: Vec<i64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();\n    for p in v.chunks(2) { println!(\"{}\", p[0] + p[1]); }\n}\n",
    wrong: "fn main() { println!(\"-1\"); }\n",
    broken: Some("fn main() {\n    let x: i32 = \"text\";\n}\n"),
    crash: "fn main() {\n    let v: Vec<i32> = Vec::new();\n    println!(\"{}\", v[3]);\n}\n",
    spin: "fn main() {\n    let mut i: u64 = 0;\n    loop { i = std::hint::black_box(i + 1); }\n}\n",
    hog: "fn main() {\n    let v = vec![1u8; 1 << 30];\n    println!(\"{}\", v[12345]);\n}\n",
    flood: "fn main() {\n    let s = \"x\".repeat(1000);\n    loop { println!(\"{}\", s); }\n}\n",
    echo: "use std::io::*;\nfn main() {\n    let mut s = Vec::new();\n    stdin().read_to_end(&mut s).unwrap();\n    stdout().write_all(&s).unwrap();\n}\n",
};

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
    let hog = stack.submit(&limited(p.hog, 5000, 128)).await;
    let flood = stack.submit(&limited(p.flood, 5000, 256)).await;
    let echo = stack.submit(&job(p.lang, p.echo, json!([{ "input": big, "expected_output": big }]))).await;
    let broken = match p.broken {
        Some(src) => Some(stack.submit(&job(p.lang, src, one.clone())).await),
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
    assert!(t["stderr"].as_str().unwrap().len() > 0, "the crash's message comes back: {t}");

    let r = expect(&stack.wait(&spin).await, "time_limit_exceeded");
    let ms = r["test_results"][0]["execution_time_ms"].as_u64().unwrap();
    assert!((1000..3000).contains(&ms), "killed at its 1000 ms limit, not later: {ms} ms");

    let r = expect(&stack.wait(&hog).await, "memory_limit_exceeded");
    assert!(r["test_results"][0]["passed"] == false);

    let r = expect(&stack.wait(&flood).await, "output_limit_exceeded");
    let t = &r["test_results"][0];
    assert_eq!(t["output_truncated"], true, "{}", t["message"]);
    assert_eq!(t["stdout"].as_str().unwrap().len(), 1024 * 1024);

    let r = expect(&stack.wait(&echo).await, "accepted");
    assert!(r["test_results"][0]["stdout"].as_str().unwrap() == big, "1 MiB echoed intact");

    if let Some(broken) = broken {
        let r = expect(&stack.wait(&broken).await, "compilation_error");
        let out = r["compile_output"].as_str().unwrap();
        assert!(out.contains(if p.lang == "java" { "Main.java:3" } else { "main.rs:2" }), "file and line: {out}");
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
