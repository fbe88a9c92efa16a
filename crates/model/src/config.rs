//! What is checked: which protocol, and the bounds that keep the state
//! space finite and small.

/// The protocol the model runs: today's, the one-write hand-over of issue
/// 20, and the three ideas for it that are unsafe (each must be caught).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// As built today: a departing leader revokes its lease and the
    /// successor creates the record; the term is the record's
    /// `create_revision`.
    Today,
    /// Issue 20: the departing leader (and the guardian of a dead one whose
    /// record is still bound to the dead process's own lease) gives the
    /// record to the chosen successor in one txn, comparing the record
    /// unchanged and bound to the departing lease, the successor's key
    /// unchanged since read, the anchor, and no transfer; the term is the
    /// record's `mod_revision`. A named hand-over keeps `~transfer`.
    OneWrite,
    /// Unsafe (a): as `OneWrite`, but a guardian whose electd led hands on
    /// whatever record it reads (comparing the `mod_revision` it read),
    /// without checking that it is still bound to the dead process's own
    /// lease: even a record its electd had already handed on.
    GuardianHandsOnAnyRecord,
    /// Unsafe (b): as `OneWrite`, but the hand-over neither requires nor
    /// compares the anchor, while a party of the old oldest-key rule may be
    /// present.
    OneWriteWithoutAnchor,
    /// Unsafe (c): as `OneWrite`, but the term stays the record's
    /// `create_revision`, which a record replaced in place keeps.
    OneWriteCreateRevisionTerm,
}

impl Protocol {
    /// Every protocol, today's first.
    pub const ALL: [Protocol; 5] = [
        Protocol::Today,
        Protocol::OneWrite,
        Protocol::GuardianHandsOnAnyRecord,
        Protocol::OneWriteWithoutAnchor,
        Protocol::OneWriteCreateRevisionTerm,
    ];

    /// Whether a departing leader hands the record over in one txn.
    pub fn one_write(self) -> bool {
        self != Protocol::Today
    }

    /// Whether the term is the record's `mod_revision` (else its
    /// `create_revision`: the same while records are never replaced).
    pub fn term_is_mod_revision(self) -> bool {
        !matches!(self, Protocol::Today | Protocol::OneWriteCreateRevisionTerm)
    }

    /// Whether the one-write hand-over requires the anchor and compares it.
    pub fn hand_over_compares_anchor(self) -> bool {
        self != Protocol::OneWriteWithoutAnchor
    }

    /// Whether the guardian hands over only a record bound to one of its
    /// dead process's own leases.
    pub fn guardian_checks_its_record(self) -> bool {
        self != Protocol::GuardianHandsOnAnyRecord
    }

    /// Whether a record this process holds makes it leader only when
    /// electd's reading of the keys (`layout::assess`) agrees, which puts an
    /// old-rule key that is the oldest before any record (today); the
    /// one-write protocols take a record bound to our lease and carrying
    /// our nonce as ours (issue 20, item 2).
    pub fn old_rule_first(self) -> bool {
        self == Protocol::Today
    }

    /// Whether the protocol is expected to be safe.
    pub fn safe(self) -> bool {
        matches!(self, Protocol::Today | Protocol::OneWrite)
    }
}

/// The configuration checked: the protocol, time, and how much of each
/// fault may happen (every bound is a budget along one path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// The protocol.
    pub protocol: Protocol,
    /// A lease's TTL, in ticks.
    pub ttl: u8,
    /// The deadline's margin, in ticks (at least 1: the deadline falls
    /// strictly before the lease's expiry).
    pub margin: u8,
    /// No write beyond this revision: the bound where revisions are not
    /// renumbered (a wipe makes their values matter; a search keeps them
    /// for its trace).
    pub max_revision: u8,
    /// Campaigns (a lease and a candidate key each), beyond the three a
    /// settled or wiped start made.
    pub campaigns: u8,
    /// electd processes killed (with or without their guardian).
    pub crashes: u8,
    /// Nodes started again after their processes died.
    pub restarts: u8,
    /// Health or drain verdicts (a candidacy rewritten in place).
    pub verdicts: u8,
    /// Named hand-overs (`?to=`).
    pub transfers: u8,
    /// Leader records deleted by hand (an operator, `etcdctl del`).
    pub hand_deletes: u8,
    /// etcd wipes (every member stopped, its data deleted, started afresh).
    pub wipes: u8,
    /// Ticks etcd answers nothing after a wipe (stopping, deleting and
    /// starting every member).
    pub wipe_outage: u8,
    /// Whether the nodes keep their term floor in `--state-file`.
    pub state_file: bool,
    /// Whether a party of the old oldest-key rule (`etcdctl elect` on the
    /// same prefix) may join.
    pub old_rule_party: bool,
    /// Whether candidates have priorities: any eligible candidate may then
    /// rank first (and be chosen as a successor); without, the oldest
    /// eligible key is first, as with the default (equal) priority.
    pub priorities: bool,
    /// Where the check starts.
    pub start: Start,
    /// Whether states are stored reduced: revisions renumbered in order
    /// (only their order and equality matter, so no revision bound is
    /// needed) and the nodes in a canonical order (they are
    /// interchangeable). Off, a trace keeps every revision and every node's
    /// name from step to step, and `max_revision` bounds the search.
    pub reduce: bool,
}

