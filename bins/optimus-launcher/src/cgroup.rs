//! The container's own cgroup counters, read from inside (cgroup v1 or v2): the
//! memory the whole process tree holds, the CPU it has used, and OOM kills.
//! Docker mounts them read-only, which is all the launcher needs; the program
//! cannot write them either.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Open counter files; a counter this kernel or mount does not offer is `None`.
pub struct Counters {
    memory_stat: Option<File>,
    /// Fields of `memory_stat` whose sum is the tree's own memory: anonymous
    /// memory plus tmpfs/shared memory (files written to /tmp or /dev/shm, and
    /// the output files).
    memory_keys: [&'static str; 2],
    cpu: Option<(File, CpuFormat)>,
    oom: Option<File>,
    buf: Vec<u8>,
}

#[derive(Clone, Copy)]
enum CpuFormat {
    /// cgroup v1 `cpuacct.usage`: nanoseconds.
    Nanos,
    /// cgroup v2 `cpu.stat`: a `usage_usec` line.
    StatMicros,
}

fn open(paths: &[&str]) -> Option<File> {
    paths.iter().find_map(|p| File::open(p).ok())
}

impl Counters {
    pub fn open() -> Self {
        let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let (memory_stat, memory_keys) = if v2 {
            (open(&["/sys/fs/cgroup/memory.stat"]), ["anon", "shmem"])
        } else {
            (open(&["/sys/fs/cgroup/memory/memory.stat"]), ["rss", "shmem"])
        };
        let cpu = if v2 {
            open(&["/sys/fs/cgroup/cpu.stat"]).map(|f| (f, CpuFormat::StatMicros))
        } else {
            open(&["/sys/fs/cgroup/cpuacct/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage"])
                .map(|f| (f, CpuFormat::Nanos))
        };
        let oom = open(&["/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"]);
        Counters { memory_stat, memory_keys, cpu, oom, buf: vec![0; 8192] }
    }

    fn read(buf: &mut [u8], file: &File) -> Option<usize> {
        file.read_at(buf, 0).ok()
    }

    /// `key value` lines: the value of `key`.
    fn field(text: &[u8], key: &str) -> Option<u64> {
        text.split(|&b| b == b'\n').find_map(|line| {
            let mut parts = line.split(|&b| b == b' ');
            (parts.next()? == key.as_bytes()).then(|| std::str::from_utf8(parts.next()?).ok()?.parse().ok())?
        })
    }

    /// Bytes of memory the container's processes hold now.
    pub fn memory(&mut self) -> Option<u64> {
        let n = Self::read(&mut self.buf, self.memory_stat.as_ref()?)?;
        let text = &self.buf[..n];
        Some(self.memory_keys.iter().filter_map(|k| Self::field(text, k)).sum())
    }

    /// CPU time the container has used, in µs.
    pub fn cpu_us(&mut self) -> Option<u64> {
        let (file, format) = self.cpu.as_ref()?;
        let n = Self::read(&mut self.buf, file)?;
        let text = &self.buf[..n];
        match format {
            CpuFormat::Nanos => std::str::from_utf8(text).ok()?.trim().parse::<u64>().ok().map(|ns| ns / 1000),
            CpuFormat::StatMicros => Self::field(text, "usage_usec"),
        }
    }

    /// How many times the OOM killer has struck in the container.
    pub fn oom_kills(&mut self) -> u64 {
        let Some(file) = self.oom.as_ref() else { return 0 };
        let Some(n) = Self::read(&mut self.buf, file) else { return 0 };
        Self::field(&self.buf[..n], "oom_kill").unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::Counters;

    #[test]
    fn fields_are_read_by_exact_key() {
        let text = b"cache 10\nrss 2048\nrss_huge 4096\nshmem 7\ntotal_rss 99\n";
        assert_eq!(Counters::field(text, "rss"), Some(2048));
        assert_eq!(Counters::field(text, "shmem"), Some(7));
        assert_eq!(Counters::field(text, "anon"), None);
        assert_eq!(Counters::field(b"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"), Some(3));
    }
}
