//! Every conditional write of the v3 election, in one place: what each
//! compares, and why. Safety rests on these guards (a node acts only
//! through a transaction whose compares hold what it relied on), so each is
//! built here as plain data with a unit test, and turned into etcd's `Txn`
//! only at the last step.
//!
//! A revoke (`conn.rs`) is the one write that is not here: it needs no
//! guard, since a lease id is never handed out twice.

use etcd_client::{Compare, CompareOp, DeleteOptions, PutOptions, Txn, TxnOp};

use super::keys::Layout;
use super::succession::Handing;

/// One compare of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Guard {
    /// The key does not exist (`create_revision == 0`).
    Absent(Vec<u8>),
    /// The key exists as created at this revision (not deleted and put
    /// again since).
    CreatedAt(Vec<u8>, i64),
    /// The key is unchanged since this revision (`mod_revision`).
    UnchangedSince(Vec<u8>, i64),
    /// The key is bound to this lease.
    BoundTo(Vec<u8>, i64),
    /// No key in `[from, to)` exists.
    NoneIn { from: Vec<u8>, to: Vec<u8> },
    /// No key in `[from, to)` was created after this revision.
    NoneCreatedAfter {
        from: Vec<u8>,
        to: Vec<u8>,
        revision: i64,
    },
    /// No key in `[from, to)` was created before this revision (the range
    /// must hold a key: etcd compares an empty one as a zero revision).
    NoneCreatedBefore {
        from: Vec<u8>,
        to: Vec<u8>,
        revision: i64,
    },
}

/// One write of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Write {
    /// Puts the value, bound to the lease when there is one.
    Put {
        key: Vec<u8>,
        value: String,
        lease: Option<i64>,
    },
    /// Deletes the key (nothing if absent).
    Delete(Vec<u8>),
    /// Deletes every key in `[from, to)`.
    DeleteRange { from: Vec<u8>, to: Vec<u8> },
}

/// A transaction: all of `guards` hold, then all of `writes` happen, in
/// one raft entry; otherwise nothing happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Conditional {
    pub guards: Vec<Guard>,
    pub writes: Vec<Write>,
}

impl Conditional {
    /// etcd's transaction for it (its failure branch is empty).
    pub(super) fn txn(&self) -> Txn {
        let compares: Vec<Compare> = self
            .guards
            .iter()
            .map(|guard| match guard {
                Guard::Absent(key) => Compare::create_revision(key.clone(), CompareOp::Equal, 0),
                Guard::CreatedAt(key, revision) => {
                    Compare::create_revision(key.clone(), CompareOp::Equal, *revision)
                }
                Guard::UnchangedSince(key, revision) => {
                    Compare::mod_revision(key.clone(), CompareOp::Equal, *revision)
                }
                Guard::BoundTo(key, lease) => Compare::lease(key.clone(), CompareOp::Equal, *lease),
                Guard::NoneIn { from, to } => {
                    Compare::create_revision(from.clone(), CompareOp::Equal, 0)
                        .with_range(to.clone())
                }
                // Every key in the range was created at `revision` or
                // before (an empty range compares a zero `create_revision`).
                Guard::NoneCreatedAfter { from, to, revision } => {
                    Compare::create_revision(from.clone(), CompareOp::Less, revision + 1)
                        .with_range(to.clone())
                }
                // Every key in the range was created at `revision` or
                // later: `create_revision > revision - 1` over the range.
                Guard::NoneCreatedBefore { from, to, revision } => {
                    Compare::create_revision(from.clone(), CompareOp::Greater, revision - 1)
                        .with_range(to.clone())
                }
            })
            .collect();
        let writes: Vec<TxnOp> = self
            .writes
            .iter()
            .map(|write| match write {
                Write::Put { key, value, lease } => TxnOp::put(
                    key.clone(),
                    value.clone(),
                    lease.map(|lease| PutOptions::new().with_lease(lease)),
                ),
                Write::Delete(key) => TxnOp::delete(key.clone(), None),
                Write::DeleteRange { from, to } => TxnOp::delete(
                    from.clone(),
                    Some(DeleteOptions::new().with_range(to.clone())),
                ),
            })
            .collect();
        Txn::new().when(compares).and_then(writes)
    }
}

