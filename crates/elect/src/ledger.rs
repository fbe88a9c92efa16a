//! The election's history as etcd keeps it (v3): one entry per leadership,
//! who held it, when, and how it ended. (Not `history.rs`, which is etcd's
//! own revision history as this node saw it, for the term floor.)
//!
//! An entry is a key `~~history/<term>` under the election's prefix,
//! without a lease, holding JSON marked as electd's:
//!
//! ```json
//! {"electd":"history","term":12,"id":"a","advertise":"http://a:8080",
//!  "acquired_ms":1700000000123,"ended_ms":1700000360456,
//!  "reason":"shutdown","to":"b"}
//! ```
//!
//! Times are Unix milliseconds from the wall clock of the node that wrote
//! them: `acquired_ms` from the record's `since_ms` (written by whoever made
//! the leadership: the candidate taking the record, or the leader handing
//! it over), `ended_ms` from the writer of the entry. Everything read back
//! comes from etcd and may have been written by anyone: decoding never
//! panics, and an entry not in this format is skipped with the reason,
//! never trusted.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::journal::EndReason;
use crate::value::{MAX_FIELD, from_unix_ms, unix_ms};

/// The marker in every entry's value.
const MARKER: &str = "history";

/// The election's history, newest first: what etcd held at one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct History {
    /// The leaderships, newest first: the current one (from the leader
    /// record, with no [`HistoryEntry::ended`]) when someone leads, then
    /// the entries of those that ended.
    pub entries: Vec<HistoryEntry>,
    /// Keys in the history's range that are not entries of electd's, or
    /// are malformed: reported, not read.
    pub skipped: Vec<Skipped>,
}

/// One leadership.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// Its term: the revision of the write that made it.
    pub term: u64,
    /// The holder's id.
    pub id: String,
    /// How the holder was reached.
    pub advertise: String,
    /// When it was made, by the wall clock of the node that made it (the
    /// taker, or the leader that handed the record over); `None` where
    /// unknown (a record of an earlier release).
    pub acquired_at: Option<SystemTime>,
    /// How it ended; `None` for the current leadership.
    pub ended: Option<Ended>,
}

/// How a leadership ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ended {
    /// When, by the wall clock of the node that wrote the entry; `None`
    /// where unknown.
    pub at: Option<SystemTime>,
    /// Why.
    pub ending: Ending,
    /// The successor's id, when the leadership was handed to it.
    pub to: Option<String>,
}

/// Why a leadership ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// Its holder ended it, for the journal's reason (resign, shutdown,
    /// drain, unhealthy, transfer, preempted).
    Holder(EndReason),
    /// Its record went with its lease and nobody who knew why said so: the
    /// lease expired (a process killed without its guardian, a pause or a
    /// partition past the TTL), or someone revoked it.
    Expired,
    /// The holder died and its guardian released the election.
    Released,
    /// Its record went while its lease lived (deleted by someone else), or
    /// while the successor was not watching.
    Unknown,
}

impl Ending {
    /// As the history stores and the daemon shows it: the journal's
    /// `ended` reasons, `expired`, `released` and `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Holder(reason) => reason.as_str(),
            Ending::Expired => "expired",
            Ending::Released => "released",
            Ending::Unknown => "unknown",
        }
    }

    fn parse(text: &str) -> Option<Ending> {
        let others = [Ending::Expired, Ending::Released, Ending::Unknown];
        EndReason::ALL
            .into_iter()
            .map(Ending::Holder)
            .chain(others)
            .find(|ending| ending.as_str() == text)
    }
}

/// A key in the history's range that was not read as an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Skipped {
    /// The key, as text (bytes that are not UTF-8 replaced).
    pub key: String,
    /// Why it was skipped.
    pub why: &'static str,
}

impl Skipped {
    pub(crate) fn new(key: &[u8], why: &'static str) -> Skipped {
        Skipped {
            key: String::from_utf8_lossy(key).into_owned(),
            why,
        }
    }
}

#[derive(Serialize)]
struct Stored<'a> {
    electd: &'a str,
    term: u64,
    id: &'a str,
    advertise: &'a str,
    acquired_ms: Option<u64>,
    ended_ms: Option<u64>,
    reason: &'a str,
    to: Option<&'a str>,
}

/// Owned on the way in (escapes); unknown fields are ignored, so a later
/// release may add some.
#[derive(Deserialize)]
struct Read {
    electd: String,
    term: u64,
    id: String,
    advertise: String,
    #[serde(default)]
    acquired_ms: Option<u64>,
    #[serde(default)]
    ended_ms: Option<u64>,
    reason: String,
    #[serde(default)]
    to: Option<String>,
}

/// The value of an ended leadership's entry.
pub(crate) fn encode(entry: &HistoryEntry, ended: &Ended) -> String {
    // Serializing strings and numbers into a String cannot fail.
    serde_json::to_string(&Stored {
        electd: MARKER,
        term: entry.term,
        id: &entry.id,
        advertise: &entry.advertise,
        acquired_ms: entry.acquired_at.and_then(unix_ms),
        ended_ms: ended.at.and_then(unix_ms),
        reason: ended.ending.as_str(),
        to: ended.to.as_deref(),
    })
    .unwrap_or_default()
}

