//! The protocol's steps, as one party takes them: what a process does when
//! it reads the election (`follow.rs`'s `settle` and the state machine's
//! `reconcile`), what etcd does with each request (every txn and its
//! compares), what a guardian does for its dead process, and the checks
//! the properties read as it happens (terms begun, records written).

use crate::config::{Config, Protocol};
use crate::etcd::{Etcd, Key, LeaseId, MAX_LEASES, Owner, Rev, bit};
use crate::state::{Ghost, Guardian, Plan, Proc, Request, State, event};

/// Who wrote the record, for the property that only its holder, its
/// holder's guardian, or a candidate taking it while absent does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Writer {
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

    pub(crate) fn protocol(&self) -> Protocol {
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

    pub(crate) fn deadline(&self) -> u8 {
        self.config.ttl.saturating_sub(self.config.margin)
    }

    /// Notes a linearizable answer at `revision`: one below the highest
    /// revision seen means etcd lost history (`history.rs`): the floor
    /// rises past it and no tenure lasts until the revision passes it.
    pub(crate) fn answered(&self, p: &mut Proc, revision: Rev) {
        if !self.config.tracks_history() {
            return;
        }
        if regressed(&mut p.high, &mut p.floor, revision) {
            p.regressed = true;
            p.tenure = None;
        }
    }

    /// A leadership begins: checks that terms only grow, and notes events.
    fn begin(&self, ghost: &mut Ghost, who: Owner, term: Rev, record: Key) {
        let earlier = ghost.max_term;
        ghost.term_went_back |= !term_grows(&mut ghost.max_term, who, term);
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
    pub(crate) fn wrote_record(ghost: &mut Ghost, before: &Etcd, after: &Etcd, writer: Writer) {
        ghost.stray_write |= !holders_write((before, before.record), (after, after.record), writer);
    }

    /// Checks the history entry of the leadership of `ended` (the record as
    /// read), held by `holder`, written by `writer`: by its holder or its
    /// holder's guardian, and with the leadership over in `after`.
    pub(crate) fn wrote_entry(
        ghost: &mut Ghost,
        ended: Key,
        holder: Option<Owner>,
        after: &Etcd,
        writer: Writer,
    ) {
        let goes_on = after
            .record
            .is_some_and(|r| r.lease == ended.lease && r.modr == ended.modr);
        let by_holder =
            holder.is_some_and(|h| writer == Writer::Process(h) || writer == Writer::Guardian(h));
        if goes_on || !by_holder {
            ghost.stray_entry = true;
        }
    }

    /// A process reads the election and acts on it (`follow.rs`'s
    /// `settle`, and the state machine's `reconcile` after it): notes who
    /// leads, raises its floor, notices a claim lost, begins or ends its
    /// tenure, releases a record it may not lead with, and, with `act`,
    /// sends the txn of the step whose turn it is.
    pub(crate) fn settle(&self, s: &mut State, n: usize, act: bool) {
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
    pub(crate) fn execute(&self, s: &mut State, request: Request, writer: Writer) -> Option<Rev> {
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
        if let Request::HandOver { .. } = request
            && written.is_some()
            && let Some(ended) = before.record
        {
            // The departing leadership's entry rides in the hand-over.
            let holder = before.owner(ended.lease);
            Election::wrote_entry(&mut s.ghost, ended, holder, &after, writer);
        }
        written
    }

    /// A live process's request lands and the process reads the answer.
    pub(crate) fn send(&self, s: &mut State, n: usize) {
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
    pub(crate) fn guardian_release(s: &mut State, n: usize) {
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
    pub(crate) fn successors(&self, etcd: &Etcd, except: u16) -> Vec<LeaseId> {
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
    pub(crate) fn may_hand_over(&self, etcd: &Etcd) -> bool {
        etcd.transfer.is_none()
            && (!self.protocol().hand_over_compares_anchor() || etcd.anchored().is_some())
    }
}

/// Notes an answer at `revision` against the highest revision seen
/// (`history.rs`): one below it means etcd lost history, and the floor
/// rises past everything seen. Whether it did.
pub(crate) fn regressed(high: &mut Rev, floor: &mut Rev, revision: Rev) -> bool {
    if revision < *high {
        *floor = (*floor).max(high.saturating_add(1));
        *high = revision;
        true
    } else {
        *high = (*high).max(revision);
        false
    }
}

/// A leadership of `who` begins with `term`: whether the term is above
/// every earlier one (`max`, the highest begun and whose it was), or the
/// same process resuming its own; `max` notes it.
pub(crate) fn term_grows(max: &mut Option<(Rev, Owner)>, who: Owner, term: Rev) -> bool {
    let grows = max.is_none_or(|(top, holder)| term > top || (term == top && holder == who));
    if max.is_none_or(|(top, _)| term > top) {
        *max = Some((term, who));
    }
    grows
}

/// Whether a change of one record key (`before` to `after`, each with the
/// store it is in, for the leases' owners) by `writer` is one the
/// protocol allows: by the process whose lease it was bound to, that
/// process's guardian, or etcd ending the lease; or, for an absent record,
/// by the process taking it bound to its own lease.
pub(crate) fn holders_write(
    (was, before): (&Etcd, Option<Key>),
    (is, after): (&Etcd, Option<Key>),
    writer: Writer,
) -> bool {
    if before == after {
        return true;
    }
    match before {
        // Taking an absent record: bound to the taker's own lease.
        None => after
            .and_then(|k| is.owner(k.lease))
            .is_some_and(|holder| writer == Writer::Process(holder)),
        Some(old) => match was.owner(old.lease) {
            Some(holder) => {
                writer == Writer::Process(holder)
                    || writer == Writer::Guardian(holder)
                    || writer == Writer::Etcd
            }
            None => true,
        },
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
