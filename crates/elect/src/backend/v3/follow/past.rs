//! What a follower saw of the leaderships before its own: the record it
//! last saw, and how that went. A candidate that takes the record owes the
//! history the entry of the leadership it saw end, in case nobody who knew
//! how it ended writes one (a holder killed with its guardian, paused past
//! its TTL, cut off); it writes it a while after it leads, only where none
//! stands (`ledger.rs`).

use std::time::SystemTime;

use super::super::ledger;
use super::super::shared::Seen;
use super::super::txn::Entry;
use super::state::Follower;
use crate::ledger::{Ended, Ending};
use crate::value;

impl Follower {
    /// Notes the record as the mirror shows it after a change, or after a
    /// fresh read: a new leadership, or the last one's record gone. Gone
    /// together with every key of its lease (the holder's candidate key
    /// too), the lease ended: an expiry, or a revoke nobody explained
    /// (`expired`). Gone alone, someone deleted it while its lease lived
    /// (`unknown`). What was seen outlives this follow task (`Shared::seen`),
    /// so a node that campaigns again after its own claim went (every lease
    /// expired while etcd stalled) still owes the entry of the leadership it
    /// saw last.
    pub(super) fn note_record(&mut self) {
        let last_lease = self.shared.seen().as_ref().map(|s| (s.term, s.lease));
        let mirror = self.mirror();
        match mirror.get(&self.shared.layout.record()) {
            Some(kv) => {
                if last_lease.is_some_and(|(term, _)| term == kv.mod_revision) {
                    return;
                }
                // Trusted as every reader trusts it: bound to the lease it names.
                let holder = value::decode(&kv.value)
                    .filter(|named| kv.lease != 0 && named.lease == Some(kv.lease));
                let seen = holder.map(|holder| Seen {
                    term: kv.mod_revision,
                    lease: kv.lease,
                    holder,
                    gone: None,
                });
                drop(mirror);
                *self.shared.seen() = seen;
            }
            None => {
                let with_lease = last_lease.is_some_and(|(_, lease)| !mirror.holds_lease(lease));
                drop(mirror);
                let ending = if with_lease {
                    Ending::Expired
                } else {
                    Ending::Unknown
                };
                if let Some(seen) = self.shared.seen().as_mut()
                    && seen.gone.is_none()
                {
                    seen.gone = Some((SystemTime::now(), ending));
                }
            }
        }
    }

    /// The entry this node owes as it takes the record: the leadership it
    /// saw end, if it saw one end, by its own reading and clock.
    pub(super) fn owed_entry(&self) -> Option<Entry> {
        let seen = self.shared.seen().clone()?;
        let (at, ending) = seen.gone?;
        let ended = Ended {
            at: Some(at),
            ending,
            to: None,
        };
        Some(ledger::entry(
            seen.term,
            &seen.holder.id,
            &seen.holder.advertise,
            seen.holder.since_ms,
            &ended,
        ))
    }
}
