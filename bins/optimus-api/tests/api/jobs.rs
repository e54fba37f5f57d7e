use optimus_common::keys;
use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{python_job, spawn_app, spawn_app_with};

#[tokio::test]
async fn submit_then_get_shows_the_queued_job() {
    let app = spawn_app().await;
    let (status, body) = app.post_job(&python_job()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "queued");
    let id = body["job_id"].as_str().unwrap();

    let (status, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(job["job_id"], id);
    assert_eq!(job["language"], "python");
    assert_eq!(job["status"], "queued");
    assert!(job["created_at"].is_string());
    assert!(job["started_at"].is_null() && job["finished_at"].is_null() && job["result"].is_null());
    assert_eq!(app.store.queue_len("python").await.unwrap(), 1);
}

#[tokio::test]
async fn defaults_come_from_the_language() {
    let app = spawn_app().await;
    let (_, body) = app.post_job(&json!({"language": "java", "source_code": "class Main {}"})).await;
    let id = body["job_id"].as_str().unwrap().parse().unwrap();
    let client = redis::Client::open(app.redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let spec: String = conn.hget(keys::job(id), "spec").await.unwrap();
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    assert_eq!(spec["timeout_ms"], 5000);
    assert_eq!(spec["memory_limit_mb"], 512);
    // No tests: the program runs once with empty input.
    assert_eq!(spec["test_cases"], json!([{"id": 1, "input": "", "expected_output": null, "weight": 1}]));
}

#[tokio::test]
async fn cancelling_a_queued_job_removes_it_and_is_idempotent() {
    let app = spawn_app().await;
    let (_, body) = app.post_job(&python_job()).await;
    let id = body["job_id"].as_str().unwrap();

    let (status, body) = app.delete(&format!("/jobs/{id}")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")), "{body}");
    assert_eq!(app.store.queue_len("python").await.unwrap(), 0);
    let (_, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!(job["status"], "cancelled");
    assert!(job["finished_at"].is_string());

    let (status, again) = app.delete(&format!("/jobs/{id}")).await;
    assert_eq!((status, again["status"].as_str()), (200, Some("cancelled")));
    assert!(again["message"].as_str().unwrap().contains("already"));
}

#[tokio::test]
async fn unknown_and_malformed_job_ids() {
    let app = spawn_app().await;
    let (status, body) = app.get("/jobs/0b7c8f7e-1d7b-4a43-9a7e-3c5e2f6b9d10").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("job_not_found")));
    let (status, body) = app.delete("/jobs/0b7c8f7e-1d7b-4a43-9a7e-3c5e2f6b9d10").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app.get("/jobs/not-a-uuid").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_job_id")));
    let (status, body) = app.get("/nothing/here").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("no_route")));
}

#[tokio::test]
async fn languages_lists_every_configured_language_with_defaults() {
    let app = spawn_app().await;
    let (status, body) = app.get("/languages").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["languages"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["python", "java", "rust", "c", "cpp", "go", "javascript", "bash"]);
    assert_eq!(body["languages"][1]["defaults"]["memory_limit_mb"], 512);
}

#[tokio::test]
async fn a_full_queue_refuses_with_503_and_retry_after() {
    let app = spawn_app_with(|_, registry| {
        let mut python = registry.remove("python").unwrap();
        python.max_queue_depth = 2;
        registry.add(python).unwrap();
    })
    .await;
    for _ in 0..2 {
        assert_eq!(app.post_job(&python_job()).await.0, 202);
    }
    let res = app.http.post(format!("{}/jobs", app.base)).json(&python_job()).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 503);
    assert!(res.headers().get("retry-after").is_some());
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "queue_full");
    assert_eq!(app.store.queue_len("python").await.unwrap(), 2);
}

