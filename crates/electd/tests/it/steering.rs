//! Steering who leads, against a real etcd with real processes: health
//! verdicts, drain, hand-over to a named node, priorities and preemption.
//! Every scenario ends with the journal checker, and where nodes run
//! `--exec`, with the commands' own records: no two at once.

use std::path::PathBuf;
use std::time::Duration;

use harness::app::HealthSwitch;
use harness::eventually;
use harness::node::NodeArgs;
use reqwest::Method;
use serde_json::Value;

use crate::common::{Run, SLACK};

const TOKEN: &str = "t0ken-for-steering";

/// What a node of these tests runs with, beyond the run's own flags.
#[derive(Default)]
struct Opts<'a> {
    /// Its app's health endpoint, checked every 100 ms.
    health: Option<&'a HealthSwitch>,
    /// Whether it runs the ticker under `--exec`.
    exec: bool,
    /// Its other flags.
    own: NodeArgs,
}

/// A run whose nodes may run the ticker: where each one's ticks go.
struct Steered {
    run: Run,
    ticks: Vec<(String, PathBuf)>,
    script: PathBuf,
}

impl Steered {
    async fn new(api: &'static str, ttl: u64) -> Steered {
        let run = Run::new(api, ttl, 0).await;
        let script = harness::ticks::write_ticker(run.dir.path());
        Steered {
            run,
            ticks: Vec::new(),
            script,
        }
    }

    /// Starts node `name` with the admin token; waits until it serves.
    async fn spawn(&mut self, name: &str, opts: Opts<'_>) -> usize {
        let mut args = opts.own;
        if let Some(health) = opts.health {
            args = args
                .health_url(health.url())
                .health_interval(Duration::from_millis(100))
                .health_timeout(Duration::from_millis(500))
                .health_failures(2);
        }
        if opts.exec {
            let file = self.run.dir.path().join(format!("{name}.ticks"));
            let script = self.script.display().to_string();
            args = args.exec(["sh".to_owned(), script, file.display().to_string()]);
            self.ticks.push((name.to_owned(), file));
        }
        let i = self
            .run
            .spawn_with_env(name, args, &[("ELECTD_ADMIN_TOKEN", TOKEN)]);
        self.run.nodes[i].wait_serving().await;
        i
    }

    /// Waits until node `i` is queued, as every node's status lists it.
    async fn queued(&self, i: usize) {
        let name = self.run.nodes[i].name.clone();
        let what = format!("{name} to be listed as a candidate");
        eventually(SLACK, &what, || async {
            let status = self.run.nodes[i].status().await?;
            candidate(&status, &name).map(|_| ())
        })
        .await;
    }

    /// The journal checker, and no two commands at once.
    fn assert_safe(&self) {
        self.run.assert_safe();
        let ticks = harness::ticks::read(&self.ticks, harness::ticks::realtime_offset());
        assert!(
            ticks.overlaps().is_empty(),
            "commands ran at once: {:?}",
            ticks.overlaps()
        );
    }

    /// Waits until node `i`'s command ticks in its current term.
    async fn ticking(&self, i: usize) {
        let term = self.run.term(i).await;
        let (_, file) = self
            .ticks
            .iter()
            .find(|(name, _)| *name == self.run.nodes[i].name)
            .expect("a node with --exec");
        let what = format!(
            "{}'s command to tick in term {term}",
            self.run.nodes[i].name
        );
        eventually(SLACK, &what, || async {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            text.contains(&format!("tick {term} ")).then_some(())
        })
        .await;
    }
}

/// POSTs to an admin endpoint with the token; the status and the JSON body.
async fn admin(run: &Run, i: usize, path: &str) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let answer = run.nodes[i]
        .request(Method::POST, path, &[("Authorization", &auth)])
        .await
        .unwrap_or_else(|| panic!("{} answers {path}", run.nodes[i].name));
    let body = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", answer.body));
    (answer.status, body)
}

async fn status(run: &Run, i: usize) -> Value {
    run.nodes[i].status().await.expect("a status")
}

