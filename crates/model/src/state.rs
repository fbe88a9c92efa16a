//! The state of the modelled world: etcd, three nodes (each an electd
//! process and its guardian), the old-rule party, what is left of each
//! fault's budget, and the ghost variables the properties read.

use crate::etcd::{Etcd, Key, LeaseId, Leases, Owner, Rev};

/// Candidates in the checked configuration.
pub const NODES: usize = 3;

/// A claim an electd process holds: its lease and candidate key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Claim {
    /// The lease (`0` once etcd no longer has it, before the process knows).
    pub lease: LeaseId,
    /// Its candidate key's `create_revision`.
    pub create: Rev,
    /// Ticks until its deadline: the last acknowledged renewal's send time
    /// plus TTL minus margin. The process may call itself leader only
    /// before it.
    pub deadline_in: u8,
}

/// A request a process sent to etcd, not answered yet: it lands at some
/// later step, against whatever etcd holds then (or after the process
/// died). Each is one txn (or a revoke), guarded by what it compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Request {
    /// Create the record bound to `lease`: record absent, our key still at
    /// `create`, the anchor at the revision seen (or, without one, no key
    /// older than ours), `~transfer` absent or at the revision seen.
    TakeRecord {
        /// Our lease.
        lease: LeaseId,
        /// Our key's `create_revision`.
        create: Rev,
        /// The anchor seen.
        anchor: Option<Rev>,
        /// The transfer to us seen (its `mod_revision`).
        transfer: Option<Rev>,
    },
    /// Lay the anchor: no old-rule key, no anchor.
    LayAnchor,
    /// Delete a transfer to us that we may not take, if unchanged.
    Decline {
        /// Its `mod_revision`.
        modr: Rev,
    },
    /// Revoke a lease of ours (a release).
    Revoke {
        /// The lease.
        lease: LeaseId,
    },
    /// One-write hand-over: give the record to `to`'s lease, if the record
    /// is unchanged and bound to `from`, `to`'s key unchanged, the anchor as
    /// seen, and no transfer; delete our candidate key.
    HandOver {
        /// The departing lease.
        from: LeaseId,
        /// The record's `mod_revision` seen.
        record: Rev,
        /// The successor's lease.
        to: LeaseId,
        /// The successor's key's `mod_revision` seen.
        to_modr: Rev,
        /// The anchor seen.
        anchor: Option<Rev>,
    },
    /// Named hand-over: put `~transfer` bound to `to`'s lease if the record
    /// is still bound to `from`, no transfer exists and `to`'s key is still
    /// at `to_create`; then revoke `from` whatever the answer.
    PutTransfer {
        /// The departing lease.
        from: LeaseId,
        /// The target's lease.
        to: LeaseId,
        /// The target's key's `create_revision` seen.
        to_create: Rev,
    },
}

/// An electd process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Proc {
    /// Whether it may lead (healthy and undrained), as its key says.
    pub eligible: bool,
    /// Its claim, while it campaigns with one.
    pub claim: Option<Claim>,
    /// Whether its claim's record was seen as ours: when it goes, so does the claim.
    pub led: bool,
    /// The term it leads with (believes it leads while the deadline lasts).
    pub tenure: Option<Rev>,
    /// Its last tenure's term: the only one it may resume at the floor.
    pub last_term: Option<Rev>,
    /// The term floor: no tenure at or below it (but its own resuming).
    pub floor: Rev,
    /// The highest revision seen (tracked only when a wipe is possible).
    pub high: Rev,
    /// etcd's history went back: no tenure until its revision passes the floor.
    pub regressed: bool,
    /// Leases of keys seen leading: the record's, or the old-rule key's
    /// while it is the oldest. Nobody takes a step while one lives.
    pub seen: Leases,
    /// The request on its way.
    pub request: Option<Request>,
    /// The `mod_revision` of a transfer it put, to withdraw.
    pub transfer: Option<Rev>,
}

impl Proc {
    /// A process just started, with the floor (and highest revision) a
    /// state file kept.
    pub fn new(floor: Rev, high: Rev) -> Proc {
        Proc {
            eligible: true,
            claim: None,
            led: false,
            tenure: None,
            last_term: None,
            floor,
            high,
            regressed: false,
            seen: 0,
            request: None,
            transfer: None,
        }
    }

    /// Whether it calls itself leader now: a tenure, before the deadline.
    pub fn believes(&self) -> bool {
        self.tenure.is_some() && self.claim.is_some_and(|c| c.deadline_in > 0)
    }

    /// Whether it may lead with `term`: eligible, and the term above the
    /// floor (or at it, its own last term resuming).
    pub fn may_lead_with(&self, term: Rev) -> bool {
        self.eligible && (term > self.floor || (term == self.floor && self.last_term == Some(term)))
    }
}

/// What a guardian reads before it hands over a dead process's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Plan {
    /// The record's lease and `mod_revision` as read.
    pub record: Key,
    /// The successor's lease.
    pub to: LeaseId,
    /// The successor's key's `mod_revision` as read.
    pub to_modr: Rev,
    /// The anchor as read.
    pub anchor: Option<Rev>,
}

