//! `--exec`: the command that runs only while this node leads.
//!
//! electd never parents the command directly: it starts the watchdog (see
//! `watchdog.rs`), which holds the leadership deadline and kills the
//! command's process group by it, whatever happens to electd. This module is
//! electd's end of that pipe.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::time::Instant;

use crate::watchdog;

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
    control: Option<ChildStdin>,
    deadline: Instant,
    grace: Duration,
}

impl Running {
    /// Starts the command for one leadership that lasts until `deadline`
    /// unless extended.
    pub fn start(
        spec: &ExecSpec,
        who: &Identity<'_>,
        deadline: Instant,
    ) -> std::io::Result<Running> {
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
            .stdin(Stdio::piped())
            .kill_on_drop(false);
        for var in SECRET_VARS {
            command.env_remove(var);
        }
        let mut watchdog = command.spawn()?;
        let control = watchdog.stdin.take();
        Ok(Running {
            watchdog,
            control,
            deadline,
            grace: spec.grace,
        })
    }

    /// The leadership now lasts until `deadline`.
    pub async fn extend(&mut self, deadline: Instant) {
        if deadline <= self.deadline {
            return;
        }
        self.deadline = deadline;
        let line = format!("extend {}\n", elect::instant_to_ns(deadline));
        self.send(line.as_bytes()).await;
    }

    async fn send(&mut self, line: &[u8]) {
        if let Some(control) = self.control.as_mut()
            && control.write_all(line).await.is_err()
        {
            // The watchdog is gone; `exited` will say how.
            self.control = None;
        }
    }

    /// Resolves when the command (and so its watchdog) has exited. Cancel-safe.
    pub async fn exited(&mut self) -> std::io::Result<ExitStatus> {
        self.watchdog.wait().await
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
    /// deadline, whichever is first. Returns when it is gone.
    pub async fn stop(mut self) -> Option<ExitStatus> {
        self.send(b"stop\n").await;
        let bound = self.grace + Duration::from_secs(1);
        match tokio::time::timeout(bound, self.watchdog.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                // The watchdog should have acted by now; closing the pipe makes it kill at once.
                self.control = None;
                self.watchdog.wait().await.ok()
            }
        }
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Describes an exit status for the log.
pub fn describe(status: &ExitStatus) -> String {
    match status.code() {
        Some(127) => "could not be started (status 127)".to_owned(),
        Some(code) if code > 128 => format!("was killed by signal {}", code - 128),
        Some(code) => format!("exited with status {code}"),
        None => "ended".to_owned(),
    }
}
