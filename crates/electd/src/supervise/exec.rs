//! `--exec`: the command that runs only while this node leads.
//!
//! electd never parents the command directly: it starts the watchdog (see
//! `watchdog.rs`), which holds the leadership deadline and kills the
//! command's process group by it, whatever happens to electd. This module is
//! electd's end of their socket, and electd's own hold on the command for
//! when the watchdog fails: electd is a child subreaper, so when the
//! watchdog dies the command and everything it left come to electd, which
//! kills and reaps them itself (`contain.rs`).
//!
//! electd counts the watchdog as failed when it dies without saying
//! `exited`, or leaves a line unanswered for [`ANSWER_WITHIN`] (stopped,
//! stuck). Nothing is released while a command may live: [`Running::stop`]
//! says whether everything is confirmed gone.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use rustix::process::Pid;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::contain::{ROUND_PAUSE, Sweep};
use super::protocol::{Order, Report};
use super::watchdog;

/// How long the watchdog may take to answer a line. It answers at once
/// unless it is stopped or stuck; this only has to outlast a busy machine's
/// scheduling delays.
pub const ANSWER_WITHIN: Duration = Duration::from_millis(500);

/// How long electd keeps killing and reaping what a failed watchdog left
/// before it says it cannot confirm the command gone (SIGKILL takes effect
/// within milliseconds; a process in uninterruptible sleep may take longer).
pub const CONTAIN_WITHIN: Duration = Duration::from_secs(2);

/// The longest [`Running::stop`] takes with a grace of `grace`.
pub fn stop_bound(grace: Duration) -> Duration {
    // The grace and an answer's time, its last lines, then containment.
    grace + 2 * ANSWER_WITHIN + CONTAIN_WITHIN
}

/// Where electd may read the etcd password from.
pub const ETCD_PASSWORD_VAR: &str = "ELECTD_ETCD_PASSWORD";
/// Where electd may read the admin token from.
pub const ADMIN_TOKEN_VAR: &str = "ELECTD_ADMIN_TOKEN";
/// Environment variables holding electd's secrets; never passed to the command.
pub const SECRET_VARS: &[&str] = &[ETCD_PASSWORD_VAR, ADMIN_TOKEN_VAR];

/// What to do when the command exits on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnExit {
    /// Resign, so that another node runs it.
    Resign,
    /// Start it again (this node keeps leading).
    Restart,
    /// Resign and exit electd with the command's status.
    Exit,
}

/// The command and how to run it.
#[derive(Clone, Debug)]
pub struct ExecSpec {
    pub command: Vec<String>,
    pub grace: Duration,
    pub on_exit: OnExit,
}

/// What the command learns about its leadership.
pub struct Identity<'a> {
    pub term: u64,
    pub id: &'a str,
    pub election: &'a str,
    pub advertise: &'a str,
}

/// A running command, behind its watchdog.
pub struct Running {
    watchdog: Child,
    to_watchdog: Option<OwnedWriteHalf>,
    from_watchdog: Option<Lines<BufReader<OwnedReadHalf>>>,
    /// The command's PID, which is also its process group's number.
    group: Option<Pid>,
    /// The command's status, as the watchdog reported it once nothing of
    /// the command was left.
    reported: Option<u8>,
    /// When each line not yet answered was sent, oldest first.
    unanswered: VecDeque<Instant>,
    /// A line could not be sent: the watchdog is gone or not reading.
    broken: bool,
    deadline: Instant,
    grace: Duration,
}

/// What [`Running::watch`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    /// The watchdog exited: the command ended, or the watchdog died.
    Exited,
    /// The watchdog left a line unanswered: it is stopped or stuck.
    Unresponsive,
}

/// A command that is over: it and everything it left are gone.
#[derive(Debug)]
pub struct Stopped {
    /// Its status as the watchdog reported it (128 + the signal when
    /// killed); `None` when the watchdog failed and electd killed it.
    pub code: Option<u8>,
    /// How the watchdog ended, when it did not report the command's end.
    pub watchdog_failed: Option<String>,
}

impl Stopped {
    /// For the log.
    pub fn describe(&self) -> String {
        match (&self.watchdog_failed, self.code) {
            (Some(how), _) => format!("was killed: its watchdog {how}"),
            (None, Some(127)) => "could not be started (status 127)".to_owned(),
            (None, Some(code)) if code > 128 => format!("was killed by signal {}", code - 128),
            (None, Some(code)) => format!("exited with status {code}"),
            (None, None) => "ended".to_owned(),
        }
    }