/// Reads the entry stored under the key of `term`; why not, when it is not
/// one of electd's.
pub(crate) fn decode(term: u64, raw: &[u8]) -> Result<HistoryEntry, &'static str> {
    let read: Read =
        serde_json::from_slice(raw).map_err(|_| "not JSON in electd's history format")?;
    if read.electd != MARKER {
        return Err("not marked as electd's history");
    }
    if read.term != term {
        return Err("its term is not its key's");
    }
    let too_long = |field: &str| field.len() > MAX_FIELD;
    if read.id.is_empty()
        || too_long(&read.id)
        || too_long(&read.advertise)
        || read
            .to
            .as_deref()
            .is_some_and(|to| to.is_empty() || too_long(to))
    {
        return Err("an id, address or successor that is empty or too long");
    }
    let ending = Ending::parse(&read.reason).ok_or("a reason electd does not write")?;
    let time = |ms: Option<u64>| match ms {
        None => Ok(None),
        Some(ms) => from_unix_ms(ms).map(Some).ok_or("a time out of range"),
    };
    Ok(HistoryEntry {
        term,
        id: read.id,
        advertise: read.advertise,
        acquired_at: time(read.acquired_ms)?,
        ended: Some(Ended {
            at: time(read.ended_ms)?,
            ending,
            to: read.to,
        }),
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use proptest::prelude::*;

    use super::*;

    fn at(ms: u64) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::from_millis(ms))
    }

    fn entry(term: u64) -> HistoryEntry {
        HistoryEntry {
            term,
            id: "a".into(),
            advertise: "http://a:8080".into(),
            acquired_at: at(1_700_000_000_123),
            ended: None,
        }
    }

    fn ended(ending: Ending, to: Option<&str>) -> Ended {
        Ended {
            at: at(1_700_000_360_456),
            ending,
            to: to.map(str::to_owned),
        }
    }

    #[test]
    fn an_entry_round_trips() {
        let e = ended(Ending::Holder(EndReason::Shutdown), Some("b"));
        let value = encode(&entry(12), &e);
        assert_eq!(
            value,
            r#"{"electd":"history","term":12,"id":"a","advertise":"http://a:8080","acquired_ms":1700000000123,"ended_ms":1700000360456,"reason":"shutdown","to":"b"}"#
        );
        let read = decode(12, value.as_bytes()).unwrap();
        assert_eq!(read.ended, Some(e));
        assert_eq!(
            HistoryEntry {
                ended: None,
                ..read
            },
            entry(12)
        );
    }

    #[test]
    fn every_reason_reads_back_as_itself() {
        let reasons = EndReason::ALL.map(Ending::Holder).into_iter().chain([
            Ending::Expired,
            Ending::Released,
            Ending::Unknown,
        ]);
        for ending in reasons {
            let value = encode(&entry(3), &ended(ending, None));
            let read = decode(3, value.as_bytes()).unwrap();
            assert_eq!(read.ended.map(|e| e.ending), Some(ending));
        }
    }

    #[test]
    fn unknown_times_are_null() {
        let e = Ended {
            at: None,
            ..ended(Ending::Expired, None)
        };
        let start = HistoryEntry {
            acquired_at: None,
            ..entry(5)
        };
        let value = encode(&start, &e);
        assert!(
            value.contains(r#""acquired_ms":null,"ended_ms":null"#),
            "{value}"
        );
        assert_eq!(decode(5, value.as_bytes()).unwrap().acquired_at, None);
    }

    #[test]
    fn what_is_not_electds_is_skipped_with_its_reason() {
        let good = encode(&entry(7), &ended(Ending::Released, None));
        let cases: [(&[u8], &str); 9] = [
            (b"8080", "not JSON in electd's history format"),
            (b"{}", "not JSON in electd's history format"),
            (b"\xff\xfe", "not JSON in electd's history format"),
            (
                br#"{"electd":"anchor","term":7,"id":"a","advertise":"","reason":"resign"}"#,
                "not marked as electd's history",
            ),
            (
                br#"{"electd":"history","term":8,"id":"a","advertise":"","reason":"resign"}"#,
                "its term is not its key's",
            ),
            (
                br#"{"electd":"history","term":7,"id":"","advertise":"","reason":"resign"}"#,
                "an id, address or successor that is empty or too long",
            ),
            (
                br#"{"electd":"history","term":7,"id":"a","advertise":"","reason":"bored"}"#,
                "a reason electd does not write",
            ),
            (
                br#"{"electd":"history","term":7,"id":"a","advertise":"","reason":"resign","ended_ms":253402300800000}"#,
                "a time out of range",
            ),
            (
                br#"{"electd":"history","term":7,"id":"a","advertise":"","reason":"resign","to":""}"#,
                "an id, address or successor that is empty or too long",
            ),
        ];
        for (raw, why) in cases {
            assert_eq!(decode(7, raw).map(|_| ()), Err(why), "{raw:?}");
        }
        let long = good.replace("http://a:8080", &"x".repeat(MAX_FIELD + 1));
        assert!(decode(7, long.as_bytes()).is_err());
        // A later release's field is no reason to skip an entry.
        let later = good.replace('}', r#","added_later":true}"#);
        assert!(decode(7, later.as_bytes()).is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(term in 1u64.., raw in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(term, &raw);
        }

        #[test]
        fn arbitrary_entries_round_trip(
            term in 1u64..=i64::MAX as u64,
            id in "[^\u{0}]{1,64}",
            advertise in ".{0,64}",
            acquired in proptest::option::of(0u64..=crate::value::MAX_UNIX_MS),
            ended_at in proptest::option::of(0u64..=crate::value::MAX_UNIX_MS),
            to in proptest::option::of("[a-z0-9-]{1,16}"),
        ) {
            let start = HistoryEntry {
                term,
                id,
                advertise,
                acquired_at: acquired.and_then(at),
                ended: None,
            };
            let end = Ended { at: ended_at.and_then(at), ending: Ending::Holder(EndReason::Transfer), to };
            let read = decode(term, encode(&start, &end).as_bytes());
            prop_assert_eq!(read, Ok(HistoryEntry { ended: Some(end), ..start }));
        }
    }
}
