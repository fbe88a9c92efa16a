//! What an election claims in etcd, and the hook that hears of each claim
//! before the request that makes it (so a guardian can release it).

use std::sync::Arc;

use tokio::time::Instant;

/// A claim an election makes in etcd.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Claim {
    /// v3: a lease, told before any key is put with it.
    Lease(i64),
    /// v2: the exact value, told before it is written under the election's key.
    Value(String),
}

/// Called with each claim before the request that makes it.
pub(crate) type ClaimHook = Arc<dyn Fn(&Claim) + Send + Sync>;

/// Tells `hook`, if any, of `claim`.
pub(crate) fn tell(hook: Option<&ClaimHook>, claim: Claim) {
    if let Some(hook) = hook {
        hook(&claim);
    }
}

/// The claim this process holds, as the election loop keeps it: what the
/// shards lead under (one lease, one deadline for all of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeldClaim {
    /// v3: the lease.
    pub id: u64,
    /// Past it, nothing held under this claim may be called led.
    pub deadline: Instant,
}
