//! Taking a turn: the candidate whose turn it is lays the anchor or takes
//! the record, once every lease it must outlive is gone; the next in line
//! looks those leases up ahead of time; a target that may not lead
//! declines a transfer.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::super::ledger;
use super::super::mirror::Kv;
use super::super::shared::Ours;
use super::super::succession::{Assessment, Step, Transfer, revision_u64};
use super::super::txn;
use super::state::Follower;
use crate::error::EtcdError;
use crate::ledger::{Ended, Ending};
use crate::status::Obstacle;
use crate::value::{self, from_unix_ms};

impl Follower {
    /// Takes the step if it is ours to take and nobody it must outlive is
    /// left. Returns whether the keys changed (so look again).
    pub(super) async fn act(&mut self, assessment: &Assessment) -> Result<bool, EtcdError> {
        if assessment.step == Step::Wait {
            self.waiting = None;
            self.recheck_at = None;
            return Ok(false);
        }
        let Some(ours) = self.ours.clone() else {
            return self
                .look_at_predecessors(assessment, None)
                .await
                .map(|_| false);
        };
        if assessment.next.as_ref().map(|c| c.lease) != Some(ours.lease) {
            return self
                .look_at_predecessors(assessment, None)
                .await
                .map(|_| false);
        }
        // The record's revision would be the term: never at or below the floor.
        let floor = self.shared.client.revisions().floor();
        if matches!(assessment.step, Step::TakeRecord { .. })
            && revision_u64(self.mirror().revision).saturating_add(1) < floor
        {
            return Ok(false);
        }
        if !self
            .look_at_predecessors(assessment, Some(ours.lease))
            .await?
        {
            return Ok(false);
        }
        match assessment.step {
            Step::Wait => Ok(false),
            Step::LayAnchor => self.lay_anchor().await,
            Step::TakeRecord { anchor, transfer } => {
                // The transfer to consume is the one assessed.
                let consuming = assessment.transfer.as_ref().filter(|_| transfer.is_some());
                self.take_record(&ours, anchor, consuming).await
            }
        }
    }

