//! v3: a hand-over in one raft write. The departing leader (SIGTERM,
//! `POST /v1/resign`, `POST /v1/drain`, an unhealthy verdict, a
//! preemption), or the guardian of a killed electd, gives the record to its
//! successor in the transaction that ends its own leadership: the
//! successor's term is etcd's revision before the signal plus one, and the
//! quiet queue learns of it by a count, not a read. Where that cannot be
//! done safely (the successor gone or changed since it was read, a foreign
//! write to the record, no anchor, a node of the previous release queued),
//! the departing node releases as before and the successor takes the
//! record itself: a later term, never two leaders, nothing overwritten.
//! A record that reaches a node that cannot lead with it (shutting down,
//! turned unhealthy, in its resign cooldown, at or below its floor) is
//! refused: never led with, given up long before its lease would run out.
//! Real etcd, real electd processes; every test ends with the journal
//! checker, and with `--exec`, with the commands' own records.

use std::time::Duration;

use harness::app::HealthSwitch;
use harness::etcd::{Etcd, StoredKey};
use harness::eventually;
use harness::node::NodeArgs;
use harness::proxy::{Direction, Fault};
use serde_json::Value;
use tokio::time::Instant;

use crate::common::{Run, SLACK, requests};
use crate::foreign::etcdctl_elect_client;
use crate::steering::steered::{Opts, Steered, admin, comes_to_lead};

/// A hand-over takes milliseconds: anything near the TTL is an expiry.
const TTL: u64 = 4;

/// The leader record, the anchor and the queue of the default election.
const RECORD: &str = "/electd/leader/~leader";
const ANCHOR: &str = "/electd/leader/~anchor";
const QUEUE: &str = "/electd/leader/~c/";
const HISTORY: &str = "/electd/leader/~~history/";

/// What the departing leader logs (at debug) when its one write failed
/// because the keys changed since it read them.
const CHANGED: &str = "the keys changed since read: releasing instead";

/// The candidates queued in etcd: `(id, create_revision, eligible)`.
async fn queued_in_etcd(etcd: &Etcd) -> Vec<(String, u64, bool)> {
    let mut queued = Vec::new();
    for key in etcd.v3_keys(QUEUE).await {
        let Some(stored) = etcd.v3_get(&key, None).await else {
            continue;
        };
        let value: Value = serde_json::from_str(&stored.value).unwrap_or_default();
        let eligible = value["healthy"] != false && value["drained"] != true;
        let id = value["id"].as_str().unwrap_or_default().to_owned();
        queued.push((id, stored.create_revision, eligible));
    }
    queued
}

/// Whether node `i`'s succession order is that of the keys etcd holds now
/// (each candidate at the revision that queued it, the leader at the
/// record's): a status's order may be half a second old.
fn shows(status: &Value, record: &StoredKey, queued: &[(String, u64, bool)]) -> bool {
    let Some(candidates) = status["candidates"].as_array() else {
        return false;
    };
    candidates.len() == queued.len()
        && candidates.iter().enumerate().all(|(k, c)| {
            let id = c["id"].as_str().unwrap_or_default();
            let eligible = c["healthy"] != false && c["drained"] != true;
            let term = c["term"].as_u64();
            let current = if k == 0 {
                c["leads"] == true
                    && record.value.contains(&format!("\"id\":\"{id}\""))
                    && term == Some(record.mod_revision)
            } else {
                queued.iter().any(|(q, at, _)| q == id && term == Some(*at))
            };
            current && eligible
        })
}

/// Waits until `n` eligible candidates are queued in etcd under a leader,
/// and every node of `among` shows them in the same order: every
/// candidacy written, nothing left to write. That order, leader first.
async fn settled(run: &Run, among: &[usize], n: usize) -> Vec<String> {
    let what = format!(
        "{} nodes to show the same {n} eligible candidates",
        among.len()
    );
    eventually(SLACK, &what, || async {
        let record = run.etcd.v3_get(RECORD, None).await?;
        let queued = queued_in_etcd(&run.etcd).await;
        if queued.len() != n || queued.iter().any(|(_, _, eligible)| !eligible) {
            return None;
        }
        let mut seen: Option<Vec<String>> = None;
        for &i in among {
            let status = run.nodes[i].status().await?;
            let order: Vec<String> = status["candidates"]
                .as_array()?
                .iter()
                .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
                .collect();
            if !shows(&status, &record, &queued) || seen.as_ref().is_some_and(|s| *s != order) {
                return None;
            }
            seen = Some(order);
        }
        seen
    })
    .await
}

