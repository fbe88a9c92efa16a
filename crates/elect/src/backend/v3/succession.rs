//! The succession rules: what a snapshot of the keys means, and whose
//! turn it is. Pure: no I/O, so every rule here has a unit test.
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

use std::sync::Arc;

use super::keys::{Layout, lease_named};
use super::mirror::{Kv, Mirror, Queued};
use crate::api::Api;
use crate::backend::Handover;
use crate::status::{Candidate, Expiry, Foreign, Leader, Obstacle};
use crate::value::{self, Named};

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
    /// The leadership that handed over, for the history entry the target
    /// writes as it consumes the transfer (absent in transfers of earlier
    /// releases: then nobody writes it in that transaction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Departing>,
}

/// A leadership handing over by a transfer record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Departing {
    pub term: i64,
    pub advertise: String,
    /// When it was made (its record's `since_ms`).
    pub since_ms: Option<u64>,
    /// When it stepped down, by its holder's clock (Unix ms).
    pub ended_ms: Option<u64>,
}

/// A transfer in progress, as the keys show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Transfer {
    pub target: Arc<Queued>,
    pub mod_revision: i64,
    pub reason: Handover,
    /// Who handed over (`by`), and the leadership it ended, when the
    /// transfer says.
    pub by: String,
    pub from: Option<Departing>,
}

