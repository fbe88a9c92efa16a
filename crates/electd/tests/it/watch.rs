//! The event stream `/v1/watch`, against a real etcd with real processes:
//! `leader` events on every change of leader, `status` events on every
//! change a list of the election shows (and none while nothing changes),
//! `shards` and `shard` events with `--shards`, and `?events=` choosing
//! between them.

use std::time::Duration;

use harness::node::{Node, NodeArgs};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::common::Run;
use crate::operations::admin_post;

const SLACK: Duration = Duration::from_secs(10);
const TOKEN: &str = "t0ken-for-watch";

/// An open `/v1/watch` stream: its events as (name, data) in order.
struct Stream {
    events: mpsc::UnboundedReceiver<(String, Value)>,
}

impl Stream {
    async fn open(node: &Node, query: &str) -> Stream {
        let resp = harness::http()
            .build()
            .unwrap()
            .get(format!("{}/v1/watch{query}", node.url()))
            .send()
            .await
            .expect("the node answers");
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut resp = resp;
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    let name = event.lines().find_map(|l| l.strip_prefix("event: "));
                    let data = event.lines().find_map(|l| l.strip_prefix("data: "));
                    if let (Some(name), Some(data)) = (name, data) {
                        let data = serde_json::from_str(data).expect("JSON data");
                        let _ = tx.send((name.to_owned(), data));
                    }
                }
            }
        });
        Stream { events }
    }

    async fn next(&mut self) -> (String, Value) {
        tokio::time::timeout(Duration::from_secs(20), self.events.recv())
            .await
            .expect("an event within 20 s")
            .expect("the stream stays open")
    }

    /// The next event named `name`, skipping others.
    async fn next_named(&mut self, name: &str) -> Value {
        loop {
            let (event, data) = self.next().await;
            if event == name {
                return data;
            }
        }
    }

    /// The first `status` event that satisfies `shows`.
    async fn status_showing(&mut self, what: &str, shows: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + SLACK;
        loop {
            let status = tokio::time::timeout_at(deadline, self.next_named("status"))
                .await
                .unwrap_or_else(|_| panic!("no status event showing {what} within {SLACK:?}"));
            if shows(&status) {
                return status;
            }
        }
    }

    /// Every event that arrives within `window`.
    async fn during(&mut self, window: Duration) -> Vec<(String, Value)> {
        let mut seen = Vec::new();
        let until = tokio::time::Instant::now() + window;
        while let Ok(Some(event)) = tokio::time::timeout_at(until, self.events.recv()).await {
            seen.push(event);
        }
        seen
    }
}

fn listed<'a>(status: &'a Value, id: &str) -> Option<&'a Value> {
    status["candidates"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == id)
}

async fn the_watch_stream_delivers_each_leader_change(api: &'static str) {
    let mut run = Run::new(api, 2, 3).await;
    let first = run.sole_leader(SLACK).await;
    let observer = (first + 1) % 3;
    let mut stream = Stream::open(&run.nodes[observer], "").await;
    let event = stream.next_named("leader").await;
    assert_eq!(event["id"], run.nodes[first].name, "{event}");
    // Kill the leader: the stream reports the successor (maybe after a moment without one).
    run.kill9(first);
    let others: Vec<usize> = (0..3).filter(|&i| i != first).collect();
    let second = run.sole_leader_among(&others, run.ttl() + SLACK).await;
    loop {
        let event = stream.next_named("leader").await;
        if event.is_null() {
            continue;
        }
        assert_eq!(event["id"], run.nodes[second].name, "{event}");
        assert!(event["term"].as_u64().unwrap() > 0);
        break;
    }
    run.assert_safe();
}

both_apis!(the_watch_stream_delivers_each_leader_change);

