//! The departing side of a hand-over: the record handed on in one write
//! by the leader that ends its own leadership, or by a dead electd's
//! guardian, with the history entry of the leadership it ends; and the
//! history read for callers.

use std::time::SystemTime;

use super::V3;
use super::succession::{self, Handing};
use super::{ledger, txn};
use crate::error::EtcdError;
use crate::ledger::{Ended, Ending, History};
use crate::value::{self, Named};

impl V3 {
    /// Whether the record may go from `from` to a successor (or `to`) in
    /// one write, as this node's mirror shows the keys.
    pub(super) fn handing(&self, from: i64, to: Option<i64>) -> Option<Handing> {
        succession::handing(&self.shared.layout, &self.shared.mirror(), from, to)
    }

    /// The leader record as this node's mirror shows it, when this
    /// process holds it with `lease`: its term and value.
    pub(super) fn held(&self, lease: i64) -> Option<(i64, Named)> {
        let mirror = self.shared.mirror();
        let record = mirror.get(&self.shared.layout.record())?;
        let named = value::decode(&record.value)?;
        (record.lease == lease && named.lease == Some(lease) && named.nonce == self.shared.nonce)
            .then_some((record.mod_revision, named))
    }

    /// Hands the record on in one write (`txn::hand_record`), with the
    /// history entry of the leadership it ends (`ending`); the new term
    /// when it did. Not doing it is no failure: the release after it lets
    /// the successor take the record itself, as before hand-overs in one
    /// write.
    pub(super) async fn hand_record(&self, plan: &Handing, ending: Ending) -> Option<i64> {
        let to = &plan.to.named;
        // One instant: the end of one leadership is the start of the next.
        let now = SystemTime::now();
        let value = value::encode_leader_record(
            &to.id,
            &to.advertise,
            &to.nonce,
            plan.to.lease,
            &to.candidacy,
            now,
        );
        let from = &plan.departing;
        let ended = Ended {
            at: Some(now),
            ending,
            to: Some(to.id.clone()),
        };
        let entry = ledger::entry(
            plan.record,
            &from.id,
            &from.advertise,
            from.since_ms,
            &ended,
        );
        let hand = txn::hand_record(&self.shared.layout, plan, value, entry.value);
        match self.shared.client.transact("txn", &hand).await {
            Ok(Some(term)) => {
                tracing::info!(id = %self.shared.id, to = %to.id, term, "handed the leader record over");
                Some(term)
            }
            Ok(None) => {
                tracing::debug!(id = %self.shared.id, to = %to.id, "the keys changed since read: releasing instead");
                None
            }
            Err(err) => {
                tracing::debug!(id = %self.shared.id, to = %to.id, %err, "handing the record over failed: releasing instead");
                None
            }
        }
    }

    /// After a process died, the guardian's hand-over: reads the election
    /// once, and only if the record is bound to one of `leases` (the dead
    /// process's own claims), hands it on in one write, to whose turn it
    /// is (the history entry says `released`). A record already handed to
    /// someone else is left alone. Whether it handed it on; the revokes
    /// come after, either way, and when it did not, the entry after them
    /// (`record_released`).
    pub(crate) async fn hand_on_after_death(&self, leases: &[i64]) -> Result<bool, EtcdError> {
        let mirror = self.shared.read_election().await?;
        let Some(record) = mirror.get(&self.shared.layout.record()) else {
            return Ok(false);
        };
        if !leases.contains(&record.lease) {
            return Ok(false);
        }
        let plan = succession::handing(&self.shared.layout, &mirror, record.lease, None);
        if let Some(plan) = plan
            && self.hand_record(&plan, Ending::Released).await.is_some()
        {
            return Ok(true);
        }
        let released = value::decode(&record.value).map(|holder| {
            let ended = Ended {
                at: Some(SystemTime::now()),
                ending: Ending::Released,
                to: None,
            };
            ledger::entry(
                record.mod_revision,
                &holder.id,
                &holder.advertise,
                holder.since_ms,
                &ended,
            )
        });
        *self.released.lock().unwrap_or_else(|e| e.into_inner()) = released;
        Ok(false)
    }

    /// After a guardian revoked the dead process's leases: the entry of
    /// the leadership `hand_on_after_death` found still held and did not
    /// hand on, where none stands (its electd may have handed the record
    /// on with a request that landed late, and written its own).
    pub(crate) async fn record_released(&self) {
        let released = self
            .released
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(entry) = released {
            self.shared.record_entry_or_log(&entry).await;
        }
    }

    /// The election's history, newest first (`ledger.rs`).
    pub(crate) async fn history(&self, limit: usize) -> Result<History, EtcdError> {
        self.shared.history(limit).await
    }
}
