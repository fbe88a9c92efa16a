//! The part of etcd the election uses: one global revision, leases that
//! expire, and the keys of one election under its prefix. Pure data and
//! pure functions: every request of the protocol is built on these.
//!
//! Keys are kept by kind, not by name: the candidate keys `~c/<lease>` (one
//! per lease, so kept inside the lease), the leader record `~leader`, the
//! `~anchor`, a named hand-over's `~transfer`, and one key of the old
//! oldest-key rule (an `etcdctl elect` client's, sorting before `~`). Each
//! carries what etcd keeps of a key: its lease, `create_revision` and
//! `mod_revision`.

/// A revision of etcd's store (also a term: the revision of a write).
pub type Rev = u8;

/// A lease's id: `1..=MAX_LEASES`, renumbered in order after every step
/// (ids are never reused, so only their order and identity matter); `0`
/// is no lease, or one that is gone.
pub type LeaseId = u8;

/// How many leases may live at once (three candidates, each with a claim
/// and a few left to expire, and the old-rule party).
pub const MAX_LEASES: usize = 6;

/// A set of leases, one bit per id.
pub type Leases = u16;

/// The bit of `lease` in a [`Leases`] set (none for no lease).
pub fn bit(lease: LeaseId) -> Leases {
    match lease {
        0 => 0,
        id => 1 << id,
    }
}

/// Whose lease it is: a process (a node's electd, the `inc`-th started
/// there) or the old-rule party.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// The `inc`-th electd process started on `node`.
    Process {
        /// The node (0, 1, 2).
        node: u8,
        /// Which of its processes: its nonce, in effect.
        inc: u8,
    },
    /// The party of the old oldest-key rule (`etcdctl elect`).
    OldRule,
}

/// A key as etcd holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The lease it is bound to.
    pub lease: LeaseId,
    /// `create_revision`.
    pub create: Rev,
    /// `mod_revision`.
    pub modr: Rev,
}

/// A candidate key `~c/<lease>`: named after and bound to its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Candidate {
    /// `create_revision`: the place in the queue.
    pub create: Rev,
    /// `mod_revision`: moves when the candidacy is rewritten.
    pub modr: Rev,
    /// The candidacy in its value: healthy and undrained.
    pub eligible: bool,
}

/// A live lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lease {
    /// Who was granted it (ghost: etcd does not know, the value's nonce does).
    pub owner: Owner,
    /// Ticks until it may expire (etcd expires it at 0, or later).
    pub expires_in: u8,
    /// Its candidate key, if it holds one.
    pub candidate: Option<Candidate>,
}

/// etcd's store, as far as the election sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Etcd {
    /// The revision of the last write.
    pub revision: Rev,
    /// Ticks until etcd answers again (after a wipe: stopped, emptied, started).
    pub down_for: u8,
    /// The live leases, by id (`leases[id - 1]`).
    pub leases: [Option<Lease>; MAX_LEASES],
    /// `~leader`.
    pub record: Option<Key>,
    /// `~anchor`'s `create_revision` (no lease).
    pub anchor: Option<Rev>,
    /// `~transfer`, bound to (and naming) its target's lease.
    pub transfer: Option<Key>,
    /// The old-rule party's key.
    pub old_rule: Option<Key>,
}

impl Etcd {
    /// A fresh store: nothing in it, at revision 1 (etcd's first).
    pub fn new() -> Etcd {
        Etcd {
            revision: 1,
            down_for: 0,
            leases: [None; MAX_LEASES],
            record: None,
            anchor: None,
            transfer: None,
            old_rule: None,
        }
    }

    /// Whether it answers.
    pub fn up(&self) -> bool {
        self.down_for == 0
    }

    /// A write: the next revision.
    pub fn write(&mut self) -> Rev {
        self.revision = self.revision.saturating_add(1);
        self.revision
    }

    /// The live lease `id`.
    pub fn lease(&self, id: LeaseId) -> Option<&Lease> {
        let index = usize::from(id).checked_sub(1)?;
        self.leases.get(index)?.as_ref()
    }

    fn lease_mut(&mut self, id: LeaseId) -> Option<&mut Lease> {
        let index = usize::from(id).checked_sub(1)?;
        self.leases.get_mut(index)?.as_mut()
    }

    /// Whether lease `id` lives.
    pub fn alive(&self, id: LeaseId) -> bool {
        self.lease(id).is_some()
    }

    /// Who holds lease `id`, while it lives.
    pub fn owner(&self, id: LeaseId) -> Option<Owner> {
        self.lease(id).map(|l| l.owner)
    }

    /// The candidate key named after (and bound to) lease `id`.
    pub fn candidate(&self, id: LeaseId) -> Option<Candidate> {
        self.lease(id)?.candidate
    }

