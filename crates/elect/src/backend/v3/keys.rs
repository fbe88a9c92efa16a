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
//!
//! * `~~history/<term>`: the election's **history**, one entry per
//!   leadership, without a lease (see `ledger.rs`). Its keys sort after every
//!   other key of the election, so that the election itself (the mirror, its
//!   watch and its count, the old rule's oldest-key compare) covers
//!   `[prefix, ~~history/)` and never sees one, and the history everything
//!   from there to the end of the prefix.

const ANCHOR: &str = "~anchor";
const RECORD: &str = "~leader";
const TRANSFER: &str = "~transfer";
const PREEMPT: &str = "~preempt";
const CANDIDATES: &str = "~c/";
/// Sorts after every other key of the election (`~~` after `~transfer`).
const HISTORY: &str = "~~history/";
const SHARDS: &str = "~~shards/";
/// Digits of a term in a history key: every positive `i64`, zero-padded
/// so that keys sort by term.
const TERM_DIGITS: usize = 19;
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

    /// The election's own keys, everything but its history:
    /// `[prefix, prefix~~history/)`.
    pub(super) fn election_range(&self) -> (Vec<u8>, Vec<u8>) {
        (self.prefix.clone().into_bytes(), self.history_start())
    }

    /// The history's range: from `~~history/` to the end of the prefix.
    /// Anything in it that is not an entry's key is reported, never read.
    pub(super) fn history_range(&self) -> (Vec<u8>, Vec<u8>) {
        let start = self.history_start();
        (start.clone(), after_every_key_under(start))
    }

    /// Shard `shard`'s record (`--shards`), bound to its leader's lease.
    pub(super) fn shard(&self, shard: u32) -> Vec<u8> {
        format!("{}{SHARDS}{shard}", self.prefix).into_bytes()
    }

    /// Every shard record: after the history's keys, out of the election's
    /// range (which every follower reads) and of the history's.
    pub(super) fn shards_range(&self) -> (Vec<u8>, Vec<u8>) {
        let start = format!("{}{SHARDS}", self.prefix).into_bytes();
        (start.clone(), after_every_key_under(start))
    }

    /// The shard a record's key names, if it is one in electd's form.
    pub(super) fn shard_number(&self, key: &[u8]) -> Option<u32> {
        let digits = key
            .strip_prefix(self.prefix.as_bytes())?
            .strip_prefix(SHARDS.as_bytes())?;
        let shard: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        (self.shard(shard) == key).then_some(shard)
    }

    fn history_start(&self) -> Vec<u8> {
        format!("{}{HISTORY}", self.prefix).into_bytes()
    }

    /// The history entry of the leadership of `term`.
    pub(super) fn history_entry(&self, term: i64) -> Vec<u8> {
        format!(
            "{}{HISTORY}{term:0width$}",
            self.prefix,
            width = TERM_DIGITS
        )
        .into_bytes()
    }

    /// The term a history key names, when it is an entry's key.
    pub(super) fn entry_term(&self, key: &[u8]) -> Option<i64> {
        let digits = key
            .strip_prefix(self.prefix.as_bytes())?
            .strip_prefix(HISTORY.as_bytes())?;
        if digits.len() != TERM_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let term: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        (term > 0).then_some(term)
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
/// The end of the range of every key that starts with `prefix`, which
/// ends in '/': the next byte up, '0'.
fn after_every_key_under(mut prefix: Vec<u8>) -> Vec<u8> {
    if let Some(last) = prefix.last_mut() {
        *last += 1;
    }
    prefix
}

pub(super) fn lease_named(hex: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(hex).ok()?;
    let lease = i64::from_str_radix(text, 16).ok()?;
    (lease > 0 && format!("{lease:x}") == text).then_some(lease)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keys_sort_by_term_after_every_key_of_the_election() {
        let layout = Layout::new("leader");
        let (start, end) = layout.election_range();
        let (history, prefix_end) = layout.history_range();
        assert_eq!(start, layout.prefix());
        assert_eq!(end, history, "the two ranges meet");
        assert_eq!(prefix_end, b"/electd/leader/~~history0");
        let (shards, shards_end) = layout.shards_range();
        assert!(shards >= prefix_end && shards_end <= b"/electd/leader0".to_vec());
        assert_eq!(layout.shard_number(&layout.shard(9999)), Some(9999));
        for foreign in [
            "/electd/leader/~~shards/007",
            "/electd/leader/~~shards/x",
            "/electd/leader/~~shards/-1",
        ] {
            assert_eq!(layout.shard_number(foreign.as_bytes()), None, "{foreign}");
        }
        for key in [
            layout.anchor(),
            layout.record(),
            layout.transfer(),
            layout.preempt(),
            layout.candidate(0x7fff_ffff_ffff_ffff),
            layout.old_rule_end(),
        ] {
            assert!(key < end, "{}", String::from_utf8_lossy(&key));
        }
        let entries = [1, 9, 10, 1_000_000, i64::MAX].map(|term| layout.history_entry(term));
        assert!(entries.windows(2).all(|w| w[0] < w[1]), "by term");
        assert!(entries.iter().all(|k| *k >= history && *k < prefix_end));
        assert_eq!(
            layout.history_entry(42),
            b"/electd/leader/~~history/0000000000000000042"
        );
    }

    #[test]
    fn only_an_entrys_key_names_a_term() {
        let layout = Layout::new("leader");
        assert_eq!(layout.entry_term(&layout.history_entry(42)), Some(42));
        assert_eq!(
            layout.entry_term(&layout.history_entry(i64::MAX)),
            Some(i64::MAX)
        );
        for name in [
            "~~history/42",
            "~~history/0000000000000000000",
            "~~history/000000000000000004x",
            "~~history/+000000000000000042",
            "~~history/00000000000000000042",
            "~~history/9999999999999999999",
            "~~history/",
            "~~zzz",
        ] {
            let key = [layout.prefix(), name.as_bytes()].concat();
            assert_eq!(layout.entry_term(&key), None, "{name}");
        }
        let other = Layout::new("other").history_entry(42);
        assert_eq!(layout.entry_term(&other), None, "another election's");
    }
}
