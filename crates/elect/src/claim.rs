//! What an election claims in etcd, and the hook that hears of each claim
//! before the request that makes it (so a guardian can release it).

use std::sync::Arc;

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