    /// The status to exit with for `--exec-on-exit exit`.
    pub fn exit_code(&self) -> u8 {
        self.code.unwrap_or(128 + 9)
    }
}

/// What electd could not confirm gone: it keeps trying with [`Leftover::contain`].
#[derive(Debug)]
pub struct Leftover {
    group: Option<Pid>,
}

impl Leftover {
    /// Kills and reaps what electd still parents, for up to
    /// [`CONTAIN_WITHIN`]. True once nothing is left.
    pub async fn contain(&mut self) -> bool {
        let mut sweep = Sweep::new(self.group);
        let until = Instant::now() + CONTAIN_WITHIN;
        loop {
            if sweep.round() {
                self.group = None;
                return true;
            }
            if Instant::now() >= until {
                self.group = sweep.group();
                return false;
            }
            tokio::time::sleep(ROUND_PAUSE).await;
        }
    }
}

/// Kills and reaps whatever electd still parents (orphans it adopted as a
/// child subreaper), before it exits. It blocks the thread, so nothing else
/// reaps meanwhile; a watchdog still running after a shutdown that timed
/// out is killed and reaped too (its status no longer matters). True when
/// nothing is left.
pub fn sweep_before_exit() -> bool {
    Sweep::new(None).finish_blocking(CONTAIN_WITHIN)
}

impl Running {
    /// Starts the command for one leadership that lasts until `deadline`
    /// unless extended.
    pub fn start(
        spec: &ExecSpec,
        who: &Identity<'_>,
        deadline: Instant,
    ) -> std::io::Result<Running> {
        // Both ends are close-on-exec: only the watchdog gets its end (as
        // stdin), so electd's death is always end-of-file to it.
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let ours = tokio::net::UnixStream::from_std(ours)?;
        let mut command = Command::new("/proc/self/exe");
        command
            .arg(watchdog::MODE)
            .arg(duration_ns(spec.grace).to_string())
            .arg(elect::instant_to_ns(deadline).to_string())
            .arg("--")
            .args(&spec.command)
            .env("ELECTD_TERM", who.term.to_string())
            .env("ELECTD_ID", who.id)
            .env("ELECTD_ELECTION", who.election)
            .env("ELECTD_ADVERTISE", who.advertise)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .kill_on_drop(false);
        for var in SECRET_VARS {
            command.env_remove(var);
        }
        let watchdog = command.spawn()?;
        // Closes electd's copy of the watchdog's end: its death is now end-of-file here.
        drop(command);
        let (from_watchdog, to_watchdog) = ours.into_split();
        Ok(Running {
            watchdog,
            to_watchdog: Some(to_watchdog),
            from_watchdog: Some(BufReader::new(from_watchdog).lines()),
            group: None,
            reported: None,
            unanswered: VecDeque::new(),
            broken: false,
            deadline,
            grace: spec.grace,
        })
    }

    /// The leadership now lasts until `deadline`.
    pub fn extend(&mut self, deadline: Instant) {
        if deadline <= self.deadline {
            return;
        }
        self.deadline = deadline;
        self.send(&Order::Extend(elect::instant_to_ns(deadline)).line());
    }

    /// Sends a line without ever waiting: a watchdog whose socket is full
    /// has not read for thousands of lines, and counts as failed.
    fn send(&mut self, line: &str) {
        let Some(to) = self.to_watchdog.as_ref() else {
            return;
        };
        match to.try_write(line.as_bytes()) {
            Ok(n) if n == line.len() => self.unanswered.push_back(Instant::now()),
            _ => {
                self.to_watchdog = None;
                self.broken = true;
            }
        }
    }

    fn hear(&mut self, line: &str) {
        match Report::parse(line) {
            Some(Report::Ok) => {
                self.unanswered.pop_front();
            }
            Some(Report::Pid(pid)) => self.group = Some(pid),
            Some(Report::Exited(code)) => self.reported = Some(code),
            None => tracing::debug!(line, "unexpected line from the watchdog"),
        }
    }

