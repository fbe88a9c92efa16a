//! Hand-over by fleet size: SIGTERM of the leader of n settled v3
//! candidates; its latency, what it costs etcd ([`crate::writes`]), and how
//! many of the other nodes it wakes.
//!
//! Wake-ups are counted by the scheduler: an electd process that was
//! scheduled in at all (any thread) during a window of [`WINDOW`] starting
//! just before the signal was woken by the hand-over or by one of its own
//! timers (keep-alives, progress requests); the same count over the window
//! of the same length just before tells the timers' share.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use harness::etcd::Etcd;
use harness::now_ns;
use serde::Serialize;

use crate::cluster::{Cluster, node_args};
use crate::host::{Cpu, cpu};
use crate::stats::{Summary, ms};
use crate::writes::{CostSummary, Costs, Counter};

/// How long wake-ups are counted, before and from the signal.
const WINDOW: Duration = Duration::from_millis(100);

#[derive(Serialize)]
pub struct Fleet {
    pub candidates: usize,
    /// SIGTERM of the leader → the next `acquired` (ms).
    pub sigterm_handover_ms: Option<Summary>,
    /// etcd's account, from before the signal until the old leader exited.
    pub cost: Option<CostSummary>,
    /// The other electd processes scheduled in during the window from the
    /// signal.
    pub woken_in_handover: Option<Summary>,
    /// The same, in the window just before the signal (their own timers).
    pub woken_when_idle: Option<Summary>,
    /// CPU the other electd processes used in the window from the signal,
    /// all together (ms).
    pub cpu_in_handover_ms: Option<Summary>,
}

/// The other nodes' CPU counters now, in node order.
fn snapshot(pids: &[u32]) -> Vec<Option<Cpu>> {
    pids.iter().map(|&pid| cpu(pid)).collect()
}

/// How many were scheduled in between `from` and `to`, and the CPU they
/// used (ns).
fn woken(from: &[Option<Cpu>], to: &[Option<Cpu>]) -> (usize, u64) {
    let mut count = 0;
    let mut ns = 0;
    for (a, b) in from.iter().zip(to) {
        if let (Some(a), Some(b)) = (a, b) {
            if b.slices > a.slices {
                count += 1;
            }
            ns += b.ns.saturating_sub(a.ns);
        }
    }
    (count, ns)
}

/// SIGTERM of the leader of `n` settled v3 candidates → the next `acquired`.
pub async fn fleet(
    binary: &Path,
    etcd: &Etcd,
    n: usize,
    runs: usize,
    settle: Duration,
) -> anyhow::Result<Fleet> {
    let endpoint = etcd.endpoint(0);
    let args = node_args("v3", 10, &endpoint, &format!("fleet-{n}"));
    let mut cluster = Cluster::start(binary, &args, &[], n).await;
    let mut counter = Counter::connect(&endpoint).await?;
    let limit = Duration::from_secs(60);
    let mut samples = Vec::new();
    let mut costs = Costs::default();
    let (mut busy, mut idle, mut cpu_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let leader = cluster.leader(limit).await.context("no leader")?;
        if !cluster.all_follow(leader, limit).await {
            bail!("the followers never named the leader");
        }
        let others: Vec<u32> = (0..n)
            .filter(|&i| i != leader)
            .map(|i| cluster.nodes[i].electd_pid())
            .collect();
        let before = counter.mark(etcd).await?;
        tokio::time::sleep(settle.saturating_sub(WINDOW)).await;
        let quiet = snapshot(&others);
        tokio::time::sleep(WINDOW).await;
        let start = snapshot(&others);
        let asked = now_ns();
        cluster.nodes[leader].terminate();
        tokio::time::sleep(WINDOW).await;
        let end = snapshot(&others);
        let acquired = cluster
            .acquired_after(asked, Some(leader), limit)
            .await
            .context("nobody took over")?;
        samples.push(ms(acquired.t_ns - asked));
        cluster.nodes[leader].wait_exit(limit).await;
        let after = counter.mark(etcd).await?;
        costs.push(before.cost_until(&after, acquired.term));
        let (woken_idle, _) = woken(&quiet, &start);
        let (woken_busy, ns) = woken(&start, &end);
        idle.push(woken_idle as f64);
        busy.push(woken_busy as f64);
        cpu_ms.push(ms(ns));
        cluster.restart(leader).await;
    }
    cluster.shut_down().await;
    Ok(Fleet {
        candidates: n,
        sigterm_handover_ms: Summary::of(&samples),
        cost: costs.summary(),
        woken_in_handover: Summary::of(&busy),
        woken_when_idle: Summary::of(&idle),
        cpu_in_handover_ms: Summary::of(&cpu_ms),
    })
}
