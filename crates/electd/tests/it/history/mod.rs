//! etcd that is not the etcd it was a moment ago: its data wiped, restored
//! from an older snapshot, a member replaced. Fencing tokens never repeat
//! and never go backwards within a node's lifetime (nor, with
//! `--state-file`, across its restarts); nobody reports a leader etcd no
//! longer has; every node says what happened and recovers by itself once
//! etcd's revision has passed the old one.
//!
//! `leaderships`: the election's own history (`GET /v1/history`).

mod leaderships;

use std::time::Duration;

use harness::etcd::{Etcd, EtcdOptions};
use harness::node::NodeArgs;
use harness::{eventually, now_ns};
use reqwest::Method;

use crate::common::{Run, SLACK, unhealthy, warned_once};

const TOKEN: &str = "t0ken-for-history-tests";

/// The revision (v3) or index (v2) etcd is at now: at least what any node saw.
async fn position(run: &Run) -> u64 {
    match run.api {
        "v2" => run.etcd.v2_index().await,
        _ => run.etcd.v3_revision().await,
    }
}

/// Raises etcd's revision well past the election's, and waits until every
/// node has seen it (a follower hears of revisions outside the election
/// from its watch's progress answers): the revision the nodes' floor holds.
pub(crate) async fn move_history_on(run: &Run) -> u64 {
    let target = position(run).await + 60;
    run.etcd.raise_past(run.api, target).await;
    let seen = position(run).await;
    for node in &run.nodes {
        eventually(
            run.ttl() + SLACK,
            "every node to see the revision",
            || async {
                let status = node.status().await?;
                (status["revision"].as_u64()? >= seen).then_some(())
            },
        )
        .await;
    }
    seen
}

