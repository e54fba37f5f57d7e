//! Ending everything a run left behind. Inside a sandbox container the only
//! processes that may outlive a run are the container's init, the runner and the
//! launcher itself (its ancestors): every other process belongs to the program,
//! wherever it moved (new session, double fork, stopped), and is killed.

use std::io;

use crate::sys;

/// The pids a sweep spares: init, this process and its ancestors.
pub struct Spared(Vec<libc::pid_t>);

impl Spared {
    pub fn me_and_my_ancestors() -> Self {
        let mut pids = vec![1, sys::getpid()];
        let mut pid = sys::getpid();
        // Bounded: a chain of parents inside one container is short.
        for _ in 0..64 {
            match parent_of(pid) {
                Some(parent) if parent > 1 && !pids.contains(&parent) => {
                    pids.push(parent);
                    pid = parent;
                }
                _ => break,
            }
        }
        Spared(pids)
    }
}

/// `(state, ppid)` from `/proc/<pid>/stat`; the command name may hold spaces and
/// parentheses, so fields are read after its last ')'.
fn stat(pid: libc::pid_t) -> Option<(u8, libc::pid_t)> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.bytes().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

fn parent_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    stat(pid).map(|(_, ppid)| ppid)
}

/// SIGKILLs every live process not spared; returns how many it signalled.
fn kill_round(spared: &Spared) -> io::Result<usize> {
    let mut signalled = 0;
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse::<libc::pid_t>().ok()) else { continue };
        if spared.0.contains(&pid) {
            continue;
        }
        match stat(pid) {
            Some((b'Z' | b'X', _)) | None => {}
            Some(_) => {
                if sys::kill(pid, libc::SIGKILL) {
                    signalled += 1;
                }
            }
        }
    }
    Ok(signalled)
}

/// Kills every process the spared set does not hold, until none is left alive,
/// then reaps those that were this process's children (as a subreaper, every
/// descendant ends up one). Returns false if some survived every round.
///
/// Nothing is reaped until nothing is left alive: a killed process keeps its pid
/// (and its place under the container's process limit) until it is reaped, so a
/// fork bomb's survivors find no free pid to fork into while the rounds go on.
pub fn sweep(spared: &Spared) -> bool {
    for round in 0..2000 {
        let signalled = kill_round(spared).unwrap_or(1);
        if signalled == 0 {
            while let Ok(true) = sys::reap_any(false) {}
            return true;
        }
        if round > 10 {
            // Killed processes take a moment to become zombies.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    false
}

/// Blocks until every child of this process has been reaped.
pub fn reap_all() {
    while let Ok(true) = sys::reap_any(true) {}
}
