//! What the API refuses at its edge: anonymous callers when it listens beyond
//! loopback, clients too slow to send a request, callbacks through a proxy.

use std::time::Duration;

use optimus_common::testkit::RedisServer;
use optimus_tests::System;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `POST /jobs` with no key to the API whose log is `log`; the status.
async fn anonymous_submit(system: &System, log: &str) -> u16 {
    let port = optimus_tests::listening_addr(log).rsplit(':').next().unwrap().to_string();
    let res = system.http.post(format!("http://127.0.0.1:{port}/jobs")).json(&crate::sum_job(1)).send().await.unwrap();
    res.status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_loopback_keys_are_required_unless_configured_otherwise() {
    let mut system = System::start(RedisServer::start(), &[], &[]);
    // No key exists, and the API listens on every interface: it starts, and
    // refuses every anonymous request, saying why in its log.
    let mut open = system.another_api("api-open", &[("API_HOST", "0.0.0.0")]);
    let log = open.wait_for_log("optimus-api listening", Duration::from_secs(60));
    assert!(log.contains("no API key exists"), "{log}");
    assert_eq!(anonymous_submit(&system, &log).await, 401);
    assert!(open.terminate());
    // Said explicitly, it is anonymous.
    let mut allowed = system.another_api("api-anonymous", &[("API_HOST", "0.0.0.0"), ("OPTIMUS_AUTH", "anonymous")]);
    let log = allowed.wait_for_log("optimus-api listening", Duration::from_secs(60));
    assert_eq!(anonymous_submit(&system, &log).await, 202);
    assert!(allowed.terminate());
    // A value that means nothing stops it at start, naming the variable.
    let mut wrong = system.another_api("api-wrong", &[("OPTIMUS_AUTH", "maybe")]);
    let (status, log) = wrong.wait_exit(Duration::from_secs(60));
    assert!(!status.success() && log.contains("OPTIMUS_AUTH"), "{log}");
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
    conn.write_all(
        b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("request_timeout"), "{answer}");
    slow.stop();
    system.stop();
}

/// Accepts connections on `listener`; sends the first request's method on `seen`
/// and answers 200.
async fn record_requests(listener: tokio::net::TcpListener, seen: tokio::sync::mpsc::UnboundedSender<String>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else { return };
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let _ = seen.send(head.lines().next().unwrap_or("").to_string());
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_go_to_the_checked_address_and_never_through_a_proxy() {
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let callback_url = format!("http://{}/done", receiver.local_addr().unwrap());
    let (proxied_tx, mut proxied) = tokio::sync::mpsc::unbounded_channel();
    let (received_tx, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(record_requests(proxy, proxied_tx));
    tokio::spawn(record_requests(receiver, received_tx));
    // The environment names a proxy for every scheme; a proxy resolves the callback's
    // host itself, so the address checked would not be the one reached.
    let env = [
        ("HTTP_PROXY", proxy_url.as_str()),
        ("http_proxy", proxy_url.as_str()),
        ("HTTPS_PROXY", proxy_url.as_str()),
        ("ALL_PROXY", proxy_url.as_str()),
        ("NO_PROXY", ""),
        ("OPTIMUS_CALLBACK_TARGETS", "any"),
        ("OPTIMUS_CALLBACK_PORTS", "any"),
    ];
    let mut system = System::start(RedisServer::start(), &[], &env);
    let res = system
        .http
        .post(system.url("/judge0/submissions"))
        .json(&serde_json::json!({"source_code": "print(1)", "language_id": 71, "callback_url": callback_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let token = res.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    // No worker runs: cancelling ends the job, and its callback is owed.
    let res = system.http.delete(system.url(&format!("/jobs/{token}"))).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let first = tokio::time::timeout(Duration::from_secs(30), received.recv()).await;
    assert!(
        matches!(&first, Ok(Some(line)) if line.starts_with("PUT /done")),
        "the receiver got {first:?}; the proxy got {:?}\n{}",
        proxied.try_recv(),
        system.all_logs()
    );
    assert!(proxied.try_recv().is_err(), "the callback went through the proxy");
    system.stop();
}
