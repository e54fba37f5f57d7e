//! The compile cache, through the API: an identical submission is not compiled
//! again and says so; a change to any file it compiles from is compiled anew; a
//! damaged entry is compiled anew (never served); a failed compile is never kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use optimus_common::testkit::RedisServer;
use serde_json::{json, Value};

use crate::helpers::{expect, stack_configured};

/// The cache entries in `dir`, once at least `count` are there (a compile's
/// artifact is kept beside its job, not on its path).
async fn entries(dir: &Path, count: usize) -> Vec<PathBuf> {
    let start = Instant::now();
    loop {
        let found: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} of {count} cache entries in {}",
            found.len(),
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn c_job(header: &str, expected: &str) -> Value {
    json!({
        "language": "c",
        // The unused variable makes the compiler print a warning, which a hit repeats.
        "source_code": "#include <stdio.h>\n#include \"answer.h\"\nint main(void) { int unused; long a, b; if (scanf(\"%ld %ld\", &a, &b) != 2) return 1; printf(\"%ld\\n\", ANSWER(a, b)); return 0; }\n",
        "files": [{"name": "answer.h", "content": header}],
        "test_cases": [
            {"input": "2 3", "expected_output": expected},
            {"input": "2 3\n", "expected_output": expected},
        ],
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identical_compile_comes_from_the_cache_and_any_change_compiles_anew() {
    let dir = std::env::temp_dir().join(format!("optimus-e2e-compile-cache-{}", uuid::Uuid::new_v4()));
    let cache = Arc::new(optimus_worker::CompileCache::open(dir.clone(), 64 * 1024 * 1024).unwrap());
    let mut stack = stack_configured(
        RedisServer::start(),
        &["c"],
        |_| {},
        move |config| {
            config.compile_cache = Some(cache.clone());
        },
    )
    .await;
    let sum = c_job("#define ANSWER(a, b) ((a) + (b))\n", "5");

    let first = expect(&stack.run(&sum).await, "accepted");
    assert!(first.get("compile_cached").is_none(), "a first compile was cached: {first}");
    let warning = first["compile_output"].as_str().unwrap().to_string();
    assert!(warning.contains("unused"), "no warning in {warning:?}");
    let kept = entries(&dir, 1).await;
    assert_eq!(kept.len(), 1);

    // The same program again: its build (an executable) comes from the cache.
    let again = expect(&stack.run(&sum).await, "accepted");
    assert_eq!(again["compile_cached"], true, "{again}");
    assert_eq!(again["compile_output"], warning.as_str());

    // Another header is another compile, and its own program runs.
    let product = expect(&stack.run(&c_job("#define ANSWER(a, b) ((a) * (b))\n", "6")).await, "accepted");
    assert!(product.get("compile_cached").is_none(), "a changed file was served from the cache: {product}");
    assert_eq!(entries(&dir, 2).await.len(), 2);

    // A damaged entry is not served: the program compiles again, and is kept again.
    for path in entries(&dir, 2).await {
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        std::fs::write(&path, bytes).unwrap();
    }
    let damaged = expect(&stack.run(&sum).await, "accepted");
    assert!(damaged.get("compile_cached").is_none(), "a damaged entry was served: {damaged}");
    let mended = expect(&stack.run(&sum).await, "accepted");
    assert_eq!(mended["compile_cached"], true, "the entry was not kept again: {mended}");

    // A compile that fails is never kept.
    let broken = json!({"language": "c", "source_code": "int main(void) { return x; }\n", "test_cases": [{"input": "", "expected_output": ""}]});
    for _ in 0..2 {
        let failed = expect(&stack.run(&broken).await, "compilation_error");
        assert!(failed.get("compile_cached").is_none(), "{failed}");
    }
    assert_eq!(entries(&dir, 0).await.len(), 2, "a failed compile was kept");
    stack.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
