//! The follow task's state, and the few things every part of it does:
//! look at the mirror, and write through a guarded transaction.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::time::Instant;

use super::super::mirror::Mirror;
use super::super::shared::{Ours, Shared};
use super::super::succession::Assessment;
use super::super::txn;
use crate::error::EtcdError;
use crate::status::Obstacle;

/// The task's own state.
pub(super) struct Follower {
    pub(super) shared: Arc<Shared>,
    pub(super) ours: Option<Ours>,
    /// Whether our claim led: when its record goes, the claim is over.
    pub(super) led: bool,
    /// When to look at the predecessors' leases again.
    pub(super) recheck_at: Option<Instant>,
    /// A wait, as the acting candidate (or anyone who looked) saw it.
    pub(super) waiting: Option<Obstacle>,
    /// Leases of other live candidates with our id, already warned about.
    pub(super) twins: HashSet<i64>,
    /// `--preempt`: since when this candidate has been eligible, with no
    /// hand-over in between.
    pub(super) eligible_since: Option<Instant>,
    /// The record's lease in the last view sent, when it was ours.
    pub(super) published_mine: Option<u64>,
    /// The leader whose predecessors' leases this candidate, next in line,
    /// looked up already (`look_ahead`).
    pub(super) looked_ahead: Option<i64>,
    /// Counts of the keys that failed in a row (`missed_deletions`).
    pub(super) failed_counts: u32,
    /// The history entry this node owes once it leads (`past.rs`).
    pub(super) owed: Option<txn::Entry>,
}

impl Follower {
    /// The mirror: shared, so that a status or a hand-over can look at the
    /// queue when it asks. Never held across an await, and never taken
    /// twice in one statement (a guard lives to the statement's end).
    pub(super) fn mirror(&self) -> std::sync::MutexGuard<'_, Mirror> {
        self.shared.mirror()
    }

    /// The record's lease, when this process wrote it.
    pub(super) fn mine(&self, assessment: &Assessment) -> Option<u64> {
        assessment
            .writer
            .as_ref()
            .filter(|(nonce, _)| *nonce == self.shared.nonce)
            .and_then(|(_, lease)| u64::try_from(*lease).ok())
    }

    /// Deletes `key` if unchanged since `mod_revision`, from the mirror too.
    pub(super) async fn delete_unchanged(
        &mut self,
        key: Vec<u8>,
        mod_revision: i64,
    ) -> Result<bool, EtcdError> {
        let deleted = self
            .shared
            .client
            .delete_unchanged(key.clone(), mod_revision)
            .await?;
        if deleted {
            self.mirror().remove(&key);
        }
        Ok(deleted)
    }

    /// Runs a conditional write; its revision when it succeeded.
    pub(super) async fn transact(
        &self,
        op: &'static str,
        conditional: &txn::Conditional,
    ) -> Result<Option<i64>, EtcdError> {
        self.shared.client.transact(op, conditional).await
    }
}
