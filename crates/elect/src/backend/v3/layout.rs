//! The v3 election's keys, and what a snapshot of them means. Pure: no I/O,
//! so every rule here has a unit test.
//!
//! Under the prefix `/electd/<election>/`:
//!
//! * `~c/<lease hex>`: one **candidate** key per campaign, bound to its lease
//!   (the queue, ordered by `create_revision`);
//! * `~leader`: the **leader record**, bound to the leader's lease and
//!   created by a transaction that requires it to be absent. Its
//!   `create_revision` is the term, so terms grow whoever leads next;
//! * `~anchor`: written once, without a lease, when no key of the old rule
//!   is left (below);
//! * anything sorting before `~` (`<lease hex>`) is the **old rule**'s: the
//!   key of electd before the leader record, or of an etcd election client
//!   (`etcdctl elect`, Go's `concurrency.Election`). Those lead when their
//!   key is the oldest under the prefix, and never otherwise.
//!
//! * `~transfer`: a hand-over to a named candidate in progress, bound to
//!   that candidate's lease: while it exists only its target may take the
//!   record, by a transaction that consumes it;
//! * `~preempt`: a candidate of higher priority asking the leader to hand
//!   over, bound to its own lease.
//!
//! With the anchor, the candidate whose turn it is is the transfer's target
//! if there is one, else the eligible (healthy, undrained) candidate of the
//! highest priority, the oldest first among equals.
//!
//! So the oldest key under the prefix decides. While it is an old-rule key,
//! its owner leads by the old rule and no electd creates a record. While it
//! is one of our candidate keys (an upgrade in progress), only that
//! candidate may hold the record: old-rule parties see an older key than
//! theirs and wait. Once the old rule's keys are gone, the first candidate
//! lays the anchor, which stays the oldest key for good: old-rule parties
//! never lead again, and the record may go to any candidate.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use crate::api::Api;
use crate::backend::Handover;
use crate::status::{Candidate as StatusCandidate, Expiry, Foreign, Leader, Obstacle};
use crate::value::{self, Named};

const ANCHOR: &str = "~anchor";
const RECORD: &str = "~leader";
const TRANSFER: &str = "~transfer";
const PREEMPT: &str = "~preempt";
const CANDIDATES: &str = "~c/";
/// Old-rule keys sort before this under the prefix.
const OLD_RULE_END: &str = "~";

/// The anchor's value: says what it is to whoever reads it.
const ANCHOR_VALUE: &str = r#"{"electd":"anchor","about":"leadership is the record ~leader; this key keeps etcd election clients and electd releases without the record from leading"}"#;

/// The keys of one election.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    prefix: String,
}

impl Layout {
    pub(super) fn new(election: &str) -> Layout {
        Layout {
            prefix: format!("/electd/{election}/"),
        }
    }

    pub(super) fn prefix(&self) -> &[u8] {
        self.prefix.as_bytes()
    }

    pub(super) fn anchor(&self) -> Vec<u8> {
        format!("{}{ANCHOR}", self.prefix).into_bytes()
    }

    pub(super) fn anchor_value(&self) -> &'static str {
        ANCHOR_VALUE
    }

    pub(super) fn record(&self) -> Vec<u8> {
        format!("{}{RECORD}", self.prefix).into_bytes()
    }

    pub(super) fn transfer(&self) -> Vec<u8> {
        format!("{}{TRANSFER}", self.prefix).into_bytes()
    }

    pub(super) fn preempt(&self) -> Vec<u8> {
        format!("{}{PREEMPT}", self.prefix).into_bytes()
    }

    pub(super) fn candidate(&self, lease: i64) -> Vec<u8> {
        format!("{}{CANDIDATES}{lease:x}", self.prefix).into_bytes()
    }

    /// The end of the old rule's range, which starts at the prefix.
    pub(super) fn old_rule_end(&self) -> Vec<u8> {
        format!("{}{OLD_RULE_END}", self.prefix).into_bytes()
    }

    /// The lease a key names, when it is a key of ours: `~c/<hex>`.
    fn candidate_lease(&self, key: &[u8]) -> Option<i64> {
        let hex = key
            .strip_prefix(self.prefix.as_bytes())?
            .strip_prefix(CANDIDATES.as_bytes())?;
        lease_named(hex)
    }

    fn is_old_rule(&self, key: &[u8]) -> bool {
        key.starts_with(self.prefix.as_bytes()) && key < self.old_rule_end().as_slice()
    }
}

/// `<lease hex>` as electd and etcd's election clients write it: lower-case
/// hex of a positive lease, no leading zeros.
fn lease_named(hex: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(hex).ok()?;
    let lease = i64::from_str_radix(text, 16).ok()?;
    (lease > 0 && format!("{lease:x}") == text).then_some(lease)
}

/// A key as etcd holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Kv {
    pub create_revision: i64,
    pub mod_revision: i64,
    pub lease: i64,
    pub value: Vec<u8>,
}

