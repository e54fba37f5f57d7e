//! Every syscall the launcher makes that std does not wrap, each behind a safe
//! function. This is the crate's only `unsafe` code.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// An anonymous in-memory file: the program's stdout or stderr. It has no path,
/// so nothing the program does to the filesystem can swap, link or jam it.
pub fn memfd(name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid C string; the returned descriptor is owned here.
    let fd = check(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: `fd` was just returned by the kernel and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The size of an open file, from its descriptor.
pub fn fd_size(fd: &OwnedFd) -> io::Result<u64> {
    std::fs::File::from(fd.try_clone()?).metadata().map(|m| m.len())
}

pub enum Forked {
    Child,
    Parent(libc::pid_t),
}

/// fork(2). The launcher is single-threaded, so the child may allocate freely.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the process has one thread, so the child inherits a consistent state.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Ends a forked child at once, without running the parent's destructors.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no shared state.
    unsafe { libc::_exit(code) }
}

/// In a forked child: puts `fd` at `target` (clearing close-on-exec).
pub fn dup2(fd: RawFd, target: RawFd) -> io::Result<()> {
    // SAFETY: plain descriptor numbers.
    check(unsafe { libc::dup2(fd, target) }).map(|_| ())
}

/// Closes every descriptor from `first` up.
pub fn close_from(first: RawFd) {
    // SAFETY: close_range only closes descriptors; ENOSYS on old kernels is handled below.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, libc::c_uint::MAX, 0) };
    if ret != 0 {
        for fd in first..4096 {
            // SAFETY: closing a descriptor number that may not be open is harmless.
            unsafe { libc::close(fd) };
        }
    }
}

/// Every signal back to its default action and unblocked: a program must not
/// inherit the launcher's (Rust ignores SIGPIPE) or the runner's dispositions.
pub fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        // SAFETY: SIG_DFL is always a valid disposition; SIGKILL/SIGSTOP just fail.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an empty, initialised set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

pub fn setsid() -> io::Result<()> {
    // SAFETY: no arguments.
    check(unsafe { libc::setsid() }).map(|_| ())
}

pub fn umask(mask: libc::mode_t) {
    // SAFETY: no pointers.
    unsafe { libc::umask(mask) };
}

pub fn set_rlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: `limit` is a valid rlimit.
    check(unsafe { libc::setrlimit(resource, &limit) }).map(|_| ())
}

/// Becomes `uid`:`gid` with no supplementary groups, for good: from uid 0 to a
/// non-zero uid the kernel also clears every capability.
pub fn become_user(uid: libc::uid_t, gid: libc::gid_t) -> io::Result<()> {
    // SAFETY: an empty group list; plain ids.
    unsafe {
        check(libc::setgroups(0, std::ptr::null()))?;
        check(libc::setresgid(gid, gid, gid))?;
        check(libc::setresuid(uid, uid, uid))?;
    }
    // SAFETY: no arguments.
    let (r, e) = unsafe { (libc::getuid(), libc::geteuid()) };
    if r != uid || e != uid {
        return Err(io::Error::other("the uid did not change"));
    }
    Ok(())
}

/// Sets this process's nice value. Lowering it (below its current one) needs
/// CAP_SYS_NICE, which the container grants and the sandbox user never holds.
pub fn set_nice(value: libc::c_int) -> io::Result<()> {
    // SAFETY: plain integers; `0` is the calling process. The `which` argument's
    // type differs between C libraries, hence the cast.
    check(unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, value) }).map(|_| ())
}

/// Makes this process the reaper of every orphan below it, so that nothing a
/// program forks escapes being killed, reaped and counted.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: a plain prctl option.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(|_| ())
}

