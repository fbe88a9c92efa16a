//! The faults, by kind: what happens to a node's processes, to its links
//! to etcd, to etcd itself, to who may lead (steering), and to a sharded
//! election's shards. One function per kind; [`inject`] picks it.

mod etcd;
mod network;
mod process;
mod shards;
mod steering;

use crate::draw::{Draw, Kind};
use crate::fleet::Soak;

/// Injects one fault of `kind`, with this round's draws; returns when it
/// is over (healed, restarted, or left for a later round to undo).
pub async fn inject(soak: &mut Soak, api: &str, kind: Kind, draw: &Draw) {
    match kind {
        Kind::KillRestart => process::kill_restart(soak, draw).await,
        Kind::ElectdKillRestart => process::electd_kill_restart(soak, draw).await,
        Kind::PauseResume => process::pause_resume(soak, draw).await,
        Kind::TermRestart => process::term_restart(soak, draw).await,
        Kind::SilentPartition => network::silent_partition(soak, draw).await,
        Kind::LoudPartition => network::loud_partition(soak, draw).await,
        Kind::Delay => network::delay(soak, draw).await,
        Kind::EtcdMemberRestart => etcd::member_restart(soak, draw).await,
        Kind::EtcdMemberCutOff => etcd::member_cut_off(soak, draw).await,
        Kind::EtcdWipe => etcd::wipe(soak, api, draw).await,
        Kind::WatchdogKill | Kind::WatchdogPause | Kind::CommandKill => {
            process::watchdog_or_command(soak, kind, draw).await
        }
        Kind::HealthFail => steering::health_fail(soak, draw).await,
        Kind::HealthFlap => steering::health_flap(soak, draw).await,
        Kind::Drain => steering::drain(soak, draw).await,
        Kind::Transfer => steering::transfer(soak, api, draw).await,
        Kind::TransferTargetStopped | Kind::TransferTargetKilled => {
            steering::transfer_target_struck(soak, kind, draw).await
        }
        Kind::PreemptorUnhealthy => steering::preemptor_unhealthy(soak, draw).await,
        Kind::DrainInFailover => steering::drain_in_failover(soak, draw).await,
        Kind::ShardHolderPause
        | Kind::JoinAndLeave
        | Kind::EveryNodeRestarted
        | Kind::ForeignShardRecord
        | Kind::MoveInterrupted
        | Kind::SlowLeaderHandsOver => {
            // Drawn only with --shards, when every round draws these.
            let Some(shard_draw) = &draw.shards else {
                return;
            };
            match kind {
                Kind::ShardHolderPause => shards::holder_pause(soak, draw, shard_draw).await,
                Kind::JoinAndLeave => shards::join_and_leave(soak, draw, shard_draw).await,
                Kind::EveryNodeRestarted => {
                    shards::every_node_restarted(soak, draw, shard_draw).await
                }
                Kind::ForeignShardRecord => shards::foreign_record(soak, draw, shard_draw).await,
                Kind::MoveInterrupted => shards::move_interrupted(soak, draw, shard_draw).await,
                _ => shards::slow_leader_hands_over(soak, draw, shard_draw).await,
            }
        }
    }
}
