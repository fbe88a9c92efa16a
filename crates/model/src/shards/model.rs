//! The shards as a stateright [`Model`]: every step any party can take, in
//! any order, and the properties that must hold per shard in every state.

use stateright::{Model, Property};

use crate::etcd::{Etcd, LeaseId, Rev, bit};
use crate::protocol::Writer;
use crate::shards::reduce::canonical;
use crate::shards::state::{
    MAX_SHARDS, ShardBudget, ShardConfig, ShardEtcd, ShardGhost, ShardNode, ShardProc,
    ShardProtocol, ShardRequest, ShardStart, ShardState, Shards, shard_bit, shard_event,
};
use crate::shards::steps::ShardElection;
use crate::state::{Claim, Guardian, NODES};

/// One step of one party.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShardAction {
    /// Time passes.
    Tick,
    /// etcd expires a lease whose time is up, with its key and records.
    Expire(LeaseId),
    /// A process grants itself a lease (telling its guardian first) and
    /// queues its candidate key with it.
    Campaign(u8),
    /// A process's keep-alive, sent and answered now.
    Renew(u8),
    /// A process reads the shards and decides which it leads.
    Observe(u8),
    /// A process reads the shards and sends a take of an absent record
    /// (the placement names it, or it is wrong: any node may).
    Take {
        /// The node.
        node: u8,
        /// The shard.
        shard: u8,
    },
    /// A process's request lands, and it reads the answer.
    Send(u8),
    /// A dead process's request lands.
    Land(u8),
    /// A holder stops leading a batch of its shards, then sends their move
    /// to the candidate with lease `to` (a coordinator, in
    /// [`ShardProtocol::CoordinatorMoves`], moves shards it does not hold).
    Move {
        /// The node.
        node: u8,
        /// The batch.
        shards: Shards,
        /// The successor's lease.
        to: LeaseId,
    },
    /// [`ShardProtocol::BelievesWhenNamed`]: the placement names a node for
    /// a shard, and it believes it leads it at once.
    Named {
        /// The node.
        node: u8,
        /// The shard.
        shard: u8,
    },
    /// electd is killed; its guardian survives, or dies with it.
    Crash {
        /// The node.
        node: u8,
        /// Whether the guardian survives.
        guardian: bool,
    },
    /// A dead electd's guardian reads a batch of records to move to the
    /// candidate with lease `to`.
    GuardianRead {
        /// The node.
        node: u8,
        /// The batch.
        shards: Shards,
        /// The successor's lease.
        to: LeaseId,
    },
    /// A guardian's move lands; then it revokes the dead leases and exits.
    GuardianSend(u8),
    /// A guardian revokes the dead process's leases and exits.
    GuardianRelease(u8),
    /// A node whose processes are gone starts again.
    Restart(u8),
    /// etcd's data is wiped.
    Wipe,
    /// Someone writes elsewhere in etcd until its revision reaches `to`.
    Bump {
        /// The revision reached.
        to: Rev,
    },
}

impl Model for ShardElection {
    type State = ShardState;
    type Action = ShardAction;

    fn init_states(&self) -> Vec<ShardState> {
        let c = &self.config;
        let empty = ShardState {
            etcd: ShardEtcd {
                etcd: Etcd::new(),
                records: [None; MAX_SHARDS],
            },
            nodes: [ShardNode::new(); NODES],
            budget: ShardBudget {
                campaigns: c.campaigns.saturating_add(3),
                crashes: c.crashes,
                restarts: c.restarts,
                moves: c.moves,
                wipes: c.wipes,
            },
            ghost: ShardGhost {
                max_term: [None; MAX_SHARDS],
                term_went_back: false,
                stray_write: false,
                events: 0,
            },
        };
        if c.start == ShardStart::Empty {
            return vec![empty];
        }
        // Three campaigns; node 0 takes every shard; the others have not
        // read the shards since.
        let mut steps = vec![
            ShardAction::Campaign(0),
            ShardAction::Campaign(1),
            ShardAction::Campaign(2),
        ];
        for shard in self.shards().filter_map(|k| u8::try_from(k).ok()) {
            steps.push(ShardAction::Take { node: 0, shard });
            steps.push(ShardAction::Send(0));
        }
        if c.start == ShardStart::Wiped {
            // Every node reads the shards; node 2 goes down (its floor in
            // its state file); then etcd is wiped.
            steps.extend([
                ShardAction::Observe(1),
                ShardAction::Observe(2),
                ShardAction::Crash {
                    node: 2,
                    guardian: false,
                },
                ShardAction::Wipe,
            ]);
        }
        let plain = ShardElection::new(ShardConfig {
            reduce: false,
            ..*c
        });
        steps
            .iter()
            .try_fold(empty, |s, &action| plain.next_state(&s, action))
            .map(|mut s| {
                canonical(self, &mut s);
                s
            })
            .into_iter()
            .collect()
    }