/// Every key of the election as of `revision`: read once, then kept up to
/// date from the watch.
///
/// Indexed as it changes, so that reading the election after a change
/// ([`assess`]) decodes nothing and visits no candidate but the few it
/// names: every change wakes every candidate, and while each of them
/// decoded and walked the whole queue again, a fleet of N spent N² on
/// every change (about 100 µs a candidate at N = 100, most of it cache
/// misses in a process that had slept), on the cores the next in line and
/// etcd needed. A value is decoded once, when its key is put.
#[derive(Clone, Debug)]
pub(super) struct Mirror {
    pub revision: i64,
    layout: Layout,
    keys: BTreeMap<Vec<u8>, Kv>,
    /// Every key by age: `(create_revision, key)`.
    by_age: BTreeSet<(i64, Vec<u8>)>,
    /// The queue: the candidate keys that are ours and well formed (bound
    /// to the lease they name, a value we can read), decoded, by age.
    queue: BTreeMap<(i64, Vec<u8>), Arc<Candidate>>,
    /// The queue by lease (a candidate key names its lease: one each).
    by_lease: HashMap<i64, Arc<Candidate>>,
    /// The eligible candidates in the order they would be chosen: the
    /// highest priority first, the oldest among equals.
    ranked: BTreeMap<(Reverse<i64>, i64, Vec<u8>), Arc<Candidate>>,
    /// Candidates put since [`Mirror::take_fresh`] last looked.
    fresh: Vec<Arc<Candidate>>,
    /// How many keys each lease holds.
    leases: HashMap<i64, usize>,
}

impl Mirror {
    /// An empty mirror of `layout`'s keys.
    pub(super) fn new(layout: &Layout) -> Mirror {
        Mirror {
            revision: 0,
            layout: layout.clone(),
            keys: BTreeMap::new(),
            by_age: BTreeSet::new(),
            queue: BTreeMap::new(),
            by_lease: HashMap::new(),
            ranked: BTreeMap::new(),
            fresh: Vec::new(),
            leases: HashMap::new(),
        }
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<&Kv> {
        self.keys.get(key)
    }

    /// Puts a key (as a watch event or a read shows it).
    pub(super) fn insert(&mut self, key: Vec<u8>, kv: Kv) {
        self.remove(&key);
        if kv.lease != 0 {
            *self.leases.entry(kv.lease).or_default() += 1;
        }
        self.by_age.insert((kv.create_revision, key.clone()));
        if let Some(lease) = self.layout.candidate_lease(&key)
            && lease == kv.lease
            && let Some(named) = value::decode(&kv.value)
        {
            let candidate = Arc::new(Candidate {
                key: key.clone(),
                lease,
                create_revision: kv.create_revision,
                named,
            });
            if let Some(rank) = rank(&candidate) {
                self.ranked.insert(rank, candidate.clone());
            }
            self.queue
                .insert((kv.create_revision, key.clone()), candidate.clone());
            self.by_lease.insert(lease, candidate.clone());
            self.fresh.push(candidate);
        }
        self.keys.insert(key, kv);
    }

    /// Deletes a key; what it held, if it was there.
    pub(super) fn remove(&mut self, key: &[u8]) -> Option<Kv> {
        let (key, kv) = self.keys.remove_entry(key)?;
        if kv.lease != 0
            && let Some(count) = self.leases.get_mut(&kv.lease)
        {
            *count -= 1;
            if *count == 0 {
                self.leases.remove(&kv.lease);
            }
        }
        let aged = (kv.create_revision, key);
        if let Some(candidate) = self.queue.remove(&aged) {
            self.by_lease.remove(&candidate.lease);
            if let Some(rank) = rank(&candidate) {
                self.ranked.remove(&rank);
            }
        }
        self.by_age.remove(&aged);
        Some(kv)
    }

    /// A new leader record, created at `revision` by electd's txn, which
    /// deletes the transfer and preemption records put before it; and the
    /// lease `old` of the record before it ended, taking its keys with it.
    /// Drops what those deletions took, for a mirror that did not see them.
    pub(super) fn record_replaced(&mut self, old: i64, revision: i64) {
        let record = self.layout.record();
        let answered = [self.layout.transfer(), self.layout.preempt()];
        let gone: Vec<Vec<u8>> = self
            .keys
            .iter()
            .filter(|(key, kv)| {
                (kv.lease == old && **key != record)
                    || (answered.contains(key) && kv.mod_revision < revision)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in gone {
            self.remove(&key);
        }
    }

    /// How many keys it holds.
    pub(super) fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Whether any key is bound to `lease`.
    pub(super) fn holds_lease(&self, lease: i64) -> bool {
        self.leases.contains_key(&lease)
    }

    /// The queue, oldest first.
    pub(super) fn queue(&self) -> impl Iterator<Item = &Arc<Candidate>> {
        self.queue.values()
    }

    /// The queued candidate with this lease.
    pub(super) fn candidate(&self, lease: i64) -> Option<&Arc<Candidate>> {
        self.by_lease.get(&lease)
    }

    /// The eligible candidate first in line after the one with `lease`
    /// (the leader's): who would be next if it went.
    pub(super) fn runner_up(&self, lease: i64) -> Option<&Arc<Candidate>> {
        self.ranked.values().find(|c| c.lease != lease)
    }

    /// Whether the candidate with `lease` is among the first `n` eligible
    /// in line after the leader's (`leader`).
    pub(super) fn among_next(&self, lease: i64, leader: i64, n: usize) -> bool {
        self.ranked
            .values()
            .filter(|c| c.lease != leader)
            .take(n)
            .any(|c| c.lease == lease)
    }

    /// The candidates put since this was last asked (all of them after a
    /// read): what is new to warn about.
    pub(super) fn take_fresh(&mut self) -> Vec<Arc<Candidate>> {
        std::mem::take(&mut self.fresh)
    }

    /// The old rule's keys: those under the prefix that sort before `~`.
    fn old_rule(&self) -> impl Iterator<Item = (&Vec<u8>, &Kv)> {
        let start = self.layout.prefix();
        let end = self.layout.old_rule_end();
        self.keys
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end.as_slice())))
    }
}

