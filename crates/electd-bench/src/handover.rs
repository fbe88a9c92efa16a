//! Graceful hand-over: SIGTERM of the leader, or `POST /v1/resign`, to the
//! next leader's `acquired`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use harness::now_ns;
use reqwest::Method;

use crate::cluster::{Cluster, TOKEN, node_args};
use crate::stats::ms;

/// SIGTERM (or `/v1/resign`) of the leader → the next leader's `acquired`.
pub async fn handovers(
    binary: &Path,
    api: &str,
    endpoint: &str,
    runs: usize,
    resign: bool,
) -> anyhow::Result<Vec<f64>> {
    let election = if resign {
        "handover-resign"
    } else {
        "handover-sigterm"
    };
    let args = node_args(api, 10, endpoint, election).resign_cooldown(Duration::from_secs(1));
    let mut cluster = Cluster::start(binary, &args, &[("ELECTD_ADMIN_TOKEN", TOKEN)], 3).await;
    let limit = Duration::from_secs(20);
    let mut samples = Vec::new();
    for _ in 0..runs {
        let leader = cluster.leader(limit).await.context("no leader")?;
        if !cluster.all_follow(leader, limit).await {
            bail!("the followers never named the leader");
        }
        if resign {
            // The previous resigner waits out its cooldown before it campaigns
            // again; resigning before that would measure the cooldown.
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
        let asked = now_ns();
        if resign {
            let auth = format!("Bearer {TOKEN}");
            cluster.nodes[leader]
                .request(Method::POST, "/v1/resign", &[("Authorization", &auth)])
                .await
                .context("no answer to /v1/resign")?;
        } else {
            cluster.nodes[leader].terminate();
        }
        let acquired = cluster
            .acquired_after(asked, Some(leader), limit)
            .await
            .context("nobody took over")?;
        samples.push(ms(acquired.t_ns - asked));
        if !resign {
            cluster.nodes[leader].wait_exit(limit).await;
            cluster.restart(leader).await;
        }
    }
    cluster.shut_down().await;
    Ok(samples)
}
