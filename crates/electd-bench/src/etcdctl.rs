//! The same measurements for `etcdctl elect` (etcd 3.4's own election
//! client, session TTL fixed at 60 s), on the same kind of etcd in the same
//! run: the settled graceful hand-over beside electd's and the floor,
//! interleaved ([`crate::peer`]), a successor spawned just before the signal
//! (what this bench measured first), and crash failover.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use harness::etcd::Etcd;
use harness::now_ns;
use serde::Serialize;
use tokio::time::timeout;

use crate::cluster::Deletions;
use crate::elector::{Candidate, queued_in};
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

async fn queued(etcd: &Etcd, count: usize) -> anyhow::Result<()> {
    queued_in(etcd, ELECTION, count).await
}

fn spawn(endpoint: &str, proposal: &str) -> anyhow::Result<Candidate> {
    Candidate::spawn_in(endpoint, ELECTION, proposal)
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
    let mut leader = spawn(&endpoint, "p0")?;
    leader
        .elected(Duration::from_secs(10))
        .await
        .context("etcdctl was never elected")?;
    let mut next_id = 1;

    eprintln!("  etcdctl elect hand-over, successor just spawned: {handovers} runs");
    let mut handover = Vec::new();
    for _ in 0..handovers {
        let mut next = spawn(&endpoint, &format!("p{next_id}"))?;
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
        let mut next = spawn(&endpoint, &format!("p{next_id}"))?;
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
