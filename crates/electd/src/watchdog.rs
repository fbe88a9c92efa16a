//! The `--exec` watchdog: a small process that is the command's parent, so
//! the command never outlives its leadership even when electd cannot act.
//!
//! electd starts it (its own binary, in this hidden mode) with the grace, the
//! current deadline and the command. The watchdog puts the command in its own
//! process group and then, single-threaded, waits on two file descriptors:
//!
//! * its stdin, a pipe from electd: `extend <deadline_ns>` after each
//!   confirmed renewal, `stop` when leadership ends. End-of-file means electd
//!   died (even `kill -9` closes the pipe): the group is killed at once;
//! * a pidfd of the command: when it exits, the rest of its group is killed
//!   and every orphan is reaped (the watchdog is a child subreaper).
//!
//! With no extension the group gets `SIGTERM` at `deadline − grace` and
//! `SIGKILL` at the deadline, so a paused (SIGSTOP) electd cannot keep the
//! command running past its leadership. Times are `CLOCK_MONOTONIC` ns, the
//! clock of electd's journal.
//!
//! Exit status: the command's own, or 128 + the signal that killed it; 127
//! when it could not be started.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{
    Pid, PidfdFlags, Signal, WaitOptions, getpid, kill_process_group, pidfd_open,
    set_child_subreaper, wait, waitpid,
};

/// `argv[1]` that selects this mode.
pub const MODE: &str = "__electd-exec-watchdog";

/// Parsed arguments: `MODE <grace_ns> <deadline_ns> -- CMD ARGS…`.
struct Args {
    grace: u64,
    deadline: u64,
    command: Vec<OsString>,
}

fn parse(args: &[OsString]) -> Option<Args> {
    let grace = args.get(2)?.to_str()?.parse().ok()?;
    let deadline = args.get(3)?.to_str()?.parse().ok()?;
    if args.get(4)?.to_str()? != "--" || args.len() < 6 {
        return None;
    }
    Some(Args {
        grace,
        deadline,
        command: args[5..].to_vec(),
    })
}

fn now() -> u64 {
    elect::monotonic_ns()
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "electd exec: {message}");
    ExitCode::from(127)
}

/// Runs the watchdog; `args` is the whole `argv`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let Some(args) = parse(&args) else {
        return fail("usage: electd __electd-exec-watchdog GRACE_NS DEADLINE_NS -- CMD [ARGS...]");
    };
    // Orphaned grandchildren come to us, so we can reap them.
    let _ = set_child_subreaper(Some(getpid()));
    let child = match Command::new(&args.command[0])
        .args(&args.command[1..])
        .process_group(0)
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            return fail(&format!(
                "cannot run {}: {err}",
                args.command[0].to_string_lossy()
            ));
        }
    };
    let Some(pid) = Pid::from_raw(child.id() as i32) else {
        return fail("the command has no process id");
    };
    let pidfd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(err) => {
            let _ = kill_process_group(pid, Signal::KILL);
            return fail(&format!("cannot watch the command: {err}"));
        }
    };
    supervise(pid, &pidfd, args.grace, args.deadline);
    let status = reap(pid);
    let _ = kill_process_group(pid, Signal::KILL);
    reap_orphans();
    status
}

/// Holds the deadline until the command exits.
fn supervise(group: Pid, pidfd: &impl AsFd, grace: u64, mut deadline: u64) {
    let stdin = std::io::stdin();
    let mut stdin_open = true;
    let mut stop_requested: Option<u64> = None;
    let mut termed = false;
    let mut killed = false;
    let mut pending = Vec::new();
    loop {
        let now = now();
        let (term_at, kill_at) = match stop_requested {
            Some(at) => (at, deadline.min(at.saturating_add(grace))),
            None => (deadline.saturating_sub(grace), deadline),
        };
        if !killed && now >= kill_at {
            let _ = kill_process_group(group, Signal::KILL);
            killed = true;
            termed = true;
        }
        if !termed && now >= term_at {
            let _ = kill_process_group(group, Signal::TERM);
            termed = true;
        }
        let next = [(!termed).then_some(term_at), (!killed).then_some(kill_at)]
            .into_iter()
            .flatten()
            .min();
        let timeout = next.map(|at| {
            let wait = Duration::from_nanos(at.saturating_sub(now));
            Timespec {
                tv_sec: wait.as_secs() as i64,
                tv_nsec: i64::from(wait.subsec_nanos()),
            }
        });
        let stdin_fd = stdin.as_fd();
        let mut fds = vec![PollFd::new(pidfd, PollFlags::IN)];
        if stdin_open {
            fds.push(PollFd::new(&stdin_fd, PollFlags::IN));
        }
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => {
                // Cannot wait any more: do not leave the command unguarded.
                let _ = kill_process_group(group, Signal::KILL);
                return;
            }
        }
        if !fds[0].revents().is_empty() {
            return;
        }
        if stdin_open && !fds[1].revents().is_empty() {
            let mut buf = [0u8; 512];
            match rustix::io::read(stdin_fd, &mut buf) {
                Ok(0) | Err(_) => {
                    // electd is gone: its leadership ends with it.
                    stdin_open = false;
                    let _ = kill_process_group(group, Signal::KILL);
                    killed = true;
                    termed = true;
                }
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=end).collect();
                        match std::str::from_utf8(&line).map(str::trim) {
                            Ok("stop") => {
                                stop_requested.get_or_insert(now);
                            }
                            Ok(line) => {
                                if let Some(ns) = line
                                    .strip_prefix("extend ")
                                    .and_then(|n| n.parse::<u64>().ok())
                                {
                                    deadline = deadline.max(ns);
                                }
                            }
                            Err(_) => {}
                        }
                    }
                }
            }
        }
    }
}

/// Waits for the command itself and turns its status into ours.
fn reap(pid: Pid) -> ExitCode {
    loop {
        match waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                if let Some(code) = status.exit_status() {
                    return ExitCode::from(u8::try_from(code).unwrap_or(1));
                }
                if let Some(signal) = status.terminating_signal() {
                    return ExitCode::from(u8::try_from(128 + signal).unwrap_or(255));
                }
            }
            Err(rustix::io::Errno::INTR) => continue,
            _ => return ExitCode::from(1),
        }
    }
}

/// Reaps every child left (grandchildren reparented to us), for up to a second.
fn reap_orphans() {
    for _ in 0..100 {
        // `wait`, not `waitpid(None, …)`: that is pid 0, children in *our*
        // process group only, and the orphans are in the command's.
        match wait(WaitOptions::NOHANG) {
            Ok(Some(_)) => continue,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            // No children left.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn arguments() {
        let a = parse(&os(&["electd", MODE, "5", "9", "--", "sh", "-c", "x"])).unwrap();
        assert_eq!((a.grace, a.deadline), (5, 9));
        assert_eq!(a.command, os(&["sh", "-c", "x"]));
        assert!(parse(&os(&["electd", MODE, "5", "9", "--"])).is_none());
        assert!(parse(&os(&["electd", MODE, "x", "9", "--", "sh"])).is_none());
    }
}