/// execvpe(3): replaces the process; returns only on failure.
pub fn exec(argv: &[CString], env: &[CString]) -> io::Error {
    let mut args: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    args.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: both arrays are NULL-terminated and point at live C strings.
    unsafe { libc::execvpe(args[0], args.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> bool {
    // SAFETY: no pointers.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// How a process ended, and what it and its reaped descendants used.
pub struct Exit {
    /// The exit code, or 128+N for signal N.
    pub status: i32,
}

fn decode(status: libc::c_int) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// waitpid(pid); `None` when `nohang` and it is still running.
pub fn wait_pid(pid: libc::pid_t, nohang: bool) -> io::Result<Option<Exit>> {
    let mut status = 0;
    let flags = if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: `status` is a valid out-pointer.
        match unsafe { libc::waitpid(pid, &mut status, flags) } {
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            -1 => return Err(io::Error::last_os_error()),
            0 => return Ok(None),
            _ => return Ok(Some(Exit { status: decode(status) })),
        }
    }
}

/// Reaps any child that has ended; `Ok(false)` when there are no children left,
/// `Ok(true)` when one was reaped or some still run (with `block`, waits for one).
pub fn reap_any(block: bool) -> io::Result<bool> {
    let mut status = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    // SAFETY: `status` is a valid out-pointer.
    match unsafe { libc::waitpid(-1, &mut status, flags) } {
        -1 => match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ECHILD) => Ok(false),
            e if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            e => Err(e),
        },
        _ => Ok(true),
    }
}

/// Reaps one child that has ended, without waiting: its pid and how it ended;
/// `None` when none has ended (or there are no children).
pub fn reap_ended() -> io::Result<Option<(libc::pid_t, Exit)>> {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer.
    match unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } {
        -1 => match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ECHILD) || e.kind() == io::ErrorKind::Interrupted => Ok(None),
            e => Err(e),
        },
        0 => Ok(None),
        pid => Ok(Some((pid, Exit { status: decode(status) }))),
    }
}

/// Waits until one of `fds` is readable (or hung up) or `timeout` passes; which
/// of them are. A signal ends the wait early, with none.
pub fn poll_readable<const N: usize>(fds: [RawFd; N], timeout: Duration) -> io::Result<[bool; N]> {
    let mut pfds = fds.map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: N valid pollfds (a negative fd is skipped by poll).
    match unsafe { libc::poll(pfds.as_mut_ptr(), N as libc::nfds_t, ms) } {
        -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => Ok([false; N]),
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(pfds.map(|p| p.fd >= 0 && p.revents != 0)),
    }
}

/// read(2) on a descriptor this process holds for its whole life (its stdin).
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        match unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } {
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            -1 => return Err(io::Error::last_os_error()),
            n => return Ok(n as usize),
        }
    }
}

/// CPU time (µs) and largest resident set (KiB) of the children reaped so far.
pub fn children_usage() -> (u64, u64) {
    // SAFETY: `usage` is a valid out-pointer.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(usage.ru_utime) + us(usage.ru_stime), usage.ru_maxrss as u64)
}

/// A descriptor that becomes readable when process `pid` ends (pidfd_open(2));
/// `None` on kernels without it.
pub fn pidfd(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: no pointers; the result is a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a fresh descriptor, owned by no one else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Waits until `fd` is readable or `timeout` passes; true when readable.
pub fn wait_readable(fd: &OwnedFd, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
}

/// Installs a do-nothing SIGCHLD handler (so that blocking calls wake up) and
/// ignores the signals a container's init receives on stop.
pub fn init_signals() {
    extern "C" fn nothing(_: libc::c_int) {}
    // SAFETY: a valid handler function and valid dispositions.
    unsafe {
        libc::signal(libc::SIGCHLD, nothing as *const () as libc::sighandler_t);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
}

pub fn getpid() -> libc::pid_t {
    std::process::id() as libc::pid_t
}

/// The three kinds of System V IPC object, as `/proc/sysvipc` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipc {
    Shm,
    Sem,
    Msg,
}

/// Removes one System V IPC object (IPC_RMID): allowed to its owner or creator.
pub fn ipc_remove(kind: Ipc, id: libc::c_int) -> io::Result<()> {
    // SAFETY: IPC_RMID takes no buffer (a null one is allowed); `id` is only a number.
    check(unsafe {
        match kind {
            Ipc::Shm => libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()),
            Ipc::Sem => libc::semctl(id, 0, libc::IPC_RMID),
            Ipc::Msg => libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()),
        }
    })
    .map(drop)
}
