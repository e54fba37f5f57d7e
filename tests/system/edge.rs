//! What the API refuses at its edge: listening to the world with no key, and
//! clients too slow to send a request.

use std::time::Duration;

use optimus_common::testkit::RedisServer;
use optimus_tests::System;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn the_api_will_not_listen_beyond_loopback_without_a_key() {
    let mut system = System::start(RedisServer::start(), &[], &[]);
    let mut open = system.another_api("api-open", &[("API_HOST", "0.0.0.0")]);
    let (status, log) = open.wait_exit(Duration::from_secs(60));
    assert!(!status.success());
    assert!(log.contains("refusing to listen on 0.0.0.0") && log.contains("OPTIMUS_ALLOW_ANONYMOUS"), "{log}");
    // Said explicitly, it starts.
    let mut allowed = system.another_api("api-allowed", &[("API_HOST", "0.0.0.0"), ("OPTIMUS_ALLOW_ANONYMOUS", "1")]);
    allowed.wait_for_log("optimus-api listening", Duration::from_secs(60));
    assert!(allowed.terminate());
    // With a key, no flag is needed.
    let (ok, _, err) = system.cli(&["keys", "add", "--name", "ops"]);
    assert!(ok, "{err}");
    let mut keyed = system.another_api("api-keyed", &[("API_HOST", "0.0.0.0")]);
    keyed.wait_for_log("optimus-api listening", Duration::from_secs(60));
    assert!(keyed.terminate());
    system.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let mut system = System::start(RedisServer::start(), &[], &[("OPTIMUS_HEADER_TIMEOUT_SECS", "1")]);
    let addr = system.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // The server closes the connection (perhaps after a 408); it does not wait forever.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the half-sent request held its connection for 20 s");
    // A client that sends its body too slowly gets 408 once the request timeout passes.
    let mut slow = System::start(RedisServer::start(), &[], &[("OPTIMUS_REQUEST_TIMEOUT_SECS", "1")]);
    let addr = slow.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("request_timeout"), "{answer}");
    slow.stop();
    system.stop();
}