/// Queues a candidate: its key `~c/<lease hex>`, bound to its lease.
/// Only while the key is absent: a lease is granted once, so an existing
/// key means something else wrote it, and it must not be overwritten.
pub(super) fn queue(layout: &Layout, lease: i64, value: String) -> Conditional {
    let key = layout.candidate(lease);
    Conditional {
        guards: vec![Guard::Absent(key.clone())],
        writes: vec![Write::Put {
            key,
            value,
            lease: Some(lease),
        }],
    }
}

/// Rewrites our candidate key in place with a new candidacy (health, drain,
/// priority). Only while it is the key we queued (same `create_revision`):
/// its place in the queue and its lease stay; a key gone and put again is
/// not ours to write.
pub(super) fn rewrite_candidacy(
    key: &[u8],
    create_revision: i64,
    lease: i64,
    value: String,
) -> Conditional {
    Conditional {
        guards: vec![Guard::CreatedAt(key.to_vec(), create_revision)],
        writes: vec![Write::Put {
            key: key.to_vec(),
            value,
            lease: Some(lease),
        }],
    }
}

/// Lays the anchor, without a lease, once no key of the old rule is left
/// (nothing under the prefix sorts before `~`) and nobody laid it first:
/// from then on the anchor is older than any old-rule key put later, so
/// etcd's election clients never lead here again.
pub(super) fn lay_anchor(layout: &Layout) -> Conditional {
    Conditional {
        guards: vec![
            Guard::NoneIn {
                from: layout.prefix().to_vec(),
                to: layout.old_rule_end(),
            },
            Guard::Absent(layout.anchor()),
        ],
        writes: vec![Write::Put {
            key: layout.anchor(),
            value: layout.anchor_value().to_owned(),
            lease: None,
        }],
    }
}

/// A history entry (`ledger.rs`): the leadership of `term`, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub term: i64,
    pub value: String,
}

impl Entry {
    fn put(&self, layout: &Layout) -> Write {
        // No lease: the history outlives every node's restart.
        Write::Put {
            key: layout.history_entry(self.term),
            value: self.value.clone(),
            lease: None,
        }
    }
}

/// What a candidate taking the record must still hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Taking {
    /// Our candidate key, as created.
    pub key: Vec<u8>,
    pub create_revision: i64,
    pub lease: i64,
    /// The anchor's `create_revision` as seen; `None` when there is none,
    /// and then our key must be the oldest under the prefix.
    pub anchor: Option<i64>,
    /// The transfer to us being consumed, at its `mod_revision`; `None`:
    /// there must be none.
    pub transfer: Option<i64>,
    /// With a transfer: the entry of the leadership that put it, which
    /// ended by handing over to us. Nobody else writes it: its holder
    /// writes one only when it withdrew the transfer, and then this
    /// transaction fails.
    pub predecessor: Option<Entry>,
}

/// Creates the leader record, bound to our lease: the term is this
/// transaction's revision.
///
/// * the record is absent: a record is only ever created, never taken
///   over, so terms grow whoever leads next;
/// * our candidate key is still the one we queued: a node dequeued (its
///   lease gone) cannot lead;
/// * the anchor is the one we saw, or without one our key is the oldest
///   under the prefix: an old-rule party (an etcd election client) leads
///   while its key is the oldest, so we may lead only where it cannot;
/// * no transfer exists, or it is the one to us we saw (consumed here):
///   nobody overtakes a named hand-over, and a late target whose transfer
///   was withdrawn fails;
///
/// and deletes the transfer and any preemption request: a hand-over,
/// asked for or not, answers both. Consuming a transfer, it writes the
/// history entry of the leadership that put it (no compare: history keys
/// decide nothing).
///
/// The oldest-key compare covers the election's range only: history
/// entries (no lease, older than any candidate) are nobody's claim, and an
/// old-rule party waits behind them as it waits behind the anchor.
pub(super) fn take_record(layout: &Layout, taking: &Taking, value: String) -> Conditional {
    let (from, to) = layout.election_range();
    let oldest = match taking.anchor {
        Some(revision) => Guard::CreatedAt(layout.anchor(), revision),
        // The range holds our own key, so it is never empty.
        None => Guard::NoneCreatedBefore {
            from,
            to,
            revision: taking.create_revision,
        },
    };
    let handover = match taking.transfer {
        Some(revision) => Guard::UnchangedSince(layout.transfer(), revision),
        None => Guard::Absent(layout.transfer()),
    };
    Conditional {
        guards: vec![
            Guard::Absent(layout.record()),
            Guard::CreatedAt(taking.key.clone(), taking.create_revision),
            oldest,
            handover,
        ],
        writes: [
            Write::Put {
                key: layout.record(),
                value,
                lease: Some(taking.lease),
            },
            Write::Delete(layout.transfer()),
            Write::Delete(layout.preempt()),
        ]
        .into_iter()
        .chain(taking.predecessor.iter().map(|entry| entry.put(layout)))
        .collect(),
    }
}

