//! v3: the queue behind the next two in line watches puts only, so a
//! hand-over wakes only those two. What it does not see (departures nobody
//! reports to it, keys that come and go), a count of the keys tells it
//! within a TTL. Against a real etcd with real processes; every scenario
//! ends with the checker.

use std::time::Duration;

use harness::eventually;
use harness::node::NodeArgs;
use serde_json::Value;

use crate::common::{Run, SLACK, requests};

/// Short, so the queue's periodic read (once a TTL) comes soon.
const TTL: u64 = 3;

/// `n` v3 nodes, queued in the order started, each known to all.
async fn queued(n: usize) -> Run {
    let mut run = Run::new("v3", TTL, 0).await;
    for i in 0..n {
        run.spawn(&format!("n{i}"), NodeArgs::new());
        // One at a time, so the queue is in this order.
        let run = &run;
        eventually(SLACK, "the node queued", || async {
            (candidates(run, 0).await?.len() == i + 1).then_some(())
        })
        .await;
    }
    for i in 0..n {
        eventually(SLACK, "every node to list every candidate", || async {
            (candidates(&run, i).await?.len() == n).then_some(())
        })
        .await;
    }
    run
}

/// The ids in node `i`'s succession order (the leader first).
async fn candidates(run: &Run, i: usize) -> Option<Vec<String>> {
    let status: Value = run.nodes[i].status().await?;
    let ids = status["candidates"]
        .as_array()?
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect();
    Some(ids)
}

/// The two next in line go (their guardians release them at once, and
/// only they hear the leader's queue shrink); the rest of the queue learns
/// of it by its own read within a TTL, lists them no more, and one of it
/// takes over when the leader dies too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_behind_the_next_two_takes_over_when_they_are_gone() {
    let mut run = queued(5).await;
    assert_eq!(run.sole_leader(SLACK).await, 0);
    assert_eq!(
        candidates(&run, 4).await.expect("a status"),
        ["n0", "n1", "n2", "n3", "n4"]
    );
    run.kill9_electd(1);
    run.kill9_electd(2);
    for i in [3, 4] {
        let run = &run;
        eventually(run.ttl() + SLACK, "the rest to drop the two", || async {
            let ids = candidates(run, i).await?;
            (ids == ["n0", "n3", "n4"]).then_some(())
        })
        .await;
    }
    let killed = run.kill9_electd(0);
    let next = run.sole_leader_among(&[3, 4], run.ttl() + SLACK).await;
    assert_eq!(next, 3, "the first of the rest leads");
    let took = run.took(next, killed);
    assert!(took < Duration::from_secs(1), "{took:?} to take over");
    run.assert_safe();
}

/// The leader and the two next in line die together: nobody who hears
/// the revokes may lead, so the third takes over at its next read, within
/// a TTL, and no two lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_third_in_line_takes_over_when_the_leader_and_the_next_two_die_together() {
    let mut run = queued(5).await;
    assert_eq!(run.sole_leader(SLACK).await, 0);
    let killed = run.kill9_electd(0);
    run.kill9_electd(1);
    run.kill9_electd(2);
    let next = run.sole_leader_among(&[3, 4], run.ttl() + SLACK).await;
    assert_eq!(next, 3, "the first of the rest leads");
    let took = run.took(next, killed);
    assert!(took < 2 * run.ttl(), "{took:?} to take over");
    run.assert_safe();
}

/// A `~transfer` someone else put while a node leads blocks the election
/// once the leader goes: nobody takes the record, so the queue sees no new
/// record; its own read finds the record gone within a TTL, and from then
/// it watches everything: every node names the key, and every node clears
/// it once it is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_key_is_named_and_cleared_by_the_whole_queue() {
    let mut run = queued(5).await;
    assert_eq!(run.sole_leader(SLACK).await, 0);
    let key = "/electd/leader/~transfer";
    assert!(run.etcd.v3_put(key, "garbage").await);
    run.nodes[0].terminate();
    let status = run.nodes[0].wait_exit(SLACK).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    for node in &run.nodes[1..] {
        let what = format!("{}'s /healthz to name {key}", node.name);
        eventually(run.ttl() + SLACK, &what, || async {
            let h = node.get("/healthz").await?;
            (h.status == 503 && h.body.contains(key)).then_some(())
        })
        .await;
    }
    assert!(run.etcd.v3_delete(key, false).await);
    for node in &run.nodes[1..] {
        eventually(SLACK, "/healthz to be fine again", || async {
            (node.get("/healthz").await?.status == 200).then_some(())
        })
        .await;
    }
    assert_eq!(run.sole_leader_among(&[1, 2, 3, 4], SLACK).await, 1);
    run.assert_safe();
}

/// A leader that resigns with the rest of the queue watching puts only:
/// the next in line takes over, and every node names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resign_is_followed_by_the_whole_queue() {
    let mut run = queued(6).await;
    assert_eq!(run.sole_leader(SLACK).await, 0);
    for leader in 0..3 {
        run.nodes[leader].terminate();
        let rest: Vec<usize> = (leader + 1..6).collect();
        let next = run.sole_leader_among(&rest, SLACK).await;
        assert_eq!(next, leader + 1, "the next in line leads");
        let status = run.nodes[leader].wait_exit(SLACK).await;
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
        for &i in &rest {
            let run = &run;
            let expected: Vec<String> = rest.iter().map(|j| format!("n{j}")).collect();
            eventually(run.ttl() + SLACK, "every node to list the rest", || async {
                (candidates(run, i).await? == expected).then_some(())
            })
            .await;
        }
    }
    run.assert_safe();
}

/// Idle, a node behind the two counts the keys twice a TTL and reads nothing
/// more: no read of the queue, no new watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_queue_only_counts_the_keys() {
    let run = queued(5).await;
    run.sole_leader(SLACK).await;
    let (watches, ranges) = (
        requests(&run, 4, "watch").await,
        requests(&run, 4, "range").await,
    );
    // The window measured, not a wait for an event.
    tokio::time::sleep(3 * run.ttl()).await;
    assert_eq!(
        requests(&run, 4, "watch").await,
        watches,
        "a new watch: it read again"
    );
    // One count every half TTL.
    let counts = requests(&run, 4, "range").await - ranges;
    assert!((5..=7).contains(&counts), "{counts} ranges in 3 TTLs");
    run.assert_safe();
}
