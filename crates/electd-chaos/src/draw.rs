//! One round of the schedule: the kind of fault, and every value it may
//! use, drawn from the seed.

use std::time::Duration;

use harness::app::Mode;

/// What a round of the schedule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    KillRestart,
    ElectdKillRestart,
    PauseResume,
    TermRestart,
    SilentPartition,
    LoudPartition,
    Delay,
    EtcdMemberRestart,
    EtcdMemberCutOff,
    EtcdWipe,
    WatchdogKill,
    WatchdogPause,
    CommandKill,
    HealthFail,
    HealthFlap,
    Drain,
    Transfer,
    TransferTargetStopped,
    TransferTargetKilled,
    PreemptorUnhealthy,
    DrainInFailover,
    ShardHolderPause,
    JoinAndLeave,
    EveryNodeRestarted,
    ForeignShardRecord,
    MoveInterrupted,
    SlowLeaderHandsOver,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::KillRestart => "kill -9 (guardian and electd) + restart",
            Kind::ElectdKillRestart => "kill -9 of electd only + restart",
            Kind::PauseResume => "SIGSTOP/SIGCONT",
            Kind::TermRestart => "SIGTERM + restart",
            Kind::SilentPartition => "silent partition",
            Kind::LoudPartition => "loud partition",
            Kind::Delay => "delay",
            Kind::EtcdMemberRestart => "etcd member kill + restart",
            Kind::EtcdMemberCutOff => "etcd member cut off",
            Kind::EtcdWipe => "etcd data wiped",
            Kind::WatchdogKill => "kill -9 of the watchdog",
            Kind::WatchdogPause => "SIGSTOP/SIGCONT of the watchdog",
            Kind::CommandKill => "kill -9 of the command",
            Kind::HealthFail => "health fails or recovers",
            Kind::HealthFlap => "health flaps",
            Kind::Drain => "drain or undrain",
            Kind::Transfer => "resign?to=",
            Kind::TransferTargetStopped => "resign?to=, target SIGSTOPped",
            Kind::TransferTargetKilled => "resign?to=, target kill -9",
            Kind::PreemptorUnhealthy => "preempting node turns unhealthy",
            Kind::DrainInFailover => "kill -9 leader, drain another",
            Kind::ShardHolderPause => "busiest shard holder stopped",
            Kind::JoinAndLeave => "a join and a leave at once",
            Kind::EveryNodeRestarted => "every node restarted",
            Kind::ForeignShardRecord => "a foreign record under ~~shards/",
            Kind::MoveInterrupted => "shard move cut by kill -9",
            Kind::SlowLeaderHandsOver => "resign?to=, leader's link slow",
        }
    }
}

/// One round's draws.
pub struct Draw {
    /// The target: the leader, or a random node.
    pub node: usize,
    pub member: usize,
    pub hold: Duration,
    pub delay: Duration,
    pub jitter: Duration,
    pub steer: Steer,
    /// With `--shards`, the shard faults' draws.
    pub shards: Option<ShardDraw>,
}

/// The steering actions' draws.
pub struct Steer {
    /// Picks another node: `(n + 1 + offset) % nodes`, never `n`.
    pub offset: usize,
    /// How a failing health check fails.
    pub failing: Mode,
    /// Whether a node taken out (unhealthy, drained) is brought back at
    /// the end of the hold, or left out for later rounds.
    pub restore: bool,
    /// Whether a hand-over's target is stopped or killed before the ask,
    /// and if not, how long after.
    pub first: bool,
    pub midway: Duration,
    /// Changes of verdict in a flap, and the time between them.
    pub flaps: u32,
    pub flap: Duration,
    /// How long after a preempting node turns healthy it turns unhealthy.
    pub lag: Duration,
    /// How long after the leader is killed another node is drained.
    pub failover: Duration,
}

/// The shard faults' draws (`--shards`), made every round of a sharded run
/// (and only then, so that a seed without `--shards` keeps its schedule).
pub struct ShardDraw {
    /// The shard a foreign record is written over.
    pub shard: u32,
    /// What foreign record.
    pub foreign: Foreign,
    /// How long the busiest holder stays stopped: past the TTL.
    pub past_ttl: Duration,
    /// Whether a leave, or the strike that interrupts a move, is kill -9 of
    /// the whole node (its lease expires) rather than SIGTERM (a leave) or
    /// kill -9 of electd alone (its guardian revokes at once).
    pub whole_node: bool,
    /// Whether every node restarts one after another (else all at once).
    pub rolling: bool,
    /// Whether the move is started by a drain of the node (else by the node
    /// joining), and whether that node is the one struck (else a node on
    /// the other side of its moves).
    pub by_drain: bool,
    pub strike_mover: bool,
    /// How much slower (each way) the election's leader's link to etcd is
    /// while it hands the election over.
    pub lag: Duration,
}

/// A record under the shard prefix that electd did not write.
#[derive(Clone, Copy, Debug)]
pub enum Foreign {
    /// Text that is not electd's, bound to no lease, over a led shard.
    Garbage,
    /// Another shard's record (electd's form, naming its holder's lease),
    /// copied over a led shard and bound to no lease.
    CopyUnbound,
    /// Text that is not electd's, bound to the shard's holder's own lease.
    GarbageOnHoldersLease,
    /// A key under the prefix that names no shard of the election (past
    /// its count, or not a number).
    Stray,
}