/// Hands the record over in the write that ends the departing leadership:
/// one raft entry between the departing leader's last act and its
/// successor's first. The term of the new leadership is this write's
/// revision (the record's `mod_revision`), so terms grow as when the
/// successor creates the record.
///
/// * the record is unchanged since read and still bound to the departing
///   lease: nobody else handed it on or took it since (a guardian never
///   hands on a record its electd already handed on);
/// * the successor's key is unchanged since read: a candidate that left,
///   or rewrote its candidacy (a drain, a health verdict, a priority)
///   since, is not handed a record on an old reading;
/// * the anchor is the one read: with the old rule's keys back, only the
///   oldest key may lead, and etcd's election clients must see that;
/// * no transfer stands: a named hand-over is never overtaken;
/// * no candidate queued since read: one of an earlier release (which
///   must never be handed a record) the departing node has not seen yet
///   would read the record replaced in place as the old term, and a
///   candidate of a higher priority would be passed over;
///
/// and it deletes what the departing lease's revoke would have deleted
/// (its candidate key) and what a new record answers (a transfer, a
/// preemption request), so that the quiet queue's accounting of a new
/// record stays exact and the revoke after it deletes nothing; and it
/// writes the history entry of the leadership it ends (`ended`, of the
/// term `handing.record`), compared by nothing: the entry costs no write of
/// its own, and no history key decides who leads.
pub(super) fn hand_record(
    layout: &Layout,
    handing: &Handing,
    value: String,
    ended: String,
) -> Conditional {
    let ended = Entry {
        term: handing.record,
        value: ended,
    };
    let (queue_start, queue_end) = layout.queue_range();
    Conditional {
        guards: vec![
            Guard::UnchangedSince(layout.record(), handing.record),
            Guard::BoundTo(layout.record(), handing.from),
            Guard::UnchangedSince(handing.to.key.clone(), handing.to.mod_revision),
            Guard::CreatedAt(layout.anchor(), handing.anchor),
            Guard::Absent(layout.transfer()),
            Guard::NoneCreatedAfter {
                from: queue_start,
                to: queue_end,
                revision: handing.read_at,
            },
        ],
        writes: vec![
            Write::Put {
                key: layout.record(),
                value,
                lease: Some(handing.to.lease),
            },
            Write::Delete(layout.candidate(handing.from)),
            Write::Delete(layout.transfer()),
            Write::Delete(layout.preempt()),
            ended.put(layout),
        ],
    }
}

/// Writes a history entry only while none stands for its term: what is
/// learnt after the fact (a release by a revoke, a withdrawn transfer, a
/// guardian's revoke, a successor's guess at an expiry). The first to
/// write it wins, and those who know best write first: the holder or its
/// guardian within moments of the revoke, a successor only a while after
/// it leads. An entry written in a hand-over's transaction is never
/// overwritten by one of these.
pub(super) fn record_entry(layout: &Layout, entry: &Entry) -> Conditional {
    Conditional {
        guards: vec![Guard::Absent(layout.history_entry(entry.term))],
        writes: vec![entry.put(layout)],
    }
}

/// Deletes the history's oldest keys, `[start of the history, through]`:
/// the leader keeping it to its size. Unguarded: an entry decides nothing,
/// and the keys below the cutoff are older than every entry kept.
pub(super) fn trim_history(layout: &Layout, through: &[u8]) -> Conditional {
    let (from, _) = layout.history_range();
    // Just past `through`: the range's end is exclusive.
    let to = [through, &[0]].concat();
    Conditional {
        guards: vec![],
        writes: vec![Write::DeleteRange { from, to }],
    }
}

