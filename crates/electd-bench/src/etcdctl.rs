//! The same measurements for `etcdctl elect` (etcd 3.4's own election
//! client, session TTL fixed at 60 s), on the same kind of etcd in the same run.
//!
//! The graceful hand-over is measured for both electd v3 and etcdctl on one
//! etcd, the same way: three candidates, each running at least `settle`
//! before the signal, and three observation points, each meaning the same
//! for both: the old leader's release as a watcher of the bench sees it in
//! etcd (the first delete under the election's prefix), the successor's lead
//! as etcd shows it (electd: its `~leader` record put; etcdctl: the same
//! delete, which makes the successor's key the oldest, its rule for who
//! leads), and the successor's own word (electd: `acquired` in its journal;
//! etcdctl: its proposal printed, after one more read once it is elected).

use std::collections::VecDeque;
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

use crate::cluster::node_args;
use crate::cluster::{Cluster, Deletions, Events};
use crate::stats::Summary;
use crate::stats::ms;

/// One side of the settled graceful hand-over (ms after the signal).
#[derive(Default, Serialize)]
pub struct Peer {
    /// → the first delete under the prefix (the old leader's release).
    pub released_in_etcd_ms: Option<Summary>,
    /// → the successor leads as etcd shows it (electd: `~leader` put;
    /// etcdctl: the release itself).
    pub leads_in_etcd_ms: Option<Summary>,
    /// → the successor says so (electd: journals `acquired`; etcdctl: prints
    /// its proposal).
    pub says_so_ms: Option<Summary>,
}

#[derive(Serialize)]
pub struct Report {
    /// electd v3, SIGTERM, settled, on this etcd.
    pub electd: Peer,
    /// etcdctl elect, SIGINT, settled.
    pub etcdctl: Peer,
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
/// The settled hand-overs' own election: their candidates are left to their
/// lease at the end, out of the way of the runs on [`ELECTION`].
const SETTLED: &str = "bench-settled";

struct Candidate {
    child: Child,
    proposal: String,
    lines: mpsc::UnboundedReceiver<(String, u64)>,
}

impl Candidate {
    fn spawn(endpoint: &str, proposal: &str) -> anyhow::Result<Candidate> {
        Candidate::spawn_in(endpoint, ELECTION, proposal)
    }

    fn spawn_in(endpoint: &str, election: &str, proposal: &str) -> anyhow::Result<Candidate> {
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
    async fn elected(&mut self, limit: Duration) -> Option<u64> {
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

    fn signal(&self, signal: rustix::process::Signal) {
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

async fn queued_in(etcd: &Etcd, election: &str, count: usize) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(10);
    while etcd.v3_keys(&format!("{election}/")).await.len() < count {
        anyhow::ensure!(Instant::now() < until, "etcdctl never joined the election");
        sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// electd v3, three settled nodes, SIGTERM of the leader, seen as [`Peer`] says.
async fn electd(
    binary: &Path,
    endpoint: &str,
    runs: usize,
    settle: Duration,
) -> anyhow::Result<Peer> {
    let prefix = "/electd/peer/";
    let events = Events::watch_v3(endpoint.to_owned(), prefix.to_owned()).await?;
    let args = node_args("v3", 10, endpoint, "peer");
    let mut cluster = Cluster::start(binary, &args, &[], 3).await;
    let limit = Duration::from_secs(20);
    let (mut released, mut leads, mut says) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let leader = cluster.leader(limit).await.context("no leader")?;
        anyhow::ensure!(
            cluster.all_follow(leader, limit).await,
            "the followers never named the leader"
        );
        sleep(settle).await;
        let asked = now_ns();
        cluster.nodes[leader].terminate();
        let (_, acquired) = cluster
            .acquired_after(asked, Some(leader), limit)
            .await
            .context("nobody took over")?;
        // The watcher may see the record a moment after the journal says so.
        let until = Instant::now() + Duration::from_secs(2);
        let record = loop {
            let put = events.first_after(asked, |put, key| put && key.ends_with("~leader"));
            if put.is_some() || Instant::now() > until {
                break put;
            }
            sleep(Duration::from_millis(2)).await;
        };
        let record = record.context("the watcher saw no leader record")?;
        if let Some(deleted) = events.first_after(asked, |put, _| !put) {
            released.push(ms(deleted - asked));
        }
        leads.push(ms(record - asked));
        says.push(ms(acquired - asked));
        cluster.nodes[leader].wait_exit(limit).await;
        cluster.restart(leader).await;
    }
    Ok(Peer {
        released_in_etcd_ms: Summary::of(&released),
        leads_in_etcd_ms: Summary::of(&leads),
        says_so_ms: Summary::of(&says),
    })
}

/// etcdctl elect, three settled candidates, SIGINT of the leader, seen as
/// [`Peer`] says.
async fn settled(etcd: &Etcd, runs: usize, settle: Duration) -> anyhow::Result<Peer> {
    let endpoint = etcd.endpoint(0);
    let handovers = runs;
    let events = Events::watch_v3(endpoint.clone(), format!("{SETTLED}/")).await?;
    let mut leader = Candidate::spawn_in(&endpoint, SETTLED, "s0")?;
    leader
        .elected(Duration::from_secs(10))
        .await
        .context("etcdctl was never elected")?;
    // Each newcomer under the next id: s1, s2, …
    let mut ids = 1..;
    let mut spawn = || {
        let id = ids.next().unwrap_or_default();
        Candidate::spawn_in(&endpoint, SETTLED, &format!("s{id}"))
    };
    // Two in line behind the leader, each running a while before its turn.
    let mut line = VecDeque::new();
    for queue in 2..=3 {
        // One at a time: their keys' order is the line's.
        line.push_back(spawn()?);
        queued_in(etcd, SETTLED, queue).await?;
    }
    let (mut released, mut says) = (Vec::new(), Vec::new());
    for _ in 0..handovers {
        queued_in(etcd, SETTLED, 3).await?;
        sleep(settle).await;
        let asked = now_ns();
        leader.signal(rustix::process::Signal::INT);
        let mut next = line.pop_front().context("nobody in line")?;
        let elected = next
            .elected(Duration::from_secs(10))
            .await
            .context("nobody took over")?;
        let deleted = events
            .first_after(asked, |put, _| !put)
            .context("the watcher saw no release")?;
        released.push(ms(deleted - asked));
        says.push(ms(elected - asked));
        let _ = timeout(Duration::from_secs(5), leader.child.wait()).await;
        leader = next;
        line.push_back(spawn()?);
    }
    // What is left is killed on drop: its keys go with their lease.
    Ok(Peer {
        released_in_etcd_ms: Summary::of(&released),
        leads_in_etcd_ms: Summary::of(&released),
        says_so_ms: Summary::of(&says),
    })
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

    eprintln!("  electd v3 hand-over beside etcdctl, settled: {handovers} runs");
    let electd = electd(binary, &endpoint, handovers, settle).await?;

    eprintln!("  etcdctl elect hand-over, settled: {handovers} runs");
    let etcdctl = settled(&etcd, handovers, settle).await?;

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
        electd,
        etcdctl,
        fresh_successor_ms: Summary::of(&handover),
        kill_to_elected_ms: Summary::of(&kill_to),
        delete_to_elected_ms: Summary::of(&reaction),
    }))
}
