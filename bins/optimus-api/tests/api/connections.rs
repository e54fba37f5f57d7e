//! What a client's connections may hold: each test opens raw sockets and watches
//! the API close them.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::spawn_app_api;

/// Reads until the API closes the connection; how long that took, or `None` if
/// it was still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(within.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// A connection from `source` (any 127.x.y.z is this machine).
async fn connect_from(source: &str, addr: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr.parse().unwrap()).await.unwrap()
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_first_byte_deadline() {
    let app = spawn_app_api(|api| api.connections.first_byte = Duration::from_secs(1)).await;
    let mut silent = TcpStream::connect(app.addr()).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(10)).await;
    assert!(took.is_some_and(|t| t >= Duration::from_millis(900)), "a silent connection: {took:?}");
}

#[tokio::test]
async fn an_idle_h2c_connection_is_closed() {
    let app = spawn_app_api(|api| api.connections.idle = Duration::from_secs(2)).await;
    let mut h2 = TcpStream::connect(app.addr()).await.unwrap();
    // HTTP/2 with prior knowledge: the preface and an empty SETTINGS frame, then nothing.
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    let took = closed_within(&mut h2, Duration::from_secs(15)).await;
    assert!(took.is_some_and(|t| t >= Duration::from_millis(1900)), "an idle h2c connection: {took:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_and_a_busy_one_is_not() {
    let app = spawn_app_api(|api| api.connections.idle = Duration::from_secs(2)).await;
    let mut conn = TcpStream::connect(app.addr()).await.unwrap();
    // Requests every half second keep it open past the idle deadline.
    for _ in 0..8 {
        conn.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 4096];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let took = closed_within(&mut conn, Duration::from_secs(10)).await;
    assert!(took.is_some_and(|t| t >= Duration::from_millis(1400)), "then idle: {took:?}");
}

#[tokio::test]
async fn connections_past_the_cap_of_one_peer_are_closed_and_others_are_served() {
    let app = spawn_app_api(|api| api.connections.max_per_peer = 2).await;
    let _held = [connect_from("127.0.0.1", app.addr()).await, connect_from("127.0.0.1", app.addr()).await];
    let mut third = connect_from("127.0.0.1", app.addr()).await;
    let took = closed_within(&mut third, Duration::from_secs(5)).await;
    assert!(took.is_some_and(|t| t < Duration::from_secs(1)), "a third from one address: {took:?}");
    // Another address is served.
    let mut other = connect_from("127.0.0.2", app.addr()).await;
    other.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    other.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
}

/// A gauge of this API process's, read from `/metrics`.
async fn gauge(app: &crate::helpers::TestApp, name: &str) -> i64 {
    let text = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' ')).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Waits (a bounded while) until `name` reads `want`.
async fn until_gauge(app: &crate::helpers::TestApp, name: &str, want: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = gauge(app, name).await;
        if got == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_that_leaves_a_quiet_jobs_stream_frees_it_at_once() {
    let app = spawn_app_api(|api| api.max_streams_per_key = 2).await;
    // No worker: the job stays queued, and its stream quiet after its first event.
    let (status, job) = app.post_job(&crate::helpers::python_job()).await;
    assert_eq!(status, 202);
    let url = format!("{}/jobs/{}/events", app.base, job["job_id"].as_str().unwrap());
    let open = || async {
        let mut res = app.http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let first = res.chunk().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&first).contains("event: queued"), "{first:?}");
        res
    };
    let (a, b) = (open().await, open().await);
    assert_eq!(until_gauge(&app, "optimus_api_event_subscribers", 2).await, 2);
    // A third of one key's streams is refused while two are open.
    let third = app.http.get(&url).send().await.unwrap();
    assert_eq!(third.status(), 429);
    let answer: serde_json::Value = third.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "too_many_streams", "{answer}");

    // The clients leave: their streams, slots and subscriptions go, though the job says nothing.
    drop((a, b));
    assert_eq!(until_gauge(&app, "optimus_api_event_streams", 0).await, 0);
    assert_eq!(until_gauge(&app, "optimus_api_event_subscribers", 0).await, 0);
    drop(open().await);
}