#[tokio::test]
async fn health_says_which_dependency_is_down() {
    let mut app = spawn_app().await;
    // No worker yet: Redis is fine, the languages have no one to run their jobs.
    let (status, body) = app.get("/health").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("degraded")), "{body}");
    assert_eq!(body["dependencies"]["redis"]["status"], "ok", "{body}");
    assert_eq!(body["dependencies"]["workers"]["python"]["status"], "no_worker", "{body}");
    let registry = optimus_common::LanguageRegistry::load(&app.redis.settings().languages_file).unwrap();
    for lang in registry.languages() {
        app.store.register_worker(&lang.name, &format!("{}-w", lang.name)).await.unwrap();
    }
    let (status, body) = app.get("/health").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")), "{body}");
    assert_eq!(body["dependencies"]["workers"]["python"]["workers"], 1, "{body}");

    app.redis.stop();
    let (status, body) = app.get("/health").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["dependencies"]["redis"]["status"], "unreachable", "{body}");
    assert_eq!(body["error"]["code"], "redis_unreachable");
    // Submissions are refused with a JSON error and a time to come back.
    let res = app.http.post(format!("{}/jobs", app.base)).json(&python_job()).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 503);
    assert!(res.headers().get("retry-after").is_some());
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");

    app.redis.restart();
    let (status, _) = app.get("/health").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn new_jobs_are_refused_before_redis_runs_out_of_memory() {
    use redis::AsyncCommands;
    let app = spawn_app().await;
    assert_eq!(app.post_job(&python_job()).await.0, 202);
    // A maxmemory just above what Redis uses now: past 90 % of it, new jobs wait
    // (and a write that Redis itself refuses for memory is the same answer).
    let mut conn = redis::Client::open(app.redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let used = app.store.memory().await.unwrap().used;
    let _: () =
        redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(used + used / 20).query_async(&mut conn).await.unwrap();
    let _: Option<String> = conn.get("anything").await.unwrap();
    // The API's reading is at most a second old; poll until it has seen the new limit.
    let start = std::time::Instant::now();
    let body = loop {
        let res = app.http.post(format!("{}/jobs", app.base)).json(&python_job()).send().await.unwrap();
        if res.status().as_u16() == 503 {
            assert!(res.headers().get("retry-after").is_some());
            break res.json::<serde_json::Value>().await.unwrap();
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "never refused");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(body["error"]["code"], "storage_full", "{body}");
    let (_, health) = app.get("/health").await;
    assert_eq!(health["dependencies"]["redis"]["status"], "nearly_full", "{health}");
}

#[tokio::test]
async fn an_oversized_body_is_refused_on_its_announced_length() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // A gigabyte announced, not a byte of it sent: the answer comes anyway.
    conn.write_all(
        b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
}

#[tokio::test]
async fn accepted_jobs_survive_a_redis_restart() {
    let mut app = spawn_app().await;
    let (_, body) = app.post_job(&python_job()).await;
    let id = body["job_id"].as_str().unwrap().to_string();
    app.redis.restart();
    let (status, job) = app.get(&format!("/jobs/{id}")).await;
    assert_eq!((status, job["status"].as_str()), (200, Some("queued")));
    assert_eq!(app.store.queue_len("python").await.unwrap(), 1);
}

/// A poll reads the fields it answers with, never the whole record: the spec in
/// it can be as large as a request body, and clients poll often.
#[tokio::test]
async fn polling_never_reads_the_spec() {
    let app = crate::helpers::spawn_app().await;
    let mut big = crate::helpers::python_job();
    big["source_code"] = serde_json::json!(format!("# {}\nprint(1)", "x".repeat(60_000)));
    let (_, body) = app.post_job(&big).await;
    let id = body["job_id"].as_str().unwrap().to_string();
    let client = redis::Client::open(app.redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn).await.unwrap();
    for _ in 0..5 {
        let (status, job) = app.get(&format!("/jobs/{id}")).await;
        assert_eq!((status, job["status"].as_str()), (200, Some("queued")));
    }
    let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
    assert!(stats.contains("cmdstat_hmget:calls=5"), "{stats}");
    assert!(!stats.contains("cmdstat_hgetall") && !stats.contains("cmdstat_hget:"), "{stats}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_with_bounded_labels() {
    let app = spawn_app().await;
    let odd = reqwest::Method::from_bytes(b"FOOBAR").unwrap();
    for path in ["/jobs", "/nope/123", "/jobs/6b1c2f44-0000-4000-8000-000000000000"] {
        let _ = app.http.request(odd.clone(), format!("{}{path}", app.base)).send().await.unwrap();
        let _ = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
    }
    let text = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(!text.contains("FOOBAR") && !text.contains("/nope/123") && !text.contains("6b1c2f44"), "{text}");
    assert!(text.contains(r#"optimus_http_requests_total{method="other",route="/jobs",status="405"} 1"#), "{text}");
    assert!(text.contains(r#"optimus_http_requests_total{method="GET",route="unmatched",status="404"} 1"#), "{text}");
    assert!(text.contains(r#"optimus_http_requests_total{method="GET",route="/jobs/{id}",status="404"} 1"#), "{text}");
}

/// Calls of `command` Redis has served so far.
async fn calls(conn: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(conn).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// `GET /jobs` reads the caller's own index: another key's thousands of jobs cost
/// a key with three nothing, and pages (with a cursor) walk a long list exactly once.
#[tokio::test]
async fn a_job_list_costs_the_callers_own_jobs_and_pages_through_them() {
    let app = crate::helpers::spawn_app_configured(
        |_, registry| {
            let mut python = registry.remove("python").unwrap();
            python.max_queue_depth = 5000;
            registry.add(python).unwrap();
        },
        |api| api.auth = optimus_api::config::Auth::Required,
    )
    .await;
    let (_, alice) = app.store.add_key("alice", 0, optimus_common::Quota::NONE).await.unwrap();
    let (bob_key, bob) = app.store.add_key("bob", 0, optimus_common::Quota::NONE).await.unwrap();
    let submit = |key: &str| {
        let req = app.http.post(format!("{}/jobs", app.base)).bearer_auth(key).json(&python_job());
        async move {
            let body: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
            body["job_id"].as_str().unwrap().to_string()
        }
    };
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(submit(&alice).await);
    }
    let mut bobs = Vec::new();
    for _ in 0..150 {
        bobs.extend(futures_util::future::join_all((0..16).map(|_| submit(&bob))).await);
    }
    let list = |key: &str, query: &str| {
        let req = app.http.get(format!("{}/jobs?{query}", app.base)).bearer_auth(key);
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<serde_json::Value>().await.unwrap())
        }
    };
    let client = redis::Client::open(app.redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();

    // Alice's list reads her three records, not bob's 2,400.
    let before = calls(&mut conn, "hmget").await;
    let (status, page) = list(&alice, "limit=100").await;
    let read = calls(&mut conn, "hmget").await - before;
    let ids: Vec<&str> = page["jobs"].as_array().unwrap().iter().map(|j| j["job_id"].as_str().unwrap()).collect();
    assert_eq!((status, ids.len()), (200, 3), "{page}");
    assert!(mine.iter().all(|id| ids.contains(&id.as_str())));
    assert!(page["next"].is_null(), "{page}");
    assert!(read <= 3, "alice's list read {read} records");

    // A filter that matches nothing looks at a bounded part of bob's index per
    // page, and says where to go on.
    let before = calls(&mut conn, "hmget").await;
    let (_, page) = list(&bob, "status=running").await;
    let read = calls(&mut conn, "hmget").await - before;
    assert_eq!(page["jobs"], json!([]), "{page}");
    assert!(page["next"].is_string(), "{page}");
    assert!(read <= optimus_common::store::LIST_SCAN_MAX as u64, "{read} records read for one page");

    // Pages of 100 give every one of bob's jobs once, newest first, then stop.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=100&cursor={c}"),
            None => "limit=100".to_string(),
        };
        let (status, page) = list(&bob, &query).await;
        assert_eq!(status, 200, "{page}");
        let jobs = page["jobs"].as_array().unwrap();
        seen.extend(
            jobs.iter()
                .map(|j| (j["created_at"].as_str().unwrap().to_string(), j["job_id"].as_str().unwrap().to_string())),
        );
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(seen.len() <= bobs.len(), "the pages never end");
    }
    let mut ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "not newest first");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), bobs.len(), "{} distinct of {} listed", ids.len(), seen.len());
    assert_eq!(seen.len(), bobs.len());

    // An expired job's entry goes from the index when a list meets it.
    let newest = &seen[0].1;
    let _: () = conn.del(keys::job(newest.parse().unwrap())).await.unwrap();
    let (_, page) = list(&bob, "limit=100").await;
    assert!(page["jobs"].as_array().unwrap().iter().all(|j| j["job_id"] != newest.as_str()), "{newest} listed");
    let left: usize = conn.zcard(keys::recent_jobs(&bob_key.id)).await.unwrap();
    assert_eq!(left, bobs.len() - 1, "the expired entry is still indexed");

    let (status, body) = list(&bob, "cursor=yesterday").await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid_cursor")), "{body}");
}

/// A quota bounds what Redis really holds for the key, allocator rounding
/// included: jobs of 1 MiB and a few bytes take 1.25 MiB each, and counting
/// their length let a key hold a quarter past its quota.
#[tokio::test]
async fn a_key_at_its_quota_holds_no_more_of_redis_than_the_quota() {
    let app = crate::helpers::spawn_app().await;
    let quota = 32 * 1024 * 1024;
    let (_, key) =
        app.store.add_key("big", 0, optimus_common::Quota { max_active: 0, max_bytes: quota }).await.unwrap();
    let job = json!({"language": "python", "source_code": "print(1)", "test_cases": [{"input": "x".repeat(1 << 20)}]});
    // What Redis holds in data: its memory less the clients' buffers (a 1 MiB
    // command leaves the API connection's query buffer grown for a while) and
    // the append-only file's buffer (the last writes, until they reach the file).
    let held = || async {
        let mut conn = redis::Client::open(app.redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let info: String = redis::cmd("INFO").arg("memory").query_async(&mut conn).await.unwrap();
        let field = |name: &str| -> i64 {
            info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok()).unwrap()
        };
        field("used_memory") - field("mem_clients_normal") - field("mem_aof_buffer")
    };
    let before = held().await;
    let mut accepted = 0;
    loop {
        let res = app.http.post(format!("{}/jobs", app.base)).bearer_auth(&key).json(&job).send().await.unwrap();
        if res.status().as_u16() != 202 {
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "over_quota", "{body}");
            break;
        }
        accepted += 1;
        assert!(accepted < 64, "a 32 MiB quota took {accepted} jobs of 1 MiB");
    }
    let grown = held().await - before;
    println!("{accepted} jobs of 1 MiB hold {grown} bytes: {} a job", grown / accepted);
    assert!(grown <= quota as i64, "{accepted} jobs took Redis {grown} bytes past a quota of {quota}");
    assert!(accepted >= 20, "only {accepted} jobs of 1.25 MiB fit in 32 MiB");
}

/// A key's byte quota and the anonymous callers' one: past it 429 `over_quota`
/// (with when room comes back), a job larger than all of it 413 `job_over_quota`;
/// each says which limit and how to raise it.
#[tokio::test]
async fn past_a_quota_the_answer_says_which_and_how_to_raise_it() {
    let app = crate::helpers::spawn_app_api(|api| {
        api.anonymous_quota = optimus_common::Quota { max_active: 0, max_bytes: 256 * 1024 }
    })
    .await;
    let (_, key) =
        app.store.add_key("small", 0, optimus_common::Quota { max_active: 0, max_bytes: 128 * 1024 }).await.unwrap();
    let job = |kib: usize| json!({"language": "python", "source_code": "print(1)", "test_cases": [{"input": "x".repeat(kib * 1024)}]});
    let post = |body: serde_json::Value, key: Option<String>| {
        let mut req = app.http.post(format!("{}/jobs", app.base)).json(&body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        async move {
            let res = req.send().await.unwrap();
            let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            (res.status().as_u16(), retry, res.json::<serde_json::Value>().await.unwrap())
        }
    };
    let mut accepted = 0;
    let (status, retry, body) = loop {
        let (status, retry, body) = post(job(30), Some(key.clone())).await;
        if status != 202 {
            break (status, retry, body);
        }
        accepted += 1;
        assert!(accepted < 10, "a 128 KiB quota took {accepted} jobs of 30 KiB");
    };
    // 30 KiB and the job's other bytes take 32 KiB of the allocator, and 1 KiB more.
    assert_eq!(accepted, 3, "three of 30 KiB fit in 128 KiB");
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("over_quota")), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("131072 bytes") && message.contains("keys add --max-bytes"), "{message}");
    assert!(retry.is_some(), "no Retry-After");
    let (status, _, body) = post(job(200), Some(key)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("job_over_quota")), "{body}");

    // Anonymous callers share theirs.
    for _ in 0..12 {
        let (status, _, body) = post(job(30), None).await;
        if status != 202 {
            assert_eq!((status, body["error"]["code"].as_str()), (429, Some("over_quota")), "{body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("anonymous") && message.contains("OPTIMUS_ANONYMOUS_MAX_BYTES"), "{message}");
            return;
        }
    }
    panic!("twelve anonymous jobs of 30 KiB passed a 256 KiB quota");
}