    /// Resolves when the watchdog exits or fails to answer in time. Cancel-safe.
    pub async fn watch(&mut self) -> Watch {
        loop {
            if self.broken {
                return Watch::Unresponsive;
            }
            let overdue = self.unanswered.front().map(|&sent| sent + ANSWER_WITHIN);
            let line = tokio::select! {
                // Lines first: after a pause of electd itself, the answers
                // are waiting to be read, and the timer is already due.
                biased;
                line = next_line(&mut self.from_watchdog) => line,
                _ = self.watchdog.wait() => return Watch::Exited,
                _ = sleep_until(overdue) => return Watch::Unresponsive,
            };
            match line {
                Some(line) => self.hear(&line),
                None => self.from_watchdog = None,
            }
        }
    }

    /// Whether the watchdog itself stopped the command for want of an
    /// extension (its deadline minus the grace had passed).
    pub fn stopped_by_deadline(&self) -> bool {
        Instant::now() + Duration::from_millis(1)
            >= self
                .deadline
                .checked_sub(self.grace)
                .unwrap_or(self.deadline)
    }

    /// Stops the command: `SIGTERM` now, `SIGKILL` after the grace or at the
    /// deadline, whichever is first; at once when the deadline has passed
    /// or the watchdog has failed. Returns once the command and everything
    /// it left are confirmed gone, or with what could not be confirmed.
    /// Takes at most [`stop_bound`] of the grace.
    pub async fn stop(mut self) -> Result<Stopped, Leftover> {
        let now = Instant::now();
        if !self.broken && now < self.deadline && matches!(self.watchdog.try_wait(), Ok(None)) {
            self.send(&Order::Stop.line());
            let until = now + self.grace.min(self.deadline - now) + ANSWER_WITHIN;
            tokio::select! {
                _ = self.watch() => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
        self.kill().await
    }

    /// Kills the command now: `SIGKILL` to the watchdog, then to the
    /// command's group and everything else that comes to electd. A watchdog
    /// that already exited is only reaped, and what it said is kept.
    pub async fn kill(mut self) -> Result<Stopped, Leftover> {
        let alive = matches!(self.watchdog.try_wait(), Ok(None));
        // By PID, which is safe while tokio has not reaped it; once it has,
        // `start_kill` does nothing.
        let _ = self.watchdog.start_kill();
        let exit = self.watchdog.wait().await;
        self.drain().await;
        let watchdog_failed = match (self.reported, &exit) {
            (Some(_), _) => None,
            (None, _) if alive => Some("was killed by electd".to_owned()),
            (None, Ok(status)) => Some(match status.signal() {
                Some(signal) => format!("died of signal {signal}"),
                None => format!("exited with status {}", status.code().unwrap_or(1)),
            }),
            (None, Err(err)) => Some(format!("could not be waited for: {err}")),
        };
        let mut left = Leftover { group: self.group };
        if left.contain().await {
            Ok(Stopped {
                code: self.reported,
                watchdog_failed,
            })
        } else {
            Err(left)
        }
    }

    /// Reads what the watchdog said before it went (its `exited` report).
    /// Its end is closed by now, so this ends at once; the bound is for a
    /// copy of its end kept open where none should be.
    async fn drain(&mut self) {
        let Some(lines) = self.from_watchdog.as_mut() else {
            return;
        };
        let mut heard = Vec::new();
        let _ = tokio::time::timeout(ANSWER_WITHIN, async {
            while let Ok(Some(line)) = lines.next_line().await {
                heard.push(line);
            }
        })
        .await;
        self.from_watchdog = None;
        for line in heard {
            self.hear(&line);
        }
    }
}

/// The next line from the watchdog; `None` at its end. Cancel-safe.
async fn next_line(lines: &mut Option<Lines<BufReader<OwnedReadHalf>>>) -> Option<String> {
    match lines {
        Some(lines) => lines.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn how_a_command_ended_is_told() {
        let stopped = |code, failed: Option<&str>| Stopped {
            code,
            watchdog_failed: failed.map(str::to_owned),
        };
        assert_eq!(stopped(Some(3), None).describe(), "exited with status 3");
        assert_eq!(
            stopped(Some(143), None).describe(),
            "was killed by signal 15"
        );
        assert_eq!(
            stopped(Some(127), None).describe(),
            "could not be started (status 127)"
        );
        let killed = stopped(None, Some("died of signal 9"));
        assert_eq!(
            killed.describe(),
            "was killed: its watchdog died of signal 9"
        );
        assert_eq!(killed.exit_code(), 137);
        assert_eq!(stopped(Some(3), None).exit_code(), 3);
    }
}
