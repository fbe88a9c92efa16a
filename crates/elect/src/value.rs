//! The value a candidate stores in etcd, and how a stored value is read back.
//!
//! Everything read here comes from etcd and may have been written by another
//! program, an older version or a person with `etcdctl`: parsing never panics
//! and anything that is not our format is reported as a foreign value.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Longest id or advertise URL we accept from a stored value; longer ones are
/// treated as foreign rather than copied into every status answer.
pub(crate) const MAX_FIELD: usize = 1024;

#[derive(Serialize)]
struct Stored<'a> {
    id: &'a str,
    advertise: &'a str,
    nonce: &'a str,
    /// v3's leader record names the lease of the candidate it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    lease: Option<&'a str>,
    /// v3: what the candidate offers (absent in v2 and in values of electd
    /// before priorities: read as priority 0, healthy, not drained).
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthy: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drained: Option<bool>,
    /// v3: this candidate understands a leader record handed to it in the
    /// transaction that ends its predecessor's (whose term is the record's
    /// `mod_revision`, not its `create_revision`): absent in values of
    /// earlier releases, which must never be handed a record.
    #[serde(skip_serializing_if = "Option::is_none")]
    accepts_record: Option<bool>,
    /// v3's leader record: when its leadership was made (the writer's wall
    /// clock, Unix milliseconds), for the history entry written when it
    /// ends. Nodes of earlier releases ignore it (serde ignores fields it
    /// does not know; a test below holds them to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    since_ms: Option<u64>,
}

/// Owned on the way in: a borrowed `&str` cannot hold a JSON string with escapes.
#[derive(Deserialize)]
struct Read {
    id: String,
    advertise: String,
    #[serde(default)]
    nonce: String,
    #[serde(default)]
    lease: Option<String>,
    #[serde(default)]
    priority: i64,
    #[serde(default = "yes")]
    healthy: bool,
    #[serde(default)]
    drained: bool,
    #[serde(default)]
    accepts_record: bool,
    #[serde(default)]
    since_ms: Option<u64>,
}

fn yes() -> bool {
    true
}

/// Encodes this process's value: `{"id":…,"advertise":…,"nonce":…}` (v2's key).
pub(crate) fn encode(id: &str, advertise: &str, nonce: &str) -> String {
    encode_with(id, advertise, nonce, None, None, None)
}

/// Encodes a v3 candidate key's value: ours, with what the candidate offers.
pub(crate) fn encode_candidate(
    id: &str,
    advertise: &str,
    nonce: &str,
    candidacy: &Candidacy,
) -> String {
    encode_with(id, advertise, nonce, None, Some(candidacy), None)
}

/// Encodes a candidate's value bound to its lease (hex): a preemption
/// request's.
pub(crate) fn encode_record(
    id: &str,
    advertise: &str,
    nonce: &str,
    lease: i64,
    candidacy: &Candidacy,
) -> String {
    encode_with(
        id,
        advertise,
        nonce,
        Some(&format!("{lease:x}")),
        Some(candidacy),
        None,
    )
}

/// Encodes a shard's record: its holder's value and lease (hex).
pub(crate) fn encode_shard(id: &str, advertise: &str, nonce: &str, lease: i64) -> String {
    encode_with(
        id,
        advertise,
        nonce,
        Some(&format!("{lease:x}")),
        None,
        None,
    )
}

/// Encodes v3's leader record: the holder's value, its lease (hex), and
/// when the leadership was made (`since`, the writer's wall clock).
pub(crate) fn encode_leader_record(
    id: &str,
    advertise: &str,
    nonce: &str,
    lease: i64,
    candidacy: &Candidacy,
    since: SystemTime,
) -> String {
    encode_with(
        id,
        advertise,
        nonce,
        Some(&format!("{lease:x}")),
        Some(candidacy),
        unix_ms(since),
    )
}

