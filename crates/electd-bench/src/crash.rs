//! Crash failover: kill -9 of the leader's whole node (its lease runs out),
//! and of its electd alone, its host alive (its guardian releases), each
//! split at etcd's delete of the key.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use harness::etcd::Etcd;
use serde::Serialize;

use crate::cluster::{Cluster, Deletions, node_args};
use crate::stats::{Summary, ms};
use crate::writes::{CostSummary, Costs, Counter};

#[derive(Serialize)]
pub struct Crash {
    pub ttl_s: u64,
    /// kill -9 → the next `acquired` (ms).
    pub kill_to_acquired_ms: Option<Summary>,
    /// The dead leader's lease could end (last renewal sent + TTL) → etcd deletes the key (ms): etcd's expiry tick.
    pub lease_end_to_delete_ms: Option<Summary>,
    /// etcd deletes the key → the next `acquired` (ms): electd's own reaction.
    pub delete_to_acquired_ms: Option<Summary>,
}

#[derive(Serialize)]
pub struct HostAlive {
    pub ttl_s: u64,
    /// With `--exec -- sleep 1000`.
    pub exec: bool,
    /// kill -9 of the leader's electd (not its guardian) → the next `acquired` (ms).
    pub kill_to_acquired_ms: Option<Summary>,
    /// The guardian's own `released_in_ms`: electd reaped → its processes
    /// swept and its claims released (ms).
    pub guardian_released_in_ms: Option<Summary>,
    /// kill -9 → a watcher of the bench's own sees the release (the first
    /// delete of the election's keys) (ms).
    pub kill_to_delete_ms: Option<Summary>,
    /// That delete → the next `acquired` (ms): the successor's reaction.
    pub delete_to_acquired_ms: Option<Summary>,
    /// etcd's account, from before the kill until the guardian exited (v3:
    /// its hand-over the first write after the kill when `writes_to_term`
    /// is 1).
    pub cost: Option<CostSummary>,
}

/// kill -9 of the leader → the next `acquired`, split at etcd's delete of the key.
pub async fn crashes(
    binary: &Path,
    api: &str,
    endpoint: &str,
    ttl: u64,
    runs: usize,
) -> anyhow::Result<Crash> {
    let election = format!("crash-{ttl}");
    let deletions = match api {
        "v2" => Deletions::watch_v2(endpoint.to_owned(), election.clone()),
        _ => Deletions::watch_v3(endpoint.to_owned(), format!("/electd/{election}/")),
    };
    let args = node_args(api, ttl, endpoint, &election);
    let mut cluster = Cluster::start(binary, &args, &[], 3).await;
    let margin = elect::default_margin(Duration::from_secs(ttl));
    let limit = Duration::from_secs(ttl + 20);
    let (mut kill_to, mut tick, mut reaction) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let leader = cluster.leader(limit).await.context("no leader")?;
        if !cluster.all_follow(leader, limit).await {
            bail!("the followers never named the leader");
        }
        let killed = cluster.nodes[leader].kill9();
        // The last acknowledged renewal was sent at deadline + margin − TTL.
        let lease_end = cluster
            .last_deadline(leader)
            .context("no deadline journalled")?
            + margin.as_nanos() as u64;
        let acquired = cluster
            .acquired_after(killed, Some(leader), limit)
            .await
            .context("nobody took over")?
            .t_ns;
        kill_to.push(ms(acquired - killed));
        if let Some(deleted) = deletions.after(killed) {
            tick.push(ms(deleted.saturating_sub(lease_end)));
            reaction.push(ms(acquired.saturating_sub(deleted)));
        }
        cluster.restart(leader).await;
    }
    cluster.shut_down().await;
    Ok(Crash {
        ttl_s: ttl,
        kill_to_acquired_ms: Summary::of(&kill_to),
        lease_end_to_delete_ms: Summary::of(&tick),
        delete_to_acquired_ms: Summary::of(&reaction),
    })
}

/// kill -9 of the leader's electd alone (its guardian lives, as on a host
/// that lives) → the next `acquired`.
pub async fn host_alive_crashes(
    binary: &Path,
    api: &str,
    etcd: &Etcd,
    ttl: u64,
    exec: bool,
    runs: usize,
    settle: Duration,
) -> anyhow::Result<HostAlive> {
    let election = format!("alive-{ttl}-{}", if exec { "exec" } else { "plain" });
    let endpoint = etcd.endpoint(0);
    let deletions = match api {
        "v2" => Deletions::watch_v2(endpoint.clone(), election.clone()),
        _ => Deletions::watch_v3(endpoint.clone(), format!("/electd/{election}/")),
    };
    // v2 has no revision to compare a term with.
    let mut counter = match api {
        "v3" => Some(Counter::connect(&endpoint).await?),
        _ => None,
    };
    let mut costs = Costs::default();
    let mut args = node_args(api, ttl, &endpoint, &election);
    if exec {
        args = args.exec(["sleep", "1000"]);
    }
    let mut cluster = Cluster::start(binary, &args, &[], 3).await;
    let limit = Duration::from_secs(ttl + 20);
    let (mut kill_to, mut released) = (Vec::new(), Vec::new());
    let (mut to_delete, mut reaction) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let leader = cluster.leader(limit).await.context("no leader")?;
        if !cluster.all_follow(leader, limit).await {
            bail!("the followers never named the leader");
        }
        // Looked up before the clock starts.
        cluster.nodes[leader].electd_pid();
        let before = match counter.as_mut() {
            Some(counter) => Some(counter.mark(etcd).await?),
            None => None,
        };
        tokio::time::sleep(settle).await;
        let killed = cluster.nodes[leader].kill9_electd();
        let acquired = cluster
            .acquired_after(killed, Some(leader), limit)
            .await
            .context("nobody took over")?;
        kill_to.push(ms(acquired.t_ns - killed));
        if let Some(deleted) = deletions.after(killed) {
            to_delete.push(ms(deleted - killed));
            reaction.push(ms(acquired.t_ns.saturating_sub(deleted)));
        }
        // The guardian exits once it has released.
        cluster.nodes[leader].wait_exit(limit).await;
        if let (Some(counter), Some(before)) = (counter.as_mut(), before) {
            let after = counter.mark(etcd).await?;
            costs.push(before.cost_until(&after, acquired.term));
        }
        if let Some(r) = released_in_ms(&cluster.nodes[leader].output()) {
            released.push(r);
        }
        cluster.restart(leader).await;
    }
    cluster.shut_down().await;
    Ok(HostAlive {
        ttl_s: ttl,
        exec,
        kill_to_acquired_ms: Summary::of(&kill_to),
        guardian_released_in_ms: Summary::of(&released),
        kill_to_delete_ms: Summary::of(&to_delete),
        delete_to_acquired_ms: Summary::of(&reaction),
        cost: costs.summary(),
    })
}

/// The last `released_in_ms=` a guardian logged.
fn released_in_ms(log: &str) -> Option<f64> {
    log.lines()
        .rev()
        .find_map(|l| l.split("released_in_ms=").nth(1))?
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?
        .parse()
        .ok()
}
