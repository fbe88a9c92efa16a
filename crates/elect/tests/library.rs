//! The library API against a real etcd: campaign, fencing term, resign,
//! guards, observers, the example program, the cost of a hand-over as the
//! number of candidates grows, and a dead candidate's claims released from
//! outside it.

use std::process::Stdio;
use std::time::Duration;

use std::sync::{Arc, Mutex};

use elect::{Api, Claim, Election, Releaser, Role};
use harness::etcd::Etcd;
use harness::eventually;
use tokio::io::{AsyncBufReadExt, BufReader};

mod common;

use common::{LIMIT, config};

async fn campaign_resign_and_observe(api: Api) {
    let etcd = Etcd::single().await;
    let a = Election::start(config(&etcd, api, "a").build().unwrap()).unwrap();
    let b = Election::start(config(&etcd, api, "b").build().unwrap()).unwrap();
    let watcher = Election::start(config(&etcd, api, "w").observer(true).build().unwrap()).unwrap();
    assert!(matches!(
        watcher.campaign().await,
        Err(elect::Error::Observer)
    ));
    let mut observed = watcher.observe();

    let first = tokio::time::timeout(LIMIT, a.campaign())
        .await
        .unwrap()
        .unwrap();
    assert!(first.is_valid());
    let first_term = first.term();
    let seen = loop {
        if let Some(leader) = observed.changed().await.unwrap() {
            break leader;
        }
    };
    assert_eq!(seen.id.as_deref(), Some("a"));
    assert_eq!(seen.term, first.term());
    assert_eq!(watcher.status().role(), Role::Observer);

    let b_campaign = tokio::spawn(async move {
        let leadership = b.campaign().await.unwrap();
        (b, leadership)
    });
    // b waits in the queue behind a (v3), or watches the key (v2); a must
    // see b too, or its resign has nobody to hand the record to.
    let queued = if api == Api::V3 { 2 } else { 1 };
    eventually(LIMIT, "b to follow a", || async {
        let seen = watcher.candidates().await.ok()?.len() == queued
            && a.candidates().await.ok()?.len() == queued;
        seen.then_some(())
    })
    .await;
    first.resign().await.unwrap();
    let (b, second) = tokio::time::timeout(LIMIT, b_campaign)
        .await
        .unwrap()
        .unwrap();
    assert!(second.term() > seen.term, "fencing tokens grow");
    let seen = loop {
        if let Some(leader) = observed.changed().await.unwrap()
            && leader.id.as_deref() == Some("b")
        {
            break leader;
        }
    };
    assert_eq!(seen.term, second.term());

    // The history: b now, and a's leadership, resigned to b.
    match api {
        Api::V2 => assert!(matches!(
            watcher.history(10).await,
            Err(elect::Error::NeedsV3 { .. })
        )),
        _ => {
            let history = watcher.history(10).await.expect("the history");
            let terms: Vec<u64> = history.entries.iter().map(|e| e.term).collect();
            assert_eq!(terms, [second.term(), first_term], "{history:?}");
            assert_eq!(history.entries[0].id, "b");
            assert_eq!(history.entries[0].ended, None);
            let ended = history.entries[1].ended.as_ref().expect("a's end");
            assert_eq!(
                ended.ending,
                elect::Ending::Holder(elect::journal::EndReason::Resign)
            );
            assert_eq!(ended.to.as_deref(), Some("b"));
            assert!(history.entries[1].acquired_at <= ended.at);
            let newest = watcher.history(1).await.expect("the history").entries;
            assert_eq!(newest, history.entries[..1]);
        }
    }

    // Dropping a valid guard releases in the background.
    drop(second);
    eventually(LIMIT, "the dropped leadership to end", || async {
        (b.status().role() != Role::Leader).then_some(())
    })
    .await;
    for e in [a, b, watcher] {
        e.shutdown().await;
    }
}

/// Leads on a runtime of its own, which then stops without a word (as a
/// killed process would: no resign, no release); returns the term and the
/// claims it told.
fn lead_then_vanish(config: elect::ConfigBuilder) -> (u64, Vec<Claim>) {
    let told = Arc::new(Mutex::new(Vec::new()));
    let hook = told.clone();
    let config = config
        .on_claim(move |claim| hook.lock().unwrap().push(claim.clone()))
        .build()
        .unwrap();
    let term = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let term = runtime.block_on(async {
            let election = Election::start(config).unwrap();
            let leadership = tokio::time::timeout(LIMIT, election.campaign())
                .await
                .unwrap()
                .unwrap();
            let term = leadership.term();
            // Never dropped, so never released.
            std::mem::forget(leadership);
            std::mem::forget(election);
            term
        });
        runtime.shutdown_background();
        term
    })
    .join()
    .unwrap();
    let told = told.lock().unwrap().clone();
    (term, told)
}

