//! The mirror: every key of the election as one watch shows it, indexed
//! as it changes (the queue by age, by lease and by rank; each value
//! decoded once). Pure: no I/O.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use super::keys::Layout;
use crate::value::{self, Named};

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
    queue: BTreeMap<(i64, Vec<u8>), Arc<Queued>>,
    /// The queue by lease (a candidate key names its lease: one each).
    by_lease: HashMap<i64, Arc<Queued>>,
    /// The eligible candidates in the order they would be chosen: the
    /// highest priority first, the oldest among equals.
    ranked: BTreeMap<(Reverse<i64>, i64, Vec<u8>), Arc<Queued>>,
    /// Candidates put since [`Mirror::take_fresh`] last looked.
    fresh: Vec<Arc<Queued>>,
    /// How many keys each lease holds.
    leases: HashMap<i64, usize>,
    /// How many queued candidates cannot be handed a record (nodes of an
    /// earlier release): while any is queued, nobody is.
    refusing: usize,
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
            refusing: 0,
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
            let candidate = Arc::new(Queued {
                key: key.clone(),
                lease,
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
                named,
            });
            if !candidate.named.accepts_record {
                self.refusing += 1;
            }
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
            if !candidate.named.accepts_record {
                self.refusing -= 1;
            }
            self.by_lease.remove(&candidate.lease);
            if let Some(rank) = rank(&candidate) {
                self.ranked.remove(&rank);
            }
        }
        self.by_age.remove(&aged);
        Some(kv)
    }

    /// A new leader record, written at `revision` by electd's txn, which
    /// deletes the transfer and preemption records put before it; and the
    /// lease `old` of the record before it ended, taking its keys with it
    /// (or handed the record over, deleting its candidate key).
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

    /// Whether every queued candidate may be handed a record.
    pub(super) fn all_accept_records(&self) -> bool {
        self.refusing == 0
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
    pub(super) fn queue(&self) -> impl Iterator<Item = &Arc<Queued>> {
        self.queue.values()
    }

    /// The queued candidate with this lease.
    pub(super) fn candidate(&self, lease: i64) -> Option<&Arc<Queued>> {
        self.by_lease.get(&lease)
    }

    /// The eligible candidate first in line after the one with `lease`
    /// (the leader's): who would be next if it went.
    pub(super) fn runner_up(&self, lease: i64) -> Option<&Arc<Queued>> {
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
    pub(super) fn take_fresh(&mut self) -> Vec<Arc<Queued>> {
        std::mem::take(&mut self.fresh)
    }

    /// The oldest key but `except` (the first in key order among equals).
    pub(super) fn oldest_except(&self, except: &[u8]) -> Option<(&Vec<u8>, &Kv)> {
        self.by_age
            .iter()
            .find(|(_, key)| key.as_slice() != except)
            .and_then(|(_, key)| self.keys.get_key_value(key))
    }

    /// The queued candidate whose key this is, put at `create_revision`.
    pub(super) fn queued(&self, create_revision: i64, key: &[u8]) -> Option<&Arc<Queued>> {
        self.queue.get(&(create_revision, key.to_vec()))
    }

    /// The eligible candidates in the order they would be chosen: the
    /// highest priority first, the oldest among equals.
    pub(super) fn ranked(&self) -> impl Iterator<Item = &Arc<Queued>> {
        self.ranked.values()
    }

    /// The old rule's keys: those under the prefix that sort before `~`.
    pub(super) fn old_rule(&self) -> impl Iterator<Item = (&Vec<u8>, &Kv)> {
        let start = self.layout.prefix();
        let end = self.layout.old_rule_end();
        self.keys
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end.as_slice())))
    }
}

/// Where an eligible candidate ranks (`None`: it may not lead now).
fn rank(candidate: &Queued) -> Option<(Reverse<i64>, i64, Vec<u8>)> {
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
pub(super) struct Queued {
    pub key: Vec<u8>,
    pub lease: i64,
    pub create_revision: i64,
    /// Its last write: a candidacy rewritten in place moves it.
    pub mod_revision: i64,
    pub named: Named,
}

#[cfg(test)]
mod indexes {
    use super::*;
    use proptest::prelude::*;

    impl Mirror {
        /// Every index agrees with the keys, worked out again from scratch
        /// the way `assess` did before there were indexes.
        fn check(&self) {
            let mut queue: Vec<Queued> = self
                .keys
                .iter()
                .filter_map(|(key, kv)| {
                    let lease = self.layout.candidate_lease(key)?;
                    let named = value::decode(&kv.value)?;
                    (lease == kv.lease).then(|| Queued {
                        key: key.clone(),
                        lease,
                        create_revision: kv.create_revision,
                        mod_revision: kv.mod_revision,
                        named,
                    })
                })
                .collect();
            queue.sort_by_key(|c| c.create_revision);
            let indexed: Vec<Queued> = self.queue().map(|c| (**c).clone()).collect();
            assert_eq!(indexed, queue);
            for c in &queue {
                assert_eq!(self.candidate(c.lease).map(|c| &**c), Some(c));
            }
            assert_eq!(self.by_lease.len(), queue.len());
            let refusing = queue.iter().filter(|c| !c.named.accepts_record).count();
            assert_eq!(self.refusing, refusing);
            let best = queue
                .iter()
                .filter(|c| c.named.candidacy.eligible())
                .min_by_key(|c| (Reverse(c.named.candidacy.priority), c.create_revision));
            assert_eq!(self.ranked.values().next().map(|c| &**c), best);
            let mut ranked: Vec<&Queued> = queue
                .iter()
                .filter(|c| c.named.candidacy.eligible())
                .collect();
            ranked.sort_by_key(|c| (Reverse(c.named.candidacy.priority), c.create_revision));
            let indexed: Vec<&Queued> = self.ranked.values().map(|c| &**c).collect();
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
            // A candidate of an earlier release: no accepts_record.
            (0usize..3).prop_map(|id| {
                format!(
                    r#"{{"id":"{}","advertise":"http://x","nonce":"n"}}"#,
                    ["a", "b", "c"][id]
                )
                .into_bytes()
            }),
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
