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

use crate::config::{Config, Protocol, Start};
use crate::etcd::{Etcd, Key, LeaseId, MAX_LEASES, Owner, Rev, bit, remap, remap_set};
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

/// Who wrote the record, for the property that only its holder, its
/// holder's guardian, or a candidate taking it while absent does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Writer {
    /// A process (alive, or dead with its request landing).
    Process(Owner),
    /// The guardian of this dead process.
    Guardian(Owner),
    /// etcd, expiring a lease.
    Etcd,
}

/// The v3 election protocol as a model, for one [`Config`].
#[derive(Clone, Copy, Debug)]
pub struct Election {
    /// What is checked.
    pub config: Config,
}

impl Election {
    /// The model of `config`.
    pub fn new(config: Config) -> Election {
        Election { config }
    }

    fn protocol(&self) -> Protocol {
        self.config.protocol
    }

    /// The term a record gives its holder.
    pub fn term(&self, record: Key) -> Rev {
        if self.protocol().term_is_mod_revision() {
            record.modr
        } else {
            record.create
        }
    }

    fn deadline(&self) -> u8 {
        self.config.ttl.saturating_sub(self.config.margin)
    }

    /// Notes a linearizable answer at `revision`: one below the highest
    /// revision seen means etcd lost history (`history.rs`): the floor
    /// rises past it and no tenure lasts until the revision passes it.
    fn answered(&self, p: &mut Proc, revision: Rev) {
        if !self.config.tracks_history() {
            return;
        }
        if revision < p.high {
            p.floor = p.floor.max(p.high.saturating_add(1));
            p.high = revision;
            p.regressed = true;
            p.tenure = None;
        } else {
            p.high = p.high.max(revision);
        }
    }

    /// A leadership begins: checks that terms only grow, and notes events.
    fn begin(&self, ghost: &mut Ghost, who: Owner, term: Rev, record: Key) {
        let earlier = ghost.max_term;
        if let Some((max, holder)) = earlier
            && (term < max || (term == max && holder != who))
        {
            ghost.term_went_back = true;
        }
        if earlier.is_none_or(|(max, _)| term > max) {
            ghost.max_term = Some((term, who));
        }
        let successor = earlier.is_some_and(|(_, holder)| holder != who);
        let events = ghost.events;
        let mut add = |when: u16, then: u16| {
            if successor && events & when != 0 {
                ghost.events |= then;
            }
        };
        add(event::STEPPED_DOWN, event::HANDED_OVER);
        add(event::LEADER_CRASHED, event::LED_AFTER_CRASH);
        add(event::TRANSFER_TAKEN, event::TRANSFERRED);
        add(event::WIPED, event::LED_AFTER_WIPE);
        if record.create != record.modr {
            ghost.events |= event::LED_ON_ONE_WRITE;
        }
    }

    /// Checks a change of the record made by `writer`.
    fn wrote_record(ghost: &mut Ghost, before: &Etcd, after: &Etcd, writer: Writer) {
        if before.record == after.record {
            return;
        }
        let legitimate = match before.record {
            // Taking an absent record: bound to the taker's own lease.
            None => after
                .record
                .and_then(|k| after.owner(k.lease))
                .is_some_and(|holder| writer == Writer::Process(holder)),
            Some(old) => match before.owner(old.lease) {
                Some(holder) => {
                    writer == Writer::Process(holder)
                        || writer == Writer::Guardian(holder)
                        || writer == Writer::Etcd
                }
                None => true,
            },
        };
        if !legitimate {
            ghost.stray_write = true;
        }
    }

