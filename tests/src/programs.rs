//! One program per verdict in each shipped language, for every test that needs a
//! language's accepted, wrong, crashing, spinning, memory-hungry or flooding program.

/// A language's programs, each written to reach one verdict.
pub struct Programs {
    pub lang: &'static str,
    pub sum: &'static str,
    pub wrong: &'static str,
    /// A source that does not compile, and the `file:line` its error must name.
    pub broken: Option<(&'static str, &'static str)>,
    pub crash: &'static str,
    pub spin: &'static str,
    pub hog: &'static str,
    pub flood: &'static str,
    pub echo: &'static str,
}

pub const PYTHON: Programs = Programs {
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

pub const JAVA: Programs = Programs {
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

pub const RUST: Programs = Programs {
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

pub const C: Programs = Programs {
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

pub const CPP: Programs = Programs {
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

pub const GO: Programs = Programs {
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

pub const JAVASCRIPT: Programs = Programs {
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

pub const BASH: Programs = Programs {
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
