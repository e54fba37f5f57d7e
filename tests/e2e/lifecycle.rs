//! Containers: removed after every job, swept after a killed worker; a worker
//! without its image refuses to start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, ListContainersOptionsBuilder};
use bollard::Docker;
use optimus_common::testkit::RedisServer;
use optimus_common::LanguageRegistry;
use optimus_worker::{Worker, WorkerConfig};
use serde_json::json;

use crate::helpers::{expect, job, stack, stack_on};

async fn docker() -> Docker {
    Docker::connect_with_defaults().unwrap().negotiate_version().await.unwrap()
}

async fn containers_with(label: &str) -> Vec<String> {
    let filters = HashMap::from([("label", vec![label.to_string()])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    docker().await.list_containers(Some(options)).await.unwrap().into_iter().filter_map(|c| c.id).collect()
}

pub async fn containers_of(job_id: &str) -> Vec<String> {
    containers_with(&format!("optimus.job={job_id}")).await
}

/// Whether a program runs now in a container labelled `label`: a process of a
/// sandbox user (a uid of `optimus_protocol`'s range) there.
pub async fn program_runs(label: &str) -> bool {
    let docker = docker().await;
    for id in containers_with(label).await {
        // The engine needs the pid column to map host processes to the container.
        let options = bollard::query_parameters::TopOptionsBuilder::new().ps_args("-o pid,uid").build();
        let Ok(top) = docker.top_processes(&id, Some(options)).await else { continue };
        if top
            .processes
            .unwrap_or_default()
            .iter()
            .any(|p| p.get(1).and_then(|u| optimus_protocol::sandbox_uid(u)).is_some())
        {
            return true;
        }
    }
    false
}

async fn eventually_none(label: &str) {
    let start = Instant::now();
    while !containers_with(label).await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "containers labelled {label} remain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_job_leaves_no_container() {
    let mut stack = stack(&["python"]).await;
    let mine = format!("optimus.deployment={}", stack.deployment);
    let ok = stack.run(&job("python", "import socket\nprint(socket.gethostname())", json!([{ "input": "" }]))).await;
    expect(&ok, "accepted");
    // A job whose program met the OOM killer is an anomaly: its container is
    // destroyed, never handed to another job.
    let hog = "import socket\nprint(socket.gethostname(), flush=True)\nx = bytearray(1 << 30)\nx[::4096] = b'1' * len(x[::4096])";
    let mut oom = job("python", hog, json!([{ "input": "" }]));
    oom["memory_limit_mb"] = json!(64);
    let oom = stack.run(&oom).await;
    expect(&oom, "memory_limit_exceeded");
    let host = oom["result"]["test_results"][0]["stdout"].as_str().unwrap().trim().to_string();
    let start = Instant::now();
    while docker()
        .await
        .inspect_container(&host, None::<bollard::query_parameters::InspectContainerOptions>)
        .await
        .is_ok()
    {
        assert!(start.elapsed() < Duration::from_secs(10), "the OOM-killed job's container {host} is still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!containers_with(&mine).await.is_empty(), "the pool keeps warm containers while the worker runs");
    // A stopped worker leaves none, pooled or not.
    stack.stop().await;
    assert!(containers_with(&mine).await.is_empty(), "containers of a stopped worker remain");
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_of_a_killed_worker_are_swept_at_start() {
    let docker = docker().await;
    let redis = RedisServer::start();
    let deployment = optimus_common::fingerprint(&[redis.url().as_bytes()]);
    // An orphan of this deployment, and a container of another deployment (another
    // Redis) whose worker this deployment cannot see: only the first may go.
    for (deployment, worker) in
        [(deployment.as_str(), "python-killed-long-ago"), ("elsewhere", "python-of-another-deployment")]
    {
        let labels = HashMap::from([
            ("optimus.deployment".to_string(), deployment.to_string()),
            ("optimus.sandbox".to_string(), "1".to_string()),
            ("optimus.language".to_string(), "python".to_string()),
            ("optimus.worker".to_string(), worker.to_string()),
        ]);
        let body = ContainerCreateBody {
            image: Some("optimus-python:latest".into()),
            cmd: Some(vec!["sleep".into(), "600".into()]),
            labels: Some(labels),
            ..Default::default()
        };
        let name = format!("optimus-orphan-{}", uuid::Uuid::new_v4());
        docker.create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body).await.unwrap();
    }
    assert_eq!(containers_with("optimus.worker=python-killed-long-ago").await.len(), 1);

    let mut stack = stack_on(redis, &["python"]).await;
    // The sweep runs before the worker takes its first job.
    expect(&stack.run(&job("python", "print(1)", json!([{ "input": "" }]))).await, "accepted");
    assert!(containers_with("optimus.worker=python-killed-long-ago").await.is_empty());
    let other = containers_with("optimus.worker=python-of-another-deployment").await;
    assert_eq!(other.len(), 1, "another deployment's container must be left alone");
    docker
        .remove_container(
            &other[0],
            Some(bollard::query_parameters::RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .unwrap();
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_without_its_image_refuses_to_start() {
    let redis = RedisServer::start();
    let settings = redis.settings();
    let registry = LanguageRegistry::load(&settings.languages_file).unwrap();
    let mut language = registry.get("python").unwrap().clone();
    language.image = "optimus-no-such-image:latest".into();
    let config = WorkerConfig {
        language,
        registry: Arc::new(registry),
        concurrency: 1,
        settings,
        drain_timeout: Duration::from_secs(1),
        pool: optimus_worker::PoolConfig { size: 1, reuse: true, max_uses: 20 },
        docker_socket: None,
        compile_cache: None,
        host_slots: optimus_worker::HostSlots::open(
            std::env::temp_dir().join("optimus-test-slots"),
            optimus_worker::HostSlots::default_budget(),
        )
        .unwrap(),
    };
    let err = Worker::start(config).await.err().expect("must refuse").to_string();
    assert!(
        err.contains("optimus-no-such-image:latest") && err.contains("optimus-cli build-image --name python"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_drains_the_running_job() {
    let mut stack = stack(&["python"]).await;
    let id = stack.submit(&job("python", "import time\ntime.sleep(1)\nprint('done')", json!([{ "input": "" }]))).await;
    stack.wait_for(&id, |s| s == "running").await;
    let store = stack.store.clone();
    stack.stop().await;
    let finished = store.get(id.parse().unwrap(), &optimus_common::store::Caller::Anonymous).await.unwrap().unwrap();
    assert_eq!(finished.status, optimus_common::JobStatus::Completed);
    assert_eq!(finished.result.unwrap().overall_status, Some(optimus_common::Verdict::Accepted));
}

/// One slot and no spare containers: with reuse, each job waits for the last
/// one's container to be wiped and runs in it; without, each gets a new one.
async fn one_container_stack(reuse: bool) -> crate::helpers::Stack {
    crate::helpers::stack_configured(
        RedisServer::start(),
        &["python"],
        |_| {},
        |c| {
            c.concurrency = 1;
            c.pool = optimus_worker::PoolConfig { size: 0, reuse, max_uses: 20 };
        },
    )
    .await
}

/// A job that leaves something everywhere it can: files in every writable
/// directory (some made unreadable), /dev/shm filled, a POSIX queue, a SysV
/// segment and semaphore set, and a background process in a new session.
const LITTER: &str = r#"
import os, socket, subprocess
print(socket.gethostname())
for d in ['/work', '/tmp', '/dev/shm', '/dev/mqueue']:
    try:
        os.makedirs(f'{d}/deep/er', exist_ok=True)
        open(f'{d}/deep/er/planted', 'w').write('job one was here')
        os.chmod(f'{d}/deep', 0)
    except OSError:
        pass
try:
    with open('/dev/shm/fill', 'wb') as f:
        while True:
            f.write(b'x' * (1 << 20))
except OSError:
    pass
import ctypes
libc = ctypes.CDLL(None)
libc.shmget(4242, 4096, 0o1666)
libc.semget(4243, 1, 0o1666)
subprocess.Popen(['python3', '-c', 'import os, time\nos.setsid()\ntime.sleep(600)'], start_new_session=True)
print('littered')
"#;

/// What the next job sees of it.
const LOOK: &str = r#"
import os, socket
print(socket.gethostname())
left = {d: os.listdir(d) for d in ['/work', '/tmp', '/dev/shm', '/dev/mqueue'] if os.listdir(d)}
procs = [p for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid() and os.stat(f'/proc/{p}').st_uid == os.getuid()]
import ctypes
libc = ctypes.CDLL(None)
segment = libc.shmget(4242, 4096, 0o666)
semaphores = libc.semget(4243, 1, 0o666)
print('files', left, 'processes', procs, 'segment', segment != -1, 'semaphores', semaphores != -1)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_reused_container_keeps_nothing_of_the_last_job() {
    let mut stack = one_container_stack(true).await;
    let first = expect(&stack.run(&job("python", LITTER, json!([{ "input": "" }]))).await, "accepted");
    let out = first["test_results"][0]["stdout"].as_str().unwrap().to_string();
    assert!(out.ends_with("littered\n"), "{out}");
    let second = expect(&stack.run(&job("python", LOOK, json!([{ "input": "" }]))).await, "accepted");
    let seen = second["test_results"][0]["stdout"].as_str().unwrap();
    let (host1, host2) = (out.lines().next().unwrap(), seen.lines().next().unwrap());
    assert_eq!(host1, host2, "both jobs ran in the one pooled container");
    assert_eq!(seen.lines().nth(1), Some("files {} processes [] segment False semaphores False"), "{seen}");
    stack.stop().await;
}

/// Engine events of `kind` (such as `exec_create`) for the container whose
/// short id is `hostname`, between two Unix times in seconds.
async fn container_events(kind: &str, hostname: &str, since: u64, until: u64) -> Vec<String> {
    use futures_util::StreamExt;
    let filters = HashMap::from([("type", vec!["container"]), ("event", vec![kind])]);
    let options = bollard::query_parameters::EventsOptionsBuilder::new()
        .since(&since.to_string())
        .until(&until.to_string())
        .filters(&filters)
        .build();
    let events: Vec<_> = docker().await.events(Some(options)).collect().await;
    events
        .into_iter()
        .map(|e| e.unwrap())
        .filter_map(|e| e.actor.and_then(|a| a.id))
        .filter(|id| id.starts_with(hostname))
        .collect()
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A pooled container is fed job after job over the stream the worker attached
/// when it made it: no `docker exec` per job, and every byte of a test's input
/// arrives as sent, even the engine's detach keys (ctrl-p ctrl-q) and lines that
/// look like the stream's own requests.
#[tokio::test(flavor = "multi_thread")]
async fn a_pooled_container_serves_its_jobs_over_its_stream_without_an_exec() {
    let mut stack = one_container_stack(true).await;
    let since = unix_secs();
    let echo = "import socket, sys\nprint(socket.gethostname())\nprint(list(sys.stdin.buffer.read()))";
    let input = "\u{10}\u{11}\neof\ndata 3\nstart job 0\n";
    let mut hosts = Vec::new();
    for _ in 0..3 {
        let done = expect(&stack.run(&job("python", echo, json!([{ "input": input }]))).await, "accepted");
        let out = done["test_results"][0]["stdout"].as_str().unwrap().to_string();
        let (host, bytes) = out.split_once('\n').unwrap();
        assert_eq!(bytes.trim(), format!("{:?}", input.as_bytes()), "{out}");
        hosts.push(host.to_string());
    }
    hosts.dedup();
    assert_eq!(hosts.len(), 1, "one pooled container served the three jobs: {hosts:?}");
    let execs = container_events("exec_create", &hosts[0], since, unix_secs() + 1).await;
    assert!(execs.is_empty(), "the jobs' container saw {} docker execs", execs.len());
    stack.stop().await;
}

/// On an engine that serves image files from a user-space daemon, a sandbox's
/// `/usr` is a read-only mount of a whole copy of the image's own (the kernel
/// serves it); elsewhere it is the image's, as it is.
#[tokio::test(flavor = "multi_thread")]
async fn usr_comes_from_a_read_only_copy_on_a_fuse_engine() {
    let fuse = docker().await.info().await.unwrap().driver.as_deref() == Some(optimus_common::image::FUSE_STORAGE);
    let mut stack = stack(&["python"]).await;
    let look = r#"
import os
mounts = [l.split() for l in open('/proc/self/mounts')]
usr = [m for m in mounts if m[1] == '/usr']
print(usr[0][3].split(',')[0] if usr else 'image')
print(os.path.exists('/usr/.optimus-usr-complete'), os.path.exists('/usr/lib/python3/dist-packages') or os.path.exists('/usr/lib/python3.11/os.py'))
try:
    open('/usr/planted', 'w')
    print('written')
except OSError as e:
    print(e.errno == 30 or e.errno == 13)
"#;
    let done = expect(&stack.run(&job("python", look, json!([{ "input": "" }]))).await, "accepted");
    let out = done["test_results"][0]["stdout"].as_str().unwrap().to_string();
    let want = if fuse { "ro\nTrue True\nTrue\n" } else { "image\nFalse True\nTrue\n" };
    assert_eq!(out, want, "fuse-overlayfs engine: {fuse}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_reuse_every_job_gets_a_fresh_container() {
    let mut stack = one_container_stack(false).await;
    let hostname = "import socket\nprint(socket.gethostname())";
    let mut hosts = Vec::new();
    for _ in 0..3 {
        let done = expect(&stack.run(&job("python", hostname, json!([{ "input": "" }]))).await, "accepted");
        hosts.push(done["test_results"][0]["stdout"].as_str().unwrap().to_string());
    }
    hosts.dedup();
    assert_eq!(hosts.len(), 3, "a container served two jobs: {hosts:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_workers_pooled_containers_are_gone_after_a_restart() {
    let redis = RedisServer::start();
    let settings = redis.settings();
    let mut worker = std::process::Command::new(optimus_tests::binary("optimus-worker"))
        .args(["--language", "python", "--pool-size", "3"])
        .env("REDIS_URL", redis.url())
        .env("OPTIMUS_LANGUAGES", &settings.languages_file)
        .env("OPTIMUS_HEARTBEAT_TIMEOUT_SECS", "2")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deployment = format!("optimus.deployment={}", optimus_common::fingerprint(&[redis.url().as_bytes()]));
    // Its pool holds a warm container (one until jobs come); then it dies without a word.
    let start = Instant::now();
    let owner = loop {
        let filters = HashMap::from([("label", vec![deployment.clone()])]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let pooled = docker().await.list_containers(Some(options)).await.unwrap();
        if let Some(first) = pooled.first() {
            break first.labels.as_ref().unwrap()["optimus.worker"].clone();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the worker's pool made no container");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    worker.kill().unwrap();
    worker.wait().unwrap();
    assert!(!containers_with(&format!("optimus.worker={owner}")).await.is_empty());
    // Once its heartbeat has expired, the next worker to start sweeps them.
    let store = optimus_common::Store::connect(&settings).await.unwrap();
    while store.live_workers("python").await.unwrap().contains(&owner) {
        assert!(start.elapsed() < Duration::from_secs(90), "the killed worker still counts as alive");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut stack = stack_on(redis, &["python"]).await;
    expect(&stack.run(&job("python", "print(1)", json!([{ "input": "" }]))).await, "accepted");
    eventually_none(&format!("optimus.worker={owner}")).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pooled_container_killed_from_outside_is_replaced() {
    let mut stack = stack(&["python"]).await;
    let mine = format!("optimus.deployment={}", stack.deployment);
    let start = Instant::now();
    // A container the pool has created but not yet started cannot be killed (409),
    // and one it removed since it was listed is gone (404): the victim is the
    // first one found running.
    let victim = loop {
        if let Some(id) = containers_with(&mine).await.pop() {
            match docker().await.kill_container(&id, None::<bollard::query_parameters::KillContainerOptions>).await {
                Ok(()) => break id,
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 409 | 404, .. }) => {}
                Err(e) => panic!("cannot kill {id}: {e}"),
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the pool made no running container");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The pool finds it dead at its next check, destroys it and makes another.
    while containers_with(&mine).await.contains(&victim) || containers_with(&mine).await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(90), "the dead container was not replaced");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done = stack.run(&job("python", "print(1)", json!([{ "input": "" }]))).await;
    expect(&done, "accepted");
    assert_eq!(done["attempts"], 1, "the job was handed a dead container");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_stranded_on_a_live_workers_list_goes_back_to_its_queue() {
    use optimus_common::keys;
    use redis::AsyncCommands;
    let mut stack = stack(&["python"]).await;
    let worker = stack.store.live_workers("python").await.unwrap().pop().expect("the python worker");
    // A C job (this stack serves no C) put on the python worker's list as running
    // there, the way a slot that died after its claim would leave it.
    let id = stack.submit(&job("c", "int main(void) { return 0; }", json!([{ "input": "" }]))).await;
    let mut redis = redis::Client::open(stack.redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let moved: Option<String> = redis
        .lmove(keys::queue("c"), keys::processing(&worker), redis::Direction::Right, redis::Direction::Left)
        .await
        .unwrap();
    assert_eq!(moved.as_deref(), Some(id.as_str()));
    let job_key = keys::job(id.parse().unwrap());
    let _: () = redis
        .hset_multiple(&job_key, &[("status", "running"), ("worker", worker.as_str()), ("attempts", "1")])
        .await
        .unwrap();
    // The worker's own rescans find it held by no slot, twice, and hand it back:
    // to the retry set for its backoff (no C worker runs here to move it on).
    let back = stack.wait_for(&id, |s| s == "queued").await;
    assert_eq!(back["status"], "queued");
    assert!(back["retry_at"].is_string(), "{back}");
    assert_eq!(stack.store.depths("c").await.unwrap(), (0, 1, 0));
    assert!(stack.store.processing(&worker).await.unwrap().is_empty());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_finished_while_redis_is_down_is_stored_when_it_is_back() {
    use redis::AsyncCommands;
    let mut stack = stack(&["python"]).await;
    // Every write on disk at once, so that a SIGKILL loses nothing acknowledged.
    let mut conn = redis::Client::open(stack.redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendfsync").arg("always").query_async(&mut conn).await.unwrap();
    let _: Option<String> = conn.get("warm-up").await.unwrap();
    let mut sleeper =
        job("python", "import time\ntime.sleep(2)\nprint('done')", json!([{ "input": "", "expected_output": "done" }]));
    sleeper["timeout_ms"] = json!(2000);
    let id = stack.submit(&sleeper).await;
    stack.wait_for(&id, |s| s == "running").await;
    // Redis dies while the job runs and comes back after it has ended: the
    // outage is the scenario, its length is what the worker has to bridge.
    stack.redis().stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stack.redis().restart();
    let done = stack.wait(&id).await;
    expect(&done, "accepted");
    assert_eq!(done["attempts"], 1, "the job ran once; its kept result was stored, not retried: {done}");
    stack.stop().await;
}
