//! Steering who leads: what this candidate offers (health, drain), and a
//! leader handing over to a named candidate.
//!
//! Priority, health and drain only decide who *tries*: leadership itself is
//! still one record created by a transaction that requires it absent, so
//! terms keep growing whoever leads next. A leader that may no longer lead
//! steps down as a resign does (journal `ended` first, then the release) and
//! campaigns again at once, queued but never chosen, so operators still see
//! it; a hand-over to a named node steps down the same way, leaving a
//! transfer record that only its target may consume (`backend/v3`).

use super::{Handed, Machine};
use crate::backend::{Backend, Handover};
use crate::error::TransferError;
use crate::journal::EndReason;

impl<B: Backend> Machine<B> {
    /// Applies a new health verdict or drain state. A leader that may no
    /// longer lead steps down and releases; the new offer is published in
    /// every case.
    pub(super) async fn on_candidacy(&mut self, healthy: Option<bool>, drained: Option<bool>) {
        let before = self.candidacy;
        if let Some(healthy) = healthy {
            self.candidacy.healthy = healthy;
        }
        if let Some(drained) = drained {
            self.candidacy.drained = drained;
        }
        if self.candidacy == before {
            return;
        }
        if self.tenure.is_some() && !self.candidacy.eligible() {
            let reason = if self.candidacy.healthy {
                EndReason::Drain
            } else {
                EndReason::Unhealthy
            };
            // Released like a resign, but still campaigning: queued (v3),
            // visible with the new offer, never chosen while it stands.
            if let Err(err) = self.relinquish(reason, true).await {
                self.set_problem(&err);
            }
        }
        if let Err(err) = self.backend.set_candidacy(self.candidacy).await {
            self.set_problem(&err);
        }
        self.publish();
    }

    /// Hands the leadership of `term` to the candidate `to`: checked first
    /// (nothing changes when it cannot be done), then this node stops
    /// leading (journal `ended`, reason `transfer` or `preempted`) and
    /// leaves a transfer record for the target before it releases.
    pub(super) async fn on_transfer(
        &mut self,
        term: u64,
        to: &str,
        reason: Handover,
    ) -> Result<Handed, TransferError> {
        let Some(tenure) = self.tenure.filter(|t| t.term == term) else {
            return Err(TransferError::NotLeader);
        };
        let target = self.backend.handover_target(to)?;
        self.end(tenure, reason.end_reason());
        if let Some(task) = self.renew_task.take() {
            task.abort();
        }
        self.claim = None;
        self.retry_at = None;
        self.publish();
        // Before the hand-over, whose revoke frees every shard bound to
        // the lease: they stop with the claim.
        self.publish_claim(reason.end_reason());
        // Campaigning goes on: this node queues again behind its target.
        self.campaigning = true;
        self.asked_again = true;
        let revision = self.backend.hand_over(&target, reason).await?;
        Ok(Handed {
            target: target.id,
            revision,
        })
    }
}
