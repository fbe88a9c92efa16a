//! What the shards section reports, and the bounds it checks.

use std::time::Duration;

use serde::Serialize;

use crate::stats::Summary;

/// The sizes of one run.
pub struct Plan {
    pub shards: u32,
    pub nodes: usize,
    pub ttl_s: u64,
    pub idle: Duration,
    pub rounds: usize,
}

#[derive(Serialize)]
pub struct Shards {
    pub shards: u32,
    pub nodes: usize,
    pub ttl_s: u64,
    /// ⌊0.95 N/k⌋ and ⌈1.05 N/k⌉.
    pub lower: usize,
    pub upper: usize,
    /// The last node's start → the first instant every shard has a leader
    /// (journals; ms).
    pub all_led_ms: f64,
    /// The last node's start → the last `acquired` before the map settled
    /// (journals; ms): when the last move landed.
    pub last_move_ms: f64,
    /// The last node's start → every node's `/v1/shards` shows the same
    /// map, each node within the bounds (polled every 50 ms; ms).
    pub settled_seen_ms: f64,
    /// CPU the nodes' electd processes used from their start until the map
    /// settled, all together, and etcd's meanwhile (ms): beside
    /// `settled_seen_ms` × 2 cores, how busy the host was.
    pub start_cpu_ms: f64,
    pub start_etcd_cpu_ms: f64,
    /// Shards per node once settled: the fewest and the most.
    pub min_per_node: usize,
    pub max_per_node: usize,
    /// Raft proposals etcd committed during the idle window
    /// (`etcd_server_proposals_committed_total`).
    pub idle_seconds: f64,
    pub idle_proposals: f64,
    /// Leaderships begun or ended during the idle window (journals).
    pub idle_moves: usize,
    /// RSS of each node's electd at the end of the idle window (kB).
    pub idle_rss_kb: Option<Summary>,
    /// The same, of each node's guardian (kB).
    pub idle_guardian_rss_kb: Option<Summary>,
    pub sigterm: Leave,
    pub kill_electd: Leave,
    pub kill_node: Leave,
    pub join: Join,
    /// Violations the journal checker found over the whole run (none
    /// expected).
    pub violations: Vec<String>,
}

/// A node leaving (SIGTERM, kill -9 of electd, kill -9 of the node), over
/// the rounds.
#[derive(Default, Serialize)]
pub struct Leave {
    /// Shards the node led when it left, per round.
    pub shards_per_round: Vec<usize>,
    /// Whether it led the election itself too, per round.
    pub led_election: Vec<bool>,
    /// The signal → the last of its shards led again (ms), one per round.
    pub all_led_again_ms: Option<Summary>,
    /// Each of its shards: its interval's end → the next `acquired` (ms),
    /// every round's shards together.
    pub gap_ms: Option<Summary>,
    /// Each of its shards: the signal → the next `acquired` (ms).
    pub signal_to_acquired_ms: Option<Summary>,
    /// Raft proposals from just before the signal until its shards were
    /// led again, per round.
    pub proposals: Option<Summary>,
    /// CPU the other nodes' electd used meanwhile, all together (ms), per
    /// round.
    pub survivors_cpu_ms: Option<Summary>,
}

/// A node joining k settled nodes, over the rounds.
#[derive(Default, Serialize)]
pub struct Join {
    /// ⌊0.95 N/(k+1)⌋ and 1.1 N/(k+1).
    pub target: usize,
    pub move_budget: f64,
    /// The joiner's spawn → it leads `target` shards (ms), per round.
    pub reach_target_ms: Option<Summary>,
    /// The joiner's spawn → its last `acquired` of the join (ms).
    pub last_move_ms: Option<Summary>,
    /// Shards the joiner led once settled, per round.
    pub joiner_leads: Vec<usize>,
    /// Shards moved (any `acquired` after the spawn), per round.
    pub moved: Vec<usize>,
    /// Shards acquired more than once after the spawn, per round.
    pub moved_twice: Vec<usize>,
    /// Moved shards not given to the joiner, per round.
    pub moved_elsewhere: Vec<usize>,
    /// Each moved shard: the old leader's `ended` → the joiner's
    /// `acquired` (ms), every round's together.
    pub gap_ms: Option<Summary>,
    /// Raft proposals from before the spawn until settled, per moved
    /// shard, per round.
    pub proposals_per_moved_shard: Option<Summary>,
    /// CPU every node's electd used from the spawn until settled, all
    /// together, and the joiner's share (ms), per round.
    pub cpu_ms: Option<Summary>,
    pub joiner_cpu_ms: Option<Summary>,
}

/// How a node leaves in a [`Leave`] round.
#[derive(Clone, Copy, Debug)]
pub(super) enum How {
    Sigterm,
    KillElectd,
    KillNode,
}

/// ⌊0.95 n/k⌋ and ⌈1.05 n/k⌉, in integers.
pub fn bounds(n: u32, k: usize) -> (usize, usize) {
    let (n, k) = (n as usize, k.max(1));
    (95 * n / (100 * k), (105 * n).div_ceil(100 * k))
}
