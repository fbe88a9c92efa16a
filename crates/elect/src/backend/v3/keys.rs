//! The v3 election's keys: their names under the prefix. Pure: no I/O.
//!
//! Under the prefix `/electd/<election>/`:
//!
//! * `~c/<lease hex>`: one **candidate** key per campaign, bound to its lease
//!   (the queue, ordered by `create_revision`);
//! * `~leader`: the **leader record**, bound to the leader's lease,
//!   created by a transaction that requires it to be absent or handed on
//!   by the one that ends its holder's leadership. Its `mod_revision` (the
//!   revision of the write that made the leadership) is the term, so terms
//!   grow whoever leads next;
//! * `~anchor`: written once, without a lease, when no key of the old rule
//!   is left (below);
//! * anything sorting before `~` (`<lease hex>`) is the **old rule**'s: the
//!   key of electd before the leader record, or of an etcd election client
//!   (`etcdctl elect`, Go's `concurrency.Election`). Those lead when their
//!   key is the oldest under the prefix, and never otherwise.
//!
//! * `~transfer`: a hand-over to a named candidate in progress, bound to
//!   that candidate's lease: while it exists only its target may take the
//!   record, by a transaction that consumes it;
//! * `~preempt`: a candidate of higher priority asking the leader to hand
//!   over, bound to its own lease.

const ANCHOR: &str = "~anchor";
const RECORD: &str = "~leader";
const TRANSFER: &str = "~transfer";
const PREEMPT: &str = "~preempt";
const CANDIDATES: &str = "~c/";
/// Old-rule keys sort before this under the prefix.
const OLD_RULE_END: &str = "~";

/// The anchor's value: says what it is to whoever reads it.
const ANCHOR_VALUE: &str = r#"{"electd":"anchor","about":"leadership is the record ~leader; this key keeps etcd election clients and electd releases without the record from leading"}"#;

/// The keys of one election.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    prefix: String,
}

impl Layout {
    pub(super) fn new(election: &str) -> Layout {
        Layout {
            prefix: format!("/electd/{election}/"),
        }
    }

    pub(super) fn prefix(&self) -> &[u8] {
        self.prefix.as_bytes()
    }

    pub(super) fn anchor(&self) -> Vec<u8> {
        format!("{}{ANCHOR}", self.prefix).into_bytes()
    }

    pub(super) fn anchor_value(&self) -> &'static str {
        ANCHOR_VALUE
    }

    pub(super) fn record(&self) -> Vec<u8> {
        format!("{}{RECORD}", self.prefix).into_bytes()
    }

    pub(super) fn transfer(&self) -> Vec<u8> {
        format!("{}{TRANSFER}", self.prefix).into_bytes()
    }

    pub(super) fn preempt(&self) -> Vec<u8> {
        format!("{}{PREEMPT}", self.prefix).into_bytes()
    }

    pub(super) fn candidate(&self, lease: i64) -> Vec<u8> {
        format!("{}{CANDIDATES}{lease:x}", self.prefix).into_bytes()
    }

    /// The queue's range: every candidate key, `[~c/, ~c0)`.
    pub(super) fn queue_range(&self) -> (Vec<u8>, Vec<u8>) {
        let start = format!("{}{CANDIDATES}", self.prefix).into_bytes();
        let mut end = start.clone();
        // `~c/` ends in '/': the range ends at the next byte up, '0'.
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        (start, end)
    }

    /// The end of the old rule's range, which starts at the prefix.
    pub(super) fn old_rule_end(&self) -> Vec<u8> {
        format!("{}{OLD_RULE_END}", self.prefix).into_bytes()
    }

    /// The lease a key names, when it is a key of ours: `~c/<hex>`.
    pub(super) fn candidate_lease(&self, key: &[u8]) -> Option<i64> {
        let hex = key
            .strip_prefix(self.prefix.as_bytes())?
            .strip_prefix(CANDIDATES.as_bytes())?;
        lease_named(hex)
    }

    pub(super) fn is_old_rule(&self, key: &[u8]) -> bool {
        key.starts_with(self.prefix.as_bytes()) && key < self.old_rule_end().as_slice()
    }
}

/// `<lease hex>` as electd and etcd's election clients write it: lower-case
/// hex of a positive lease, no leading zeros.
pub(super) fn lease_named(hex: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(hex).ok()?;
    let lease = i64::from_str_radix(text, 16).ok()?;
    (lease > 0 && format!("{lease:x}") == text).then_some(lease)
}
