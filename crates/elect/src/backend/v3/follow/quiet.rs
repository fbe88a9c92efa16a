//! The quiet queue: only the nodes that may act on a deletion watch
//! deletions (the leader, the two next in line, a transfer's target,
//! observers, `--preempt` nodes, and everyone while something is amiss);
//! the rest watch puts only, and on a new record drop what the hand-over
//! deleted and check with a count that their mirror is whole.

use etcd_client::GetOptions;

use super::super::conn::Link;
use super::super::succession::{Assessment, Step};
use super::state::Follower;

/// How many eligible candidates after the leader watch deletions: the
/// next in line, and one more in case it goes first.
const WATCHING_DELETIONS: usize = 2;

/// After this many failed counts in a row, a follower watches everything
/// rather than read the whole queue at every count.
const FAILED_COUNTS: u32 = 3;

/// What a follower watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    /// Every change: the leader, those next in line, a transfer's target,
    /// observers, candidates with `--preempt`, and everyone while there is
    /// no leader, a foreign key or a wait for a predecessor's lease.
    Everything,
    /// Puts only, while the record written at revision `record` (its
    /// term), bound to `lease`, leads: the rest of the queue. A hand-over then costs etcd
    /// and this process nothing until the successor's record is put; a
    /// count of the keys then (and every half TTL, for the departures
    /// nobody else reports) tells whether it missed a deletion, so what it
    /// did not see lasts less than a TTL.
    PutsOnly { record: i64, lease: i64 },
}

impl Follower {
    /// What to watch while the keys are as `assessment` says (see `Scope`).
    pub(super) fn watch_for(&self, assessment: &Assessment) -> Scope {
        let (Some(ours), Some((_, leader))) = (&self.ours, &assessment.writer) else {
            return Scope::Everything;
        };
        // A transfer to another candidate, or a request to lead, whose end
        // this node misses changes nothing it does: the record changes
        // either way, and a node without `--preempt` never asks.
        let to_us = assessment
            .transfer
            .as_ref()
            .is_some_and(|t| t.target.lease == ours.lease);
        let quiet = *leader != ours.lease
            && assessment.step == Step::Wait
            && assessment.anchored
            && assessment.obstacle.is_none()
            && !to_us
            && self.waiting.is_none()
            && self.recheck_at.is_none()
            && self.shared.preempt_after.is_none()
            && self.failed_counts < FAILED_COUNTS;
        if !quiet {
            return Scope::Everything;
        }
        let mirror = self.mirror();
        if mirror.among_next(ours.lease, *leader, WATCHING_DELETIONS) {
            return Scope::Everything;
        }
        match mirror.get(&self.shared.layout.record()) {
            Some(record) => Scope::PutsOnly {
                record: record.mod_revision,
                lease: record.lease,
            },
            None => Scope::Everything,
        }
    }

    /// A new record seen while watching puts only: the old leader's lease
    /// ended (a revoke or an expiry takes all its keys at once), or it
    /// handed the record over in a txn that deleted its candidate key, and
    /// the record's txn deleted any transfer or preemption record, so the
    /// mirror drops them (`Mirror::record_replaced`); unless someone deleted
    /// the record by hand (its keys are then still there), which the count
    /// tells, as it tells any deletion missed. Returns whether the mirror
    /// is whole again without a read.
    pub(super) async fn caught_up_on_new_record(
        &mut self,
        watching: Scope,
        now: Scope,
        link: &Link,
    ) -> bool {
        let (
            Scope::PutsOnly { lease: old, .. },
            Scope::PutsOnly {
                record, lease: new, ..
            },
        ) = (watching, now)
        else {
            return false;
        };
        if now == watching || old == new {
            return false;
        }
        self.mirror().record_replaced(old, record);
        !self.missed_deletions(link).await
    }

    /// Whether this node, watching puts only, missed a deletion: its mirror
    /// then holds a key etcd no longer has (it holds every other key, as it
    /// sees every put). Counted at the mirror's own revision, so that later
    /// changes do not blur the count; the count is all etcd sends. A failed
    /// count counts as a miss (the read that follows says what is wrong);
    /// after a few in a row this task watches everything instead.
    pub(super) async fn missed_deletions(&mut self, link: &Link) -> bool {
        let (revision, held) = {
            let mirror = self.mirror();
            (mirror.revision, mirror.key_count())
        };
        let client = &self.shared.client;
        let mut kv = link.client.kv_client();
        let (start, end) = self.shared.layout.election_range();
        let options = GetOptions::new()
            .with_range(end)
            .with_count_only()
            .with_revision(revision)
            .with_serializable();
        let counted = client
            .call("range", link, kv.get(start, Some(options)))
            .await;
        match counted {
            Ok(resp) => {
                self.failed_counts = 0;
                usize::try_from(resp.count()) != Ok(held)
            }
            Err(err) => {
                self.failed_counts += 1;
                tracing::info!(id = %self.shared.id, revision, error = %err, failures = self.failed_counts, "counting the election's keys failed: reading them instead");
                true
            }
        }
    }
}
