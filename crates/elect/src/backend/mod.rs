//! The contract between the state machine and the etcd APIs.
//!
//! A backend speaks one protocol and nothing else: it claims, renews and
//! releases, and follows the election, reporting what etcd says. It never
//! decides whether this node leads; the state machine (`election.rs`) does,
//! from the views and renewal times a backend reports.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{EtcdError, TransferError};
use crate::history::Regression;
use crate::journal::EndReason;
use crate::status::{Candidate, Leader, Obstacle};
use crate::value::Candidacy;

#[cfg(any(test, feature = "test-util"))]
pub(crate) mod memory;
pub(crate) mod retry;
pub(crate) mod v2;
pub(crate) mod v3;

/// The election as etcd showed it at `revision` (v2: index; v3: revision).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct View {
    /// Views are applied in revision order; an older one is stale.
    pub revision: u64,
    /// The history epoch the view belongs to (see `history.rs`): views of
    /// an earlier epoch describe a history etcd no longer has.
    pub epoch: u64,
    /// The leader key's holder, `None` when there is no leader.
    pub leader: Option<Leader>,
    /// When this process wrote the leader key (its value carries our
    /// nonce), the claim it belongs to: v2 the key's `createdIndex`, v3 the
    /// lease. The state machine leads only while this is the claim it holds,
    /// so a view read before the claim was known cannot hide or fake it.
    pub mine: Option<u64>,
    /// No claim before this instant. v2: someone else deleted the key, and
    /// its holder may lead until its deadline, at most a TTL after the delete.
    pub claimable_at: Option<Instant>,
    /// What in etcd keeps the election from electing, if anything.
    pub obstacle: Option<Obstacle>,
    /// While we lead: the id of a candidate of higher priority asking us
    /// to hand over (v3's preemption).
    pub asked: Option<String>,
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
    /// We hold `claim` (v2: the key, by its `createdIndex`, and so we lead;
    /// v3: a lease with a place in the queue, and `view` says whether we lead).
    Claimed {
        claim: u64,
        view: Option<Box<View>>,
        renewal: Renewal,
    },
    /// Someone else holds the election as of `revision` (v2 only).
    Taken { revision: u64 },
}

/// Something the backend learned while following the election.
#[derive(Clone, Debug)]
pub(crate) enum Change {
    /// What the election looks like now.
    View(View),
    /// `claim` disappeared (its key was deleted or overwritten, its lease is gone).
    ClaimLost { claim: u64 },
    /// Following failed; the backend keeps retrying and sends a `View` when it recovers.
    Problem(EtcdError),
    /// etcd answered at a revision below one seen before the request left
    /// (see `history.rs`); the backend has started reading afresh.
    Regressed(Regression),
}

/// Why a renewal did not extend the claim.
#[derive(Clone, Debug)]
pub(crate) enum RenewError {
    /// etcd says the claim is gone: the compare failed, or the key or lease is missing.
    Lost,
    /// No acknowledgement; the claim may still be alive.
    Failed(EtcdError),
}

/// A candidate a leader may hand over to, checked against the keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub id: String,
    pub key: Vec<u8>,
    pub lease: i64,
    pub create_revision: i64,
}

/// Why a leader hands over to a named candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Handover {
    /// An operator or program asked for it.
    Transfer,
    /// The target asked for it, with a higher priority.
    Preempted,
}

impl Handover {
    /// The journal's reason for a leadership that ends so.
    pub(crate) fn end_reason(self) -> EndReason {
        match self {
            Handover::Transfer => EndReason::Transfer,
            Handover::Preempted => EndReason::Preempted,
        }
    }
}

/// One etcd API. Methods take `&self` so a renewal can run in its own task
/// while the loop waits on changes; every method returns within a bounded time.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Whether every candidate holds a claim while it waits (v3's queue), as
    /// opposed to only the leader (v2's single key).
    const QUEUES: bool;

    /// Starts following the election (without a claim), sending what it
    /// learns on the channel the backend was made with.
    fn start(&self);

    /// Claims the election, or joins its queue.
    fn campaign(&self) -> impl Future<Output = Result<Campaign, EtcdError>> + Send;

    /// Renews the claim taken by the last successful campaign (v3: the lease,
    /// which keeps the candidate key and, while leading, the leader record).
    fn renew(&self) -> impl Future<Output = Result<Renewal, RenewError>> + Send;

    /// Stops acting on the claim without giving it up, and makes a later
    /// `release` leave it alone: it expires on its own.
    fn forget(&self) -> impl Future<Output = ()> + Send;

    /// Gives up the claim: a compare-and-delete of our own key (v3: hands
    /// a record of ours to the successor in one write where it can, then
    /// revokes the lease). `why` is the journal's reason, for the history
    /// entry of a leadership it ends (v3).
    fn release(&self, why: EndReason) -> impl Future<Output = Result<(), EtcdError>> + Send;

    /// Gives up the claim without handing anything on: for a claim this
    /// node may not lead with (its term below the floor), whose record a
    /// successor must not inherit either (nor this node's word on how a
    /// leadership it never took ended: the reason is never written).
    fn give_up(&self) -> impl Future<Output = Result<(), EtcdError>> + Send {
        self.release(EndReason::Lost)
    }

    /// Publishes what this candidate offers (v3: its candidate key's value;
    /// v2 has no queue to show it in).
    fn set_candidacy(
        &self,
        candidacy: Candidacy,
    ) -> impl Future<Output = Result<(), EtcdError>> + Send;

    /// The candidate `id` as a target of a hand-over, checked against the
    /// keys: exactly one live, eligible candidate, not this node.
    fn handover_target(&self, id: &str) -> Result<Target, TransferError>;

    /// Hands the leadership to `target` (the caller has stepped down): the
    /// transfer record, then the release. Returns the record's revision.
    fn hand_over(
        &self,
        target: &Target,
        reason: Handover,
    ) -> impl Future<Output = Result<i64, TransferError>> + Send;

    /// Withdraws the transfer record of `revision`, if not consumed yet.
    /// Returns whether it withdrew it.
    fn cancel_hand_over(
        &self,
        revision: i64,
    ) -> impl Future<Output = Result<bool, EtcdError>> + Send;

    /// The succession order, leader first (v2: the leader only).
    fn candidates(&self) -> impl Future<Output = Result<Vec<Candidate>, EtcdError>> + Send;

    /// Stops background work (watches); the backend is not used afterwards.
    fn stop(&self);
}
