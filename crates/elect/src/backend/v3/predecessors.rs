//! Who must be gone before someone else may lead.
//!
//! A resign or an expiry removes the leader's keys and its lease in one raft
//! entry. But when someone else deletes a leader's key (by hand, or an
//! etcd election client that resigns by deleting its key and keeps its
//! lease), the old holder may still act as leader until it notices or its
//! lease expires: electd's own leaders then stop renewing and let the lease
//! run out, so it expires after their deadline. So every node remembers the
//! lease of each key it saw lead, and nobody takes the next step (the
//! record, the anchor) until those leases are gone. The common case costs
//! one lease lookup, by the one candidate that acts.

use super::mirror::Mirror;
use super::succession::Leading;

/// Bounds the leases remembered; more than a couple only accumulate while
/// an election is blocked for long, and the oldest are long gone.
const MAX_PREDECESSORS: usize = 8;

/// The leases of keys seen leading, oldest first.
#[derive(Debug, Default)]
pub(super) struct Predecessors {
    list: Vec<Leading>,
    /// Leases of this process's earlier claims: whatever it did under them
    /// is over before it campaigns again, so it never waits for them
    /// itself, but the others do, and it says so too.
    mine: Vec<i64>,
}

impl Predecessors {
    /// Remembers the key that leads now (and its lease).
    pub(super) fn note(&mut self, leading: Option<&Leading>) {
        let Some(entry) = leading else {
            return;
        };
        if self.list.iter().any(|l| l.lease == entry.lease) {
            return;
        }
        if self.list.len() == MAX_PREDECESSORS {
            self.list.remove(0);
        }
        self.list.push(entry.clone());
    }

    /// Those that must be gone before `own` (our lease) takes a step: all
    /// but our own, current and earlier.
    pub(super) fn pending(&self, own: i64) -> Vec<(Vec<u8>, i64)> {
        self.list
            .iter()
            .filter(|l| l.lease != own && !self.mine.contains(&l.lease))
            .map(|l| (l.key.clone(), l.lease))
            .collect()
    }

    /// One of our own claims is over.
    pub(super) fn ours_ended(&mut self, lease: i64) {
        if self.mine.len() == MAX_PREDECESSORS {
            self.mine.remove(0);
        }
        self.mine.push(lease);
    }

    /// The lease is gone: nothing to wait for.
    pub(super) fn forget(&mut self, lease: i64) {
        self.list.retain(|l| l.lease != lease);
    }

    /// A remembered predecessor, no longer leading, worth a look by a node
    /// that does not act, to say what the election waits for: one whose
    /// lease still holds a key (visibly alive), or one that was not
    /// electd's (its holder keeps its lease after deleting its key).
    pub(super) fn worth_a_look(
        &self,
        mirror: &Mirror,
        leading: Option<i64>,
    ) -> Option<(Vec<u8>, i64)> {
        self.list
            .iter()
            .filter(|l| Some(l.lease) != leading)
            .find(|l| l.foreign || mirror.holds_lease(l.lease))
            .map(|l| (l.key.clone(), l.lease))
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::Layout;
    use super::super::mirror::Kv;
    use super::*;

    fn empty() -> Mirror {
        Mirror::new(&Layout::new("leader"))
    }

    fn leading(lease: i64, foreign: bool) -> Leading {
        Leading {
            key: b"r".to_vec(),
            lease,
            foreign,
        }
    }

    #[test]
    fn every_leader_seen_is_remembered_once_and_ours_is_never_waited_for() {
        let mut p = Predecessors::default();
        p.note(Some(&leading(1, false)));
        p.note(Some(&leading(1, false)));
        p.note(None);
        p.note(Some(&leading(2, false)));
        assert_eq!(p.pending(2), vec![(b"r".to_vec(), 1)]);
        p.forget(1);
        assert!(p.pending(2).is_empty());
        for lease in 10..30 {
            p.note(Some(&leading(lease, false)));
        }
        assert_eq!(p.pending(0).len(), MAX_PREDECESSORS);
        assert_eq!(p.pending(0)[0].1, 22, "the oldest go first");
        // An earlier claim of ours: shown, never waited for by us.
        p.ours_ended(22);
        assert_eq!(p.pending(0)[0].1, 23);
        assert_eq!(
            p.worth_a_look(&empty(), None),
            None,
            "not foreign, holds no key"
        );
    }

    #[test]
    fn a_predecessor_is_worth_a_look_while_its_lease_holds_a_key_or_it_was_foreign() {
        let mut p = Predecessors::default();
        p.note(Some(&leading(7, false)));
        let mut mirror = empty();
        assert_eq!(p.worth_a_look(&mirror, None), None);
        mirror.insert(
            b"/electd/leader/~c/7".to_vec(),
            Kv {
                create_revision: 3,
                mod_revision: 3,
                lease: 7,
                value: Vec::new(),
            },
        );
        assert_eq!(p.worth_a_look(&mirror, None).map(|(_, l)| l), Some(7));
        // While it still leads, nothing is waited for.
        assert_eq!(p.worth_a_look(&mirror, Some(7)), None);
        // An etcd election client keeps its lease after deleting its key.
        p.note(Some(&leading(8, true)));
        assert_eq!(p.worth_a_look(&empty(), None).map(|(_, l)| l), Some(8));
    }
}