/// The v2 election key's value, if any.
async fn v2_value(etcd: &Etcd) -> Option<String> {
    let url = format!("{}/v2/keys/lib", etcd.endpoint(0));
    let answer = harness::http().build().ok()?.get(url).send().await.ok()?;
    let body: serde_json::Value = answer.json().await.ok()?;
    body["node"]["value"].as_str().map(str::to_owned)
}

async fn a_dead_candidates_claims_are_released_from_outside(api: Api) {
    let etcd = Etcd::single().await;
    let ttl = Duration::from_secs(20);
    let (dead_term, told) = lead_then_vanish(config(&etcd, api, "a").ttl(ttl));
    // Told before it was made: the claim in etcd is the one told.
    match (api, told.as_slice()) {
        (Api::V3, [Claim::Lease(lease)]) => {
            let keys = etcd.v3_keys("/electd/lib/").await;
            let name = format!("{lease:x}");
            assert!(
                keys.iter().any(|k| k.ends_with(&name)),
                "{keys:?} lacks {name}"
            );
        }
        (Api::V2, [Claim::Value(value), ..]) => {
            assert_eq!(v2_value(&etcd).await.as_ref(), Some(value));
        }
        other => panic!("told {other:?}"),
    }

    let b = Election::start(config(&etcd, api, "b").ttl(ttl).build().unwrap()).unwrap();
    let waiting = tokio::spawn(async move {
        let leadership = b.campaign().await.unwrap();
        (b, leadership)
    });
    let releaser =
        Releaser::new(&config(&etcd, api, "guardian").ttl(ttl).build().unwrap()).unwrap();
    releaser.connect().await.unwrap();
    let released = std::time::Instant::now();
    for claim in &told {
        releaser.release(claim).await.unwrap();
    }
    let (b, second) = tokio::time::timeout(LIMIT, waiting).await.unwrap().unwrap();
    let took = released.elapsed();
    assert!(
        took < ttl / 4,
        "b led {took:?} after the release: not a release"
    );
    assert!(second.term() > dead_term);

    // Released again, or a claim nobody holds: nothing of b's is touched.
    for claim in told.iter().cloned().chain([match api {
        Api::V3 => Claim::Lease(0x7e57),
        _ => Claim::Value("not anyone's".to_owned()),
    }]) {
        releaser.release(&claim).await.unwrap();
    }
    let other = match api {
        Api::V3 => Claim::Value("x".to_owned()),
        _ => Claim::Lease(1),
    };
    assert!(matches!(
        releaser.release(&other).await,
        Err(elect::Error::OtherApi(_))
    ));
    // Each release has applied when it returns: b's claim is still there.
    match api {
        Api::V3 => {
            let keys = etcd.v3_keys("/electd/lib/").await;
            assert!(keys.iter().any(|k| k.ends_with("~leader")), "{keys:?}");
        }
        _ => assert!(v2_value(&etcd).await.is_some_and(|v| v.contains("\"b\""))),
    }
    assert!(second.is_valid(), "b lost its leadership to a release");
    second.resign().await.unwrap();
    b.shutdown().await;
}

