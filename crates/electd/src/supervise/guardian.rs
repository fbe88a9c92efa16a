//! The guardian: electd's parent, so that a leader process that dies on a
//! live host (a panic, an OOM kill, `kill -9`) hands over as fast as a
//! resign instead of waiting out the TTL.
//!
//! `electd` starts as the guardian and runs the real electd (the worker) as
//! its only child: its own binary, in this hidden mode, with the same
//! arguments and one end of a pipe. The worker writes each claim to the pipe
//! (`lease <id>`, `value <json>`) *before* the request that makes it
//! (`Config::on_claim`), so no claim exists that the guardian does not know.
//!
//! * **Death, from the kernel only.** The worker is the guardian's child:
//!   `waitid` says when it died, and its PID cannot be reused until reaped.
//!   A stopped (SIGSTOP), slow or partitioned worker is not dead and is left
//!   to its deadline; end of file on the pipe means nothing.
//! * **Its commands gone first.** The guardian is a child subreaper, so once
//!   the worker died, its `--exec` watchdog and every descendant (`setsid`,
//!   double forks included) come to it; it kills and reaps them until it
//!   has no child left (`contain.rs`). Only then does it release the claims
//!   (`elect::Releaser`: v3 revokes each lease, v2 deletes the key only if
//!   it still holds the worker's exact value). If it cannot confirm, it
//!   releases nothing and the lease runs out.
//! * **One unit.** The worker gets `SIGKILL` when the guardian dies
//!   (`PR_SET_PDEATHSIG`): a dead guardian means today's lease expiry, never
//!   an orphaned leader. Signals to the guardian (SIGTERM, SIGINT, SIGHUP)
//!   are passed on to the worker, which shuts down as always; the guardian
//!   then exits with its status (128 + the signal if it was killed), so
//!   systemd's `Restart=` and Kubernetes see what electd did.
//!
//! Secrets never travel: the guardian reads the same command line, files
//! and environment the user gave, as the worker does.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::time::Duration;

use elect::{Claim, Releaser};
use rustix::io::{Errno, FdFlags};
use rustix::process::{Pid, Signal, getpid, getppid, kill_process, set_child_subreaper};
use tokio::io::AsyncBufReadExt;
use tokio::signal::unix::{SignalKind, signal};

use super::contain::Sweep;

/// `argv[1]` of the worker, followed by the claims pipe's descriptor.
pub const MODE: &str = "__electd-guarded";

/// The pause between the rounds of the sweep after electd died: a killed
/// process is gone within microseconds, its orphans ours at that moment.
const SWEEP_PAUSE: Duration = Duration::from_micros(200);

/// How many claims are remembered: every campaign makes one, and all but
/// the last few are long gone (releasing those is harmless, but bounded).
const REMEMBERED: usize = 16;

/// The worker's side: what `argv` was without the mode, and the pipe.
pub struct Guarded {
    pub args: Vec<OsString>,
    claims: OwnedFd,
}

impl Guarded {
    /// Whether `args` are the worker's; they are the user's otherwise.
    pub fn from_args(mut args: Vec<OsString>) -> Result<Guarded, Vec<OsString>> {
        if args.get(1).is_none_or(|a| a != MODE) {
            return Err(args);
        }
        let fd = args
            .get(2)
            .and_then(|fd| fd.to_str())
            .and_then(|fd| fd.parse::<i32>().ok())
            .filter(|&fd| fd > 2);
        let Some(fd) = fd else {
            return Err(args);
        };
        // SAFETY: the guardian passed this descriptor, open, for us alone;
        // nothing else in this process uses it.
        let claims = unsafe { OwnedFd::from_raw_fd(fd) };
        // Not inherited by the watchdog or the command. (Non-blocking from
        // the guardian: a full pipe drops a claim, never stalls the election.)
        if rustix::io::fcntl_setfd(&claims, FdFlags::CLOEXEC).is_err() {
            return Err(args);
        }
        args.drain(1..3);
        // Started as /proc/self/exe, it would be called `exe` by ps and
        // pgrep; operators look for electd.
        let _ = rustix::thread::set_name(c"electd");
        Ok(Guarded { args, claims })
    }

