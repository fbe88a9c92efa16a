//! The `--exec` watchdog: a small process that is the command's parent, so
//! the command never outlives its leadership even when electd cannot act.
//!
//! electd starts it (its own binary, in this hidden mode) with the grace, the
//! current deadline and the command. Its stdin is one end of a Unix socket
//! pair whose other end only electd holds. The watchdog puts the command in
//! its own process group, says `pid <pid>` on the socket, and then,
//! single-threaded, waits on two file descriptors:
//!
//! * the socket: `extend <deadline_ns>` after each confirmed renewal, `stop`
//!   when leadership ends; each line is answered `ok`, so electd knows the
//!   watchdog is not stopped or stuck. End-of-file means electd died (even
//!   `kill -9` closes the socket): the group is killed at once;
//! * a pidfd of the command: when it exits, everything it left is killed and
//!   reaped (see `contain.rs`: the rest of its group, and descendants that
//!   left the group, which come to the watchdog as a child subreaper), and
//!   the watchdog says `exited <status>` and exits with that status.
//!
//! With no extension the group gets `SIGTERM` at `deadline − grace` and
//! `SIGKILL` at the deadline, so a paused (SIGSTOP) electd cannot keep the
//! command running past its leadership. Times are `CLOCK_MONOTONIC` ns, the
//! clock of electd's journal.
//!
//! The command stays unreaped until nothing else of it lives, so its
//! process group's number stays ours to signal. `exited` is said only once
//! the watchdog has no child left; if it cannot get there in time it exits
//! without saying it, and electd (the next subreaper up) takes over.
//!
//! Exit status: the command's own, or 128 + the signal that killed it; 127
//! when it could not be started.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{
    Pid, PidfdFlags, Signal, getpid, kill_process_group, pidfd_open, set_child_subreaper,
};

use super::contain::{Sweep, status_code};
use super::protocol::{Order, Report};

/// `argv[1]` that selects this mode.
pub const MODE: &str = "__electd-exec-watchdog";

/// How long the watchdog kills and reaps what the command left before it
/// leaves the rest to electd (a process in uninterruptible sleep may take
/// longer to die than any bound).
const SWEEP_WITHIN: Duration = Duration::from_secs(1);

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

/// Writes one line to electd. A failure means electd is gone, which the
/// next read reports as end-of-file; Rust ignores `SIGPIPE`, so it cannot
/// kill us.
fn say(control: BorrowedFd<'_>, line: &str) {
    let mut bytes = line.as_bytes();
    while !bytes.is_empty() {
        match rustix::io::write(control, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

fn fail(control: BorrowedFd<'_>, message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "electd exec: {message}");
    say(control, &Report::Exited(127).line());
    ExitCode::from(127)
}

/// Runs the watchdog; `args` is the whole `argv`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let stdin = std::io::stdin();
    let control = stdin.as_fd();
    let Some(args) = parse(&args) else {
        return fail(
            control,
            "usage: electd __electd-exec-watchdog GRACE_NS DEADLINE_NS -- CMD [ARGS...]",
        );
    };
    // Descendants whose parent dies come to us, so we can kill and reap
    // them. Should this fail they go to electd, a subreaper too.
    let _ = set_child_subreaper(Some(getpid()));
    let child = match Command::new(&args.command[0])
        .args(&args.command[1..])
        .process_group(0)
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            return fail(
                control,
                &format!("cannot run {}: {err}", args.command[0].to_string_lossy()),
            );
        }
    };
    let Some(pid) = Pid::from_raw(child.id() as i32) else {
        return fail(control, "the command has no process id");
    };
    say(control, &Report::Pid(pid).line());
    match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(pidfd) => supervise(control, pid, &pidfd, args.grace, args.deadline),
        Err(err) => {
            // Cannot watch it: do not leave it unguarded.
            let _ = kill_process_group(pid, Signal::KILL);
            let _ = writeln!(
                std::io::stderr(),
                "electd exec: cannot watch the command: {err}"
            );
        }
    }
    let mut sweep = Sweep::new(Some(pid));
    if !sweep.finish_blocking(SWEEP_WITHIN) {
        let _ = writeln!(
            std::io::stderr(),
            "electd exec: the command's processes outlived SIGKILL; electd takes them over"
        );
        return ExitCode::FAILURE;
    }
    let code = sweep.leader().map_or(1, status_code);
    say(control, &Report::Exited(code).line());
    ExitCode::from(code)
}

/// Holds the deadline until the command exits.
fn supervise(
    control: BorrowedFd<'_>,
    group: Pid,
    pidfd: &impl AsFd,
    grace: u64,
    mut deadline: u64,
) {
    let mut control_open = true;
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
        // The leader is unreaped until `supervise` returns, so the group's
        // number is still the command's.
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
        let mut fds = vec![PollFd::new(pidfd, PollFlags::IN)];
        if control_open {
            fds.push(PollFd::new(&control, PollFlags::IN));
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
        if control_open && !fds[1].revents().is_empty() {
            let mut buf = [0u8; 512];
            match rustix::io::read(control, &mut buf) {
                Err(rustix::io::Errno::INTR) => {}
                Ok(0) | Err(_) => {
                    // electd is gone: its leadership ends with it.
                    control_open = false;
                    let _ = kill_process_group(group, Signal::KILL);
                    killed = true;
                    termed = true;
                }
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=end).collect();
                        match std::str::from_utf8(&line).ok().and_then(Order::parse) {
                            Some(Order::Stop) => {
                                stop_requested.get_or_insert(now);
                            }
                            Some(Order::Extend(ns)) => deadline = deadline.max(ns),
                            None => {}
                        }
                        // Answered after acting on it: electd counts an
                        // unanswered line as a watchdog that cannot act.
                        say(control, &Report::Ok.line());
                    }
                }
            }
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