/// Where an eligible candidate ranks (`None`: it may not lead now).
fn rank(candidate: &Candidate) -> Option<(Reverse<i64>, i64, Vec<u8>)> {
    let offer = candidate.named.candidacy;
    offer.eligible().then(|| {
        (
            Reverse(offer.priority),
            candidate.create_revision,
            candidate.key.clone(),
        )
    })
}

/// A candidate in the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Candidate {
    pub key: Vec<u8>,
    pub lease: i64,
    pub create_revision: i64,
    pub named: Named,
}

/// What the best candidate may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Someone leads, or something blocks.
    Wait,
    /// Nothing of the old rule is left: lay the anchor.
    LayAnchor,
    /// Nobody holds the record. With the anchor at this revision older than
    /// any old-rule key, any candidate may take it; without (`None`), only
    /// the one whose key is the oldest under the prefix. With a transfer (at
    /// this `mod_revision`), only its target, consuming it.
    TakeRecord {
        anchor: Option<i64>,
        transfer: Option<i64>,
    },
}

/// The transfer record's value.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct TransferValue {
    /// The target's lease, hex: the record is bound to it.
    pub to: String,
    /// The leader that handed over.
    pub by: String,
    pub reason: Handover,
}

/// A transfer in progress, as the keys show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Transfer {
    pub target: Arc<Candidate>,
    pub mod_revision: i64,
    pub reason: Handover,
}

/// A candidate asking the leader to hand over to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Preempt {
    pub by: Arc<Candidate>,
    pub mod_revision: i64,
}

/// A key that leads, bound to a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Leading {
    pub key: Vec<u8>,
    pub lease: i64,
    /// Not electd's: its holder does not revoke its lease when it resigns.
    pub foreign: bool,
}

/// What the keys say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Assessment {
    /// Who leads, as a status reports it.
    pub leader: Option<Leader>,
    /// The leader record's writer, when it is in electd's format: its
    /// nonce and the lease the record is bound to.
    pub writer: Option<(String, i64)>,
    /// The key that leads now and its lease, to outlive before anyone else
    /// leads (see `succession.rs`).
    pub leading: Option<Leading>,
    /// A key electd did not write that blocks the election.
    pub obstacle: Option<Obstacle>,
    pub step: Step,
    /// Who may take the step: the transfer's target, or the eligible
    /// candidate of the highest priority (the oldest among equals); with no
    /// anchor the owner of the oldest key, if eligible.
    pub next: Option<Arc<Candidate>>,
    /// Whether the anchor is laid (priorities and transfers need it).
    pub anchored: bool,
    /// A transfer in progress.
    pub transfer: Option<Transfer>,
    /// A candidate asking the leader to hand over.
    pub preempt: Option<Preempt>,
    /// The leader's priority, as its record says.
    pub leader_priority: Option<i64>,
}

impl Assessment {
    /// The succession order for a status: the leader, then the eligible
    /// candidates as they would be chosen (priority, then queue order), then
    /// those that may not lead now (unhealthy, drained), in queue order.
    /// Worked out when a status asks, not after every change.
    pub(super) fn succession(&self, mirror: &Mirror) -> Vec<StatusCandidate> {
        let leader_lease = self.writer.as_ref().map(|(_, lease)| *lease);
        let offer = |lease: Option<i64>| {
            lease
                .and_then(|lease| mirror.candidate(lease))
                .map(|c| c.named.candidacy)
        };
        let mut order: Vec<StatusCandidate> = self
            .leader
            .iter()
            .map(|l| StatusCandidate::leader(l, offer(leader_lease)))
            .collect();
        let eligible = mirror.ranked.values();
        let others = mirror.queue().filter(|c| !c.named.candidacy.eligible());
        order.extend(
            eligible
                .chain(others)
                .filter(|c| Some(c.lease) != leader_lease)
                .map(|c| StatusCandidate {
                    id: Some(c.named.id.clone()),
                    advertise: Some(c.named.advertise.clone()),
                    term: revision_u64(c.create_revision),
                    verified: true,
                    candidacy: Some(c.named.candidacy),
                    leads: false,
                }),
        );
        order
    }
}

pub(super) fn revision_u64(revision: i64) -> u64 {
    u64::try_from(revision).unwrap_or(0)
}