    fn actions(&self, s: &ShardState, actions: &mut Vec<ShardAction>) {
        let e = &s.etcd;
        let up = e.etcd.up();
        let protocol = self.protocol();
        actions.push(ShardAction::Tick);
        if up {
            for (id, lease) in e.etcd.live() {
                if lease.expires_in == 0 {
                    actions.push(ShardAction::Expire(id));
                }
            }
        }
        for (i, node) in s.nodes.iter().enumerate() {
            let Ok(n) = u8::try_from(i) else {
                continue;
            };
            if let Some(p) = &node.proc {
                self.live_actions(s, n, p, actions);
                continue;
            }
            if up && node.inflight.is_some() {
                actions.push(ShardAction::Land(n));
            }
            match node.guardian {
                Guardian::Releasing(None) if up => {
                    // Records to move: those still bound to one of the dead
                    // process's leases (the unsafe guardian: those its
                    // electd said it led).
                    let mut dead: Shards = 0;
                    for k in self.shards() {
                        let Some(r) = e.records[k] else {
                            continue;
                        };
                        let its = if protocol == ShardProtocol::GuardianMovesAnyRecord {
                            node.told_led & shard_bit(k) != 0
                        } else {
                            node.claims & bit(r.lease) != 0
                        };
                        if its {
                            dead |= shard_bit(k);
                        }
                    }
                    let before = actions.len();
                    for shards in self.batches(dead) {
                        for to in ShardElection::successors(&e.etcd, node.claims) {
                            actions.push(ShardAction::GuardianRead {
                                node: n,
                                shards,
                                to,
                            });
                        }
                    }
                    if actions.len() == before {
                        actions.push(ShardAction::GuardianRelease(n));
                    }
                }
                Guardian::Releasing(Some(_)) if up => actions.push(ShardAction::GuardianSend(n)),
                Guardian::Gone if s.budget.restarts > 0 => actions.push(ShardAction::Restart(n)),
                _ => {}
            }
        }
        if !up {
            return;
        }
        let caught_up = s.nodes.iter().all(|node| {
            node.proc
                .is_some_and(|p| p.request.is_none() && p.high == e.etcd.revision)
        });
        if s.budget.wipes > 0 && caught_up {
            actions.push(ShardAction::Wipe);
        }
        // The operator's way out of a wipe: writes until the revision
        // reaches the highest floor (the next record's term is above it).
        let floor = s
            .nodes
            .iter()
            .filter_map(|n| n.proc)
            .map(|p| p.floor)
            .max()
            .unwrap_or(0);
        if s.ghost.events & shard_event::WIPED != 0 && e.etcd.revision < floor {
            actions.push(ShardAction::Bump { to: floor });
        }
    }

