//! What a hostile client costs the API, measured from outside: `bodies` sends
//! large bodies at once and reads the API process's peak resident set from
//! `/proc` (so it runs on the API's machine, as setup's stack does).

use std::time::Instant;

use anyhow::{bail, Context};

/// The pid of the process named `optimus-api` (its `comm`), if exactly one runs.
pub fn find_api_pid() -> anyhow::Result<u32> {
    find_process("optimus-api", None).context("pass --api-pid")
}

/// The pid of the one process named `comm` whose command line (or environment,
/// where the language may be given) holds `arg`, if exactly one runs.
pub fn find_process(comm: &str, arg: Option<&str>) -> anyhow::Result<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if !std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|c| c.trim() == comm) {
            continue;
        }
        let holds = |file: &str, arg: &str| {
            std::fs::read(entry.path().join(file)).is_ok_and(|b| {
                b.split(|&c| c == 0).any(|w| w == arg.as_bytes() || w.ends_with(format!("={arg}").as_bytes()))
            })
        };
        if arg.is_none_or(|a| holds("cmdline", a) || holds("environ", a)) {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => bail!("no {comm} process{} on this machine", arg.map(|a| format!(" for {a}")).unwrap_or_default()),
        _ => bail!("several {comm} processes ({found:?})"),
    }
}

/// A field of `/proc/<pid>/status` in MiB.
pub fn status_mib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(kb / 1024.0)
}

/// `{"language":"python","source_code":"x","test_cases":[{},{},…]}` of `len` bytes or so:
/// each three bytes a test.
fn empty_tests(len: usize) -> Vec<u8> {
    let mut body = br#"{"language":"python","source_code":"x","test_cases":["#.to_vec();
    body.reserve(len);
    while body.len() < len {
        body.extend_from_slice(b"{},");
    }
    body.extend_from_slice(b"{}]}");
    body
}

/// Sends `count` bodies of `mib` MiB at once to `POST /jobs`; prints the API's
/// resident set before and its peak during them (the peak is reset first).
pub async fn bodies(api: &str, pid: Option<u32>, count: usize, mib: usize) -> anyhow::Result<()> {
    let pid = match pid {
        Some(pid) => pid,
        None => find_api_pid()?,
    };
    let body = empty_tests(mib * 1024 * 1024 - 64);
    // 5 resets the peak resident set to the current one (proc(5), clear_refs).
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("cannot reset the API's peak RSS")?;
    let before = status_mib(pid, "VmRSS:")?;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let sends = (0..count).map(|_| {
        let (http, body) = (http.clone(), body.clone());
        async move {
            let res =
                http.post(format!("{api}/jobs")).header("content-type", "application/json").body(body).send().await?;
            let status = res.status().as_u16();
            let answer: serde_json::Value = res.json().await.unwrap_or_default();
            anyhow::Ok((status, answer["error"]["code"].as_str().unwrap_or("").to_string()))
        }
    });
    let answers = futures_util::future::join_all(sends).await;
    let took = started.elapsed();
    let peak = status_mib(pid, "VmHWM:")?;
    println!("{count} bodies of {mib} MiB at once ({} tests each), answered in {took:.2?}:", body.len() / 3);
    for answer in answers {
        match answer {
            Ok((status, code)) => println!("  {status} {code}"),
            Err(e) => println!("  error: {e}"),
        }
    }
    println!("API RSS before: {before:.0} MiB; peak during: {peak:.0} MiB; added: {:.0} MiB", peak - before);
    Ok(())
}

/// p50 and p99 of `GET /health`, `requests` one after another on one connection.
async fn health_latency(api: &str, requests: usize) -> anyhow::Result<(f64, f64)> {
    let http = reqwest::Client::new();
    let mut took = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let res = http.get(format!("{api}/health")).send().await?;
        res.bytes().await?;
        took.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}

/// Opens `count` connections that send nothing (from 127.0.0.2 on, `per_address`
/// each, so that the API's cap per peer holds), then times `GET /health` beside
/// them, with the same run before them printed first; then waits out the API's
/// first-byte deadline and counts how many of them it closed.
pub async fn silent(
    api: &str,
    count: usize,
    per_address: usize,
    requests: usize,
    wait_secs: u64,
) -> anyhow::Result<()> {
    let addr: std::net::SocketAddr = tokio::net::lookup_host(api.trim_start_matches("http://"))
        .await?
        .next()
        .context("the API's address does not resolve")?;
    let (bare50, bare99) = health_latency(api, requests).await?;
    println!("GET /health alone: p50 {bare50:.2} ms, p99 {bare99:.2} ms ({requests} requests)");
    let started = Instant::now();
    let mut open = Vec::with_capacity(count);
    let mut failed = 0;
    for i in 0..count {
        let n = 2 + i / per_address.max(1);
        let source = std::net::Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8);
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind((source, 0).into())?;
        match socket.connect(addr).await {
            Ok(s) => open.push(s),
            Err(_) => failed += 1,
        }
    }
    println!("{} silent connections opened in {:.2?} ({failed} failed)", open.len(), started.elapsed());
    let (p50, p99) = health_latency(api, requests).await?;
    println!("GET /health beside them: p50 {p50:.2} ms, p99 {p99:.2} ms");
    tokio::time::sleep(std::time::Duration::from_secs(wait_secs)).await;
    let mut buf = [0u8; 1];
    let closed = open
        .iter()
        .filter(|s| match s.try_read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        })
        .count();
    println!("after {wait_secs} s: {closed} of {} closed by the API", open.len());
    Ok(())
}
