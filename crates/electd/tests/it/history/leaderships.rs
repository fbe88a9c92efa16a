//! The election's history (v3): `GET /v1/history` on every node lists who
//! led, newest first, and how each leadership ended, from entries in etcd
//! (`~~history/<term>`) that restarts of every node cannot lose. Every node
//! answers the same bytes. Real etcd, real electd processes; the tests
//! that move leadership end with the journal checker.

use std::time::Duration;

use harness::eventually;
use harness::node::NodeArgs;
use serde_json::Value;

use crate::common::{Run, SLACK};
use crate::steering::steered::{Opts, Steered, TOKEN, admin, comes_to_lead};

/// Short enough that a pause past it is quick, long enough for a loaded
/// machine.
const TTL: u64 = 3;

/// Where the default election keeps its history.
const HISTORY: &str = "/electd/leader/~~history/";

/// Node `i`'s answer to `/v1/history` with `query`: its status and body.
async fn history(run: &Run, i: usize, query: &str) -> (u16, String) {
    let node = &run.nodes[i];
    let answer = node
        .get(&format!("/v1/history{query}"))
        .await
        .unwrap_or_else(|| panic!("{} answers /v1/history", node.name));
    (answer.status, answer.body)
}

/// Waits until every node of `among` answers `/v1/history` with the same
/// bytes, listing `n` leaderships, the current one first; that list.
async fn agreed(run: &Run, among: &[usize], n: usize) -> Vec<Value> {
    let what = format!("{} nodes to list the same {n} leaderships", among.len());
    eventually(SLACK, &what, || async {
        let mut bodies = Vec::new();
        for &i in among {
            let (status, body) = history(run, i, "").await;
            if status != 200 {
                return None;
            }
            bodies.push(body);
        }
        if bodies.windows(2).any(|pair| pair[0] != pair[1]) {
            return None;
        }
        let answer: Value = serde_json::from_str(&bodies[0]).ok()?;
        let list = answer["history"].as_array()?.clone();
        let current = list.first()?;
        (list.len() == n
            && current["reason"].is_null()
            && answer["skipped"] == Value::Array(vec![]))
        .then_some(list)
    })
    .await
}

/// `(id, reason, to)` of an entry.
fn ending(entry: &Value) -> (&str, &str, Option<&str>) {
    (
        entry["id"].as_str().unwrap_or_default(),
        entry["reason"].as_str().unwrap_or_default(),
        entry["to"].as_str(),
    )
}

/// Every term a node's journal says it acquired.
fn acquired_terms(run: &Run, i: usize) -> Vec<u64> {
    run.journal(i)
        .into_iter()
        .filter(|r| r["event"] == "acquired")
        .filter_map(|r| r["term"].as_u64())
        .collect()
}

/// The node called `name`.
fn named(run: &Run, name: &str) -> usize {
    run.nodes
        .iter()
        .position(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node {name}"))
}

/// Terms fall from each entry to the next; each leadership was journalled
/// by its holder with the term listed; each began no later than it ended,
/// and, when it was handed over, its successor is the next newer entry's
/// holder, who began no earlier than it ended (by the writers' clocks, on
/// one host).
fn assert_consistent(run: &Run, list: &[Value]) {
    for pair in list.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        assert!(
            newer["term"].as_u64() > older["term"].as_u64(),
            "terms do not fall: {newer} then {older}"
        );
        if let Some(to) = older["to"].as_str() {
            assert_eq!(
                Some(to),
                newer["id"].as_str(),
                "{older} names another successor"
            );
            assert!(
                newer["acquired_at"].as_str() >= older["ended_at"].as_str(),
                "{newer} began before {older} ended"
            );
        }
    }
    for entry in list {
        let term = entry["term"].as_u64().expect("a term");
        let holder = named(run, entry["id"].as_str().expect("an id"));
        assert!(
            acquired_terms(run, holder).contains(&term),
            "{} never journalled term {term}",
            run.nodes[holder].name
        );
        let acquired = entry["acquired_at"].as_str().expect("a start");
        assert!(
            acquired.ends_with('Z') && acquired.len() == 24,
            "{acquired}"
        );
        if let Some(ended) = entry["ended_at"].as_str() {
            assert!(acquired <= ended, "{entry} ended before it began");
        }
    }
}

