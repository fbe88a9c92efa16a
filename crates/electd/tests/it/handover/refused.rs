//! A record that arrives unasked, at a node that cannot lead with it:
//! shutting down, turned unhealthy, in its resign cooldown, or at or below
//! its floor (`handover::refused::*`).

use super::*;

/// How long the refusing successor's requests take to reach etcd: what it
/// writes after it began to refuse (its revoke, its key rewritten) lands
/// this long after, and the record handed to it meanwhile lives until then.
/// Well under the TTL, and short enough that its watch's progress answers
/// come back within a third of the TTL.
const HELD: Duration = Duration::from_millis(700);

/// The state a successor is in when the record reaches it.
#[derive(Clone, Copy, Debug)]
enum Refusing {
    /// Shutting down (SIGTERM received, its release on its way).
    ShuttingDown,
    /// Unhealthy (its verdict taken, its key not rewritten yet).
    TurnedUnhealthy,
    /// In its resign cooldown.
    CoolingDown,
}

/// A record that arrives unasked, at a node that cannot lead with it.
/// Shutting down, or turned unhealthy: n1's requests are held on the way
/// to etcd (`HELD`), n1 begins to shut down (SIGTERM) or takes an
/// unhealthy verdict (its log says so), and n0 resigns meanwhile: n0's
/// reading still shows n1's key queued and eligible, so n0 hands it the
/// record in one write. n1 never leads with it: a shutting-down node gave
/// its claim up before the record arrived, and its revoke deletes the
/// record with its key; an ineligible one gives the record up (a revoke)
/// as soon as it sees it, saying why. Either way the third leads, long
/// before n1's lease would run out (an unhealthy n1 keeps renewing it: a
/// record it kept would never expire). In its resign cooldown (n0 resigned,
/// its lease revoked) a node holds no key: no record can be bound to it,
/// and the next hand-over passes it by, in one write.
async fn a_node_that_cannot_lead_refuses_the_record(state: Refusing) {
    let run = Run::faulty(Etcd::single().await, "v3", TTL, 0).await;
    let mut s = Steered::with_run(run);
    let switch = HealthSwitch::start(true);
    let cooling = NodeArgs::new().resign_cooldown(Duration::from_secs(600));
    s.line_up([
        Opts {
            own: cooling,
            ..Opts::default()
        },
        Opts {
            health: Some(&switch),
            ..Opts::default()
        },
        Opts::default(),
    ])
    .await;
    let order = settled(&s.run, &[0, 1, 2], 3).await;
    assert_eq!(order, ["n0", "n1", "n2"]);
    let run = &s.run;
    let etcd = &run.etcd;
    match state {
        Refusing::ShuttingDown | Refusing::TurnedUnhealthy => {
            for proxy in run.link(1) {
                proxy.set(
                    Direction::Upstream,
                    Fault::Delay {
                        fixed: HELD,
                        jitter: Duration::ZERO,
                    },
                );
            }
            let before = etcd.v3_revision().await;
            let begun = match state {
                Refusing::ShuttingDown => {
                    run.nodes[1].terminate();
                    "shutting down"
                }
                _ => {
                    switch.set_healthy(false);
                    "unhealthy: the health check failed"
                }
            };
            eventually(SLACK, "n1 to begin refusing", || async {
                run.nodes[1].output().contains(begun).then_some(())
            })
            .await;
            let handed_at = harness::now_ns();
            let (code, body) = admin(run, 0, "/v1/resign").await;
            assert_eq!(code, 200, "{body}");
            let handed = etcd.v3_get(RECORD, Some(before + 1)).await;
            assert!(
                handed
                    .as_ref()
                    .is_some_and(|r| r.value.contains("\"id\":\"n1\"")),
                "{state:?}: not handed to n1 in one write: {handed:?}"
            );
            assert_eq!(run.sole_leader_among(&[0, 2], SLACK).await, 2);
            let took = run.took(2, handed_at);
            eprintln!("{state:?}: n2 led {took:?} after the record was handed to n1");
            assert!(
                took < run.ttl(),
                "{state:?}: n2 led {took:?} after the hand-over to n1"
            );
            let (term, _) = run.last_acquired(2).expect("n2 acquired");
            assert!(term > before + 2, "term {term}");
            if let Refusing::ShuttingDown = state {
                // n1's revoke deleted the record with its key, the write
                // after the hand-over; n2 then took the record itself.
                assert_eq!(etcd.v3_get(RECORD, Some(before + 2)).await, None);
                let status = s.run.nodes[1].wait_exit(SLACK).await;
                assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
            } else {
                let output = run.nodes[1].output();
                assert!(
                    output.contains("is ours but this candidate is not eligible"),
                    "{output}"
                );
            }
            assert!(s.run.last_acquired(1).is_none(), "{state:?}: n1 led");
        }
        Refusing::CoolingDown => {
            let key = candidate_key(etcd, "n0").await;
            let key = etcd.v3_get(&key, None).await.expect("n0's key");
            let (first, _) = run.last_acquired(0).expect("n0 acquired");
            let before = etcd.v3_revision().await;
            let (code, body) = admin(run, 0, "/v1/resign").await;
            assert_eq!(code, 200, "{body}");
            assert_eq!(run.sole_leader_among(&[0, 1, 2], SLACK).await, 1);
            assert_term(run, 1, before, 1).await;
            // Cooling down: nothing of n0's queued, its lease gone.
            let queued = queued_in_etcd(etcd).await;
            assert!(queued.iter().all(|(id, _, _)| id != "n0"), "{queued:?}");
            assert!(
                !etcd
                    .v3_put_with_lease(RECORD, &key.as_record(), key.lease)
                    .await,
                "a record bound to the lease n0 resigned"
            );
            assert_eq!(settled(run, &[0, 1, 2], 2).await, ["n1", "n2"]);
            let before = etcd.v3_revision().await;
            let (code, body) = admin(run, 1, "/v1/resign").await;
            assert_eq!(code, 200, "{body}");
            assert_eq!(run.sole_leader_among(&[0, 1, 2], SLACK).await, 2);
            assert_term(run, 2, before, 1).await;
            let (last, _) = run.last_acquired(0).expect("n0 acquired");
            assert_eq!(last, first, "n0 led again in its cooldown");
        }
    }
    s.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_a_node_shutting_down() {
    a_node_that_cannot_lead_refuses_the_record(Refusing::ShuttingDown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_a_node_turned_unhealthy() {
    a_node_that_cannot_lead_refuses_the_record(Refusing::TurnedUnhealthy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_a_node_in_its_resign_cooldown() {
    a_node_that_cannot_lead_refuses_the_record(Refusing::CoolingDown).await;
}

/// etcd wiped: every node's floor is above every revision of the new
/// store. A record handed to n1 there (written as a hand-over writes
/// it, bound to n1's new lease) carries a term at or below n1's floor:
/// n1 never leads with it, gives it up at once (a revoke) and says why;
/// once etcd's revision has passed the floor, a leader emerges with a
/// larger term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_a_node_whose_floor_it_is_not_above() {
    let mut s = Steered::new("v3", TTL).await;
    s.line_up((0..2).map(|_| Opts::default())).await;
    settled(&s.run, &[0, 1], 2).await;
    let seen = crate::history::move_history_on(&s.run).await;
    let old_term = s.run.term(0).await;
    s.run.etcd.wipe().await;
    let wiped_at = harness::now_ns();
    let run = &s.run;
    let etcd = &run.etcd;
    let floor = eventually(SLACK, "n1 to see the regression", || async {
        let status = run.nodes[1].status().await?;
        (status["obstacle"]["kind"] == "regressed").then_some(())?;
        status["floor"].as_u64()
    })
    .await;
    assert!(floor >= seen, "floor {floor} below {seen}");
    let key = eventually(SLACK, "n1 to queue on the new store", || async {
        for key in etcd.v3_keys(QUEUE).await {
            let stored = etcd.v3_get(&key, None).await?;
            if stored.value.contains("\"id\":\"n1\"") {
                return Some(stored);
            }
        }
        None
    })
    .await;
    let before = etcd.v3_revision().await;
    assert!(
        etcd.v3_put_with_lease(RECORD, &key.as_record(), key.lease)
            .await
    );
    let put_at = Instant::now();
    eventually(SLACK, "n1 to give the record up", || async {
        etcd.v3_get(RECORD, None).await.is_none().then_some(())
    })
    .await;
    let held = put_at.elapsed();
    // It may be gone before it could be read: its term from history.
    let mut term = None;
    for revision in before + 1..=etcd.v3_revision().await {
        if let Some(record) = etcd.v3_get(RECORD, Some(revision)).await {
            term = Some(record.mod_revision);
            break;
        }
    }
    let term = term.expect("the record in etcd's history");
    assert!(term <= floor, "term {term}, floor {floor}");
    eprintln!("n1 gave up the record at term {term} (floor {floor}) within {held:?}");
    assert!(held < run.ttl() / 2, "held {held:?}: not given up");
    assert!(
        run.nodes[1]
            .output()
            .contains("is ours but its term is at or below the floor: giving it up"),
        "{}",
        run.nodes[1].output()
    );
    crate::history::recovers_past(run, seen, old_term).await;
    for i in 0..2 {
        let low: Vec<_> = run
            .journal(i)
            .into_iter()
            .filter(|r| r["event"] == "acquired" && r["t_ns"].as_u64() > Some(wiped_at))
            .filter(|r| r["term"].as_u64().is_none_or(|t| t <= floor))
            .collect();
        assert!(low.is_empty(), "n{i} led at or below the floor: {low:?}");
    }
    s.assert_safe();
}
