//! `--shards N`: every shard led by one node, spread evenly, moved by
//! hand-overs and taken when its node dies; against a real etcd with real
//! processes. Each test watches, while it runs, that no shard is ever
//! claimed by two nodes' answers at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use harness::eventually;
use harness::node::NodeArgs;
use serde_json::Value;

use crate::common::{Run, SLACK, metric};
use crate::steering::steered::{TOKEN, admin};

const TTL: u64 = 3;

/// A shard as one node's `/v1/shards` shows it: (leader id, term).
type Shown = BTreeMap<u64, (String, u64)>;

/// What node `i` answers at `/v1/shards`.
async fn shards_of(run: &Run, i: usize) -> Option<Value> {
    let answer = run.nodes[i].get("/v1/shards").await?;
    (answer.status == 200).then(|| serde_json::from_str(&answer.body).ok())?
}

/// The shards node `i` says it leads.
fn leads(body: &Value) -> BTreeSet<u64> {
    body["leads"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// Every shard's leader and term, as node `i` shows them; `None` while a
/// shard has no leader.
fn shown(body: &Value) -> Option<Shown> {
    body["shards"]
        .as_array()?
        .iter()
        .map(|s| {
            Some((
                s["shard"].as_u64()?,
                (s["leader"]["id"].as_str()?.to_owned(), s["term"].as_u64()?),
            ))
        })
        .collect()
}

/// `n` nodes with `--shards count`, the admin token set.
async fn sharded(n: usize, count: u32) -> Run {
    sharded_with_ttl(n, count, TTL).await
}

async fn sharded_with_ttl(n: usize, count: u32, ttl: u64) -> Run {
    let mut run = Run::new("v3", ttl, 0).await;
    for i in 0..n {
        spawn(&mut run, i, count);
    }
    for node in &run.nodes {
        node.wait_serving().await;
    }
    run
}

fn spawn(run: &mut Run, i: usize, count: u32) -> usize {
    let env = [("ELECTD_ADMIN_TOKEN", TOKEN)];
    run.spawn_with_env(&format!("n{i}"), NodeArgs::new().shards(count), &env)
}

/// Waits until every node in `among` shows the same map with every shard
/// led, each of `among` leading between `lower` and `upper` shards, and
/// says it leads exactly the shards the map gives it. Returns the map.
async fn settled(run: &Run, among: &[usize], lower: usize, upper: usize, limit: Duration) -> Shown {
    eventually(limit, "the shards to settle within the bounds", || async {
        let mut maps = Vec::new();
        for &i in among {
            let body = shards_of(run, i).await?;
            let map = shown(&body)?;
            let id = &run.nodes[i].name;
            let given: BTreeSet<u64> = map
                .iter()
                .filter(|(_, (leader, _))| leader == id)
                .map(|(k, _)| *k)
                .collect();
            if leads(&body) != given || !(lower..=upper).contains(&given.len()) {
                return None;
            }
            maps.push(map);
        }
        maps.windows(2)
            .all(|w| w[0] == w[1])
            .then(|| maps.pop())
            .flatten()
    })
    .await
}

/// Asks every node in `among`, in that order, which shards it leads now:
/// none may be claimed twice.
async fn assert_no_shard_led_twice(run: &Run, among: &[usize]) {
    let mut claimed: BTreeMap<u64, &str> = BTreeMap::new();
    for &i in among {
        let Some(body) = shards_of(run, i).await else {
            continue;
        };
        for shard in leads(&body) {
            if let Some(other) = claimed.insert(shard, &run.nodes[i].name) {
                panic!("shard {shard} led by {other} and {}", run.nodes[i].name);
            }
        }
    }
}

/// The journal checker over the run, per shard: no overlap, terms that
/// grow; and every shard was journaled as led at some point.
fn assert_shards_safe(run: &Run, count: u32) {
    let report = run.assert_safe();
    let journaled: BTreeSet<u32> = report.intervals.iter().filter_map(|i| i.shard).collect();
    assert_eq!(journaled.len(), count as usize, "shards journaled as led");
}

/// Three nodes split 60 shards 20 each (the bounds are 19 to 21); each
/// shard's health check answers 200 on its leader alone, with its term;
/// a shard out of range and an election without shards are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_spread_evenly_and_each_answers_on_its_leader_alone() {
    let run = sharded(3, 60).await;
    let map = settled(&run, &[0, 1, 2], 19, 21, SLACK).await;
    assert_eq!(map.len(), 60);
    for shard in [0u64, 17, 59] {
        let (leader, term) = &map[&shard];
        for node in &run.nodes {
            let answer = node
                .get(&format!("/health/shard/{shard}"))
                .await
                .expect("an answer");
            if &node.name == leader {
                assert_eq!(
                    (answer.status, answer.body.as_str()),
                    (200, term.to_string().as_str())
                );
            } else {
                assert_eq!(answer.status, 503, "{}: {}", node.name, answer.body);
            }
            let one = node
                .get(&format!("/v1/shards/{shard}"))
                .await
                .expect("an answer");
            let body: Value = serde_json::from_str(&one.body).expect("JSON");
            assert_eq!(body["leader"]["id"], leader.as_str());
            assert_eq!(
                body["leader"]["advertise"],
                run.nodes
                    .iter()
                    .find(|n| &n.name == leader)
                    .map(|n| n.url())
                    .expect("the leader")
            );
            assert_eq!(body["self"], &node.name == leader);
        }
    }
    for node in &run.nodes {
        let mine = node.get("/v1/shards?mine").await.expect("an answer");
        let body: Value = serde_json::from_str(&mine.body).expect("JSON");
        let listed: BTreeSet<u64> = body["shards"]
            .as_array()
            .expect("shards")
            .iter()
            .filter_map(|s| {
                (s["leader"]["id"] == node.name.as_str())
                    .then(|| s["shard"].as_u64())
                    .flatten()
            })
            .collect();
        assert_eq!(
            listed.len(),
            body["shards"].as_array().map_or(0, Vec::len),
            "{body}"
        );
        assert_eq!(listed, leads(&body), "{}: {body}", node.name);
    }
    let bad = run.nodes[0]
        .get("/v1/shards?mine=perhaps")
        .await
        .expect("an answer");
    assert_eq!(bad.status, 400, "{}", bad.body);
    for path in ["/v1/shards/60", "/v1/shards/x", "/health/shard/-1"] {
        let answer = run.nodes[0].get(path).await.expect("an answer");
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
        assert!(
            answer.body.contains("no_such_shard"),
            "{path}: {}",
            answer.body
        );
    }
    let mut plain = Run::new("v3", TTL, 1).await;
    let answer = plain.nodes[0].get("/v1/shards").await.expect("an answer");
    assert_eq!(answer.status, 404);
    assert!(answer.body.contains("--shards"), "{}", answer.body);
    plain.kill9(0);
    assert_shards_safe(&run, 60);
}

/// A node's electd killed: its guardian revokes its lease, which deletes
/// its records at once; the two others take them (30 each), at terms above
/// the old ones. A fourth node joins: it reaches its share while at most
/// 1.1 × N/(k+1) shards move, every one to it. Nobody claims a shard
/// another claims at any point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_shards_are_taken_and_a_joiner_gets_its_share() {
    let mut run = sharded(3, 60).await;
    let before = settled(&run, &[0, 1, 2], 19, 21, SLACK).await;
    run.kill9_electd(0);
    let after = settled(&run, &[1, 2], 30, 30, SLACK).await;
    for (shard, (leader, term)) in &before {
        let (now, new_term) = &after[shard];
        if leader == "n0" {
            assert!(
                new_term > term,
                "shard {shard}: term {term} then {new_term}"
            );
        } else {
            assert_eq!((now, new_term), (leader, term), "shard {shard} moved");
        }
    }
    let joiner = spawn(&mut run, 3, 60);
    run.nodes[joiner].wait_serving().await;
    // The joiner first: a shard it claims at one instant was let go by its
    // old leader before then, so that leader cannot claim it when asked
    // later (shards only move to the joiner here). Asked the other way
    // round, a hand-over between the two questions would look like overlap.
    let among = [joiner, 1, 2];
    let watch = async {
        loop {
            assert_no_shard_led_twice(&run, &among).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let joined = tokio::select! {
        joined = settled(&run, &among, 19, 21, SLACK) => joined,
        _ = watch => unreachable!(),
    };
    let moved: Vec<u64> = after
        .iter()
        .filter(|(shard, (leader, _))| joined[*shard].0 != *leader)
        .map(|(shard, _)| *shard)
        .collect();
    assert!(
        moved.len() as f64 <= 1.1 * 60.0 / 3.0,
        "{} moved",
        moved.len()
    );
    for shard in &moved {
        assert_eq!(joined[shard].0, "n3", "shard {shard} moved elsewhere");
        assert!(joined[shard].1 > after[shard].1, "shard {shard}'s term");
    }
    assert_shards_safe(&run, 60);
}

/// A drained node hands its shards over, and only its own move; undrained,
/// it gets a share back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_hands_over_only_its_own_shards() {
    let run = sharded(3, 60).await;
    let before = settled(&run, &[0, 1, 2], 19, 21, SLACK).await;
    let (code, body) = admin(&run, 0, "/v1/drain").await;
    assert_eq!(code, 200, "{body}");
    let drained = settled(&run, &[1, 2], 30, 30, SLACK).await;
    assert!(drained.values().all(|(leader, _)| leader != "n0"));
    for (shard, (leader, term)) in &before {
        if leader != "n0" {
            assert_eq!(
                &drained[shard],
                &(leader.clone(), *term),
                "shard {shard} moved"
            );
        } else {
            assert!(drained[shard].1 > *term, "shard {shard}'s term");
        }
    }
    let body = shards_of(&run, 0).await.expect("n0's shards");
    assert!(leads(&body).is_empty(), "{body}");
    let text = run.nodes[0].get("/metrics").await.expect("metrics").body;
    assert_eq!(metric(&text, "electd_shards"), Some(60.0), "{text}");
    assert_eq!(metric(&text, "electd_shards_led"), Some(0.0), "{text}");
    assert_eq!(
        metric(&text, "electd_shards_leaderless"),
        Some(0.0),
        "{text}"
    );
    let acquired = metric(&text, r#"electd_shard_changes_total{reason="acquired"}"#);
    let gone: f64 = ["transfer", "drain", "lost"]
        .iter()
        .filter_map(|r| {
            metric(
                &text,
                &format!(r#"electd_shard_changes_total{{reason="{r}"}}"#),
            )
        })
        .sum();
    let held = before.values().filter(|(leader, _)| leader == "n0").count() as f64;
    assert!(acquired.is_some_and(|a| a >= held), "{text}");
    assert!(gone >= held, "{gone} ended of {held}: {text}");
    let (code, body) = admin(&run, 0, "/v1/undrain").await;
    assert_eq!(code, 200, "{body}");
    settled(&run, &[0, 1, 2], 19, 21, SLACK).await;
    assert_shards_safe(&run, 60);
}

/// 10,000 shards over two nodes: read a page at a time, written in
/// batches within etcd's limits; every shard led, 5,000 each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_shards_are_all_led() {
    let run = sharded(2, 10_000).await;
    let map = settled(&run, &[0, 1], 4750, 5250, SLACK * 4).await;
    assert_eq!(map.len(), 10_000);
    assert_shards_safe(&run, 10_000);
}

/// A node told to stop gives up its lease, and its shards with it, at once:
/// the others lead them well within a TTL. A whole node killed (its
/// guardian too) leaves its shards to its lease's expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_releases_its_shards_at_once_a_dead_host_after_its_ttl() {
    let mut run = sharded(3, 30).await;
    settled(&run, &[0, 1, 2], 9, 11, SLACK).await;
    let stopped = std::time::Instant::now();
    run.nodes[0].terminate();
    settled(&run, &[1, 2], 15, 15, SLACK).await;
    let took = stopped.elapsed();
    assert!(took < run.ttl(), "{took:?} to take a stopped node's shards");
    run.nodes[0].wait_exit(SLACK).await.expect("n0 exits");
    run.kill9(1);
    settled(&run, &[2], 30, 30, run.ttl() + SLACK).await;
    assert_shards_safe(&run, 30);
}

/// The election keeps its one leader beside the shards, and `/` names it;
/// its resign is refused, since it would give up the lease every shard of
/// that node is bound to. A drain of that leader frees its shards, which
/// the others lead at higher terms; nothing else moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_election_keeps_its_leader_and_its_resign_is_refused() {
    let run = sharded(3, 30).await;
    let before = settled(&run, &[0, 1, 2], 9, 11, SLACK).await;
    let leader = run.sole_leader(SLACK).await;
    let (code, body) = admin(&run, leader, "/v1/resign").await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("not_with_shards")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("/v1/drain")),
        "{body}"
    );
    assert_eq!(
        run.sole_leader(SLACK).await,
        leader,
        "the resign changed nothing"
    );
    let (code, body) = admin(&run, leader, "/v1/drain").await;
    assert_eq!(code, 200, "{body}");
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let after = settled(&run, &others, 15, 15, SLACK).await;
    let name = &run.nodes[leader].name;
    for (shard, (was, term)) in &before {
        let (now, new_term) = &after[shard];
        if was == name {
            assert!(
                new_term > term,
                "shard {shard}: term {term} then {new_term}"
            );
        } else {
            assert_eq!((now, new_term), (was, term), "shard {shard} moved");
        }
    }
    assert_shards_safe(&run, 30);
}

