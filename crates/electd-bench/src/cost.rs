//! What electd costs to run: the memory of an idle leader and follower and
//! of a leader over time, and HTTP under `wrk` with the renewals it must
//! not delay.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use harness::now_ns;
use serde::Serialize;

use crate::cluster::{Cluster, node_args};
use crate::host::{rss_kb, which};
use crate::stats::ms;

#[derive(Serialize)]
pub struct Memory {
    /// electd itself (the guardian's child), as every figure below but the
    /// guardian's.
    pub idle_leader_rss_kb: u64,
    pub idle_follower_rss_kb: u64,
    /// The idle leader's guardian.
    pub idle_leader_guardian_rss_kb: u64,
    pub leader_rss_kb_start: u64,
    pub leader_rss_kb_end: u64,
    pub leader_rss_kb_max: u64,
    pub watched_seconds: u64,
}

#[derive(Serialize)]
pub struct Http {
    pub path: String,
    pub requests_per_second: f64,
    pub p99_ms: f64,
    /// Largest time between two renewals during the load (the interval is
    /// TTL/3); `None` when the load was too short to see two.
    pub worst_renewal_gap_ms: Option<f64>,
    pub renewal_interval_ms: f64,
}

/// RSS of an idle leader's and follower's electd (and of the leader's
/// guardian), and of the leader's electd over `seconds`.
pub async fn memory(
    binary: &Path,
    api: &str,
    endpoint: &str,
    seconds: u64,
) -> anyhow::Result<Memory> {
    let args = node_args(api, 10, endpoint, "memory");
    let cluster = Cluster::start(binary, &args, &[], 2).await;
    let limit = Duration::from_secs(20);
    let leader = cluster.leader(limit).await.context("no leader")?;
    cluster.all_follow(leader, limit).await;
    // Let start-up allocations settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = cluster.nodes[leader].electd_pid();
    let start = rss_kb(pid);
    let guardian = rss_kb(cluster.nodes[leader].pid());
    let follower = rss_kb(cluster.nodes[1 - leader].electd_pid());
    let mut max = start;
    let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1).min(until - tokio::time::Instant::now())).await;
        max = max.max(rss_kb(pid));
    }
    let end = rss_kb(pid);
    cluster.shut_down().await;
    Ok(Memory {
        idle_leader_rss_kb: start,
        idle_follower_rss_kb: follower,
        idle_leader_guardian_rss_kb: guardian,
        leader_rss_kb_start: start,
        leader_rss_kb_end: end,
        leader_rss_kb_max: max.max(end),
        watched_seconds: seconds,
    })
}

/// `wrk` against the leader's `/` and `/v1/status`, watching its renewals.
pub async fn http(
    binary: &Path,
    api: &str,
    endpoint: &str,
    seconds: u64,
) -> anyhow::Result<Vec<Http>> {
    if which("wrk").is_none() {
        eprintln!("  (wrk not found: skipping HTTP; scripts/setup.sh installs it)");
        return Ok(Vec::new());
    }
    let ttl = 3;
    let args = node_args(api, ttl, endpoint, "http");
    let cluster = Cluster::start(binary, &args, &[], 1).await;
    let leader = cluster
        .leader(Duration::from_secs(20))
        .await
        .context("no leader")?;
    let node = &cluster.nodes[leader];
    let mut results = Vec::new();
    for path in ["/", "/v1/status"] {
        let started = now_ns();
        let output = tokio::process::Command::new("wrk")
            .args(["-t2", "-c32", &format!("-d{seconds}s"), "--latency"])
            .arg(format!("{}{path}", node.url()))
            .output()
            .await
            .context("wrk runs")?;
        let ended = now_ns();
        let text = String::from_utf8_lossy(&output.stdout);
        let renewals: Vec<u64> = std::fs::read_to_string(&node.journal)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["event"] == "renewed")
            .filter_map(|r| r["t_ns"].as_u64())
            .filter(|&t| t >= started && t <= ended)
            .collect();
        let worst = renewals
            .windows(2)
            .map(|w| ms(w[1] - w[0]))
            .reduce(f64::max);
        results.push(Http {
            path: path.to_owned(),
            requests_per_second: wrk_rps(&text).unwrap_or(0.0),
            p99_ms: wrk_p99_ms(&text).unwrap_or(0.0),
            worst_renewal_gap_ms: worst,
            renewal_interval_ms: ttl as f64 * 1000.0 / 3.0,
        });
    }
    cluster.shut_down().await;
    Ok(results)
}

fn wrk_rps(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()
}

fn wrk_p99_ms(text: &str) -> Option<f64> {
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))?
        .trim();
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let text = "Running 1s test @ http://127.0.0.1:1/\n  Latency Distribution\n     50%  120.00us\n     99%    1.52ms\nRequests/sec:  41234.56\nTransfer/sec:      5.00MB\n";
        assert_eq!(wrk_rps(text), Some(41234.56));
        assert_eq!(wrk_p99_ms(text), Some(1.52));
        assert_eq!(wrk_p99_ms("     99%  900.00us"), Some(0.9));
    }
}
