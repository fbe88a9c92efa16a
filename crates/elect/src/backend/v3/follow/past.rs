//! What a follower saw of the leaderships before its own: the record it
//! last saw, and how that went. A candidate that takes the record owes the
//! history the entry of the leadership it saw end, in case nobody who knew
//! how it ended writes one (a holder killed with its guardian, paused past
//! its TTL, cut off); it writes it a while after it leads, only where none
//! stands (`ledger.rs`).

use std::time::SystemTime;

use super::super::ledger;
use super::super::txn::Entry;
use super::state::{Follower, Seen};
use crate::ledger::{Ended, Ending};
use crate::value;

impl Follower {
    /// Notes the record as the mirror shows it after a change: a new
    /// leadership, or the last one's record gone. Gone together with every
    /// key of its lease (the holder's candidate key too), the lease ended:
    /// an expiry, or a revoke nobody explained (`expired`). Gone alone,
    /// someone deleted it while its lease lived (`unknown`).
    pub(super) fn note_record(&mut self) {
        let mirror = self.mirror();
        match mirror.get(&self.shared.layout.record()) {
            Some(kv) => {
                if self
                    .seen
                    .as_ref()
                    .is_some_and(|s| s.term == kv.mod_revision)
                {
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
                self.seen = seen;
            }
            None => {
                let with_lease = self
                    .seen
                    .as_ref()
                    .is_some_and(|s| !mirror.holds_lease(s.lease));
                drop(mirror);
                let ending = if with_lease {
                    Ending::Expired
                } else {
                    Ending::Unknown
                };
                self.saw_gone(ending);
            }
        }
    }

    /// A fresh read found no record: whatever this follower last saw went
    /// while it was not watching (`unknown`).
    pub(super) fn note_reread(&mut self) {
        if self.mirror().get(&self.shared.layout.record()).is_none() {
            self.saw_gone(Ending::Unknown);
        }
    }

    fn saw_gone(&mut self, ending: Ending) {
        if let Some(seen) = self.seen.as_mut()
            && seen.gone.is_none()
        {
            seen.gone = Some((SystemTime::now(), ending));
        }
    }

    /// The entry this node owes as it takes the record: the leadership it
    /// saw end, if it saw one end, by its own reading and clock.
    pub(super) fn owed_entry(&self) -> Option<Entry> {
        let seen = self.seen.as_ref()?;
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