    /// The live leases and their ids.
    pub fn live(&self) -> impl Iterator<Item = (LeaseId, &Lease)> {
        self.leases
            .iter()
            .enumerate()
            .filter_map(|(i, l)| Some((u8::try_from(i + 1).ok()?, l.as_ref()?)))
    }

    /// Grants a lease of `ttl` ticks to `owner`: an id above every live one
    /// (ids are never reused). `None` when the model's bound is reached.
    pub fn grant(&mut self, owner: Owner, ttl: u8) -> Option<LeaseId> {
        let next = self
            .leases
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1);
        let slot = self.leases.get_mut(next)?;
        *slot = Some(Lease {
            owner,
            expires_in: ttl,
            candidate: None,
        });
        u8::try_from(next + 1).ok()
    }

    /// Keeps lease `id` alive for `ttl` more ticks; false when it is gone.
    pub fn keep_alive(&mut self, id: LeaseId, ttl: u8) -> bool {
        match self.lease_mut(id) {
            Some(lease) => {
                lease.expires_in = ttl;
                true
            }
            None => false,
        }
    }

    /// Puts candidate key `~c/<id>` with lease `id` (a txn requiring it
    /// absent, which a fresh lease always passes); its revision.
    pub fn put_candidate(&mut self, id: LeaseId, eligible: bool) -> Option<Rev> {
        if self.candidate(id).is_some() || !self.alive(id) {
            return None;
        }
        let revision = self.write();
        let lease = self.lease_mut(id)?;
        lease.candidate = Some(Candidate {
            create: revision,
            modr: revision,
            eligible,
        });
        Some(revision)
    }

    /// Rewrites the candidacy in candidate key `~c/<id>` in place, if it is
    /// still the key created at `create` (a txn comparing `create_revision`).
    pub fn rewrite_candidate(&mut self, id: LeaseId, create: Rev, eligible: bool) -> bool {
        if self.candidate(id).is_none_or(|c| c.create != create) {
            return false;
        }
        let revision = self.write();
        if let Some(key) = self.lease_mut(id).and_then(|l| l.candidate.as_mut()) {
            key.modr = revision;
            key.eligible = eligible;
        }
        true
    }

    /// Deletes candidate key `~c/<id>` (in a txn that writes at the current
    /// revision: no revision of its own).
    pub fn drop_candidate(&mut self, id: LeaseId) {
        if let Some(lease) = self.lease_mut(id) {
            lease.candidate = None;
        }
    }

    /// Ends lease `id` (a revoke, or etcd's expiry): every key bound to it
    /// goes with it, in one raft entry, at one revision. Returns whether
    /// any key went (only then does the revision move).
    pub fn end_lease(&mut self, id: LeaseId) -> bool {
        let Some(index) = usize::from(id).checked_sub(1) else {
            return false;
        };
        let Some(lease) = self.leases.get_mut(index).and_then(Option::take) else {
            return false;
        };
        let mut deleted = lease.candidate.is_some();
        for key in [&mut self.record, &mut self.transfer, &mut self.old_rule] {
            if key.is_some_and(|k| k.lease == id) {
                *key = None;
                deleted = true;
            }
        }
        if deleted {
            self.write();
        }
        deleted
    }

    /// The `create_revision` of every key under the prefix but the record.
    fn creates_but_record(&self) -> impl Iterator<Item = Rev> + '_ {
        let candidates = self
            .leases
            .iter()
            .flatten()
            .filter_map(|l| l.candidate.map(|c| c.create));
        candidates
            .chain(self.anchor)
            .chain(self.transfer.map(|k| k.create))
            .chain(self.old_rule.map(|k| k.create))
    }

    /// Whether the old-rule key is the oldest key under the prefix but the
    /// record: its owner leads by the old rule, as electd's `assess` reads it.
    pub fn old_rule_oldest(&self) -> bool {
        self.old_rule
            .is_some_and(|old| self.creates_but_record().all(|c| c >= old.create))
    }

    /// Whether the old-rule key is the oldest of all keys under the prefix:
    /// when an etcd election client (`concurrency.Election`) stops waiting.
    pub fn old_rule_first(&self) -> bool {
        self.old_rule_oldest()
            && self
                .old_rule
                .zip(self.record)
                .is_none_or(|(old, record)| record.create > old.create)
    }

    /// Whether candidate key `~c/<id>` is the oldest key under the prefix
    /// but the record.
    pub fn candidate_oldest(&self, id: LeaseId) -> bool {
        self.candidate(id)
            .is_some_and(|own| self.creates_but_record().all(|c| c >= own.create))
    }

    /// Whether every key under the prefix was created at or after `create`:
    /// the range compare `create_revision(prefix…) > create - 1`.
    pub fn none_older_than(&self, create: Rev) -> bool {
        self.creates_but_record()
            .chain(self.record.map(|k| k.create))
            .all(|c| c >= create)
    }

    /// The anchor, when it is laid and older than every old-rule key (old
    /// keys newer than it never lead): its `create_revision`.
    pub fn anchored(&self) -> Option<Rev> {
        self.anchor
            .filter(|&anchor| self.old_rule.is_none_or(|old| old.create > anchor))
    }

    /// Renumbers the live leases `1..` in order (ids are never reused, so
    /// nothing but their order and identity matters) and returns the map
    /// from old ids to new ones (`0` for a lease that is gone).
    pub fn renumber(&mut self) -> [LeaseId; MAX_LEASES + 1] {
        let mut map = [0; MAX_LEASES + 1];
        let mut packed = [None; MAX_LEASES];
        let mut next = 0;
        for (i, lease) in self.leases.iter().enumerate() {
            if let Some(lease) = lease {
                packed[next] = Some(*lease);
                next += 1;
                map[i + 1] = u8::try_from(next).unwrap_or(0);
            }
        }
        self.leases = packed;
        for key in [&mut self.record, &mut self.transfer, &mut self.old_rule]
            .into_iter()
            .flatten()
        {
            key.lease = remap(&map, key.lease);
        }
        map
    }
}