/// v3: a dead leader's record is handed to the next in line in one write
/// (the successor's term is the revision before it plus one), without a
/// revoke: its lease lives on, as when electd handed over and died before
/// revoking. A second hand-on (its guardian's) then finds the record bound
/// to the successor and leaves it alone, and releasing the dead claims
/// touches nothing of the successor's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_a_record_handed_on_is_left_alone_by_a_second_hand_on() {
    let etcd = Etcd::single().await;
    let ttl = Duration::from_secs(20);
    let (dead_term, told) = lead_then_vanish(config(&etcd, Api::V3, "a").ttl(ttl));
    let [Claim::Lease(dead_lease)] = told.as_slice() else {
        panic!("told {told:?}");
    };
    let b = Election::start(config(&etcd, Api::V3, "b").ttl(ttl).build().unwrap()).unwrap();
    let mut follows = b.observe();
    let waiting = tokio::spawn(async move {
        let leadership = b.campaign().await.unwrap();
        (b, leadership)
    });
    eventually(LIMIT, "b queued behind a", || async {
        (etcd.v3_keys("/electd/lib/~c/").await.len() == 2).then_some(())
    })
    .await;
    // Behind b: whom a second hand-on would wrongly give b's record to.
    let c =
        Arc::new(Election::start(config(&etcd, Api::V3, "c").ttl(ttl).build().unwrap()).unwrap());
    let c_campaign = tokio::spawn({
        let c = c.clone();
        async move { c.campaign().await.map(|l| l.term()) }
    });
    eventually(LIMIT, "c queued behind b", || async {
        (etcd.v3_keys("/electd/lib/~c/").await.len() == 3).then_some(())
    })
    .await;
    tokio::time::timeout(LIMIT, async {
        while follows
            .changed()
            .await
            .unwrap()
            .is_none_or(|l| l.term != dead_term)
        {}
    })
    .await
    .expect("b to follow a");
    let releaser =
        Releaser::new(&config(&etcd, Api::V3, "guardian").ttl(ttl).build().unwrap()).unwrap();
    releaser.connect().await.unwrap();
    let before = etcd.v3_revision().await;
    assert!(releaser.hand_on(&told).await.unwrap(), "not handed on");
    let (b, second) = tokio::time::timeout(LIMIT, waiting).await.unwrap().unwrap();
    assert_eq!(second.term(), before + 1, "not one write");
    let record = etcd.v3_get("/electd/lib/~leader", None).await.unwrap();
    assert_eq!(record.mod_revision, second.term());
    // Nothing revoked the dead lease: it holds no key, and lives.
    let lease = format!("{dead_lease:x}");
    let left = etcd.etcdctl("v3", &["lease", "timetolive", &lease]);
    assert!(left.contains("remaining"), "{left}");
    assert!(
        !etcd
            .v3_keys("/electd/lib/")
            .await
            .iter()
            .any(|k| k.ends_with(&lease))
    );

    assert!(!releaser.hand_on(&told).await.unwrap(), "handed on twice");
    for claim in &told {
        releaser.release(claim).await.unwrap();
    }
    assert_eq!(etcd.v3_get("/electd/lib/~leader", None).await, Some(record));
    assert!(second.is_valid(), "b lost its leadership to a hand-on");
    assert!(!c_campaign.is_finished(), "c led");
    second.resign().await.unwrap();
    b.shutdown().await;
    c_campaign.abort();
    let _ = c_campaign.await;
    if let Ok(c) = Arc::try_unwrap(c) {
        c.shutdown().await;
    }
}

/// The ids `election` lists as candidates, leader first, from its own mirror.
async fn listed(election: &Election) -> Option<Vec<String>> {
    let candidates = election.candidates().await.ok()?;
    Some(candidates.into_iter().filter_map(|c| c.id).collect())
}

