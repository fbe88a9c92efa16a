//! The election's history in etcd (its format: `crate::ledger`): the list
//! read for callers, an entry learnt after the fact (written only where
//! none stands), and the trim a leader makes to keep it to its size.
//!
//! Nothing here is on a hand-over's path. The entries that ride in a
//! hand-over are writes of its own transaction (`txn::hand_record`, and
//! `txn::take_record` consuming a transfer); what is written here comes
//! after a revoke, or a while after a successor leads, and no leadership
//! transaction compares a history key.

use std::sync::Arc;

use etcd_client::{GetOptions, SortOrder, SortTarget};

use super::shared::Shared;
use super::txn::{self, Entry};
use crate::error::EtcdError;
use crate::ledger::{self, Ended, History, HistoryEntry, Skipped};
use crate::value::{self, from_unix_ms};

/// The entry of the leadership of `term`, held by `id` (reached at
/// `advertise`, made at `since_ms`), ended as `ended` says.
pub(super) fn entry(
    term: i64,
    id: &str,
    advertise: &str,
    since_ms: Option<u64>,
    ended: &Ended,
) -> Entry {
    let held = HistoryEntry {
        term: u64::try_from(term).unwrap_or(0),
        id: id.to_owned(),
        advertise: advertise.to_owned(),
        acquired_at: since_ms.and_then(from_unix_ms),
        ended: None,
    };
    Entry {
        term,
        value: ledger::encode(&held, ended),
    }
}

/// How far past its size the history may grow before a leader trims it:
/// an eighth (at least one), so that trimming costs one write every
/// eighth of the size in leaderships, not one each.
fn slack(size: usize) -> usize {
    size.div_ceil(8)
}

impl Shared {
    /// The history as etcd holds it now: the current leadership (from the
    /// record, when it is electd's), then up to `limit` keys of the
    /// history, newest first; at most `limit` leaderships in all, and at
    /// most the history's size.
    pub(super) async fn history(&self, limit: usize) -> Result<History, EtcdError> {
        let limit = limit.min(self.history_size);
        let client = &self.client;
        let link = client.link().await?;
        let mut kv = link.client.kv_client();
        let (record, revision) = client
            .call_linearizable("range", &link, kv.get(self.layout.record(), None))
            .await?;
        let (start, end) = self.layout.history_range();
        let options = GetOptions::new()
            .with_range(end)
            .with_sort(SortTarget::Key, SortOrder::Descend)
            .with_limit(i64::try_from(limit).unwrap_or(i64::MAX))
            // The record's revision: both reads show one moment of etcd's.
            .with_revision(revision);
        let keys = client
            .call("range", &link, kv.get(start, Some(options)))
            .await?;
        let mut history = History::default();
        let current = record.kvs().first().and_then(|kv| {
            // Trusted as every reader trusts it: bound to the lease it names.
            let named = value::decode(kv.value())
                .filter(|named| kv.lease() != 0 && named.lease == Some(kv.lease()))?;
            Some(HistoryEntry {
                term: u64::try_from(kv.mod_revision()).ok()?,
                id: named.id,
                advertise: named.advertise,
                acquired_at: named.since_ms.and_then(from_unix_ms),
                ended: None,
            })
        });
        let current_term = current.as_ref().map(|c| c.term);
        history.entries.extend(current);
        for kv in keys.kvs() {
            let Some(term) = self
                .layout
                .entry_term(kv.key())
                .and_then(|term| u64::try_from(term).ok())
            else {
                history
                    .skipped
                    .push(Skipped::new(kv.key(), "not a history entry's key"));
                continue;
            };
            if current_term.is_some_and(|current| term >= current) {
                history.skipped.push(Skipped::new(
                    kv.key(),
                    "a term at or after the current leadership's",
                ));
                continue;
            }
            match ledger::decode(term, kv.value()) {
                Ok(entry) => history.entries.push(entry),
                Err(why) => history.skipped.push(Skipped::new(kv.key(), why)),
            }
        }
        history.entries.truncate(limit);
        Ok(history)
    }

    /// Writes `entry` unless one stands for its term: looked up first, as
    /// a transaction that fails its compare still costs a raft write.
    async fn record_entry(&self, entry: &Entry) -> Result<(), EtcdError> {
        let client = &self.client;
        let link = client.link().await?;
        let mut kv = link.client.kv_client();
        let key = self.layout.history_entry(entry.term);
        let options = GetOptions::new().with_count_only();
        let (found, _) = client
            .call_linearizable("range", &link, kv.get(key, Some(options)))
            .await?;
        if found.count() == 0 {
            client
                .transact("txn", &txn::record_entry(&self.layout, entry))
                .await?;
        }
        Ok(())
    }

    /// Writes `entry` where none stands; a failure is only logged (at
    /// debug): the history is a record, not the election.
    pub(super) async fn record_entry_or_log(&self, entry: &Entry) {
        if let Err(err) = self.record_entry(entry).await {
            tracing::debug!(id = %self.id, term = entry.term, %err, "writing a history entry failed");
        }
    }

    /// Deletes the oldest entries beyond the history's size, once there
    /// are more than its slack beyond it.
    async fn trim_history(&self) -> Result<(), EtcdError> {
        let client = &self.client;
        let link = client.link().await?;
        let mut kv = link.client.kv_client();
        let size = self.history_size;
        let (start, end) = self.layout.history_range();
        let options = GetOptions::new()
            .with_range(end)
            .with_keys_only()
            .with_sort(SortTarget::Key, SortOrder::Descend)
            .with_limit(i64::try_from(size + 1).unwrap_or(i64::MAX));
        let (newest, _) = client
            .call_linearizable("range", &link, kv.get(start, Some(options)))
            .await?;
        // `count` is every key in the range, whatever the limit.
        let stored = usize::try_from(newest.count()).unwrap_or(0);
        if stored <= size + slack(size) {
            return Ok(());
        }
        // The newest key beyond the size goes, and everything older.
        let Some(cutoff) = newest.kvs().get(size) else {
            return Ok(());
        };
        client
            .transact("txn", &txn::trim_history(&self.layout, cutoff.key()))
            .await?;
        tracing::debug!(id = %self.id, kept = size, deleted = stored - size, "trimmed the election's history");
        Ok(())
    }

    /// What a new leader does once it leads, off every hand-over's path:
    /// after the time its predecessor (or that one's guardian) had to say
    /// how its leadership ended, writes the entry it `owes` (its own
    /// reading, where nobody who knew wrote one), and trims the history.
    pub(super) fn after_leading(self: &Arc<Self>, owes: Option<Entry>) {
        let shared = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(shared.client.timing().history_grace()).await;
            if let Some(entry) = &owes {
                shared.record_entry_or_log(entry).await;
            }
            if let Err(err) = shared.trim_history().await {
                tracing::debug!(id = %shared.id, %err, "trimming the election's history failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_is_trimmed_an_eighth_past_its_size() {
        assert_eq!(slack(1), 1);
        assert_eq!(slack(8), 1);
        assert_eq!(slack(100), 13);
        assert_eq!(slack(1000), 125);
    }

    #[test]
    fn an_entry_is_the_ledgers_encoding_under_its_term() {
        let ended = Ended {
            at: None,
            ending: crate::ledger::Ending::Expired,
            to: None,
        };
        let e = entry(12, "a", "http://a", Some(5), &ended);
        assert_eq!(e.term, 12);
        let read = ledger::decode(12, e.value.as_bytes()).expect("ours");
        assert_eq!(read.id, "a");
        assert_eq!(read.acquired_at, from_unix_ms(5));
        assert_eq!(read.ended, Some(ended));
    }
}
