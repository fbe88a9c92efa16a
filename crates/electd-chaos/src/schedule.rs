//! The schedule: which kinds of fault a run draws from, and the rounds,
//! one fault at a time, each with its draws made from the seed alone.

use std::collections::BTreeMap;
use std::time::Duration;

use harness::app::Mode;
use rand::RngExt;
use rand::rngs::StdRng;
use tokio::time::{Instant, sleep};

use crate::draw::{Draw, Foreign, Kind, ShardDraw, Steer};
use crate::faults::inject;
use crate::fleet::{PREEMPT_AFTER, Soak};

/// The kinds a run draws from, each as often as it is listed: everything
/// its etcd (`members`), its nodes, `--exec` and `--shards` allow.
pub fn kinds(members: usize, exec: bool, nodes: usize, v3: bool, shards: bool) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = vec![
        Kind::KillRestart,
        Kind::ElectdKillRestart,
        Kind::PauseResume,
        Kind::TermRestart,
        Kind::SilentPartition,
        Kind::LoudPartition,
        Kind::Delay,
        Kind::EtcdMemberRestart,
    ];
    if members == 3 {
        kinds.push(Kind::EtcdMemberCutOff);
    }
    if exec {
        kinds.extend([Kind::WatchdogKill, Kind::WatchdogPause, Kind::CommandKill]);
    }
    kinds.extend([
        Kind::HealthFail,
        Kind::HealthFlap,
        Kind::Drain,
        Kind::DrainInFailover,
    ]);
    if nodes > 1 {
        // On v2 the leader must refuse it (501 needs_v3).
        kinds.push(Kind::Transfer);
        if v3 {
            kinds.extend([
                Kind::TransferTargetStopped,
                Kind::TransferTargetKilled,
                Kind::PreemptorUnhealthy,
            ]);
        }
    }
    // The shard faults twice as often as the others: about two fifths of a
    // sharded run's rounds.
    if shards {
        let mut shard_kinds = vec![Kind::ShardHolderPause, Kind::ForeignShardRecord];
        if nodes > 1 {
            shard_kinds.extend([
                Kind::JoinAndLeave,
                Kind::MoveInterrupted,
                Kind::SlowLeaderHandsOver,
            ]);
        }
        kinds.extend(shard_kinds.iter().flat_map(|&k| [k, k]));
    }
    // Every kind twice but the wipe, which costs a leaderless spell until
    // the revision is raised past the nodes' floor, and restarting every
    // node, which costs one too: half as often.
    kinds = kinds.iter().flat_map(|&k| [k, k]).collect();
    kinds.push(Kind::EtcdWipe);
    if shards {
        kinds.push(Kind::EveryNodeRestarted);
    }
    kinds
}

