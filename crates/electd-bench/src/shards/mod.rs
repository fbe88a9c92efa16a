//! A leader per shard (`--shards N`, v3): N shards over k nodes on one
//! etcd. How long until every shard is led and the map settles, how even
//! it is, what an idle fleet costs etcd and how much memory a node holds;
//! then, round after round, how fast a node's shards are led again after
//! SIGTERM, kill -9 of its electd (its guardian revokes) and kill -9 of
//! the whole node (its lease expires), and what a node joining moves.
//!
//! Every time comes from the nodes' journals, read through the journal
//! checker (which also proves, per shard, that no two nodes ever led one
//! shard at once). A shard's gap is the time from the end of one leader's
//! interval to the `acquired` of the next. `/v1/shards?mine` is polled
//! only to know when to read the journals, and to check that every node
//! shows the same settled map.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use harness::etcd::Etcd;
use harness::now_ns;
use tokio::time::sleep;

use crate::cluster::{Cluster, node_args};
use crate::host::{cpu, rss_kb};
use crate::stats::{Summary, ms};

mod observe;
mod report;
mod rounds;

use observe::*;
use report::*;
pub use report::{Plan, Shards, bounds};
use rounds::*;

/// Measures a run: start, idle, then `plan.rounds` rounds of a SIGTERM, a
/// kill -9 of electd, a kill -9 of a node and a join.
pub async fn measure(binary: &Path, etcd: &Etcd, plan: &Plan) -> anyhow::Result<Shards> {
    let endpoint = etcd.endpoint(0);
    let args = node_args("v3", plan.ttl_s, &endpoint, "shards").shards(plan.shards);
    let k = plan.nodes;
    let (lower, upper) = bounds(plan.shards, k);
    // Generous: a 2-core host shared by k nodes and etcd.
    let limit = Duration::from_secs(120) + Duration::from_secs(plan.ttl_s);
    let etcd_cpu = || etcd.pid(0).and_then(cpu).map_or(0, |c| c.ns);
    let etcd_before = etcd_cpu();
    let mut cluster = Cluster::start(binary, &args, &[], k).await;
    let started = cluster.started_ns;
    let map = settled(&cluster, plan.shards, limit)
        .await
        .context("the shards never settled within the bounds")?;
    let settled_seen_ms = ms(now_ns() - started);
    // Every electd's CPU since it started, and etcd's since just before.
    let start_cpu_ms = ms(cluster
        .nodes
        .iter()
        .filter_map(|n| cpu(n.electd_pid()))
        .map(|c| c.ns)
        .sum());
    let start_etcd_cpu_ms = ms(etcd_cpu().saturating_sub(etcd_before));
    let report = cluster.check().context("the journals")?;
    let all_led = all_led_from(&report, plan.shards, started).context("never all led")?;
    let last_move = report
        .intervals
        .iter()
        .filter(|i| i.shard.is_some())
        .map(|i| i.start_ns)
        .max()
        .unwrap_or(started);

    // Idle.
    let idle_from = now_ns();
    let proposals_before = proposals(etcd).await?;
    sleep(plan.idle).await;
    let proposals_after = proposals(etcd).await?;
    let idle_to = now_ns();
    let rss: Vec<f64> = cluster
        .nodes
        .iter()
        .map(|n| rss_kb(n.electd_pid()) as f64)
        .collect();
    let guardian_rss: Vec<f64> = cluster
        .nodes
        .iter()
        .map(|n| rss_kb(n.pid()) as f64)
        .collect();
    let report = cluster.check().context("the journals")?;
    let idle_moves = report
        .intervals
        .iter()
        .filter(|i| i.shard.is_some())
        .filter(|i| {
            (idle_from..idle_to).contains(&i.start_ns)
                || (i.reason.is_some() && (idle_from..idle_to).contains(&i.end_ns))
        })
        .count();

    let mut sigterm = Rounds::default();
    let mut kill_electd = Rounds::default();
    let mut kill_node = Rounds::default();
    let mut join = JoinRounds::default();
    for round in 0..plan.rounds {
        for (offset, how, into) in [
            (0, How::Sigterm, &mut sigterm),
            (1, How::KillElectd, &mut kill_electd),
            (2, How::KillNode, &mut kill_node),
        ] {
            let victim = (3 * round + offset) % k;
            eprintln!("    round {}: {how:?} of n{victim}", round + 1);
            into.push(leave(&mut cluster, etcd, plan, victim, how, limit).await?);
        }
        eprintln!("    round {}: a node joins", round + 1);
        join.push(join_one(&mut cluster, etcd, plan, &args, limit).await?);
    }
    let violations = cluster.check().context("the journals")?.violations;
    cluster.shut_down().await;

    let (joined_lower, _) = bounds(plan.shards, k + 1);
    Ok(Shards {
        shards: plan.shards,
        nodes: k,
        ttl_s: plan.ttl_s,
        lower,
        upper,
        all_led_ms: signed_ms(all_led, started),
        last_move_ms: signed_ms(last_move, started),
        settled_seen_ms,
        start_cpu_ms,
        start_etcd_cpu_ms,
        min_per_node: map.values().copied().min().unwrap_or(0),
        max_per_node: map.values().copied().max().unwrap_or(0),
        idle_seconds: ms(idle_to - idle_from) / 1e3,
        idle_proposals: proposals_after - proposals_before,
        idle_moves,
        idle_rss_kb: Summary::of(&rss),
        idle_guardian_rss_kb: Summary::of(&guardian_rss),
        sigterm: sigterm.summary(),
        kill_electd: kill_electd.summary(),
        kill_node: kill_node.summary(),
        join: join.summary(joined_lower, 1.1 * plan.shards as f64 / (k + 1) as f64),
        violations,
    })
}

#[cfg(test)]
mod tests;