/// Puts a named hand-over, bound to the **target's** lease (so it goes if
/// the target dies):
///
/// * the record is still bound to the leader's lease: only the leader
///   names its successor;
/// * no transfer exists: one hand-over at a time;
/// * the target's key is the one the leader checked: a target that left
///   and queued again is a new candidacy, to be checked again.
pub(super) fn put_transfer(
    layout: &Layout,
    leader_lease: i64,
    target_key: &[u8],
    target_create_revision: i64,
    target_lease: i64,
    value: String,
) -> Conditional {
    Conditional {
        guards: vec![
            Guard::BoundTo(layout.record(), leader_lease),
            Guard::Absent(layout.transfer()),
            Guard::CreatedAt(target_key.to_vec(), target_create_revision),
        ],
        writes: vec![Write::Put {
            key: layout.transfer(),
            value,
            lease: Some(target_lease),
        }],
    }
}

/// Asks the leader to hand over (`--preempt`): a request bound to our own
/// lease, put only while none stands, so one request at a time.
pub(super) fn ask_to_lead(layout: &Layout, lease: i64, value: String) -> Conditional {
    Conditional {
        guards: vec![Guard::Absent(layout.preempt())],
        writes: vec![Write::Put {
            key: layout.preempt(),
            value,
            lease: Some(lease),
        }],
    }
}

/// Deletes `key` only if nobody wrote it since `mod_revision`: a transfer
/// consumed, withdrawn or declined exactly once, a request withdrawn only
/// while it is the one we saw.
/// Takes absent shard records for `lease`: each record still absent, and
/// our candidate key still bound to our lease (a node whose key is gone
/// is no candidate: a take then would lead for a node nobody can see).
pub(super) fn take_shards(
    layout: &Layout,
    shards: &[u32],
    candidate_key: &[u8],
    lease: i64,
    value: &str,
) -> Conditional {
    let mut guards = vec![Guard::BoundTo(candidate_key.to_vec(), lease)];
    guards.extend(shards.iter().map(|&k| Guard::Absent(layout.shard(k))));
    Conditional {
        guards,
        writes: shards
            .iter()
            .map(|&k| Write::Put {
                key: layout.shard(k),
                value: value.to_owned(),
                lease: Some(lease),
            })
            .collect(),
    }
}

/// Hands shard records held by `from` to the candidate whose key is
/// `to_key`: each record unchanged since read (its `mod_revision`) and
/// still bound to `from`, and the successor's candidate key unchanged
/// since read (a drain or a health verdict written since fails it).
pub(super) fn hand_shards(
    layout: &Layout,
    shards: &[(u32, i64)],
    from: i64,
    to_key: &[u8],
    to_key_revision: i64,
    to: i64,
    value: &str,
) -> Conditional {
    let mut moved = rewrite_shards(layout, shards, from, to, value);
    moved
        .guards
        .insert(0, Guard::UnchangedSince(to_key.to_vec(), to_key_revision));
    moved
}

/// Writes our own shard records again, each unchanged since read and
/// bound to our lease: their terms become this write's revision.
pub(super) fn refresh_shards(
    layout: &Layout,
    shards: &[(u32, i64)],
    lease: i64,
    value: &str,
) -> Conditional {
    rewrite_shards(layout, shards, lease, lease, value)
}

/// Puts `value` bound to `to` over each shard record, each compared
/// unchanged since read (its `mod_revision`) and bound to `from`.
fn rewrite_shards(
    layout: &Layout,
    shards: &[(u32, i64)],
    from: i64,
    to: i64,
    value: &str,
) -> Conditional {
    let mut guards = Vec::new();
    for &(k, revision) in shards {
        guards.push(Guard::UnchangedSince(layout.shard(k), revision));
        guards.push(Guard::BoundTo(layout.shard(k), from));
    }
    Conditional {
        guards,
        writes: shards
            .iter()
            .map(|&(k, _)| Write::Put {
                key: layout.shard(k),
                value: value.to_owned(),
                lease: Some(to),
            })
            .collect(),
    }
}