/// The entry of `candidates` with this id.
fn candidate<'a>(status: &'a Value, id: &str) -> Option<&'a Value> {
    status["candidates"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == id)
}

/// The `reason` of node `i`'s last `ended`.
fn last_end(run: &Run, i: usize) -> Option<(String, u64)> {
    run.journal(i)
        .into_iter()
        .rfind(|r| r["event"] == "ended")
        .map(|r| {
            (
                r["reason"].as_str().unwrap_or_default().to_owned(),
                r["t_ns"].as_u64().unwrap_or_default(),
            )
        })
}

/// Waits until node `i` journals an end with `reason`; when it was.
async fn ended_for(run: &Run, i: usize, reason: &str) -> u64 {
    let what = format!("{} to journal its end, {reason}", run.nodes[i].name);
    eventually(SLACK, &what, || async {
        last_end(run, i).and_then(|(why, at)| (why == reason).then_some(at))
    })
    .await
}

/// The gap from node `from`'s last end to node `to`'s last acquisition.
fn gap(run: &Run, from: usize, to: usize) -> Duration {
    let (_, ended) = last_end(run, from).expect("an end");
    let (_, acquired) = run.last_acquired(to).expect("an acquisition");
    Duration::from_nanos(acquired.saturating_sub(ended))
}

/// Holds for `span` (polled every 100 ms) that none of `among` says it
/// leads and each answers 503 at `/health/leader`; `/healthz` stays 200.
async fn nobody_leads_for(run: &Run, among: &[usize], span: Duration) {
    let until = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < until {
        for &i in among {
            let node = &run.nodes[i];
            let leader = node.get("/health/leader").await.expect("an answer");
            assert_eq!(leader.status, 503, "{} leads: {}", node.name, leader.body);
            let healthz = node.get("/healthz").await.expect("an answer");
            assert_eq!(healthz.status, 200, "{}: {}", node.name, healthz.body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Holds for `span` that node `i` leads at `term`, without a change.
async fn keeps_leading_for(run: &Run, i: usize, term_then: u64, span: Duration) {
    let until = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < until {
        assert!(
            run.nodes[i].is_leader().await,
            "{} stopped leading",
            run.nodes[i].name
        );
        assert_eq!(run.term(i).await, term_then, "the term changed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until node `i` leads and every other node names it.
async fn comes_to_lead(run: &Run, i: usize) {
    run.sole_leader_among(&[i], SLACK).await;
    assert_eq!(run.sole_leader(SLACK).await, i);
}

/// A hand-over, not an expiry: well under the TTL.
fn assert_handed_over(run: &Run, from: usize, to: usize) {
    let gap = gap(run, from, to);
    assert!(
        gap < run.ttl() / 2,
        "{} took over {gap:?} after {} ended: not a hand-over",
        run.nodes[to].name,
        run.nodes[from].name
    );
}

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

mod v3_only {
    use super::*;

    /// Nodes `n0`… started in order, each queued before the next starts:
    /// the succession order is their order.
    async fn in_line(s: &mut Steered, n: usize, exec: bool) {
        for i in 0..n {
            let opts = Opts {
                exec,
                ..Opts::default()
            };
            let at = s.spawn(&format!("n{i}"), opts).await;
            s.queued(at).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_named_hand_over_goes_to_that_node_and_no_other() {
        let mut s = Steered::new("v3", 4).await;
        in_line(&mut s, 4, true).await;
        let run = &s.run;
        assert_eq!(run.sole_leader(SLACK).await, 0);
        s.ticking(0).await;
        let order: Vec<String> = status(run, 0).await["candidates"]
            .as_array()
            .expect("candidates")
            .iter()
            .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(order, ["n0", "n1", "n2", "n3"]);
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
    /// come while it queues again, and must reach etcd all the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_undrain_while_queueing_again_is_seen_by_all() {
        let mut s = Steered::new("v3", 4).await;
        in_line(&mut s, 2, false).await;
        let run = &s.run;
        for round in 0..8 {
            let leader = run.sole_leader(SLACK).await;
            let (drained, undrained) = tokio::join!(admin(run, leader, "/v1/drain"), async {
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
}

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