    /// The election's claim hook: each claim, one line, before it is made.
    pub fn hook(self) -> impl Fn(&Claim) + Send + Sync + 'static {
        move |claim| {
            let line = match claim {
                Claim::Lease(lease) => format!("lease {lease}\n"),
                Claim::Value(value) => match serde_json::to_string(value) {
                    Ok(json) => format!("value {json}\n"),
                    Err(_) => return,
                },
                _ => return,
            };
            // Under PIPE_BUF, so all or nothing. Not told, the guardian
            // cannot release it: the lease runs out, as without one.
            if let Err(err) = rustix::io::write(&self.claims, line.as_bytes()) {
                tracing::warn!(%err, "cannot tell the guardian of a claim; it expires on its own if electd dies");
            }
        }
    }
}

fn parse_claim(line: &str) -> Option<Claim> {
    match line.split_once(' ')? {
        ("lease", id) => id.parse().ok().map(Claim::Lease),
        ("value", json) => serde_json::from_str(json).ok().map(Claim::Value),
        _ => None,
    }
}

/// Runs the guardian: starts the worker with `args`, and outlives it.
pub fn main(args: &[OsString], election: &elect::Config) -> ExitCode {
    if let Err(err) = set_child_subreaper(Some(getpid())) {
        // Without it the command's orphans would go elsewhere: no release.
        eprintln!("electd: cannot be a child subreaper ({err}); use --no-guardian");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("electd: cannot start the guardian's runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    // On this thread: the worker's parent-death signal follows the thread
    // that started it, and this one lives as long as the process.
    runtime.block_on(guard(args, election))
}

async fn guard(args: &[OsString], election: &elect::Config) -> ExitCode {
    // Before electd exists: a signal that came first would otherwise end
    // the guardian, and electd with it, without a word.
    let mut signals = match Signals::new() {
        Ok(signals) => signals,
        Err(err) => {
            eprintln!("electd: the guardian cannot handle signals: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Non-blocking on both ends: a stopped guardian whose pipe fills up
    // costs the worker a claim not told (its lease then runs out), never a
    // stalled election.
    let flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
    let (read, write) = match rustix::pipe::pipe_with(flags) {
        Ok(pipe) => pipe,
        Err(err) => {
            eprintln!("electd: cannot make the guardian's pipe: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut worker = match spawn(args, &write) {
        Ok(worker) => worker,
        Err(err) => {
            eprintln!("electd: cannot start electd under its guardian: {err}");
            return ExitCode::FAILURE;
        }
    };
    drop(write);
    let Some(pid) = worker.id().and_then(|id| Pid::from_raw(id as i32)) else {
        eprintln!("electd: the worker has no process id");
        return ExitCode::FAILURE;
    };
    let releaser = match Releaser::new(election) {
        Ok(releaser) => Some(releaser),
        Err(err) => {
            tracing::warn!(%err, "the guardian cannot reach etcd: a dead electd's lease will run out");
            None
        }
    };
    // Connected ahead of time (while watching: etcd may be slow to answer),
    // so that a release costs one round trip.
    let connect = async {
        if let Some(releaser) = &releaser {
            let _ = tokio::time::timeout(election.ttl(), releaser.connect()).await;
        }
    };
    let mut claims = Claims::new(read);
    let status = match watch(&mut worker, pid, &mut claims, &mut signals, connect).await {
        Ok(status) => status,
        Err(err) => {
            tracing::error!(%err, "the guardian cannot wait for electd: killing it");
            let _ = worker.kill().await;
            return ExitCode::FAILURE;
        }
    };
    // Written before it died, still in the pipe.
    claims.drain();
    let code = exit_code(&status);
    let died = std::time::Instant::now();
    // Nothing of its term may live on: its watchdog, the command and their
    // descendants are ours now. Past the TTL the lease is gone anyway.
    let ttl = election.ttl();
    // Tight rounds: each one a scan of /proc, and the next leader waits.
    let contained = Sweep::new(None).finish_blocking_every(ttl, SWEEP_PAUSE);
    let swept = died.elapsed();
    if status.success() || claims.is_empty() {
        // It shut down and released what it could itself.
        return ExitCode::from(code);
    }
    if !contained {
        tracing::error!(
            pid = pid.as_raw_nonzero().get(),
            "electd died, but processes it started outlive SIGKILL: its claims are left to expire"
        );
        return ExitCode::from(code);
    }
    if let Some(releaser) = &releaser {
        release(releaser, &claims, ttl).await;
    }
    tracing::warn!(
        pid = pid.as_raw_nonzero().get(),
        %status,
        swept_in_ms = swept.as_secs_f64() * 1e3,
        released_in_ms = died.elapsed().as_secs_f64() * 1e3,
        "electd died: its processes are gone and its claims released"
    );
    ExitCode::from(code)
}

fn spawn(args: &[OsString], write: &OwnedFd) -> std::io::Result<tokio::process::Child> {
    let fd = write.as_raw_fd();
    let guardian = getpid();
    let mut command = tokio::process::Command::new("/proc/self/exe");
    if let Some(arg0) = args.first() {
        command.arg0(arg0);
    }
    command
        .arg(MODE)
        .arg(fd.to_string())
        .args(args.iter().skip(1));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            // Died before the line above: no signal would come.
            if getppid() != Some(guardian) {
                return Err(Errno::SRCH.into());
            }
            // SAFETY: the pipe's write end, open in the child.
            let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
            rustix::io::fcntl_setfd(fd, FdFlags::empty())?;
            Ok(())
        });
    }
    command.kill_on_drop(false).spawn()
}

/// The signals passed on to electd.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }
}

/// Waits for the worker's death, passing signals on, noting claims and
/// connecting to etcd meanwhile.
async fn watch(
    worker: &mut tokio::process::Child,
    pid: Pid,
    claims: &mut Claims,
    signals: &mut Signals,
    connect: impl std::future::Future<Output = ()>,
) -> std::io::Result<std::process::ExitStatus> {
    tokio::pin!(connect);
    let mut connecting = true;
    loop {
        // Unreaped until `wait` returns, so the PID is still the worker's.
        let forward = |sig| {
            let _ = kill_process(pid, sig);
        };
        tokio::select! {
            status = worker.wait() => return status,
            Some(()) = signals.terminate.recv() => forward(Signal::TERM),
            Some(()) = signals.interrupt.recv() => forward(Signal::INT),
            Some(()) = signals.hangup.recv() => forward(Signal::HUP),
            Some(line) = claims.next_line() => claims.note(&line),
            () = &mut connect, if connecting => connecting = false,
        }
    }
}

/// The claims the worker told, newest last.
struct Claims {
    lines: Option<tokio::io::Lines<tokio::io::BufReader<tokio::net::unix::pipe::Receiver>>>,
    known: VecDeque<Claim>,
}

impl Claims {
    fn new(read: OwnedFd) -> Claims {
        let lines = tokio::net::unix::pipe::Receiver::from_owned_fd(read)
            .ok()
            .map(|pipe| tokio::io::BufReader::new(pipe).lines());
        if lines.is_none() {
            tracing::warn!(
                "the guardian cannot read electd's claims: a dead electd's lease will run out"
            );
        }
        Claims {
            lines,
            known: VecDeque::new(),
        }
    }

    async fn next_line(&mut self) -> Option<String> {
        let lines = self.lines.as_mut()?;
        match lines.next_line().await {
            Ok(Some(line)) => Some(line),
            // Closed (or broken): nothing more will come.
            _ => {
                self.lines = None;
                None
            }
        }
    }

    fn note(&mut self, line: &str) {
        let Some(claim) = parse_claim(line) else {
            tracing::warn!(line, "the guardian ignores a line it cannot read");
            return;
        };
        self.known.retain(|known| *known != claim);
        if self.known.len() == REMEMBERED {
            self.known.pop_front();
        }
        self.known.push_back(claim);
    }

    /// Reads what is left in the pipe without waiting for more: a copy of
    /// its write end that outlived the worker must not hold us up.
    fn drain(&mut self) {
        let Some(lines) = self.lines.take() else {
            return;
        };
        let reader = lines.into_inner();
        let mut rest = String::from_utf8_lossy(reader.buffer()).into_owned();
        let pipe = reader.into_inner();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.try_read(&mut chunk) {
            if n == 0 {
                break;
            }
            rest.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
        for line in rest.lines() {
            self.note(line);
        }
    }

    fn is_empty(&self) -> bool {
        self.known.is_empty()
    }
}

/// Hands a record of the dead electd's on to its successor in one write
/// (v3, only a record still bound to one of its own claims), then releases
/// every claim, the newest first (the one that matters), then writes the
/// history entry of a record it held and was not handed on (`released`,
/// where no entry stands); each step bounded by the TTL.
async fn release(releaser: &Releaser, claims: &Claims, ttl: Duration) {
    let known: Vec<Claim> = claims.known.iter().cloned().collect();
    match tokio::time::timeout(ttl, releaser.hand_on(&known)).await {
        Ok(Ok(true)) => tracing::info!("handed the dead electd's record to its successor"),
        Ok(Ok(false)) => {}
        Ok(Err(err)) => {
            tracing::info!(%err, "cannot hand the dead electd's record on: releasing it")
        }
        Err(_) => tracing::info!("handing the dead electd's record on timed out: releasing it"),
    }
    for claim in claims.known.iter().rev() {
        match tokio::time::timeout(ttl, releaser.release(claim)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(?claim, %err, "cannot release a dead electd's claim; it expires on its own")
            }
            Err(_) => tracing::warn!(
                ?claim,
                "releasing a dead electd's claim timed out; it expires on its own"
            ),
        }
    }
    // Off the successor's path: it took the record once the revoke was in.
    if tokio::time::timeout(ttl, releaser.record_released())
        .await
        .is_err()
    {
        tracing::debug!("writing the dead electd's history entry timed out");
    }
}

/// The shell's way: the code, or 128 + the signal that killed it.
fn exit_code(status: &std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return u8::try_from(code).unwrap_or(1);
    }
    status
        .signal()
        .and_then(|signal| u8::try_from(128 + signal).ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_lines_read_back() {
        assert_eq!(parse_claim("lease 7587"), Some(Claim::Lease(7587)));
        assert_eq!(
            parse_claim(r#"value "{\"id\":\"a b\"}""#),
            Some(Claim::Value(r#"{"id":"a b"}"#.to_owned()))
        );
        assert_eq!(parse_claim("lease x"), None);
        assert_eq!(parse_claim("what 1"), None);
        assert_eq!(parse_claim(""), None);
    }

    #[test]
    fn claims_are_remembered_once_and_bounded() {
        let (read, _write) = rustix::pipe::pipe().unwrap();
        let mut claims = Claims {
            lines: None,
            known: VecDeque::new(),
        };
        drop(read);
        for lease in 0..REMEMBERED as i64 + 10 {
            claims.note(&format!("lease {lease}"));
        }
        claims.note("lease 20");
        assert_eq!(claims.known.len(), REMEMBERED);
        assert_eq!(claims.known.back(), Some(&Claim::Lease(20)));
        assert_eq!(claims.known.front(), Some(&Claim::Lease(10)));
    }

    #[test]
    fn the_worker_is_told_by_its_arguments() {
        let user: Vec<OsString> = ["electd", "8080"].map(OsString::from).to_vec();
        assert!(Guarded::from_args(user.clone()).is_err());
        let bad: Vec<OsString> = ["electd", MODE, "x", "8080"].map(OsString::from).to_vec();
        assert!(Guarded::from_args(bad).is_err());
    }
}