/// A SIGTERM (shutdown), `/v1/resign?to=` (transfer, by its transfer
/// record), a drain, `kill -9` of electd whose guardian hands the record on
/// (released), and a pause of the leader's whole node past the TTL
/// (expired, written by its successor once it leads): the history names
/// each with its successor, the same bytes from every node, and again after
/// every node restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_a_leadership_ends_is_in_the_history_the_same_on_every_node() {
    let mut s = Steered::new("v3", TTL).await;
    s.line_up((0..4).map(|_| Opts::default())).await;
    comes_to_lead(&s.run, 0).await;

    // n0: SIGTERM, handed to n1 as it shuts down.
    s.run.nodes[0].terminate();
    let exit = s.run.nodes[0].wait_exit(SLACK).await;
    assert_eq!(exit.and_then(|e| e.code()), Some(0), "{exit:?}");
    assert_eq!(s.run.sole_leader_among(&[1, 2, 3], SLACK).await, 1);
    // n1 hands over to n3 by name (and queues again, behind n2).
    let (code, body) = admin(&s.run, 1, "/v1/resign?to=n3").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(s.run.sole_leader_among(&[1, 2, 3], SLACK).await, 3);
    // n3 is drained: n2 leads; undrained, n3 queues behind n1.
    let (code, body) = admin(&s.run, 3, "/v1/drain").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(s.run.sole_leader_among(&[1, 2, 3], SLACK).await, 2);
    let (code, body) = admin(&s.run, 3, "/v1/undrain").await;
    assert_eq!(code, 200, "{body}");
    // kill -9 of n2's electd: its guardian hands the record to n1.
    s.run.kill9_electd(2);
    assert_eq!(s.run.sole_leader_among(&[1, 3], SLACK).await, 1);
    let exit = s.run.nodes[2].wait_exit(SLACK).await;
    assert_eq!(exit.and_then(|e| e.code()), Some(137), "{exit:?}");
    // n1's whole node paused past the TTL: its lease expires, n3 leads.
    let paused = s.run.nodes[1].freeze();
    let limit = s.run.ttl() + SLACK;
    assert_eq!(s.run.sole_leader_among(&[3], limit).await, 3);
    drop(paused);
    // Every node serves again: the dead ones restarted, n1 woken.
    for i in [0, 2] {
        s.run
            .restart(i, NodeArgs::new(), &[("ELECTD_ADMIN_TOKEN", TOKEN)]);
        s.run.nodes[i].wait_serving().await;
    }
    let all = [0, 1, 2, 3];

    let list = agreed(&s.run, &all, 6).await;
    assert_eq!(list[0]["id"], "n3");
    assert_eq!(list[0]["term"].as_u64(), Some(s.run.term(3).await));
    assert!(list[0]["ended_at"].is_null() && list[0]["to"].is_null());
    let endings: Vec<_> = list[1..].iter().map(ending).collect();
    assert_eq!(
        endings,
        [
            ("n1", "expired", None),
            ("n2", "released", Some("n1")),
            ("n3", "drain", Some("n2")),
            ("n1", "transfer", Some("n3")),
            ("n0", "shutdown", Some("n1")),
        ]
    );
    assert_consistent(&s.run, &list);
    // The paused leader's end is the successor's reading: when it saw the
    // record go with its lease, a TTL or so after the pause began.
    assert!(list[1]["ended_at"].is_string(), "{}", list[1]);
    assert_eq!(
        s.run.etcd.v3_keys(HISTORY).await.len(),
        5,
        "an entry per ended leadership"
    );

    // Every node restarted, the followers first, then the leader (one
    // more leadership, handed on as it shuts down): nothing is lost.
    for i in [0, 1, 2, 3] {
        s.run.nodes[i].terminate();
        let exit = s.run.nodes[i].wait_exit(SLACK).await;
        assert_eq!(exit.and_then(|e| e.code()), Some(0), "{exit:?}");
        s.run
            .restart(i, NodeArgs::new(), &[("ELECTD_ADMIN_TOKEN", TOKEN)]);
        s.run.nodes[i].wait_serving().await;
    }
    let after = agreed(&s.run, &all, 7).await;
    assert_eq!(ending(&after[1]).0, "n3");
    assert_eq!(ending(&after[1]).1, "shutdown");
    assert_eq!(after[2..], list[1..], "the ended leaderships, unchanged");
    assert_consistent(&s.run, &after);
    s.assert_safe();
}

