//! What the whole-stack tests share. The `system` tests run Optimus as its users
//! do: the built `optimus-api`, `optimus-worker` and `optimus-cli` binaries as
//! processes, on a private `redis-server` with an append-only file, on the real
//! Docker engine and language images. Each process's log goes to a file the test
//! reads (and prints when it fails).

pub mod browser;
pub mod programs;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use optimus_common::testkit::RedisServer;
use serde_json::Value;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

/// The directory the workspace's binaries are built into (this test's profile).
fn target_dir() -> PathBuf {
    // .../target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf()
}

/// The path of a workspace binary, built first if this run has not built it yet
/// (`cargo test --workspace` has; `cargo test -p optimus-tests` alone has not).
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let dir = target_dir();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "-q",
            "-p",
            "optimus-api",
            "-p",
            "optimus-worker",
            "-p",
            "optimus-cli",
            "-p",
            "optimus-kafka",
        ]);
        if dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// The repository's language registry.
pub fn languages_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/languages.json")
}

/// The repository's registry with one more language, `ghost`, whose image was
/// never built: a job whose checker is in it fails in the sandbox every time,
/// through no fault of its program. The directory holds the file; keep it.
pub fn registry_with_ghost() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a directory");
    let registry = dir.path().join("languages.json");
    let mut languages: Value =
        serde_json::from_str(&std::fs::read_to_string(languages_file()).expect("the registry")).expect("JSON");
    let mut ghost = languages["languages"].as_array().unwrap().iter().find(|l| l["name"] == "python").unwrap().clone();
    ghost["name"] = Value::from("ghost");
    ghost["image"] = Value::from("optimus-ghost-never-built:latest");
    // Aliases and Judge0 ids mean one language each: the copy takes none.
    for field in ["aliases", "judge0_ids", "judge0_name"] {
        ghost.as_object_mut().unwrap().remove(field);
    }
    languages["languages"].as_array_mut().unwrap().push(ghost);
    std::fs::write(&registry, serde_json::to_string_pretty(&languages).unwrap()).expect("written");
    let path = registry.display().to_string();
    (dir, path)
}

