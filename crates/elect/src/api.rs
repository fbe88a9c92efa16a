//! Which etcd API an election speaks, and what each can honour: plain
//! data that every other module may use.

use std::fmt;
use std::time::Duration;

/// Which etcd API speaks for the election. Exhaustive on purpose, unlike
/// the crate's other enums: etcd has these two (3.6 dropped v2), and code
/// that handles each should be told when that changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Api {
    /// The v2 keys API: one key with a TTL (the seed's protocol; etcd 3.4/3.5 with `--enable-v2`).
    V2,
    /// The v3 API: a lease and a key per candidate, one leader record whose revision is the term.
    V3,
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Api::V2 => "v2",
            Api::V3 => "v3",
        })
    }
}

impl Api {
    /// The shortest TTL the API can honour: v2 takes whole seconds, and a v3
    /// lease is never granted for less than 2 s.
    pub fn min_ttl(self) -> Duration {
        match self {
            Api::V2 => Duration::from_secs(1),
            Api::V3 => Duration::from_secs(2),
        }
    }
}
