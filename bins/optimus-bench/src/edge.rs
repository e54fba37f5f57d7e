//! What a hostile client costs the API, measured from outside: `bodies` sends
//! large bodies at once and reads the API process's peak resident set from
//! `/proc` (so it runs on the API's machine, as setup's stack does).

use std::time::Instant;

use anyhow::{bail, Context};

/// The pid of the process named `optimus-api` (its `comm`), if exactly one runs.
pub fn find_api_pid() -> anyhow::Result<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|c| c.trim() == "optimus-api") {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => bail!("no optimus-api process on this machine; pass --api-pid"),
        _ => bail!("several optimus-api processes ({found:?}); pass --api-pid"),
    }
}

/// A field of `/proc/<pid>/status` in MiB.
fn status_mib(pid: u32, field: &str) -> anyhow::Result<f64> {
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
