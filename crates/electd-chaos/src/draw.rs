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
