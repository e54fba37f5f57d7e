//! The host's compile cache: what a compile that worked left in the program's
//! directory, kept so that an identical compile (same image, language, compile
//! settings, sources and extra files) skips the compiler.
//!
//! - **Keyed by what the compile saw.** [`Key`] is a SHA-256 over the image's id
//!   (which pins the compiler, the runner and its recipes), the language's name,
//!   source file name, compile command, compile time and memory limits, and every
//!   file the sandbox unpacks, each length-prefixed. Only compiles that worked are
//!   kept; a compile error or a compile past its limits is never cached.
//! - **On disk, per host.** One file per key in one directory that every worker of
//!   the host shares, written to a temporary name and renamed into place, so a
//!   reader sees a whole entry or none. Each entry's header carries its key and a
//!   SHA-256 of its body, both checked before use: a truncated or altered entry is
//!   removed and counts as a miss.
//! - **Bounded.** At most [`optimus_protocol::ARTIFACT_LIMIT`] per entry (the
//!   runner says when a compile made more, and it is not kept) and the cache's
//!   `max_bytes` in all; past that, the least recently used entries go (a hit
//!   touches its entry's modification time).
//! - **What the sandbox made is untrusted.** The tar a compile's runner sends
//!   ([`unpack`]) is read as hostile: only directories and regular files with
//!   plain relative names are taken (anything else refuses the whole artifact),
//!   with their modes reduced to 0755 or 0644, and the worker writes its own tar
//!   of them into the next job's archive. The entry is only ever unpacked inside
//!   a sandbox again, as root's read-only program directory.
//!
//! A hit tells one job that another compiled the same sources on this host
//! before (its compile takes no time): a host that must not tell that turns the
//! cache off (`OPTIMUS_COMPILE_CACHE_MB=0`).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use optimus_common::LanguageConfig;
use sha2::{Digest, Sha256};

/// The cache's on-disk format; bumping it makes older entries misses.
const FORMAT: &str = "optimus-compile-cache 1";
/// The most entries (files and directories) one artifact may hold.
pub const MAX_ENTRIES: usize = 4096;
/// A temporary file older than this was left by a worker that died while writing.
const STALE_TEMP: Duration = Duration::from_secs(600);

/// What an identical compile is known by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl Key {
    /// The key of compiling `files` (name, contents; the source file among them)
    /// in `image_id` for `language`, with `compile_memory` bytes of memory.
    pub fn new(image_id: &str, language: &LanguageConfig, compile_memory: i64, files: &[(&str, &[u8])]) -> Self {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(FORMAT.as_bytes());
        field(image_id.as_bytes());
        field(language.name.as_bytes());
        field(language.source_file.as_bytes());
        field(language.compile_command.as_deref().unwrap_or("").as_bytes());
        field(&language.compile_timeout_ms.to_le_bytes());
        field(&compile_memory.to_le_bytes());
        field(&(files.len() as u64).to_le_bytes());
        for (name, data) in files {
            field(name.as_bytes());
            field(data);
        }
        Key(h.finalize().into())
    }

    fn hex(&self) -> String {
        hex(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One thing in a program's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir { path: String },
    File { path: String, data: Vec<u8>, executable: bool },
}

impl Entry {
    /// The path under the program's directory, its bytes and its mode.
    pub fn parts(&self) -> (&str, &[u8], tar::EntryType, u32) {
        match self {
            Entry::Dir { path } => (path, &[], tar::EntryType::Directory, 0o755),
            Entry::File { path, data, executable } => {
                (path, data, tar::EntryType::Regular, if *executable { 0o755 } else { 0o644 })
            }
        }
    }
}

/// A cached compile: what the compiler printed, and the program's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub output: String,
    pub entries: Vec<Entry>,
}

