//! Counters and timings the election reports, for whoever keeps metrics.
//!
//! The library has no metrics dependency: the daemon implements [`Telemetry`]
//! with Prometheus; an embedding program may ignore it or wire its own.

use std::time::Duration;

use crate::journal::EndReason;

/// How an etcd request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestOutcome {
    /// It did what was asked.
    Ok,
    /// etcd answered, but a condition did not hold (key exists, compare failed).
    Conflict,
    /// It failed (transport, timeout, error answer).
    Error,
}

impl RequestOutcome {
    /// The outcome as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::Ok => "ok",
            RequestOutcome::Conflict => "conflict",
            RequestOutcome::Error => "error",
        }
    }
}

/// How a renewal of our claim ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RenewalOutcome {
    /// Acknowledged: the deadline moved.
    Renewed,
    /// No acknowledgement (transport error, timeout): retried.
    Failed,
    /// etcd says the claim is gone.
    Lost,
}

impl RenewalOutcome {
    /// Every outcome, so that a metric can export each one from the start
    /// (at 0) rather than only those seen.
    pub const ALL: [RenewalOutcome; 3] = [
        RenewalOutcome::Renewed,
        RenewalOutcome::Failed,
        RenewalOutcome::Lost,
    ];

    /// The outcome as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RenewalOutcome::Renewed => "renewed",
            RenewalOutcome::Failed => "failed",
            RenewalOutcome::Lost => "lost",
        }
    }
}

/// Receives what the election does. Every method has a no-op default, and all
/// are called from the election loop, so they must be quick.
pub trait Telemetry: Send + Sync + 'static {
    /// One etcd request, `op` naming it (`create`, `refresh`, `keepalive`, `txn`, …).
    fn etcd_request(&self, op: &'static str, outcome: RequestOutcome, elapsed: Duration) {
        let _ = (op, outcome, elapsed);
    }
    /// One renewal of this node's claim.
    fn renewal(&self, outcome: RenewalOutcome) {
        let _ = outcome;
    }
    /// This node became leader for `term`.
    fn acquired(&self, term: u64) {
        let _ = term;
    }
    /// With shards: this node became the leader of a shard.
    fn shard_acquired(&self) {}
    /// With shards: this node stopped leading a shard, for `reason`
    /// (`Transfer` for a planned move).
    fn shard_ended(&self, reason: EndReason) {
        let _ = reason;
    }
    /// This node's leadership of `term` ended.
    fn ended(&self, term: u64, reason: EndReason) {
        let _ = (term, reason);
    }
}

/// Ignores everything.
pub(crate) struct NoTelemetry;

impl Telemetry for NoTelemetry {}