pub(super) fn delete_unchanged(key: Vec<u8>, mod_revision: i64) -> Conditional {
    Conditional {
        guards: vec![Guard::UnchangedSince(key.clone(), mod_revision)],
        writes: vec![Write::Delete(key)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new("leader")
    }

    fn taking(anchor: Option<i64>, transfer: Option<i64>) -> Taking {
        Taking {
            key: layout().candidate(0x10),
            create_revision: 7,
            lease: 0x10,
            anchor,
            transfer,
            predecessor: None,
        }
    }

    fn entry(term: i64) -> Entry {
        Entry {
            term,
            value: "e".into(),
        }
    }

    #[test]
    fn a_shard_is_taken_only_absent_and_by_a_queued_candidate() {
        let me = layout().candidate(0x10);
        let t = take_shards(&layout(), &[3, 4], &me, 0x10, "v");
        assert_eq!(
            t.guards,
            vec![
                Guard::BoundTo(me, 0x10),
                Guard::Absent(layout().shard(3)),
                Guard::Absent(layout().shard(4)),
            ]
        );
        assert!(t.writes.iter().all(|w| matches!(
            w,
            Write::Put {
                lease: Some(0x10),
                ..
            }
        )));
        assert_eq!(t.writes.len(), 2);
    }

    #[test]
    fn a_shard_is_handed_on_only_as_read_by_its_holder_to_a_successor_as_read() {
        let to = layout().candidate(0x20);
        let t = hand_shards(&layout(), &[(3, 30), (4, 40)], 0x10, &to, 9, 0x20, "v");
        assert_eq!(
            t.guards,
            vec![
                Guard::UnchangedSince(to, 9),
                Guard::UnchangedSince(layout().shard(3), 30),
                Guard::BoundTo(layout().shard(3), 0x10),
                Guard::UnchangedSince(layout().shard(4), 40),
                Guard::BoundTo(layout().shard(4), 0x10),
            ]
        );
        assert!(t.writes.iter().all(|w| matches!(
            w,
            Write::Put {
                lease: Some(0x20),
                ..
            }
        )));
        let r = refresh_shards(&layout(), &[(3, 30)], 0x10, "v");
        assert_eq!(
            r.guards,
            vec![
                Guard::UnchangedSince(layout().shard(3), 30),
                Guard::BoundTo(layout().shard(3), 0x10),
            ]
        );
    }

    #[test]
    fn queueing_never_overwrites_a_key() {
        let t = queue(&layout(), 0x10, "v".into());
        assert_eq!(t.guards, vec![Guard::Absent(layout().candidate(0x10))]);
        assert_eq!(
            t.writes,
            vec![Write::Put {
                key: layout().candidate(0x10),
                value: "v".into(),
                lease: Some(0x10),
            }]
        );
    }

    #[test]
    fn a_candidacy_is_rewritten_only_in_the_key_we_queued() {
        let key = layout().candidate(0x10);
        let t = rewrite_candidacy(&key, 7, 0x10, "v".into());
        assert_eq!(t.guards, vec![Guard::CreatedAt(key.clone(), 7)]);
        assert!(
            matches!(&t.writes[..], [Write::Put { key: k, lease: Some(0x10), .. }] if *k == key)
        );
    }

    #[test]
    fn the_anchor_is_laid_once_and_only_without_old_rule_keys() {
        let t = lay_anchor(&layout());
        assert!(t.guards.contains(&Guard::NoneIn {
            from: b"/electd/leader/".to_vec(),
            to: b"/electd/leader/~".to_vec(),
        }));
        assert!(t.guards.contains(&Guard::Absent(layout().anchor())));
        assert!(matches!(&t.writes[..], [Write::Put { lease: None, .. }]));
    }

    #[test]
    fn the_record_is_only_ever_created() {
        let t = take_record(&layout(), &taking(Some(3), None), "r".into());
        assert_eq!(t.guards[0], Guard::Absent(layout().record()));
        assert!(
            matches!(&t.writes[0], Write::Put { key, lease: Some(0x10), .. } if *key == layout().record())
        );
    }

    #[test]
    fn a_dequeued_candidate_cannot_take_the_record() {
        let t = take_record(&layout(), &taking(Some(3), None), "r".into());
        assert!(
            t.guards
                .contains(&Guard::CreatedAt(layout().candidate(0x10), 7))
        );
    }

    #[test]
    fn with_the_anchor_it_must_be_the_one_seen_and_without_our_key_the_oldest() {
        let anchored = take_record(&layout(), &taking(Some(3), None), "r".into());
        assert!(
            anchored
                .guards
                .contains(&Guard::CreatedAt(layout().anchor(), 3))
        );
        let old_rule = take_record(&layout(), &taking(None, None), "r".into());
        assert!(old_rule.guards.contains(&Guard::NoneCreatedBefore {
            from: b"/electd/leader/".to_vec(),
            to: b"/electd/leader/~~history/".to_vec(),
            revision: 7,
        }));
    }

    #[test]
    fn no_take_compares_a_history_key() {
        let (history, _) = layout().history_range();
        for t in [
            take_record(&layout(), &taking(Some(3), None), "r".into()),
            take_record(&layout(), &taking(None, None), "r".into()),
            hand_record(&layout(), &handing(), "r".into(), "e".into()),
        ] {
            for guard in &t.guards {
                let keys = match guard {
                    Guard::Absent(key)
                    | Guard::CreatedAt(key, _)
                    | Guard::UnchangedSince(key, _)
                    | Guard::BoundTo(key, _) => vec![key.clone(), key.clone()],
                    Guard::NoneIn { from, to }
                    | Guard::NoneCreatedAfter { from, to, .. }
                    | Guard::NoneCreatedBefore { from, to, .. } => vec![from.clone(), to.clone()],
                };
                // Single keys sort before the history; a range ends at its start.
                assert!(keys[0] < history && keys[1] <= history, "{guard:?}");
            }
        }
    }

    #[test]
    fn a_target_consuming_a_transfer_writes_the_entry_of_the_leadership_that_put_it() {
        let mut to_us = taking(Some(3), Some(9));
        to_us.predecessor = Some(entry(8));
        let t = take_record(&layout(), &to_us, "r".into());
        assert!(t.writes.contains(&Write::Put {
            key: layout().history_entry(8),
            value: "e".into(),
            lease: None,
        }));
        assert_eq!(t.guards.len(), 4, "no compare of its own");
        let plain = take_record(&layout(), &taking(Some(3), None), "r".into());
        assert_eq!(plain.writes.len(), 3, "no entry without a transfer");
    }

    #[test]
    fn nobody_overtakes_a_transfer_and_its_target_consumes_the_one_it_saw() {
        let none = take_record(&layout(), &taking(Some(3), None), "r".into());
        assert!(none.guards.contains(&Guard::Absent(layout().transfer())));
        let to_us = take_record(&layout(), &taking(Some(3), Some(9)), "r".into());
        assert!(
            to_us
                .guards
                .contains(&Guard::UnchangedSince(layout().transfer(), 9))
        );
        for t in [none, to_us] {
            assert!(t.writes.contains(&Write::Delete(layout().transfer())));
            assert!(t.writes.contains(&Write::Delete(layout().preempt())));
        }
    }

    fn handing() -> Handing {
        let named = crate::value::decode(
            crate::value::encode_candidate("b", "http://b", "n", &Default::default()).as_bytes(),
        )
        .expect("our value");
        Handing {
            from: 0x10,
            record: 12,
            anchor: 3,
            read_at: 14,
            to: std::sync::Arc::new(super::super::mirror::Queued {
                key: layout().candidate(0x20),
                lease: 0x20,
                create_revision: 8,
                mod_revision: 11,
                named: named.clone(),
            }),
            departing: named,
        }
    }

    #[test]
    fn a_record_is_handed_on_only_as_read_and_bound_to_the_departing_lease() {
        let t = hand_record(&layout(), &handing(), "r".into(), "e".into());
        assert!(
            t.guards
                .contains(&Guard::UnchangedSince(layout().record(), 12))
        );
        assert!(t.guards.contains(&Guard::BoundTo(layout().record(), 0x10)));
    }

    #[test]
    fn a_successor_that_changed_since_read_is_not_handed_the_record() {
        let t = hand_record(&layout(), &handing(), "r".into(), "e".into());
        assert!(
            t.guards
                .contains(&Guard::UnchangedSince(layout().candidate(0x20), 11))
        );
    }

    #[test]
    fn a_hand_over_fails_once_anyone_queued_since_read() {
        let t = hand_record(&layout(), &handing(), "r".into(), "e".into());
        assert!(t.guards.contains(&Guard::NoneCreatedAfter {
            from: b"/electd/leader/~c/".to_vec(),
            to: b"/electd/leader/~c0".to_vec(),
            revision: 14,
        }));
    }

    #[test]
    fn a_hand_over_needs_the_anchor_as_read_and_no_transfer() {
        let t = hand_record(&layout(), &handing(), "r".into(), "e".into());
        assert!(t.guards.contains(&Guard::CreatedAt(layout().anchor(), 3)));
        assert!(t.guards.contains(&Guard::Absent(layout().transfer())));
    }

    #[test]
    fn a_hand_over_binds_the_record_to_the_successor_and_deletes_what_a_revoke_would() {
        let t = hand_record(&layout(), &handing(), "r".into(), "e".into());
        assert_eq!(
            t.writes,
            vec![
                Write::Put {
                    key: layout().record(),
                    value: "r".into(),
                    lease: Some(0x20),
                },
                Write::Delete(layout().candidate(0x10)),
                Write::Delete(layout().transfer()),
                Write::Delete(layout().preempt()),
                // The entry of the leadership it ends, the record's term.
                Write::Put {
                    key: layout().history_entry(12),
                    value: "e".into(),
                    lease: None,
                },
            ]
        );
    }

    #[test]
    fn an_entry_learnt_after_the_fact_never_overwrites_one() {
        let t = record_entry(&layout(), &entry(12));
        assert_eq!(t.guards, vec![Guard::Absent(layout().history_entry(12))]);
        assert_eq!(
            t.writes,
            vec![Write::Put {
                key: layout().history_entry(12),
                value: "e".into(),
                lease: None,
            }]
        );
    }

    #[test]
    fn trimming_deletes_the_oldest_entries_through_the_cutoff() {
        let cutoff = layout().history_entry(40);
        let t = trim_history(&layout(), &cutoff);
        assert!(t.guards.is_empty());
        let [Write::DeleteRange { from, to }] = &t.writes[..] else {
            panic!("{:?}", t.writes);
        };
        assert_eq!(*from, b"/electd/leader/~~history/");
        assert!(*from <= layout().history_entry(1) && cutoff < *to);
        assert!(*to <= layout().history_entry(41));
    }

    #[test]
    fn only_the_leader_names_a_successor_and_binds_it_to_the_targets_lease() {
        let target = layout().candidate(0x20);
        let t = put_transfer(&layout(), 0x10, &target, 8, 0x20, "t".into());
        assert_eq!(
            t.guards,
            vec![
                Guard::BoundTo(layout().record(), 0x10),
                Guard::Absent(layout().transfer()),
                Guard::CreatedAt(target, 8),
            ]
        );
        assert!(matches!(
            &t.writes[..],
            [Write::Put {
                lease: Some(0x20),
                ..
            }]
        ));
    }

    #[test]
    fn one_request_to_lead_at_a_time_bound_to_the_asker() {
        let t = ask_to_lead(&layout(), 0x30, "p".into());
        assert_eq!(t.guards, vec![Guard::Absent(layout().preempt())]);
        assert!(matches!(
            &t.writes[..],
            [Write::Put {
                lease: Some(0x30),
                ..
            }]
        ));
    }

    #[test]
    fn a_record_is_consumed_withdrawn_or_declined_exactly_once() {
        let t = delete_unchanged(layout().transfer(), 9);
        assert_eq!(
            t.guards,
            vec![Guard::UnchangedSince(layout().transfer(), 9)]
        );
        assert_eq!(t.writes, vec![Write::Delete(layout().transfer())]);
    }

    #[test]
    fn every_conditional_becomes_a_transaction() {
        // The conversion panics on nothing and keeps every compare.
        let all = [
            queue(&layout(), 1, String::new()),
            lay_anchor(&layout()),
            take_record(&layout(), &taking(None, Some(2)), String::new()),
            hand_record(&layout(), &handing(), String::new(), String::new()),
            record_entry(&layout(), &entry(2)),
            trim_history(&layout(), &layout().history_entry(2)),
        ];
        for t in all {
            let _ = t.txn();
        }
    }
}