/// Reads the tar of a program's directory that a sandbox sent, as hostile input:
/// directories and regular files only, each name a plain relative path (`.`
/// prefixes dropped; no `..`, no root, no NUL), at most [`MAX_ENTRIES`].
pub fn unpack(tar: &[u8]) -> Result<Vec<Entry>, String> {
    let mut archive = tar::Archive::new(tar);
    let mut entries = Vec::new();
    for entry in archive.entries().map_err(|e| format!("not a tar: {e}"))? {
        let mut entry = entry.map_err(|e| format!("not a tar: {e}"))?;
        let raw = entry.path_bytes().into_owned();
        let path = plain_path(&raw).ok_or_else(|| format!("refused name {:?}", String::from_utf8_lossy(&raw)))?;
        let kind = entry.header().entry_type();
        if path.is_empty() {
            if kind.is_dir() {
                continue; // the directory itself
            }
            return Err("an entry without a name".into());
        }
        if entries.len() == MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} entries"));
        }
        if kind.is_dir() {
            entries.push(Entry::Dir { path });
        } else if kind == tar::EntryType::Regular || kind == tar::EntryType::Continuous {
            let executable = entry.header().mode().map_err(|e| format!("bad mode: {e}"))? & 0o111 != 0;
            let mut data = Vec::with_capacity(entry.size().min(tar.len() as u64) as usize);
            entry.read_to_end(&mut data).map_err(|e| format!("cannot read {path}: {e}"))?;
            entries.push(Entry::File { path, data, executable });
        } else {
            return Err(format!("{path} is neither a file nor a directory ({kind:?})"));
        }
    }
    Ok(entries)
}

/// `raw` as a plain relative path ("" for the directory itself), if it is one.
fn plain_path(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    if text.contains('\0') || text.len() > 4096 {
        return None;
    }
    let mut parts = Vec::new();
    for component in Path::new(text).components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// Appends one entry, owned by no one in particular (the runner unpacks with
/// `--no-same-owner`), to a tar being written in memory: the worker's one way of
/// writing a tar entry, for the cache's tars and for the jobs' archives.
pub fn append(tar: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], kind: tar::EntryType, mode: u32) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_cksum();
    tar.append_data(&mut header, path, data).expect("writing to memory");
}

/// The tar of `entries`, as the cache keeps them.
fn pack(entries: &[Entry]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for entry in entries {
        let (path, data, kind, mode) = entry.parts();
        append(&mut tar, path, data, kind, mode);
    }
    tar.into_inner().expect("writing to memory")
}

/// The host's compile cache, in one directory.
#[derive(Debug)]
pub struct CompileCache {
    dir: PathBuf,
    max_bytes: u64,
}

impl CompileCache {
    /// Opens (making it if need be) the cache in `dir`, holding at most
    /// `max_bytes` of entries. The directory must be this process's user's own
    /// and no one else's to write (0700 is set): whoever can write it decides
    /// what jobs run, so one made first by another user (or a symlink) is refused.
    pub fn open(dir: PathBuf, max_bytes: u64) -> io::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        let refuse = |why: &str| io::Error::other(format!("{}: {why}", dir.display()));
        let meta = fs::symlink_metadata(&dir)?;
        if !meta.is_dir() {
            return Err(refuse("not a directory (a symlink is refused)"));
        }
        // A file made here is this process's user's: the directory must be too.
        let probe = tempfile_in(&dir)?;
        let mine = fs::metadata(&probe).map(|m| m.uid());
        let _ = fs::remove_file(&probe);
        if mine? != meta.uid() {
            return Err(refuse("owned by another user; use a directory of the worker's own"));
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        Ok(CompileCache { dir, max_bytes })
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(key.hex())
    }