/// `?limit=N` lists the newest N leaderships; a limit past
/// `--history-size` is capped, a bad one is 400 with a sentence; and a
/// leader trims the entries beyond the size (once they are an eighth
/// more, at least one), so etcd keeps no more than that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_keeps_its_size_and_lists_what_is_asked() {
    let mut s = Steered::new("v3", TTL).await;
    let own = || {
        NodeArgs::new()
            .history_size(3)
            .resign_cooldown(Duration::from_millis(200))
    };
    s.line_up((0..2).map(|_| Opts {
        own: own(),
        ..Opts::default()
    }))
    .await;
    comes_to_lead(&s.run, 0).await;
    // Six resigns, each handing over to the other node.
    let mut leader = 0;
    for _ in 0..6 {
        let other = 1 - leader;
        // Queued again after its cooldown: the record goes to it in one write.
        s.queued(other).await;
        let (code, body) = admin(&s.run, leader, "/v1/resign").await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(s.run.sole_leader_among(&[other], SLACK).await, other);
        leader = other;
    }
    // Trimmed within the grace after the last leadership began.
    let kept = eventually(SLACK, "the history trimmed to its size", || async {
        let keys = s.run.etcd.v3_keys(HISTORY).await;
        (keys.len() <= 4).then_some(keys)
    })
    .await;
    assert!(kept.len() >= 3, "{kept:?}");
    let list = agreed(&s.run, &[0, 1], 3).await;
    assert!(
        list[1..].iter().all(|e| e["reason"] == "resign"),
        "{list:?}"
    );
    assert_consistent(&s.run, &list);

    let (code, body) = history(&s.run, 1, "?limit=2").await;
    assert_eq!(code, 200, "{body}");
    let two: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        two["history"].as_array().map(Vec::as_slice),
        Some(&list[..2])
    );
    let (code, body) = history(&s.run, 0, "?limit=50").await;
    assert_eq!(code, 200, "{body}");
    let capped: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(capped["history"].as_array().map(Vec::len), Some(3));
    for bad in [
        "?limit=0",
        "?limit=-1",
        "?limit=three",
        "?limit=",
        "?limit=1&limit=2",
    ] {
        let (code, body) = history(&s.run, 0, bad).await;
        assert_eq!(code, 400, "{bad}: {body}");
        let refusal: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(refusal["error"], "bad_limit", "{bad}: {body}");
        assert!(
            refusal["message"]
                .as_str()
                .is_some_and(|m| m.contains("limit")),
            "{bad}: {body}"
        );
    }
    s.assert_safe();
}

