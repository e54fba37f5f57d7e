//! Every verdict in each shipped language.

use serde_json::json;

use optimus_common::testkit::RedisServer;

use crate::helpers::{expect, job, stack, stack_with, sum_tests, verdicts, Stack};

struct Programs {
    lang: &'static str,
    sum: &'static str,
    wrong: &'static str,
    /// A source that does not compile, and the `file:line` its error must name.
    broken: Option<(&'static str, &'static str)>,
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
    broken: Some(("public class Main {\n  public static void main(String[] args) {\n    int x = \"text\"\n  }\n}\n", "Main.java:3")),
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
    broken: Some(("fn main() {\n    let x: i32 = \"text\";\n}\n", "main.rs:2")),
    crash: "fn main() {\n    let v: Vec<i32> = Vec::new();\n    println!(\"{}\", v[3]);\n}\n",
    spin: "fn main() {\n    let mut i: u64 = 0;\n    loop { i = std::hint::black_box(i + 1); }\n}\n",
    hog: "fn main() {\n    let v = vec![1u8; 1 << 30];\n    println!(\"{}\", v[12345]);\n}\n",
    flood: "fn main() {\n    let s = \"x\".repeat(1000);\n    loop { println!(\"{}\", s); }\n}\n",
    echo: "use std::io::*;\nfn main() {\n    let mut s = Vec::new();\n    stdin().read_to_end(&mut s).unwrap();\n    stdout().write_all(&s).unwrap();\n}\n",
};

const C: Programs = Programs {
    lang: "c",
    sum: "#include <stdio.h>\nint main(void) {\n    long long a, b;\n    while (scanf(\"%lld %lld\", &a, &b) == 2) printf(\"%lld\\n\", a + b);\n    return 0;\n}\n",
    wrong: "#include <stdio.h>\nint main(void) {\n    long long a, b;\n    scanf(\"%lld %lld\", &a, &b);\n    printf(\"%lld\\n\", a - b);\n    return 0;\n}\n",
    broken: Some(("#include <stdio.h>\nint main(void) {\n    int x = \n}\n", "main.c:4")),
    crash: "#include <stdio.h>\n#include <stdlib.h>\nint main(void) {\n    fprintf(stderr, \"boom\\n\");\n    abort();\n}\n",
    spin: "int main(void) {\n    volatile unsigned long i = 0;\n    for (;;) i++;\n}\n",
    hog: "#include <stdio.h>\n#include <stdlib.h>\nint main(void) {\n    size_t n = (size_t)1 << 30;\n    volatile char *p = malloc(n);\n    if (!p) return 2;\n    for (size_t i = 0; i < n; i += 4096) p[i] = 1;\n    printf(\"%d\\n\", p[n - 4096]);\n    return 0;\n}\n",
    flood: "#include <stdio.h>\nint main(void) {\n    for (;;) puts(\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\");\n}\n",
    echo: "#include <stdio.h>\nint main(void) {\n    static char b[65536];\n    size_t n;\n    while ((n = fread(b, 1, sizeof b, stdin)) > 0) fwrite(b, 1, n, stdout);\n    return 0;\n}\n",
};

const CPP: Programs = Programs {
    lang: "cpp",
    sum: "#include <iostream>\nint main() {\n    long long a, b;\n    while (std::cin >> a >> b) std::cout << a + b << '\\n';\n}\n",
    wrong: "#include <iostream>\nint main() {\n    long long a, b;\n    std::cin >> a >> b;\n    std::cout << a * b << '\\n';\n}\n",
    broken: Some(("#include <iostream>\nint main() {\n    std::cout << undefined_name;\n}\n", "main.cpp:3")),
    crash: "#include <stdexcept>\nint main() {\n    throw std::runtime_error(\"boom\");\n}\n",
    spin: "int main() {\n    volatile unsigned long i = 0;\n    for (;;) i++;\n}\n",
    hog: "#include <iostream>\n#include <vector>\nint main() {\n    std::vector<char> v(1 << 30, 1);\n    std::cout << int(v[12345]) << '\\n';\n}\n",
    flood: "#include <cstdio>\nint main() {\n    for (;;) std::puts(\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\");\n}\n",
    echo: "#include <iostream>\nint main() {\n    std::cout << std::cin.rdbuf();\n}\n",
};

const GO: Programs = Programs {
    lang: "go",
    sum: "package main\n\nimport (\n\t\"bufio\"\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tr := bufio.NewReader(os.Stdin)\n\tvar a, b int64\n\tfor {\n\t\tif _, err := fmt.Fscan(r, &a, &b); err != nil {\n\t\t\treturn\n\t\t}\n\t\tfmt.Println(a + b)\n\t}\n}\n",
    wrong: "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(42)\n}\n",
    broken: Some(("package main\n\nfunc main() {\n\tx := 1\n}\n", "main.go:4")),
    crash: "package main\n\nfunc main() {\n\tpanic(\"boom\")\n}\n",
    spin: "package main\n\nfunc main() {\n\ti := 0\n\tfor {\n\t\ti++\n\t}\n}\n",
    hog: "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tb := make([]byte, 1<<30)\n\tfor i := range b {\n\t\tb[i] = 1\n\t}\n\tfmt.Println(b[12345])\n}\n",
    flood: "package main\n\nimport (\n\t\"fmt\"\n\t\"strings\"\n)\n\nfunc main() {\n\ts := strings.Repeat(\"x\", 1000)\n\tfor {\n\t\tfmt.Println(s)\n\t}\n}\n",
    echo: "package main\n\nimport (\n\t\"io\"\n\t\"os\"\n)\n\nfunc main() {\n\tio.Copy(os.Stdout, os.Stdin)\n}\n",
};

const JAVASCRIPT: Programs = Programs {
    lang: "javascript",
    sum: "const nums = require('fs').readFileSync(0, 'utf8').split(/\\s+/).filter(Boolean).map(Number);\nconst out = [];\nfor (let i = 0; i + 1 < nums.length; i += 2) out.push(nums[i] + nums[i + 1]);\nconsole.log(out.join('\\n'));\n",
    wrong: "console.log('nope');\n",
    broken: None,
    crash: "throw new Error('boom');\n",
    spin: "let i = 0;\nwhile (true) { i++; }\n",
    hog: "const b = Buffer.alloc(1 << 30, 1);\nconsole.log(b[12345]);\n",
    flood: "const s = 'x'.repeat(1000) + '\\n';\nfor (;;) process.stdout.write(s);\n",
    echo: "process.stdout.write(require('fs').readFileSync(0));\n",
};

const BASH: Programs = Programs {
    lang: "bash",
    sum: "while read -r a b; do\n  echo $((a + b))\ndone\n",
    wrong: "echo 0\n",
    broken: None,
    crash: "echo boom >&2\nexit 3\n",
    spin: "while :; do :; done\n",
    // One 300 MB string from the printf builtin: fast even on a loaded machine.
    hog: "x=$(printf %0300000000d 0)\necho ${#x}\n",
    flood: "yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    echo: "cat\n",
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
