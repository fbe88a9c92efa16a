//! Faults between nodes and etcd, through a fault proxy per node: silent and
//! loud partitions, slow etcd, paused processes. Every test ends with the
//! journal checker.

use std::time::Duration;

use harness::etcd::Etcd;
use harness::eventually;
use harness::proxy::{Direction, Fault};

use crate::common::Run;

/// A bound, never a wait: a first election on a fresh etcd once took over
/// 10 s here in the full suite on 2 loaded cores.
const SLACK: Duration = Duration::from_secs(30);

async fn term_of(run: &Run, i: usize) -> u64 {
    run.nodes[i].status().await.unwrap()["term"]
        .as_u64()
        .unwrap()
}

fn others(run: &Run, i: usize) -> Vec<usize> {
    run.alive().into_iter().filter(|&j| j != i).collect()
}

async fn partitioned_leader(api: &'static str, loud: bool) {
    let run = Run::faulty(Etcd::single().await, api, 2, 3).await;
    let old = run.sole_leader(SLACK).await;
    for proxy in run.link(old) {
        if loud {
            proxy.refuse();
        } else {
            proxy.drop_all();
        }
    }
    let new = run
        .sole_leader_among(&others(&run, old), run.ttl() + SLACK)
        .await;
    assert!(!run.nodes[old].is_leader().await);
    // The old leader stepped down by its deadline, before the new one took over.
    let ended = run
        .journal(old)
        .into_iter()
        .rfind(|r| r["event"] == "ended")
        .unwrap();
    assert_eq!(ended["reason"], "deadline");
    let acquired = run
        .journal(new)
        .into_iter()
        .rfind(|r| r["event"] == "acquired")
        .unwrap();
    assert!(ended["t_ns"].as_u64() < acquired["t_ns"].as_u64());
    for proxy in run.link(old) {
        proxy.heal();
    }
    // Healed, the old leader rejoins as a follower of the new one.
    let named = format!("the leader is on port {}", run.nodes[new].port);
    eventually(SLACK, "the old leader to follow the new one", || async {
        run.nodes[old]
            .answer()
            .await?
            .ends_with(&named)
            .then_some(())
    })
    .await;
    run.sole_leader(SLACK).await;
    run.assert_safe();
}

async fn a_silent_partition_longer_than_the_ttl(api: &'static str) {
    partitioned_leader(api, false).await;
}

async fn a_loud_partition_longer_than_the_ttl(api: &'static str) {
    partitioned_leader(api, true).await;
}

async fn a_partition_shorter_than_a_third_of_the_ttl_changes_nothing(api: &'static str) {
    // TTL 3 s: renewals every 1 s, a 500 ms partition.
    let run = Run::faulty(Etcd::single().await, api, 3, 3).await;
    let leader = run.sole_leader(SLACK).await;
    let term = term_of(&run, leader).await;
    for round in 0..3 {
        for proxy in run.link(leader) {
            proxy.drop_all();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for proxy in run.link(leader) {
            proxy.heal();
        }
        // Let at least two renewal intervals pass on the healed connection.
        tokio::time::sleep(run.ttl()).await;
        assert_eq!(run.sole_leader(SLACK).await, leader, "round {round}");
        assert_eq!(term_of(&run, leader).await, term, "round {round}");
    }
    for i in others(&run, leader) {
        assert!(run.journal(i).is_empty(), "{} led", run.nodes[i].name);
    }
    run.assert_safe();
}

async fn etcd_traffic_delayed_near_a_third_of_the_ttl(api: &'static str) {
    // TTL 3 s; about 0.9 s round trip, jittered, for every node at once.
    let run = Run::faulty(Etcd::single().await, api, 3, 3).await;
    run.sole_leader(SLACK).await;
    for i in 0..run.nodes.len() {
        for proxy in run.link(i) {
            proxy.set(
                Direction::Both,
                Fault::Delay {
                    fixed: Duration::from_millis(400),
                    jitter: Duration::from_millis(100),
                },
            );
        }
    }
    tokio::time::sleep(run.ttl() * 3).await;
    for i in 0..run.nodes.len() {
        for proxy in run.link(i) {
            proxy.heal();
        }
    }
    run.sole_leader(run.ttl() + SLACK).await;
    // Renewals either kept succeeding or the leader stepped down in time:
    // the checker finds no overlap either way.
    run.assert_safe();
}

async fn a_leader_paused_across_several_ttls_again_and_again(api: &'static str) {
    let run = Run::new(api, 2, 3).await;
    for round in 0..3 {
        let old = run.sole_leader(SLACK).await;
        run.nodes[old].pause();
        let new = run
            .sole_leader_among(&others(&run, old), run.ttl() + SLACK)
            .await;
        // Stay paused for a few TTLs in all.
        tokio::time::sleep(run.ttl() * 2).await;
        run.nodes[old].resume();
        let first = run.nodes[old].answer().await.unwrap();
        assert!(
            first.starts_with("I am a follower"),
            "round {round}: {first}"
        );
        assert!(run.nodes[new].is_leader().await, "round {round}");
    }
    run.sole_leader(SLACK).await;
    run.assert_safe();
}

both_apis!(
    a_silent_partition_longer_than_the_ttl,
    a_loud_partition_longer_than_the_ttl,
    a_partition_shorter_than_a_third_of_the_ttl_changes_nothing,
    etcd_traffic_delayed_near_a_third_of_the_ttl,
    a_leader_paused_across_several_ttls_again_and_again,
);
