//! Cold start: three nodes started at once, to the first `acquired`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use harness::now_ns;

use crate::cluster::{Cluster, node_args};
use crate::stats::ms;

/// Three nodes started at once → the first `acquired`.
pub async fn cold_starts(
    binary: &Path,
    api: &str,
    endpoint: &str,
    runs: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut samples = Vec::new();
    for run in 0..runs {
        let args = node_args(api, 10, endpoint, &format!("cold-{run}"));
        let started = now_ns();
        let cluster = Cluster::start(binary, &args, &[], 3).await;
        let acquired = cluster
            .acquired_after(started, None, Duration::from_secs(20))
            .await
            .context("no leader after a cold start")?;
        samples.push(ms(acquired.t_ns - started));
        cluster.shut_down().await;
    }
    Ok(samples)
}
