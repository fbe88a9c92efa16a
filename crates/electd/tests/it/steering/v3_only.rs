//! Steering that needs v3: hand-over to a named node, priorities and
//! preemption.

use std::time::Duration;

use harness::app::HealthSwitch;
use harness::eventually;
use harness::node::NodeArgs;

use super::steered::*;
use crate::common::SLACK;

/// Nodes `n0`… started in order, each queued before the next starts:
/// the succession order is their order.
async fn in_line(s: &mut Steered, n: usize, exec: bool) {
    s.line_up((0..n).map(|_| Opts {
        exec,
        ..Opts::default()
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_hand_over_goes_to_that_node_and_no_other() {
    let mut s = Steered::new("v3", 4).await;
    in_line(&mut s, 4, true).await;
    let run = &s.run;
    assert_eq!(run.sole_leader(SLACK).await, 0);
    s.ticking(0).await;
    // The status lists the queue from the node's own watch, read at most
    // 0.5 s before: the four in line once it has seen them all.
    eventually(SLACK, "n0 to list the four in line", || async {
        let order: Vec<String> = status(run, 0).await["candidates"]
            .as_array()?
            .iter()
            .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        (order == ["n0", "n1", "n2", "n3"]).then_some(())
    })
    .await;
    let before = run.term(0).await;

    // The last in line, past the two next.
    let (code, body) = admin(run, 0, "/v1/resign?to=n3").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["leader"]["id"], "n3", "{body}");
    assert_eq!(run.sole_leader(SLACK).await, 3);
    ended_for(run, 0, "transfer").await;
    assert_handed_over(run, 0, 3);
    let (after, _) = run.last_acquired(3).expect("n3 acquired");
    assert!(after > before, "term {after} after {before}");
    for i in [1, 2] {
        assert!(run.last_acquired(i).is_none(), "n{i} led");
    }
    s.ticking(3).await;
    s.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_hand_over_that_cannot_be_made_is_refused_with_a_code() {
    let mut s = Steered::new("v3", 4).await;
    let sick = HealthSwitch::start(false);
    let a = s.spawn("a", Opts::default()).await;
    assert_eq!(s.run.sole_leader(SLACK).await, a);
    let b = s.spawn("b", Opts::default()).await;
    let c = s
        .spawn(
            "c",
            Opts {
                health: Some(&sick),
                ..Opts::default()
            },
        )
        .await;
    let d = s
        .spawn(
            "d",
            Opts {
                own: NodeArgs::new().drained(),
                ..Opts::default()
            },
        )
        .await;
    let twin1 = s
        .spawn(
            "twin1",
            Opts {
                own: NodeArgs::new().id("twin"),
                ..Opts::default()
            },
        )
        .await;
    s.spawn(
        "twin2",
        Opts {
            own: NodeArgs::new().id("twin"),
            ..Opts::default()
        },
    )
    .await;
    let run = &s.run;
    for i in [b, c, d] {
        s.queued(i).await;
    }
    eventually(SLACK, "both twins to be listed", || async {
        let status = status(run, a).await;
        let twins = status["candidates"]
            .as_array()?
            .iter()
            .filter(|c| c["id"] == "twin")
            .count();
        (twins == 2).then_some(())
    })
    .await;
    let listed = status(run, a).await;
    assert_eq!(candidate(&listed, "c").expect("c")["healthy"], false);
    assert_eq!(candidate(&listed, "d").expect("d")["drained"], true);
    let term_then = run.term(a).await;

    for (to, code) in [
        ("nobody", "no_such_candidate"),
        ("a", "candidate_is_self"),
        ("c", "candidate_unhealthy"),
        ("d", "candidate_drained"),
        ("twin", "ambiguous_candidate"),
    ] {
        let (status, body) = admin(run, a, &format!("/v1/resign?to={to}")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some(code)),
            "{body}"
        );
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert!(run.nodes[a].is_leader().await, "?to={to} moved leadership");
        assert_eq!(run.term(a).await, term_then, "?to={to} changed the term");
    }
    let (status, body) = admin(run, b, "/v1/resign?to=twin").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("not_leader")),
        "{body}"
    );
    assert!(run.last_acquired(twin1).is_none());
    assert_eq!(run.sole_leader(SLACK).await, a);
    s.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_to_a_stopped_node_times_out_and_succession_resumes() {
    let mut s = Steered::new("v3", 4).await;
    in_line(&mut s, 3, true).await;
    let run = &s.run;
    assert_eq!(run.sole_leader(SLACK).await, 0);
    s.ticking(0).await;

    // The target freezes with its candidacy alive: it cannot take over.
    run.nodes[2].pause();
    let (code, body) = admin(run, 0, "/v1/resign?to=n2").await;
    assert_eq!(code, 504, "{body}");
    assert_eq!(body["error"], "transfer_timed_out", "{body}");
    assert!(body.get("leader").is_some(), "{body}");
    let next = run.sole_leader_among(&[0, 1], SLACK).await;
    ended_for(run, 0, "transfer").await;
    assert_ne!(next, 0, "the old leader kept leading");

    // Woken within its TTL, the late target finds the transfer gone.
    run.nodes[2].resume();
    let term_then = run.term(next).await;
    keeps_leading_for(run, next, term_then, run.ttl()).await;
    assert!(run.last_acquired(2).is_none(), "the late target led");
    assert_eq!(run.sole_leader(SLACK).await, next);
    s.ticking(next).await;
    s.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_to_a_node_killed_mid_way_never_leaves_two_leaders() {
    // Killed 2 ms into the request, the target has not taken over yet
    // (504 here); 10 ms in, it has (200): both ways, the others go on,
    // one at a time.
    for delay in [2, 10] {
        let mut s = Steered::new("v3", 4).await;
        in_line(&mut s, 3, true).await;
        assert_eq!(s.run.sole_leader(SLACK).await, 0);
        s.ticking(0).await;
        let run = &s.run;
        let target = run.nodes[2].pid();
        let (answer, ()) = tokio::join!(admin(run, 0, "/v1/resign?to=n2"), async {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            harness::procs::signal(target, rustix::process::Signal::KILL);
        });
        // Reaped, and its death (a moment after the signal: the
        // checker's bound is the stricter for it) recorded.
        s.run.kill9(2);
        let (code, body) = answer;
        assert!(code == 200 || code == 504, "{code}: {body}");
        let run = &s.run;
        let next = run.sole_leader_among(&[0, 1], run.ttl() + SLACK).await;
        s.ticking(next).await;
        s.assert_safe();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preempting_node_that_turns_unhealthy_does_not_take_over() {
    let mut s = Steered::new("v3", 6).await;
    let low = s
        .spawn(
            "low",
            Opts {
                exec: true,
                ..Opts::default()
            },
        )
        .await;
    assert_eq!(s.run.sole_leader(SLACK).await, low);
    let switch = HealthSwitch::start(true);
    let high_args = NodeArgs::new().priority(10).preempt(Duration::from_secs(2));
    let high = s
        .spawn(
            "high",
            Opts {
                health: Some(&switch),
                exec: true,
                own: high_args,
                ..Opts::default()
            },
        )
        .await;
    let run = &s.run;
    eventually(SLACK, "the preempting node to be healthy", || async {
        (status(run, high).await["healthy"] == true).then_some(())
    })
    .await;
    let term_then = run.term(low).await;
    switch.set_healthy(false);
    eventually(SLACK, "the preempting node to be unhealthy", || async {
        (status(run, high).await["healthy"] == false).then_some(())
    })
    .await;
    keeps_leading_for(run, low, term_then, Duration::from_secs(3)).await;

    // Healthy again: it preempts once it has been healthy for 2 s.
    switch.set_healthy(true);
    comes_to_lead(run, high).await;
    ended_for(run, low, "preempted").await;
    assert_handed_over(run, low, high);
    s.ticking(high).await;
    s.assert_safe();
}

/// A drain and an undrain back to back on the leader: the undrain may
/// come while it queues again, and must reach etcd all the same. The
/// undrain is sent once the leader has ended its term for the drain (0–7
/// ms later): two requests sent together on two connections may reach the
/// node in either order, and an undrain first, then a drain, rightly leaves
/// it drained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undrain_while_queueing_again_is_seen_by_all() {
    let mut s = Steered::new("v3", 4).await;
    in_line(&mut s, 2, false).await;
    let run = &s.run;
    for round in 0..8 {
        let leader = run.sole_leader(SLACK).await;
        let drains = ended_for_drain(run, leader);
        let (drained, undrained) = tokio::join!(admin(run, leader, "/v1/drain"), async {
            eventually(SLACK, "the drain to end the term", || async {
                (ended_for_drain(run, leader) > drains).then_some(())
            })
            .await;
            tokio::time::sleep(Duration::from_millis(round)).await;
            admin(run, leader, "/v1/undrain").await
        });
        assert_eq!(
            (drained.0, undrained.0),
            (200, 200),
            "{drained:?} {undrained:?}"
        );
        let name = run.nodes[leader].name.clone();
        let what = format!("round {round}: every node to list {name} undrained");
        eventually(SLACK, &what, || async {
            for i in 0..2 {
                let status = status(run, i).await;
                if candidate(&status, &name)?["drained"] != false {
                    return None;
                }
            }
            Some(())
        })
        .await;
    }
    s.assert_safe();
}

/// How many terms node `i` has ended for a drain.
fn ended_for_drain(run: &crate::common::Run, i: usize) -> usize {
    run.journal(i)
        .iter()
        .filter(|r| r["event"] == "ended" && r["reason"] == "drain")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_highest_priority_survivor_leads_next() {
    let mut s = Steered::new("v3", 2).await;
    let lineup = [
        ("p10", NodeArgs::new().priority(10)),
        ("p0", NodeArgs::new().priority(0)),
        ("p5", NodeArgs::new().priority(5)),
    ];
    for (name, own) in &lineup {
        let at = s
            .spawn(
                name,
                Opts {
                    own: own.clone(),
                    ..Opts::default()
                },
            )
            .await;
        s.queued(at).await;
    }
    let (p10, p0, p5) = (0, 1, 2);
    let run = &s.run;
    assert_eq!(run.sole_leader(SLACK).await, p10);
    let listed = eventually(SLACK, "p0 to list all three", || async {
        let status = status(run, p0).await;
        (status["candidates"].as_array()?.len() == 3).then_some(status)
    })
    .await;
    assert_eq!(listed["priority"], 0, "{listed}");
    for (id, priority) in [("p10", 10), ("p0", 0), ("p5", 5)] {
        let entry = candidate(&listed, id).expect("listed");
        assert_eq!(entry["priority"], priority, "{listed}");
        assert_eq!(entry["healthy"], true, "{listed}");
    }

    s.run.kill9(p10);
    let run = &s.run;
    assert_eq!(
        run.sole_leader_among(&[p0, p5], run.ttl() + SLACK).await,
        p5
    );

    // Back without --preempt: it waits for the next change of leader.
    let env = [("ELECTD_ADMIN_TOKEN", TOKEN)];
    s.run.restart(p10, lineup[0].1.clone(), &env);
    s.run.nodes[p10].wait_serving().await;
    s.queued(p10).await;
    let run = &s.run;
    let term_then = run.term(p5).await;
    keeps_leading_for(run, p5, term_then, run.ttl() * 2).await;

    // A resign hands over to the highest, not to the next in line.
    let (code, body) = admin(run, p5, "/v1/resign").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(run.sole_leader(SLACK).await, p10);
    assert!(run.last_acquired(p0).is_none(), "p0 led");
    s.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preempting_node_takes_over_by_hand_over() {
    let mut s = Steered::new("v3", 6).await;
    let preempting = |priority: i64| {
        NodeArgs::new()
            .priority(priority)
            .preempt(Duration::from_secs(1))
    };
    let low_args = preempting(0);
    let high_args = preempting(10);
    let low = s
        .spawn(
            "low",
            Opts {
                exec: true,
                own: low_args,
                ..Opts::default()
            },
        )
        .await;
    assert_eq!(s.run.sole_leader(SLACK).await, low);
    s.ticking(low).await;
    let high = s
        .spawn(
            "high",
            Opts {
                exec: true,
                own: high_args,
                ..Opts::default()
            },
        )
        .await;
    let run = &s.run;
    comes_to_lead(run, high).await;
    ended_for(run, low, "preempted").await;
    assert_handed_over(run, low, high);
    s.ticking(high).await;

    // The lower node, though it preempts too, never asks back.
    let term_then = run.term(high).await;
    keeps_leading_for(run, high, term_then, Duration::from_secs(3)).await;
    s.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_hand_over_wins_over_preemption() {
    let mut s = Steered::new("v3", 6).await;
    let high_args = NodeArgs::new().priority(10).preempt(Duration::from_secs(2));
    let high = s
        .spawn(
            "high",
            Opts {
                own: high_args,
                ..Opts::default()
            },
        )
        .await;
    assert_eq!(s.run.sole_leader(SLACK).await, high);
    let low = s.spawn("low", Opts::default()).await;
    s.queued(low).await;
    let run = &s.run;

    let (code, body) = admin(run, high, "/v1/resign?to=low").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(run.sole_leader(SLACK).await, low);
    ended_for(run, high, "transfer").await;
    let (_, handed) = run.last_acquired(low).expect("low acquired");

    // The preempter waits its --preempt-after again from the transfer.
    comes_to_lead(run, high).await;
    ended_for(run, low, "preempted").await;
    assert_handed_over(run, low, high);
    let (_, back) = run.last_acquired(high).expect("high acquired again");
    let waited = Duration::from_nanos(back.saturating_sub(handed));
    assert!(
        waited >= Duration::from_millis(1950),
        "preempted {waited:?} after an explicit hand-over"
    );
    s.assert_safe();
}