    fn next_state(&self, last: &ShardState, action: ShardAction) -> Option<ShardState> {
        let mut s = *last;
        let ttl = self.config.ttl;
        match action {
            ShardAction::Tick => {
                let etcd = &mut s.etcd.etcd;
                etcd.down_for = etcd.down_for.saturating_sub(1);
                for lease in etcd.leases.iter_mut().flatten() {
                    lease.expires_in = lease.expires_in.saturating_sub(1);
                }
                for p in s.nodes.iter_mut().filter_map(|n| n.proc.as_mut()) {
                    if let Some(c) = p.claim.as_mut() {
                        c.deadline_in = c.deadline_in.saturating_sub(1);
                    }
                }
            }
            // Etcd's writes are the holder's own: nothing to check.
            ShardAction::Expire(id) => s.etcd.end_lease(id),
            ShardAction::Campaign(n) => {
                let n = usize::from(n);
                s.budget.campaigns = s.budget.campaigns.checked_sub(1)?;
                let lease = s.etcd.etcd.grant(s.owner(n), ttl)?;
                // The guardian hears of the lease before any key uses it.
                s.nodes[n].claims |= bit(lease);
                let create = s.etcd.etcd.put_candidate(lease, true)?;
                let revision = s.etcd.etcd.revision;
                let deadline_in = self.deadline();
                let p = s.nodes[n].proc.as_mut()?;
                self.answered(p, revision);
                p.claim = Some(Claim {
                    lease,
                    create,
                    deadline_in,
                });
            }
            ShardAction::Renew(n) => {
                let deadline = self.deadline();
                let p = s.nodes[usize::from(n)].proc.as_mut()?;
                let c = p.claim.as_mut()?;
                // A lease whose time is up is not renewed (etcd says not
                // found once it has expired it).
                if s.etcd
                    .etcd
                    .lease(c.lease)
                    .is_some_and(|l| l.expires_in == 0)
                {
                    return None;
                }
                if s.etcd.etcd.keep_alive(c.lease, ttl) {
                    c.deadline_in = c.deadline_in.max(deadline);
                } else {
                    p.claim = None;
                    p.tenure = [None; MAX_SHARDS];
                }
            }
            ShardAction::Observe(n) => self.observe(&mut s, usize::from(n)),
            ShardAction::Take { node, shard } => {
                let n = usize::from(node);
                self.observe(&mut s, n);
                let revision = s.etcd.etcd.revision;
                let absent = s.etcd.records[usize::from(shard)].is_none();
                let p = s.nodes[n].proc.as_mut()?;
                let c = p.claim?;
                // The record's revision would be the term: above the floor.
                if absent && revision >= p.floor {
                    p.request = Some(ShardRequest::Take {
                        shard,
                        lease: c.lease,
                        create: c.create,
                    });
                }
            }
            ShardAction::Send(n) => self.send(&mut s, usize::from(n)),
            ShardAction::Land(n) => {
                let n = usize::from(n);
                let dead = s.owner(n);
                let request = s.nodes[n].inflight.take()?;
                self.execute(&mut s, request, Writer::Process(dead));
            }
            ShardAction::Move { node, shards, to } => {
                s.budget.moves = s.budget.moves.checked_sub(1)?;
                let m = self.read_move(&s.etcd, shards, to)?;
                let p = s.nodes[usize::from(node)].proc.as_mut()?;
                if self.protocol() != ShardProtocol::MovesBeforeStopping {
                    // Stop leading (its work gone) first, then write.
                    for (k, tenure) in p.tenure.iter_mut().enumerate() {
                        if shards & shard_bit(k) != 0 {
                            *tenure = None;
                        }
                    }
                }
                p.request = Some(ShardRequest::Move(m));
            }
            ShardAction::Named { node, shard } => {
                let p = s.nodes[usize::from(node)].proc.as_mut()?;
                // No record of its own: no term yet.
                *p.tenure.get_mut(usize::from(shard))? = Some(0);
            }
            ShardAction::Crash { node, guardian } => {
                let n = usize::from(node);
                let p = s.nodes[n].proc.take()?;
                s.budget.crashes = s.budget.crashes.checked_sub(1)?;
                let node = &mut s.nodes[n];
                node.inflight = p.request;
                node.saved = (p.floor, p.high);
                if guardian {
                    node.guardian = Guardian::Releasing(None);
                } else {
                    // Nothing releases: the leases expire.
                    node.guardian = Guardian::Gone;
                    node.claims = 0;
                }
            }
            ShardAction::GuardianRead { node, shards, to } => {
                let m = self.read_move(&s.etcd, shards, to)?;
                s.nodes[usize::from(node)].guardian = Guardian::Releasing(Some(m));
            }
            ShardAction::GuardianSend(n) => {
                let n = usize::from(n);
                let Guardian::Releasing(Some(m)) = s.nodes[n].guardian else {
                    return None;
                };
                let writer = Writer::Guardian(s.owner(n));
                if self.execute(&mut s, ShardRequest::Move(m), writer) {
                    s.ghost.events |= shard_event::GUARDIAN_MOVED;
                }
                self.guardian_release(&mut s, n);
            }
            ShardAction::GuardianRelease(n) => self.guardian_release(&mut s, usize::from(n)),
            ShardAction::Restart(n) => {
                s.budget.restarts = s.budget.restarts.checked_sub(1)?;
                let node = &mut s.nodes[usize::from(n)];
                *node = ShardNode {
                    inc: node.inc + 1,
                    proc: Some(ShardProc::new(node.saved.0, node.saved.1)),
                    saved: node.saved,
                    ..ShardNode::new()
                };
            }
            ShardAction::Wipe => {
                s.budget.wipes = s.budget.wipes.checked_sub(1)?;
                s.etcd = ShardEtcd {
                    etcd: Etcd {
                        down_for: self.config.wipe_outage,
                        ..Etcd::new()
                    },
                    records: [None; MAX_SHARDS],
                };
                s.ghost.events |= shard_event::WIPED;
            }
            ShardAction::Bump { to } => s.etcd.etcd.revision = s.etcd.etcd.revision.max(to),
        }
        if self.spread(&s) {
            s.ghost.events |= shard_event::SPREAD;
        }
        canonical(self, &mut s);
        (s != *last).then_some(s)
    }