/// Reads the election from its keys.
///
/// Costs no decoding but the record's (and a transfer's or a preemption
/// request's, while one exists): the mirror keeps the queue decoded.
pub(super) fn assess(layout: &Layout, mirror: &Mirror) -> Assessment {
    let record_key = layout.record();
    let record = mirror.get(&record_key);
    let old_rule_left = mirror.old_rule().next().is_some();
    // The oldest key but the record; the first in key order among equals.
    let oldest = mirror
        .by_age
        .iter()
        .find(|(_, key)| *key != record_key)
        .and_then(|(_, key)| mirror.keys.get_key_value(key));
    let transfer = transfer_of(layout, mirror);
    let preempt = preempt_of(layout, mirror);
    let mut assessment = Assessment {
        leader: None,
        writer: None,
        leading: None,
        obstacle: None,
        step: Step::Wait,
        next: best(mirror, transfer.as_ref()),
        anchored: false,
        transfer,
        preempt,
        leader_priority: None,
    };
    if let Some((key, kv)) = oldest
        && layout.is_old_rule(key)
    {
        old_rule_leader(layout, key, kv, &mut assessment);
        return assessment;
    }
    let anchor = mirror.get(&layout.anchor()).map(|kv| kv.create_revision);
    // Old-rule keys newer than the anchor never lead: the anchor is older.
    let oldest_old_rule = mirror.old_rule().map(|(_, kv)| kv.create_revision).min();
    let anchor = anchor.filter(|&anchor| oldest_old_rule.is_none_or(|old| old > anchor));
    assessment.anchored = anchor.is_some();
    if let Some(kv) = record {
        record_leader(layout, kv, &mut assessment);
        if !old_rule_left && anchor.is_none() {
            // The leader lays it: the one candidate sure to be there.
            assessment.step = Step::LayAnchor;
            assessment.next = mirror.candidate(kv.lease).cloned();
        }
        return assessment;
    }
    if let Some(anchor) = anchor {
        if assessment.transfer.is_none()
            && let Some(kv) = mirror.get(&layout.transfer())
        {
            // Not a transfer of ours: the record may only be taken while no
            // transfer exists (so a real one is never overtaken), and this
            // one is not ours to delete. It blocks, and says so.
            let kind = if serde_json::from_slice::<TransferValue>(&kv.value).is_ok() {
                Foreign::Unbound
            } else {
                Foreign::Value
            };
            assessment.obstacle = Some(foreign(&layout.transfer(), kv, kind));
            assessment.next = None;
            return assessment;
        }
        assessment.step = Step::TakeRecord {
            anchor: Some(anchor),
            transfer: assessment.transfer.as_ref().map(|t| t.mod_revision),
        };
        return assessment;
    }
    match oldest {
        None => assessment.step = Step::LayAnchor,
        Some((key, kv)) => match mirror.queue.get(&(kv.create_revision, key.clone())) {
            Some(oldest) if old_rule_left => {
                // The old rule: only the oldest key may lead, if it can.
                assessment.next = Some(oldest.clone()).filter(|c| c.named.candidacy.eligible());
                assessment.step = Step::TakeRecord {
                    anchor: None,
                    transfer: None,
                };
            }
            Some(_) => assessment.step = Step::LayAnchor,
            None => {
                // Something of no rule's is the oldest key: old-rule
                // parties wait behind it, and so do we.
                assessment.obstacle = Some(foreign(key, kv, Foreign::Value));
                assessment.next = None;
            }
        },
    }
    assessment
}

/// Whose turn it is with the anchor laid: the transfer's target, else the
/// eligible candidate of the highest priority, the oldest among equals.
fn best(mirror: &Mirror, transfer: Option<&Transfer>) -> Option<Arc<Candidate>> {
    if let Some(transfer) = transfer {
        return Some(transfer.target.clone());
    }
    mirror.ranked.values().next().cloned()
}

/// The transfer record, trusted only when bound to the lease of the queued
/// candidate its value names.
fn transfer_of(layout: &Layout, mirror: &Mirror) -> Option<Transfer> {
    let kv = mirror.get(&layout.transfer())?;
    let value: TransferValue = serde_json::from_slice(&kv.value).ok()?;
    let lease = lease_named(value.to.as_bytes())?;
    let target = mirror.candidate(lease).filter(|_| kv.lease == lease)?;
    Some(Transfer {
        target: target.clone(),
        mod_revision: kv.mod_revision,
        reason: value.reason,
    })
}

/// The preemption request, trusted only when bound to its queued requester's lease.
fn preempt_of(layout: &Layout, mirror: &Mirror) -> Option<Preempt> {
    let kv = mirror.get(&layout.preempt())?;
    let named = value::decode(&kv.value)?;
    if kv.lease == 0 || named.lease != Some(kv.lease) {
        return None;
    }
    let by = mirror.candidate(kv.lease)?;
    Some(Preempt {
        by: by.clone(),
        mod_revision: kv.mod_revision,
    })
}