    /// A process reads the election and acts on it (`follow.rs`'s
    /// `settle`, and the state machine's `reconcile` after it): notes who
    /// leads, raises its floor, notices a claim lost, begins or ends its
    /// tenure, releases a record it may not lead with, and, with `act`,
    /// sends the txn of the step whose turn it is.
    fn settle(&self, s: &mut State, n: usize, act: bool) {
        let etcd = s.etcd;
        let me = s.owner(n);
        let protocol = self.protocol();
        let Some(p) = s.nodes[n].proc.as_mut() else {
            return;
        };
        self.answered(p, etcd.revision);
        // Who leads, as `layout::assess` reads the keys: an old-rule key
        // that is the oldest (the record aside), else the record.
        let old_rule_leads = etcd.old_rule_oldest();
        let leading = if old_rule_leads {
            etcd.old_rule
        } else {
            etcd.record
        };
        if let Some(key) = leading {
            p.seen |= bit(key.lease);
            // Another's term raises the floor.
            let term = if old_rule_leads {
                key.create
            } else {
                self.term(key)
            };
            if etcd.owner(key.lease) != Some(me) {
                p.floor = p.floor.max(term);
            }
        }
        if p.regressed && etcd.revision.saturating_add(1) >= p.floor {
            p.regressed = false;
        }
        // The record leads for our claim: bound to its lease (with our
        // nonce); today only if no old-rule key is read as leading first.
        let leads = etcd
            .record
            .filter(|r| p.claim.is_some_and(|c| c.lease == r.lease))
            .filter(|_| !(protocol.old_rule_first() && old_rule_leads));
        if let Some(c) = p.claim {
            let queued = etcd
                .candidate(c.lease)
                .is_some_and(|k| k.create == c.create);
            if leads.is_some() {
                p.led = true;
            } else if p.led || !queued {
                // The record we led with is gone, or our key is: the claim
                // is over (its lease is left to expire, not revoked).
                p.claim = None;
                p.led = false;
            }
        }
        let want = leads
            .filter(|_| p.claim.is_some())
            .filter(|&r| p.may_lead_with(self.term(r)) && !p.regressed);
        match want {
            Some(record) if p.tenure != Some(self.term(record)) => {
                let term = self.term(record);
                p.floor = p.floor.max(term);
                p.last_term = Some(term);
                p.tenure = Some(term);
                self.begin(&mut s.ghost, me, term, record);
                if !protocol.guardian_checks_its_record() {
                    // What the unsafe guardian goes by: told its electd led.
                    s.nodes[n].told_led = true;
                }
            }
            Some(_) => {}
            None => p.tenure = None,
        }
        let Some(p) = s.nodes[n].proc.as_mut() else {
            return;
        };
        if p.request.is_some() {
            return;
        }
        // A record of ours that we may not lead with (below the floor, or
        // we are ineligible): released at once (`release_stale_claim`).
        if let (Some(record), Some(c)) = (leads, p.claim)
            && p.tenure.is_none()
            && !p.may_lead_with(self.term(record))
        {
            p.claim = None;
            p.led = false;
            p.request = Some(Request::Revoke { lease: c.lease });
            return;
        }
        // A record handed to a lease of ours we no longer campaign with
        // (our claim given up, its revoke on its way or lost) leads nobody:
        // no claim, no tenure; it goes with the lease. (A node shutting
        // down is a crash whose guardian releases, handing on a record
        // bound to its leases: `GuardianRead`.)
        if !act {
            return;
        }
        let Some(c) = p.claim else {
            return;
        };
        let Some(key) = etcd.candidate(c.lease).filter(|k| k.create == c.create) else {
            return;
        };
        // A transfer to us while we may not lead: declined.
        if let Some(transfer) = etcd.transfer
            && transfer.lease == c.lease
            && !key.eligible
        {
            p.request = Some(Request::Decline {
                modr: transfer.modr,
            });
            return;
        }
        let take = |anchor, transfer| Request::TakeRecord {
            lease: c.lease,
            create: c.create,
            anchor,
            transfer,
        };
        // Whose turn it is (`layout::assess`): with priorities, any eligible
        // candidate may find itself first in line (`first_in_line`).
        let step = if old_rule_leads {
            None
        } else if let Some(anchor) = etcd.anchored() {
            match (etcd.record, etcd.transfer) {
                (Some(_), _) => None,
                (None, Some(t)) if t.lease == c.lease => Some(take(Some(anchor), Some(t.modr))),
                // Another's transfer (or one not bound to a queued candidate).
                (None, Some(_)) => None,
                (None, None) => (key.eligible && self.first_in_line(&etcd, c.lease))
                    .then(|| take(Some(anchor), None)),
            }
        } else {
            match etcd.record {
                // The leader lays the anchor once no old-rule key is left.
                Some(r) => {
                    (etcd.old_rule.is_none() && r.lease == c.lease).then_some(Request::LayAnchor)
                }
                None if etcd.old_rule.is_none() => (key.eligible
                    && self.first_in_line(&etcd, c.lease))
                .then_some(Request::LayAnchor),
                // The old rule: only the candidate whose key is the oldest.
                None => (key.eligible && etcd.candidate_oldest(c.lease)).then(|| take(None, None)),
            }
        };
        let Some(step) = step else {
            return;
        };
        // The record's revision would be the term: never at or below the floor.
        if matches!(step, Request::TakeRecord { .. }) && etcd.revision.saturating_add(1) < p.floor {
            return;
        }
        // Every lease seen leading (but our own) must be gone first.
        let waiting = (1..=MAX_LEASES)
            .filter_map(|id| u8::try_from(id).ok())
            .any(|id| p.seen & bit(id) != 0 && etcd.owner(id).is_some_and(|o| o != me));
        if !waiting {
            p.request = Some(step);
        }
    }

