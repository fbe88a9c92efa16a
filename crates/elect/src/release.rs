//! Releasing a process's claims from outside it, once it is certainly dead:
//! what a guardian process does, so that a crash on a live host hands over
//! as fast as a resign instead of waiting out the TTL.
//!
//! The election tells each claim ([`ConfigBuilder::on_claim`]) *before* the
//! request that makes it, so no claim exists that the guardian does not
//! know. Releasing is what a resign does, and touches only what the dead
//! process itself wrote: v3 revokes its lease (a lease id is never handed
//! out twice, and the candidate key, a leader record and a transfer to it go
//! with it), v2 deletes the key only while it holds the exact value the
//! process wrote (its nonce makes it unique). Whatever is already gone is
//! left alone.
//!
//! [`ConfigBuilder::on_claim`]: crate::ConfigBuilder::on_claim

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::api::Api;
use crate::backend::v2::V2;
use crate::backend::v3::V3;
use crate::claim::Claim;
use crate::config::Config;
use crate::error::Error;
use crate::history::{Revisions, Saved};
use crate::vitals::Vitals;

/// Releases the claims of a process that is gone, with the same
/// configuration (endpoints, TLS, credentials) it used.
///
/// ```no_run
/// # async fn run(config: elect::Config, lease: i64) -> Result<(), elect::Error> {
/// let releaser = elect::Releaser::new(&config)?;
/// // Connect ahead of time: a release then costs one round trip.
/// releaser.connect().await?;
/// // ... once the process that made the claim is certainly dead:
/// releaser.release(&elect::Claim::Lease(lease)).await?;
/// # Ok(())
/// # }
/// ```
pub struct Releaser {
    protocol: Protocol,
}

/// The etcd API the claims were made in.
enum Protocol {
    V2(V2),
    V3(Box<V3>),
}

impl Releaser {
    /// A releaser for the election `config` describes; no I/O yet.
    pub fn new(config: &Config) -> Result<Releaser, Error> {
        // Its own cells: nothing it sees changes the election's state.
        let health = Arc::new(Vitals::new());
        let revisions = Arc::new(Revisions::new(Saved::default()));
        let (changes, _) = mpsc::unbounded_channel();
        let protocol = match config.api {
            Api::V2 => Protocol::V2(V2::new(config, health, revisions, changes)?),
            Api::V3 => Protocol::V3(Box::new(V3::new(config, health, revisions, changes, None)?)),
        };
        Ok(Releaser { protocol })
    }

    /// Connects to etcd (v3; v2 connects on its first request), so that a
    /// release later costs one round trip.
    pub async fn connect(&self) -> Result<(), Error> {
        match &self.protocol {
            Protocol::V2(_) => Ok(()),
            Protocol::V3(v3) => Ok(v3.connect().await?),
        }
    }

    /// v3: hands the leader record on in one write, to whose turn it is,
    /// when it is bound to one of `claims` (the dead process led): a
    /// successor then leads one raft write after the death, not two. A
    /// record already handed to anyone else is left alone. Whether it
    /// handed it on; release the claims after it, either way. v2 has no
    /// record to hand on.
    pub async fn hand_on(&self, claims: &[Claim]) -> Result<bool, Error> {
        let Protocol::V3(v3) = &self.protocol else {
            return Ok(false);
        };
        let leases: Vec<i64> = claims
            .iter()
            .filter_map(|claim| match claim {
                Claim::Lease(lease) => Some(*lease),
                Claim::Value(_) => None,
            })
            .collect();
        if leases.is_empty() {
            return Ok(false);
        }
        Ok(v3.hand_on_after_death(&leases).await?)
    }

    /// v3: once the claims are released, writes the history entry of the
    /// leadership the dead process held when [`Releaser::hand_on`] found
    /// its record still bound to one of its claims and did not hand it on
    /// (reason `released`), unless an entry stands for it already (its
    /// holder's, or a successor's). A failure is only logged.
    pub async fn record_released(&self) {
        if let Protocol::V3(v3) = &self.protocol {
            v3.record_released().await;
        }
    }

    /// Releases `claim` if it is still there; `Ok` also when it is already
    /// gone. A claim of the other API is refused.
    pub async fn release(&self, claim: &Claim) -> Result<(), Error> {
        let released = match (&self.protocol, claim) {
            (Protocol::V3(v3), Claim::Lease(lease)) => v3.revoke(*lease).await,
            (Protocol::V2(v2), Claim::Value(value)) => v2.release_value(value).await,
            _ => return Err(Error::OtherApi(claim.clone())),
        };
        Ok(released?)
    }
}