/// The node called `name`.
fn named(run: &Run, name: &str) -> usize {
    run.nodes
        .iter()
        .position(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node {name}"))
}

/// The term node `next` journalled last: etcd's revision `before` the
/// hand-over plus `writes`. History entries written in between are not
/// counted: a leader that released without a hand-over writes its entry
/// right after its revoke, off the successor's path, and under load it may
/// land before the successor's own write.
async fn assert_term(run: &Run, next: usize, before: u64, writes: u64) -> u64 {
    let (term, _) = run.last_acquired(next).expect("an acquisition");
    let mut entries = 0;
    for key in run.etcd.v3_keys(HISTORY).await {
        if let Some(entry) = run.etcd.v3_get(&key, None).await
            && (before + 1..term).contains(&entry.mod_revision)
        {
            entries += 1;
        }
    }
    assert_eq!(
        term,
        before + writes + entries,
        "{} acquired term {term} with etcd at revision {before} before the hand-over: \
         not {writes} write(s) and {entries} history entries",
        run.nodes[next].name
    );
    term
}

/// The candidate key (`~c/<lease>`) of the node with id `id`.
async fn candidate_key(etcd: &Etcd, id: &str) -> String {
    let of = format!("\"id\":\"{id}\"");
    for key in etcd.v3_keys(QUEUE).await {
        if etcd
            .v3_get(&key, None)
            .await
            .is_some_and(|k| k.value.contains(&of))
        {
            return key;
        }
    }
    panic!("no candidate key of {id}");
}

/// Waits until `key` in etcd shows a change (`shows`); the moment it was
/// last read without it: the change was written after.
async fn written_after(
    etcd: &Etcd,
    key: &str,
    shows: impl Fn(Option<&StoredKey>) -> bool,
) -> Instant {
    let unseen_at = std::cell::Cell::new(Instant::now());
    eventually(SLACK, "the change to show in etcd", || async {
        let at = Instant::now();
        if shows(etcd.v3_get(key, None).await.as_ref()) {
            return Some(());
        }
        unseen_at.set(at);
        None
    })
    .await;
    unseen_at.get()
}

/// How a leader goes.
#[derive(Clone, Copy, Debug)]
enum Departure {
    Resign,
    Drain,
    Unhealthy,
    Sigterm,
}

/// Node `leader` (of `among`, the nodes campaigning) departs as `how`; the
/// next in line leads in the write after etcd's revision before it, its
/// command starts. The successor.
async fn departs_in_one_write(
    s: &Steered,
    switches: &[HealthSwitch],
    among: &[usize],
    how: Departure,
) -> usize {
    let run = &s.run;
    let order = settled(run, among, among.len()).await;
    let leader = named(run, &order[0]);
    let before = run.etcd.v3_revision().await;
    match how {
        Departure::Resign | Departure::Drain => {
            let path = match how {
                Departure::Resign => "/v1/resign",
                _ => "/v1/drain",
            };
            let (code, body) = admin(run, leader, path).await;
            assert_eq!(code, 200, "{how:?}: {body}");
        }
        Departure::Unhealthy => switches[leader].set_healthy(false),
        Departure::Sigterm => run.nodes[leader].terminate(),
    }
    let others: Vec<usize> = among.iter().copied().filter(|&i| i != leader).collect();
    let next = run.sole_leader_among(&others, SLACK).await;
    assert_eq!(
        run.nodes[next].name, order[1],
        "{how:?}: not the next in line"
    );
    assert_term(run, next, before, 1).await;
    s.ticking(next).await;
    next
}

/// Each way a leader departs hands the record to the next in line in one
/// write, the successor's term being etcd's revision before the signal
/// plus one: a resign, a drain, an unhealthy verdict, a preemption, SIGTERM,
/// and `kill -9` of electd, whose guardian hands the record on once the
/// old command's group is gone. `?to=` keeps its transfer record (three
/// writes). With `--exec`, no two commands ever run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_hand_over_moves_the_record_in_one_write() {
    let mut s = Steered::new("v3", TTL).await;
    let switches: Vec<HealthSwitch> = (0..4).map(|_| HealthSwitch::start(true)).collect();
    // A resigned node stays out: queueing again is a write of its own.
    let own = NodeArgs::new().resign_cooldown(Duration::from_secs(600));
    let mut among = s
        .line_up(switches.iter().map(|switch| Opts {
            health: Some(switch),
            exec: true,
            own: own.clone(),
            ..Opts::default()
        }))
        .await;

    // n0 resigns (and stays out): n1 leads.
    let next = departs_in_one_write(&s, &switches, &among, Departure::Resign).await;
    among.retain(|&i| i != 0);
    assert_eq!(next, 1);
    // n1 is drained, queues again at the back; undrained, it is eligible.
    let next = departs_in_one_write(&s, &switches, &among, Departure::Drain).await;
    assert_eq!(next, 2);
    let (code, body) = admin(&s.run, 1, "/v1/undrain").await;
    assert_eq!(code, 200, "{body}");
    // n2 turns unhealthy, queues again; healthy again, it is eligible.
    let next = departs_in_one_write(&s, &switches, &among, Departure::Unhealthy).await;
    assert_eq!(next, 3);
    switches[2].set_healthy(true);

    // `?to=` keeps its transfer record, so that a target that does not
    // lead within TTL/4 can be withdrawn: three writes on its path (the
    // transfer, the leader's revoke, the target's record consuming the
    // transfer). n3 hands over to n2, last in line, and queues again.
    let order = settled(&s.run, &among, 3).await;
    assert_eq!(order, ["n3", "n1", "n2"]);
    let before = s.run.etcd.v3_revision().await;
    let (code, body) = admin(&s.run, 3, "/v1/resign?to=n2").await;
    assert_eq!(code, 200, "{body}");
    let run = &s.run;
    assert_eq!(run.sole_leader_among(&[1, 2], SLACK).await, 2);
    let (term, _) = run.last_acquired(2).expect("n2 acquired");
    let transfer = "/electd/leader/~transfer";
    let put = run.etcd.v3_get(transfer, Some(before + 1)).await;
    let record = run.etcd.v3_get(RECORD, Some(term)).await.expect("a record");
    assert!(
        put.as_ref()
            .is_some_and(|t| t.mod_revision == before + 1 && t.lease == record.lease),
        "the first write was not the transfer to n2: {put:?}"
    );
    assert_eq!(
        run.etcd.v3_get(RECORD, Some(before + 2)).await,
        None,
        "no revoke"
    );
    // The transfer lived until n2's record consumed it (n3 queueing again
    // may come in between: it is off the hand-over's path).
    assert!(term >= before + 3, "term {term}");
    assert_eq!(run.etcd.v3_get(transfer, Some(term - 1)).await, put);
    assert_eq!(run.etcd.v3_get(transfer, Some(term)).await, None);
    s.ticking(2).await;

    // A node of higher priority asks to lead (a write, `~preempt`); the
    // leader hands it the record in the next write, deleting the request.
    settled(&s.run, &among, 3).await;
    let high = s
        .spawn(
            "high",
            Opts {
                exec: true,
                own: own.clone().priority(10).preempt(Duration::from_secs(1)),
                ..Opts::default()
            },
        )
        .await;
    let run = &s.run;
    comes_to_lead(run, high).await;
    let (term, _) = run.last_acquired(high).expect("high acquired");
    let ask = "/electd/leader/~preempt";
    let asked = run.etcd.v3_get(ask, Some(term - 1)).await;
    let record = run.etcd.v3_get(RECORD, Some(term)).await.expect("a record");
    assert!(
        asked
            .as_ref()
            .is_some_and(|a| a.mod_revision == term - 1 && a.lease == record.lease),
        "the write before term {term} was not high's request: {asked:?}"
    );
    assert_eq!(
        run.etcd.v3_get(ask, Some(term)).await,
        None,
        "the request outlived the hand-over"
    );
    let before = run
        .etcd
        .v3_get(RECORD, Some(term - 1))
        .await
        .expect("n2's record");
    assert!(before.value.contains("\"id\":\"n2\""), "{before:?}");
    s.ticking(high).await;
    among.push(high);

    // SIGTERM: the leader's electd hands over as it shuts down.
    let next = departs_in_one_write(&s, &switches, &among, Departure::Sigterm).await;
    among.retain(|&i| i != high);
    assert_eq!(next, 1);
    let status = s.run.nodes[high].wait_exit(SLACK).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");

    // kill -9 of electd: its guardian kills the command's group, then
    // hands the record on; the next command starts only after.
    let order = settled(&s.run, &among, among.len()).await;
    assert_eq!(order[0], "n1");
    let before = s.run.etcd.v3_revision().await;
    s.run.kill9_electd(1);
    among.retain(|&i| i != 1);
    let run = &s.run;
    let next = run.sole_leader_among(&among, SLACK).await;
    assert_eq!(run.nodes[next].name, order[1]);
    assert_term(run, next, before, 1).await;
    let status = s.run.nodes[1].wait_exit(SLACK).await;
    assert_eq!(status.and_then(|s| s.code()), Some(137), "{status:?}");
    let output = s.run.nodes[1].output();
    assert!(
        output.contains("handed the dead electd's record to its successor"),
        "{output}"
    );
    s.ticking(next).await;
    s.assert_safe();
}