    /// Runs `request` against etcd as `writer`'s txn; the revision of its
    /// write when it succeeded.
    fn execute(&self, s: &mut State, request: Request, writer: Writer) -> Option<Rev> {
        let before = s.etcd;
        let protocol = self.protocol();
        let etcd = &mut s.etcd;
        let written = match request {
            Request::TakeRecord {
                lease,
                create,
                anchor,
                transfer,
            } => {
                let guards = etcd.record.is_none()
                    && etcd.candidate(lease).is_some_and(|k| k.create == create)
                    && match anchor {
                        Some(anchor) => etcd.anchor == Some(anchor),
                        None => etcd.none_older_than(create),
                    }
                    && match transfer {
                        Some(modr) => etcd.transfer.is_some_and(|t| t.modr == modr),
                        None => etcd.transfer.is_none(),
                    };
                guards.then(|| {
                    let revision = etcd.write();
                    etcd.record = Some(Key {
                        lease,
                        create: revision,
                        modr: revision,
                    });
                    if etcd.transfer.take().is_some() {
                        s.ghost.events |= event::TRANSFER_TAKEN;
                    }
                    revision
                })
            }
            Request::LayAnchor => (etcd.old_rule.is_none() && etcd.anchor.is_none()).then(|| {
                let revision = etcd.write();
                etcd.anchor = Some(revision);
                revision
            }),
            Request::Decline { modr } => etcd.transfer.is_some_and(|t| t.modr == modr).then(|| {
                etcd.transfer = None;
                etcd.write()
            }),
            Request::Revoke { lease } => {
                etcd.end_lease(lease);
                None
            }
            Request::HandOver {
                from,
                record,
                to,
                to_modr,
                anchor,
            } => {
                let plan = Plan {
                    record: Key {
                        lease: from,
                        create: 0,
                        modr: record,
                    },
                    to,
                    to_modr,
                    anchor,
                };
                hand_over(etcd, protocol, &plan, bit(from))
            }
            Request::PutTransfer {
                from,
                to,
                to_create,
            } => {
                let guards = etcd.record.is_some_and(|r| r.lease == from)
                    && etcd.transfer.is_none()
                    && etcd.candidate(to).is_some_and(|k| k.create == to_create);
                let put = guards.then(|| {
                    let revision = etcd.write();
                    etcd.transfer = Some(Key {
                        lease: to,
                        create: revision,
                        modr: revision,
                    });
                    revision
                });
                // Revoked whether or not the put succeeded.
                etcd.end_lease(from);
                put
            }
        };
        let after = s.etcd;
        Election::wrote_record(&mut s.ghost, &before, &after, writer);
        written
    }