    /// The artifact of `key`, if the cache holds a whole, unaltered one.
    pub fn get(&self, key: &Key) -> Option<Artifact> {
        let path = self.path(key);
        let bytes = fs::read(&path).ok()?;
        match decode(key, &bytes) {
            Ok(artifact) => {
                // The entry was just used: the last to be evicted.
                if let Ok(file) = fs::File::options().write(true).open(&path) {
                    let _ = file.set_modified(SystemTime::now());
                }
                Some(artifact)
            }
            Err(why) => {
                tracing::warn!(entry = %path.display(), %why, "compile cache entry removed");
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Keeps `artifact` under `key`, then evicts the least recently used entries
    /// past the cache's size. An entry larger than the whole cache is not kept.
    pub fn put(&self, key: &Key, artifact: &Artifact) -> io::Result<bool> {
        let body = [artifact.output.as_bytes(), &pack(&artifact.entries)].concat();
        let header = format!("{FORMAT} {} {} {}\n", key.hex(), hex(&Sha256::digest(&body)), artifact.output.len());
        if (header.len() + body.len()) as u64 > self.max_bytes {
            return Ok(false);
        }
        let temp = tempfile_in(&self.dir)?;
        let written = fs::OpenOptions::new().append(true).open(&temp).and_then(|mut f| {
            f.write_all(header.as_bytes())?;
            f.write_all(&body)
        });
        if let Err(e) = written.and_then(|_| fs::rename(&temp, self.path(key))) {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        self.evict()?;
        Ok(true)
    }

    /// Removes the least recently used entries until the rest fit, and temporary
    /// files that dead writers left.
    fn evict(&self) -> io::Result<()> {
        let now = SystemTime::now();
        let mut entries = Vec::new();
        let mut total = 0u64;
        for dirent in fs::read_dir(&self.dir)? {
            let Ok(dirent) = dirent else { continue };
            let Ok(meta) = dirent.metadata() else { continue };
            let modified = meta.modified().unwrap_or(now);
            if dirent.file_name().to_string_lossy().starts_with(".tmp-") {
                if now.duration_since(modified).unwrap_or_default() > STALE_TEMP {
                    let _ = fs::remove_file(dirent.path());
                }
                continue;
            }
            total += meta.len();
            entries.push((modified, meta.len(), dirent.path()));
        }
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            // Another worker may have removed it first: it is gone either way.
            let _ = fs::remove_file(path);
            total = total.saturating_sub(len);
        }
        Ok(())
    }
}

/// A new, empty temporary file in `dir` (never one that was there).
fn tempfile_in(dir: &Path) -> io::Result<PathBuf> {
    let path = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    Ok(path)
}

/// An entry's artifact, once its header's key and hash match.
fn decode(key: &Key, bytes: &[u8]) -> Result<Artifact, String> {
    let nl = bytes.iter().take(256).position(|&b| b == b'\n').ok_or("no header")?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| "header is not text")?;
    let body = &bytes[nl + 1..];
    let fields = header.strip_prefix(FORMAT).ok_or("another format")?;
    let [stored_key, hash, output_len] = fields.split_whitespace().collect::<Vec<_>>()[..] else {
        return Err("bad header".into());
    };
    if stored_key != key.hex() {
        return Err("entry of another key".into());
    }
    if hash != hex(&Sha256::digest(body)) {
        return Err("contents do not match their hash".into());
    }
    let output_len: usize = output_len.parse().map_err(|_| "bad output length")?;
    let output = body.get(..output_len).ok_or("short entry")?;
    let output = String::from_utf8(output.to_vec()).map_err(|_| "output is not text")?;
    Ok(Artifact { output, entries: unpack(&body[output_len..])? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn language() -> LanguageConfig {
        let mut lang = LanguageConfig::new("c", "c", "12");
        lang.compiled = true;
        lang
    }

    fn artifact(bytes: usize) -> Artifact {
        Artifact {
            output: "warning: unused\n".into(),
            entries: vec![
                Entry::File { path: "main.c".into(), data: b"int main(){}".to_vec(), executable: false },
                Entry::Dir { path: "pkg".into() },
                Entry::File { path: "pkg/main".into(), data: vec![7; bytes], executable: true },
            ],
        }
    }

    fn cache(max_bytes: u64) -> (CompileCache, PathBuf) {
        let dir = std::env::temp_dir().join(format!("optimus-cache-test-{}", uuid::Uuid::new_v4()));
        (CompileCache::open(dir.clone(), max_bytes).unwrap(), dir)
    }

    #[test]
    fn the_key_changes_with_every_input_of_the_compile() {
        let lang = language();
        let base = Key::new("sha256:a", &lang, 512, &[("main.c", b"x")]);
        assert_eq!(base, Key::new("sha256:a", &lang, 512, &[("main.c", b"x")]));
        let mut other_cmd = lang.clone();
        other_cmd.compile_command = Some("gcc -O0 main.c".into());
        let mut other_timeout = lang.clone();
        other_timeout.compile_timeout_ms += 1;
        for other in [
            Key::new("sha256:b", &lang, 512, &[("main.c", b"x")]),
            Key::new("sha256:a", &other_cmd, 512, &[("main.c", b"x")]),
            Key::new("sha256:a", &other_timeout, 512, &[("main.c", b"x")]),
            Key::new("sha256:a", &lang, 1024, &[("main.c", b"x")]),
            Key::new("sha256:a", &lang, 512, &[("main.c", b"y")]),
            Key::new("sha256:a", &lang, 512, &[("main.c", b"x"), ("data.txt", b"")]),
            // Moving bytes between a name and its contents is another compile.
            Key::new("sha256:a", &lang, 512, &[("main.cx", b"")]),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn a_directory_not_the_workers_own_is_refused() {
        let (_, dir) = cache(1);
        let link = dir.with_extension("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(CompileCache::open(link.clone(), 1).is_err(), "a symlinked cache directory was used");
        fs::remove_file(link).unwrap();
        // Another user's directory (made so here by root, as CI runs) is refused too.
        if std::os::unix::fs::chown(&dir, Some(54321), None).is_ok() {
            assert!(CompileCache::open(dir.clone(), 1).is_err(), "another user's cache directory was used");
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_entry_reads_back_as_it_was_kept() {
        let (cache, dir) = cache(1 << 20);
        let key = Key::new("sha256:a", &language(), 1, &[("main.c", b"x")]);
        assert_eq!(cache.get(&key), None);
        assert!(cache.put(&key, &artifact(100)).unwrap());
        assert_eq!(cache.get(&key), Some(artifact(100)));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_altered_or_truncated_entry_is_a_miss_and_is_removed() {
        let (cache, dir) = cache(1 << 20);
        let key = Key::new("sha256:a", &language(), 1, &[("main.c", b"x")]);
        cache.put(&key, &artifact(100)).unwrap();
        let path = cache.path(&key);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 600;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(cache.get(&key), None);
        assert!(!path.exists());
        cache.put(&key, &artifact(100)).unwrap();
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(cache.get(&key), None);
        // Another key's entry under this key's name is not served either.
        let other = Key::new("sha256:a", &language(), 2, &[("main.c", b"x")]);
        cache.put(&other, &artifact(100)).unwrap();
        fs::rename(cache.path(&other), &path).unwrap();
        assert_eq!(cache.get(&key), None);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn past_its_size_the_least_recently_used_entries_go() {
        let key = |i: i64| Key::new("sha256:a", &language(), i, &[]);
        let (probe, dir) = cache(1 << 20);
        probe.put(&key(0), &artifact(10_000)).unwrap();
        let size = fs::metadata(probe.path(&key(0))).unwrap().len();
        fs::remove_dir_all(dir).unwrap();
        // Room for three entries.
        let (cache, dir) = cache(size * 3 + size / 2);
        for i in 0..3 {
            cache.put(&key(i), &artifact(10_000)).unwrap();
            // Modification times must differ for the order to be known.
            let when = SystemTime::now() - Duration::from_secs(100 - i as u64);
            fs::File::options().write(true).open(cache.path(&key(i))).unwrap().set_modified(when).unwrap();
        }
        // Using the oldest makes it the newest; the next one is evicted instead.
        assert!(cache.get(&key(0)).is_some());
        cache.put(&key(3), &artifact(10_000)).unwrap();
        assert!(cache.get(&key(1)).is_none(), "the least recently used entry stayed");
        for i in [0, 2, 3] {
            assert!(cache.get(&key(i)).is_some(), "entry {i} went");
        }
        // An entry larger than the whole cache is not kept.
        assert!(!cache.put(&key(9), &artifact(size as usize * 4)).unwrap());
        fs::remove_dir_all(dir).unwrap();
    }

    fn tar_with(kind: tar::EntryType, path: &str, link: Option<&str>) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(0);
        header.set_mode(0o4777);
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        // Written raw so that names the builder would refuse reach the reader.
        header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        tar.append(&header, &[][..]).unwrap();
        tar.into_inner().unwrap()
    }

    #[test]
    fn a_hostile_artifact_is_refused_whole() {
        use tar::EntryType::*;
        for (kind, path, link) in [
            (Symlink, "main", Some("/etc/shadow")),
            (Link, "main", Some("../../judge/job/tests/0.in")),
            (Char, "tty", None),
            (Block, "disk", None),
            (Fifo, "fifo", None),
            (Regular, "../escape", None),
            (Regular, "/abs", None),
            (Regular, "a/../../b", None),
        ] {
            assert!(unpack(&tar_with(kind, path, link)).is_err(), "{kind:?} {path} was taken");
        }
        assert!(unpack(&[b'x'; 1024]).is_err(), "bytes that are no tar were taken");
    }

    #[test]
    fn a_plain_artifact_keeps_only_the_executable_bit() {
        let entries = unpack(&tar_with(tar::EntryType::Regular, "./main", None)).unwrap();
        assert_eq!(entries, vec![Entry::File { path: "main".into(), data: vec![], executable: true }]);
        let (_, _, _, mode) = entries[0].parts();
        assert_eq!(mode, 0o755, "setuid and world-write are dropped");
        let many: Vec<Entry> =
            (0..=MAX_ENTRIES).map(|i| Entry::File { path: format!("f{i}"), data: vec![], executable: false }).collect();
        assert!(unpack(&pack(&many)).is_err(), "more than MAX_ENTRIES taken");
        assert_eq!(unpack(&pack(&many[..10])).unwrap(), many[..10]);
    }
}