/// The oldest key is the old rule's: its owner leads by that rule.
fn old_rule_leader(layout: &Layout, key: &[u8], kv: &Kv, assessment: &mut Assessment) {
    assessment.next = None;
    let term = revision_u64(kv.create_revision);
    let name = key.strip_prefix(layout.prefix()).and_then(lease_named);
    let bound = kv.lease != 0 && name == Some(kv.lease);
    let named = value::decode(&kv.value);
    if bound {
        assessment.leading = Some(Leading {
            key: key.to_vec(),
            lease: kv.lease,
            foreign: named.is_none(),
        });
    }
    match (bound, named) {
        // An electd from before the record: a leader like any other.
        (true, Some(named)) => {
            assessment.leader = Some(Leader {
                id: Some(named.id),
                advertise: Some(named.advertise),
                term,
                verified: true,
            });
        }
        (true, None) => {
            assessment.leader = Some(Leader::from_stored(&kv.value, term));
            assessment.obstacle = Some(foreign(key, kv, Foreign::ElectionClient));
        }
        (false, named) => {
            assessment.leader = Some(Leader {
                verified: false,
                ..Leader::from_stored(&kv.value, term)
            });
            let kind = if named.is_some() {
                Foreign::Unbound
            } else {
                Foreign::Value
            };
            assessment.obstacle = Some(foreign(key, kv, kind));
        }
    }
}

/// The record leads; it is trusted only when bound to the lease its value names.
fn record_leader(layout: &Layout, kv: &Kv, assessment: &mut Assessment) {
    assessment.next = None;
    let term = revision_u64(kv.create_revision);
    let named = value::decode(&kv.value);
    if kv.lease != 0 {
        assessment.leading = Some(Leading {
            key: layout.record(),
            lease: kv.lease,
            foreign: named.as_ref().is_none_or(|n| n.lease != Some(kv.lease)),
        });
    }
    match named {
        Some(named) if kv.lease != 0 && named.lease == Some(kv.lease) => {
            assessment.writer = Some((named.nonce.clone(), kv.lease));
            assessment.leader_priority = Some(named.candidacy.priority);
            assessment.leader = Some(Leader {
                id: Some(named.id),
                advertise: Some(named.advertise),
                term,
                verified: true,
            });
        }
        Some(named) => {
            assessment.leader = Some(Leader {
                id: Some(named.id),
                advertise: Some(named.advertise),
                term,
                verified: false,
            });
            assessment.obstacle = Some(foreign(&layout.record(), kv, Foreign::Unbound));
        }
        None => {
            assessment.leader = Some(Leader::from_stored(&kv.value, term));
            assessment.obstacle = Some(foreign(&layout.record(), kv, Foreign::Value));
        }
    }
}