    /// A live process's request lands and the process reads the answer.
    fn send(&self, s: &mut State, n: usize) {
        let me = s.owner(n);
        let Some(request) = s.nodes[n].proc.as_mut().and_then(|p| p.request.take()) else {
            return;
        };
        let written = self.execute(s, request, Writer::Process(me));
        let revision = s.etcd.revision;
        let Some(p) = s.nodes[n].proc.as_mut() else {
            return;
        };
        match request {
            Request::TakeRecord { .. } | Request::LayAnchor | Request::Decline { .. } => {
                self.answered(p, revision);
                if written.is_some() {
                    // The follow task applies its own write and settles again.
                    self.settle(s, n, true);
                }
            }
            Request::HandOver { from, .. } => {
                self.answered(p, revision);
                // The revoke comes after, off the successor's path, whatever
                // the answer (a failed compare: today's path).
                p.request = Some(Request::Revoke { lease: from });
            }
            Request::PutTransfer { .. } => {
                self.answered(p, revision);
                p.transfer = written;
            }
            Request::Revoke { .. } => {}
        }
    }

    /// Revokes every lease the guardian of node `n` was told of, newest
    /// first, and lets the guardian exit.
    fn guardian_release(s: &mut State, n: usize) {
        let dead = s.owner(n);
        let claims = s.nodes[n].claims;
        for id in (1..=MAX_LEASES)
            .rev()
            .filter_map(|id| u8::try_from(id).ok())
        {
            if claims & bit(id) != 0 {
                let before = s.etcd;
                s.etcd.end_lease(id);
                let after = s.etcd;
                Election::wrote_record(&mut s.ghost, &before, &after, Writer::Guardian(dead));
            }
        }
        let node = &mut s.nodes[n];
        node.claims = 0;
        node.guardian = Guardian::Gone;
    }

    /// The eligible candidates a record may be handed to, other than the
    /// leases in `except` (the departing process's): with priorities, any
    /// of them may rank first; without, the oldest.
    fn successors(&self, etcd: &Etcd, except: u16) -> Vec<LeaseId> {
        let mut eligible: Vec<(Rev, LeaseId)> = etcd
            .live()
            .filter_map(|(id, lease)| {
                let key = lease.candidate.filter(|k| k.eligible)?;
                (bit(id) & except == 0 && lease.owner != Owner::OldRule).then_some((key.create, id))
            })
            .collect();
        eligible.sort_unstable();
        if !self.config.priorities {
            eligible.truncate(1);
        }
        eligible.into_iter().map(|(_, id)| id).collect()
    }

    /// Whether the candidate with lease `id` may find itself first in line
    /// among the eligible (`layout::best`): with priorities any may; with
    /// equal ones only the oldest.
    fn first_in_line(&self, etcd: &Etcd, id: LeaseId) -> bool {
        self.config.priorities || self.successors(etcd, 0).first() == Some(&id)
    }

    /// Whether a one-write hand-over may be tried now: the anchor laid
    /// (unless the protocol does without) and no transfer in progress.
    fn may_hand_over(&self, etcd: &Etcd) -> bool {
        etcd.transfer.is_none()
            && (!self.protocol().hand_over_compares_anchor() || etcd.anchored().is_some())
    }

