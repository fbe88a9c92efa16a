//! Killing and reaping everything an `--exec` command left behind, and
//! knowing when it is all gone. The watchdog does it when the command ends;
//! electd does it when the watchdog itself failed. Both are child
//! subreapers, so every descendant whose parent dies becomes their child.
//!
//! One [`Sweep::round`]:
//!
//! 1. `SIGKILL` to the command's process group, but only while the group's
//!    leader is our own unreaped child: once it is reaped the group's number
//!    may be reused, and the signal could reach strangers;
//! 2. `SIGKILL` to each live child, by PID (an unreaped child's PID cannot be
//!    reused), which reaches what left the group (`setsid`, a double fork)
//!    once it was reparented to us;
//! 3. reap the dead children by PID, the leader last, once no child lives.
//!
//! It is all gone when the kernel says we have no child at all (`ECHILD`).
//! A live descendant always has a live ancestor among our children (a
//! process whose parent dies is reparented to us at that moment, not when
//! the parent is reaped), so "no live child" means "no live descendant";
//! zombies count as dead, and a zombie held by a stopped parent is no trap:
//! its parent is killed and the zombie comes to us.
//!
//! Never `wait(-1)`: electd's tokio reaps its own children by PID, and a
//! status reaped here would be lost to it. Callers run a sweep only while
//! they have no child they reap otherwise (electd: after its watchdog has
//! been reaped; the watchdog: every child is the command's).

use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{
    Pid, Signal, WaitId, WaitIdOptions, WaitIdStatus, getpid, kill_process, kill_process_group,
    waitid,
};

/// How long the sleeps between rounds are: a `SIGKILL`ed process is gone
/// within a scheduling tick, and a round costs a scan of `/proc`.
pub const ROUND_PAUSE: Duration = Duration::from_millis(2);

/// A process as `/proc/<pid>/stat` describes it: what a sweep needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Proc {
    pid: i32,
    ppid: i32,
    /// `Z` (zombie) or `X` (dead): exited, not necessarily reaped.
    dead: bool,
}

/// Reads one `/proc/<pid>/stat` line: `pid (comm) state ppid …`. The
/// command name may hold spaces and parentheses, so the fields after it are
/// found from the last `)`.
fn parse_stat(line: &str) -> Option<Proc> {
    // Positive, as `Pid::from_raw` requires.
    let pid = line
        .get(..line.find(" (")?)?
        .parse()
        .ok()
        .filter(|&p| p > 0)?;
    let rest = line.get(line.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        dead: matches!(state, "Z" | "X"),
    })
}

/// The children of process `parent`: from each of its threads'
/// `/proc/<pid>/task/<tid>/children` where the kernel has them (a few small
/// reads, where a scan of `/proc` reads every process's), else from a scan.
/// A process that exists for the whole read is in it; one that comes or
/// goes meanwhile is seen by the next round.
fn children(parent: i32) -> Vec<Proc> {
    listed_children(parent).unwrap_or_else(|| scanned_children(parent))
}

fn listed_children(parent: i32) -> Option<Vec<Proc>> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{parent}/task")).ok()? {
        let task = task.ok()?.path();
        // Absent without CONFIG_PROC_CHILDREN: scan instead.
        let listed = std::fs::read_to_string(task.join("children")).ok()?;
        for pid in listed.split_whitespace() {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                // Reaped meanwhile.
                continue;
            };
            found.extend(parse_stat(&stat).filter(|p| p.ppid == parent));
        }
    }
    Some(found)
}

fn scanned_children(parent: i32) -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let name = name.to_str()?;
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            parse_stat(&std::fs::read_to_string(format!("/proc/{name}/stat")).ok()?)
        })
        .filter(|p| p.ppid == parent)
        .collect()
}

