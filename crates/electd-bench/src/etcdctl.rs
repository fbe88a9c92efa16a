//! The same measurements for `etcdctl elect` (etcd 3.4's own election
//! client, session TTL fixed at 60 s), on the same kind of etcd in the same
//! run: the settled graceful hand-over beside electd's and the floor,
//! interleaved ([`crate::peer`]), a successor spawned just before the signal
//! (what this bench measured first), and crash failover.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use harness::etcd::Etcd;
use harness::now_ns;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

use crate::cluster::Deletions;
use crate::stats::Summary;

#[derive(Serialize)]
pub struct Report {
    /// The settled graceful hand-over, electd v3 and etcdctl elect
    /// interleaved with the floor.
    pub settled: crate::peer::Report,
    /// etcdctl elect, SIGINT, the successor spawned just before the signal
    /// (what this bench measured before: mostly etcdctl's start-up) (ms to
    /// its printed proposal).
    pub fresh_successor_ms: Option<Summary>,
    /// kill -9 of the leader → the next is elected (ms); the session TTL is 60 s.
    pub kill_to_elected_ms: Option<Summary>,
    /// etcd deletes the dead leader's key → the next is elected (ms).
    pub delete_to_elected_ms: Option<Summary>,
}

const ELECTION: &str = "bench";

/// One `etcdctl elect` process and the lines it printed.
pub struct Candidate {
    pub child: Child,
    proposal: String,
    lines: mpsc::UnboundedReceiver<(String, u64)>,
}

impl Candidate {
    fn spawn(endpoint: &str, proposal: &str) -> anyhow::Result<Candidate> {
        Candidate::spawn_in(endpoint, ELECTION, proposal)
    }

    pub fn spawn_in(endpoint: &str, election: &str, proposal: &str) -> anyhow::Result<Candidate> {
        let mut child = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", endpoint, "elect", election, proposal])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("etcdctl starts")?;
        let stdout = child.stdout.take().context("etcdctl's stdout")?;
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send((line, now_ns())).is_err() {
                    return;
                }
            }
        });
        Ok(Candidate {
            child,
            proposal: proposal.to_owned(),
            lines,
        })
    }

    /// When it printed its proposal: etcdctl's word that it was elected.
    pub async fn elected(&mut self, limit: Duration) -> Option<u64> {
        timeout(limit, async {
            while let Some((line, at)) = self.lines.recv().await {
                if line == self.proposal {
                    return Some(at);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }

    pub fn signal(&self, signal: rustix::process::Signal) {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }
}

async fn queued(etcd: &Etcd, count: usize) -> anyhow::Result<()> {
    queued_in(etcd, ELECTION, count).await
}

pub async fn queued_in(etcd: &Etcd, election: &str, count: usize) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(10);
    while etcd.v3_keys(&format!("{election}/")).await.len() < count {
        anyhow::ensure!(Instant::now() < until, "etcdctl never joined the election");
        sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

pub async fn measure(
    binary: &Path,
    handovers: usize,
    crashes: usize,
    settle: Duration,
) -> anyhow::Result<Option<Report>> {
    if crate::host::which("etcdctl").is_none() {
        eprintln!("  (etcdctl not found: skipping; scripts/setup.sh installs etcd-client)");
        return Ok(None);
    }
    let etcd = Etcd::single().await;
    let endpoint = etcd.endpoint(0);

    eprintln!(
        "  settled hand-over: electd v3, etcdctl elect and the floor, {handovers} rounds interleaved"
    );
    let settled = crate::peer::interleaved(binary, &etcd, handovers, settle).await?;

    let deletions = Deletions::watch_v3(endpoint.clone(), format!("{ELECTION}/"));
    let mut leader = Candidate::spawn(&endpoint, "p0")?;
    leader
        .elected(Duration::from_secs(10))
        .await
        .context("etcdctl was never elected")?;
    let mut next_id = 1;

    eprintln!("  etcdctl elect hand-over, successor just spawned: {handovers} runs");
    let mut handover = Vec::new();
    for _ in 0..handovers {
        let mut next = Candidate::spawn(&endpoint, &format!("p{next_id}"))?;
        next_id += 1;
        queued(&etcd, 2).await?;
        let asked = now_ns();
        leader.signal(rustix::process::Signal::INT);
        let elected = next
            .elected(Duration::from_secs(10))
            .await
            .context("nobody took over")?;
        handover.push((elected - asked) as f64 / 1e6);
        let _ = timeout(Duration::from_secs(5), leader.child.wait()).await;
        leader = next;
    }

    eprintln!("  etcdctl elect crash failover: {crashes} runs of about a minute");
    let (mut kill_to, mut reaction) = (Vec::new(), Vec::new());
    for _ in 0..crashes {
        let mut next = Candidate::spawn(&endpoint, &format!("p{next_id}"))?;
        next_id += 1;
        queued(&etcd, 2).await?;
        let _ = leader.child.kill().await;
        let killed = now_ns();
        let elected = next
            .elected(Duration::from_secs(90))
            .await
            .context("nobody took over within 90 s")?;
        kill_to.push((elected - killed) as f64 / 1e6);
        if let Some(deleted) = deletions.after(killed) {
            reaction.push(elected.saturating_sub(deleted) as f64 / 1e6);
        }
        leader = next;
    }
    Ok(Some(Report {
        settled,
        fresh_successor_ms: Summary::of(&handover),
        kill_to_elected_ms: Summary::of(&kill_to),
        delete_to_elected_ms: Summary::of(&reaction),
    }))
}
