//! Test support (feature `testkit`): a private `redis-server` per test, gone when
//! dropped, so tests never share state. It listens on a Unix socket in its own
//! directory: a TCP port picked as "free" can be picked by a parallel test too.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Settings;

pub struct RedisServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` (which must be on PATH) and waits until it answers.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("optimus-redis-").tempdir().expect("a temporary directory");
        let mut server = RedisServer { child: None, dir };
        server.spawn();
        server
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "yes", "--unixsocketperm", "700"])
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        let start = Instant::now();
        while UnixStream::connect(self.socket()).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Settings pointing at this server and at the repository's language registry.
    pub fn settings(&self) -> Settings {
        Settings {
            redis_url: self.url(),
            languages_file: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/languages.json"),
            ..Settings::default()
        }
    }

    /// Kills the server (its append-only file stays, as after a crash).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data: a Redis restart.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
