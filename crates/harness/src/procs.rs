//! Process-tree inspection for tests, from `/proc`: who is whose child,
//! who is in which process group, who is a zombie.
//!
//! A zombie (or a process already dead, `X`) has exited but is not reaped:
//! it does not run, but a parent that leaves it so has a leak.

use rustix::process::{Pid, Signal, kill_process};

/// One process, as `/proc/<pid>/stat` describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc {
    /// Its PID.
    pub pid: u32,
    /// Its parent's PID.
    pub ppid: u32,
    /// Its process group.
    pub pgrp: u32,
    /// Its state letter: `R`, `S`, `D`, `T` (stopped), `Z` (zombie), …
    pub state: char,
}

impl Proc {
    /// Exited but not reaped.
    pub fn zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Reads a `/proc/<pid>/stat` line. The command name may hold spaces and
/// parentheses, so the fields after it are found from the last `)`.
pub fn parse(line: &str) -> Option<Proc> {
    let pid = line.get(..line.find(" (")?)?.parse().ok()?;
    let mut fields = line.get(line.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        pgrp,
        state,
    })
}

/// Process `pid` now; `None` once it is reaped (or never existed).
pub fn stat(pid: u32) -> Option<Proc> {
    parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether `pid` exists and is not a zombie.
pub fn running(pid: u32) -> bool {
    stat(pid).is_some_and(|p| !p.zombie())
}

/// Every process now.
pub fn all() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .collect()
}

/// The children of `pid` (zombies included).
pub fn children(pid: u32) -> Vec<Proc> {
    all().into_iter().filter(|p| p.ppid == pid).collect()
}

/// The members of process group `pgid` (zombies included).
pub fn group(pgid: u32) -> Vec<Proc> {
    all().into_iter().filter(|p| p.pgrp == pgid).collect()
}

/// `pid` and everything below it.
pub fn tree(pid: u32) -> Vec<Proc> {
    let everyone = all();
    let mut found: Vec<Proc> = everyone.iter().filter(|p| p.pid == pid).copied().collect();
    let mut next = 0;
    while next < found.len() {
        let parent = found[next].pid;
        found.extend(everyone.iter().filter(|p| p.ppid == parent));
        next += 1;
    }
    found
}

/// Sends `signal` to `pid`, a process the test found in a tree it owns.
pub fn signal(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn stat_lines_and_the_live_tree() {
        assert_eq!(
            parse("43 (a (b) c) d) Z 42 41 7 0"),
            Some(Proc {
                pid: 43,
                ppid: 42,
                pgrp: 41,
                state: 'Z'
            })
        );
        assert!(parse("43 (a) Z 42").is_none());
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .process_group(0)
            .spawn()
            .unwrap();
        let me = std::process::id();
        let pid = child.id();
        let proc = stat(pid).unwrap();
        assert_eq!((proc.ppid, proc.pgrp), (me, pid));
        assert!(running(pid));
        assert!(children(me).iter().any(|p| p.pid == pid));
        assert_eq!(group(pid).len(), 1);
        assert!(tree(me).iter().any(|p| p.pid == pid));
        signal(pid, Signal::KILL);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !stat(pid).is_some_and(|p| p.zombie()) {
            assert!(std::time::Instant::now() < until, "{pid} never died");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!running(pid));
        child.wait().unwrap();
        assert_eq!(stat(pid), None);
    }
}
