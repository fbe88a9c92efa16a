//! What a hand-over costs etcd, by etcd's own account, read before the
//! trigger and again once the hand-over is over:
//!
//! * its **revision**, which grows by one with each write that changes
//!   keys: the successor's term (the revision of the write that made its
//!   leadership) minus the revision before the trigger counts the writes on
//!   the hand-over's path, that one included (1: the hand-over was the first
//!   write after the trigger);
//! * **raft proposals** committed (`etcd_server_proposals_committed_total`):
//!   every write, lease grants and revokes included, each one fsync: what
//!   the hand-over cost in all;
//! * **events sent to watchers** (`etcd_debugging_mvcc_events_total`), each
//!   a watcher woken, and **watch streams opened**;
//! * **WAL fsyncs** and the time they took
//!   (`etcd_disk_wal_fsync_duration_seconds`): the disk's share.

use anyhow::Context;
use etcd_client::{Client, GetOptions};
use harness::etcd::Etcd;
use serde::Serialize;

use crate::stats::Summary;

/// etcd's counters at one moment.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    pub revision: i64,
    proposals: f64,
    events: f64,
    watches: f64,
    fsyncs: f64,
    fsync_seconds: f64,
}

impl Mark {
    /// What happened between this mark and `later`, for a hand-over that
    /// made the leadership of `term`.
    pub fn cost_until(&self, later: &Mark, term: u64) -> Cost {
        Cost {
            writes_to_term: i64::try_from(term).unwrap_or(i64::MAX) - self.revision,
            proposals: later.proposals - self.proposals,
            events: later.events - self.events,
            watches: later.watches - self.watches,
            fsyncs: later.fsyncs - self.fsyncs,
            fsync_seconds: later.fsync_seconds - self.fsync_seconds,
        }
    }
}

/// Reads [`Mark`]s: the revision on a connection of its own (a
/// linearizable count of no keys), the rest from etcd's `/metrics`.
pub struct Counter {
    client: Client,
}

impl Counter {
    pub async fn connect(endpoint: &str) -> anyhow::Result<Counter> {
        let client = Client::connect([endpoint], None)
            .await
            .context("the counter connects to etcd")?;
        Ok(Counter { client })
    }

    /// etcd's revision now.
    pub async fn revision(&mut self) -> anyhow::Result<i64> {
        let answer = self
            .client
            .get(
                "/electd-bench/revision",
                Some(GetOptions::new().with_count_only()),
            )
            .await
            .context("etcd's revision")?;
        Ok(answer
            .header()
            .context("an answer without header")?
            .revision())
    }

    pub async fn mark(&mut self, etcd: &Etcd) -> anyhow::Result<Mark> {
        let revision = self.revision().await?;
        let counter = |value: Option<f64>, name: &'static str| value.context(name);
        Ok(Mark {
            revision,
            proposals: counter(
                etcd.proposals_committed(0).await,
                "etcd_server_proposals_committed_total",
            )?,
            events: counter(
                etcd.events_sent(0).await,
                "etcd_debugging_mvcc_events_total",
            )?,
            watches: counter(
                etcd.watches_started(0).await,
                "grpc_server_started_total (Watch)",
            )?,
            fsyncs: counter(
                etcd.metric(0, "etcd_disk_wal_fsync_duration_seconds_count")
                    .await,
                "etcd_disk_wal_fsync_duration_seconds_count",
            )?,
            fsync_seconds: counter(
                etcd.metric(0, "etcd_disk_wal_fsync_duration_seconds_sum")
                    .await,
                "etcd_disk_wal_fsync_duration_seconds_sum",
            )?,
        })
    }
}

/// One hand-over's cost.
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    pub writes_to_term: i64,
    pub proposals: f64,
    pub events: f64,
    pub watches: f64,
    pub fsyncs: f64,
    pub fsync_seconds: f64,
}

/// The costs of one row's hand-overs.
#[derive(Default)]
pub struct Costs(Vec<Cost>);

impl Costs {
    pub fn push(&mut self, cost: Cost) {
        self.0.push(cost);
    }

    pub fn summary(&self) -> Option<CostSummary> {
        if self.0.is_empty() {
            return None;
        }
        let of = |f: fn(&Cost) -> f64| Summary::of(&self.0.iter().map(f).collect::<Vec<_>>());
        Some(CostSummary {
            writes_to_term: of(|c| c.writes_to_term as f64),
            proposals: of(|c| c.proposals),
            events_sent: of(|c| c.events),
            watches_opened: of(|c| c.watches),
            wal_fsyncs: of(|c| c.fsyncs),
            wal_fsync_ms: of(|c| {
                if c.fsyncs > 0.0 {
                    c.fsync_seconds * 1e3 / c.fsyncs
                } else {
                    0.0
                }
            }),
        })
    }
}

/// What one row's hand-overs cost etcd, each series one sample per hand-over.
#[derive(Clone, Debug, Serialize)]
pub struct CostSummary {
    /// The successor's term − etcd's revision before the trigger: the writes
    /// that changed keys up to the one that made the leadership, that one
    /// included.
    pub writes_to_term: Option<Summary>,
    /// Raft proposals committed from before the trigger until the hand-over
    /// is over (the departing lease revoked; re-queueing too where the row
    /// says so).
    pub proposals: Option<Summary>,
    /// Events etcd sent to watchers meanwhile.
    pub events_sent: Option<Summary>,
    /// Watch streams opened meanwhile.
    pub watches_opened: Option<Summary>,
    /// etcd's WAL fsyncs meanwhile (a write committed alone costs one).
    pub wal_fsyncs: Option<Summary>,
    /// Their mean duration, per hand-over (ms).
    pub wal_fsync_ms: Option<Summary>,
}
