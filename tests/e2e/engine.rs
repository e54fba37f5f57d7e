//! The container engine going away under a worker: jobs are not failed for it.

use std::time::{Duration, Instant};

use optimus_common::testkit::RedisServer;
use optimus_tests::EngineProxy;
use serde_json::json;

use crate::helpers::{expect, job, stack_configured};

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_outage_fails_no_job_and_burns_no_attempt() {
    let proxy = EngineProxy::start();
    let socket = proxy.path.clone();
    let mut stack = stack_configured(
        RedisServer::start(),
        &["python"],
        |_| {},
        move |c| {
            c.docker_socket = Some(socket.clone());
        },
    )
    .await;
    proxy.cut();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(stack.submit(&job("python", &format!("print({i})"), json!([{ "input": "" }]))).await);
    }
    // The outage lasts a few seconds while the jobs are tried: none may fail.
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(4) {
        for id in &ids {
            let status = stack.get(id).await["status"].as_str().unwrap_or("").to_string();
            assert!(status == "queued" || status == "running", "job {id} is {status} during the outage");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.restore();
    for id in &ids {
        let done = stack.wait(id).await;
        expect(&done, "accepted");
        assert_eq!(done["attempts"], 1, "the outage used an attempt: {done}");
    }
    stack.stop().await;
}