/// What `electctl list -w` redraws on: a drain, an undrain, a candidate
/// joining and one leaving, each a `status` event with the whole
/// `/v1/status` body; nothing while nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_events_follow_every_change_a_list_shows() {
    let mut run = Run::new("v3", 2, 0).await;
    let env = [("ELECTD_ADMIN_TOKEN", TOKEN)];
    for name in ["a", "b", "c"] {
        run.spawn_with_env(name, NodeArgs::new(), &env);
    }
    for node in &run.nodes {
        node.wait_serving().await;
    }
    let leader = run.sole_leader(SLACK).await;
    let watched = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let other_id = run.nodes[other].name.clone();
    let mut stream = Stream::open(&run.nodes[watched], "").await;
    let first = stream
        .status_showing("all three", |s| {
            s["candidates"].as_array().is_some_and(|c| c.len() == 3)
        })
        .await;
    assert_eq!(first["id"], run.nodes[watched].name);
    assert_eq!(first["admin"], run.nodes[watched].url(), "{first}");

    let quiet = stream.during(Duration::from_millis(1500)).await;
    assert!(
        quiet.iter().all(|(name, _)| name != "status"),
        "status events while nothing changed: {quiet:?}"
    );

    let auth = format!("Bearer {TOKEN}");
    let drained = admin_post(&run.nodes[other], "/v1/drain", Some(&auth)).await;
    assert_eq!(drained.status, 200, "{}", drained.body);
    stream
        .status_showing("the drain", |s| {
            listed(s, &other_id).is_some_and(|c| c["drained"] == true)
        })
        .await;
    let undrained = admin_post(&run.nodes[other], "/v1/undrain", Some(&auth)).await;
    assert_eq!(undrained.status, 200, "{}", undrained.body);
    stream
        .status_showing("the undrain", |s| {
            listed(s, &other_id).is_some_and(|c| c["drained"] == false)
        })
        .await;

    let joined = run.spawn_with_env("d", NodeArgs::new(), &env);
    stream
        .status_showing("d joining", |s| listed(s, "d").is_some())
        .await;
    run.nodes[joined].terminate();
    stream
        .status_showing("d leaving", |s| {
            listed(s, "d").is_none() && s["candidates"].as_array().is_some_and(|c| c.len() == 3)
        })
        .await;
    run.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_choose_what_a_stream_sends() {
    let run = Run::new("v3", 2, 2).await;
    let leader = run.sole_leader(SLACK).await;
    let node = &run.nodes[leader];
    let mut leaders_only = Stream::open(node, "?events=leader").await;
    let mut statuses_only = Stream::open(node, "?events=status").await;
    let (name, data) = leaders_only.next().await;
    assert_eq!(
        (name.as_str(), &data["id"]),
        ("leader", &Value::from(node.name.clone()))
    );
    let (name, data) = statuses_only.next().await;
    assert_eq!(name, "status", "{data}");
    assert_eq!(data["role"], "leader", "{data}");
    // Leading ends: each stream sends only its kind.
    node.terminate();
    for (name, data) in leaders_only.during(Duration::from_secs(2)).await {
        assert_eq!(name, "leader", "{data}");
    }
    for (name, data) in statuses_only.during(Duration::from_secs(1)).await {
        assert_eq!(name, "status", "{data}");
    }
    let other = &run.nodes[(leader + 1) % 2];
    let bad = other.get("/v1/watch?events=leaders").await.unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.body.contains("leader, status and shards"),
        "{}",
        bad.body
    );
}

/// `?events=shards`: the whole map on connect, then a `shard` event for
/// each shard whose leader changes: a dead node's shards are seen going to
/// the other node, every one. Without `--shards` the stream is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_events_follow_every_move() {
    let mut run = Run::new("v3", 3, 0).await;
    for name in ["n0", "n1"] {
        run.spawn(name, NodeArgs::new().shards(20));
    }
    for node in &run.nodes {
        node.wait_serving().await;
    }
    let led_by =
        |map: &[Option<String>], id: &str| map.iter().filter(|l| l.as_deref() == Some(id)).count();
    let leader_of = |shard: &Value| shard["leader"]["id"].as_str().map(str::to_owned);
    // Settled first: 9 to 11 each (the bounds for 20 over 2), as n0 sees it.
    let node = &run.nodes[0];
    harness::eventually(SLACK, "the shards to settle", || async {
        let body: Value = serde_json::from_str(&node.get("/v1/shards").await?.body).ok()?;
        let counts: Vec<u64> = body["nodes"]
            .as_array()?
            .iter()
            .filter_map(|n| n["leads"].as_u64())
            .collect();
        let settled = counts.len() == 2 && counts.iter().all(|c| (9..=11).contains(c));
        (settled && counts.iter().sum::<u64>() == 20).then_some(())
    })
    .await;
    let mut stream = Stream::open(node, "?events=shards").await;
    let first = stream.next_named("shards").await;
    assert_eq!(first["count"], 20, "{first}");
    let mut map: Vec<Option<String>> = first["shards"]
        .as_array()
        .expect("every shard")
        .iter()
        .map(leader_of)
        .collect();
    // The bounds for 20 shards over 2 nodes are 9 to 11 each.
    assert_eq!(led_by(&map, "n0") + led_by(&map, "n1"), 20, "{first}");
    assert!((9..=11).contains(&led_by(&map, "n1")), "{first}");
    run.kill9_electd(1);
    let deadline = tokio::time::Instant::now() + SLACK;
    while led_by(&map, "n0") < 20 {
        let shard = tokio::time::timeout_at(deadline, stream.next_named("shard"))
            .await
            .unwrap_or_else(|_| panic!("n1's shards not all seen moving: {map:?}"));
        let k = shard["shard"].as_u64().expect("a shard number") as usize;
        map[k] = leader_of(&shard);
        if map[k].as_deref() == Some("n0") {
            assert_eq!(shard["self"], true, "{shard}");
        }
    }
    let plain = Run::new("v3", 3, 1).await;
    let refused = plain.nodes[0]
        .get("/v1/watch?events=shards")
        .await
        .expect("an answer");
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("--shards"), "{}", refused.body);
    run.assert_safe();
}
