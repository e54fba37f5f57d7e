//! What the benchmark runs: one A+B program per language (read pairs of numbers,
//! print each sum), the tests for it, and how to run it bare in its image.

use serde_json::{json, Value};

pub struct Program {
    pub language: &'static str,
    pub source: &'static str,
    /// Shell command that builds the program in the current directory (bare run).
    pub compile: Option<&'static str>,
    /// Shell command that runs it (bare run).
    pub run: &'static str,
    pub file: &'static str,
    /// What starts a comment to the end of the line.
    pub comment: &'static str,
}

pub const PROGRAMS: &[Program] = &[
    Program {
        language: "python",
        source: "import sys\nfor line in sys.stdin:\n    a, b = map(int, line.split())\n    print(a + b)\n",
        compile: None,
        run: "python3 -B main.py",
        file: "main.py",
        comment: "#",
    },
    Program {
        language: "java",
        source: "import java.util.*;\npublic class Main {\n  public static void main(String[] args) {\n    Scanner in = new Scanner(System.in);\n    while (in.hasNextLong()) System.out.println(in.nextLong() + in.nextLong());\n  }\n}\n",
        compile: Some("javac -encoding UTF-8 -d . Main.java"),
        run: "java -XX:SharedArchiveFile=/opt/optimus/run.jsa -Xlog:cds*=off -XX:+UseSerialGC -XX:MaxRAMPercentage=70 -XX:-UsePerfData -Xshare:auto -Xss64m -cp . Main",
        file: "Main.java",
        comment: "//",
    },
    Program {
        language: "rust",
        source: "use std::io::*;\nfn main() {\n    let mut s = String::new();\n    stdin().read_to_string(&mut s).unwrap();\n    let v: Vec<i64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();\n    for p in v.chunks(2) { println!(\"{}\", p[0] + p[1]); }\n}\n",
        compile: Some("rustc --edition 2021 -O -C strip=symbols -o main main.rs"),
        run: "./main",
        file: "main.rs",
        comment: "//",
    },
    Program {
        language: "c",
        source: "#include <stdio.h>\nint main(void) {\n    long long a, b;\n    while (scanf(\"%lld %lld\", &a, &b) == 2) printf(\"%lld\\n\", a + b);\n    return 0;\n}\n",
        compile: Some("gcc -std=c11 -O2 -o main main.c -lm"),
        run: "./main",
        file: "main.c",
        comment: "//",
    },
    Program {
        language: "cpp",
        source: "#include <iostream>\nint main() {\n    long long a, b;\n    while (std::cin >> a >> b) std::cout << a + b << '\\n';\n}\n",
        compile: Some("g++ -std=c++17 -O2 -o main main.cpp"),
        run: "./main",
        file: "main.cpp",
        comment: "//",
    },
    Program {
        language: "go",
        source: "package main\n\nimport (\n\t\"bufio\"\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tr := bufio.NewReader(os.Stdin)\n\tvar a, b int64\n\tfor {\n\t\tif _, err := fmt.Fscan(r, &a, &b); err != nil {\n\t\t\treturn\n\t\t}\n\t\tfmt.Println(a + b)\n\t}\n}\n",
        compile: Some("cp -r /opt/optimus/gocache /tmp/gocache && GOCACHE=/tmp/gocache GO111MODULE=off CGO_ENABLED=0 go build -o main main.go"),
        run: "./main",
        file: "main.go",
        comment: "//",
    },
    Program {
        language: "javascript",
        source: "const n = require('fs').readFileSync(0, 'utf8').split(/\\s+/).filter(Boolean).map(Number);\nconst out = [];\nfor (let i = 0; i + 1 < n.length; i += 2) out.push(n[i] + n[i + 1]);\nconsole.log(out.join('\\n'));\n",
        compile: None,
        run: "node main.js",
        file: "main.js",
        comment: "//",
    },
    Program {
        language: "bash",
        source: "while read -r a b; do\n  echo $((a + b))\ndone\n",
        compile: None,
        run: "bash main.sh",
        file: "main.sh",
        comment: "#",
    },
];

pub fn program(language: &str) -> anyhow::Result<&'static Program> {
    PROGRAMS.iter().find(|p| p.language == language).ok_or_else(|| {
        let known: Vec<&str> = PROGRAMS.iter().map(|p| p.language).collect();
        anyhow::anyhow!("no benchmark program for '{language}'; known: {}", known.join(", "))
    })
}

/// `n` A+B tests with their expected outputs.
pub fn tests(n: usize) -> Value {
    Value::Array(
        (0..n as i64)
            .map(|i| json!({ "input": format!("{i} {}\n", i * 7), "expected_output": format!("{}\n", i * 8) }))
            .collect(),
    )
}

/// A job of `n` tests for `language`.
pub fn job(language: &str, n: usize) -> anyhow::Result<Value> {
    let p = program(language)?;
    Ok(json!({ "language": p.language, "source_code": p.source, "test_cases": tests(n) }))
}

/// The same job with a source no compile has seen: a comment naming `nonce`
/// (which no compile cache can have), so that it is compiled.
pub fn fresh_job(language: &str, n: usize, nonce: &str) -> anyhow::Result<Value> {
    let p = program(language)?;
    let source = format!("{}\n{} {nonce}\n", p.source, p.comment);
    Ok(json!({ "language": p.language, "source_code": source, "test_cases": tests(n) }))
}

const CHECK_PY: &str = "import sys\na, b = map(int, open(sys.argv[1]).read().split())\nsys.exit(0 if open(sys.argv[3]).read().split() == [str(a + b)] else 1)\n";
const CHECK_C: &str = "#include <stdio.h>\nint main(int c, char **v) {\n  long long a, b, s;\n  FILE *i = fopen(v[1], \"r\"), *o = fopen(v[3], \"r\");\n  if (fscanf(i, \"%lld %lld\", &a, &b) != 2 || fscanf(o, \"%lld\", &s) != 1) return 1;\n  return s == a + b ? 0 : 1;\n}\n";

/// The Python 10-test job judged each way: (name, job).
pub fn judging() -> Vec<(&'static str, Value)> {
    let base = |extra: Value, expected: bool| {
        let mut j = job("python", 10).expect("python is known");
        if !expected {
            for t in j["test_cases"].as_array_mut().expect("array") {
                t.as_object_mut().expect("object").remove("expected_output");
            }
        }
        for (k, v) in extra.as_object().expect("object") {
            j[k] = v.clone();
        }
        j
    };
    let python = program("python").expect("known").source;
    let c = program("c").expect("known").source;
    vec![
        ("trim (default)", base(json!({}), true)),
        ("submit mode", base(json!({"mode": "submit"}), true)),
        ("tokens", base(json!({"compare": "tokens"}), true)),
        ("checker (python)", base(json!({"checker": {"language": "python", "source_code": CHECK_PY}}), true)),
        ("checker (c)", base(json!({"checker": {"language": "c", "source_code": CHECK_C}}), true)),
        ("solution (python)", base(json!({"solution_code": python}), false)),
        ("solution (c)", base(json!({"solution_code": c, "solution_language": "c"}), false)),
    ]
}
