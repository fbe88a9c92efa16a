//! The value a candidate stores in etcd, and how a stored value is read back.
//!
//! Everything read here comes from etcd and may have been written by another
//! program, an older version or a person with `etcdctl`: parsing never panics
//! and anything that is not our format is reported as a foreign value.

use serde::{Deserialize, Serialize};

/// Longest id or advertise URL we accept from a stored value; longer ones are
/// treated as foreign rather than copied into every status answer.
const MAX_FIELD: usize = 1024;

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
}

fn yes() -> bool {
    true
}

/// Encodes this process's value: `{"id":…,"advertise":…,"nonce":…}` (v2's key).
pub(crate) fn encode(id: &str, advertise: &str, nonce: &str) -> String {
    encode_with(id, advertise, nonce, None, None)
}

/// Encodes a v3 candidate key's value: ours, with what the candidate offers.
pub(crate) fn encode_candidate(
    id: &str,
    advertise: &str,
    nonce: &str,
    candidacy: &Candidacy,
) -> String {
    encode_with(id, advertise, nonce, None, Some(candidacy))
}

/// Encodes v3's leader record: the candidate's value and its lease (hex).
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
    )
}

fn encode_with(
    id: &str,
    advertise: &str,
    nonce: &str,
    lease: Option<&str>,
    candidacy: Option<&Candidacy>,
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
    })
    .unwrap_or_default()
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
            prop_assert_eq!(decode(v.as_bytes()), Some(Named { id: id.clone(), advertise: adv.clone(), nonce: nonce.clone(), lease: None, candidacy: Candidacy::default(), accepts_record: false }));
        }
    }
}
