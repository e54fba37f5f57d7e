//! Live results: every job's events as Server-Sent Events, replayed, resumed with
//! Last-Event-ID, followed live to the end; and the list of recent jobs.

use std::time::{Duration, Instant};

use optimus_common::testkit::RedisServer;
use serde_json::{json, Value};

use optimus_tests::{parse_sse as parse, Sse};

use crate::helpers::{job, stack, stack_on, sum_tests, Stack};

/// Reads `GET /jobs/{id}/events` (from after `last`, if given) until the server
/// ends the stream; returns its events.
async fn read_events(stack: &Stack, id: &str, last: Option<&str>) -> Vec<Sse> {
    let mut req = reqwest::Client::new().get(format!("{}/jobs/{id}/events", stack.base));
    if let Some(last) = last {
        req = req.header("Last-Event-ID", last);
    }
    let mut res = req.send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let start = Instant::now();
    while let Some(chunk) =
        tokio::time::timeout(Duration::from_secs(120), res.chunk()).await.expect("stream stalled").unwrap()
    {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        assert!(start.elapsed() < Duration::from_secs(180), "the stream never ended:\n{text}");
    }
    parse(&text)
}

fn kinds(events: &[Sse]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jobs_events_tell_its_life_in_order_and_resume_after_the_last_seen() {
    let mut stack = stack(&["python"]).await;
    let mut five = job(
        "python",
        "import sys\nfor l in sys.stdin:\n    a, b = map(int, l.split())\n    print(a + b)\n",
        sum_tests(5),
    );
    // One wrong expectation: its event must say so as it happens.
    five["test_cases"][3]["expected_output"] = json!("0\n");
    let id = stack.submit(&five).await;
    // Followed live from the moment it was queued.
    let events = read_events(&stack, &id, None).await;
    assert_eq!(
        kinds(&events),
        ["queued", "running", "compiled", "test", "test", "test", "test", "test", "completed"],
        "{events:#?}"
    );
    assert_eq!(events[1].data["attempt"], 1);
    assert_eq!(events[2].data["ok"], true);
    for (i, test) in events[3..8].iter().enumerate() {
        assert_eq!(test.data["index"], i, "{test:?}");
        assert_eq!(test.data["test_id"], i + 1);
        assert_eq!(test.data["attempt"], 1);
        assert_eq!(test.data["verdict"], if i == 3 { "wrong_answer" } else { "accepted" }, "{test:?}");
    }
    let end = &events[8].data;
    assert_eq!((end["status"].as_str(), end["summary"]["passed_tests"].as_u64()), (Some("completed"), Some(4)));
    assert_eq!(end["summary"]["overall_status"], "wrong_answer");
    // The same test events as the stored result's.
    let stored = stack.get(&id).await;
    assert_eq!(stored["result"]["test_results"][3]["verdict"], "wrong_answer");

    // A finished job replays everything and closes.
    let again = read_events(&stack, &id, None).await;
    assert_eq!(kinds(&again), kinds(&events));
    // A client that saw up to the second test resumes after it, and misses nothing.
    let resumed = read_events(&stack, &id, Some(&events[4].id)).await;
    assert_eq!(kinds(&resumed), ["test", "test", "test", "completed"]);
    assert_eq!(resumed[0].id, events[5].id);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_jobs_stream_ends_with_cancelled() {
    let mut stack = stack(&["python"]).await;
    let mut sleeper = job("python", "import time\ntime.sleep(30)\n", json!([{ "input": "" }]));
    sleeper["timeout_ms"] = json!(20_000);
    let id = stack.submit(&sleeper).await;
    stack.wait_for(&id, |s| s == "running").await;
    let reader = {
        let base = stack.base.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let res = reqwest::get(format!("{base}/jobs/{id}/events")).await.unwrap();
            res.text().await.unwrap()
        })
    };
    let (status, _) = stack.cancel(&id).await;
    assert_eq!(status, 202);
    let text = tokio::time::timeout(Duration::from_secs(60), reader).await.expect("the stream did not end").unwrap();
    let events = parse(&text);
    assert_eq!(kinds(&events).first(), Some(&"queued"));
    assert_eq!(kinds(&events).last(), Some(&"cancelled"), "{events:#?}");
    assert!(!kinds(&events).contains(&"completed"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_subscribers_share_one_redis_connection_and_the_list_shows_recent_jobs() {
    use redis::AsyncCommands;
    // No worker: the jobs stay queued and their streams stay open.
    let redis = RedisServer::start();
    let url = redis.url();
    let mut stack = stack_on(redis, &[]).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let lang = if i % 2 == 0 { "python" } else { "c" };
        ids.push(stack.submit(&job(lang, "print(1)", json!([{ "input": "" }]))).await);
    }
    let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let clients = |info: String| -> u64 {
        info.lines().find_map(|l| l.strip_prefix("connected_clients:")).unwrap().trim().parse().unwrap()
    };
    let before = clients(redis::cmd("INFO").arg("clients").query_async(&mut conn).await.unwrap());
    // A thousand subscribers over the twenty jobs, all idle (more with
    // OPTIMUS_TEST_SUBSCRIBERS, for the README's figure).
    let subscribers: usize =
        std::env::var("OPTIMUS_TEST_SUBSCRIBERS").ok().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut open = Vec::new();
    for n in 0..subscribers {
        let res = http.get(format!("{}/jobs/{}/events", stack.base, ids[n % ids.len()])).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        open.push(res);
    }
    // Each has its replay (the `queued` event).
    for res in open.iter_mut().take(20) {
        let chunk = res.chunk().await.unwrap().unwrap();
        assert!(std::str::from_utf8(&chunk).unwrap().contains("event: queued"));
    }
    let during = clients(redis::cmd("INFO").arg("clients").query_async(&mut conn).await.unwrap());
    println!("{subscribers} open event streams: Redis clients {before} before, {during} during");
    assert!(during <= before + 2, "subscribers hold Redis connections: {before} -> {during}");
    drop(open);

    // The list: newest first, filtered, bounded.
    let list: Value = reqwest::get(format!("{}/jobs?limit=5", stack.base)).await.unwrap().json().await.unwrap();
    let listed: Vec<&str> = list["jobs"].as_array().unwrap().iter().map(|j| j["job_id"].as_str().unwrap()).collect();
    // Newest by creation time; jobs created in the same millisecond come in
    // descending id order (the index's score is the millisecond).
    let mut created = Vec::new();
    for id in &ids {
        let job: Value = reqwest::get(format!("{}/jobs/{id}", stack.base)).await.unwrap().json().await.unwrap();
        let at: chrono::DateTime<chrono::Utc> = job["created_at"].as_str().unwrap().parse().unwrap();
        created.push((at.timestamp_millis(), id.as_str()));
    }
    created.sort_by(|a, b| b.cmp(a));
    let newest: Vec<&str> = created.iter().take(5).map(|(_, id)| *id).collect();
    assert_eq!(listed, newest);
    assert!(list["jobs"][0].get("spec").is_none() && list["jobs"][0]["status"] == "queued", "{list}");
    let c_only: Value = reqwest::get(format!("{}/jobs?language=c&status=queued&limit=100", stack.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c_only["jobs"].as_array().unwrap().len(), 10);
    assert!(c_only["jobs"].as_array().unwrap().iter().all(|j| j["language"] == "c"));
    let res = reqwest::get(format!("{}/jobs?status=done", stack.base)).await.unwrap();
    assert_eq!(res.status().as_u16(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_status");
    let res = reqwest::get(format!("{}/jobs/{}/events", stack.base, uuid::Uuid::new_v4())).await.unwrap();
    assert_eq!(res.status().as_u16(), 404);
    // A forged Last-Event-ID never reaches Redis (nor the reader all streams share).
    for forged in ["(0-0", "abc", "1-2-3", "99999999999999999999-0"] {
        let res = reqwest::Client::new()
            .get(format!("{}/jobs/{}/events", stack.base, ids[0]))
            .header("Last-Event-ID", forged)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 422, "{forged}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_last_event_id");
    }
    let _: () = conn.del("nothing").await.unwrap();
    stack.stop().await;
}
