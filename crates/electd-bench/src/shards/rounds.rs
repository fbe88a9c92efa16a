//! The rounds: a node leaving each way, a node joining, and what each cost.

use std::time::Duration;

use anyhow::{Context, bail};
use elect::journal::EndReason;
use harness::checker::Interval;
use harness::etcd::Etcd;
use harness::node::NodeArgs;
use harness::now_ns;

use crate::cluster::Cluster;
use crate::stats::{Summary, ms};

use super::observe::*;
use super::report::*;

/// The leaves of one kind, round by round.
#[derive(Default)]
pub(super) struct Rounds {
    pub(super) shards: Vec<usize>,
    pub(super) all_led_again: Vec<f64>,
    pub(super) gaps: Vec<f64>,
    pub(super) signal_to_acquired: Vec<f64>,
    pub(super) proposals: Vec<f64>,
    pub(super) cpu_ms: Vec<f64>,
    pub(super) led_election: Vec<bool>,
}

impl Rounds {
    pub(super) fn push(&mut self, round: Round) {
        let Round {
            left,
            proposals,
            cpu_ms,
            led_election,
        } = round;
        self.cpu_ms.push(cpu_ms);
        self.led_election.push(led_election);
        self.shards.push(left.shards);
        self.all_led_again.push(left.all_led_again_ms);
        self.gaps.extend(left.gaps);
        self.signal_to_acquired.extend(left.signal_to_acquired);
        self.proposals.push(proposals);
    }

    pub(super) fn summary(self) -> Leave {
        Leave {
            shards_per_round: self.shards,
            led_election: self.led_election,
            all_led_again_ms: Summary::of(&self.all_led_again),
            gap_ms: Summary::of(&self.gaps),
            signal_to_acquired_ms: Summary::of(&self.signal_to_acquired),
            proposals: Summary::of(&self.proposals),
            survivors_cpu_ms: Summary::of(&self.cpu_ms),
        }
    }
}

/// Node `victim` leaves the settled cluster `how`; once its shards are led
/// again, it is started again and the map settles.
pub(super) async fn leave(
    cluster: &mut Cluster,
    etcd: &Etcd,
    plan: &Plan,
    victim: usize,
    how: How,
    limit: Duration,
) -> anyhow::Result<Round> {
    let id = cluster.nodes[victim].name.clone();
    // Looked up before the clock starts.
    cluster.nodes[victim].electd_pid();
    let survivor = (victim + 1) % cluster.nodes.len();
    // The election's own leader leaving writes a new leader record, which
    // every node hears; a follower leaving, only a deletion.
    let led_election = cluster.nodes[victim].is_leader().await;
    let before = proposals(etcd).await?;
    let cpu_before = cpu_of(cluster);
    let at = match how {
        How::Sigterm => {
            let at = now_ns();
            cluster.nodes[victim].terminate();
            at
        }
        How::KillElectd => cluster.nodes[victim].kill9_electd(),
        How::KillNode => cluster.nodes[victim].kill9(),
    };
    if !led_without(&cluster.nodes[survivor], &id, limit).await {
        bail!("{how:?} of {id}: its shards were not all led again within {limit:?}");
    }
    let after = proposals(etcd).await?;
    let mut cpu_after = cpu_of(cluster);
    // The victim's own CPU is not the survivors' work.
    cpu_after[victim] = cpu_before[victim];
    let cpu_ms = cpu_between(&cpu_before, &cpu_after);
    let left = journals_until(cluster, Duration::from_secs(10), |report| {
        left(report, &id, at)
    })
    .await
    .with_context(|| format!("{how:?} of {id}: a shard's next leader in the journals"))?;
    cluster.nodes[victim].wait_exit(limit).await;
    cluster.restart(victim).await;
    settled(cluster, plan.shards, limit)
        .await
        .with_context(|| format!("the shards never settled after {id} came back"))?;
    Ok(Round {
        left,
        proposals: after - before,
        cpu_ms,
        led_election,
    })
}

/// One leave's figures.
pub(super) struct Round {
    pub(super) left: Left,
    pub(super) proposals: f64,
    pub(super) cpu_ms: f64,
    pub(super) led_election: bool,
}

/// The joins, round by round.
#[derive(Default)]
pub(super) struct JoinRounds {
    pub(super) reach: Vec<f64>,
    pub(super) last_move: Vec<f64>,
    pub(super) joiner_leads: Vec<usize>,
    pub(super) moved: Vec<usize>,
    pub(super) twice: Vec<usize>,
    pub(super) elsewhere: Vec<usize>,
    pub(super) gaps: Vec<f64>,
    pub(super) proposals_per_moved: Vec<f64>,
    pub(super) cpu_ms: Vec<f64>,
    pub(super) joiner_cpu_ms: Vec<f64>,
}