/// A started binary, its output in a log file.
pub struct Process {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    pub fn spawn(name: &str, mut command: Command, logs: &Path) -> Self {
        let log = logs.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("a log file");
        command.stdout(file.try_clone().expect("log handle")).stderr(file).stdin(Stdio::null());
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process { name: name.to_string(), child: Some(child), log }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle`; panics with the log after `within`.
    pub fn wait_for_log(&mut self, needle: &str, within: Duration) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("{} exited ({status}) before logging {needle:?}:\n{log}", self.name);
            }
            assert!(start.elapsed() < within, "{} did not log {needle:?} within {within:?}:\n{log}", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit; returns whether it exited 0.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return true };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for a process that should exit by itself; its status and log.
    pub fn wait_exit(&mut self, within: Duration) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return (status, self.log());
            }
            if start.elapsed() > within {
                let _ = child.kill();
                panic!("{} did not exit within {within:?}:\n{}", self.name, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Redis (with its append-only file), the API and workers, as processes.
pub struct System {
    pub redis: RedisServer,
    pub api: Process,
    pub workers: Vec<Process>,
    pub base: String,
    pub http: reqwest::Client,
    /// Where the processes' logs are.
    pub logs: tempfile::TempDir,
    env: Vec<(String, String)>,
    /// The label value of every container this system's workers make.
    pub deployment: String,
}

/// The longest a system test waits for one job to end.
pub const JOB_DEADLINE: Duration = Duration::from_secs(180);

impl System {
    /// Starts the API and one worker per language on `redis`, each with `env` set
    /// (on top of `REDIS_URL`, the registry and quick heartbeats).
    pub fn start(redis: RedisServer, languages: &[&str], env: &[(&str, &str)]) -> Self {
        let logs = tempfile::Builder::new().prefix("optimus-system-").tempdir().expect("a log directory");
        let mut all: Vec<(String, String)> = vec![
            ("REDIS_URL".into(), redis.url()),
            ("OPTIMUS_LANGUAGES".into(), languages_file().display().to_string()),
            ("OPTIMUS_HEARTBEAT_TIMEOUT_SECS".into(), "3".into()),
            ("RUST_LOG".into(), "info".into()),
            // Plain logs: the tests read them.
            ("NO_COLOR".into(), "1".into()),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let deployment = optimus_common::fingerprint(&[redis.url().as_bytes()]);
        let mut api = Self::api_process(&all, logs.path(), "api");
        let log = api.wait_for_log("optimus-api listening", Duration::from_secs(60));
        let base = format!("http://{}", listening_addr(&log));
        let mut system =
            System { redis, api, workers: Vec::new(), base, http: reqwest::Client::new(), logs, env: all, deployment };
        for lang in languages {
            system.add_worker(lang);
        }
        system
    }

    fn api_process(env: &[(String, String)], logs: &Path, name: &str) -> Process {
        let mut command = Command::new(binary("optimus-api"));
        command.env("API_PORT", "0").envs(env.iter().map(|(k, v)| (k, v)));
        Process::spawn(name, command, logs)
    }

    /// Another API process on this system's Redis, with `extra` env on top.
    pub fn another_api(&self, name: &str, extra: &[(&str, &str)]) -> Process {
        let mut env = self.env.clone();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Self::api_process(&env, self.logs.path(), name)
    }

    /// Starts one more worker for `lang` and waits until it serves.
    pub fn add_worker(&mut self, lang: &str) -> usize {
        let mut command = Command::new(binary("optimus-worker"));
        command.args(["--language", lang, "--concurrency", "2"]).envs(self.env.iter().map(|(k, v)| (k, v)));
        let n = self.workers.len();
        let mut worker = Process::spawn(&format!("worker-{lang}-{n}"), command, self.logs.path());
        worker.wait_for_log("worker serving", Duration::from_secs(120));
        self.workers.push(worker);
        n
    }

    /// Runs `optimus-cli` against this system's Redis; its exit status, stdout, stderr.
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(binary("optimus-cli"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("optimus-cli runs");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every process's log, for a failing test's message.
    pub fn all_logs(&self) -> String {
        std::iter::once(&self.api)
            .chain(&self.workers)
            .map(|p| format!("----- {} -----\n{}", p.name, tail(&p.log(), 60)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Polls a job (with `key`, if any) until its status is terminal.
    pub async fn wait(&self, id: &str, key: Option<&str>) -> Value {
        let start = Instant::now();
        loop {
            let mut req = self.http.get(self.url(&format!("/jobs/{id}")));
            if let Some(key) = key {
                req = req.bearer_auth(key);
            }
            if let Ok(res) = req.send().await {
                if res.status().is_success() {
                    let job: Value = res.json().await.expect("a job");
                    if matches!(job["status"].as_str(), Some("completed" | "failed" | "cancelled")) {
                        return job;
                    }
                }
            }
            assert!(
                start.elapsed() < JOB_DEADLINE,
                "job {id} did not end within {JOB_DEADLINE:?}\n{}",
                self.all_logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the workers (SIGTERM, drained) and the API; asserts each exited 0.
    pub fn stop(&mut self) {
        for w in &mut self.workers {
            assert!(w.terminate(), "{} did not stop cleanly:\n{}", w.name, tail(&w.log(), 80));
        }
        assert!(self.api.terminate(), "the API did not stop cleanly:\n{}", tail(&self.api.log(), 80));
    }
}

impl Drop for System {
    fn drop(&mut self) {
        // A test that failed, or ended, before `stop`: its workers die with it,
        // and so do their pool's containers (a SIGKILLed worker cannot remove them).
        let stopped = self.workers.iter().all(|w| w.child.is_none());
        if !stopped || std::thread::panicking() {
            for w in &mut self.workers {
                w.kill();
            }
            remove_containers_of(&self.deployment);
        }
    }
}

/// The address in "optimus-api listening addr=..." of an API's log.
pub fn listening_addr(log: &str) -> String {
    let line = log.lines().find(|l| l.contains("optimus-api listening")).expect("the listening line");
    logged_field(line, "addr").expect("addr")
}

/// A field of a log line, in the text format (`name=value`) or JSON (`"name":"value"`).
pub fn logged_field(line: &str, name: &str) -> Option<String> {
    if let Ok(json) = serde_json::from_str::<Value>(line) {
        return json["fields"][name].as_str().map(str::to_string);
    }
    let value = line.split(&format!("{name}=")).nth(1)?.split_whitespace().next()?;
    Some(value.to_string())
}

/// The last `n` lines of a log.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A Unix socket that forwards to the real Docker engine while it is up; cut, it
/// refuses new connections and drops the open ones, as a dead engine would.
pub struct EngineProxy {
    pub path: PathBuf,
    up: Arc<Mutex<Option<CancellationToken>>>,
    _dir: tempfile::TempDir,
}

impl EngineProxy {
    pub fn start() -> Self {
        let engine = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
        let dir = tempfile::Builder::new().prefix("optimus-engine-proxy-").tempdir().expect("a directory");
        let path = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&path).expect("the proxy's socket");
        let up = Arc::new(Mutex::new(Some(CancellationToken::new())));
        let state = up.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let Some(cut) = state.lock().expect("proxy lock").clone() else { continue };
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
        EngineProxy { path, up, _dir: dir }
    }

    /// The engine "dies": open connections drop, new ones are refused.
    pub fn cut(&self) {
        if let Some(cut) = self.up.lock().expect("proxy lock").take() {
            cut.cancel();
        }
    }

    pub fn restore(&self) {
        self.up.lock().expect("proxy lock").get_or_insert_with(CancellationToken::new);
    }
}

/// Removes every container of a deployment: what a failing test's workers leave
/// (a worker that is killed, or dropped with its test, cannot remove its pool).
pub fn remove_containers_of(deployment: &str) {
    let ids = containers_with(&format!("optimus.deployment={deployment}"));
    if !ids.is_empty() {
        let _ =
            Command::new("docker").arg("rm").arg("-f").args(&ids).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// The ids of the containers (running or not) that carry `label` (`key=value`).
pub fn containers_with(label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--no-trunc", "--filter", &format!("label={label}")])
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// One Server-Sent Event as received.
#[derive(Debug, Clone)]
pub struct Sse {
    pub id: String,
    pub event: String,
    pub data: Value,
}

/// The events of a `text/event-stream` body (keep-alive comments skipped).
pub fn parse_sse(text: &str) -> Vec<Sse> {
    text.split("\n\n")
        .filter_map(|block| {
            let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            (!event.is_empty()).then(|| Sse { id, event, data: serde_json::from_str(&data).expect("JSON data") })
        })
        .collect()
}

/// The value of the sample `name{labels...}` (every label given must match).
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            return None;
        }
        let all = labels.iter().all(|(k, v)| label_text.split(',').any(|pair| pair == format!("{k}=\"{v}\"")));
        all.then(|| value.parse().ok()).flatten()
    })
}

/// `promtool check metrics` (Debian's `prometheus`) finds nothing to say about `text`.
pub fn promtool_accepts(text: &str, what: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian's prometheus package; scripts/prepare.sh installs it)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool finds fault with the {what}'s metrics:\n{said}");
}
