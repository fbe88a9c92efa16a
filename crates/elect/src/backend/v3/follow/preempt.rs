//! Preemption (`--preempt`): a candidate of higher priority, eligible for
//! long enough, asks the leader to hand over by a request bound to its own
//! lease, and takes it back once it no longer holds.

use tokio::time::Instant;

use super::super::succession::{Assessment, Preempt};
use super::super::txn;
use super::state::Follower;
use crate::error::EtcdError;
use crate::value;

impl Follower {
    /// `--preempt`: once eligible for long enough, ask a leader of lower
    /// priority to hand over, by a request in etcd bound to our lease.
    /// Returns whether the keys changed.
    pub(super) async fn ask_to_lead(&mut self, assessment: &Assessment) -> Result<bool, EtcdError> {
        let Some(after) = self.shared.preempt_after else {
            return Ok(false);
        };
        let Some(ours) = self.ours.clone() else {
            self.eligible_since = None;
            return Ok(false);
        };
        let standing = assessment
            .preempt
            .as_ref()
            .filter(|request| request.by.lease == ours.lease);
        let eligible = self
            .mirror()
            .candidate(ours.lease)
            .is_some_and(|c| c.named.candidacy.eligible());
        if !eligible || assessment.transfer.is_some() {
            // A hand-over in progress (or just made) restarts the clock.
            self.eligible_since = None;
            let to_us = assessment
                .transfer
                .as_ref()
                .is_some_and(|t| t.target.lease == ours.lease);
            if eligible && to_us {
                // Ours to take: the record's txn deletes the request too,
                // one write fewer on the way to leading.
                return Ok(false);
            }
            return self.withdraw_ask(standing).await;
        }
        let now = Instant::now();
        let since = *self.eligible_since.get_or_insert(now);
        let priority = self.shared.candidacy().priority;
        let outranks = assessment
            .leader_priority
            .is_some_and(|leader| priority > leader);
        if !outranks || !assessment.anchored || self.mine(assessment).is_some() {
            return self.withdraw_ask(standing).await;
        }
        if assessment.preempt.is_some() {
            return Ok(false);
        }
        if now < since + after {
            self.recheck_at = Some(
                self.recheck_at
                    .map_or(since + after, |r| r.min(since + after)),
            );
            return Ok(false);
        }
        let value = value::encode_record(
            &self.shared.id,
            &self.shared.advertise,
            &self.shared.nonce,
            ours.lease,
            &self.shared.candidacy(),
        );
        let ask = txn::ask_to_lead(&self.shared.layout, ours.lease, value);
        let asked = self.transact("txn", &ask).await?.is_some();
        if asked {
            tracing::info!(id = %self.shared.id, priority, "asked the leader of lower priority to hand over");
        }
        Ok(asked)
    }

    /// Takes back our own request to lead once it no longer holds (we may
    /// not lead, no longer outrank the leader, or lead ourselves), so that
    /// it neither moves leadership nor blocks another candidate's request.
    pub(super) async fn withdraw_ask(
        &mut self,
        standing: Option<&Preempt>,
    ) -> Result<bool, EtcdError> {
        let Some(request) = standing else {
            return Ok(false);
        };
        let key = self.shared.layout.preempt();
        let withdrawn = self.delete_unchanged(key, request.mod_revision).await?;
        if withdrawn {
            tracing::info!(id = %self.shared.id, "withdrew the request to lead");
        }
        Ok(withdrawn)
    }
}
