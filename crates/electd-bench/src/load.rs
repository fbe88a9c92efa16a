//! etcd load as candidates grow: raft proposals and requests per second at
//! steady state and per hand-over, read from etcd's own `/metrics`.
//!
//! The candidates are library elections (`elect::Election`) in this process,
//! each with its own connection to etcd, exactly as separate processes would
//! talk to it; the RSS they add is reported per candidate.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use elect::{Api, Config, Election, Leadership};
use harness::etcd::Etcd;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

#[derive(Serialize)]
pub struct Load {
    pub candidates: usize,
    pub steady_proposals_per_s: f64,
    pub steady_requests_per_s: f64,
    /// Median over the measured hand-overs.
    pub proposals_per_handover: f64,
    pub requests_per_handover: f64,
    pub handovers: usize,
    pub rss_kb_per_candidate: f64,
}

const TTL: Duration = Duration::from_secs(10);

async fn counters(etcd: &Etcd, api: Api) -> anyhow::Result<(f64, f64)> {
    let proposals = etcd
        .proposals_committed(0)
        .await
        .context("etcd_server_proposals_committed_total")?;
    let requests = match api {
        Api::V2 => etcd.metric_sum(0, "etcd_http_received_total").await,
        Api::V3 => etcd.metric_sum(0, "grpc_server_msg_received_total").await,
    }
    .unwrap_or(0.0);
    Ok((proposals, requests))
}

/// Waits until every election but `except` knows the leader of `term`.
async fn all_know(
    elections: &[Election],
    except: usize,
    term: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        let known = elections
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != except)
            .all(|(_, e)| e.status().current_leader().is_some_and(|l| l.term == term));
        if known {
            return Ok(());
        }
        sleep(Duration::from_millis(10)).await;
    }
    bail!("not every candidate learned the leader of term {term} within {limit:?}")
}

pub async fn measure(api: &str, n: usize, quick: bool) -> anyhow::Result<Load> {
    let api = if api == "v2" { Api::V2 } else { Api::V3 };
    let etcd = Etcd::single().await;
    let rss_before = crate::host::rss_kb(std::process::id());
    let mut elections = Vec::with_capacity(n);
    for i in 0..n {
        let config = Config::builder()
            .endpoints(etcd.endpoints())
            .election("load")
            .id(format!("c{i}"))
            .advertise(format!("http://127.0.0.1:{}", 10_000 + i))
            .ttl(TTL)
            .api(api)
            .build()?;
        elections.push(Election::start(config)?);
    }
    let elections = Arc::new(elections);
    let mut leader: Leadership = elections[0].campaign().await?;
    let mut holder = 0;
    // campaign() resolves on leadership: the others wait for theirs in tasks.
    let mut waiting: Vec<Option<JoinHandle<anyhow::Result<Leadership>>>> = (0..n)
        .map(|i| {
            (i > 0).then(|| {
                let elections = elections.clone();
                tokio::spawn(async move { Ok(elections[i].campaign().await?) })
            })
        })
        .collect();
    let limit = Duration::from_secs(180);
    all_know(&elections, holder, leader.term(), limit).await?;
    let rss_after = crate::host::rss_kb(std::process::id());

    let window = if quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(10)
    };
    // Let the joins' writes settle, then watch an idle election.
    sleep(Duration::from_secs(1)).await;
    let (p0, r0) = counters(&etcd, api).await?;
    sleep(window).await;
    let (p1, r1) = counters(&etcd, api).await?;
    let secs = window.as_secs_f64();

    let rounds = if quick { 1 } else { 3 };
    let mut per_proposals = Vec::new();
    let mut per_requests = Vec::new();
    for _ in 0..rounds.min(n - 1) {
        let (p0, r0) = counters(&etcd, api).await?;
        leader.resign().await?;
        let until = Instant::now() + limit;
        let next = loop {
            if let Some(i) = waiting
                .iter()
                .position(|t| t.as_ref().is_some_and(|t| t.is_finished()))
            {
                break i;
            }
            if Instant::now() > until {
                bail!("nobody took over");
            }
            sleep(Duration::from_millis(1)).await;
        };
        let task = waiting[next].take().context("a finished campaign")?;
        leader = task.await??;
        holder = next;
        all_know(&elections, holder, leader.term(), limit).await?;
        // Whatever the hand-over triggers (v2 followers' herd, reads) has landed.
        sleep(Duration::from_millis(500)).await;
        let (p1, r1) = counters(&etcd, api).await?;
        per_proposals.push(p1 - p0);
        per_requests.push(r1 - r0);
    }
    drop(leader);
    for task in waiting.into_iter().flatten() {
        task.abort();
    }
    let mut stops = Vec::new();
    for i in 0..n {
        let elections = elections.clone();
        stops.push(tokio::spawn(async move { elections[i].shutdown().await }));
    }
    for stop in stops {
        let _ = stop.await;
    }
    let median = |v: &[f64]| crate::stats::Summary::of(v).map_or(0.0, |s| s.median);
    Ok(Load {
        candidates: n,
        steady_proposals_per_s: (p1 - p0) / secs,
        steady_requests_per_s: (r1 - r0) / secs,
        proposals_per_handover: median(&per_proposals),
        requests_per_handover: median(&per_requests),
        handovers: per_proposals.len(),
        rss_kb_per_candidate: rss_after.saturating_sub(rss_before) as f64 / n as f64,
    })
}
