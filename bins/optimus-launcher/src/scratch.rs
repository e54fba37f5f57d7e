//! The sandbox user's writable places, emptied before every run so that nothing a
//! test wrote is there for the next test (or the next job in a reused container):
//! its directories, and the System V IPC objects of the container's own IPC
//! namespace (the worker turns semaphores and message queues off, and shared
//! memory goes with its last user, so this only checks what those should ensure).
//!
//! The launcher holds no capability to override file permissions, so a program
//! that makes its files unreadable could keep root out of them; the emptying is
//! therefore done by a child that has become the sandbox user (the owner of all
//! of it), and checked afterwards by the launcher itself.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::sys;

/// Everything the sandbox user can write to: its home and the shared temporary
/// directories (each a tmpfs of the container, or of its IPC namespace).
pub const WRITABLE: [&str; 4] = ["/work", "/tmp", "/dev/shm", "/dev/mqueue"];

/// Where the kernel lists the IPC namespace's objects: a header line, then one
/// line per object whose second column is its id.
const SYSVIPC: [(&str, sys::Ipc); 3] =
    [("/proc/sysvipc/shm", sys::Ipc::Shm), ("/proc/sysvipc/sem", sys::Ipc::Sem), ("/proc/sysvipc/msg", sys::Ipc::Msg)];

/// The System V IPC objects that exist now; a listing that cannot be read (or
/// parsed) is an error, never "none".
pub fn ipc_objects() -> io::Result<Vec<(sys::Ipc, libc::c_int)>> {
    let mut found = Vec::new();
    for (path, kind) in SYSVIPC {
        let text = std::fs::read_to_string(path)?;
        for id in ipc_ids(&text).ok_or_else(|| io::Error::other(format!("{path} is not a listing")))? {
            found.push((kind, id));
        }
    }
    Ok(found)
}

/// The ids in one `/proc/sysvipc` listing.
fn ipc_ids(text: &str) -> Option<Vec<libc::c_int>> {
    text.lines().skip(1).filter(|l| !l.trim().is_empty()).map(|l| l.split_whitespace().nth(1)?.parse().ok()).collect()
}

/// Whether every writable place is empty, as root sees it; a directory root
/// cannot even read counts as not empty, and so does any IPC object.
pub fn all_empty() -> bool {
    WRITABLE.iter().all(|dir| match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }) && ipc_objects().is_ok_and(|o| o.is_empty())
}

/// Empties `dir` (keeping `dir` itself) without following links and without
/// building long paths: it walks down with chdir, so no nesting depth or name
/// length stops it. Runs as the owner of what it removes.
pub fn empty(dir: &Path, user: libc::uid_t) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.uid() == user {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    std::env::set_current_dir(dir)?;
    let mut path: Vec<OsString> = Vec::new();
    loop {
        let mut down = None;
        for entry in std::fs::read_dir(".")? {
            let entry = entry?;
            let name = entry.file_name();
            if entry.file_type()?.is_dir() {
                down = Some(name);
                break;
            }
            std::fs::remove_file(&name)?;
        }
        match down {
            Some(name) => {
                std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o700))?;
                std::env::set_current_dir(&name)?;
                path.push(name);
            }
            None => match path.pop() {
                Some(name) => {
                    std::env::set_current_dir("..")?;
                    std::fs::remove_dir(&name)?;
                }
                None => return Ok(()),
            },
        }
    }
}

/// Empties every writable place and removes every IPC object as the sandbox user
/// `user` (the owner of all of them), then checks as root that nothing is left.
/// Skips the fork when everything is already empty.
pub fn wipe(user: libc::uid_t) -> io::Result<()> {
    if all_empty() {
        return Ok(());
    }
    match sys::fork()? {
        sys::Forked::Child => {
            let ok = sys::become_user(user, user).is_ok()
                && WRITABLE.iter().all(|d| match empty(Path::new(d), user) {
                    Ok(()) => true,
                    Err(e) => e.kind() == io::ErrorKind::NotFound,
                })
                && ipc_objects().is_ok_and(|objects| objects.into_iter().all(|(k, id)| sys::ipc_remove(k, id).is_ok()));
            sys::exit_now(if ok { 0 } else { 1 });
        }
        sys::Forked::Parent(pid) => {
            sys::wait_pid(pid, false)?;
        }
    }
    if all_empty() {
        Ok(())
    } else {
        Err(io::Error::other("a writable directory or a System V IPC object is left after the wipe"))
    }
}

/// Copies the files and directories under `from` into `to` (created), for a
/// compile that needs its sources in a writable directory. Runs as the sandbox user.
pub fn seed(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            seed(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ipc_ids;

    #[test]
    fn ipc_listings_give_their_ids() {
        let header = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n";
        assert_eq!(ipc_ids(header), Some(vec![]));
        let one =
            format!("{header}      4321          3   666          1 10001 10001 10001 10001          0 1765000000\n");
        assert_eq!(ipc_ids(&one), Some(vec![3]));
        assert_eq!(ipc_ids(&format!("{header}garbage\n")), None);
        assert_eq!(ipc_ids(&format!("{header}1\n")), None);
    }
}