    fn within_boundary(&self, s: &ShardState) -> bool {
        // Renumbered after every step, revisions need no bound.
        let renumbered = self.config.reduce && !self.tracks_history();
        renumbered || s.etcd.etcd.revision <= self.config.max_revision
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let c = &self.config;
        let mut properties = vec![
            Property::always(ONE_LEADER_PER_SHARD, |m: &Self, s: &ShardState| {
                m.shards().all(|k| s.leaders(k) <= 1)
            }),
            Property::always(SHARD_TERMS_GROW, |_, s: &ShardState| {
                !s.ghost.term_went_back
            }),
            Property::always(SHARD_HOLDERS_WRITE, |_, s: &ShardState| {
                !s.ghost.stray_write
            }),
            Property::sometimes(
                "two nodes lead a shard each at once",
                |_, s: &ShardState| s.ghost.events & shard_event::SPREAD != 0,
            ),
        ];
        if c.moves > 0 {
            properties.push(Property::sometimes(
                "a node leads a shard moved to it",
                |_, s: &ShardState| happened(s, shard_event::LED_ON_A_MOVE),
            ));
            if c.shards > 1 {
                properties.push(Property::sometimes(
                    "one txn moves two shards",
                    |_, s: &ShardState| happened(s, shard_event::MOVED_TWO),
                ));
            }
        }
        // (A wiped start spends its crash before the check begins.)
        if c.crashes > 0 && c.start != ShardStart::Wiped {
            properties.push(Property::sometimes(
                "a guardian's move lands",
                |_, s: &ShardState| happened(s, shard_event::GUARDIAN_MOVED),
            ));
        }
        if c.wipes > 0 {
            properties.push(Property::sometimes(
                "a shard is led after a wipe",
                |_, s: &ShardState| happened(s, shard_event::LED_AFTER_WIPE),
            ));
        }
        properties
    }
}

