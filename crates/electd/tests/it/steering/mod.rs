//! Steering who leads, against a real etcd with real processes: health
//! verdicts, drain, hand-over to a named node, priorities and preemption.
//! Every scenario ends with the journal checker, and where nodes run
//! `--exec`, with the commands' own records: no two at once.

pub mod steered;
mod v3_only;

use std::time::Duration;

use harness::app::HealthSwitch;
use harness::eventually;
use harness::node::NodeArgs;
use serde_json::Value;

use self::steered::*;
use crate::common::SLACK;

async fn an_unhealthy_leader_hands_over_to_a_healthy_node(api: &'static str) {
    let mut s = Steered::new(api, 4).await;
    let switches: Vec<HealthSwitch> = (0..3).map(|_| HealthSwitch::start(true)).collect();
    for (i, switch) in switches.iter().enumerate() {
        let opts = Opts {
            health: Some(switch),
            exec: true,
            ..Opts::default()
        };
        s.spawn(&format!("n{i}"), opts).await;
    }
    let run = &s.run;
    let leader = run.sole_leader(SLACK).await;
    s.ticking(leader).await;
    assert_eq!(status(run, leader).await["healthy"], true);

    switches[leader].set_healthy(false);
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let next = run.sole_leader_among(&others, SLACK).await;
    ended_for(run, leader, "unhealthy").await;
    assert_handed_over(run, leader, next);
    s.ticking(next).await;
    let old = status(run, leader).await;
    assert_eq!(old["healthy"], false, "{old}");
    assert_ne!(old["role"], "leader", "{old}");
    if api == "v3" {
        let listed = eventually(SLACK, "the unhealthy node to be listed so", || async {
            let status = status(run, next).await;
            let entry = candidate(&status, &run.nodes[leader].name)?.clone();
            (entry["healthy"] == false).then_some(entry)
        })
        .await;
        assert_eq!(listed["leads"], false, "{listed}");
    }

    // Healthy again: a candidate, but the leader stays (no --preempt).
    switches[leader].set_healthy(true);
    eventually(SLACK, "the old leader to be healthy again", || async {
        (status(run, leader).await["healthy"] == true).then_some(())
    })
    .await;
    let term_then = run.term(next).await;
    keeps_leading_for(run, next, term_then, Duration::from_secs(1)).await;
    s.assert_safe();
}

async fn with_every_node_unhealthy_nobody_leads(api: &'static str) {
    let mut s = Steered::new(api, 2).await;
    let switches: Vec<HealthSwitch> = (0..2).map(|_| HealthSwitch::start(true)).collect();
    for (i, switch) in switches.iter().enumerate() {
        let opts = Opts {
            health: Some(switch),
            ..Opts::default()
        };
        s.spawn(&format!("n{i}"), opts).await;
    }
    let run = &s.run;
    run.sole_leader(SLACK).await;
    for switch in &switches {
        switch.set_healthy(false);
    }
    // Once both know their verdict (the leader may hand over to the other
    // before the other knows its own), nobody leads.
    eventually(SLACK, "both to be unhealthy and nobody to lead", || async {
        for i in [0, 1] {
            if status(run, i).await["healthy"] != false {
                return None;
            }
        }
        run.leaders(&[0, 1]).await.is_empty().then_some(())
    })
    .await;
    nobody_leads_for(run, &[0, 1], run.ttl() * 2).await;

    switches[1].set_healthy(true);
    assert_eq!(run.sole_leader(SLACK).await, 1);
    s.assert_safe();
}

