//! The container engine going away under a worker: jobs are not failed for it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use optimus_common::testkit::RedisServer;
use serde_json::json;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::helpers::{expect, job, stack_configured};

/// A Unix socket that forwards to the real engine while it is up; cut, it
/// refuses new connections and drops the open ones, as a dead engine would.
struct EngineProxy {
    path: PathBuf,
    up: Arc<Mutex<Option<CancellationToken>>>,
}

impl EngineProxy {
    fn start() -> Self {
        let engine = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
        let dir = std::env::temp_dir().join(format!("optimus-engine-proxy-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("docker.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let up = Arc::new(Mutex::new(Some(CancellationToken::new())));
        let state = up.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let Some(cut) = state.lock().unwrap().clone() else { continue };
                let engine = engine.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = UnixStream::connect(&engine).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.cancelled() => {}
                    }
                });
            }
        });
        EngineProxy { path, up }
    }

    fn cut(&self) {
        if let Some(token) = self.up.lock().unwrap().take() {
            token.cancel();
        }
    }

    fn restore(&self) {
        self.up.lock().unwrap().get_or_insert_with(CancellationToken::new);
    }
}

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