impl ShardElection {
    /// What a live process of node `n` may do.
    fn live_actions(&self, s: &ShardState, n: u8, p: &ShardProc, actions: &mut Vec<ShardAction>) {
        let e = &s.etcd;
        if s.budget.crashes > 0 {
            for guardian in [true, false] {
                actions.push(ShardAction::Crash { node: n, guardian });
            }
        }
        if !e.etcd.up() {
            return;
        }
        if p.request.is_some() {
            actions.push(ShardAction::Send(n));
        } else {
            actions.push(ShardAction::Observe(n));
        }
        let Some(c) = p.claim else {
            if s.budget.campaigns > 0 && p.request.is_none() {
                actions.push(ShardAction::Campaign(n));
            }
            return;
        };
        actions.push(ShardAction::Renew(n));
        if p.request.is_some() {
            return;
        }
        let coordinator = self.protocol() == ShardProtocol::CoordinatorMoves;
        let mut movable: Shards = 0;
        for k in self.shards() {
            let shard = u8::try_from(k).unwrap_or(u8::MAX);
            match e.records[k] {
                None => actions.push(ShardAction::Take { node: n, shard }),
                Some(r) if r.lease == c.lease || coordinator => movable |= shard_bit(k),
                Some(_) => {}
            }
            let named = self.protocol() == ShardProtocol::BelievesWhenNamed;
            if named && p.tenure[k].is_none() && e.records[k].is_none_or(|r| r.lease != c.lease) {
                actions.push(ShardAction::Named { node: n, shard });
            }
        }
        if s.budget.moves > 0 {
            for shards in self.batches(movable) {
                for to in ShardElection::successors(&e.etcd, bit(c.lease)) {
                    actions.push(ShardAction::Move {
                        node: n,
                        shards,
                        to,
                    });
                }
            }
        }
    }

    /// Whether two nodes lead a shard each now.
    fn spread(&self, s: &ShardState) -> bool {
        let led: Vec<usize> = s
            .nodes
            .iter()
            .filter_map(|n| n.proc)
            .map(|p| self.shards().filter(|&k| p.believes(k)).count())
            .filter(|&count| count > 0)
            .collect();
        led.len() > 1
    }
}

/// Whether `event` happened on the way to `s`.
fn happened(s: &ShardState, event: u8) -> bool {
    s.ghost.events & event != 0
}

/// Safety: never two nodes believe they lead one shard at once.
pub const ONE_LEADER_PER_SHARD: &str = "never two leaders of one shard at once";
/// Safety: each shard's new leadership's term is above its earlier ones
/// (a process resuming its own aside), across wipes by the floor.
pub const SHARD_TERMS_GROW: &str = "each shard's terms only grow";
/// Safety: only a shard's holder, its holder's guardian, or a node taking
/// it while absent writes its record (etcd's expiry aside).
pub const SHARD_HOLDERS_WRITE: &str = "only a shard's holder writes its record";
/// The shards' safety properties.
pub const SHARD_SAFETY: [&str; 3] = [ONE_LEADER_PER_SHARD, SHARD_TERMS_GROW, SHARD_HOLDERS_WRITE];

impl ShardConfig {
    /// For an unsafe protocol: the configuration that catches it (without
    /// reductions, so that its trace keeps every name and revision) and the
    /// properties it breaks there.
    pub fn caught(protocol: ShardProtocol) -> Option<(ShardConfig, &'static [&'static str])> {
        let plain = ShardConfig {
            reduce: false,
            ..ShardConfig::ci(protocol)
        };
        let breaks: &'static [&'static str] = match protocol {
            ShardProtocol::Placed => return None,
            ShardProtocol::CoordinatorMoves
            | ShardProtocol::MovesWithoutVersion
            | ShardProtocol::GuardianMovesAnyRecord => &[ONE_LEADER_PER_SHARD, SHARD_HOLDERS_WRITE],
            ShardProtocol::MovesBeforeStopping | ShardProtocol::BelievesWhenNamed => {
                &[ONE_LEADER_PER_SHARD]
            }
        };
        Some((plain, breaks))
    }
}

impl crate::check::Checked for ShardElection {
    fn safety(&self) -> &'static [&'static str] {
        &SHARD_SAFETY
    }

    fn label(&self) -> String {
        format!("{:?} ({} shards)", self.config.protocol, self.config.shards)
    }
}