/// For `span`, no node leads, none calls a follower healthy, and none names
/// a leader with a term at or below `old` — polled, as a load balancer would.
async fn nobody_leads_for(run: &Run, span: Duration, old: u64) {
    let until = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < until {
        for node in &run.nodes {
            let Some(answer) = node.answer().await else {
                continue;
            };
            assert!(
                !answer.starts_with("I am the leader"),
                "{} leads",
                node.name
            );
            let follower = node.get("/health/follower").await.expect("an answer");
            assert_eq!(follower.status, 503, "{}: {}", node.name, follower.body);
            let leader = node.get("/health/leader").await.expect("an answer");
            assert_eq!(leader.status, 503, "{}: {}", node.name, leader.body);
            let status = node.status().await.expect("a status");
            if let Some(t) = status["term"].as_u64() {
                assert!(
                    t > old,
                    "{} reports term {t} after {old}: {status}",
                    node.name
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every node reports the regression: `/healthz` 503 with words an
/// operator can act on, `/v1/status` with its kind, `/livez` still 200.
async fn everyone_reports_the_regression(run: &Run) {
    for node in &run.nodes {
        let body = unhealthy(node, &["went backwards", "passes"]).await;
        assert!(body.contains("restart electd"), "{body}");
        let status = node.status().await.expect("a status");
        assert_eq!(status["obstacle"]["kind"], "regressed", "{status}");
        assert!(status["floor"].as_u64().unwrap_or(0) > 0, "{status}");
        let live = node.get("/livez").await.expect("an answer");
        assert_eq!(live.status, 200, "a restart cannot help: {}", live.body);
    }
}

/// Once etcd's revision passes what the nodes saw (their floors), a leader
/// emerges with a larger term, and `/healthz` is fine again.
pub(crate) async fn recovers_past(run: &Run, seen: u64, old_term: u64) {
    let mut floor = seen;
    for node in &run.nodes {
        let status = node.status().await.expect("a status");
        floor = floor.max(status["floor"].as_u64().expect("a floor"));
    }
    run.etcd.raise_past(run.api, floor).await;
    let leader = run.sole_leader(run.ttl() * 3 + SLACK).await;
    let new = run.term(leader).await;
    assert!(new > old_term, "term {new} after {old_term}");
    assert!(
        new > seen,
        "term {new} is not above the revision {seen} seen before"
    );
    for node in &run.nodes {
        eventually(SLACK, "/healthz to be fine again", || async {
            (node.get("/healthz").await?.status == 200).then_some(())
        })
        .await;
    }
}

async fn a_wiped_etcd_never_hands_out_an_old_term_again(api: &'static str) {
    // Five: on v3 the last two watch puts only (the quiet queue), and must
    // notice the wipe like the rest.
    let mut run = Run::new(api, 2, 5).await;
    let leader = run.sole_leader(SLACK).await;
    // Some history, so a fresh store starts well below it.
    let seen = move_history_on(&run).await;
    let old_term = run.term(leader).await;
    run.etcd.wipe().await;
    everyone_reports_the_regression(&run).await;
    nobody_leads_for(&run, run.ttl() * 2, old_term).await;
    for node in &run.nodes {
        warned_once(node, "went backwards");
    }
    recovers_past(&run, seen, old_term).await;
    run.assert_safe();
}

async fn a_restore_from_an_older_snapshot_never_hands_out_an_old_term_again(api: &'static str) {
    let env = [("ELECTD_ADMIN_TOKEN", TOKEN)];
    let mut run = Run::new(api, 2, 0).await;
    for i in 0..3 {
        run.spawn_with_env(&format!("n{i}"), NodeArgs::new(), &env);
    }
    for node in &run.nodes {
        node.wait_serving().await;
    }
    let first = run.sole_leader(SLACK).await;
    let first_term = run.term(first).await;
    let snapshot = run.dir.path().join("old.db");
    run.etcd.snapshot(&snapshot);
    // Leadership moves on: hand-overs on demand, each a larger term.
    let mut leader = first;
    for _ in 0..2 {
        let auth = format!("Bearer {TOKEN}");
        let answer = run.nodes[leader]
            .request(Method::POST, "/v1/resign", &[("Authorization", &auth)])
            .await
            .expect("an answer");
        assert_eq!(answer.status, 200, "{}", answer.body);
        let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
        leader = run.sole_leader_among(&others, SLACK).await;
    }
    let last_term = run.term(leader).await;
    assert!(last_term > first_term);
    // Far past the snapshot, so that the nodes' own writes after the
    // restore cannot pass it again by themselves within the test.
    let seen = move_history_on(&run).await;
    run.etcd.restore(&snapshot).await;
    everyone_reports_the_regression(&run).await;
    // The snapshot's leader (or nobody) is back in etcd: nobody reports it.
    nobody_leads_for(&run, run.ttl() * 2, last_term).await;
    recovers_past(&run, seen, last_term).await;
    run.assert_safe();
}

async fn the_state_file_keeps_the_floor_across_a_restart(api: &'static str) {
    let mut run = Run::new(api, 2, 0).await;
    let state = |i: usize, run: &Run| {
        NodeArgs::new().state_file(run.dir.path().join(format!("n{i}.state")))
    };
    for i in 0..3 {
        let own = state(i, &run);
        run.spawn(&format!("n{i}"), own);
    }
    for node in &run.nodes {
        node.wait_serving().await;
    }
    let leader = run.sole_leader(SLACK).await;
    let seen = move_history_on(&run).await;
    let old_term = run.term(leader).await;
    // Every node stops; etcd loses its data while they are down.
    for node in &run.nodes {
        node.terminate();
    }
    for node in &mut run.nodes {
        assert_eq!(node.wait_exit(SLACK).await.and_then(|s| s.code()), Some(0));
    }
    run.etcd.wipe().await;
    for i in 0..3 {
        let own = state(i, &run);
        run.restart(i, own, &[]);
    }
    for node in &run.nodes {
        node.wait_serving().await;
    }
    everyone_reports_the_regression(&run).await;
    let status = run.nodes[0].status().await.expect("a status");
    assert!(
        status["obstacle"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(".state")),
        "the 503 names the state file: {status}"
    );
    nobody_leads_for(&run, run.ttl() * 2, old_term).await;
    recovers_past(&run, seen, old_term).await;
    run.assert_safe();
}

async fn a_replaced_member_changes_nothing(api: &'static str) {
    let etcd = Etcd::start(EtcdOptions {
        members: 3,
        ..EtcdOptions::default()
    })
    .await;
    let mut run = Run::with_etcd(etcd, api, 2, 3).await;
    let leader = run.sole_leader(SLACK).await;
    let before = run.term(leader).await;
    let since = now_ns();
    for i in 0..3 {
        run.etcd.replace_member(i).await;
    }
    // Same history, so no alarm, and leadership carries on (nodes that
    // talked to a replaced member moved to another and came back).
    let after = run.sole_leader(run.ttl() + SLACK).await;
    assert!(run.term(after).await >= before);
    for node in &run.nodes {
        let status = node.status().await.expect("a status");
        assert!(status["obstacle"].is_null(), "{}: {status}", node.name);
        let output = node.output();
        let alarms: Vec<&str> = output
            .lines()
            .filter(|l| l.contains("went backwards"))
            .collect();
        assert!(
            alarms.is_empty(),
            "{}: a false alarm: {alarms:#?}",
            node.name
        );
    }
    let report = run.assert_safe();
    assert!(report.intervals.iter().any(|i| i.end_ns > since));
}

/// A follower cut off from etcd while leadership moves and the history it
/// would watch from is compacted (v3) or pushed out of the 1,000-event
/// window (v2): when it comes back it reads afresh and names the new leader.
async fn a_follower_whose_history_was_compacted_reads_afresh(api: &'static str) {
    let etcd = Etcd::single().await;
    let mut run = Run::faulty(etcd, api, 2, 3).await;
    let old = run.sole_leader(SLACK).await;
    let follower = (old + 1) % 3;
    for proxy in run.link(follower) {
        proxy.drop_all();
    }
    run.nodes[old].terminate();
    assert_eq!(
        run.nodes[old].wait_exit(SLACK).await.and_then(|s| s.code()),
        Some(0)
    );
    let third = 3 - old - follower;
    run.sole_leader_among(&[third], SLACK).await;
    match api {
        "v2" => {
            let target = run.etcd.v2_index().await + 1_100;
            run.etcd.raise_past(api, target).await;
        }
        _ => run.etcd.compact().await,
    }
    for proxy in run.link(follower) {
        proxy.heal();
    }
    run.sole_leader_among(&[third, follower], run.ttl() + SLACK)
        .await;
    run.assert_safe();
}

both_apis!(
    a_follower_whose_history_was_compacted_reads_afresh,
    a_wiped_etcd_never_hands_out_an_old_term_again,
    a_restore_from_an_older_snapshot_never_hands_out_an_old_term_again,
    the_state_file_keeps_the_floor_across_a_restart,
    a_replaced_member_changes_nothing,
);
