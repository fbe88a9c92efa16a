//! Hand-over by fleet size: SIGTERM of the leader of n settled v3
//! candidates.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use harness::now_ns;
use serde::Serialize;

use crate::cluster::{Cluster, node_args};
use crate::stats::{Summary, ms};

#[derive(Serialize)]
pub struct Fleet {
    pub candidates: usize,
    /// SIGTERM of the leader → the next `acquired` (ms).
    pub sigterm_handover_ms: Option<Summary>,
}

/// SIGTERM of the leader of `n` settled v3 candidates → the next `acquired`.
pub async fn fleet(
    binary: &Path,
    endpoint: &str,
    n: usize,
    runs: usize,
    settle: Duration,
) -> anyhow::Result<Vec<f64>> {
    let args = node_args("v3", 10, endpoint, &format!("fleet-{n}"));
    let mut cluster = Cluster::start(binary, &args, &[], n).await;
    let limit = Duration::from_secs(60);
    let mut samples = Vec::new();
    for _ in 0..runs {
        let leader = cluster.leader(limit).await.context("no leader")?;
        if !cluster.all_follow(leader, limit).await {
            bail!("the followers never named the leader");
        }
        tokio::time::sleep(settle).await;
        let asked = now_ns();
        cluster.nodes[leader].terminate();
        // The time comes from the journals: reading n of them in a tight
        // loop meanwhile would only load the host.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, acquired) = cluster
            .acquired_after(asked, Some(leader), limit)
            .await
            .context("nobody took over")?;
        samples.push(ms(acquired - asked));
        cluster.nodes[leader].wait_exit(limit).await;
        cluster.restart(leader).await;
    }
    Ok(samples)
}