impl Default for Etcd {
    fn default() -> Etcd {
        Etcd::new()
    }
}

/// A lease id through a [`Etcd::renumber`] map.
pub fn remap(map: &[LeaseId; MAX_LEASES + 1], id: LeaseId) -> LeaseId {
    map.get(usize::from(id)).copied().unwrap_or(0)
}

/// A lease set through a [`Etcd::renumber`] map: gone leases drop out.
pub fn remap_set(map: &[LeaseId; MAX_LEASES + 1], set: Leases) -> Leases {
    (1..=MAX_LEASES)
        .filter(|&id| set & (1 << id) != 0)
        .fold(0, |out, id| out | bit(map[id]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Owner = Owner::Process { node: 0, inc: 0 };
    const B: Owner = Owner::Process { node: 1, inc: 0 };

    #[test]
    fn a_lease_ends_with_all_its_keys_in_one_revision() {
        let mut etcd = Etcd::new();
        let a = etcd.grant(A, 3).expect("a lease");
        let b = etcd.grant(B, 3).expect("a lease");
        etcd.put_candidate(a, true);
        etcd.put_candidate(b, true);
        let record = etcd.write();
        etcd.record = Some(Key {
            lease: a,
            create: record,
            modr: record,
        });
        assert_eq!(etcd.revision, 4);
        assert!(etcd.end_lease(a));
        assert_eq!(etcd.revision, 5, "one revision for the key and the record");
        assert_eq!(etcd.record, None);
        assert!(etcd.candidate(b).is_some());
        // A lease without keys ends without a revision; a gone one is nothing.
        let c = etcd.grant(A, 3).expect("a lease");
        assert!(!etcd.end_lease(c));
        assert!(!etcd.end_lease(a));
        assert_eq!(etcd.revision, 5);
    }

    #[test]
    fn renumbering_keeps_order_and_forgets_gone_leases() {
        let mut etcd = Etcd::new();
        let a = etcd.grant(A, 3).expect("a lease");
        let b = etcd.grant(B, 3).expect("a lease");
        let c = etcd.grant(A, 3).expect("a lease");
        assert_eq!((a, b, c), (1, 2, 3));
        etcd.put_candidate(c, true);
        etcd.transfer = Some(Key {
            lease: c,
            create: 3,
            modr: 3,
        });
        etcd.end_lease(b);
        let map = etcd.renumber();
        assert_eq!(&map[..4], &[0, 1, 0, 2]);
        assert_eq!(etcd.transfer.map(|k| k.lease), Some(2));
        assert!(etcd.candidate(2).is_some());
        assert_eq!(remap_set(&map, bit(a) | bit(b) | bit(c)), bit(1) | bit(2));
        // The next grant is above every live id.
        assert_eq!(etcd.grant(B, 3), Some(3));
    }

    #[test]
    fn the_oldest_key_decides_the_old_rule() {
        let mut etcd = Etcd::new();
        let a = etcd.grant(A, 3).expect("a lease");
        etcd.put_candidate(a, true);
        let old = etcd.grant(Owner::OldRule, 3).expect("a lease");
        let at = etcd.write();
        etcd.old_rule = Some(Key {
            lease: old,
            create: at,
            modr: at,
        });
        assert!(!etcd.old_rule_oldest());
        assert!(etcd.candidate_oldest(a));
        assert!(etcd.none_older_than(2));
        // The record the candidate takes is newer than the old key.
        let record = etcd.write();
        etcd.record = Some(Key {
            lease: a,
            create: record,
            modr: record,
        });
        etcd.drop_candidate(a);
        assert!(etcd.old_rule_oldest(), "electd's reading: the record aside");
        assert!(
            etcd.old_rule_first(),
            "the record is newer than the old key"
        );
        assert_eq!(etcd.anchored(), None);
    }
}