fn foreign(key: &[u8], kv: &Kv, kind: Foreign) -> Obstacle {
    Obstacle::ForeignKey {
        key: String::from_utf8_lossy(key).into_owned(),
        kind,
        expiry: if kv.lease == 0 {
            Expiry::Never
        } else {
            Expiry::Lease(kv.lease)
        },
        api: Api::V3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new("leader")
    }

    fn ours(id: &str) -> Vec<u8> {
        value::encode(id, &format!("http://{id}"), "n0nce").into_bytes()
    }

    struct Keys(Mirror);

    impl Keys {
        fn new() -> Keys {
            Keys(Mirror::new(&layout()))
        }
        fn put(mut self, key: &[u8], lease: i64, value: &[u8]) -> Keys {
            self.0.revision += 1;
            self.0.insert(
                key.to_vec(),
                Kv {
                    create_revision: self.0.revision,
                    mod_revision: self.0.revision,
                    lease,
                    value: value.to_vec(),
                },
            );
            self
        }
        fn candidate(self, id: &str, lease: i64) -> Keys {
            let key = layout().candidate(lease);
            self.put(&key, lease, &ours(id))
        }
        fn offering(self, id: &str, lease: i64, candidacy: crate::value::Candidacy) -> Keys {
            let key = layout().candidate(lease);
            let value = value::encode_candidate(id, &format!("http://{id}"), "n0nce", &candidacy);
            self.put(&key, lease, value.as_bytes())
        }
        fn transfer(self, to: i64, bound: i64) -> Keys {
            let value = serde_json::to_string(&TransferValue {
                to: format!("{to:x}"),
                by: "a".into(),
                reason: Handover::Transfer,
            })
            .unwrap();
            self.put(&layout().transfer(), bound, value.as_bytes())
        }
        fn record(self, id: &str, lease: i64) -> Keys {
            let value = value::encode_record(
                id,
                &format!("http://{id}"),
                "n0nce",
                lease,
                &crate::value::Candidacy::default(),
            );
            self.put(&layout().record(), lease, value.as_bytes())
        }
        fn anchor(self) -> Keys {
            self.put(&layout().anchor(), 0, ANCHOR_VALUE.as_bytes())
        }
        fn assess(&self) -> Assessment {
            assess(&layout(), &self.0)
        }
        /// The ids in succession order, as a status lists them.
        fn succession(&self) -> Vec<String> {
            self.assess()
                .succession(&self.0)
                .into_iter()
                .map(|c| c.id.unwrap())
                .collect()
        }
    }

    #[test]
    fn an_empty_election_lays_the_anchor_first() {
        assert_eq!(Keys::new().assess().step, Step::LayAnchor);
        let a = Keys::new().candidate("a", 0x10).assess();
        assert_eq!(a.step, Step::LayAnchor);
        assert_eq!(a.next.unwrap().named.id, "a");
        assert_eq!(a.leader, None);
    }

    #[test]
    fn with_the_anchor_the_first_candidate_takes_the_record() {
        let keys = Keys::new()
            .anchor()
            .candidate("a", 0x10)
            .candidate("b", 0x11);
        let a = keys.assess();
        assert_eq!(
            a.step,
            Step::TakeRecord {
                anchor: Some(1),
                transfer: None
            }
        );
        assert_eq!(a.next.unwrap().named.id, "a");
        let keys = keys.record("b", 0x11);
        let a = keys.assess();
        assert_eq!(a.step, Step::Wait);
        let leader = a.leader.clone().unwrap();
        assert_eq!(
            (leader.id.as_deref(), leader.term, leader.verified),
            (Some("b"), 4, true)
        );
        assert_eq!(a.writer, Some(("n0nce".to_owned(), 0x11)));
        assert_eq!(
            a.leading,
            Some(Leading {
                key: layout().record(),
                lease: 0x11,
                foreign: false
            })
        );
        assert_eq!(keys.succession(), ["b", "a"]);
    }

    #[test]
    fn an_old_rule_key_that_is_oldest_leads_and_nobody_takes_the_record() {
        // An electd from before the record, holding lease 0x20 at the old key.
        let old = Keys::new()
            .put(b"/electd/leader/20", 0x20, &ours("old"))
            .candidate("a", 0x10);
        let a = old.assess();
        assert_eq!(a.step, Step::Wait);
        assert_eq!(a.leader.unwrap().id.as_deref(), Some("old"));
        assert_eq!(a.obstacle, None);
        assert_eq!(a.leading.map(|l| (l.lease, l.foreign)), Some((0x20, false)));
        // etcdctl elect's key: its lease, a plain value.
        let client = Keys::new()
            .put(b"/electd/leader/694d", 0x694d, b"proposal")
            .candidate("a", 0x10)
            .assess();
        assert!(client.leader.unwrap().is_foreign());
        assert_eq!(client.leading.map(|l| l.foreign), Some(true));
        assert!(matches!(
            client.obstacle,
            Some(Obstacle::ForeignKey {
                kind: Foreign::ElectionClient,
                expiry: Expiry::Lease(0x694d),
                ..
            })
        ));
        // A key put by hand, with no lease: blocks for ever.
        let junk = Keys::new()
            .put(b"/electd/leader/zzz", 0, b"garbage")
            .candidate("a", 0x10)
            .assess();
        assert_eq!(junk.step, Step::Wait);
        assert!(matches!(
            junk.obstacle,
            Some(Obstacle::ForeignKey { ref key, expiry: Expiry::Never, .. }) if key == "/electd/leader/zzz"
        ));
        assert_eq!(junk.leading, None);
    }

    #[test]
    fn while_old_rule_keys_are_newer_only_the_oldest_candidate_may_lead() {
        let keys = Keys::new()
            .candidate("a", 0x10)
            .put(b"/electd/leader/20", 0x20, &ours("old"))
            .candidate("b", 0x11);
        let a = keys.assess();
        assert_eq!(
            a.step,
            Step::TakeRecord {
                anchor: None,
                transfer: None
            }
        );
        assert_eq!(a.next.unwrap().named.id, "a");
        // Once the old node leaves, the anchor comes first.
        let mut mirror = keys.0.clone();
        mirror.remove(b"/electd/leader/20".as_slice());
        assert_eq!(assess(&layout(), &mirror).step, Step::LayAnchor);
        // A record held while old keys remain leads; the anchor waits for them.
        let held = keys.record("a", 0x10).assess();
        assert_eq!(held.leader.unwrap().id.as_deref(), Some("a"));
        assert_eq!(held.step, Step::Wait);
    }

    #[test]
    fn a_newer_old_rule_key_does_not_block_once_the_anchor_is_laid() {
        let a = Keys::new()
            .anchor()
            .candidate("a", 0x10)
            .put(b"/electd/leader/694d", 0x694d, b"etcdctl")
            .assess();
        assert_eq!(
            a.step,
            Step::TakeRecord {
                anchor: Some(1),
                transfer: None
            }
        );
        assert_eq!(a.obstacle, None);
    }

    #[test]
    fn a_record_is_trusted_only_when_bound_to_the_lease_it_names() {
        let forged = value::encode_record(
            "b",
            "http://b",
            "x",
            0x11,
            &crate::value::Candidacy::default(),
        );
        // Put by hand: no lease.
        let a = Keys::new()
            .anchor()
            .candidate("a", 0x10)
            .put(&layout().record(), 0, forged.as_bytes())
            .assess();
        let leader = a.leader.unwrap();
        assert_eq!(leader.id.as_deref(), Some("b"));
        assert!(!leader.verified && leader.is_foreign());
        assert!(matches!(
            a.obstacle,
            Some(Obstacle::ForeignKey {
                kind: Foreign::Unbound,
                expiry: Expiry::Never,
                ..
            })
        ));
        assert_eq!(a.writer, None);
        assert_eq!(a.step, Step::Wait);
        // Garbage in the record.
        let a = Keys::new()
            .anchor()
            .put(&layout().record(), 0x5, b"garbage")
            .assess();
        assert!(matches!(
            a.obstacle,
            Some(Obstacle::ForeignKey {
                kind: Foreign::Value,
                expiry: Expiry::Lease(5),
                ..
            })
        ));
    }

    #[test]
    fn only_keys_named_after_their_own_lease_are_candidates() {
        let keys = Keys::new()
            .anchor()
            .put(&layout().candidate(0x10), 0x99, &ours("liar"))
            .put(b"/electd/leader/~c/0010", 0x10, &ours("zeros"))
            .put(&layout().candidate(0x12), 0x12, b"garbage")
            .candidate("real", 0x13);
        let ids: Vec<_> = keys.0.queue().map(|c| c.named.id.as_str()).collect();
        assert_eq!(ids, ["real"]);
        assert_eq!(lease_named(b"694d"), Some(0x694d));
        for bad in [&b""[..], b"0", b"-1", b"694D", b"0694d", b"zz"] {
            assert_eq!(lease_named(bad), None, "{bad:?}");
        }
    }

    fn priority(priority: i64) -> crate::value::Candidacy {
        crate::value::Candidacy {
            priority,
            ..Default::default()
        }
    }

    #[test]
    fn the_two_eligible_after_the_leader_are_the_next_in_line() {
        use crate::value::Candidacy;
        let sick = Candidacy {
            priority: 9,
            healthy: false,
            ..Default::default()
        };
        let keys = Keys::new()
            .anchor()
            .offering("lead", 0x10, priority(0))
            .offering("sick", 0x11, sick)
            .offering("old", 0x12, priority(0))
            .offering("high", 0x13, priority(5))
            .offering("last", 0x14, priority(0))
            .record("lead", 0x10);
        let next: Vec<i64> = [0x10, 0x11, 0x12, 0x13, 0x14]
            .into_iter()
            .filter(|&lease| keys.0.among_next(lease, 0x10, 2))
            .collect();
        // By priority, then age; the leader and the unhealthy never count.
        assert_eq!(next, [0x12, 0x13]);
        assert!(!keys.0.among_next(0x14, 0x10, 2));
        assert!(keys.0.among_next(0x14, 0x10, 3));
    }

    #[test]
    fn a_replaced_record_takes_its_leases_keys_and_the_requests_it_answered() {
        let keys = Keys::new()
            .anchor()
            .candidate("old", 0x10)
            .candidate("b", 0x11)
            .candidate("c", 0x12)
            .record("old", 0x10)
            .transfer(0x11, 0x11)
            .record("b", 0x11);
        let record = keys.0.get(&layout().record()).unwrap().create_revision;
        let mut mirror = keys.0;
        // A transfer put after the new record is a new one: it stays.
        let later = Keys(mirror).transfer(0x12, 0x12);
        mirror = later.0;
        mirror.record_replaced(0x10, record);
        assert!(mirror.get(&layout().candidate(0x10)).is_none());
        assert!(mirror.get(&layout().transfer()).is_some());
        assert_eq!(mirror.get(&layout().record()).unwrap().lease, 0x11);
        // One put before the record is what the record's txn deleted.
        let mut mirror = Keys::new()
            .anchor()
            .candidate("old", 0x10)
            .candidate("b", 0x11)
            .transfer(0x11, 0x11)
            .record("b", 0x11)
            .0;
        let record = mirror.get(&layout().record()).unwrap().create_revision;
        mirror.record_replaced(0x10, record);
        assert!(mirror.get(&layout().transfer()).is_none());
        assert_eq!(mirror.key_count(), 3, "the anchor, b and the record");
    }

    #[test]
    fn the_next_is_the_eligible_candidate_of_highest_priority_then_the_oldest() {
        use crate::value::Candidacy;
        let unhealthy = Candidacy {
            priority: 50,
            healthy: false,
            ..Default::default()
        };
        let drained = Candidacy {
            priority: 40,
            drained: true,
            ..Default::default()
        };
        let keys = Keys::new()
            .anchor()
            .offering("low", 0x10, priority(0))
            .offering("sick", 0x11, unhealthy)
            .offering("away", 0x12, drained)
            .offering("mid", 0x13, priority(5))
            .offering("mid2", 0x14, priority(5));
        let a = keys.assess();
        assert_eq!(a.next.as_ref().unwrap().named.id, "mid");
        // Ineligible candidates stay listed, marked.
        assert_eq!(keys.succession().len(), 5);
        // Nobody eligible: nobody takes the record.
        let none = Keys::new()
            .anchor()
            .offering("sick", 0x11, unhealthy)
            .offering("away", 0x12, drained)
            .assess();
        assert!(none.next.is_none());
    }

    #[test]
    fn a_transfer_bound_to_its_target_makes_only_the_target_next() {
        let keys = Keys::new()
            .anchor()
            .offering("a", 0x10, priority(9))
            .candidate("b", 0x11)
            .candidate("c", 0x12)
            .transfer(0x12, 0x12);
        let a = keys.assess();
        assert_eq!(a.next.as_ref().unwrap().named.id, "c");
        assert!(matches!(
            a.step,
            Step::TakeRecord {
                transfer: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn a_transfer_record_not_ours_blocks_and_is_named() {
        let blocked = |keys: Keys, kind: Foreign| {
            let a = keys.assess();
            assert!(a.transfer.is_none());
            assert!(a.next.is_none(), "{:?}", a.next);
            assert_eq!(a.step, Step::Wait);
            assert!(
                matches!(
                    a.obstacle,
                    Some(Obstacle::ForeignKey { ref key, kind: k, .. })
                        if key == "/electd/leader/~transfer" && k == kind
                ),
                "{:?}",
                a.obstacle
            );
        };
        // Not bound to the lease it names (someone else wrote it).
        let forged = Keys::new()
            .anchor()
            .offering("a", 0x10, priority(9))
            .candidate("c", 0x12)
            .transfer(0x12, 0x10);
        blocked(forged, Foreign::Unbound);
        // Naming a lease nobody queues under.
        let gone = Keys::new()
            .anchor()
            .candidate("a", 0x10)
            .transfer(0x99, 0x99);
        blocked(gone, Foreign::Unbound);
        // Not a transfer at all.
        let garbage =
            Keys::new()
                .anchor()
                .candidate("a", 0x10)
                .put(&layout().transfer(), 0, b"garbage");
        blocked(garbage, Foreign::Value);
        // Gone: the election goes on.
        let clear = Keys::new().anchor().candidate("a", 0x10).assess();
        assert_eq!(clear.next.unwrap().named.id, "a");
    }
}

#[cfg(test)]
mod indexes {
    use super::*;
    use proptest::prelude::*;

    impl Mirror {
        /// Every index agrees with the keys, worked out again from scratch
        /// the way `assess` did before there were indexes.
        fn check(&self) {
            let mut queue: Vec<Candidate> = self
                .keys
                .iter()
                .filter_map(|(key, kv)| {
                    let lease = self.layout.candidate_lease(key)?;
                    let named = value::decode(&kv.value)?;
                    (lease == kv.lease).then(|| Candidate {
                        key: key.clone(),
                        lease,
                        create_revision: kv.create_revision,
                        named,
                    })
                })
                .collect();
            queue.sort_by_key(|c| c.create_revision);
            let indexed: Vec<Candidate> = self.queue().map(|c| (**c).clone()).collect();
            assert_eq!(indexed, queue);
            for c in &queue {
                assert_eq!(self.candidate(c.lease).map(|c| &**c), Some(c));
            }
            assert_eq!(self.by_lease.len(), queue.len());
            let best = queue
                .iter()
                .filter(|c| c.named.candidacy.eligible())
                .min_by_key(|c| (Reverse(c.named.candidacy.priority), c.create_revision));
            assert_eq!(self.ranked.values().next().map(|c| &**c), best);
            let mut ranked: Vec<&Candidate> = queue
                .iter()
                .filter(|c| c.named.candidacy.eligible())
                .collect();
            ranked.sort_by_key(|c| (Reverse(c.named.candidacy.priority), c.create_revision));
            let indexed: Vec<&Candidate> = self.ranked.values().map(|c| &**c).collect();
            assert_eq!(indexed, ranked);
            let record = self.layout.record();
            let oldest = self
                .keys
                .iter()
                .filter(|(key, _)| **key != record)
                .min_by_key(|(_, kv)| kv.create_revision);
            let indexed = self
                .by_age
                .iter()
                .find(|(_, key)| *key != record)
                .and_then(|(_, key)| self.keys.get_key_value(key));
            assert_eq!(indexed, oldest);
            assert_eq!(self.by_age.len(), self.keys.len());
            let old: Vec<_> = self
                .keys
                .iter()
                .filter(|(key, _)| self.layout.is_old_rule(key))
                .collect();
            assert_eq!(self.old_rule().collect::<Vec<_>>(), old);
            let mut leases: HashMap<i64, usize> = HashMap::new();
            for kv in self.keys.values().filter(|kv| kv.lease != 0) {
                *leases.entry(kv.lease).or_default() += 1;
            }
            assert_eq!(self.leases, leases);
        }
    }

    fn value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..8),
            (any::<bool>(), any::<bool>(), 0i64..3, 0usize..3).prop_map(
                |(healthy, drained, priority, id)| {
                    let candidacy = crate::value::Candidacy {
                        priority,
                        healthy,
                        drained,
                    };
                    let id = ["a", "b", "c"][id];
                    value::encode_candidate(id, "http://x", "n0nce", &candidacy).into_bytes()
                }
            ),
        ]
    }

    proptest! {
        /// Puts (new keys and rewrites) and deletes in any order leave the
        /// indexes as a fresh look at the keys would find them.
        #[test]
        fn the_indexes_follow_every_put_and_delete(
            ops in proptest::collection::vec(
                (
                    any::<bool>(),
                    proptest::sample::select(vec![
                        "~leader", "~anchor", "~transfer", "~c/10", "~c/11", "~c/12",
                        "~c/010", "10", "11", "zzz", "", "~~",
                    ]),
                    1i64..20,
                    proptest::sample::select(vec![0i64, 0x10, 0x11, 0x12, 7]),
                    value(),
                ),
                0..40,
            ),
        ) {
            let layout = Layout::new("leader");
            let mut mirror = Mirror::new(&layout);
            for (put, name, create_revision, lease, value) in ops {
                let key = [layout.prefix(), name.as_bytes()].concat();
                if put {
                    mirror.insert(key, Kv { create_revision, mod_revision: create_revision, lease, value });
                } else {
                    mirror.remove(&key);
                }
                mirror.check();
            }
            let _ = mirror.take_fresh();
        }
    }
}