/// A candidate asking the leader to hand over to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Preempt {
    pub by: Arc<Queued>,
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
    /// leads (see `predecessors.rs`).
    pub leading: Option<Leading>,
    /// A key electd did not write that blocks the election.
    pub obstacle: Option<Obstacle>,
    pub step: Step,
    /// Who may take the step: the transfer's target, or the eligible
    /// candidate of the highest priority (the oldest among equals); with no
    /// anchor the owner of the oldest key, if eligible.
    pub next: Option<Arc<Queued>>,
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
    pub(super) fn succession(&self, mirror: &Mirror) -> Vec<Candidate> {
        let leader_lease = self.writer.as_ref().map(|(_, lease)| *lease);
        let offer = |lease: Option<i64>| {
            lease
                .and_then(|lease| mirror.candidate(lease))
                .map(|c| c.named.candidacy)
        };
        let mut order: Vec<Candidate> = self
            .leader
            .iter()
            .map(|l| Candidate::leader(l, offer(leader_lease)))
            .collect();
        let eligible = mirror.ranked();
        let others = mirror.queue().filter(|c| !c.named.candidacy.eligible());
        order.extend(
            eligible
                .chain(others)
                .filter(|c| Some(c.lease) != leader_lease)
                .map(|c| Candidate {
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
    let oldest = mirror.oldest_except(&record_key);
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
        Some((key, kv)) => match mirror.queued(kv.create_revision, key) {
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

/// A hand-over in one write: the record, bound to the departing lease, goes
/// to `to` in the transaction that ends the departing leadership
/// (`txn::hand_record`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Handing {
    /// The departing leader's lease, which the record is bound to now.
    pub from: i64,
    /// The record's `mod_revision` as read: unchanged, or no hand-over.
    pub record: i64,
    /// The anchor's `create_revision` as read.
    pub anchor: i64,
    /// The revision the keys were read at: a candidate queued after it
    /// (unseen, perhaps of an earlier release) fails the write.
    pub read_at: i64,
    /// The successor, its key as read (its `mod_revision`: a candidacy
    /// rewritten since, a drain or a health verdict, fails the write).
    pub to: Arc<Queued>,
    /// The departing record's value: whose leadership ends, for its
    /// history entry.
    pub departing: Named,
}

/// Whether the record may be handed from `from` in one write, and to whom:
/// `to` (a candidate that asked, by its lease), or else the one whose turn
/// it would be once `from` is gone. `None` means today's way: release, and
/// the successor takes the record itself. That is so unless the record is
/// bound to `from` and trusted, the anchor is laid (without it only the
/// oldest key may lead, as etcd's election clients believe), no transfer
/// stands, the successor is eligible and not `from`, and every queued
/// candidate may be handed a record (a node of an earlier release would
/// read a record handed over in place as the old leadership's term).
pub(super) fn handing(
    layout: &Layout,
    mirror: &Mirror,
    from: i64,
    to: Option<i64>,
) -> Option<Handing> {
    let assessment = assess(layout, mirror);
    let record = mirror.get(&layout.record())?;
    if assessment.writer.as_ref().map(|(_, lease)| *lease) != Some(from)
        || !assessment.anchored
        || assessment.transfer.is_some()
        || mirror.get(&layout.transfer()).is_some()
        || !mirror.all_accept_records()
    {
        return None;
    }
    let successor = match to {
        Some(lease) => mirror.candidate(lease).cloned(),
        None => mirror.runner_up(from).cloned(),
    }?;
    if successor.lease == from || !successor.named.candidacy.eligible() {
        return None;
    }
    Some(Handing {
        from,
        record: record.mod_revision,
        anchor: mirror.get(&layout.anchor())?.create_revision,
        read_at: mirror.revision,
        to: successor,
        departing: value::decode(&record.value)?,
    })
}

/// Whose turn it is with the anchor laid: the transfer's target, else the
/// eligible candidate of the highest priority, the oldest among equals.
fn best(mirror: &Mirror, transfer: Option<&Transfer>) -> Option<Arc<Queued>> {
    if let Some(transfer) = transfer {
        return Some(transfer.target.clone());
    }
    mirror.ranked().next().cloned()
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
        by: value.by,
        from: value.from,
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
///
/// Its term is its `mod_revision`: the revision of the transaction that
/// made this leadership, whether a candidate created the record or its
/// predecessor handed it over in place (`hand_record`), so terms grow with
/// every leadership. A record is never rewritten during a leadership.
fn record_leader(layout: &Layout, kv: &Kv, assessment: &mut Assessment) {
    assessment.next = None;
    let term = revision_u64(kv.mod_revision);
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
                from: None,
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
            self.put(&layout().anchor(), 0, layout().anchor_value().as_bytes())
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

    /// A transfer carries the leadership it ends, for its target's history
    /// entry; one of an earlier release, without it, is a transfer all the
    /// same, and an earlier release reads this one's (serde ignores what it
    /// does not know).
    #[test]
    fn a_transfer_of_either_release_reads_as_one() {
        let earlier = r#"{"to":"12","by":"a","reason":"transfer"}"#;
        let keys = Keys::new()
            .anchor()
            .candidate("a", 0x10)
            .candidate("c", 0x12)
            .put(&layout().transfer(), 0x12, earlier.as_bytes());
        let transfer = keys.assess().transfer.expect("a transfer");
        assert_eq!((transfer.by.as_str(), transfer.from), ("a", None));
        let from = Departing {
            term: 7,
            advertise: "http://a".into(),
            since_ms: Some(1),
            ended_ms: Some(2),
        };
        let now = serde_json::to_string(&TransferValue {
            to: "12".into(),
            by: "a".into(),
            reason: Handover::Preempted,
            from: Some(from.clone()),
        })
        .unwrap();
        let keys = Keys::new()
            .anchor()
            .candidate("a", 0x10)
            .candidate("c", 0x12)
            .put(&layout().transfer(), 0x12, now.as_bytes());
        assert_eq!(keys.assess().transfer.expect("a transfer").from, Some(from));
        #[derive(serde::Deserialize)]
        struct EarlierRelease {
            to: String,
            by: String,
            reason: Handover,
        }
        let read: EarlierRelease = serde_json::from_str(&now).expect("read by 0.2.x");
        assert_eq!((read.to, read.by), ("12".into(), "a".into()));
        assert_eq!(read.reason, Handover::Preempted);
    }

    fn healthy() -> crate::value::Candidacy {
        crate::value::Candidacy::default()
    }

    fn unhealthy() -> crate::value::Candidacy {
        crate::value::Candidacy {
            healthy: false,
            ..Default::default()
        }
    }

    /// a leads (its record bound to 0x10) over b and c, all of this release.
    fn led_by_a() -> Keys {
        Keys::new()
            .anchor()
            .offering("a", 0x10, healthy())
            .offering("b", 0x11, healthy())
            .offering("c", 0x12, healthy())
            .record("a", 0x10)
    }

    fn handed_to(keys: &Keys, to: Option<i64>) -> Option<String> {
        handing(&layout(), &keys.0, 0x10, to).map(|h| h.to.named.id.clone())
    }

    #[test]
    fn the_record_is_handed_to_whose_turn_it_would_be() {
        let keys = led_by_a();
        let handed = handing(&layout(), &keys.0, 0x10, None).expect("a hand-over");
        assert_eq!(handed.to.named.id, "b");
        assert_eq!(
            handed.record,
            keys.0.get(&layout().record()).unwrap().mod_revision
        );
        assert_eq!(
            handed.anchor,
            keys.0.get(&layout().anchor()).unwrap().create_revision
        );
        // The next eligible one, by priority then age.
        let b_unwell = Keys::new()
            .anchor()
            .offering("a", 0x10, healthy())
            .offering("b", 0x11, unhealthy())
            .offering("c", 0x12, healthy())
            .record("a", 0x10);
        assert_eq!(handed_to(&b_unwell, None).as_deref(), Some("c"));
        // A named successor (a preemption) only if eligible.
        assert_eq!(handed_to(&led_by_a(), Some(0x12)).as_deref(), Some("c"));
        assert_eq!(handed_to(&b_unwell, Some(0x11)), None);
    }

    #[test]
    fn only_the_record_holder_hands_it_on() {
        assert_eq!(handing(&layout(), &led_by_a().0, 0x11, None), None);
        assert_eq!(handed_to(&led_by_a(), Some(0x10)), None, "not to itself");
    }

    #[test]
    fn without_the_anchor_or_with_a_transfer_nobody_is_handed_the_record() {
        let no_anchor = Keys::new()
            .offering("a", 0x10, healthy())
            .offering("b", 0x11, healthy())
            .record("a", 0x10);
        assert_eq!(handed_to(&no_anchor, None), None);
        assert_eq!(handed_to(&led_by_a().transfer(0x12, 0x12), None), None);
    }

    #[test]
    fn with_a_node_of_an_earlier_release_queued_nobody_is_handed_the_record() {
        let keys = led_by_a().candidate("old", 0x13);
        assert_eq!(handed_to(&keys, None), None);
        let nobody_else = Keys::new()
            .anchor()
            .offering("a", 0x10, healthy())
            .offering("b", 0x11, unhealthy())
            .record("a", 0x10);
        assert_eq!(handed_to(&nobody_else, None), None);
    }

    #[test]
    fn the_term_is_the_records_last_write() {
        let keys = led_by_a();
        let record = keys.0.get(&layout().record()).unwrap().clone();
        let term = keys.assess().leader.unwrap().term;
        assert_eq!(term, revision_u64(record.mod_revision));
        // Handed over in place: the same key, a new revision, a larger term.
        let mut handed = keys;
        handed.0.revision += 1;
        let value = value::encode_record("b", "http://b", "n0nce", 0x11, &healthy());
        handed.0.insert(
            layout().record(),
            Kv {
                create_revision: record.create_revision,
                mod_revision: handed.0.revision,
                lease: 0x11,
                value: value.into_bytes(),
            },
        );
        let leader = handed.assess().leader.unwrap();
        assert_eq!(leader.id.as_deref(), Some("b"));
        assert!(leader.term > term);
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