async fn a_drained_node_hands_over_and_stays_out_until_undrained(api: &'static str) {
    let mut s = Steered::new(api, 4).await;
    for i in 0..2 {
        let opts = Opts {
            exec: true,
            ..Opts::default()
        };
        s.spawn(&format!("n{i}"), opts).await;
    }
    let run = &s.run;
    let leader = run.sole_leader(SLACK).await;
    let other = 1 - leader;
    s.ticking(leader).await;
    assert_eq!(status(run, leader).await["healthy"], Value::Null);

    let (code, body) = admin(run, leader, "/v1/drain").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["drained"], true, "{body}");
    assert_ne!(body["role"], "leader", "{body}");
    assert_eq!(run.sole_leader(SLACK).await, other);
    ended_for(run, leader, "drain").await;
    assert_handed_over(run, leader, other);
    s.ticking(other).await;
    if api == "v3" {
        eventually(SLACK, "the drained node to be listed so", || async {
            let status = status(run, other).await;
            (candidate(&status, &run.nodes[leader].name)?["drained"] == true).then_some(())
        })
        .await;
    }

    // Both drained: nobody leads, however long.
    let (code, body) = admin(run, other, "/v1/drain").await;
    assert_eq!(code, 200, "{body}");
    ended_for(run, other, "drain").await;
    nobody_leads_for(run, &[0, 1], run.ttl() + Duration::from_secs(1)).await;

    let (code, body) = admin(run, leader, "/v1/undrain").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["drained"], false, "{body}");
    assert_eq!(run.sole_leader(SLACK).await, leader);
    s.ticking(leader).await;
    s.assert_safe();
}

async fn a_node_started_drained_never_leads_until_undrained(api: &'static str) {
    let mut s = Steered::new(api, 2).await;
    let opts = Opts {
        own: NodeArgs::new().drained(),
        ..Opts::default()
    };
    let i = s.spawn("n0", opts).await;
    let run = &s.run;
    eventually(SLACK, "a first answer from etcd", || async {
        (run.nodes[i].get("/healthz").await?.status == 200).then_some(())
    })
    .await;
    let status_then = status(run, i).await;
    assert_eq!(status_then["drained"], true, "{status_then}");
    assert_eq!(status_then["healthy"], Value::Null, "{status_then}");
    nobody_leads_for(run, &[i], run.ttl() * 2).await;
    assert!(run.journal(i).is_empty(), "{:?}", run.journal(i));

    let (code, body) = admin(run, i, "/v1/undrain").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(run.sole_leader(SLACK).await, i);
    s.assert_safe();
}

async fn a_drain_during_a_failover_keeps_the_drained_node_out(api: &'static str) {
    let mut s = Steered::new(api, 2).await;
    for i in 0..3 {
        let opts = Opts {
            exec: true,
            ..Opts::default()
        };
        let at = s.spawn(&format!("n{i}"), opts).await;
        if api == "v3" {
            s.queued(at).await;
        }
    }
    let leader = s.run.sole_leader(SLACK).await;
    s.ticking(leader).await;
    // The leader dies; before its lease runs out, both others are drained
    // but one, which alone may lead next.
    s.run.kill9(leader);
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let (drained, left) = (others[0], others[1]);
    let (code, body) = admin(&s.run, drained, "/v1/drain").await;
    assert_eq!(code, 200, "{body}");
    let run = &s.run;
    assert_eq!(
        run.sole_leader_among(&others, run.ttl() + SLACK).await,
        left
    );
    s.ticking(left).await;
    assert!(run.last_acquired(drained).is_none(), "the drained node led");
    s.assert_safe();
}

both_apis!(
    an_unhealthy_leader_hands_over_to_a_healthy_node,
    with_every_node_unhealthy_nobody_leads,
    a_drained_node_hands_over_and_stays_out_until_undrained,
    a_node_started_drained_never_leads_until_undrained,
    a_drain_during_a_failover_keeps_the_drained_node_out,
);

mod v2_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_named_hand_over_needs_v3() {
        let mut s = Steered::new("v2", 2).await;
        let a = s.spawn("a", Opts::default()).await;
        assert_eq!(s.run.sole_leader(SLACK).await, a);
        s.spawn("b", Opts::default()).await;
        let run = &s.run;
        let term_then = run.term(a).await;
        let (code, body) = admin(run, a, "/v1/resign?to=b").await;
        assert_eq!(
            (code, body["error"].as_str()),
            (501, Some("needs_v3")),
            "{body}"
        );
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("--api v3")),
            "{body}"
        );
        keeps_leading_for(run, a, term_then, Duration::from_millis(500)).await;
        s.assert_safe();
    }
}
