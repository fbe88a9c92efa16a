//! The settled graceful hand-over of electd v3 beside `etcdctl elect`'s and
//! beside the floor ([`crate::floor`]), round by round on one etcd: each
//! round takes floor samples, then one hand-over of each (their order
//! alternating from round to round), so that whatever else the host does
//! falls on all three alike.
//!
//! Both sides have three candidates, each running at least `settle` (and
//! through at least one earlier hand-over) before the signal to the leader,
//! and nothing of the other side writing meanwhile (both queues full).
//! Three observation points, each meaning the same for both, in ms after the
//! signal: the old leader's release as a watcher of the bench sees it in
//! etcd (the first delete under the election's prefix), the successor's lead
//! as etcd shows it (electd: its `~leader` record put; etcdctl: the same
//! delete, which makes the successor's key the oldest, its rule for who
//! leads), and the successor's own word (electd: `acquired` in its journal;
//! etcdctl: its proposal printed, after one more read once it is elected).

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use harness::etcd::Etcd;
use harness::now_ns;
use serde::Serialize;
use tokio::time::{Instant, sleep, timeout};

use crate::cluster::{Cluster, Events, node_args};
use crate::elector::{Candidate, queued_in};
use crate::floor::Floor;
use crate::stats::{Summary, ms};
use crate::writes::{CostSummary, Costs, Counter};

/// One side of the settled graceful hand-over (ms after the signal).
#[derive(Default, Serialize)]
pub struct Peer {
    /// → the old leader journals `ended` (electd only): the signal passed on
    /// by its guardian and taken in by electd, up to its last act before
    /// its transaction.
    pub ended_ms: Option<Summary>,
    /// → the first delete under the prefix (the old leader's release).
    pub released_in_etcd_ms: Option<Summary>,
    /// → the successor leads as etcd shows it (electd: `~leader` put;
    /// etcdctl: the release itself).
    pub leads_in_etcd_ms: Option<Summary>,
    /// → the successor says so (electd: journals `acquired`; etcdctl: prints
    /// its proposal).
    pub says_so_ms: Option<Summary>,
    /// etcd's account, from before the signal until the old leader exited
    /// (its lease revoked); for etcdctl the "term" is the revision of the
    /// delete that made the successor the oldest key.
    pub cost: Option<CostSummary>,
}

#[derive(Serialize)]
pub struct Report {
    pub rounds: usize,
    /// The floor: a put → another client's watch delivers it (ms).
    pub floor_ms: Option<Summary>,
    /// The floor's put → its own answer (ms).
    pub floor_put_answered_ms: Option<Summary>,
    /// electd v3, SIGTERM to the leader's guardian (which passes it on).
    pub electd: Peer,
    /// etcdctl elect, SIGINT.
    pub etcdctl: Peer,
    pub ratios: Ratios,
}

/// Ratios of medians, from the same rounds.
#[derive(Serialize)]
pub struct Ratios {
    /// electd ÷ etcdctl, the successor's own word (target ≤ 0.8).
    pub says_so_vs_etcdctl: Option<f64>,
    /// electd ÷ etcdctl, the successor leads in etcd.
    pub leads_in_etcd_vs_etcdctl: Option<f64>,
    /// electd's own word ÷ the floor (aim ≤ 2).
    pub says_so_vs_floor: Option<f64>,
    /// electd's record in etcd ÷ the floor.
    pub leads_in_etcd_vs_floor: Option<f64>,
}

/// The election of electd's side, and of etcdctl's.
const ELECTD: &str = "peer";
const ETCDCTL: &str = "bench-settled";
/// Floor samples per round.
const FLOOR_SAMPLES: usize = 3;
/// Candidates on each side.
const CANDIDATES: usize = 3;

/// Samples of one side.
#[derive(Default)]
struct Samples {
    ended: Vec<f64>,
    released: Vec<f64>,
    leads: Vec<f64>,
    says: Vec<f64>,
    costs: Costs,
}

impl Samples {
    fn peer(&self) -> Peer {
        Peer {
            ended_ms: Summary::of(&self.ended),
            released_in_etcd_ms: Summary::of(&self.released),
            leads_in_etcd_ms: Summary::of(&self.leads),
            says_so_ms: Summary::of(&self.says),
            cost: self.costs.summary(),
        }
    }
}

