//! PID 1 of a sandbox container (`optimus-launcher init`): reaps every orphan,
//! ignores stop signals, and serves the worker's requests on its stdin (the
//! container's attached stream, `optimus_protocol::request`): one runner
//! session at a time, `bash runner.sh <verb>` with the request's environment
//! and a pipe of its own as stdin, fed with the request's data frames. The
//! runner writes its reports straight to init's stdout; once it has exited,
//! init writes `@@optimus ended <exit>` there. A container therefore serves job
//! after job with no `docker exec`.
//!
//! Init runs as the container's root, like the runner; no sandboxed program can
//! reach its stdin or stdout (they are root's, and every run gets descriptors of
//! its own). A stream init cannot read any more (a malformed request: the worker
//! is out of step) ends init, and with it the container, which the worker then
//! destroys. A container started without an open stdin only reaps.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use optimus_protocol::request::{Reader, Request, Verb};
use optimus_protocol::Report;

use crate::sys;

const RUNNER: &str = "/opt/optimus/runner.sh";
/// How often orphans are reaped while nothing else happens.
const REAP_EVERY: Duration = Duration::from_millis(200);

/// The session running now.
struct Session {
    pid: libc::pid_t,
    /// Readable once the runner has exited.
    exited: Option<OwnedFd>,
    /// The runner's stdin, until the worker ends it (or the runner stops reading).
    stdin: Option<std::io::PipeWriter>,
}

pub fn init() -> Result<(), String> {
    sys::init_signals();
    let mut reader = Reader::default();
    let mut session: Option<Session> = None;
    let mut stdin_open = true;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        reap(&mut session)?;
        let stdin_fd = if stdin_open { 0 } else { -1 };
        let exited_fd = session.as_ref().and_then(|s| s.exited.as_ref()).map_or(-1, |fd| fd.as_raw_fd());
        let [readable, _] = sys::poll_readable([stdin_fd, exited_fd], REAP_EVERY).map_err(|e| e.to_string())?;
        if !readable {
            continue;
        }
        match sys::read(0, &mut buf).map_err(|e| format!("cannot read the stream: {e}"))? {
            0 => stdin_open = false,
            n => reader.feed(&buf[..n]),
        }
        while let Some(request) = reader.next_request().map_err(|e| e.to_string())? {
            handle(request, &mut session)?;
        }
    }
}

fn handle(request: Request, session: &mut Option<Session>) -> Result<(), String> {
    match request {
        Request::Start { verb, env } => {
            if session.is_some() {
                return Err("a session was asked for while one runs".into());
            }
            *session = Some(start(verb, env).map_err(|e| format!("cannot start the runner: {e}"))?);
        }
        Request::Data(bytes) => {
            if let Some(s) = session.as_mut() {
                // The runner stopped reading (it ended, or failed): what is left
                // of its input is dropped, and `ended` tells the worker.
                if let Some(Err(_)) = s.stdin.as_mut().map(|w| w.write_all(&bytes)) {
                    s.stdin = None;
                }
            }
        }
        Request::Eof => {
            if let Some(s) = session.as_mut() {
                s.stdin = None;
            }
        }
    }
    Ok(())
}

/// Forks `bash runner.sh <verb>` with init's environment plus `env`, its stdin a
/// new pipe, its stdout and stderr init's.
fn start(verb: Verb, env: Vec<Vec<u8>>) -> std::io::Result<Session> {
    let (read, write) = std::io::pipe()?;
    let argv: Vec<CString> =
        ["/bin/bash", RUNNER, verb.as_str()].iter().map(|a| CString::new(*a).expect("no NUL")).collect();
    let keys: Vec<&[u8]> = env.iter().map(|e| e.split(|&b| b == b'=').next().unwrap_or(e)).collect();
    let mut envp: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| !keys.contains(&k.as_encoded_bytes()))
        .filter_map(|(k, v)| {
            let mut entry = k.into_encoded_bytes();
            entry.push(b'=');
            entry.extend(v.into_encoded_bytes());
            CString::new(entry).ok()
        })
        .collect();
    // The reader made sure no entry holds a NUL.
    envp.extend(env.into_iter().filter_map(|e| CString::new(e).ok()));
    let read: OwnedFd = read.into();
    match sys::fork()? {
        sys::Forked::Child => {
            sys::reset_signals();
            if sys::dup2(read.as_raw_fd(), 0).is_err() {
                sys::exit_now(127);
            }
            sys::close_from(3);
            let e = sys::exec(&argv, &envp);
            let _ = writeln!(std::io::stderr(), "optimus-launcher: cannot run the runner: {e}");
            sys::exit_now(127)
        }
        sys::Forked::Parent(pid) => Ok(Session { pid, exited: sys::pidfd(pid), stdin: Some(write) }),
    }
}

/// Reaps every child that has ended; when one was the session's runner, says so
/// on stdout and lets the next session start.
fn reap(session: &mut Option<Session>) -> Result<(), String> {
    while let Some((pid, exit)) = sys::reap_ended().map_err(|e| e.to_string())? {
        if session.as_ref().is_some_and(|s| s.pid == pid) {
            *session = None;
            let mut out = std::io::stdout().lock();
            out.write_all(&Report::Ended { exit: exit.status }.encode())
                .and_then(|_| out.flush())
                .map_err(|e| format!("cannot write to the stream: {e}"))?;
        }
    }
    Ok(())
}