    /// After every step: leases renumbered, and what can no longer matter
    /// forgotten, so that equal situations are equal states.
    fn canonical(&self, s: &mut State) {
        if !self.config.tracks_predecessors() {
            // A lease without keys that no live claim uses can change
            // nothing any more (nobody puts a key with it again; its
            // expiry or revoke deletes nothing): forgotten. Only a wait for
            // predecessors would still look it up.
            let claimed: u16 = s
                .nodes
                .iter()
                .filter_map(|n| n.proc.and_then(|p| p.claim))
                .fold(0, |set, c| set | bit(c.lease));
            let e = &mut s.etcd;
            let bound: u16 = [e.record, e.transfer, e.old_rule]
                .into_iter()
                .flatten()
                .fold(0, |set, k| set | bit(k.lease));
            for (i, slot) in e.leases.iter_mut().enumerate() {
                let id = u8::try_from(i + 1).unwrap_or(0);
                if slot.is_some_and(|l| l.candidate.is_none()) && (claimed | bound) & bit(id) == 0 {
                    *slot = None;
                }
            }
        }
        let map = s.etcd.renumber();
        let lease = |id: LeaseId| remap(&map, id);
        let request = |r: Request| match r {
            Request::TakeRecord {
                lease: id,
                create,
                anchor,
                transfer,
            } => Request::TakeRecord {
                lease: lease(id),
                create,
                anchor,
                transfer,
            },
            Request::Revoke { lease: id } => Request::Revoke { lease: lease(id) },
            Request::HandOver {
                from,
                record,
                to,
                to_modr,
                anchor,
            } => Request::HandOver {
                from: lease(from),
                record,
                to: lease(to),
                to_modr,
                anchor,
            },
            Request::PutTransfer {
                from,
                to,
                to_create,
            } => Request::PutTransfer {
                from: lease(from),
                to: lease(to),
                to_create,
            },
            other => other,
        };
        let transfer = s.etcd.transfer;
        // A request whose lease is gone does nothing when it lands: as
        // good as landed (unless its answer could show a wipe).
        let history = self.config.tracks_history();
        let live = |r: Request| match r {
            Request::Revoke { lease: 0 }
            | Request::TakeRecord { lease: 0, .. }
            | Request::HandOver { from: 0, .. }
            | Request::PutTransfer { from: 0, .. }
                if !history =>
            {
                None
            }
            other => Some(other),
        };
        for node in &mut s.nodes {
            node.claims = remap_set(&map, node.claims);
            node.inflight = node.inflight.map(request).and_then(live);
            if let Guardian::Releasing(Some(plan)) = &mut node.guardian {
                plan.record.lease = lease(plan.record.lease);
                plan.to = lease(plan.to);
            }
            if !self.config.state_file || !self.config.tracks_floor() {
                node.saved_floor = 0;
                node.saved_high = 0;
            }
            if let Some(p) = node.proc.as_mut() {
                if let Some(c) = p.claim.as_mut() {
                    c.lease = lease(c.lease);
                }
                p.seen = if self.config.tracks_predecessors() {
                    remap_set(&map, p.seen)
                } else {
                    0
                };
                if !self.config.tracks_floor() {
                    p.floor = 0;
                    p.last_term = None;
                }
                p.request = p.request.map(request).and_then(live);
                if !self.config.tracks_predecessors() {
                    // Only a record deleted by hand leaves a claim's key
                    // without its record: then it matters that we led.
                    p.led = false;
                }
                // A transfer no longer there cannot be withdrawn.
                if p.transfer.is_some() && transfer.map(|t| t.modr) != p.transfer {
                    p.transfer = None;
                }
            }
        }
        s.old_rule_leads &= s.etcd.old_rule.is_some();
        if !self.config.tracks_history() {
            if self.config.reduce {
                compress_revisions(s);
            }
        } else if s.budget.wipes == 0 {
            // No wipe to come: a process whose highest revision seen is not
            // above etcd's will never see an answer below it again.
            let revision = s.etcd.revision;
            for node in &mut s.nodes {
                if let Some(p) = node.proc.as_mut()
                    && p.high <= revision
                {
                    p.high = 0;
                }
            }
        }
        if self.config.reduce {
            *s = crate::symmetry::representative(s);
        }
    }
}