/// Where the check starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Start {
    /// etcd empty, three processes just started.
    Empty,
    /// Three candidates queued at revisions 2, 3 and 4, the anchor at 5,
    /// and node 0's record at 6, bound to its lease; the others have not
    /// read it yet.
    Settled,
    /// The settled election, read by every node, just after etcd's data
    /// was wiped while node 2 was down: etcd is empty at revision 1 and
    /// down for the outage, node 0 still believes it leads until its
    /// deadline, node 2 may start again with the floor in its state file.
    Wiped,
}

impl Config {
    /// The main configuration CI checks for `protocol`: a settled election
    /// of three candidates with priorities, leaders stepping down (and
    /// handing over), renewals and expiries at any time, one campaign
    /// after the first three, one named hand-over, one health verdict and
    /// one crash (with or without the guardian).
    pub fn ci(protocol: Protocol) -> Config {
        Config {
            protocol,
            ttl: 2,
            margin: 1,
            max_revision: 11,
            campaigns: 1,
            crashes: 1,
            restarts: 0,
            verdicts: 1,
            transfers: 1,
            hand_deletes: 0,
            wipes: 0,
            wipe_outage: 2,
            state_file: true,
            old_rule_party: false,
            priorities: true,
            start: Start::Settled,
            reduce: true,
        }
    }

    /// An etcd wipe against the term floor: the check starts just after
    /// the wipe of a settled election ([`Start::Wiped`]); etcd is down for
    /// a TTL; two campaigns (node 2's after it starts again with its state
    /// file, or not); revisions up to 9, enough for a leader after the
    /// wipe to hand over.
    pub fn wipe(protocol: Protocol) -> Config {
        Config {
            start: Start::Wiped,
            transfers: 0,
            verdicts: 0,
            crashes: 1,
            restarts: 1,
            campaigns: 2,
            wipes: 1,
            wipe_outage: 2,
            max_revision: 9,
            ..Config::ci(protocol)
        }
    }

    /// An upgrade in progress: a party of the old oldest-key rule
    /// (`etcdctl elect`) beside the candidates.
    pub fn old_rule(protocol: Protocol) -> Config {
        Config {
            old_rule_party: true,
            start: Start::Empty,
            campaigns: 3,
            transfers: 0,
            verdicts: 0,
            crashes: 0,
            restarts: 0,
            max_revision: 10,
            ..Config::ci(protocol)
        }
    }

    /// The configurations CI checks for `protocol`, by name.
    pub fn suite(protocol: Protocol) -> [(&'static str, Config); 3] {
        [
            ("ci", Config::ci(protocol)),
            ("wipe", Config::wipe(protocol)),
            ("old-rule", Config::old_rule(protocol)),
        ]
    }

    /// The configuration named `name` (as in [`Config::suite`], or one of
    /// the gaps: `hand-delete`, `short-outage`, `no-state-file`).
    pub fn named(name: &str, protocol: Protocol) -> Option<Config> {
        Some(match name {
            "ci" => Config::ci(protocol),
            "wipe" => Config::wipe(protocol),
            "old-rule" => Config::old_rule(protocol),
            "hand-delete" => Config::hand_delete(protocol),
            "short-outage" => Config::short_outage(protocol),
            "no-state-file" => Config::no_state_file(protocol),
            _ => return None,
        })
    }

    /// A gap: the leader record deleted by hand (an operator), with
    /// priorities, so that a candidate that never saw the old leader lead
    /// may rank before it.
    pub fn hand_delete(protocol: Protocol) -> Config {
        Config {
            hand_deletes: 1,
            crashes: 0,
            verdicts: 0,
            transfers: 0,
            campaigns: 2,
            ..Config::ci(protocol)
        }
    }

    /// A gap: etcd back from a wipe before the old leader's deadline (a
    /// TTL of 3 ticks, etcd down for 1).
    pub fn short_outage(protocol: Protocol) -> Config {
        Config {
            ttl: 3,
            wipe_outage: 1,
            ..Config::wipe(protocol)
        }
    }

    /// The documented limit: a wipe, and a node started afresh after it
    /// without `--state-file`.
    pub fn no_state_file(protocol: Protocol) -> Config {
        Config {
            state_file: false,
            ..Config::wipe(protocol)
        }
    }

    /// Whether the model keeps the highest revision each node saw (only a
    /// wipe makes it matter: it is how a node notices the history lost).
    pub fn tracks_history(&self) -> bool {
        self.wipes > 0
    }

    /// Whether the model keeps the leases each node saw leading, for the
    /// wait for predecessors (`succession.rs`). Only a record deleted by
    /// hand leaves a leader's lease alive after its record while that
    /// leader may still believe it leads; elsewhere the model lets the
    /// successor go on without the wait, which only ever holds a step back
    /// (more behaviours: still a sound check).
    pub fn tracks_predecessors(&self) -> bool {
        self.hand_deletes > 0
    }

    /// Whether the model keeps each node's term floor. Without a wipe,
    /// every term a protocol that takes the write's revision as the term
    /// hands out is a revision never seen before, above every floor, and a
    /// term resuming is the only record's: the floor never refuses, and
    /// leaving it out changes nothing but the number of states.
    pub fn tracks_floor(&self) -> bool {
        self.tracks_history() || self.protocol == Protocol::OneWriteCreateRevisionTerm
    }
}
