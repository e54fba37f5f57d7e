//! The sandbox user's writable places, emptied before every run so that nothing a
//! test wrote is there for the next test (or the next job in a reused container).
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

/// Whether every writable place is empty, as root sees it; a directory root
/// cannot even read counts as not empty.
pub fn all_empty() -> bool {
    WRITABLE.iter().all(|dir| match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    })
}

/// Empties `dir` (keeping `dir` itself) without following links and without
/// building long paths: it walks down with chdir, so no nesting depth or name
/// length stops it. Runs as the owner of what it removes.
pub fn empty(dir: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.uid() == crate::SANDBOX_UID {
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

/// Empties every writable place as the sandbox user, then checks as root that
/// nothing is left. Skips the fork when everything is already empty.
pub fn wipe() -> io::Result<()> {
    if all_empty() {
        return Ok(());
    }
    match sys::fork()? {
        sys::Forked::Child => {
            let ok = sys::become_user(crate::SANDBOX_UID, crate::SANDBOX_GID).is_ok()
                && WRITABLE.iter().all(|d| match empty(Path::new(d)) {
                    Ok(()) => true,
                    Err(e) => e.kind() == io::ErrorKind::NotFound,
                });
            sys::exit_now(if ok { 0 } else { 1 });
        }
        sys::Forked::Parent(pid) => {
            sys::wait_pid(pid, false)?;
        }
    }
    if all_empty() {
        Ok(())
    } else {
        Err(io::Error::other("a writable directory is not empty after the wipe"))
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