/// The one-write hand-over txn, by a departing leader (`from` its lease) or
/// the guardian of a dead one (`from` the dead process's leases): if the
/// record is unchanged (its `mod_revision` and lease as read), the
/// successor's key unchanged since read, the anchor as read (unless the
/// protocol does without) and no transfer, the record is put bound to the
/// successor's lease (its `create_revision` stays: the same key) and the
/// departing candidate keys are deleted, in one write.
pub(crate) fn hand_over(
    etcd: &mut Etcd,
    protocol: Protocol,
    plan: &Plan,
    from: u16,
) -> Option<Rev> {
    let guards = etcd
        .record
        .is_some_and(|r| r.modr == plan.record.modr && r.lease == plan.record.lease)
        && etcd
            .candidate(plan.to)
            .is_some_and(|k| k.modr == plan.to_modr)
        && (!protocol.hand_over_compares_anchor()
            || (plan.anchor.is_some() && etcd.anchor == plan.anchor))
        && etcd.transfer.is_none();
    if !guards {
        return None;
    }
    let revision = etcd.write();
    let create = etcd.record.map_or(revision, |r| r.create);
    etcd.record = Some(Key {
        lease: plan.to,
        create,
        modr: revision,
    });
    for id in (1..=MAX_LEASES).filter_map(|id| u8::try_from(id).ok()) {
        if from & bit(id) != 0 {
            etcd.drop_candidate(id);
        }
    }
    Some(revision)
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
                        self.canonical(&mut s);
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
                let before = s.etcd;
                hand_over(&mut s.etcd, self.protocol(), &plan, s.nodes[n].claims);
                let after = s.etcd;
                Election::wrote_record(&mut s.ghost, &before, &after, Writer::Guardian(dead));
                Election::guardian_release(&mut s, n);
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
        self.canonical(&mut s);
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
/// The three safety properties.
pub const SAFETY: [&str; 3] = [ONE_LEADER, TERMS_GROW, HOLDERS_WRITE];

/// Calls `f` on every revision the state holds (etcd's, and every one a
/// process, guardian or the ghost remembers).
fn each_revision(s: &mut State, f: &mut impl FnMut(&mut Rev)) {
    fn request(r: &mut Request, f: &mut impl FnMut(&mut Rev)) {
        match r {
            Request::TakeRecord {
                create,
                anchor,
                transfer,
                ..
            } => {
                f(create);
                anchor.iter_mut().for_each(&mut *f);
                transfer.iter_mut().for_each(&mut *f);
            }
            Request::LayAnchor | Request::Revoke { .. } => {}
            Request::Decline { modr } => f(modr),
            Request::HandOver {
                record,
                to_modr,
                anchor,
                ..
            } => {
                f(record);
                f(to_modr);
                anchor.iter_mut().for_each(&mut *f);
            }
            Request::PutTransfer { to_create, .. } => f(to_create),
        }
    }
    fn key(k: &mut Key, f: &mut impl FnMut(&mut Rev)) {
        f(&mut k.create);
        f(&mut k.modr);
    }
    let e = &mut s.etcd;
    f(&mut e.revision);
    for c in e
        .leases
        .iter_mut()
        .flatten()
        .filter_map(|l| l.candidate.as_mut())
    {
        f(&mut c.create);
        f(&mut c.modr);
    }
    for k in [&mut e.record, &mut e.transfer, &mut e.old_rule]
        .into_iter()
        .flatten()
    {
        key(k, f);
    }
    e.anchor.iter_mut().for_each(&mut *f);
    for node in &mut s.nodes {
        f(&mut node.saved_floor);
        f(&mut node.saved_high);
        if let Some(r) = node.inflight.as_mut() {
            request(r, f);
        }
        if let Guardian::Releasing(Some(plan)) = &mut node.guardian {
            key(&mut plan.record, f);
            f(&mut plan.to_modr);
            plan.anchor.iter_mut().for_each(&mut *f);
        }
        if let Some(p) = node.proc.as_mut() {
            if let Some(c) = p.claim.as_mut() {
                f(&mut c.create);
            }
            p.tenure.iter_mut().for_each(&mut *f);
            p.last_term.iter_mut().for_each(&mut *f);
            f(&mut p.floor);
            f(&mut p.high);
            if let Some(r) = p.request.as_mut() {
                request(r, f);
            }
            p.transfer.iter_mut().for_each(&mut *f);
        }
    }
    if let Some((term, _)) = s.ghost.max_term.as_mut() {
        f(term);
    }
}

/// Renumbers the revisions the state holds `1..` in order, `0` staying
/// `0`: only their order and equality matter (compares, ages, terms),
/// and etcd's next write is above them all either way.
pub(crate) fn compress_revisions(s: &mut State) {
    let mut used = [0u64; 4];
    each_revision(s, &mut |r: &mut Rev| {
        used[usize::from(*r >> 6)] |= 1 << (*r & 63);
    });
    // 0 stays 0: it is no revision.
    used[0] &= !1;
    let mut below = [0u8; 4];
    for i in 1..4 {
        below[i] = below[i - 1] + used[i - 1].count_ones() as u8;
    }
    each_revision(s, &mut |r: &mut Rev| {
        if *r != 0 {
            let word = usize::from(*r >> 6);
            let mask = (1u64 << (*r & 63)) - 1;
            *r = below[word] + (used[word] & mask).count_ones() as u8 + 1;
        }
    });
}
