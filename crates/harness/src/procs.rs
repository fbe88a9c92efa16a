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

/// Processes stopped with `SIGSTOP`, as a paused host's are: continued with
/// `SIGCONT` when dropped, also when a test fails.
#[derive(Debug)]
pub struct Stopped {
    pids: Vec<u32>,
}

impl Stopped {
    /// Stops `root` and everything below it. A process forked while the
    /// tree is being stopped is found by the next pass; the last pass finds
    /// none new, since a stopped parent forks no more.
    pub fn tree(root: u32) -> Stopped {
        let mut pids: Vec<u32> = Vec::new();
        loop {
            let new: Vec<u32> = tree(root)
                .into_iter()
                .map(|p| p.pid)
                .filter(|pid| !pids.contains(pid))
                .collect();
            if new.is_empty() {
                return Stopped { pids };
            }
            for pid in new {
                signal(pid, Signal::STOP);
                pids.push(pid);
            }
        }
    }

    /// The processes still stopped, root first, parents before children.
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// Continues `pid` alone, ahead of the others.
    pub fn resume(&mut self, pid: u32) {
        if let Some(at) = self.pids.iter().position(|&p| p == pid) {
            self.pids.remove(at);
            signal(pid, Signal::CONT);
        }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for &pid in &self.pids {
            signal(pid, Signal::CONT);
        }
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

    #[test]
    fn a_stopped_tree_runs_again_when_dropped() {
        let mut parent = std::process::Command::new("sh")
            .args(["-c", "sleep 10 & wait"])
            .spawn()
            .unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while tree(parent.id()).len() < 2 {
            assert!(std::time::Instant::now() < until, "sh never started sleep");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut stopped = Stopped::tree(parent.id());
        let pids = stopped.pids().to_vec();
        assert_eq!(pids.len(), 2);
        assert_eq!(pids[0], parent.id());
        let state = |pid| stat(pid).unwrap().state;
        // SIGSTOP takes effect asynchronously: wait for each to show it.
        while pids.iter().any(|&pid| state(pid) != 'T') {
            assert!(std::time::Instant::now() < until, "{pids:?} never stopped");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        stopped.resume(pids[1]);
        assert_eq!(stopped.pids(), &pids[..1]);
        while state(pids[1]) == 'T' {
            assert!(
                std::time::Instant::now() < until,
                "{} stayed stopped",
                pids[1]
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(state(pids[0]), 'T');
        drop(stopped);
        while state(pids[0]) == 'T' {
            assert!(
                std::time::Instant::now() < until,
                "{} stayed stopped",
                pids[0]
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        signal(pids[1], Signal::KILL);
        parent.wait().unwrap();
    }
}
