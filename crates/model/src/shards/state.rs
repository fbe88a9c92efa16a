//! The shards' world: the protocol (and its unsafe variants), the bounds,
//! etcd with one record key per shard, the nodes, and the ghost variables
//! the properties read.

use crate::etcd::{Etcd, Key, LeaseId, Leases, Owner, Rev, remap};
use crate::state::{Claim, Guardian, NODES};

/// The most shards a configuration may have.
pub const MAX_SHARDS: usize = 3;

/// A set of shards, one bit per shard.
pub type Shards = u8;

/// The bit of shard `k`.
pub fn shard_bit(k: usize) -> Shards {
    1 << k
}

/// The shards protocol (planned), and the unsafe ideas the checker must catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShardProtocol {
    /// As designed: an absent record is taken by whatever node tries
    /// (compare: absent); a holder stops believing, then moves a batch of
    /// its records to a successor in one txn (compare: each record's
    /// `mod_revision` and lease as read, the successor's candidate key's
    /// `mod_revision`); the guardian of a dead electd does the same for
    /// records still bound to one of the dead process's own leases; the
    /// term is the record's `mod_revision`; one floor per node.
    Placed,
    /// Unsafe (a): a coordinator, a node that does not hold the shard,
    /// writes a move of it (with every compare).
    CoordinatorMoves,
    /// Unsafe (b): a holder writes the move before it stops believing, and
    /// stops when it next reads the shard gone (pulsar#5599).
    MovesBeforeStopping,
    /// Unsafe (c): a move compares the successor's key but not the record's
    /// version (pulsar#295).
    MovesWithoutVersion,
    /// Unsafe (d): a guardian moves the records its electd told it it led,
    /// comparing the `mod_revision` it read, not that the record is still
    /// bound to one of the dead process's leases.
    GuardianMovesAnyRecord,
    /// Unsafe (e): a node believes it leads a shard as soon as the placement
    /// names it, not once it sees the record bound to its lease.
    BelievesWhenNamed,
}

impl ShardProtocol {
    /// Every protocol, the safe one first.
    pub const ALL: [ShardProtocol; 6] = [
        ShardProtocol::Placed,
        ShardProtocol::CoordinatorMoves,
        ShardProtocol::MovesBeforeStopping,
        ShardProtocol::MovesWithoutVersion,
        ShardProtocol::GuardianMovesAnyRecord,
        ShardProtocol::BelievesWhenNamed,
    ];
}

/// Where the check starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShardStart {
    /// etcd empty, three processes just started.
    Empty,
    /// Three candidates queued, node 0 holding every shard (taken one
    /// after the other), the others unaware of it.
    Settled,
    /// The settled shards, read by every node, just after etcd's data was
    /// wiped while node 2 was down (its floor and highest revision in its
    /// state file): etcd empty at revision 1 and down for the outage, node
    /// 0 still believing it leads every shard until its deadline.
    Wiped,
}

/// What is checked: the protocol, time, and each fault's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShardConfig {
    /// The protocol.
    pub protocol: ShardProtocol,
    /// Shards (at most [`MAX_SHARDS`]).
    pub shards: u8,
    /// A lease's TTL, in ticks.
    pub ttl: u8,
    /// The deadline's margin, in ticks (at least 1).
    pub margin: u8,
    /// Campaigns beyond the start's.
    pub campaigns: u8,
    /// electd processes killed (with or without their guardian).
    pub crashes: u8,
    /// Nodes started again after their processes died.
    pub restarts: u8,
    /// Moves (a holder's, or a coordinator's), one batch each.
    pub moves: u8,
    /// etcd wipes.
    pub wipes: u8,
    /// Ticks etcd answers nothing after a wipe.
    pub wipe_outage: u8,
    /// No write beyond this revision (where revisions are not renumbered).
    pub max_revision: u8,
    /// Where the check starts.
    pub start: ShardStart,
    /// Whether states are reduced (revisions and nodes renumbered).
    pub reduce: bool,
}