/// Injects faults drawn from `kinds` until `until`, one at a time with a
/// settling pause between; returns how many of each kind.
pub async fn run(
    soak: &mut Soak,
    rng: &mut StdRng,
    api: &str,
    kinds: &[Kind],
    ttl: Duration,
    members: usize,
    until: Instant,
) -> BTreeMap<Kind, u32> {
    let nodes = soak.nodes.len();
    let mut counts: BTreeMap<Kind, u32> = BTreeMap::new();
    while Instant::now() < until {
        let kind = kinds[rng.random_range(0..kinds.len())];
        let target_leader = rng.random_bool(0.6);
        let hold = ttl.mul_f64(rng.random_range(0.1..2.0));
        let settle = ttl.mul_f64(rng.random_range(0.0..0.5));
        let member = rng.random_range(0..members);
        let delay = ttl.mul_f64(rng.random_range(0.05..0.4));
        let jitter = ttl.mul_f64(rng.random_range(0.0..0.1));
        let random_node = rng.random_range(0..nodes);
        // The steering actions' draws, made every round so that the
        // schedule depends on the seed alone.
        let steer = Steer {
            offset: rng.random_range(0..nodes.max(2) - 1),
            failing: [Mode::Unhealthy, Mode::Refuse, Mode::Stall][rng.random_range(0..3)],
            restore: rng.random_bool(0.5),
            // The target is stopped or killed before the ask a third of
            // the time (it cannot take over: the leader withdraws the
            // hand-over, and a stopped target wakes up late); otherwise
            // within milliseconds of it (a hand-over takes a few), or up
            // to the hand-over bound (a quarter of the TTL) and past it.
            first: rng.random_bool(0.34),
            midway: if rng.random_bool(0.5) {
                Duration::from_micros(rng.random_range(0..10_000))
            } else {
                ttl.mul_f64(rng.random_range(0.0..0.35))
            },
            flaps: rng.random_range(3..10),
            flap: Duration::from_millis(rng.random_range(50..400)),
            lag: PREEMPT_AFTER.mul_f64(rng.random_range(0.0..1.5)),
            failover: ttl.mul_f64(rng.random_range(0.0..1.2)),
        };
        let shards = soak.shards.map(|count| ShardDraw {
            shard: rng.random_range(0..count),
            foreign: [
                Foreign::Garbage,
                Foreign::CopyUnbound,
                Foreign::GarbageOnHoldersLease,
                Foreign::Stray,
            ][rng.random_range(0..4)],
            past_ttl: ttl.mul_f64(rng.random_range(1.1..2.5)),
            whole_node: rng.random_bool(0.5),
            rolling: rng.random_bool(0.5),
            by_drain: rng.random_bool(0.5),
            strike_mover: rng.random_bool(0.5),
            lag: ttl.mul_f64(rng.random_range(0.02..0.1)),
        });
        let node = match target_leader {
            true => soak.leader().await.unwrap_or(random_node),
            false => random_node,
        };
        *counts.entry(kind).or_default() += 1;
        let line = format!(
            "{} (node n{node}, etcd member {member}, hold {hold:?})",
            kind.name()
        );
        soak.note(&line);
        let draw = Draw {
            node,
            member,
            hold,
            delay,
            jitter,
            steer,
            shards,
        };
        inject(soak, api, kind, &draw).await;
        sleep(settle.min(until.saturating_duration_since(Instant::now()))).await;
    }
    counts
}

/// Every node a candidate again, so the run ends as it began.
pub async fn restore(soak: &mut Soak) {
    for i in 0..soak.nodes.len() {
        soak.nodes[i].resume();
        if soak.health_mode[i] != Mode::Healthy {
            soak.set_health(i, Mode::Healthy);
        }
        if soak.drained[i] {
            soak.undrain(i).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARD_KINDS: [Kind; 6] = [
        Kind::ShardHolderPause,
        Kind::JoinAndLeave,
        Kind::EveryNodeRestarted,
        Kind::ForeignShardRecord,
        Kind::MoveInterrupted,
        Kind::SlowLeaderHandsOver,
    ];

    #[test]
    fn shard_faults_join_the_others_only_with_shards() {
        for members in [1, 3] {
            let plain = kinds(members, false, 5, true, false);
            let sharded = kinds(members, false, 5, true, true);
            assert!(plain.iter().all(|k| !SHARD_KINDS.contains(k)));
            for kind in SHARD_KINDS {
                assert!(sharded.contains(&kind), "{kind:?} never drawn");
            }
            // The others as often as without shards, in the same order.
            let others: Vec<Kind> = sharded
                .iter()
                .filter(|k| !SHARD_KINDS.contains(k))
                .copied()
                .collect();
            assert_eq!(others, plain);
            let share = (sharded.len() - others.len()) as f64 / sharded.len() as f64;
            assert!(
                (0.3..0.4).contains(&share),
                "shard faults {share} of the rounds"
            );
        }
        // One node cannot join while another leaves, nor move shards.
        let alone = kinds(1, false, 1, true, true);
        for kind in [
            Kind::JoinAndLeave,
            Kind::MoveInterrupted,
            Kind::SlowLeaderHandsOver,
        ] {
            assert!(!alone.contains(&kind), "{kind:?} drawn with one node");
        }
    }
}
