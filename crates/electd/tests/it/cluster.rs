//! A three-member etcd cluster on loopback, both APIs: members die, etcd's
//! own leader dies, a member is cut off from the majority, everything
//! restarts; elections continue, no node is stuck, and no two leaderships
//! overlap.

use std::time::Duration;

use harness::{eventually, now_ns};

use crate::common::Run;

const SLACK: Duration = Duration::from_secs(10);

/// Waits until some node leads and has renewed after `since` (ns), proving it
/// still reaches a working etcd member.
async fn renewing_after(run: &Run, since: u64, limit: Duration) -> usize {
    eventually(limit, "a leader renewing after the fault", || async {
        let leader = run.sole_leader(limit).await;
        let renewed = run
            .journal(leader)
            .iter()
            .any(|r| r["t_ns"].as_u64().is_some_and(|t| t > since) && r["event"] != "ended");
        renewed.then_some(leader)
    })
    .await
}

async fn nodes_move_on_when_the_member_they_talk_to_dies(api: &'static str) {
    let mut run = Run::cluster(api, 2, 3).await;
    run.sole_leader(SLACK).await;
    // Every node starts with the first endpoint.
    run.etcd.kill(0);
    let killed = now_ns();
    renewing_after(&run, killed + 1_000_000_000, run.ttl() + SLACK).await;
    for node in &run.nodes {
        eventually(SLACK, "every node healthy again", || async {
            (node.get("/healthz").await?.status == 200).then_some(())
        })
        .await;
    }
    run.etcd.restart(0);
    run.etcd.wait_healthy().await;
    run.assert_safe();
}

async fn elections_survive_the_death_of_etcds_own_leader(api: &'static str) {
    let mut run = Run::cluster(api, 2, 3).await;
    run.sole_leader(SLACK).await;
    for _ in 0..2 {
        let etcd_leader = eventually(SLACK, "an etcd leader", || run.etcd.leader()).await;
        run.etcd.kill(etcd_leader);
        let killed = now_ns();
        renewing_after(&run, killed + 1_000_000_000, run.ttl() * 2 + SLACK).await;
        run.etcd.restart(etcd_leader);
        run.etcd.wait_healthy().await;
    }
    run.assert_safe();
}

async fn a_full_cluster_restart_with_its_data_resumes_the_election(api: &'static str) {
    let mut run = Run::cluster(api, 2, 3).await;
    run.sole_leader(SLACK).await;
    for i in 0..run.etcd.len() {
        run.etcd.kill(i);
    }
    eventually(run.ttl() + SLACK, "nobody to lead without etcd", || async {
        run.leaders(&run.alive()).await.is_empty().then_some(())
    })
    .await;
    for i in 0..run.etcd.len() {
        run.etcd.restart(i);
    }
    run.etcd.wait_healthy().await;
    let restarted = now_ns();
    renewing_after(&run, restarted, run.ttl() * 3 + SLACK).await;
    run.assert_safe();
}

async fn nodes_move_on_from_a_member_cut_off_from_the_majority(api: &'static str) {
    let run = Run::cluster(api, 2, 3).await;
    run.sole_leader(SLACK).await;
    // Every node talks to the first member first; cut it off from the others.
    // It still answers clients, but has no raft leader: requests that need
    // one fail (v3 `hasleader`, v2 quorum reads and writes time out).
    run.etcd.isolate(0);
    let cut = now_ns();
    eventually(SLACK, "the member to lose its leader", || async {
        (!run.etcd.is_healthy(0).await).then_some(())
    })
    .await;
    renewing_after(&run, cut + 2_000_000_000, run.ttl() * 2 + SLACK).await;
    for node in &run.nodes {
        eventually(SLACK * 2, "every node to work again", || async {
            (node.get("/healthz").await?.status == 200).then_some(())
        })
        .await;
    }
    run.etcd.rejoin(0);
    run.etcd.wait_healthy().await;
    run.sole_leader(SLACK).await;
    run.assert_safe();
}

async fn a_member_frozen_past_the_ttl_then_killed(api: &'static str) {
    let mut run = Run::cluster(api, 2, 3).await;
    run.sole_leader(SLACK).await;
    // Every node talks to the first member first. Frozen, it keeps its
    // connections open and answers nothing, like a stalled VM.
    run.etcd.pause(0);
    let frozen = now_ns();
    renewing_after(&run, frozen + 1_000_000_000, run.ttl() * 2 + SLACK).await;
    tokio::time::sleep(run.ttl()).await;
    // Then it dies without waking (stop, then kill), and comes back with its data.
    run.etcd.kill(0);
    run.etcd.restart(0);
    run.etcd.wait_healthy().await;
    run.sole_leader(SLACK).await;
    run.assert_safe();
}

both_apis!(
    a_member_frozen_past_the_ttl_then_killed,
    nodes_move_on_when_the_member_they_talk_to_dies,
    elections_survive_the_death_of_etcds_own_leader,
    a_full_cluster_restart_with_its_data_resumes_the_election,
    nodes_move_on_from_a_member_cut_off_from_the_majority,
);