/// Whether `pid` is our child and not yet reaped (alive or a zombie).
fn unreaped_child(pid: Pid) -> bool {
    waitid(
        WaitId::Pid(pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
    )
    .is_ok()
}

/// Whether the kernel says we have no child at all, not even a zombie.
fn no_child() -> bool {
    matches!(
        waitid(
            WaitId::All,
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
        ),
        Err(Errno::CHILD)
    )
}

/// Kills and reaps, round by round, until nothing is left.
#[derive(Debug)]
pub struct Sweep {
    me: i32,
    /// The command's process group (its leader's PID) while the leader is
    /// unreaped; `None` once reaped, or when unknown.
    group: Option<Pid>,
    /// How the leader ended, once this sweep reaped it.
    leader: Option<WaitIdStatus>,
}

impl Sweep {
    /// A sweep of our children; `group` is the command's process group, if
    /// known (its leader's PID).
    pub fn new(group: Option<Pid>) -> Sweep {
        Sweep {
            me: getpid().as_raw_nonzero().get(),
            group,
            leader: None,
        }
    }

    /// The command's process group, while it may still be signalled.
    pub fn group(&self) -> Option<Pid> {
        self.group
    }

    /// How the group's leader ended, if this sweep reaped it.
    pub fn leader(&self) -> Option<&WaitIdStatus> {
        self.leader.as_ref()
    }

    /// One round (see the module's comment). True once we have no child left.
    pub fn round(&mut self) -> bool {
        if no_child() {
            // Nothing to scan `/proc` for (the common case of a guardian
            // whose electd ran no command).
            return true;
        }
        if let Some(group) = self.group {
            if unreaped_child(group) {
                let _ = kill_process_group(group, Signal::KILL);
            } else {
                // Reaped by someone before us (a watchdog that died after
                // emptying the group): its number is no longer ours to use.
                self.group = None;
            }
        }
        let children = children(self.me);
        let mut alive = false;
        for child in children.iter().filter(|c| !c.dead) {
            alive = true;
            if let Some(pid) = Pid::from_raw(child.pid) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
        for child in children.iter().filter(|c| c.dead) {
            let Some(pid) = Pid::from_raw(child.pid) else {
                continue;
            };
            let leader = self.group == Some(pid);
            if leader && alive {
                // Keep the group's number ours while its members may live.
                continue;
            }
            if let Ok(Some(status)) = waitid(
                WaitId::Pid(pid),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
            ) && leader
            {
                self.leader = Some(status);
                self.group = None;
            }
        }
        no_child()
    }

    /// Rounds until nothing is left or `within` has passed, sleeping the
    /// thread in between (nothing else may reap meanwhile). True when
    /// nothing is left.
    pub fn finish_blocking(&mut self, within: Duration) -> bool {
        self.finish_blocking_every(within, ROUND_PAUSE)
    }

    /// [`Sweep::finish_blocking`] with `pause` between rounds: the guardian's
    /// release waits on it, so it sweeps in tighter rounds.
    pub fn finish_blocking_every(&mut self, within: Duration, pause: Duration) -> bool {
        let until = Instant::now() + within;
        loop {
            if self.round() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(pause);
        }
    }
}

/// An exit status as a shell reports it: the code, or 128 + the signal.
pub fn status_code(status: &WaitIdStatus) -> u8 {
    if let Some(code) = status.exit_status() {
        return u8::try_from(code).unwrap_or(1);
    }
    status
        .terminating_signal()
        .and_then(|signal| u8::try_from(128 + signal).ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_past_any_command_name() {
        assert_eq!(
            parse_stat("42 (sh) S 7 42 7 0 -1 4194560 …"),
            Some(Proc {
                pid: 42,
                ppid: 7,
                dead: false
            })
        );
        assert_eq!(
            parse_stat("43 (a (b) c) d) Z 42 42 7 0"),
            Some(Proc {
                pid: 43,
                ppid: 42,
                dead: true
            })
        );
        assert!(parse_stat("44 (x) X 1").is_some_and(|p| p.dead));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("-1 (sh) S 7"), None);
        assert_eq!(parse_stat("45 (sh) R"), None);
    }

    #[test]
    fn our_own_stat_names_our_parent() {
        let me = getpid().as_raw_nonzero().get();
        let line = std::fs::read_to_string("/proc/self/stat").unwrap();
        let proc = parse_stat(&line).unwrap();
        assert_eq!(proc.pid, me);
        assert_eq!(
            proc.ppid,
            rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get())
        );
        assert!(!proc.dead);
    }

    #[test]
    fn children_listed_by_the_kernel_are_the_scanned_ones() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = getpid().as_raw_nonzero().get();
        let pid = child.id() as i32;
        let listed = listed_children(me);
        let scanned = scanned_children(me);
        let _ = child.kill();
        let _ = child.wait();
        assert!(scanned.iter().any(|p| p.pid == pid), "{scanned:?}");
        if let Some(listed) = listed {
            assert!(listed.iter().any(|p| p.pid == pid), "{listed:?}");
            assert!(listed.iter().all(|p| p.ppid == me), "{listed:?}");
        }
    }
}
