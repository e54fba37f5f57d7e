//! Judging: modes, comparison rules, custom checkers, reference solutions and the
//! python_call harness, each through the whole stack.

use serde_json::{json, Value};

use crate::helpers::{expect, job, stack, summary, verdicts};

/// Prints a+b, except for a = 3, where it prints a-b.
const SUM_BUT_3: &str = "a, b = map(int, input().split())\nprint(a - b if a == 3 else a + b)\n";
const ECHO: &str = "import sys\nsys.stdout.write(sys.stdin.read())\n";

fn sum_tests(weights: &[u64]) -> Value {
    Value::Array(
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| json!({"input": format!("{} 10\n", i + 1), "expected_output": format!("{}\n", i + 11), "weight": w}))
            .collect(),
    )
}

fn field<'a>(result: &'a Value, test: usize, name: &str) -> &'a Value {
    &result["test_results"][test][name]
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_stops_at_the_first_failure_and_run_does_not() {
    let mut stack = stack(&["python"]).await;
    let weights = [1, 2, 3, 4, 5];

    let mut submit = job("python", SUM_BUT_3, sum_tests(&weights));
    submit["mode"] = json!("submit");
    let done = stack.run(&submit).await;
    let result = expect(&done, "wrong_answer");
    assert_eq!(verdicts(&done), ["accepted", "accepted", "wrong_answer", "not_run", "not_run"], "{}", summary(&done));
    assert_eq!((result["score"].as_u64(), result["max_score"].as_u64()), (Some(3), Some(15)));
    assert_eq!(result["mode"], "submit");
    // Not run means not executed: nothing was measured or printed.
    for t in 3..5 {
        assert_eq!(field(&result, t, "stdout"), "");
        assert_eq!(field(&result, t, "execution_time_ms"), 0);
        assert!(field(&result, t, "exit_code").is_null());
        assert_eq!(field(&result, t, "passed"), false);
    }

    // The same job in run mode executes every test.
    let done = stack.run(&job("python", SUM_BUT_3, sum_tests(&weights))).await;
    let result = expect(&done, "wrong_answer");
    assert_eq!(verdicts(&done), ["accepted", "accepted", "wrong_answer", "accepted", "accepted"]);
    assert_eq!((result["score"].as_u64(), result["max_score"].as_u64()), (Some(12), Some(15)));
    assert_eq!(field(&result, 4, "stdout"), "15\n");

    // A submission that passes everything runs everything in submit mode too.
    let mut all = job("python", "a, b = map(int, input().split())\nprint(a + b)\n", sum_tests(&weights));
    all["mode"] = json!("submit");
    let done = stack.run(&all).await;
    let result = expect(&done, "accepted");
    assert_eq!(result["score"], 15);

    // A crash stops submit mode as well.
    let mut crash = job("python", "raise SystemExit(4)\n", sum_tests(&[1, 1]));
    crash["mode"] = json!("submit");
    let done = stack.run(&crash).await;
    expect(&done, "runtime_error");
    assert_eq!(verdicts(&done), ["runtime_error", "not_run"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_mode_reports_runs_without_judging() {
    let mut stack = stack(&["python"]).await;
    let program = "import sys\ns = sys.stdin.read()\nprint(s[::-1])\nprint('note', file=sys.stderr)\nsys.exit(3 if s == 'boom' else 0)\n";
    let mut custom = job("python", program, json!([{"input": "abc"}, {"input": "boom"}]));
    custom["mode"] = json!("custom");
    let done = stack.run(&custom).await;
    assert_eq!(done["status"], "completed", "{}", summary(&done));
    let result = &done["result"];
    assert_eq!(result["mode"], "custom");
    assert!(result.get("overall_status").is_none(), "{}", summary(&done));
    assert_eq!((result["score"].as_u64(), result["max_score"].as_u64()), (Some(0), Some(0)));
    for t in result["test_results"].as_array().unwrap() {
        assert!(t.get("verdict").is_none() && t.get("passed").is_none(), "{t}");
        assert_eq!(t["stderr"], "note\n");
        assert!(t["memory_kb"].as_u64().unwrap() > 0, "{t}");
    }
    assert_eq!((field(result, 0, "stdout"), field(result, 0, "exit_code")), (&json!("cba\n"), &json!(0)));
    assert_eq!((field(result, 1, "stdout"), field(result, 1, "exit_code")), (&json!("moob\n"), &json!(3)));

    // Without tests: one run on empty input. A run past its limit says so.
    let mut once = json!({"language": "python", "source_code": "print('hi', flush=True)\nwhile True: pass\n", "mode": "custom", "timeout_ms": 300});
    let done = stack.run(&once).await;
    let result = &done["result"];
    assert_eq!(result["test_results"].as_array().unwrap().len(), 1, "{}", summary(&done));
    assert_eq!(field(result, 0, "stdout"), "hi\n");
    assert!(field(result, 0, "message").as_str().unwrap().contains("300 ms time limit"), "{}", summary(&done));

    // A program that does not compile is still reported as such.
    once["language"] = json!("c");
    once["source_code"] = json!("int main( { }");
    stack.stop().await;
    let mut stack = crate::helpers::stack(&["c"]).await;
    let done = stack.run(&once).await;
    expect(&done, "compilation_error");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_comparison_rule_passes_and_fails() {
    let mut stack = stack(&["python"]).await;
    // The program echoes its input, so each test's input is exactly what it prints.
    let cases = [
        ("exact", json!("exact"), "a b\n", "a b\n", "accepted"),
        ("exact", json!("exact"), "a b\n", "a b", "wrong_answer"),
        ("trim", json!("trim"), "a b  \n\n", "a b", "accepted"),
        ("trim", json!("trim"), "a  b\n", "a b\n", "wrong_answer"),
        ("tokens", json!("tokens"), "1   2\n\n3 ", "1 2 3", "accepted"),
        ("tokens", json!("tokens"), "1 2\n", "1 2 3\n", "wrong_answer"),
        (
            "float",
            json!({"type": "float", "abs_tol": 1e-6, "rel_tol": 1e-9}),
            "x 3.1415927\n",
            "x 3.14159265\n",
            "accepted",
        ),
        (
            "float",
            json!({"type": "float", "abs_tol": 1e-6, "rel_tol": 1e-9}),
            "x 3.1416\n",
            "x 3.14159265\n",
            "wrong_answer",
        ),
        ("float", json!({"type": "float", "abs_tol": 0, "rel_tol": 1e-3}), "1000.5\n", "1000\n", "accepted"),
        ("float", json!("float"), "2.0000001\n", "2\n", "accepted"),
        ("case_insensitive", json!("case_insensitive"), "YES\nNo\n", "yes\nno\n", "accepted"),
        ("case_insensitive", json!("case_insensitive"), "YES\n", "no\n", "wrong_answer"),
        ("unordered_lines", json!("unordered_lines"), "b\nc\na\n", "a\nb\nc\n", "accepted"),
        ("unordered_lines", json!("unordered_lines"), "a\na\nc\n", "a\nb\nc\n", "wrong_answer"),
    ];
    let tests: Vec<Value> = cases
        .iter()
        .map(|(_, rule, input, expected, _)| json!({"input": input, "expected_output": expected, "compare": rule}))
        .collect();
    let done = stack.run(&job("python", ECHO, json!(tests))).await;
    let result = expect(&done, "wrong_answer");
    for (i, (name, _, _, _, verdict)) in cases.iter().enumerate() {
        assert_eq!(field(&result, i, "verdict"), verdict, "rule {name}, test {}: {}", i + 1, summary(&done));
    }
    // A wrong answer says where the output differs.
    assert_eq!(field(&result, 3, "message"), "line 1: expected \"a b\", got \"a  b\"");

    // The job's rule applies to every test that has none of its own.
    let mut by_job = job(
        "python",
        ECHO,
        json!([{"input": "1\n2 3", "expected_output": "1 2 3"}, {"input": "1 2", "expected_output": "1 2", "compare": "exact"}]),
    );
    by_job["compare"] = json!("tokens");
    let done = stack.run(&by_job).await;
    expect(&done, "accepted");
    by_job["compare"] = json!("trim");
    let done = stack.run(&by_job).await;
    assert_eq!(verdicts(&done), ["wrong_answer", "accepted"]);
    stack.stop().await;
}

/// A C checker for "print two positive integers that sum to n": many answers are
/// right, so no expected output can judge it. Output "crash" makes it abort, "loop"
/// makes it spin, "seven" makes it exit 7.
const CHECKER: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: checker input expected output\n"); return 3; }
    FILE *in = fopen(argv[1], "r"), *out = fopen(argv[3], "r");
    long n, a, b;
    char word[32] = "";
    if (fscanf(in, "%ld", &n) != 1) return 3;
    if (fscanf(out, "%31s", word) == 1) {
        if (!strcmp(word, "crash")) abort();
        if (!strcmp(word, "loop")) for (;;) {}
        if (!strcmp(word, "seven")) return 7;
    }
    rewind(out);
    if (fscanf(out, "%ld %ld", &a, &b) != 2) { printf("expected two integers\n"); return 2; }
    if (a <= 0 || b <= 0 || a + b != n) { printf("%ld + %ld is %ld, not %ld\n", a, b, a + b, n); return 1; }
    printf("ok: %ld + %ld\n", a, b);
    return 0;
}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_checker_accepts_rejects_and_fails() {
    // Only a Python worker: it runs the C checker in a C container itself.
    let mut stack = stack(&["python"]).await;
    let program = "import sys\nn = int(input())\nanswers = {4: '1 1', 5: 'two words', 6: 'crash', 7: 'seven', 8: 'loop'}\nprint(answers.get(n, f'1 {n - 1}'))\n";
    let tests = json!([
        {"input": "10\n", "expected_output": "5 5\n"},
        {"input": "4\n"},
        {"input": "5\n"},
        {"input": "6\n"},
        {"input": "7\n"},
        {"input": "8\n"},
        {"input": "100\n"},
    ]);
    let mut checked = job("python", program, tests);
    checked["checker"] = json!({"language": "c", "source_code": CHECKER});
    let done = stack.run(&checked).await;
    let result = expect(&done, "wrong_answer");
    assert_eq!(
        verdicts(&done),
        ["accepted", "wrong_answer", "wrong_answer", "internal_error", "internal_error", "internal_error", "accepted"],
        "{}",
        summary(&done)
    );
    // "1 9" is right although the stored expected output says "5 5".
    assert_eq!(field(&result, 0, "checker_message"), "ok: 1 + 9");
    assert_eq!(field(&result, 1, "checker_message"), "1 + 1 is 2, not 4");
    assert_eq!(field(&result, 2, "checker_message"), "expected two integers");
    assert!(field(&result, 3, "message").as_str().unwrap().contains("SIGABRT"), "{}", summary(&done));
    assert!(field(&result, 4, "message").as_str().unwrap().contains("code 7"), "{}", summary(&done));
    assert!(field(&result, 5, "message").as_str().unwrap().contains("time limit"), "{}", summary(&done));
    assert_eq!(result["passed_tests"], 2);

    // A checker that does not compile: nothing can be judged.
    checked["checker"]["source_code"] = json!("int main( {");
    checked["test_cases"] = json!([{"input": "10\n"}]);
    let done = stack.run(&checked).await;
    let result = expect(&done, "internal_error");
    assert!(result["message"].as_str().unwrap().contains("checker did not compile"), "{}", summary(&done));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reference_solution_in_another_language_supplies_expected_outputs() {
    let mut stack = stack(&["python"]).await;
    // The course's solution, in C; it cannot handle n = 0 (it exits 2).
    let solution = "#include <stdio.h>\nint main(void) { long n, s = 0; scanf(\"%ld\", &n); if (n == 0) return 2; for (long i = 1; i <= n; i++) s += i; printf(\"%ld\\n\", s); return 0; }\n";
    // The student's: right, except for n = 7.
    let program = "n = int(input())\nprint(n * (n + 1) // 2 + (1 if n == 7 else 0))\n";
    let mut graded = job(
        "python",
        program,
        json!([{"input": "3\n"}, {"input": "7\n"}, {"input": "100000\n"}, {"input": "0\n"}, {"input": "4\n", "expected_output": "10\n"}]),
    );
    graded["solution_code"] = json!(solution);
    graded["solution_language"] = json!("c");
    let done = stack.run(&graded).await;
    let result = expect(&done, "wrong_answer");
    assert_eq!(
        verdicts(&done),
        ["accepted", "wrong_answer", "accepted", "internal_error", "accepted"],
        "{}",
        summary(&done)
    );
    assert_eq!(field(&result, 0, "expected_output"), "6\n");
    assert_eq!(field(&result, 1, "expected_output"), "28\n");
    assert_eq!(field(&result, 2, "expected_output"), "5000050000\n");
    // The test that carried its own expected output keeps it to itself.
    assert!(result["test_results"][4].get("expected_output").is_none());
    let failed = field(&result, 3, "message").as_str().unwrap();
    assert!(failed.contains("reference solution failed") && failed.contains("code 2"), "{failed}");
    for t in result["test_results"].as_array().unwrap() {
        assert!(t["solution_time_ms"].is_u64() && t["solution_memory_kb"].as_u64().unwrap() > 0, "{t}");
    }

    // Same language by default; a solution that does not compile is the platform's problem.
    graded["solution_language"] = json!("c");
    graded["solution_code"] = json!("int main( {");
    let done = stack.run(&graded).await;
    let result = expect(&done, "internal_error");
    assert!(result["message"].as_str().unwrap().contains("reference solution did not compile"), "{}", summary(&done));
    let mut same = job("python", program, json!([{"input": "2\n"}]));
    same["solution_code"] = json!("n = int(input())\nprint(sum(range(n + 1)))\n");
    let done = stack.run(&same).await;
    let result = expect(&done, "accepted");
    assert_eq!(field(&result, 0, "expected_output"), "3\n");
    stack.stop().await;
}

const STUDENT: &str = r#"
class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

def make_point(x, y):
    return Point(x, y)

def add(a, b):
    print("debugging", a, b)
    return a + b

def stats(xs):
    return {"min": min(xs), "max": max(xs), "seen": set(xs), "pairs": [(x, x * x) for x in xs]}

def mean(xs):
    return sum(xs) / len(xs)

def parse(s):
    return {"one": 1}[s]

def halve(n):
    return n // 2
"#;

const REFERENCE: &str = r#"
from dataclasses import dataclass

@dataclass
class Point:
    x: int
    y: int

def make_point(x, y):
    return Point(x, y)

def add(a, b):
    return a + b

def stats(xs):
    return {"pairs": [[x, x ** 2] for x in xs], "seen": frozenset(xs), "max": max(xs), "min": min(xs)}

def mean(xs):
    if not xs:
        raise ZeroDivisionError("mean of nothing")
    return sum(xs) / len(xs)

def parse(s):
    if s != "one":
        raise ValueError(f"cannot parse {s!r}")
    return 1

def halve(n):
    return n / 2
"#;

#[tokio::test(flavor = "multi_thread")]
async fn python_call_compares_values_objects_and_exceptions() {
    let mut stack = stack(&["python"]).await;
    let calls = [
        "add(1, 2)",
        "make_point(1, 2)",
        "stats([3, 1, 2])",
        "mean([])",
        "parse('one')",
        "parse('two')",
        "halve(3)",
        "mean([1, 2])",
    ];
    let tests: Vec<Value> = calls.iter().map(|c| json!({"input": c})).collect();
    let mut harnessed = job("python", STUDENT, json!(tests));
    harnessed["harness"] = json!("python_call");
    harnessed["solution_code"] = json!(REFERENCE);
    let done = stack.run(&harnessed).await;
    let result = expect(&done, "wrong_answer");
    assert_eq!(
        verdicts(&done),
        ["accepted", "accepted", "accepted", "accepted", "accepted", "wrong_answer", "wrong_answer", "accepted"],
        "{}",
        summary(&done)
    );
    // What the function printed is kept, apart from the value.
    assert!(field(&result, 0, "stderr").as_str().unwrap().contains("debugging 1 2"), "{}", summary(&done));
    let raised = field(&result, 5, "message").as_str().unwrap();
    assert!(raised.contains("raised KeyError") && raised.contains("expected ValueError"), "{raised}");
    assert_eq!(field(&result, 6, "message"), "halve(3) returned 1; expected 1.5");

    // A submission that does not even load fails every call as a runtime error.
    harnessed["source_code"] = json!("def add(a, b):\n    return a +\n");
    harnessed["test_cases"] = json!([{"input": "add(1, 2)"}]);
    let done = stack.run(&harnessed).await;
    let result = expect(&done, "runtime_error");
    assert!(field(&result, 0, "stderr").as_str().unwrap().contains("SyntaxError"), "{}", summary(&done));
    stack.stop().await;
}

/// Arguments reach the program as its argv on every test (spaces and empty ones
/// intact, no shell), and extra files sit beside the source: a Python module
/// imported, a C header included.
#[tokio::test(flavor = "multi_thread")]
async fn arguments_and_extra_files_reach_the_program() {
    let mut stack = stack(&["python", "c"]).await;
    let mut py = job(
        "python",
        "import sys, helper\nprint(helper.greet(sys.argv[1:]), sys.stdin.read().strip())",
        json!([{ "input": "one", "expected_output": "hi ['a b', '', '$HOME;x'] one" },
               { "input": "two", "expected_output": "hi ['a b', '', '$HOME;x'] two" }]),
    );
    py["args"] = json!(["a b", "", "$HOME;x"]);
    py["files"] = json!([{ "name": "helper.py", "content": "def greet(args):\n    return 'hi ' + repr(args)\n" }]);
    expect(&stack.run(&py).await, "accepted");

    let mut c = job(
        "c",
        "#include <stdio.h>\n#include \"twice.h\"\nint main(int argc, char **argv) { printf(\"%d %s\\n\", TWICE(argc), argv[1]); return 0; }\n",
        json!([{ "input": "", "expected_output": "4 x" }]),
    );
    c["args"] = json!(["x"]);
    c["files"] = json!([{ "name": "twice.h", "content": "#define TWICE(n) ((n) * 2)\n" }]);
    expect(&stack.run(&c).await, "accepted");
    stack.stop().await;
}

/// A checker that floods: 1 MB of control bytes on stdout and on stderr for every
/// test. Each control byte costs six when stored as JSON, so uncounted this job's
/// record alone would be about 48 MB.
const FLOODING_CHECKER: &str =
    "import sys\nflood = '\\x01' * 1_000_000\nsys.stdout.write(flood)\nsys.stderr.write(flood)\n";

/// Four tests of `print(1)`, judged by [`FLOODING_CHECKER`].
fn flooded_job() -> Value {
    let tests = json!([{"input": ""}, {"input": ""}, {"input": ""}, {"input": ""}]);
    let mut flooded = job("python", "print(1)\n", tests);
    flooded["checker"] = json!({"language": "python", "source_code": FLOODING_CHECKER});
    flooded
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flooding_checker_is_held_to_the_jobs_output_budget() {
    let mut stack = stack(&["python"]).await;
    let done = stack.run(&flooded_job()).await;
    let result = expect(&done, "accepted");
    assert_eq!(result["outputs_cut"], json!(true), "{}", summary(&done));
    assert!(field(&result, 0, "checker_message").as_str().is_some_and(|m| m.starts_with('\u{1}')));

    // As served: the budget and a small fixed part per test, whatever the checker printed.
    let budget = optimus_common::Settings::default().limits.job_output_budget_bytes;
    let served = serde_json::to_string(&done).unwrap().len();
    assert!(served <= budget + 16 * 1024, "the record as served is {served} bytes; the budget is {budget}");
    // In Redis: the record and the events (whose copies share one more budget),
    // as Redis's allocator holds them (its size classes round a 4 MiB string up
    // by as much as a quarter).
    let id: uuid::Uuid = done["job_id"].as_str().unwrap().parse().unwrap();
    let mut redis = redis::Client::open(stack.redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let mut held = 0u64;
    for key in [optimus_common::keys::job(id), optimus_common::keys::result(id), optimus_common::keys::events(id)] {
        let usage: Option<u64> = redis::cmd("MEMORY").arg("USAGE").arg(&key).query_async(&mut redis).await.unwrap();
        held += usage.unwrap_or(0);
    }
    assert!(
        held <= 2 * budget as u64 * 5 / 4 + 64 * 1024,
        "Redis holds {held} bytes for this job; the budget is {budget}"
    );
    stack.stop().await;
}

/// An owner near its quota gets the room it has left as its output budget: the
/// flooding checker's job, for anonymous callers with 2 MiB between them, keeps
/// what fits in 2 MiB (record, result and events as Redis holds them).
#[tokio::test(flavor = "multi_thread")]
async fn an_owner_near_its_quota_stores_only_what_fits_in_it() {
    let quota = 2u64 << 20;
    let mut stack = crate::helpers::stack_api(&["python"], |api| {
        api.anonymous_quota = optimus_common::Quota { max_active: 0, max_bytes: quota }
    })
    .await;
    let done = stack.run(&flooded_job()).await;
    let result = expect(&done, "accepted");
    assert_eq!(result["outputs_cut"], json!(true), "{}", summary(&done));
    let served = serde_json::to_string(&done).unwrap().len() as u64;
    assert!(served <= quota / 2 + 16 * 1024, "the record as served is {served} bytes");
    let mut redis = redis::Client::open(stack.redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let held: i64 = redis::cmd("HGET")
        .arg(optimus_common::keys::owner_bytes(""))
        .arg("total")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(held as u64 <= quota * 5 / 4 + 64 * 1024, "the ledger holds {held} bytes of a {quota} quota");
    stack.stop().await;
}