/// v3: a candidate that abandons the election before it ever led has no
/// work to wait out, so its claim is released at once, as by a shutdown:
/// left queued (and eligible) until its lease ran out, it would be handed
/// the record on the next hand-over, and nobody could lead until then. A
/// record cannot be bound to its lease any more; the leader's resign hands
/// the record to the next eligible candidate in one write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_a_candidate_that_abandons_is_never_handed_the_record() {
    let etcd = Etcd::single().await;
    // Far longer than the test's bounds: waiting for a lease to run out
    // shows as a timeout.
    let ttl = Duration::from_secs(30);
    let start = |id: &str| {
        Arc::new(Election::start(config(&etcd, Api::V3, id).ttl(ttl).build().unwrap()).unwrap())
    };
    let (a, b, c) = (start("a"), start("b"), start("c"));
    let first = tokio::time::timeout(LIMIT, a.campaign())
        .await
        .unwrap()
        .unwrap();
    let campaign = |e: &Arc<Election>| {
        let e = e.clone();
        tokio::spawn(async move { e.campaign().await.map(|l| l.term()) })
    };
    let b_campaign = campaign(&b);
    eventually(LIMIT, "b queued behind a", || async {
        (listed(&a).await? == ["a", "b"]).then_some(())
    })
    .await;
    let c_campaign = campaign(&c);
    eventually(LIMIT, "c queued behind b", || async {
        (listed(&a).await? == ["a", "b", "c"]).then_some(())
    })
    .await;
    let mut b_key = None;
    for key in etcd.v3_keys("/electd/lib/~c/").await {
        let stored = etcd.v3_get(&key, None).await.unwrap();
        if stored.value.contains("\"id\":\"b\"") {
            b_key = Some(stored);
        }
    }
    let b_key = b_key.expect("b's candidate key");

    b.abandon().await;
    assert!(b_campaign.await.unwrap().is_err(), "b's campaign led");
    // Its lease is gone: no record can be bound to it, by hand or by a
    // hand-over.
    assert!(
        !etcd
            .v3_put_with_lease("/electd/lib/~leader", &b_key.as_record(), b_key.lease)
            .await,
        "a record bound to the lease b abandoned"
    );
    eventually(LIMIT, "a to see b gone", || async {
        (listed(&a).await? == ["a", "c"]).then_some(())
    })
    .await;
    let before = etcd.v3_revision().await;
    let resigned = std::time::Instant::now();
    first.resign().await.unwrap();
    let term = tokio::time::timeout(LIMIT, c_campaign)
        .await
        .expect("c to lead long before the lease b abandoned would run out")
        .unwrap()
        .unwrap();
    eprintln!("c led {:?} after a resigned", resigned.elapsed());
    assert_eq!(term, before + 1, "not handed to c in one write");
    // (c's guard is dropped by now: the record as c's term wrote it.)
    let handed = etcd
        .v3_get("/electd/lib/~leader", Some(term))
        .await
        .unwrap();
    assert!(handed.value.contains("\"id\":\"c\""), "{handed:?}");
    assert_ne!(b.status().role(), Role::Leader);
    c.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_a_dead_candidates_claims_are_released_from_outside() {
    a_dead_candidates_claims_are_released_from_outside(Api::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_a_dead_candidates_claims_are_released_from_outside() {
    a_dead_candidates_claims_are_released_from_outside(Api::V3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_campaign_resign_and_observe() {
    campaign_resign_and_observe(Api::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_campaign_resign_and_observe() {
    campaign_resign_and_observe(Api::V3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_program_embeds_an_election() {
    let etcd = Etcd::single().await;
    let spawn = |id: &str| {
        tokio::process::Command::new(harness::workspace_example("elect", "worker"))
            .args([etcd.endpoint(0).as_str(), "ex", id])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the example worker starts")
    };
    let mut one = spawn("one");
    let mut lines = BufReader::new(one.stdout.take().unwrap()).lines();
    let leading = tokio::time::timeout(LIMIT, async {
        loop {
            let line = lines.next_line().await.unwrap().unwrap();
            if line.starts_with("one leading term=") {
                break line;
            }
        }
    })
    .await
    .unwrap();
    let term: u64 = leading.rsplit('=').next().unwrap().parse().unwrap();

    let mut two = spawn("two");
    let mut two_lines = BufReader::new(two.stdout.take().unwrap()).lines();
    let pid = rustix::process::Pid::from_raw(one.id().unwrap() as i32).unwrap();
    // Wait until two is queued (it reports the leader), then hand over.
    tokio::time::timeout(LIMIT, async {
        loop {
            let line = two_lines.next_line().await.unwrap().unwrap();
            if line.contains("leader is Some(\"one\")") {
                break;
            }
        }
    })
    .await
    .unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = tokio::time::timeout(LIMIT, one.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let next = tokio::time::timeout(LIMIT, async {
        loop {
            let line = two_lines.next_line().await.unwrap().unwrap();
            if line.starts_with("two leading term=") {
                break line;
            }
        }
    })
    .await
    .unwrap();
    let next_term: u64 = next.rsplit('=').next().unwrap().parse().unwrap();
    assert!(next_term > term);
    let _ = two.kill().await;
}

/// How the leader hands over in a cost measurement.
#[derive(Clone, Copy, Debug)]
enum HandOver {
    /// `resign`: to the next in line.
    Resign,
    /// `transfer_to` the candidate last in line.
    ToLast,
}

/// What one hand-over cost etcd.
struct Cost {
    /// Raft proposals committed.
    proposals: f64,
    /// Events sent to watchers: how many wake-ups a hand-over causes.
    events: f64,
    /// Watch streams opened: each follows a read of the whole queue.
    watches: f64,
}

/// The events etcd has sent to watchers, once it sends no more (nothing
/// left of what came before in flight).
async fn quiet_events(etcd: &Etcd) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut last = etcd.events_sent(0).await.unwrap();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = etcd.events_sent(0).await.unwrap();
        if now == last {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "etcd still sends events after 30 s"
        );
        last = now;
    }
}

/// What one hand-over among `n` v3 candidates cost etcd, until every
/// candidate knows the new leader.
async fn cost_of_a_hand_over(n: usize, how: HandOver) -> Cost {
    let etcd = Etcd::single().await;
    let elections: Vec<Election> = (0..n)
        .map(|i| {
            // A long TTL: on a loaded machine a late keep-alive at TTL 2
            // would cost a lease, and a campaign's proposals with it.
            let config = config(&etcd, Api::V3, &format!("c{i}")).ttl(Duration::from_secs(10));
            Election::start(config.build().unwrap()).unwrap()
        })
        .collect();
    let first = elections[0].campaign().await.unwrap();
    let elections = std::sync::Arc::new(elections);
    // campaign() returns only on leadership: the others wait in tasks.
    let mut tasks = Vec::new();
    for i in 1..n {
        let elections = elections.clone();
        tasks.push(tokio::spawn(async move {
            elections[i].campaign().await.map(|l| (i, l))
        }));
    }
    eventually(
        Duration::from_secs(60),
        "every candidate queued and following",
        || async {
            let queued = etcd.v3_keys("/electd/lib/~c/").await.len() == n;
            let all_follow = elections[1..].iter().all(|e| {
                e.status()
                    .current_leader()
                    .is_some_and(|l| l.term == first.term())
            });
            // The leader's own view too: a hand-over is checked against it.
            let last = format!("c{}", n - 1);
            let known = elections[0].check_transfer(&last).is_ok();
            (queued && all_follow && known).then_some(())
        },
    )
    .await;
    let events_before = quiet_events(&etcd).await;
    let before = etcd.proposals_committed(0).await.unwrap();
    let watches_before = etcd.watches_started(0).await.unwrap();
    match how {
        HandOver::Resign => first.resign().await.unwrap(),
        HandOver::ToLast => {
            let last = format!("c{}", n - 1);
            let next = first
                .transfer_to(&last, LIMIT)
                .await
                .unwrap_or_else(|e| panic!("to {last}: {e:?}"));
            assert_eq!(next.id.as_deref(), Some(last.as_str()));
        }
    }
    let next = eventually(LIMIT, "the next candidate to lead", || async {
        tasks.iter().position(|t| t.is_finished())
    })
    .await;
    let (i, leadership) = tasks.remove(next).await.unwrap().unwrap();
    if let HandOver::ToLast = how {
        assert_eq!(i, n - 1, "the named candidate and no other leads");
    }
    eventually(
        Duration::from_secs(60),
        "every candidate to know the new leader",
        || async {
            elections[1..]
                .iter()
                .all(|e| {
                    e.status()
                        .current_leader()
                        .is_some_and(|l| l.term == leadership.term())
                })
                .then_some(())
        },
    )
    .await;
    let events_after = quiet_events(&etcd).await;
    let after = etcd.proposals_committed(0).await.unwrap();
    let watches_after = etcd.watches_started(0).await.unwrap();
    for e in elections.iter() {
        e.shutdown().await;
    }
    Cost {
        proposals: after - before,
        events: events_after - events_before,
        watches: watches_after - watches_before,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_costs_the_same_with_100_candidates_as_with_3() {
    const N: f64 = 100.0;
    for how in [HandOver::Resign, HandOver::ToLast] {
        let three = cost_of_a_hand_over(3, how).await;
        let hundred = cost_of_a_hand_over(100, how).await;
        let (p3, p100) = (three.proposals, hundred.proposals);
        eprintln!(
            "per hand-over ({how:?}): raft proposals 3 candidates {p3}, 100 candidates {p100}; \
             events sent to watchers 3 candidates {}, 100 candidates {}; \
             watches opened 3 candidates {}, 100 candidates {}",
            three.events, hundred.events, three.watches, hundred.watches
        );
        assert!((p3 - p100).abs() <= 1.0, "{how:?}: 3: {p3}, 100: {p100}");
        // A resign: the revoke and the successor's record. A transfer: the
        // transfer record, the revoke and the target's record, then the old
        // leader queues again (a lease and a key).
        let most = match how {
            HandOver::Resign => 2.0,
            HandOver::ToLast => 5.0,
        };
        assert!(p100 <= most, "{how:?}: {p100} proposals for one hand-over");
        // Only the next in line hear the revoke; everyone hears the new
        // record (and, for a transfer, the transfer record and the old
        // leader queueing again). Hearing the revoke too would be 3 and 6
        // events per candidate.
        let per_candidate = match how {
            HandOver::Resign => 1.5,
            HandOver::ToLast => 4.0,
        };
        assert!(
            hundred.events < per_candidate * N,
            "{how:?}: {} events sent to watchers for one hand-over among 100",
            hundred.events
        );
        // The queue sees the new record and, counting, that it missed
        // nothing else: it reads again (and watches anew) only when it moves
        // up to the two next in line.
        assert!(
            hundred.watches <= 10.0,
            "{how:?}: {} watches opened for one hand-over among 100",
            hundred.watches
        );
    }
}