/// Among 20 candidates, a SIGTERM hands over in one write as among 3; the
/// queue behind the two next in line learns of it from the new record and
/// a count of the keys: only the node moving up to the two next reads the
/// election again (a read, then a new watch); nobody else does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn among_20_a_hand_over_is_one_write_and_the_queue_only_counts() {
    const N: usize = 20;
    let mut s = Steered::new("v3", 6).await;
    s.line_up((0..N).map(|_| Opts::default())).await;
    let run = &s.run;
    let all: Vec<usize> = (0..N).collect();
    let order = settled(run, &all, N).await;
    let names: Vec<String> = (0..N).map(|i| format!("n{i}")).collect();
    assert_eq!(order, names);
    let followers: Vec<usize> = (1..N).collect();
    let mut before = Vec::new();
    for &i in &followers {
        before.push((
            requests(run, i, "range").await,
            requests(run, i, "watch").await,
        ));
    }
    let revision = run.etcd.v3_revision().await;
    run.nodes[0].terminate();
    let next = run.sole_leader_among(&followers, SLACK).await;
    assert_eq!(next, 1);
    assert_term(run, next, revision, 1).await;
    // n2 and n3 are the two next now; n3 moves up to them.
    let moved_up = 3;
    eventually(
        SLACK,
        "the queue to count its keys and n3 to read again",
        || async {
            for (&i, &(ranges, watches)) in followers.iter().zip(&before) {
                let counted = requests(run, i, "range").await > ranges;
                let read = requests(run, i, "watch").await > watches;
                if (i > moved_up && !counted) || (i == moved_up && !read) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    for (&i, &(_, watches)) in followers.iter().zip(&before) {
        let reads = requests(run, i, "watch").await - watches;
        let expected = u64::from(i == moved_up);
        assert_eq!(reads, expected, "n{i} read the election {reads} times");
    }
    let status = s.run.nodes[0].wait_exit(SLACK).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    s.assert_safe();
}

/// The next in line cannot take what it is handed: it is stopped
/// (SIGSTOP of electd, past the TTL) or dead with its guardian (`kill -9`
/// of both, as a whole host). The record goes to it in one write all the
/// same (its key lives until its lease ends), and nobody leads until its
/// lease expires: within a TTL, never sooner than half of it. Then the
/// third leads with a later term; the stopped node, woken, never led.
async fn a_successor_that_cannot_lead_holds_the_record_until_its_lease_ends(stopped: bool) {
    let mut s = Steered::new("v3", 3).await;
    s.line_up((0..3).map(|_| Opts::default())).await;
    let order = settled(&s.run, &[0, 1, 2], 3).await;
    assert_eq!(order, ["n0", "n1", "n2"]);
    if stopped {
        s.run.nodes[1].pause();
    } else {
        s.run.kill9(1);
    }
    let run = &s.run;
    let before = run.etcd.v3_revision().await;
    let signalled = harness::now_ns();
    run.nodes[0].terminate();
    eventually(SLACK, "the record to go to n1 in one write", || async {
        let record = run.etcd.v3_get(RECORD, Some(before + 1)).await?;
        record.value.contains("\"id\":\"n1\"").then_some(())
    })
    .await;
    let next = run.sole_leader_among(&[2], run.ttl() + SLACK).await;
    let took = run.took(next, signalled);
    assert!(
        took >= run.ttl() / 2 && took <= run.ttl() + Duration::from_secs(2),
        "n2 led {took:?} after the hand-over to n1: not n1's lease expiring"
    );
    let (term, _) = run.last_acquired(next).expect("n2 acquired");
    assert!(term > before + 1, "term {term}");
    if stopped {
        run.nodes[1].resume();
        run.sole_leader_among(&[1, 2], SLACK).await;
        assert!(run.last_acquired(1).is_none(), "n1 led once woken");
    }
    s.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_successor_holds_the_record_until_its_lease_ends() {
    a_successor_that_cannot_lead_holds_the_record_until_its_lease_ends(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_dead_with_its_guardian_holds_the_record_until_its_lease_ends() {
    a_successor_that_cannot_lead_holds_the_record_until_its_lease_ends(false).await;
}

/// electd hands the record over and is killed at once (SIGTERM, then
/// SIGKILL after a few hundred microseconds, swept across the moment of
/// the write): before its write, its guardian hands the record on; after,
/// the guardian finds the record bound to the successor's lease and leaves
/// it alone. Either way the successor leads in the write after the
/// signal, keeps its term, and nobody else leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn electd_killed_after_its_own_hand_over_leaves_the_successor_alone() {
    let mut s = Steered::new("v3", TTL).await;
    s.line_up((0..3).map(|_| Opts::default())).await;
    let (mut by_electd, mut by_guardian, mut exited) = (0, 0, 0);
    for round in 0..12u64 {
        let run = &s.run;
        let order = settled(run, &[0, 1, 2], 3).await;
        let leader = named(run, &order[0]);
        let (next, third) = (named(run, &order[1]), named(run, &order[2]));
        let third_led = run.last_acquired(third);
        // Looked up now: after the signal it may be on its way out.
        run.nodes[leader].electd_pid();
        let before = run.etcd.v3_revision().await;
        run.nodes[leader].terminate();
        // The race's variable, not a wait for anything.
        std::thread::sleep(Duration::from_micros(round * 400));
        s.run.kill9_electd(leader);
        let run = &s.run;
        assert_eq!(run.sole_leader_among(&[next, third], SLACK).await, next);
        let term = assert_term(run, next, before, 1).await;
        let status = s.run.nodes[leader].wait_exit(SLACK).await;
        let run = &s.run;
        // The guardian is done: the record is still the successor's.
        let record = run.etcd.v3_get(RECORD, None).await.expect("a record");
        assert_eq!(
            record.mod_revision, term,
            "round {round}: the record changed"
        );
        assert_eq!(run.term(next).await, term);
        assert_eq!(
            run.last_acquired(third),
            third_led,
            "round {round}: n{third} led"
        );
        let output = run.nodes[leader].output();
        match status.and_then(|s| s.code()) {
            Some(0) => exited += 1,
            _ if output.contains("handed the dead electd's record to its successor") => {
                by_guardian += 1
            }
            _ => by_electd += 1,
        }
        s.run.restart(leader, NodeArgs::new(), &[]);
        s.run.nodes[leader].wait_serving().await;
        s.queued(leader).await;
    }
    eprintln!(
        "handed over by electd, then killed: {by_electd}; killed first, handed on by the \
         guardian: {by_guardian}; exited before the kill: {exited}"
    );
    s.assert_safe();
}

/// The record rewritten in place by hand (same value, same lease): the
/// term is the revision of the record's last write, so the leader's term
/// ends (`lost`) and it leads on at once with the rewrite's revision; its
/// command is stopped and started again with the new `ELECTD_TERM`, never
/// two at once, and nobody else leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_rewritten_in_place_by_hand_is_a_new_term() {
    let mut s = Steered::new("v3", TTL).await;
    s.line_up((0..2).map(|_| Opts {
        exec: true,
        ..Opts::default()
    }))
    .await;
    settled(&s.run, &[0, 1], 2).await;
    s.ticking(0).await;
    let run = &s.run;
    let (before, _) = run.last_acquired(0).expect("n0 acquired");
    let stored = run.etcd.v3_get(RECORD, None).await.expect("the record");
    assert!(
        run.etcd
            .v3_put_with_lease(RECORD, &stored.value, stored.lease)
            .await
    );
    let rewritten = run.etcd.v3_get(RECORD, None).await.expect("the record");
    eventually(SLACK, "n0 to lead in the rewrite's term", || async {
        let (term, _) = run.last_acquired(0)?;
        (term == rewritten.mod_revision).then_some(())
    })
    .await;
    let ends: Vec<_> = run
        .journal(0)
        .into_iter()
        .filter(|r| r["event"] == "ended")
        .map(|r| (r["term"].as_u64(), r["reason"].as_str().map(str::to_owned)))
        .collect();
    assert_eq!(ends, [(Some(before), Some("lost".to_owned()))]);
    assert_eq!(run.sole_leader(SLACK).await, 0);
    s.ticking(0).await;
    assert!(run.last_acquired(1).is_none(), "n1 led");
    s.assert_safe();
}

mod refused;
mod stale;
mod withheld;