/// `rounds` rounds of floor samples, one electd and one etcdctl hand-over.
pub async fn interleaved(
    binary: &Path,
    etcd: &Etcd,
    rounds: usize,
    settle: Duration,
) -> anyhow::Result<Report> {
    let endpoint = etcd.endpoint(0);
    let mut counter = Counter::connect(&endpoint).await?;
    let mut floor = Floor::start(&endpoint).await?;
    let mut electd = ElectdSide::start(binary, &endpoint).await?;
    let mut etcdctl = EtcdctlSide::start(etcd).await?;
    let (mut delivered, mut answered) = (Vec::new(), Vec::new());
    let (mut electd_samples, mut etcdctl_samples) = (Samples::default(), Samples::default());
    for round in 0..rounds {
        quiescent(etcd).await?;
        for _ in 0..FLOOR_SAMPLES {
            let sample = floor.sample().await?;
            delivered.push(ms(sample.delivered_ns));
            answered.push(ms(sample.answered_ns));
        }
        for side in 0..2 {
            quiescent(etcd).await?;
            if (round + side) % 2 == 0 {
                electd
                    .handover(etcd, &mut counter, settle, &mut electd_samples)
                    .await?;
            } else {
                etcdctl
                    .handover(etcd, &mut counter, settle, &mut etcdctl_samples)
                    .await?;
            }
        }
    }
    electd.cluster.shut_down().await;
    etcdctl.stop().await;
    let electd = electd_samples.peer();
    let etcdctl = etcdctl_samples.peer();
    let floor_ms = Summary::of(&delivered);
    let ratio =
        |a: &Option<Summary>, b: &Option<Summary>| Some(a.as_ref()?.median / b.as_ref()?.median);
    let ratios = Ratios {
        says_so_vs_etcdctl: ratio(&electd.says_so_ms, &etcdctl.says_so_ms),
        leads_in_etcd_vs_etcdctl: ratio(&electd.leads_in_etcd_ms, &etcdctl.leads_in_etcd_ms),
        says_so_vs_floor: ratio(&electd.says_so_ms, &floor_ms),
        leads_in_etcd_vs_floor: ratio(&electd.leads_in_etcd_ms, &floor_ms),
    };
    Ok(Report {
        rounds,
        floor_ms,
        floor_put_answered_ms: Summary::of(&answered),
        electd,
        etcdctl,
        ratios,
    })
}

/// Waits until both queues are full: neither side writes meanwhile.
async fn quiescent(etcd: &Etcd) -> anyhow::Result<()> {
    let electd_keys = format!("/electd/{ELECTD}/~c/");
    let etcdctl_keys = format!("{ETCDCTL}/");
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let electd = etcd.v3_keys(&electd_keys).await.len();
        let etcdctl = etcd.v3_keys(&etcdctl_keys).await.len();
        if electd == CANDIDATES && etcdctl == CANDIDATES {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < until,
            "the queues never filled: electd {electd}, etcdctl {etcdctl} of {CANDIDATES}"
        );
        sleep(Duration::from_millis(5)).await;
    }
}

/// Three electd v3 nodes; SIGTERM of the leader, which is started again
/// (and queues last) after each hand-over.
struct ElectdSide {
    cluster: Cluster,
    events: Events,
}

impl ElectdSide {
    async fn start(binary: &Path, endpoint: &str) -> anyhow::Result<ElectdSide> {
        let events = Events::watch_v3(endpoint.to_owned(), format!("/electd/{ELECTD}/")).await?;
        let args = node_args("v3", 10, endpoint, ELECTD);
        let cluster = Cluster::start(binary, &args, &[], CANDIDATES).await;
        Ok(ElectdSide { cluster, events })
    }

