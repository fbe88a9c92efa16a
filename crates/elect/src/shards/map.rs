//! What a node knows of the shards: each shard's leader as etcd last showed
//! it, and which of them this node may call its own, until when.

use tokio::sync::watch;
use tokio::time::Instant;

use crate::claim::HeldClaim;

/// A shard's leader, from its record in etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardLeader {
    /// The leader's id.
    pub id: String,
    /// How to reach the leader.
    pub advertise: String,
    /// The shard's term (its fencing token): the revision of the write
    /// that gave the shard to this leader. Grows with every new leader.
    pub term: u64,
}

/// The shards as this node last saw them in etcd.
///
/// A node leads shard K while its record is bound to this node's lease and
/// the node's deadline has not passed: ask [`ShardMap::leads_at`] at the
/// instant it matters, as for [`crate::Status::tenure_at`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardMap {
    /// Each shard's leader, by shard number (`None`: none now).
    pub leaders: Vec<Option<ShardLeader>>,
    /// The shards this node holds, in order: their records are bound to
    /// its lease (and were written after any regression of etcd's history).
    pub held: Vec<u32>,
    /// Until when this node may call itself the leader of what it holds:
    /// its one deadline, shared with its candidacy, for all its shards.
    pub deadline: Option<Instant>,
    /// The etcd revision this map reflects.
    pub revision: u64,
    /// The claim (v3: the lease) `held` is bound to.
    pub(crate) claim: Option<u64>,
}

impl ShardMap {
    pub(crate) fn empty(count: u32) -> ShardMap {
        ShardMap {
            leaders: vec![None; count as usize],
            held: Vec::new(),
            deadline: None,
            revision: 0,
            claim: None,
        }
    }

    /// How many shards the election has.
    pub fn count(&self) -> u32 {
        u32::try_from(self.leaders.len()).unwrap_or(u32::MAX)
    }

    /// Whether this node leads `shard` at `now`.
    pub fn leads_at(&self, shard: u32, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now < d) && self.held.binary_search(&shard).is_ok()
    }

    /// The shards this node leads at `now`, in order.
    pub fn led_at(&self, now: Instant) -> &[u32] {
        match self.deadline {
            Some(deadline) if now < deadline => &self.held,
            _ => &[],
        }
    }
}

/// The map `map` last published, checked against the claim as it is now:
/// once the claim is given up (a shutdown, an abandon) the map holds
/// nothing, even before the shards task has seen it.
pub(crate) fn checked(
    map: &watch::Receiver<ShardMap>,
    claims: &watch::Receiver<Option<HeldClaim>>,
) -> ShardMap {
    let mut map = map.borrow().clone();
    let claim = *claims.borrow();
    map.deadline = match (map.deadline, claim) {
        (Some(seen), Some(claim)) if map.claim == Some(claim.id) => Some(seen.min(claim.deadline)),
        _ => None,
    };
    if map.deadline.is_none() {
        map.held.clear();
    }
    map
}