impl ShardConfig {
    /// The configuration CI checks: two shards held by node 0, the others
    /// unaware; renewals and expiries at any time, takes of absent records
    /// by any node, one move (a batch of one shard or of both), one crash
    /// (with or without the guardian, whose move is a batch of one or two).
    pub fn ci(protocol: ShardProtocol) -> ShardConfig {
        ShardConfig {
            protocol,
            shards: 2,
            ttl: 2,
            margin: 1,
            campaigns: 0,
            crashes: 1,
            restarts: 0,
            moves: 1,
            wipes: 0,
            wipe_outage: 2,
            max_revision: 12,
            start: ShardStart::Settled,
            reduce: true,
        }
    }

    /// An etcd wipe against the floor: the check starts just after it
    /// ([`ShardStart::Wiped`]); etcd is down for a TTL; an operator may
    /// raise the revision to the highest floor; node 2 may start again
    /// with its state file; campaigns for two; no move (the floor is what
    /// is checked); revisions up to `max_revision`.
    pub fn wipe(protocol: ShardProtocol) -> ShardConfig {
        ShardConfig {
            start: ShardStart::Wiped,
            wipes: 1,
            restarts: 1,
            campaigns: 2,
            // Spent before the check begins, on node 2.
            crashes: 1,
            moves: 0,
            max_revision: 12,
            ..ShardConfig::ci(protocol)
        }
    }

    /// The configurations CI checks, by name.
    pub fn suite(protocol: ShardProtocol) -> [(&'static str, ShardConfig); 2] {
        [
            ("ci", ShardConfig::ci(protocol)),
            ("wipe", ShardConfig::wipe(protocol)),
        ]
    }
}

/// etcd: the leases and candidate keys of the election's store (its
/// single-election keys stay absent), and one record key per shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardEtcd {
    /// The revision, the leases and the candidate keys.
    pub etcd: Etcd,
    /// Each shard's record: bound to its holder's lease; its `mod_revision`
    /// is the term.
    pub records: [Option<Key>; MAX_SHARDS],
}

impl ShardEtcd {
    /// Ends lease `id` (a revoke, or etcd's expiry): its candidate key and
    /// every record bound to it go, at one revision.
    pub fn end_lease(&mut self, id: LeaseId) {
        let mut deleted = false;
        for record in &mut self.records {
            if record.is_some_and(|r| r.lease == id) {
                *record = None;
                deleted = true;
            }
        }
        if !self.etcd.end_lease(id) && deleted {
            self.etcd.write();
        }
    }

    /// Renumbers the leases (`Etcd::renumber`), records too; the map.
    pub fn renumber(&mut self) -> [LeaseId; crate::etcd::MAX_LEASES + 1] {
        let map = self.etcd.renumber();
        for record in self.records.iter_mut().flatten() {
            record.lease = remap(&map, record.lease);
        }
        map
    }
}

/// A move: one txn that binds a batch of records to the successor's lease,
/// comparing each record as read and the successor's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Move {
    /// Each shard of the batch: its record's lease and `mod_revision` as
    /// read (`None` for a shard not in the batch).
    pub read: [Option<(LeaseId, Rev)>; MAX_SHARDS],
    /// The successor's lease.
    pub to: LeaseId,
    /// The successor's candidate key's `mod_revision` as read.
    pub to_modr: Rev,
}

impl Move {
    /// The shards it moves.
    pub fn batch(&self) -> Shards {
        (0..MAX_SHARDS)
            .filter(|&k| self.read[k].is_some())
            .fold(0, |set, k| set | shard_bit(k))
    }
}

/// A request on its way to etcd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShardRequest {
    /// Take shard `shard`'s record: absent, our key still at `create`.
    Take {
        /// The shard.
        shard: u8,
        /// Our lease.
        lease: LeaseId,
        /// Our key's `create_revision`.
        create: Rev,
    },
    /// Move a batch.
    Move(Move),
}

/// An electd process of the shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardProc {
    /// Its claim: the one lease and candidate key, and the one deadline.
    pub claim: Option<Claim>,
    /// Per shard, the term it leads with (while the deadline lasts).
    pub tenure: [Option<Rev>; MAX_SHARDS],
    /// The one term floor: no leadership of any shard at or below it.
    pub floor: Rev,
    /// The highest revision seen (tracked only when a wipe is possible).
    pub high: Rev,
    /// The request on its way.
    pub request: Option<ShardRequest>,
}