/// A node's guardian (electd's parent process); `P` is what it reads
/// before it hands over (the election's [`Plan`], or the shards' move).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Guardian<P = Plan> {
    /// Alive, its electd alive.
    Watching,
    /// Its electd died (and its commands are gone): it releases the dead
    /// process's claims, perhaps by a hand-over it has read for.
    Releasing(Option<P>),
    /// Gone: exited after its release, or killed with electd.
    Gone,
}

/// One candidate's host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    /// Which electd process it runs (or ran last): its nonce, in effect.
    pub inc: u8,
    /// The electd process, while it lives.
    pub proc: Option<Proc>,
    /// Its guardian.
    pub guardian: Guardian,
    /// The leases electd told its guardian of, before using them.
    pub claims: Leases,
    /// A request the dead process sent before it died, still on its way.
    pub inflight: Option<Request>,
    /// The floor in `--state-file` (the floor is written at once).
    pub saved_floor: Rev,
    /// The revision in `--state-file`.
    pub saved_high: Rev,
    /// Whether electd told its guardian it led (only the unsafe guardian
    /// of `Protocol::GuardianHandsOnAnyRecord` asks).
    pub told_led: bool,
}

impl Node {
    /// A node whose first process just started.
    pub fn new() -> Node {
        Node {
            inc: 0,
            proc: Some(Proc::new(0, 0)),
            guardian: Guardian::Watching,
            claims: 0,
            inflight: None,
            saved_floor: 0,
            saved_high: 0,
            told_led: false,
        }
    }
}

impl Default for Node {
    fn default() -> Node {
        Node::new()
    }
}

/// What is left of each fault's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Budget {
    /// electd processes killed.
    pub crashes: u8,
    /// Nodes started again.
    pub restarts: u8,
    /// Health or drain verdicts.
    pub verdicts: u8,
    /// Named hand-overs.
    pub transfers: u8,
    /// Records deleted by hand.
    pub hand_deletes: u8,
    /// etcd wipes.
    pub wipes: u8,
    /// Whether the old-rule party may still join.
    pub old_rule_joins: u8,
    /// Campaigns (a lease and a candidate key each).
    pub campaigns: u8,
}

/// Events the `sometimes` properties look for, as bits of [`Ghost::events`].
pub mod event {
    /// A leader stepped down (resign, drain, hand-over).
    pub const STEPPED_DOWN: u16 = 1;
    /// Another process led after a step-down.
    pub const HANDED_OVER: u16 = 1 << 1;
    /// A process that believed it led crashed.
    pub const LEADER_CRASHED: u16 = 1 << 2;
    /// Another process led after that.
    pub const LED_AFTER_CRASH: u16 = 1 << 3;
    /// A transfer was consumed by its target's record.
    pub const TRANSFER_TAKEN: u16 = 1 << 4;
    /// The target led on it.
    pub const TRANSFERRED: u16 = 1 << 5;
    /// A process led on a record handed to it in one write.
    pub const LED_ON_ONE_WRITE: u16 = 1 << 6;
    /// etcd was wiped.
    pub const WIPED: u16 = 1 << 7;
    /// A process led after the wipe.
    pub const LED_AFTER_WIPE: u16 = 1 << 8;
    /// The old-rule party led.
    pub const OLD_RULE_LED: u16 = 1 << 9;
}

/// What the properties read: facts about the history, kept as it happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ghost {
    /// The highest term any leadership began with, and whose it was.
    pub max_term: Option<(Rev, Owner)>,
    /// A leadership began with a term not above every earlier one (and not
    /// its own process resuming).
    pub term_went_back: bool,
    /// The record was written by someone other than its holder, its
    /// holder's guardian, or a candidate taking it while absent.
    pub stray_write: bool,
    /// A history entry was written by someone other than its leadership's
    /// holder or that holder's guardian, or while the leadership went on.
    pub stray_entry: bool,
    /// Bits of the events the `sometimes` properties look for (`state::event`).
    pub events: u16,
}

/// The whole world. (Its `Hash` packs it into bytes first: `pack.rs`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct State {
    /// etcd.
    pub etcd: Etcd,
    /// The candidates' hosts.
    pub nodes: [Node; NODES],
    /// Whether the old-rule party leads (while its key lives).
    pub old_rule_leads: bool,
    /// What is left of each fault.
    pub budget: Budget,
    /// History.
    pub ghost: Ghost,
}

impl State {
    /// Who the running (or last) process of `node` is.
    pub fn owner(&self, node: usize) -> Owner {
        Owner::Process {
            node: u8::try_from(node).unwrap_or(u8::MAX),
            inc: self.nodes.get(node).map_or(0, |n| n.inc),
        }
    }

    /// How many parties call themselves leader now.
    pub fn leaders(&self) -> usize {
        let electd = self
            .nodes
            .iter()
            .filter(|n| n.proc.is_some_and(|p| p.believes()))
            .count();
        electd + usize::from(self.old_rule_leads && self.etcd.old_rule.is_some())
    }
}