fn encode_with(
    id: &str,
    advertise: &str,
    nonce: &str,
    lease: Option<&str>,
    candidacy: Option<&Candidacy>,
    since_ms: Option<u64>,
) -> String {
    // Serializing string, number and bool fields into a String cannot fail.
    serde_json::to_string(&Stored {
        id,
        advertise,
        nonce,
        lease,
        priority: candidacy.map(|c| c.priority),
        healthy: candidacy.map(|c| c.healthy),
        drained: candidacy.map(|c| c.drained),
        // Every v3 value of this release (those with a candidacy) says so.
        accepts_record: candidacy.map(|_| true),
        since_ms,
    })
    .unwrap_or_default()
}

/// The latest instant stored: 9999-12-31T23:59:59.999Z, so that every
/// time read back has a four-digit year.
pub(crate) const MAX_UNIX_MS: u64 = 253_402_300_799_999;

/// A wall-clock time as stored: Unix milliseconds (`None` before 1970 or
/// past [`MAX_UNIX_MS`]: a clock that wrong is not worth keeping).
pub(crate) fn unix_ms(at: SystemTime) -> Option<u64> {
    let ms = at.duration_since(UNIX_EPOCH).ok()?.as_millis();
    u64::try_from(ms).ok().filter(|&ms| ms <= MAX_UNIX_MS)
}

/// A stored time read back; `None` when out of range (not ours).
pub(crate) fn from_unix_ms(ms: u64) -> Option<SystemTime> {
    (ms <= MAX_UNIX_MS).then(|| UNIX_EPOCH + Duration::from_millis(ms))
}

/// What a candidate offers: who should lead among several is decided by
/// these (highest priority among the healthy, undrained; then queue order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidacy {
    /// Higher is preferred.
    pub priority: i64,
    /// The program's own check of its health passes.
    pub healthy: bool,
    /// Withdrawn by an operator (maintenance).
    pub drained: bool,
}

impl Default for Candidacy {
    fn default() -> Self {
        Candidacy {
            priority: 0,
            healthy: true,
            drained: false,
        }
    }
}

impl Candidacy {
    /// Whether it may lead: healthy and not drained.
    pub fn eligible(&self) -> bool {
        self.healthy && !self.drained
    }
}

/// Who a stored value names, when it is one of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Named {
    pub id: String,
    pub advertise: String,
    /// The writing process's nonce (empty when the value has none).
    pub nonce: String,
    /// A leader record's lease, as the value names it.
    pub lease: Option<i64>,
    /// What the candidate offers.
    pub candidacy: Candidacy,
    /// Whether it may be handed a leader record (see `Stored`).
    pub accepts_record: bool,
    /// A leader record's making, as its writer's clock said (Unix ms;
    /// `None` in records of earlier releases, or out of range).
    pub since_ms: Option<u64>,
}

/// Reads a stored value; `None` means the value is foreign.
pub(crate) fn decode(raw: &[u8]) -> Option<Named> {
    let read: Read = serde_json::from_slice(raw).ok()?;
    if read.id.is_empty() || read.id.len() > MAX_FIELD || read.advertise.len() > MAX_FIELD {
        return None;
    }
    let lease = match read.lease {
        Some(hex) => Some(i64::from_str_radix(&hex, 16).ok()?),
        None => None,
    };
    Some(Named {
        id: read.id,
        advertise: read.advertise,
        nonce: read.nonce,
        lease,
        candidacy: Candidacy {
            priority: read.priority,
            healthy: read.healthy,
            drained: read.drained,
        },
        accepts_record: read.accepts_record,
        since_ms: read.since_ms.filter(|&ms| ms <= MAX_UNIX_MS),
    })
}