impl ShardProc {
    /// A process just started, with the floor and highest revision its
    /// state file kept.
    pub fn new(floor: Rev, high: Rev) -> ShardProc {
        ShardProc {
            claim: None,
            tenure: [None; MAX_SHARDS],
            floor,
            high,
            request: None,
        }
    }

    /// Whether it calls itself leader of shard `k` now.
    pub fn believes(&self, k: usize) -> bool {
        self.tenure[k].is_some() && self.claim.is_some_and(|c| c.deadline_in > 0)
    }
}

/// One candidate's host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardNode {
    /// Which electd process it runs (or ran last).
    pub inc: u8,
    /// The electd process, while it lives.
    pub proc: Option<ShardProc>,
    /// Its guardian.
    pub guardian: Guardian<Move>,
    /// The leases electd told its guardian of, before using them.
    pub claims: Leases,
    /// A request the dead process sent, still on its way.
    pub inflight: Option<ShardRequest>,
    /// The floor and highest revision in `--state-file`.
    pub saved: (Rev, Rev),
    /// The shards electd told its guardian it led (only the unsafe
    /// guardian of [`ShardProtocol::GuardianMovesAnyRecord`] asks).
    pub told_led: Shards,
}

impl ShardNode {
    /// A node whose first process just started.
    pub fn new() -> ShardNode {
        ShardNode {
            inc: 0,
            proc: Some(ShardProc::new(0, 0)),
            guardian: Guardian::Watching,
            claims: 0,
            inflight: None,
            saved: (0, 0),
            told_led: 0,
        }
    }
}

impl Default for ShardNode {
    fn default() -> ShardNode {
        ShardNode::new()
    }
}

/// What is left of each fault's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardBudget {
    /// Campaigns.
    pub campaigns: u8,
    /// electd processes killed.
    pub crashes: u8,
    /// Nodes started again.
    pub restarts: u8,
    /// Moves.
    pub moves: u8,
    /// etcd wipes.
    pub wipes: u8,
}

/// Events the `sometimes` properties look for, as bits of
/// [`ShardGhost::events`].
pub mod shard_event {
    /// A node led a shard on a record moved to it.
    pub const LED_ON_A_MOVE: u8 = 1;
    /// One txn moved two shards.
    pub const MOVED_TWO: u8 = 1 << 1;
    /// A guardian's move landed.
    pub const GUARDIAN_MOVED: u8 = 1 << 2;
    /// Two nodes led a shard each at once.
    pub const SPREAD: u8 = 1 << 3;
    /// etcd was wiped.
    pub const WIPED: u8 = 1 << 4;
    /// A shard was led after the wipe.
    pub const LED_AFTER_WIPE: u8 = 1 << 5;
}

/// What the properties read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardGhost {
    /// Per shard, the highest term a leadership began with, and whose.
    pub max_term: [Option<(Rev, Owner)>; MAX_SHARDS],
    /// A shard's leadership began with a term not above its earlier ones.
    pub term_went_back: bool,
    /// A record was written by someone other than its holder, its holder's
    /// guardian, or a node taking it while absent.
    pub stray_write: bool,
    /// Bits of [`shard_event`].
    pub events: u8,
}

/// The whole world of the shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardState {
    /// etcd.
    pub etcd: ShardEtcd,
    /// The candidates' hosts.
    pub nodes: [ShardNode; NODES],
    /// What is left of each fault.
    pub budget: ShardBudget,
    /// History.
    pub ghost: ShardGhost,
}

impl ShardState {
    /// Who the running (or last) process of `node` is.
    pub fn owner(&self, node: usize) -> Owner {
        Owner::Process {
            node: u8::try_from(node).unwrap_or(u8::MAX),
            inc: self.nodes.get(node).map_or(0, |n| n.inc),
        }
    }

    /// The nodes that call themselves leader of shard `k` now.
    pub fn leaders(&self, k: usize) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.proc.is_some_and(|p| p.believes(k)))
            .count()
    }
}