/// Five nodes: the last two in the queue watch puts only, so they learn of
/// a candidate's end by a count of the keys, every half TTL (5 s here).
/// A node's electd killed (its guardian revokes at once): its records'
/// deletion tells every node that it is gone, so its shards are all led
/// again well before any count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_shards_are_taken_before_a_quiet_follower_counts() {
    let mut run = sharded_with_ttl(5, 50, 10).await;
    settled(&run, &[0, 1, 2, 3, 4], 9, 11, SLACK).await;
    let killed = std::time::Instant::now();
    run.kill9_electd(1);
    let after = settled(&run, &[0, 2, 3, 4], 12, 13, SLACK).await;
    let took = killed.elapsed();
    assert!(after.values().all(|(leader, _)| leader != "n1"));
    assert!(
        took < Duration::from_secs(4),
        "{took:?}: the quiet followers waited for their count"
    );
    assert_shards_safe(&run, 50);
}

/// An etcd that takes at most 16 operations per transaction refuses the
/// first batches as too large: they are split until they pass, and every
/// shard is led.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_etcd_refuses_as_too_large_are_split() {
    let etcd = harness::etcd::Etcd::start(harness::etcd::EtcdOptions {
        extra: vec!["--max-txn-ops".to_owned(), "16".to_owned()],
        ..harness::etcd::EtcdOptions::default()
    })
    .await;
    let mut run = Run::with_etcd(etcd, "v3", TTL, 0).await;
    for i in 0..2 {
        spawn(&mut run, i, 300);
    }
    for node in &run.nodes {
        node.wait_serving().await;
    }
    settled(&run, &[0, 1], 142, 158, SLACK).await;
    assert!(
        run.nodes[0].output().contains("splitting") || run.nodes[1].output().contains("splitting"),
        "no batch was split"
    );
    assert_shards_safe(&run, 300);
}
