//! `/metrics`: Prometheus exposition, from the `prometheus-client` crate.
//!
//! Counters are fed by the election through [`elect::Telemetry`]; the
//! leadership gauges are set from the deadline-checked status at each scrape,
//! so a paused leader never reports `electd_is_leader 1` after its deadline.
//! The candidacy gauges (drained, priority, eligible), the obstacle and
//! whether etcd requests fail are set from the same status; the health
//! verdict and its changes come from the `--health-url` checker
//! ([`Metrics::follow_health`]), and exist only with a check: a node without
//! one exports no `electd_healthy` series at all, rather than a value that
//! would pretend a check passed.
//!
//! Every series whose labels take a known, bounded set of values is exported
//! for each value from the start, at 0: a series that appears only on its
//! first increment hides that increment from Prometheus's `increase()` and
//! `rate()`, and alert rules could not tell "none" from "not exported".

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use elect::journal::EndReason;
use elect::shards::ShardMap;
use elect::{Obstacle, RenewalOutcome, RequestOutcome, Status, Telemetry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::app_check::Verdict;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

type DurationHistogram = Family<Op, Histogram, fn() -> Histogram>;

fn request_histogram() -> Histogram {
    // 0.25 ms … about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Creates the series of each of `labels` in `family`, at its initial value.
fn export_each<S, M>(family: &Family<S, M>, labels: impl IntoIterator<Item = S>)
where
    S: Clone + std::hash::Hash + Eq,
    M: Default,
{
    for label in labels {
        drop(family.get_or_create(&label));
    }
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
    drained: Gauge,
    priority: Gauge,
    candidate: Gauge,
    obstacle: Family<Kind, Gauge>,
    etcd_failing: Gauge,
    /// With `--health-url` only.
    health: Option<HealthMetrics>,
    /// With `--shards` only.
    shards: Option<ShardMetrics>,
}

/// The shards' series: per node, never a label per shard.
struct ShardMetrics {
    count: Gauge,
    led: Gauge,
    leaderless: Gauge,
    changes: Family<Reason, Counter>,
}

/// The health check's series: the verdict, and how often it changed.
struct HealthMetrics {
    healthy: Gauge,
    changes: Counter,
}

impl Metrics {
    /// Every series; `health_checked` (`--health-url`) adds the health
    /// check's, fed by [`Metrics::follow_health`], and `sharded`
    /// (`--shards`) the shards'.
    pub fn new(health_checked: bool, sharded: bool) -> Metrics {
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
        let reasons = std::iter::once("acquired").chain(EndReason::ALL.map(EndReason::as_str));
        export_each(&leadership_changes, reasons.map(|reason| Reason { reason }));
        registry.register(
            "leadership_changes",
            "Leaderships acquired (reason=acquired) and ended \
             (reason=resign|shutdown|deadline|lost|unhealthy|drain|transfer|preempted)",
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
        let outcomes = RenewalOutcome::ALL.map(|outcome| Outcome {
            outcome: outcome.as_str(),
        });
        export_each(&renewals, outcomes);
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
        let drained = Gauge::default();
        registry.register(
            "drained",
            "1 while this node is drained (POST /v1/drain, --drained), else 0",
            drained.clone(),
        );
        let priority = Gauge::default();
        registry.register(
            "priority",
            "This node's priority (--priority; higher is preferred)",
            priority.clone(),
        );
        let candidate = Gauge::default();
        registry.register(
            "candidate",
            "1 while this node may lead (also while it leads): not an observer, healthy and not \
             drained; else 0",
            candidate.clone(),
        );
        let obstacle = Family::<Kind, Gauge>::default();
        export_each(&obstacle, Obstacle::KINDS.map(|kind| Kind { kind }));
        registry.register(
            "obstacle",
            "1 while this kind of obstacle in etcd keeps the election from electing or makes \
             it wait (foreign_key, waiting, regressed; /v1/status says which key and what to \
             do), else 0",
            obstacle.clone(),
        );
        let etcd_failing = Gauge::default();
        registry.register(
            "etcd_failing",
            "1 while this node's requests to etcd fail (from a failed request to the next that \
             succeeds; /healthz says why), else 0",
            etcd_failing.clone(),
        );
        let health = health_checked.then(|| {
            let healthy = Gauge::default();
            registry.register(
                "healthy",
                "1 while the --health-url verdict is healthy, else 0 (also before the first \
                 check passes); absent without --health-url",
                healthy.clone(),
            );
            let changes = Counter::default();
            registry.register(
                "health_changes",
                "Changes of the --health-url verdict, healthy to unhealthy or back (the \
                 first pass after starting unhealthy counts); absent without --health-url",
                changes.clone(),
            );
            HealthMetrics { healthy, changes }
        });
        let shards = sharded.then(|| {
            let count = Gauge::default();
            registry.register(
                "shards",
                "How many shards the election has (--shards); absent without --shards",
                count.clone(),
            );
            let led = Gauge::default();
            registry.register(
                "shards_led",
                "How many shards this node leads now (deadline-checked); absent without --shards",
                led.clone(),
            );
            let leaderless = Gauge::default();
            registry.register(
                "shards_leaderless",
                "How many shards have no leader, as this node sees etcd; absent without --shards",
                leaderless.clone(),
            );
            let changes = Family::<Reason, Counter>::default();
            let reasons =
                std::iter::once("acquired").chain(EndReason::ALL.map(EndReason::as_str));
            export_each(&changes, reasons.map(|reason| Reason { reason }));
            registry.register(
                "shard_changes",
                "Shard leaderships this node acquired (reason=acquired) and ended, by the \
                 journal's reasons (transfer: handed on by a planned move); absent without --shards",
                changes.clone(),
            );
            ShardMetrics {
                count,
                led,
                leaderless,
                changes,
            }
        });
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
            drained,
            priority,
            candidate,
            obstacle,
            etcd_failing,
            health,
            shards,
        }
    }

    /// Keeps the health series up to date with the checker's verdicts
    /// until the checker stops. Only a change of `healthy` counts: a
    /// verdict that only gives another reason (the initial verdict
    /// confirmed) is no change.
    pub async fn follow_health(self: Arc<Self>, mut verdicts: watch::Receiver<Verdict>) {
        let Some(health) = &self.health else {
            return;
        };
        let mut healthy = verdicts.borrow_and_update().healthy;
        health.healthy.set(i64::from(healthy));
        while verdicts.changed().await.is_ok() {
            let now = verdicts.borrow_and_update().healthy;
            if now != healthy {
                healthy = now;
                health.healthy.set(i64::from(healthy));
                health.changes.inc();
            }
        }
    }

    pub fn exec_restarted(&self) {
        self.exec_restarts.inc();
    }

    /// The exposition, with the leadership, candidacy, obstacle and etcd
    /// gauges taken from `status` now.
    pub fn render(&self, status: &Status, shards: Option<&ShardMap>) -> String {
        let now = Instant::now();
        if let (Some(series), Some(map)) = (&self.shards, shards) {
            let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            series.count.set(i64::from(map.count()));
            series.led.set(gauge(map.led_at(now).len()));
            series
                .leaderless
                .set(gauge(map.leaders.iter().filter(|l| l.is_none()).count()));
        }
        let leading = status.tenure_at(now);
        self.is_leader.set(i64::from(leading.is_some()));
        let term = status.leader_at(now).map_or(0, |l| l.term);
        self.term.set(i64::try_from(term).unwrap_or(i64::MAX));
        self.lease_remaining.set(leading.map_or(0.0, |t| {
            t.deadline.saturating_duration_since(now).as_secs_f64()
        }));
        let offer = status.candidacy;
        self.drained.set(i64::from(offer.drained));
        self.priority.set(offer.priority);
        self.candidate
            .set(i64::from(!status.observer && offer.eligible()));
        let present = status.obstacle.as_ref().map(Obstacle::kind);
        for kind in Obstacle::KINDS {
            self.obstacle
                .get_or_create(&Kind { kind })
                .set(i64::from(present == Some(kind)));
        }
        self.etcd_failing.set(i64::from(status.problem.is_some()));
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

    fn shard_acquired(&self) {
        if let Some(series) = &self.shards {
            series
                .changes
                .get_or_create(&Reason { reason: "acquired" })
                .inc();
        }
    }

    fn shard_ended(&self, reason: EndReason) {
        if let Some(series) = &self.shards {
            series
                .changes
                .get_or_create(&Reason {
                    reason: reason.as_str(),
                })
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    //! The candidacy, obstacle, etcd and health series, in-process on the library's test
    //! double under paused time; `tests/it/metrics.rs` scrapes a real electd.

    use super::*;
    use elect::testing::start_queue;
    use elect::{Config, Election};

    fn election(config: elect::ConfigBuilder) -> Election {
        let config = config.id("me").api(elect::Api::V3).build().unwrap();
        start_queue(config).unwrap().0
    }

    /// The value of `name` in `status`'s exposition, if it is exported.
    fn value_in(metrics: &Metrics, status: &Status, name: &str) -> Option<i64> {
        metrics.render(status, None).lines().find_map(|l| {
            let (key, value) = l.split_once(' ')?;
            (key == name).then(|| value.parse().unwrap())
        })
    }

    /// The value of `name` in `election`'s exposition now.
    fn value(metrics: &Metrics, election: &Election, name: &str) -> Option<i64> {
        value_in(metrics, &election.status(), name)
    }

    /// Lets the task following the verdicts catch up with the last one sent.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    fn verdict(healthy: bool, reason: &str) -> Verdict {
        Verdict {
            healthy,
            reason: reason.to_owned(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn candidacy_follows_the_status_and_health_series_exist_only_with_a_check() {
        let e = election(Config::builder().priority(-3));
        let m = Metrics::new(false, false);
        assert_eq!(value(&m, &e, "electd_candidate"), Some(1));
        assert_eq!(value(&m, &e, "electd_drained"), Some(0));
        assert_eq!(value(&m, &e, "electd_priority"), Some(-3));
        let text = m.render(&e.status(), None);
        assert!(!text.contains("electd_healthy"), "{text}");
        assert!(!text.contains("electd_health_changes"), "{text}");

        e.set_drained(true).await;
        assert_eq!(value(&m, &e, "electd_drained"), Some(1));
        assert_eq!(value(&m, &e, "electd_candidate"), Some(0));
        e.set_healthy(false).await;
        e.set_drained(false).await;
        assert_eq!(value(&m, &e, "electd_drained"), Some(0));
        assert_eq!(
            value(&m, &e, "electd_candidate"),
            Some(0),
            "unhealthy, even undrained"
        );
        e.set_healthy(true).await;
        assert_eq!(value(&m, &e, "electd_candidate"), Some(1));

        let observer = election(Config::builder().observer(true));
        assert_eq!(value(&m, &observer, "electd_candidate"), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn every_known_label_value_is_exported_from_the_start() {
        let e = election(Config::builder());
        let m = Metrics::new(false, false);
        let status = e.status();
        for reason in ["acquired", "resign", "deadline", "transfer", "preempted"] {
            let series = format!("electd_leadership_changes_total{{reason=\"{reason}\"}}");
            assert_eq!(value_in(&m, &status, &series), Some(0), "{series}");
        }
        for outcome in ["renewed", "failed", "lost"] {
            let series = format!("electd_renewals_total{{outcome=\"{outcome}\"}}");
            assert_eq!(value_in(&m, &status, &series), Some(0), "{series}");
        }
        for kind in ["foreign_key", "waiting", "regressed"] {
            let series = format!("electd_obstacle{{kind=\"{kind}\"}}");
            assert_eq!(value_in(&m, &status, &series), Some(0), "{series}");
        }
        assert_eq!(value_in(&m, &status, "electd_etcd_failing"), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_obstacle_and_failing_requests_follow_the_status() {
        let e = election(Config::builder());
        let m = Metrics::new(false, false);
        let mut status = e.status();
        status.obstacle = Some(Obstacle::Regressed {
            from: 9,
            to: 2,
            state_file: None,
            api: elect::Api::V3,
            program: "electd".to_owned(),
        });
        status.problem = Some(elect::Problem {
            summary: "etcd unreachable",
            detail: "etcd unreachable at http://127.0.0.1:2379".to_owned(),
        });
        let regressed = "electd_obstacle{kind=\"regressed\"}";
        assert_eq!(value_in(&m, &status, regressed), Some(1));
        let foreign = "electd_obstacle{kind=\"foreign_key\"}";
        assert_eq!(value_in(&m, &status, foreign), Some(0));
        assert_eq!(value_in(&m, &status, "electd_etcd_failing"), Some(1));

        // Another kind replaces it; then none, and etcd answers again.
        status.obstacle = Some(Obstacle::ForeignKey {
            key: "/electd/leader/~leader".to_owned(),
            kind: elect::Foreign::Value,
            expiry: elect::Expiry::Never,
            api: elect::Api::V3,
        });
        assert_eq!(value_in(&m, &status, foreign), Some(1));
        assert_eq!(value_in(&m, &status, regressed), Some(0));
        status.obstacle = None;
        status.problem = None;
        assert_eq!(value_in(&m, &status, foreign), Some(0));
        assert_eq!(value_in(&m, &status, "electd_etcd_failing"), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn each_change_of_verdict_counts_once() {
        let e = election(Config::builder().healthy(false));
        let m = Arc::new(Metrics::new(true, false));
        let (verdicts, follow) = watch::channel(Verdict::initial());
        let task = tokio::spawn(m.clone().follow_health(follow));
        settle().await;
        assert_eq!(value(&m, &e, "electd_healthy"), Some(0));
        assert_eq!(value(&m, &e, "electd_health_changes_total"), Some(0));

        // The initial verdict confirmed, with a reason: no change.
        verdicts.send_replace(verdict(false, "GET http://app/ answered 500"));
        settle().await;
        assert_eq!(value(&m, &e, "electd_health_changes_total"), Some(0));

        verdicts.send_replace(verdict(true, "GET http://app/ answered 200"));
        settle().await;
        assert_eq!(value(&m, &e, "electd_healthy"), Some(1));
        assert_eq!(value(&m, &e, "electd_health_changes_total"), Some(1));

        verdicts.send_replace(verdict(false, "GET http://app/ timed out after 1s"));
        settle().await;
        assert_eq!(value(&m, &e, "electd_healthy"), Some(0));
        assert_eq!(value(&m, &e, "electd_health_changes_total"), Some(2));

        // The checker stopped: so does the task, with the series as they were.
        drop(verdicts);
        task.await.unwrap();
        assert_eq!(value(&m, &e, "electd_healthy"), Some(0));
        assert_eq!(value(&m, &e, "electd_health_changes_total"), Some(2));
    }
}
