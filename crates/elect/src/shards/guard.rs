//! The library's view of the shards this node gains: a stream of guards,
//! one per shard gained, each held while the shard's work runs.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::holding::Holding;
use super::map::{ShardMap, checked};
use crate::claim::HeldClaim;

/// The shards this node gains, as it gains them ([`crate::Election::shard_leaderships`]).
pub struct ShardLeaderships {
    map: watch::Receiver<ShardMap>,
    claims: watch::Receiver<Option<HeldClaim>>,
    holding: Arc<Holding>,
    /// (shard, term) already given out.
    given: BTreeSet<(u32, u64)>,
}

impl ShardLeaderships {
    pub(crate) fn new(
        map: watch::Receiver<ShardMap>,
        claims: watch::Receiver<Option<HeldClaim>>,
        holding: Arc<Holding>,
    ) -> ShardLeaderships {
        ShardLeaderships {
            map,
            claims,
            holding,
            given: BTreeSet::new(),
        }
    }

    /// The next shard this node gains; waits until it gains one. `None`
    /// once the election has stopped.
    pub async fn next(&mut self) -> Option<ShardLeadership> {
        loop {
            let now = Instant::now();
            let map = checked(&self.map, &self.claims);
            let led: BTreeSet<(u32, u64)> = map
                .led_at(now)
                .iter()
                .filter_map(|&k| Some((k, map.leaders.get(k as usize)?.as_ref()?.term)))
                .collect();
            // Forget what is no longer led: gained again, it is new.
            self.given.retain(|g| led.contains(g));
            if let Some(&(shard, term)) = led.iter().find(|g| !self.given.contains(g)) {
                self.given.insert((shard, term));
                self.holding.work(shard, term);
                return Some(ShardLeadership {
                    shard,
                    term,
                    map: self.map.clone(),
                    claims: self.claims.clone(),
                    holding: self.holding.clone(),
                });
            }
            let deadline = map.deadline.filter(|d| *d > now);
            tokio::select! {
                changed = self.map.changed() => changed.ok()?,
                changed = self.claims.changed() => changed.ok()?,
                _ = sleep_until(deadline.unwrap_or(now)), if deadline.is_some() => {}
            }
        }
    }
}

/// This node's leadership of one shard at one term. Hold it while the
/// shard's work runs; drop it once that work has stopped: a planned move
/// of the shard waits for the drop (until the node's deadline at most).
pub struct ShardLeadership {
    shard: u32,
    term: u64,
    map: watch::Receiver<ShardMap>,
    claims: watch::Receiver<Option<HeldClaim>>,
    holding: Arc<Holding>,
}

impl ShardLeadership {
    /// The shard's number.
    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// The shard's term: its fencing token, which grows with every new
    /// leader of the shard.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// Until when this node leads the shard, if it still does.
    pub fn deadline(&self) -> Option<Instant> {
        let now = Instant::now();
        let map = checked(&self.map, &self.claims);
        let term = map.leaders.get(self.shard as usize)?.as_ref()?.term;
        (term == self.term && map.leads_at(self.shard, now))
            .then_some(map.deadline)
            .flatten()
    }

    /// Resolves once this node no longer leads the shard at this term: it
    /// is being handed on, its record went, or the deadline passed.
    pub async fn lost(&self) {
        let mut map = self.map.clone();
        let mut claims = self.claims.clone();
        while let Some(deadline) = self.deadline() {
            tokio::select! {
                changed = map.changed() => if changed.is_err() { return },
                changed = claims.changed() => if changed.is_err() { return },
                _ = sleep_until(deadline) => {}
            }
        }
    }
}

impl Drop for ShardLeadership {
    fn drop(&mut self) {
        self.holding.let_go(self.shard, self.term);
    }
}
