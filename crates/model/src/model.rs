//! The election as a stateright [`Model`]: every step any party can take,
//! in any order, and the properties that must hold in every state reached.
//!
//! Time is discrete and relative: every timer (a lease's expiry, a claim's
//! deadline, etcd's outage) counts down on [`Action::Tick`], so a state
//! says how long each has left, not what time it is, and the check covers
//! schedules of any length. No step is ever forced: any party may stall for
//! any number of ticks, which is how a paused process (SIGSTOP, a long GC),
//! a slow network or a partition looks from outside.

use stateright::{Model, Property};

use crate::config::{Config, Start};
use crate::etcd::{Etcd, Key, LeaseId, Owner, Rev, bit};
use crate::protocol::{Election, Writer, hand_over};
use crate::reduce::canonical;
use crate::state::{
    Budget, Claim, Ghost, Guardian, NODES, Node, Plan, Proc, Request, State, event,
};

/// One step of one party.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Time passes.
    Tick,
    /// etcd expires a lease whose time is up, with all its keys.
    Expire(LeaseId),
    /// A process grants itself a lease (telling its guardian first) and
    /// queues its candidate key with it.
    Campaign(u8),
    /// A process's keep-alive, sent and answered now.
    Renew(u8),
    /// A process reads the election (its watch catches up), decides whether
    /// it leads, and takes the step whose turn it is by sending its txn.
    Observe(u8),
    /// A process's request lands, and the process reads the answer.
    Send(u8),
    /// A dead process's request lands.
    Land(u8),
    /// A process gives up its claim (resign, shutdown, drain or unhealthy
    /// step-down); a leader of a one-write protocol hands the record to
    /// `to` in the same txn.
    Leave {
        /// The node.
        node: u8,
        /// The successor's lease (one-write only).
        to: Option<LeaseId>,
    },
    /// A leader hands over to the candidate with lease `to` (`?to=`).
    Transfer {
        /// The node.
        node: u8,
        /// The target's lease.
        to: LeaseId,
    },
    /// A former leader withdraws the transfer it put, if unchanged.
    Withdraw(u8),
    /// A follower's health or drain verdict changes: its candidacy is
    /// rewritten in place.
    Verdict(u8),
    /// electd is killed; its guardian survives, or dies with it.
    Crash {
        /// The node.
        node: u8,
        /// Whether the guardian survives.
        guardian: bool,
    },
    /// A guardian reads the election to hand its dead process's record to
    /// the candidate with lease `to` (one-write protocols).
    GuardianRead {
        /// The node.
        node: u8,
        /// The successor's lease.
        to: LeaseId,
    },
    /// A guardian's hand-over txn lands; then it revokes the dead
    /// process's leases and exits.
    GuardianSend(u8),
    /// A guardian revokes the dead process's leases and exits.
    GuardianRelease(u8),
    /// A node whose processes are gone starts again.
    Restart(u8),
    /// etcd's data is wiped: every member stopped, emptied, started afresh.
    Wipe,
    /// Someone writes elsewhere in etcd until its revision reaches `to`:
    /// how an operator gets a wiped etcd past the old history.
    Bump {
        /// The revision reached.
        to: Rev,
    },
    /// An operator deletes the leader record by hand.
    HandDelete,
    /// The old-rule party (`etcdctl elect`) queues its key.
    OldRuleJoin,
    /// The old-rule party keeps its lease alive.
    OldRuleRenew,
    /// The old-rule party sees whether its key is the oldest.
    OldRuleObserve,
}