    /// While someone leads, the candidate next in line looks up the leases
    /// of the earlier leaders it remembers, once per leader, so that when
    /// this one goes, its lease is the only one left to look up (every
    /// other candidate does nothing). A lease that is gone stays gone: etcd
    /// never hands out an id again, so looking now is as good as looking
    /// then. In the background, so a slow etcd never holds up following;
    /// it only saves work, and failures are left for the lookup that counts.
    pub(super) fn look_ahead(&mut self, assessment: &Assessment) {
        let (Some(ours), Some(leading)) = (&self.ours, &assessment.leading) else {
            return;
        };
        if assessment.step != Step::Wait || self.looked_ahead == Some(leading.lease) {
            return;
        }
        let runner_up = match &assessment.transfer {
            Some(transfer) => Some(transfer.target.lease),
            None => self.mirror().runner_up(leading.lease).map(|c| c.lease),
        };
        if runner_up != Some(ours.lease) {
            return;
        }
        let current = leading.lease;
        self.looked_ahead = Some(current);
        let earlier: Vec<i64> = self
            .shared
            .predecessors()
            .pending(ours.lease)
            .into_iter()
            .map(|(_, lease)| lease)
            .filter(|&lease| lease != current)
            .collect();
        if earlier.is_empty() {
            return;
        }
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let client = &shared.client;
            let lookups = futures_util::future::join_all(
                earlier.iter().map(|&lease| client.lease_left(lease)),
            )
            .await;
            for (lease, left) in earlier.into_iter().zip(lookups) {
                if let Ok(None) = left {
                    shared.predecessors().forget(lease);
                }
            }
        });
    }

    /// Checks the leases of the keys seen leading. The acting candidate
    /// (`own`) looks at every one; others only at one that is visibly alive
    /// or was not electd's, to say what the election waits for. Returns
    /// whether none is left.
    pub(super) async fn look_at_predecessors(
        &mut self,
        assessment: &Assessment,
        own: Option<i64>,
    ) -> Result<bool, EtcdError> {
        let pending = match own {
            Some(own) => self.shared.predecessors().pending(own),
            None => {
                if self.recheck_at.is_some() {
                    // Looked already; the timer says when to look again.
                    return Ok(false);
                }
                let leading = assessment.leading.as_ref().map(|l| l.lease);
                let alive = self
                    .shared
                    .predecessors()
                    .worth_a_look(&self.mirror(), leading);
                alive.into_iter().collect()
            }
        };
        if pending.is_empty() {
            self.waiting = None;
            return Ok(true);
        }
        let client = &self.shared.client;
        let lookups = futures_util::future::join_all(
            pending.iter().map(|(_, lease)| client.lease_left(*lease)),
        )
        .await;
        let mut longest: Option<(Vec<u8>, i64, Duration)> = None;
        for ((key, lease), left) in pending.into_iter().zip(lookups) {
            match left? {
                None => self.shared.predecessors().forget(lease),
                Some(left) => {
                    if longest.as_ref().is_none_or(|(_, _, l)| left > *l) {
                        longest = Some((key, lease, left));
                    }
                }
            }
        }
        let Some((key, lease, left)) = longest else {
            self.waiting = None;
            return Ok(true);
        };
        let now = Instant::now();
        self.waiting = Some(Obstacle::Predecessor {
            key: String::from_utf8_lossy(&key).into_owned(),
            lease,
            expires: Some(now + left),
        });
        // Look again when it may have expired, or sooner: a lease can be
        // revoked early, and its holder may renew it.
        let again = self.shared.client.timing().lease_recheck(left);
        self.recheck_at = Some(now + again);
        Ok(false)
    }

    /// Lays the anchor while no old-rule key exists.
    pub(super) async fn lay_anchor(&mut self) -> Result<bool, EtcdError> {
        let layout = &self.shared.layout;
        let anchor = layout.anchor();
        let Some(revision) = self.transact("anchor", &txn::lay_anchor(layout)).await? else {
            return Ok(false);
        };
        tracing::info!(id = %self.shared.id, revision, "laid the election's anchor: etcd election clients and electd releases before the leader record can no longer lead here");
        let mut mirror = self.mirror();
        mirror.insert(
            anchor,
            Kv {
                create_revision: revision,
                mod_revision: revision,
                lease: 0,
                value: layout.anchor_value().as_bytes().to_vec(),
            },
        );
        mirror.revision = mirror.revision.max(revision);
        Ok(true)
    }

    /// Creates the leader record, bound to our lease: only while it is
    /// absent, our key is still queued, and the anchor is the one we saw
    /// (or, without one, our key is the oldest of the election's). A
    /// transfer to us (`consuming`) is consumed, and the entry of the
    /// leadership that put it written in the same transaction; otherwise
    /// this node owes the entry of the leadership it saw end, if it saw
    /// one, written once it leads (`past.rs`).
    pub(super) async fn take_record(
        &mut self,
        ours: &Ours,
        anchor: Option<i64>,
        consuming: Option<&Transfer>,
    ) -> Result<bool, EtcdError> {
        let layout = &self.shared.layout;
        let record = layout.record();
        let value = value::encode_leader_record(
            &self.shared.id,
            &self.shared.advertise,
            &self.shared.nonce,
            ours.lease,
            &self.shared.candidacy(),
            SystemTime::now(),
        );
        let taking = txn::Taking {
            key: ours.key.clone(),
            create_revision: ours.create_revision,
            lease: ours.lease,
            anchor,
            transfer: consuming.map(|t| t.mod_revision),
            predecessor: consuming.and_then(|t| transferred_entry(t, &self.shared.id)),
        };
        let take = txn::take_record(layout, &taking, value.clone());
        let Some(revision) = self.transact("txn", &take).await? else {
            return Ok(false);
        };
        self.owed = match consuming {
            Some(_) => None,
            None => self.owed_entry(),
        };
        let mut mirror = self.mirror();
        mirror.insert(
            record,
            Kv {
                create_revision: revision,
                mod_revision: revision,
                lease: ours.lease,
                value: value.into_bytes(),
            },
        );
        mirror.remove(&layout.transfer());
        mirror.remove(&layout.preempt());
        mirror.revision = mirror.revision.max(revision);
        Ok(true)
    }

    /// A transfer to us while we may not lead (unhealthy, drained): decline
    /// it, so the ordinary succession goes on. Returns whether the keys changed.
    pub(super) async fn decline_transfer(
        &mut self,
        assessment: &Assessment,
    ) -> Result<bool, EtcdError> {
        let (Some(ours), Some(transfer)) = (&self.ours, &assessment.transfer) else {
            return Ok(false);
        };
        if transfer.target.lease != ours.lease || transfer.target.named.candidacy.eligible() {
            return Ok(false);
        }
        let key = self.shared.layout.transfer();
        let declined = self.delete_unchanged(key, transfer.mod_revision).await?;
        if declined {
            tracing::info!(id = %self.shared.id, "declined a hand-over: this node may not lead now");
        }
        Ok(declined)
    }
}

/// The entry of the leadership that handed over to `target` by `transfer`,
/// as the transfer says (`None` for a transfer of an earlier release, or
/// one that does not read as an entry of electd's).
fn transferred_entry(transfer: &Transfer, target: &str) -> Option<txn::Entry> {
    let from = transfer.from.as_ref()?;
    let ended = Ended {
        at: from.ended_ms.and_then(from_unix_ms),
        ending: Ending::Holder(transfer.reason.end_reason()),
        to: Some(target.to_owned()),
    };
    let entry = ledger::entry(
        from.term,
        &transfer.by,
        &from.advertise,
        from.since_ms,
        &ended,
    );
    let term = u64::try_from(from.term).ok()?;
    crate::ledger::decode(term, entry.value.as_bytes()).ok()?;
    Some(entry)
}
