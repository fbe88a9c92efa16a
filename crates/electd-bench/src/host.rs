//! Facts of the host the benchmark runs on: what it is, when, which
//! programs it has, and how much memory a process holds.

use std::path::{Path, PathBuf};

/// A process's resident set (kB), 0 when unknown.
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// The CPU, cores, memory and kernel, in one line.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split(':')
                .nth(1)
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb / 1024 / 1024);
    let uname = rustix::system::uname();
    format!(
        "{cpu}, {cores} cores, {memory} GiB, Linux {}",
        uname.release().to_string_lossy()
    )
}

/// Now, in UTC, to the minute.
pub fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// CPU a process has used so far, over all its threads, by the scheduler's
/// own account (`/proc/PID/task/*/schedstat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    /// Time on a CPU (ns).
    pub ns: u64,
    /// Times it was scheduled in: each wake-up is one at least.
    pub slices: u64,
}

/// `None` when the process is gone.
pub fn cpu(pid: u32) -> Option<Cpu> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut cpu = Cpu::default();
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let mut fields = text
            .split_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or(0));
        cpu.ns += fields.next().unwrap_or(0);
        // The second field is the time waited on a run queue.
        cpu.slices += fields.nth(1).unwrap_or(0);
    }
    Some(cpu)
}
