//! `electctl shards` on a real sharded election.

use harness::eventually;
use harness::node::{Node, NodeArgs};
use serde_json::Value;

use crate::cluster::{Cluster, Following, SLACK, TOKEN};

/// What node `node` answers at `/v1/shards`, once every one of `count`
/// shards is led and each of `nodes` leads between `lower` and `upper`.
async fn settled_shards(
    cluster: &Cluster,
    node: &str,
    count: usize,
    nodes: usize,
    (lower, upper): (u64, u64),
) -> Value {
    eventually(SLACK, "every shard led, spread evenly", || async {
        let answer = cluster.node(node).get("/v1/shards").await?;
        let body: Value = serde_json::from_str(&answer.body).ok()?;
        let loads: Vec<u64> = body["nodes"]
            .as_array()?
            .iter()
            .filter_map(|n| n["leads"].as_u64())
            .collect();
        let spread = loads.len() == nodes && loads.iter().all(|l| (lower..=upper).contains(l));
        (spread && loads.iter().sum::<u64>() == count as u64 && body["leaderless"] == 0)
            .then_some(body)
    })
    .await
}

/// The last whole JSON line `following` printed.
fn last_json(following: &Following) -> Option<Value> {
    let text = following.output();
    let line = text.lines().rfind(|l| l.ends_with('}'))?;
    serde_json::from_str(line).ok()
}

/// `electctl shards` on a real sharded election: the counts per node and
/// each shard's leader as the node's `/v1/shards` has them, in the table
/// and in JSON; an election without shards refused with a sentence; and
/// `-w` seeing a dead node's shards move to the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_shows_the_map_the_counts_and_the_moves() {
    const COUNT: usize = 30;
    let names = ["s0", "s1", "s2"];
    let mut cluster =
        Cluster::start_with("v3", &names, false, NodeArgs::new().shards(COUNT as u32)).await;
    // 30 over 3: 9 to 11 each (issue 22's bounds).
    let body = settled_shards(&cluster, "s0", COUNT, 3, (9, 11)).await;

    // JSON: every shard, the counts per node, as /v1/shards has them
    // (settled: nothing moves between the two answers).
    let json = cluster.ctl("s0", &["shards", "-o", "json"]).await;
    assert_eq!(json.status, Some(0), "{json:?}");
    let json = json.json();
    assert_eq!(json["node"], "s0", "{json}");
    assert_eq!(json["count"], COUNT, "{json}");
    assert_eq!(json["leaderless"], 0, "{json}");
    assert_eq!(json["nodes"], body["nodes"], "{json}");
    assert_eq!(json["moves"], serde_json::json!([]), "{json}");
    let shards = json["shards"].as_array().expect("shards");
    assert_eq!(shards.len(), COUNT, "{json}");
    for (ours, theirs) in shards
        .iter()
        .zip(body["shards"].as_array().expect("shards"))
    {
        assert_eq!(ours["shard"], theirs["shard"]);
        assert_eq!(ours["leader"], theirs["leader"]["id"]);
        assert_eq!(ours["term"], theirs["term"]);
    }

    // The table: the header, a row per node with its count, the first 20
    // shards and what --all adds.
    let table = cluster.ctl("s1", &["shards"]).await;
    assert_eq!(table.status, Some(0), "{table:?}");
    assert!(
        table.stdout.starts_with(
            "Shards      30 (as s1 sees it)
Leaderless  0
"
        ),
        "{table:?}"
    );
    for node in body["nodes"].as_array().expect("nodes") {
        let row = format!(
            "{}    {}
",
            node["id"].as_str().expect("an id"),
            node["leads"]
        );
        assert!(table.stdout.contains(&row), "{row:?} not in {table:?}");
    }
    let first = &body["shards"][0];
    let row = format!(
        "0      {}      {}
",
        first["leader"]["id"].as_str().expect("an id"),
        first["term"]
    );
    assert!(table.stdout.contains(&row), "{row:?} not in {table:?}");
    assert!(
        table.stdout.contains("… 10 more: electctl shards --all"),
        "{table:?}"
    );
    let all = cluster.ctl("s1", &["shards", "--all"]).await;
    assert_eq!(all.status, Some(0), "{all:?}");
    assert!(
        all.stdout.lines().any(|l| l.starts_with("29     s")),
        "{all:?}"
    );
    assert!(!all.stdout.contains("more:"), "{all:?}");

    // An election without shards: a sentence and exit 1, for the map and
    // for -w alike.
    let plain = Node::spawn_with_env(
        &harness::workspace_binary("electd", "electd"),
        cluster.dir.path(),
        "plain",
        &NodeArgs::new()
            .ttl(2)
            .election("unsharded")
            .etcd(cluster.etcd.endpoints()),
        &[("ELECTD_ADMIN_TOKEN", TOKEN)],
    );
    plain.wait_serving().await;
    cluster.nodes.push(plain);
    for args in [
        &["shards"][..],
        &["shards", "-w"],
        &["-o", "json", "shards"],
    ] {
        cluster
            .ctl("plain", args)
            .await
            .refused(1, "has no shards: start every node with --shards N");
    }

    // -w, in JSON and as a table: s2's electd dies, its guardian releases
    // its shards, and s0 and s1 take them: the moves are seen.
    let json = cluster.follow("shards-json", "s0", &["shards", "-w", "-o", "json"]);
    let table = cluster.follow("shards-table", "s1", &["shards", "-w"]);
    eventually(SLACK, "the first maps", || async {
        (last_json(&json).is_some() && table.output().contains("SHARD  LEADER  TERM")).then_some(())
    })
    .await;
    let s2 = cluster
        .nodes
        .iter()
        .position(|n| n.name == "s2")
        .expect("s2");
    cluster.nodes[s2].kill9_electd();
    let seen = eventually(SLACK, "every shard of s2 seen moving", || async {
        let last = last_json(&json)?;
        let nodes = last["nodes"].as_array()?;
        let moved = last["moves"]
            .as_array()?
            .iter()
            .filter(|m| m["from"] == "s2")
            .count();
        let gone = nodes.iter().all(|n| n["id"] != "s2");
        (gone && moved > 0 && last["leaderless"] == 0).then_some(last)
    })
    .await;
    let counts: u64 = seen["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["leads"].as_u64())
        .sum();
    assert_eq!(counts, COUNT as u64, "{seen}");
    for moved in seen["moves"].as_array().expect("moves") {
        assert!(
            moved["to"] == "s0" || moved["to"] == "s1",
            "a move to a dead node: {seen}"
        );
        assert!(
            moved["term"].as_u64().is_some() && moved["at"].is_string(),
            "{seen}"
        );
    }
    let moves = eventually(SLACK, "a move from s2 in the table", || async {
        let text = table.output();
        let moves = text.rsplit("Recent moves, newest first:\n").next()?;
        moves
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(2) == Some("s2"))
            .then(|| moves.to_owned())
    })
    .await;
    eprintln!("shards: the first map:\n{}", all.stdout);
    eprintln!("shards -w: the last moves seen:\n{moves}");
}