    async fn handover(
        &mut self,
        etcd: &Etcd,
        counter: &mut Counter,
        settle: Duration,
        samples: &mut Samples,
    ) -> anyhow::Result<()> {
        let limit = Duration::from_secs(20);
        let cluster = &mut self.cluster;
        let leader = cluster.leader(limit).await.context("no leader")?;
        anyhow::ensure!(
            cluster.all_follow(leader, limit).await,
            "the followers never named the leader"
        );
        let before = counter.mark(etcd).await?;
        sleep(settle).await;
        let asked = now_ns();
        cluster.nodes[leader].terminate();
        let acquired = cluster
            .acquired_after(asked, Some(leader), limit)
            .await
            .context("nobody took over")?;
        // The watcher may see the record a moment after the journal says so.
        let until = Instant::now() + Duration::from_secs(2);
        let record = loop {
            let put = self
                .events
                .first_after(asked, |put, key| put && key.ends_with("~leader"));
            if put.is_some() || Instant::now() > until {
                break put;
            }
            sleep(Duration::from_millis(2)).await;
        };
        let record = record.context("the watcher saw no leader record")?;
        let (ended, _) = cluster
            .ended_after(leader, asked, limit)
            .await
            .context("the old leader journalled no end")?;
        samples.ended.push(ms(ended - asked));
        if let Some(deleted) = self.events.first_after(asked, |put, _| !put) {
            samples.released.push(ms(deleted - asked));
        }
        samples.leads.push(ms(record - asked));
        samples.says.push(ms(acquired.t_ns - asked));
        cluster.nodes[leader].wait_exit(limit).await;
        let after = counter.mark(etcd).await?;
        samples.costs.push(before.cost_until(&after, acquired.term));
        cluster.restart(leader).await;
        Ok(())
    }
}

/// Three `etcdctl elect` candidates; SIGINT of the leader, and a newcomer
/// queues last after each hand-over.
struct EtcdctlSide {
    endpoint: String,
    leader: Candidate,
    line: VecDeque<Candidate>,
    spawned: usize,
    events: Events,
}

impl EtcdctlSide {
    async fn start(etcd: &Etcd) -> anyhow::Result<EtcdctlSide> {
        let endpoint = etcd.endpoint(0);
        let events = Events::watch_v3(endpoint.clone(), format!("{ETCDCTL}/")).await?;
        let mut leader = Candidate::spawn_in(&endpoint, ETCDCTL, "s0")?;
        leader
            .elected(Duration::from_secs(10))
            .await
            .context("etcdctl was never elected")?;
        let mut side = EtcdctlSide {
            endpoint,
            leader,
            line: VecDeque::new(),
            spawned: 1,
            events,
        };
        // One at a time: their keys' order is the line's.
        for queued in 2..=CANDIDATES {
            side.queue_one()?;
            queued_in(etcd, ETCDCTL, queued).await?;
        }
        Ok(side)
    }

    /// SIGINT to every candidate: each revokes its session's lease now,
    /// not a minute later inside another measurement.
    async fn stop(mut self) {
        for candidate in std::iter::once(&mut self.leader).chain(self.line.iter_mut()) {
            candidate.signal(rustix::process::Signal::INT);
            let _ = timeout(Duration::from_secs(5), candidate.child.wait()).await;
        }
    }

    /// A newcomer, last in line (`s1`, `s2`, …).
    fn queue_one(&mut self) -> anyhow::Result<()> {
        let proposal = format!("s{}", self.spawned);
        self.spawned += 1;
        self.line
            .push_back(Candidate::spawn_in(&self.endpoint, ETCDCTL, &proposal)?);
        Ok(())
    }

    async fn handover(
        &mut self,
        etcd: &Etcd,
        counter: &mut Counter,
        settle: Duration,
        samples: &mut Samples,
    ) -> anyhow::Result<()> {
        let before = counter.mark(etcd).await?;
        sleep(settle).await;
        let asked = now_ns();
        self.leader.signal(rustix::process::Signal::INT);
        let mut next = self.line.pop_front().context("nobody in line")?;
        let elected = next
            .elected(Duration::from_secs(10))
            .await
            .context("nobody took over")?;
        let deleted = self
            .events
            .first_event_after(asked, |put, _| !put)
            .context("the watcher saw no release")?;
        samples.released.push(ms(deleted.at - asked));
        samples.leads.push(ms(deleted.at - asked));
        samples.says.push(ms(elected - asked));
        let _ = timeout(Duration::from_secs(5), self.leader.child.wait()).await;
        let after = counter.mark(etcd).await?;
        let made = u64::try_from(deleted.revision).unwrap_or(0);
        samples.costs.push(before.cost_until(&after, made));
        self.leader = next;
        self.queue_one()
    }
}
