//! The contract between the state machine and the etcd APIs.
//!
//! A backend speaks one protocol and nothing else: it claims, renews and
//! releases, and follows the election, reporting what etcd says. It never
//! decides whether this node leads; the state machine (`election.rs`) does,
//! from the views and renewal times a backend reports.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::EtcdError;
use crate::status::Leader;

#[cfg(test)]
pub(crate) mod memory;
pub(crate) mod retry;
pub(crate) mod v2;
pub(crate) mod v3;

/// The election as etcd showed it at `revision` (v2: index; v3: revision).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct View {
    /// Views are applied in revision order; an older one is stale.
    pub revision: u64,
    /// The leader key's holder, `None` when there is no leader.
    pub leader: Option<Leader>,
    /// Whether the backend can tell the leader key is the claim this process
    /// holds (v2: our exact value). The state machine also matches the term.
    pub ours: bool,
    /// No claim before this instant. v2: someone else deleted the key, and
    /// its holder may lead until its deadline, at most a TTL after the delete.
    pub claimable_at: Option<Instant>,
}

/// An acknowledged claim or renewal. etcd only extends a lease after it
/// receives the request, so the claim lives at least until `sent_at + ttl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Renewal {
    /// Taken just before the request left.
    pub sent_at: Instant,
    /// The TTL etcd confirmed.
    pub ttl: Duration,
}

/// The outcome of a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Campaign {
    /// We hold a claim with this term (v2: we are the leader; v3: we are queued
    /// and `view` says whether we lead).
    Claimed {
        term: u64,
        view: View,
        renewal: Renewal,
    },
    /// Someone else holds the election as of `revision` (v2 only).
    Taken { revision: u64 },
}

/// Something the backend learned while following the election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// What the election looks like now.
    View(View),
    /// The claim of `term` disappeared (its key was deleted or overwritten).
    ClaimLost { term: u64 },
    /// Following failed; the backend keeps retrying and sends a `View` when it recovers.
    Problem(EtcdError),
}

/// Why a renewal did not extend the claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RenewError {
    /// etcd says the claim is gone: the compare failed, or the key or lease is missing.
    Lost,
    /// No acknowledgement; the claim may still be alive.
    Failed(EtcdError),
}

/// One etcd API. Methods take `&self` so a renewal can run in its own task
/// while the loop waits on changes; every method returns within a bounded time.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Whether every candidate holds a claim while it waits (v3's queue), as
    /// opposed to only the leader (v2's single key).
    const QUEUES: bool;

    /// Starts following the election (without a claim).
    fn start(&self);

    /// Claims the election, or joins its queue.
    fn campaign(&self) -> impl Future<Output = Result<Campaign, EtcdError>> + Send;

    /// Renews the claim taken by the last successful campaign.
    fn renew(&self) -> impl Future<Output = Result<Renewal, RenewError>> + Send;

    /// Gives up the claim: a compare-and-delete of our own key (v3: and the lease).
    fn release(&self) -> impl Future<Output = Result<(), EtcdError>> + Send;

    /// The next change while following. Cancel-safe.
    fn next_change(&self) -> impl Future<Output = Change> + Send;

    /// The succession order, leader first (v2: the leader only).
    fn candidates(&self) -> impl Future<Output = Result<Vec<Leader>, EtcdError>> + Send;

    /// Stops background work (watches); the backend is not used afterwards.
    fn stop(&self);
}