impl Model for Election {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let c = &self.config;
        let empty = State {
            etcd: Etcd::new(),
            nodes: [Node::new(); NODES],
            old_rule_leads: false,
            budget: Budget {
                crashes: c.crashes,
                restarts: c.restarts,
                verdicts: c.verdicts,
                transfers: c.transfers,
                hand_deletes: c.hand_deletes,
                wipes: c.wipes,
                old_rule_joins: u8::from(c.old_rule_party),
                campaigns: c.campaigns.saturating_add(match c.start {
                    Start::Empty => 0,
                    Start::Settled | Start::Wiped => 3,
                }),
            },
            ghost: Ghost {
                max_term: None,
                term_went_back: false,
                stray_write: false,
                stray_entry: false,
                events: 0,
            },
        };
        match c.start {
            Start::Empty => vec![empty],
            Start::Settled | Start::Wiped => {
                // Three campaigns; the first lays the anchor and takes the
                // record; the others have not read the election since.
                let settled = [
                    Action::Campaign(0),
                    Action::Campaign(1),
                    Action::Campaign(2),
                    Action::Observe(0),
                    Action::Send(0),
                    Action::Send(0),
                ];
                // Every node reads the record; node 2 goes down (its floor
                // in its state file); then etcd is wiped.
                let wiped = [
                    Action::Observe(1),
                    Action::Observe(2),
                    Action::Crash {
                        node: 2,
                        guardian: false,
                    },
                    Action::Wipe,
                ];
                let steps = match c.start {
                    Start::Wiped => &[&settled[..], &wiped[..]].concat(),
                    _ => &settled[..],
                };
                let plain = Election::new(Config {
                    reduce: false,
                    ..*c
                });
                let settled = steps
                    .iter()
                    .try_fold(empty, |s, &action| plain.next_state(&s, action));
                settled
                    .map(|mut s| {
                        canonical(&self.config, &mut s);
                        s
                    })
                    .into_iter()
                    .collect()
            }
        }
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        let etcd = &s.etcd;
        let up = etcd.up();
        let protocol = self.protocol();
        actions.push(Action::Tick);
        if up {
            for (id, lease) in etcd.live() {
                if lease.expires_in == 0 {
                    actions.push(Action::Expire(id));
                }
            }
        }
        for (i, node) in s.nodes.iter().enumerate() {
            let Ok(n) = u8::try_from(i) else {
                continue;
            };
            if let Some(p) = &node.proc {
                if up && p.claim.is_none() && p.request.is_none() && s.budget.campaigns > 0 {
                    actions.push(Action::Campaign(n));
                }
                if up && p.claim.is_some() {
                    actions.push(Action::Renew(n));
                }
                if up && p.request.is_none() {
                    actions.push(Action::Observe(n));
                }
                if up && p.request.is_some() {
                    actions.push(Action::Send(n));
                }
                if let Some(c) = p.claim
                    && p.request.is_none()
                    && p.tenure.is_some()
                {
                    // A leader steps down (a follower leaving is a crash
                    // whose guardian releases: the same to etcd). In a
                    // one-write protocol it hands the record to an eligible
                    // successor when there is one (and the anchor), else
                    // it releases as today.
                    let holds = etcd.record.is_some_and(|r| r.lease == c.lease);
                    let before = actions.len();
                    if protocol.one_write() && holds && self.may_hand_over(etcd) {
                        for to in self.successors(etcd, bit(c.lease)) {
                            actions.push(Action::Leave {
                                node: n,
                                to: Some(to),
                            });
                        }
                    }
                    if actions.len() == before {
                        actions.push(Action::Leave { node: n, to: None });
                    }
                    if s.budget.transfers > 0 && p.believes() && holds && etcd.anchored().is_some()
                    {
                        for to in self.successors(etcd, bit(c.lease)) {
                            actions.push(Action::Transfer { node: n, to });
                        }
                    }
                }
                if up && p.transfer.is_some() && p.request.is_none() {
                    actions.push(Action::Withdraw(n));
                }
                if up && s.budget.verdicts > 0 && p.tenure.is_none() && p.request.is_none() {
                    actions.push(Action::Verdict(n));
                }
                if s.budget.crashes > 0 {
                    actions.push(Action::Crash {
                        node: n,
                        guardian: true,
                    });
                    actions.push(Action::Crash {
                        node: n,
                        guardian: false,
                    });
                }
            } else {
                if up && node.inflight.is_some() {
                    actions.push(Action::Land(n));
                }
                match node.guardian {
                    Guardian::Releasing(None) if up => {
                        // One-write: a record bound to one of the dead
                        // process's leases goes to a successor, if any.
                        let before = actions.len();
                        if protocol.one_write()
                            && let Some(record) = etcd.record
                            && if protocol.guardian_checks_its_record() {
                                node.claims & bit(record.lease) != 0
                            } else {
                                node.told_led
                            }
                            && self.may_hand_over(etcd)
                        {
                            for to in self.successors(etcd, node.claims) {
                                actions.push(Action::GuardianRead { node: n, to });
                            }
                        }
                        if actions.len() == before {
                            actions.push(Action::GuardianRelease(n));
                        }
                    }
                    Guardian::Releasing(Some(_)) => {
                        if up {
                            actions.push(Action::GuardianSend(n));
                        }
                    }
                    Guardian::Gone => {
                        if s.budget.restarts > 0 {
                            actions.push(Action::Restart(n));
                        }
                    }
                    Guardian::Watching | Guardian::Releasing(None) => {}
                }
            }
        }
        if up {
            let all_caught_up = s.nodes.iter().all(|node| {
                node.proc.is_some_and(|p| {
                    p.request.is_none()
                        && p.high == etcd.revision
                        && etcd.record.is_none_or(|r| p.floor >= self.term(r))
                })
            });
            if s.budget.wipes > 0 && all_caught_up {
                actions.push(Action::Wipe);
            }
            // The operator's way out of a wipe: writes until etcd's
            // revision reaches the highest floor of a process held back by
            // it (its next record's term then is above it), or one short
            // (that term would be the floor itself).
            let floor = s
                .nodes
                .iter()
                .filter_map(|n| n.proc)
                .filter(|p| p.claim.is_some())
                .map(|p| p.floor)
                .max()
                .unwrap_or(0);
            if s.ghost.events & event::WIPED != 0
                && etcd.record.is_none()
                && etcd.revision.saturating_add(1) < floor
            {
                actions.push(Action::Bump { to: floor - 1 });
                actions.push(Action::Bump { to: floor });
            }
            if s.budget.hand_deletes > 0 && etcd.record.is_some() {
                actions.push(Action::HandDelete);
            }
            if s.budget.old_rule_joins > 0 {
                actions.push(Action::OldRuleJoin);
            }
            if etcd.old_rule.is_some() {
                actions.push(Action::OldRuleRenew);
                actions.push(Action::OldRuleObserve);
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = *last;
        let ttl = self.config.ttl;
        match action {
            Action::Tick => {
                let etcd = &mut s.etcd;
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
            Action::Expire(id) => {
                let before = s.etcd;
                s.etcd.end_lease(id);
                let after = s.etcd;
                Election::wrote_record(&mut s.ghost, &before, &after, Writer::Etcd);
            }
            Action::Campaign(n) => {
                let n = usize::from(n);
                s.budget.campaigns = s.budget.campaigns.saturating_sub(1);
                let me = s.owner(n);
                let eligible = s.nodes[n].proc.map(|p| p.eligible)?;
                let lease = s.etcd.grant(me, ttl)?;
                // The guardian hears of the lease before any key uses it.
                s.nodes[n].claims |= bit(lease);
                let create = s.etcd.put_candidate(lease, eligible)?;
                let revision = s.etcd.revision;
                let deadline = self.deadline();
                let p = s.nodes[n].proc.as_mut()?;
                self.answered(p, revision);
                p.claim = Some(Claim {
                    lease,
                    create,
                    deadline_in: deadline,
                });
                p.led = false;
            }
            Action::Renew(n) => {
                let deadline = self.deadline();
                let p = s.nodes[usize::from(n)].proc.as_mut()?;
                let c = p.claim.as_mut()?;
                // A lease whose time is up cannot be renewed (etcd waits
                // for its revoke, then says not found): the step is left
                // out, and the claim is lost when the process sees its key
                // gone.
                if s.etcd.lease(c.lease).is_some_and(|l| l.expires_in == 0) {
                    return None;
                }
                if s.etcd.keep_alive(c.lease, ttl) {
                    c.deadline_in = c.deadline_in.max(deadline);
                } else {
                    // etcd says the lease is gone: the claim is lost.
                    p.claim = None;
                    p.led = false;
                    p.tenure = None;
                }
            }
            Action::Observe(n) => self.settle(&mut s, usize::from(n), true),
            Action::Send(n) => self.send(&mut s, usize::from(n)),
            Action::Land(n) => {
                let n = usize::from(n);
                let dead = s.owner(n);
                let request = s.nodes[n].inflight.take()?;
                self.execute(&mut s, request, Writer::Process(dead));
            }
            Action::Leave { node, to } => {
                let record = s.etcd.record;
                let anchor = s.etcd.anchor;
                let to_modr = to.and_then(|to| s.etcd.candidate(to)).map(|k| k.modr);
                let p = s.nodes[usize::from(node)].proc.as_mut()?;
                let c = p.claim?;
                if p.tenure.is_some() {
                    s.ghost.events |= event::STEPPED_DOWN;
                }
                // Stop calling ourselves leader first, then write.
                p.tenure = None;
                p.claim = None;
                p.led = false;
                p.request = Some(match (to, to_modr, record) {
                    (Some(to), Some(to_modr), Some(record)) => Request::HandOver {
                        from: c.lease,
                        record: record.modr,
                        to,
                        to_modr,
                        anchor,
                    },
                    _ => Request::Revoke { lease: c.lease },
                });
            }
            Action::Transfer { node, to } => {
                let to_create = s.etcd.candidate(to)?.create;
                let p = s.nodes[usize::from(node)].proc.as_mut()?;
                let c = p.claim?;
                s.budget.transfers -= 1;
                s.ghost.events |= event::STEPPED_DOWN;
                p.tenure = None;
                p.claim = None;
                p.led = false;
                p.request = Some(Request::PutTransfer {
                    from: c.lease,
                    to,
                    to_create,
                });
            }
            Action::Withdraw(n) => {
                let p = s.nodes[usize::from(n)].proc.as_mut()?;
                let modr = p.transfer.take()?;
                if s.etcd.transfer.is_some_and(|t| t.modr == modr) {
                    s.etcd.transfer = None;
                    s.etcd.write();
                }
            }
            Action::Verdict(n) => {
                let p = s.nodes[usize::from(n)].proc.as_mut()?;
                s.budget.verdicts -= 1;
                p.eligible = !p.eligible;
                if let Some(c) = p.claim {
                    s.etcd.rewrite_candidate(c.lease, c.create, p.eligible);
                }
            }
            Action::Crash { node, guardian } => {
                let n = usize::from(node);
                let p = s.nodes[n].proc.take()?;
                s.budget.crashes -= 1;
                if p.believes() {
                    s.ghost.events |= event::LEADER_CRASHED;
                }
                let node = &mut s.nodes[n];
                node.inflight = p.request;
                node.saved_floor = p.floor;
                node.saved_high = p.high;
                if guardian {
                    node.guardian = Guardian::Releasing(None);
                } else {
                    // The guardian died too (or first, taking electd with
                    // it): nothing releases; the leases expire.
                    node.guardian = Guardian::Gone;
                    node.claims = 0;
                }
            }
            Action::GuardianRead { node, to } => {
                let n = usize::from(node);
                let record = s.etcd.record?;
                let to_modr = s.etcd.candidate(to)?.modr;
                s.nodes[n].guardian = Guardian::Releasing(Some(Plan {
                    record,
                    to,
                    to_modr,
                    anchor: s.etcd.anchor,
                }));
            }
            Action::GuardianSend(n) => {
                let n = usize::from(n);
                let Guardian::Releasing(Some(plan)) = s.nodes[n].guardian else {
                    return None;
                };
                let dead = s.owner(n);
                let claims = s.nodes[n].claims;
                let before = s.etcd;
                let handed = hand_over(&mut s.etcd, self.protocol(), &plan, claims);
                let after = s.etcd;
                let writer = Writer::Guardian(dead);
                Election::wrote_record(&mut s.ghost, &before, &after, writer);
                // The leadership it read: its electd's when bound to one of
                // the leases it was told of.
                let holder = if claims & bit(plan.record.lease) != 0 {
                    Some(dead)
                } else {
                    before.owner(plan.record.lease)
                };
                if handed.is_some() {
                    // Its entry rides in the hand-over.
                    Election::wrote_entry(&mut s.ghost, plan.record, holder, &after, writer);
                }
                Election::guardian_release(&mut s, n);
                if handed.is_none() && holder == Some(dead) {
                    // Not handed on: `released`, after the revokes, where
                    // no entry stands.
                    let after = s.etcd;
                    Election::wrote_entry(&mut s.ghost, plan.record, holder, &after, writer);
                }
            }
            Action::GuardianRelease(n) => Election::guardian_release(&mut s, usize::from(n)),
            Action::Restart(n) => {
                let node = &mut s.nodes[usize::from(n)];
                s.budget.restarts -= 1;
                node.inc += 1;
                node.proc = Some(Proc::new(node.saved_floor, node.saved_high));
                node.guardian = Guardian::Watching;
                node.claims = 0;
                node.inflight = None;
                node.told_led = false;
            }
            Action::Wipe => {
                s.budget.wipes -= 1;
                s.etcd = Etcd {
                    down_for: self.config.wipe_outage,
                    ..Etcd::new()
                };
                s.old_rule_leads = false;
                s.ghost.events |= event::WIPED;
            }
            Action::Bump { to } => {
                s.etcd.revision = s.etcd.revision.max(to);
            }
            Action::HandDelete => {
                s.budget.hand_deletes -= 1;
                s.etcd.record = None;
                s.etcd.write();
            }
            Action::OldRuleJoin => {
                s.budget.old_rule_joins -= 1;
                let lease = s.etcd.grant(Owner::OldRule, ttl)?;
                let revision = s.etcd.write();
                s.etcd.old_rule = Some(Key {
                    lease,
                    create: revision,
                    modr: revision,
                });
            }
            Action::OldRuleRenew => {
                let old = s.etcd.old_rule?;
                if s.etcd.lease(old.lease)?.expires_in > 0 {
                    s.etcd.keep_alive(old.lease, ttl);
                }
            }
            Action::OldRuleObserve => {
                if s.etcd.old_rule_first() {
                    s.old_rule_leads = true;
                    s.ghost.events |= event::OLD_RULE_LED;
                }
            }
        }
        canonical(&self.config, &mut s);
        (s != *last).then_some(s)
    }

    fn within_boundary(&self, s: &State) -> bool {
        // Renumbered after every step, revisions need no bound.
        let renumbered = self.config.reduce && !self.config.tracks_history();
        renumbered || s.etcd.revision <= self.config.max_revision
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let c = &self.config;
        let mut properties = vec![
            Property::always(ONE_LEADER, |_, s: &State| s.leaders() <= 1),
            Property::always(TERMS_GROW, |_, s: &State| !s.ghost.term_went_back),
            Property::always(HOLDERS_WRITE, |_, s: &State| !s.ghost.stray_write),
            Property::always(HOLDERS_RECORD, |_, s: &State| !s.ghost.stray_entry),
            Property::sometimes("someone leads", |_, s: &State| s.leaders() > 0),
            Property::sometimes("a hand-over completes", |_, s: &State| {
                s.ghost.events & event::HANDED_OVER != 0
            }),
        ];
        // (A wiped start spends its crash before the check begins.)
        let wiped = c.start == Start::Wiped;
        if c.crashes > 0 && !wiped {
            properties.push(Property::sometimes(
                "a crash is followed by a new leader",
                |_, s: &State| s.ghost.events & event::LED_AFTER_CRASH != 0,
            ));
        }
        if c.transfers > 0 {
            properties.push(Property::sometimes(
                "a named hand-over completes",
                |_, s: &State| s.ghost.events & event::TRANSFERRED != 0,
            ));
        }
        if c.protocol.one_write() {
            properties.push(Property::sometimes(
                "a successor leads on a record handed over in one write",
                |_, s: &State| s.ghost.events & event::LED_ON_ONE_WRITE != 0,
            ));
        }
        if c.wipes > 0 {
            properties.push(Property::sometimes(
                "a wipe is followed by a new leader",
                |_, s: &State| s.ghost.events & event::LED_AFTER_WIPE != 0,
            ));
        }
        if c.old_rule_party {
            properties.push(Property::sometimes(
                "the old-rule party leads",
                |_, s: &State| s.ghost.events & event::OLD_RULE_LED != 0,
            ));
        }
        properties
    }
}

/// Safety: never two parties believe they lead at once.
pub const ONE_LEADER: &str = "never two leaders at once";
/// Safety: each new leadership's term is above every earlier one's (a
/// process resuming its own term aside).
pub const TERMS_GROW: &str = "terms only grow";
/// Safety: only the record's holder, its holder's guardian, or a candidate
/// taking an absent record writes the record (etcd's expiry aside).
pub const HOLDERS_WRITE: &str = "only holders write the record";
/// Safety of the history: a leadership's entry that rides in a hand-over
/// (the one write, or a dead electd's guardian's), or that a guardian
/// writes after its revokes, is written by that leadership's holder or its
/// holder's guardian, and only once the leadership is over. (No
/// leadership transaction compares a history key, so entries are not
/// state the other properties depend on; the entries a successor writes
/// are not modelled.)
pub const HOLDERS_RECORD: &str =
    "only a leadership's holder or its guardian writes its entry, once it ended";
/// The safety properties.
pub const SAFETY: [&str; 4] = [ONE_LEADER, TERMS_GROW, HOLDERS_WRITE, HOLDERS_RECORD];
