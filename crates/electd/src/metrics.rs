//! `/metrics`: Prometheus exposition, from the `prometheus-client` crate.
//!
//! Counters are fed by the election through [`elect::Telemetry`]; the
//! leadership gauges are set from the deadline-checked status at each scrape,
//! so a paused leader never reports `electd_is_leader 1` after its deadline.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use elect::journal::EndReason;
use elect::{RenewalOutcome, RequestOutcome, Status, Telemetry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    op: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Op {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

type DurationHistogram = Family<Op, Histogram, fn() -> Histogram>;

fn request_histogram() -> Histogram {
    // 0.25 ms … about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Every metric electd exports.
pub struct Metrics {
    registry: Registry,
    is_leader: Gauge,
    term: Gauge,
    lease_remaining: Gauge<f64, AtomicU64>,
    leadership_changes: Family<Reason, Counter>,
    etcd_requests: Family<Request, Counter>,
    etcd_duration: DurationHistogram,
    renewals: Family<Outcome, Counter>,
    exec_restarts: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("electd");
        let is_leader = Gauge::default();
        registry.register(
            "is_leader",
            "1 while this node leads (deadline-checked), else 0",
            is_leader.clone(),
        );
        let term = Gauge::default();
        registry.register(
            "term",
            "The current leader's term (fencing token) as this node knows it; 0 when none",
            term.clone(),
        );
        let lease_remaining = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "lease_remaining_seconds",
            "Seconds until this leader's deadline; 0 when not leading",
            lease_remaining.clone(),
        );
        let leadership_changes = Family::<Reason, Counter>::default();
        registry.register(
            "leadership_changes",
            "Leaderships acquired (reason=acquired) and ended (reason=resign|shutdown|deadline|lost)",
            leadership_changes.clone(),
        );
        let etcd_requests = Family::<Request, Counter>::default();
        registry.register(
            "etcd_requests",
            "Requests to etcd by operation and outcome (ok, conflict, error)",
            etcd_requests.clone(),
        );
        let etcd_duration: DurationHistogram = Family::new_with_constructor(request_histogram);
        registry.register(
            "etcd_request_duration_seconds",
            "Latency of requests to etcd by operation",
            etcd_duration.clone(),
        );
        let renewals = Family::<Outcome, Counter>::default();
        registry.register(
            "renewals",
            "Renewals of this node's claim by outcome (renewed, failed, lost)",
            renewals.clone(),
        );
        let exec_restarts = Counter::default();
        registry.register(
            "exec_restarts",
            "Times the --exec command was started again after exiting on its own",
            exec_restarts.clone(),
        );
        registry.register(
            "build",
            "Build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Metrics {
            registry,
            is_leader,
            term,
            lease_remaining,
            leadership_changes,
            etcd_requests,
            etcd_duration,
            renewals,
            exec_restarts,
        }
    }

    pub fn exec_restarted(&self) {
        self.exec_restarts.inc();
    }

    /// The exposition, with the leadership gauges taken from `status` now.
    pub fn render(&self, status: &Status) -> String {
        let now = Instant::now();
        let leading = status.tenure_at(now);
        self.is_leader.set(i64::from(leading.is_some()));
        let term = status.leader_at(now).map_or(0, |l| l.term);
        self.term.set(i64::try_from(term).unwrap_or(i64::MAX));
        self.lease_remaining.set(leading.map_or(0.0, |t| {
            t.deadline.saturating_duration_since(now).as_secs_f64()
        }));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Telemetry for Metrics {
    fn etcd_request(&self, op: &'static str, outcome: RequestOutcome, elapsed: Duration) {
        self.etcd_requests
            .get_or_create(&Request {
                op,
                outcome: outcome.as_str(),
            })
            .inc();
        self.etcd_duration
            .get_or_create(&Op { op })
            .observe(elapsed.as_secs_f64());
    }

    fn renewal(&self, outcome: RenewalOutcome) {
        self.renewals
            .get_or_create(&Outcome {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    fn acquired(&self, _term: u64) {
        self.leadership_changes
            .get_or_create(&Reason { reason: "acquired" })
            .inc();
    }

    fn ended(&self, _term: u64, reason: EndReason) {
        self.leadership_changes
            .get_or_create(&Reason {
                reason: reason.as_str(),
            })
            .inc();
    }
}
