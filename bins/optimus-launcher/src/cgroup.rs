//! The container's own cgroup counters, read from inside (cgroup v1 or v2): the
//! memory the whole process tree holds, the CPU it has used, and OOM kills.
//! Docker mounts them read-only, which is all the launcher needs; the program
//! cannot write them either.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Open counter files; a counter this kernel or mount does not offer is `None`.
pub struct Counters {
    memory_stat: Option<File>,
    /// How the tree's own memory is summed from `memory_stat`.
    memory: Sum,
    /// cgroup v1's kernel memory counter, where there is one.
    kmem: Option<File>,
    cpu: Option<(File, CpuFormat)>,
    oom: Option<File>,
    buf: Vec<u8>,
}

/// The tree's own memory, from `memory.stat` fields: anonymous memory, tmpfs and
/// shared memory (files written to /tmp or /dev/shm, and the output files), and on
/// cgroup v2 the kernel memory charged for it too: pipe and socket buffers, page
/// tables, kernel stacks, slab it cannot give back. Reclaimable slab (the dentry
/// and inode caches of files it merely opened) and the page cache are left out:
/// the kernel drops them under pressure, and they are not the program's to hold.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sum {
    /// cgroup v2 with the `kernel` field (Linux 5.18 on): anon + shmem + sock +
    /// kernel - slab_reclaimable.
    V2Kernel,
    /// Older cgroup v2: the kernel parts it lists one by one (pipe buffers are
    /// not among them).
    V2Parts,
    /// cgroup v1: rss + shmem, plus the separate kernel memory counter
    /// (`memory.kmem.usage_in_bytes`, all of it: v1 does not split its slab).
    V1,
}

impl Sum {
    fn of(self, text: &[u8]) -> u64 {
        let f = |key| Counters::field(text, key).unwrap_or(0);
        match self {
            Sum::V2Kernel => (f("anon") + f("shmem") + f("sock") + f("kernel")).saturating_sub(f("slab_reclaimable")),
            Sum::V2Parts => {
                f("anon") + f("shmem") + f("sock") + f("kernel_stack") + f("pagetables") + f("slab_unreclaimable")
            }
            Sum::V1 => f("rss") + f("shmem"),
        }
    }
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
        let memory_stat =
            if v2 { open(&["/sys/fs/cgroup/memory.stat"]) } else { open(&["/sys/fs/cgroup/memory/memory.stat"]) };
        let mut buf = vec![0; 8192];
        let memory = match &memory_stat {
            Some(file) if v2 => {
                let n = Self::read(&mut buf, file).unwrap_or(0);
                if Self::field(&buf[..n], "kernel").is_some() {
                    Sum::V2Kernel
                } else {
                    Sum::V2Parts
                }
            }
            _ => Sum::V1,
        };
        let kmem = if v2 { None } else { open(&["/sys/fs/cgroup/memory/memory.kmem.usage_in_bytes"]) };
        let cpu = if v2 {
            open(&["/sys/fs/cgroup/cpu.stat"]).map(|f| (f, CpuFormat::StatMicros))
        } else {
            open(&["/sys/fs/cgroup/cpuacct/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage"])
                .map(|f| (f, CpuFormat::Nanos))
        };
        let oom = open(&["/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"]);
        Counters { memory_stat, memory, kmem, cpu, oom, buf }
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
        let stat = self.memory.of(&self.buf[..n]);
        let kmem = match &self.kmem {
            Some(file) => {
                let n = Self::read(&mut self.buf, file)?;
                std::str::from_utf8(&self.buf[..n]).ok()?.trim().parse::<u64>().ok()?
            }
            None => 0,
        };
        Some(stat + kmem)
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
    use super::{Counters, Sum};

    #[test]
    fn fields_are_read_by_exact_key() {
        let text = b"cache 10\nrss 2048\nrss_huge 4096\nshmem 7\ntotal_rss 99\n";
        assert_eq!(Counters::field(text, "rss"), Some(2048));
        assert_eq!(Counters::field(text, "shmem"), Some(7));
        assert_eq!(Counters::field(text, "anon"), None);
        assert_eq!(Counters::field(b"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"), Some(3));
    }

    #[test]
    fn memory_counts_kernel_memory_but_not_what_the_kernel_can_drop() {
        let v2 = b"anon 1000\nfile 50000\nkernel 700\nkernel_stack 100\npagetables 200\nsock 30\nshmem 5\nslab_reclaimable 300\nslab_unreclaimable 40\n";
        assert_eq!(Sum::V2Kernel.of(v2), 1000 + 5 + 30 + 700 - 300);
        assert_eq!(Sum::V2Parts.of(v2), 1000 + 5 + 30 + 100 + 200 + 40);
        assert_eq!(Sum::V1.of(b"cache 10\nrss 2048\nshmem 7\n"), 2055);
    }
}