/// One join, as the journals and etcd show it.
pub(super) struct Joined {
    pub(super) reach_ms: Option<f64>,
    pub(super) last_move_ms: f64,
    pub(super) joiner_leads: usize,
    pub(super) moved: usize,
    pub(super) twice: usize,
    pub(super) elsewhere: usize,
    pub(super) gaps: Vec<f64>,
    pub(super) proposals: f64,
    pub(super) cpu_ms: f64,
    pub(super) joiner_cpu_ms: f64,
}

impl JoinRounds {
    pub(super) fn push(&mut self, joined: Joined) {
        self.reach.extend(joined.reach_ms);
        self.last_move.push(joined.last_move_ms);
        self.joiner_leads.push(joined.joiner_leads);
        self.moved.push(joined.moved);
        self.twice.push(joined.twice);
        self.elsewhere.push(joined.elsewhere);
        self.gaps.extend(joined.gaps);
        self.cpu_ms.push(joined.cpu_ms);
        self.joiner_cpu_ms.push(joined.joiner_cpu_ms);
        if joined.moved > 0 {
            self.proposals_per_moved
                .push(joined.proposals / joined.moved as f64);
        }
    }

    pub(super) fn summary(self, target: usize, move_budget: f64) -> Join {
        Join {
            target,
            move_budget,
            reach_target_ms: Summary::of(&self.reach),
            last_move_ms: Summary::of(&self.last_move),
            joiner_leads: self.joiner_leads,
            moved: self.moved,
            moved_twice: self.twice,
            moved_elsewhere: self.elsewhere,
            gap_ms: Summary::of(&self.gaps),
            proposals_per_moved_shard: Summary::of(&self.proposals_per_moved),
            cpu_ms: Summary::of(&self.cpu_ms),
            joiner_cpu_ms: Summary::of(&self.joiner_cpu_ms),
        }
    }
}

/// A (k+1)th node joins the settled cluster; once the map settles it
/// leaves again (SIGTERM) and the map settles over k.
pub(super) async fn join_one(
    cluster: &mut Cluster,
    etcd: &Etcd,
    plan: &Plan,
    args: &NodeArgs,
    limit: Duration,
) -> anyhow::Result<Joined> {
    let (target, _) = bounds(plan.shards, cluster.nodes.len() + 1);
    let before = proposals(etcd).await?;
    let cpu_before = cpu_of(cluster);
    let (joiner, spawned) = cluster.add(args.clone());
    cluster.nodes[joiner].wait_serving().await;
    let map = settled(cluster, plan.shards, limit)
        .await
        .context("the shards never settled after a join")?;
    let after = proposals(etcd).await?;
    let cpu_after = cpu_of(cluster);
    let cpu_ms = cpu_between(&cpu_before, &cpu_after);
    let joiner_cpu_ms = ms(cpu_after[joiner]);
    let id = cluster.nodes[joiner].name.clone();
    let joiner_leads = map.get(&id).copied().unwrap_or(0);
    let joined = journals_until(cluster, Duration::from_secs(10), |report| {
        let mut taken: Vec<u64> = Vec::new();
        let (mut moved, mut twice, mut elsewhere) = (0, 0, 0);
        let mut gaps = Vec::new();
        for intervals in by_shard(report).values() {
            let after_spawn: Vec<&&Interval> =
                intervals.iter().filter(|i| i.start_ns > spawned).collect();
            if after_spawn.is_empty() {
                continue;
            }
            moved += 1;
            twice += usize::from(after_spawn.len() > 1);
            for new in after_spawn {
                if new.id == id {
                    taken.push(new.start_ns);
                } else {
                    elsewhere += 1;
                }
                if let Some(old) = intervals
                    .iter()
                    .filter(|i| i.start_ns < new.start_ns)
                    .max_by_key(|i| i.start_ns)
                    && old.reason == Some(EndReason::Transfer)
                {
                    gaps.push(ms(new.start_ns.saturating_sub(old.end_ns)));
                }
            }
        }
        // The joiner's journal can trail the map by a moment.
        if taken.len() < joiner_leads {
            return None;
        }
        taken.sort_unstable();
        Some(Joined {
            reach_ms: target
                .checked_sub(1)
                .and_then(|i| taken.get(i))
                .map(|&t| ms(t - spawned)),
            last_move_ms: taken.last().map_or(0.0, |&t| ms(t - spawned)),
            joiner_leads,
            moved,
            twice,
            elsewhere,
            gaps,
            proposals: after - before,
            cpu_ms,
            joiner_cpu_ms,
        })
    })
    .await
    .context("the joiner's acquisitions in the journals")?;
    cluster.remove_last(limit).await;
    settled(cluster, plan.shards, limit)
        .await
        .context("the shards never settled after the joiner left")?;
    Ok(joined)
}
