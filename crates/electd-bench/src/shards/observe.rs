//! Reading the nodes and their journals: the map each shows, when every
//! shard was led, what a departed node held, and the CPU and proposals spent.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use harness::checker::{Interval, Report};
use harness::etcd::Etcd;
use harness::node::Node;
use tokio::time::{Instant, sleep};

use crate::cluster::Cluster;
use crate::host::cpu;
use crate::stats::ms;

use super::report::*;

/// How often `/v1/shards?mine` is asked while waiting: rarely enough that
/// the asking takes little of the two cores the nodes measured share.
pub(super) const POLL: Duration = Duration::from_millis(50);

/// What node `node` answers at `/v1/shards?mine`.
pub(super) async fn mine(node: &Node) -> Option<serde_json::Value> {
    let answer = node.get("/v1/shards?mine").await?;
    (answer.status == 200).then(|| serde_json::from_str(&answer.body).ok())?
}

/// Shards per node id, as one answer shows them.
pub(super) fn loads(body: &serde_json::Value) -> Option<BTreeMap<String, usize>> {
    body["nodes"]
        .as_array()?
        .iter()
        .map(|n| Some((n["id"].as_str()?.to_owned(), n["leads"].as_u64()? as usize)))
        .collect()
}

/// Waits until every node of the cluster shows the same map (one etcd
/// revision), every shard led, each node leading between the bounds and
/// saying it leads what the map gives it. Returns the shards per node.
pub(super) async fn settled(
    cluster: &Cluster,
    n: u32,
    limit: Duration,
) -> Option<BTreeMap<String, usize>> {
    let (lower, upper) = bounds(n, cluster.nodes.len());
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Some(map) = agree(cluster, lower, upper).await {
            return Some(map);
        }
        sleep(POLL).await;
    }
    None
}

pub(super) async fn agree(
    cluster: &Cluster,
    lower: usize,
    upper: usize,
) -> Option<BTreeMap<String, usize>> {
    let mut seen: Option<(u64, BTreeMap<String, usize>)> = None;
    for node in &cluster.nodes {
        let body = mine(node).await?;
        let revision = body["revision"].as_u64()?;
        let map = loads(&body)?;
        let own = body["leads"].as_array()?.len();
        let ok = body["leaderless"] == 0
            && map.len() == cluster.nodes.len()
            && cluster.nodes.iter().all(|n| {
                map.get(&n.name)
                    .is_some_and(|&c| (lower..=upper).contains(&c))
            })
            && map.get(&node.name) == Some(&own);
        if !ok || seen.as_ref().is_some_and(|(r, _)| *r != revision) {
            return None;
        }
        seen = Some((revision, map));
    }
    seen.map(|(_, map)| map)
}

/// Waits until `survivor` shows every shard led by a node other than `gone`.
pub(super) async fn led_without(survivor: &Node, gone: &str, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Some(body) = mine(survivor).await
            && body["leaderless"] == 0
            && loads(&body).is_some_and(|m| !m.contains_key(gone))
        {
            return true;
        }
        sleep(POLL).await;
    }
    false
}

/// The shards' intervals, each shard's by start.
pub(super) fn by_shard(report: &Report) -> BTreeMap<u32, Vec<&Interval>> {
    let mut shards: BTreeMap<u32, Vec<&Interval>> = BTreeMap::new();
    for interval in &report.intervals {
        if let Some(shard) = interval.shard {
            shards.entry(shard).or_default().push(interval);
        }
    }
    for intervals in shards.values_mut() {
        intervals.sort_by_key(|i| i.start_ns);
    }
    shards
}

/// The first instant at or after `from` when all `n` shards have a
/// leader, by the journals.
pub(super) fn all_led_from(report: &Report, n: u32, from: u64) -> Option<u64> {
    // (time, −1 for a start or +1 for an end, shard): a start sorts
    // before an end at the same instant, so a hand-over in one nanosecond
    // leaves no hole.
    let mut steps: Vec<(u64, i8, u32)> = Vec::new();
    for interval in &report.intervals {
        if let Some(shard) = interval.shard {
            steps.push((interval.start_ns, -1, shard));
            steps.push((interval.end_ns, 1, shard));
        }
    }
    steps.sort_unstable();
    let mut holders = vec![0u32; n as usize];
    let mut led = 0;
    let mut full_since = 0;
    for (t, step, shard) in steps {
        // Every shard led since `full_since`, and still so after `from`.
        if t > from && led == n {
            return Some(full_since.max(from));
        }
        let holder = holders.get_mut(shard as usize)?;
        if step < 0 {
            *holder += 1;
            if *holder == 1 {
                led += 1;
                full_since = t;
            }
        } else {
            *holder = holder.saturating_sub(1);
            if *holder == 0 {
                led -= 1;
            }
        }
    }
    None
}

/// Reads the journals until `done` finds what it needs (the journal
/// line of a take can trail the map by a moment), up to `limit`.
pub(super) async fn journals_until<T>(
    cluster: &Cluster,
    limit: Duration,
    done: impl Fn(&Report) -> Option<T>,
) -> anyhow::Result<T> {
    let until = Instant::now() + limit;
    loop {
        let report = cluster.check().context("the journals")?;
        if let Some(found) = done(&report) {
            return Ok(found);
        }
        if Instant::now() >= until {
            bail!("the journals never showed it within {limit:?}");
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// One leave, as the journals show it.
pub(super) struct Left {
    pub(super) shards: usize,
    pub(super) all_led_again_ms: f64,
    pub(super) gaps: Vec<f64>,
    pub(super) signal_to_acquired: Vec<f64>,
}

/// The shards node `id` led at `at`, and each one's next leader's start.
pub(super) fn left(report: &Report, id: &str, at: u64) -> Option<Left> {
    let mut out = Left {
        shards: 0,
        all_led_again_ms: 0.0,
        gaps: Vec::new(),
        signal_to_acquired: Vec::new(),
    };
    for intervals in by_shard(report).values() {
        let Some(gone) = intervals
            .iter()
            .find(|i| i.id == id && i.start_ns <= at && i.end_ns >= at)
        else {
            continue;
        };
        let next = intervals
            .iter()
            .find(|i| i.start_ns >= gone.start_ns && i.id != id)?;
        out.shards += 1;
        out.gaps.push(ms(next.start_ns.saturating_sub(gone.end_ns)));
        let since = ms(next.start_ns.saturating_sub(at));
        out.signal_to_acquired.push(since);
        out.all_led_again_ms = out.all_led_again_ms.max(since);
    }
    Some(out)
}

/// CPU each node's electd has used so far (ns), by node index; 0 for a
/// node gone.
pub(super) fn cpu_of(cluster: &Cluster) -> Vec<u64> {
    cluster
        .nodes
        .iter()
        .map(|n| cpu(n.electd_pid()).map_or(0, |c| c.ns))
        .collect()
}

/// The CPU the nodes used between two [`cpu_of`] (ms), all together; a
/// node only in `after` (a joiner) counts from its start.
pub(super) fn cpu_between(before: &[u64], after: &[u64]) -> f64 {
    let used = after
        .iter()
        .enumerate()
        .map(|(i, &a)| a.saturating_sub(before.get(i).copied().unwrap_or(0)))
        .sum();
    ms(used)
}

/// `t − from` in ms, negative when `t` came first.
pub(super) fn signed_ms(t: u64, from: u64) -> f64 {
    (t as f64 - from as f64) / 1e6
}

pub(super) async fn proposals(etcd: &Etcd) -> anyhow::Result<f64> {
    etcd.proposals_committed(0)
        .await
        .context("etcd_server_proposals_committed_total")
}
