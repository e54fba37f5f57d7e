#!/usr/bin/env python3
"""End-to-end latency of Optimus, measured against a running stack (./setup.sh).

For each language: N jobs of 10 A+B tests, one after another, each timed from
POST /jobs to the terminal status seen by polling GET /jobs/{id} every 5 ms.
Prints the median, min and max, the median per-test run time reported by the
sandbox, and where the worker's time went (parsed from its log in .optimus/logs).

    scripts/bench.py [--runs 10] [--api http://127.0.0.1:8080] [python java rust ...]
    scripts/bench.py --judging     the Python job judged each way (modes, checker, solution)
"""
import argparse, json, re, statistics, time, urllib.request
from pathlib import Path

PROGRAMS = {
    "python": "import sys\nfor line in sys.stdin:\n    a, b = map(int, line.split())\n    print(a + b)\n",
    "java": "import java.util.*;\npublic class Main {\n  public static void main(String[] args) {\n    Scanner in = new Scanner(System.in);\n    while (in.hasNextLong()) System.out.println(in.nextLong() + in.nextLong());\n  }\n}\n",
    "rust": "use std::io::*;\nfn main() {\n    let mut s = String::new();\n    stdin().read_to_string(&mut s).unwrap();\n    let v: Vec<i64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();\n    for p in v.chunks(2) { println!(\"{}\", p[0] + p[1]); }\n}\n",
    "c": "#include <stdio.h>\nint main(void) {\n    long long a, b;\n    while (scanf(\"%lld %lld\", &a, &b) == 2) printf(\"%lld\\n\", a + b);\n    return 0;\n}\n",
    "cpp": "#include <iostream>\nint main() {\n    long long a, b;\n    while (std::cin >> a >> b) std::cout << a + b << '\\n';\n}\n",
    "go": "package main\n\nimport (\n\t\"bufio\"\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tr := bufio.NewReader(os.Stdin)\n\tvar a, b int64\n\tfor {\n\t\tif _, err := fmt.Fscan(r, &a, &b); err != nil {\n\t\t\treturn\n\t\t}\n\t\tfmt.Println(a + b)\n\t}\n}\n",
    "javascript": "const n = require('fs').readFileSync(0, 'utf8').split(/\\s+/).filter(Boolean).map(Number);\nconst out = [];\nfor (let i = 0; i + 1 < n.length; i += 2) out.push(n[i] + n[i + 1]);\nconsole.log(out.join('\\n'));\n",
    "bash": "while read -r a b; do\n  echo $((a + b))\ndone\n",
}


CHECK_PY = "import sys\na, b = map(int, open(sys.argv[1]).read().split())\nsys.exit(0 if open(sys.argv[3]).read().split() == [str(a + b)] else 1)\n"
CHECK_C = "#include <stdio.h>\nint main(int c, char **v) {\n  long long a, b, s;\n  FILE *i = fopen(v[1], \"r\"), *o = fopen(v[3], \"r\");\n  if (fscanf(i, \"%lld %lld\", &a, &b) != 2 || fscanf(o, \"%lld\", &s) != 1) return 1;\n  return s == a + b ? 0 : 1;\n}\n"
# The Python A+B job, judged each way; `None` tests drop their expected outputs.
JUDGING = {
    "trim (default)": ({}, True),
    "submit mode": ({"mode": "submit"}, True),
    "tokens": ({"compare": "tokens"}, True),
    "checker (python)": ({"checker": {"language": "python", "source_code": CHECK_PY}}, True),
    "checker (c)": ({"checker": {"language": "c", "source_code": CHECK_C}}, True),
    "solution (python)": ({"solution_code": PROGRAMS["python"]}, False),
    "solution (c)": ({"solution_code": PROGRAMS["c"], "solution_language": "c"}, False),
}


def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as res:
        return json.load(res)


def run_job(api, lang, source, extra=None, expected=True):
    tests = [{"id": i + 1, "input": f"{i} {i * 7}\n"} for i in range(10)]
    if expected:
        for i, t in enumerate(tests):
            t["expected_output"] = f"{i * 8}\n"
    start = time.perf_counter()
    body = {"language": lang, "source_code": source, "test_cases": tests, **(extra or {})}
    job_id = call("POST", f"{api}/jobs", body)["job_id"]
    while True:
        job = call("GET", f"{api}/jobs/{job_id}")
        if job["status"] in ("completed", "failed", "cancelled"):
            return time.perf_counter() - start, job
        time.sleep(0.005)


PHASES = re.compile(
    r"job\{id=([0-9a-f-]+)\}.*job judged.*create_ms=(\d+) prepare_ms=(\d+) compile_ms=(\d+)(?: solution_ms=\d+)? run_ms=(\d+)"
)


def phases(lang, ids):
    log = Path(f".optimus/logs/worker-{lang}.log")
    found = {}
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            m = PHASES.search(re.sub(r"\x1b\[[0-9;]*m", "", line))
            if m and m.group(1) in ids:
                found[m.group(1)] = [int(x) for x in m.groups()[1:]]
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--api", default="http://127.0.0.1:8080")
    ap.add_argument("--judging", action="store_true")
    ap.add_argument("languages", nargs="*", default=list(PROGRAMS))
    args = ap.parse_args()
    if args.judging:
        return judging(args)
    print(f"{'language':8} {'median':>8} {'min':>7} {'max':>7} {'test':>6} | worker: {'create':>6} {'prepare':>7} {'compile':>7} {'run':>6}  (ms, medians of {args.runs})")
    for lang in args.languages:
        run_job(args.api, lang, PROGRAMS[lang])  # warm the page cache once; not counted
        times, tests, ids = [], [], set()
        for _ in range(args.runs):
            took, job = run_job(args.api, lang, PROGRAMS[lang])
            assert job["result"]["overall_status"] == "accepted", json.dumps(job)[:500]
            times.append(took * 1000)
            tests += [t["execution_time_ms"] for t in job["result"]["test_results"]]
            ids.add(job["job_id"])
        time.sleep(0.2)
        ph = list(phases(lang, ids).values())
        cols = [statistics.median(p[i] for p in ph) if ph else float("nan") for i in range(4)]
        print(f"{lang:8} {statistics.median(times):8.0f} {min(times):7.0f} {max(times):7.0f} {statistics.median(tests):6.0f} | "
              f"        {cols[0]:6.0f} {cols[1]:7.0f} {cols[2]:7.0f} {cols[3]:6.0f}")


def judging(args):
    print(f"{'python A+B, 10 tests, judged by':32} {'median':>7} {'min':>7} {'max':>7}  (ms, end to end, {args.runs} jobs each)")
    for name, (extra, expected) in JUDGING.items():
        run_job(args.api, "python", PROGRAMS["python"], extra, expected)  # warm-up, not counted
        times = []
        for _ in range(args.runs):
            took, job = run_job(args.api, "python", PROGRAMS["python"], extra, expected)
            assert job["result"]["overall_status"] == "accepted", json.dumps(job)[:500]
            times.append(took * 1000)
        print(f"{name:32} {statistics.median(times):7.0f} {min(times):7.0f} {max(times):7.0f}")


if __name__ == "__main__":
    main()