/// Keys in the history's range that are not electd's entries (not JSON,
/// another marker, a name that is no term, a term ahead of the current
/// leadership's) are listed as skipped, with why, by every node alike;
/// never read as leaderships, and nothing of the election notices them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_and_malformed_history_keys_are_reported_and_skipped() {
    let run = Run::new("v3", TTL, 2).await;
    let leader = run.sole_leader(SLACK).await;
    let term = run.term(leader).await;
    let foreign = [
        (
            format!("{HISTORY}0000000000000000001"),
            "8080".to_owned(),
            "not JSON in electd's history format",
        ),
        (
            format!("{HISTORY}0000000000000000002"),
            r#"{"electd":"anchor","term":2,"id":"x","advertise":"","reason":"resign"}"#.to_owned(),
            "not marked as electd's history",
        ),
        (
            format!("{HISTORY}notaterm"),
            "{}".to_owned(),
            "not a history entry's key",
        ),
        (
            format!("{HISTORY}{:019}", term + 1000),
            format!(
                r#"{{"electd":"history","term":{},"id":"x","advertise":"","reason":"resign"}}"#,
                term + 1000
            ),
            "a term at or after the current leadership's",
        ),
    ];
    for (key, value, _) in &foreign {
        assert!(run.etcd.v3_put(key, value).await, "{key}");
    }
    let skipped = eventually(
        SLACK,
        "both nodes to report the same skipped keys",
        || async {
            let (_, a) = history(&run, 0, "").await;
            let (_, b) = history(&run, 1, "").await;
            let answer: Value = serde_json::from_str(&a).ok()?;
            let skipped = answer["skipped"].as_array()?.clone();
            (a == b && skipped.len() == foreign.len()).then_some((answer, skipped))
        },
    )
    .await;
    let (answer, skipped) = skipped;
    for (key, _, why) in &foreign {
        assert!(
            skipped.iter().any(|s| s["key"] == *key && s["why"] == *why),
            "{key} not skipped for {why:?}: {skipped:?}"
        );
    }
    assert_eq!(
        answer["history"].as_array().map(Vec::len),
        Some(1),
        "only the leadership now: {answer}"
    );
    // Nothing of the election saw them: the leader leads on, at its term,
    // with no obstacle, and nobody read the election again for them.
    for i in [0, 1] {
        let status = run.nodes[i].status().await.expect("a status");
        assert!(status["obstacle"].is_null(), "{status}");
        assert_eq!(status["leader"]["term"].as_u64(), Some(term), "{status}");
        let healthz = run.nodes[i].get("/healthz").await.expect("an answer");
        assert_eq!(healthz.status, 200, "{}", healthz.body);
    }
    assert!(run.nodes[leader].is_leader().await);
    run.assert_safe();
}

/// v2's one key keeps no history: 501 `needs_v3`, whatever the query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_v2_the_history_is_not_there() {
    let run = Run::new("v2", TTL, 1).await;
    for query in ["", "?limit=2", "?limit=zero"] {
        let (code, body) = history(&run, 0, query).await;
        assert_eq!(code, 501, "{query}: {body}");
        let refusal: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(refusal["error"], "needs_v3", "{body}");
        assert!(
            refusal["message"]
                .as_str()
                .is_some_and(|m| m.contains("--api v3")),
            "{body}"
        );
    }
}

/// etcd itself stalls past the TTL (SIGSTOP of its only member): every
/// lease expires as it wakes, every node's claim with it, and the nodes
/// campaign again, each with a fresh follow task. The leadership that went
/// is still in the history, as `expired`, written by whoever leads next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leadership_that_expired_while_etcd_stalled_is_in_the_history() {
    let run = Run::new("v3", TTL, 3).await;
    let first = run.sole_leader(SLACK).await;
    let term = run.term(first).await;
    run.etcd.pause(0);
    // The fault's length, not a wait for an event: past every lease.
    tokio::time::sleep(run.ttl() * 2 + Duration::from_secs(1)).await;
    run.etcd.resume(0);
    let all = [0, 1, 2];
    eventually(SLACK * 2, "the stalled leadership's entry", || async {
        let (status, body) = history(&run, run.sole_leader(SLACK).await, "").await;
        let answer: Value = serde_json::from_str(&body).ok()?;
        let list = answer["history"].as_array()?.clone();
        (status == 200
            && list[0]["term"].as_u64()? > term
            && list.iter().any(|e| e["term"].as_u64() == Some(term)))
        .then_some(())
    })
    .await;
    let leader = run.sole_leader(SLACK).await;
    let (_, body) = history(&run, leader, "").await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    let entry = answer["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["term"].as_u64() == Some(term))
        .cloned()
        .unwrap();
    assert_eq!(entry["id"], run.nodes[first].name, "{entry}");
    assert_eq!(entry["reason"], "expired", "{entry}");
    agreed(&run, &all, answer["history"].as_array().unwrap().len()).await;
    run.assert_safe();
}