/// A fresh random nonce: 128 bits, hex.
pub(crate) fn new_nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let v = encode("a-8080", "http://127.0.0.1:8080", "00ff");
        assert_eq!(
            v,
            r#"{"id":"a-8080","advertise":"http://127.0.0.1:8080","nonce":"00ff"}"#
        );
        assert_eq!(
            decode(v.as_bytes()),
            Some(Named {
                id: "a-8080".into(),
                advertise: "http://127.0.0.1:8080".into(),
                nonce: "00ff".into(),
                lease: None,
                candidacy: Candidacy::default(),
                accepts_record: false,
                since_ms: None,
            })
        );
        let offer = Candidacy {
            priority: 5,
            healthy: false,
            drained: true,
        };
        let r = encode_record("a", "u", "00ff", 0x694d, &offer);
        assert_eq!(
            r,
            r#"{"id":"a","advertise":"u","nonce":"00ff","lease":"694d","priority":5,"healthy":false,"drained":true,"accepts_record":true}"#
        );
        assert_eq!(decode(r.as_bytes()).unwrap().candidacy, offer);
        assert_eq!(decode(r.as_bytes()).unwrap().lease, Some(0x694d));
        assert!(decode(r.as_bytes()).unwrap().accepts_record);
        // A value of an earlier release says nothing: never handed a record.
        let earlier = br#"{"id":"a","advertise":"u","nonce":"00ff","priority":5}"#;
        assert!(!decode(earlier).unwrap().accepts_record);
        assert_eq!(
            decode(br#"{"id":"a","advertise":"u","lease":"xyz"}"#),
            None,
            "a lease that is not hex"
        );
    }

    #[test]
    fn a_leader_record_says_when_its_leadership_was_made() {
        let since = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let r = encode_leader_record("a", "u", "00ff", 0x694d, &Candidacy::default(), since);
        assert!(
            r.ends_with(r#","accepts_record":true,"since_ms":1700000000123}"#),
            "{r}"
        );
        let named = decode(r.as_bytes()).unwrap();
        assert_eq!(named.since_ms, Some(1_700_000_000_123));
        assert_eq!(named.since_ms.and_then(from_unix_ms), Some(since));
        // Out of range: kept out, as a clock that wrong would be.
        let far = br#"{"id":"a","advertise":"u","since_ms":253402300800000}"#;
        assert_eq!(decode(far).unwrap().since_ms, None);
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_secs(1)), None);
    }

    /// What a node of the previous release reads a record of this one with:
    /// its own fields (the `Read` of 0.2.0 and of the one-write release),
    /// and serde's default of ignoring the rest. A record with `since_ms`
    /// (and any field a later release adds) must still read as the
    /// candidate it names, or such a node would take it for a foreign value.
    #[test]
    fn nodes_of_the_previous_release_ignore_fields_they_do_not_know() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct PreviousRelease {
            id: String,
            advertise: String,
            #[serde(default)]
            nonce: String,
            #[serde(default)]
            lease: Option<String>,
            #[serde(default)]
            priority: i64,
            #[serde(default = "yes")]
            healthy: bool,
            #[serde(default)]
            drained: bool,
            #[serde(default)]
            accepts_record: bool,
        }
        let since = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let record =
            encode_leader_record("a", "http://a", "00ff", 0x10, &Candidacy::default(), since);
        let read: PreviousRelease = serde_json::from_str(&record).expect("read by 0.2.x");
        assert_eq!(read.id, "a");
        assert_eq!(read.lease.as_deref(), Some("10"));
        // And this release reads a later one's record the same way.
        let later = record.replace('}', r#","added_later":{"x":[1]}}"#);
        assert_eq!(decode(later.as_bytes()).unwrap().id, "a");
    }

    #[test]
    fn foreign_values_are_recognised() {
        for raw in [
            &b"8080"[..],
            b"",
            b"{}",
            b"{\"id\":\"\",\"advertise\":\"x\"}",
            b"{\"id\":1,\"advertise\":\"x\"}",
            b"\xff\xfe",
            b"null",
        ] {
            assert_eq!(decode(raw), None, "{raw:?}");
        }
        let long = format!(r#"{{"id":"{}","advertise":"x"}}"#, "a".repeat(5000));
        assert_eq!(decode(long.as_bytes()), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&raw);
        }

        #[test]
        fn arbitrary_strings_round_trip(id in "[^\u{0}]{1,64}", adv in ".{0,64}", nonce in "[0-9a-f]{0,32}") {
            let v = encode(&id, &adv, &nonce);
            prop_assert_eq!(decode(v.as_bytes()), Some(Named { id: id.clone(), advertise: adv.clone(), nonce: nonce.clone(), lease: None, candidacy: Candidacy::default(), accepts_record: false, since_ms: None }));
        }
    }
}
