//! The election against a real etcd with real electd processes, for both
//! APIs: election, crash failover, hand-over, pauses, foreign writes. Every
//! test ends with the journal checker.

use std::time::{Duration, Instant};

use harness::eventually;
use harness::node::NodeArgs;

use crate::common::Run;

/// Generous: these tests prove behaviour, the benchmarks measure speed.
const SLACK: Duration = Duration::from_secs(8);

both_apis!(
    three_nodes_elect_one_leader_and_the_followers_name_it,
    a_killed_leader_is_replaced_after_its_ttl,
    sigterm_hands_over_long_before_the_ttl,
    a_leader_paused_past_its_ttl_is_replaced_and_wakes_as_a_follower,
    a_foreign_value_in_the_leader_key_makes_the_leader_unknown,
    the_leader_key_deleted_by_someone_else,
    an_observer_never_leads_and_names_the_leader,
);

async fn three_nodes_elect_one_leader_and_the_followers_name_it(api: &'static str) {
    let run = Run::new(api, 2, 3).await;
    let leader = run.sole_leader(SLACK).await;
    // The others name the leader once they read the election, which may be
    // a moment before the leader's watch brings it their keys.
    let listed = if api == "v3" { 3 } else { 1 };
    let status = eventually(SLACK, "the leader to list every candidate", || async {
        let status = run.nodes[leader].status().await?;
        (status["candidates"].as_array()?.len() == listed).then_some(status)
    })
    .await;
    assert_eq!(status["role"], "leader");
    assert_eq!(status["api"], api);
    assert_eq!(status["election"], "leader");
    let term = status["term"].as_u64().expect("a term");
    assert_eq!(status["leader"]["term"], term);
    assert_eq!(status["leader"]["id"], run.nodes[leader].name);
    assert_eq!(status["candidates"][0]["id"], run.nodes[leader].name);
    for (i, node) in run.nodes.iter().enumerate() {
        if i == leader {
            continue;
        }
        let status = node.status().await.unwrap();
        assert_eq!(status["role"], "follower");
        assert_eq!(status["term"], term);
        assert_eq!(status["leader"]["advertise"], run.nodes[leader].url());
        let health = node.get("/healthz").await.unwrap();
        assert_eq!(health.status, 200, "{}", health.body);
    }
    assert_eq!(run.nodes[0].get("/nowhere").await.unwrap().status, 404);
    let wrong = run.nodes[0]
        .request(reqwest::Method::DELETE, "/", &[])
        .await
        .unwrap();
    assert_eq!(wrong.status, 405);
    run.assert_safe();
}

async fn a_killed_leader_is_replaced_after_its_ttl(api: &'static str) {
    let mut run = Run::new(api, 2, 3).await;
    let old = run.sole_leader(SLACK).await;
    let old_term = run.nodes[old].status().await.unwrap()["term"]
        .as_u64()
        .unwrap();
    let killed = Instant::now();
    run.kill9(old);
    let new = run.sole_leader(run.ttl() + SLACK).await;
    let took = killed.elapsed();
    assert_ne!(new, old);
    let new_term = run.nodes[new].status().await.unwrap()["term"]
        .as_u64()
        .unwrap();
    assert!(new_term > old_term, "{new_term} > {old_term}");
    eprintln!(
        "{api}: crash failover took {took:?} with TTL {:?}",
        run.ttl()
    );
    run.assert_safe();
}

async fn sigterm_hands_over_long_before_the_ttl(api: &'static str) {
    // A long TTL makes "long before" unmistakable.
    let mut run = Run::new(api, 10, 3).await;
    let old = run.sole_leader(SLACK).await;
    let others: Vec<usize> = run.alive().into_iter().filter(|&i| i != old).collect();
    let asked = Instant::now();
    run.nodes[old].terminate();
    let new = run.sole_leader_among(&others, Duration::from_secs(3)).await;
    let took = asked.elapsed();
    let status = run.nodes[old].wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert!(took < run.ttl() / 2, "hand-over took {took:?}");
    assert_ne!(new, old);
    let last = run.journal(old).pop().unwrap();
    assert_eq!(last["event"], "ended");
    assert_eq!(last["reason"], "shutdown");
    eprintln!("{api}: SIGTERM hand-over observed within {took:?}");
    run.assert_safe();
}

async fn a_leader_paused_past_its_ttl_is_replaced_and_wakes_as_a_follower(api: &'static str) {
    let run = Run::new(api, 2, 3).await;
    let old = run.sole_leader(SLACK).await;
    let others: Vec<usize> = run.alive().into_iter().filter(|&i| i != old).collect();
    run.nodes[old].pause();
    let new = run.sole_leader_among(&others, run.ttl() + SLACK).await;
    run.nodes[old].resume();
    let first = run.nodes[old].answer().await.unwrap();
    assert!(
        first.starts_with("I am a follower"),
        "first answer after waking: {first}"
    );
    eventually(SLACK, "the old leader to name the new one", || async {
        let answer = run.nodes[old].answer().await?;
        answer
            .ends_with(&format!("port {}", run.nodes[new].port))
            .then_some(())
    })
    .await;
    run.sole_leader(SLACK).await;
    run.assert_safe();
}

async fn a_foreign_value_in_the_leader_key_makes_the_leader_unknown(api: &'static str) {
    let run = Run::new(api, 2, 3).await;
    let leader = run.sole_leader(SLACK).await;
    let key = match api {
        "v2" => "leader".to_owned(),
        _ => {
            // The leader's key is the one whose create_revision is the term.
            let term = run.nodes[leader].status().await.unwrap()["term"].as_u64();
            let mut leader_key = None;
            for key in run.etcd.v3_keys("/electd/leader/").await {
                if run.etcd.v3_create_revision(&key).await == term {
                    leader_key = Some(key);
                }
            }
            leader_key.expect("the leader's key")
        }
    };
    match api {
        "v2" => assert!(run.etcd.v2_put(&key, "not electd's").await < 300),
        _ => assert!(run.etcd.v3_put(&key, "not electd's").await),
    }
    // The leader steps down at its next renewal at the latest; nobody leads a
    // key it cannot read, and everyone says the leader is unknown.
    eventually(
        run.ttl() + SLACK,
        "everyone to report an unknown leader",
        || async {
            for node in &run.nodes {
                if node.answer().await? != "I am a follower and the leader is unknown" {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let ended = run
        .journal(leader)
        .into_iter()
        .rfind(|r| r["event"] == "ended");
    assert_eq!(ended.unwrap()["reason"], "lost");
    let status = run.nodes[leader].status().await.unwrap();
    assert_eq!(status["leader"]["id"], serde_json::Value::Null);
    assert!(status["leader"]["term"].is_u64());
    // Once the foreign key is gone, the election resumes.
    match api {
        "v2" => {
            let url = format!("{}/v2/keys/leader", run.etcd.endpoint(0));
            harness::http()
                .build()
                .unwrap()
                .delete(url)
                .send()
                .await
                .unwrap();
        }
        _ => assert!(run.etcd.v3_delete(&key, false).await),
    }
    run.sole_leader(run.ttl() + SLACK).await;
    run.assert_safe();
}

async fn the_leader_key_deleted_by_someone_else(api: &'static str) {
    let run = Run::new(api, 2, 3).await;
    let leader = run.sole_leader(SLACK).await;
    let term = run.nodes[leader].status().await.unwrap()["term"]
        .as_u64()
        .unwrap();
    match api {
        "v2" => {
            let url = format!("{}/v2/keys/leader", run.etcd.endpoint(0));
            let resp = harness::http()
                .build()
                .unwrap()
                .delete(url)
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success());
        }
        _ => assert!(run.etcd.v3_delete("/electd/leader/", true).await),
    }
    // Someone leads again, with a larger term; the old leader stepped down.
    let next = eventually(run.ttl() + SLACK, "a new term", || async {
        let i = run.sole_leader(SLACK).await;
        let t = run.nodes[i].status().await?["term"].as_u64()?;
        (t > term).then_some(i)
    })
    .await;
    let ended = run
        .journal(leader)
        .into_iter()
        .find(|r| r["event"] == "ended");
    assert_eq!(ended.unwrap()["reason"], "lost");
    eprintln!("{api}: after the foreign delete, n{next} leads");
    run.assert_safe();
}

async fn an_observer_never_leads_and_names_the_leader(api: &'static str) {
    let mut run = Run::new(api, 2, 2).await;
    let observer = run.spawn("observer", NodeArgs::new().observe());
    run.nodes[observer].wait_serving().await;
    let leader = run.sole_leader_among(&[0, 1], SLACK).await;
    let expected = format!(
        "I am an observer and the leader is on port {}",
        run.nodes[leader].port
    );
    eventually(SLACK, "the observer to name the leader", || async {
        (run.nodes[observer].answer().await? == expected).then_some(())
    })
    .await;
    let status = run.nodes[observer].status().await.unwrap();
    assert_eq!(status["role"], "observer");
    assert_eq!(status["leader"]["id"], run.nodes[leader].name);
    // Kill the leader: the observer follows the change and still never leads.
    run.kill9(leader);
    let other = 1 - leader;
    let expected = format!(
        "I am an observer and the leader is on port {}",
        run.nodes[other].port
    );
    eventually(
        run.ttl() + SLACK,
        "the observer to follow the change",
        || async { (run.nodes[observer].answer().await? == expected).then_some(()) },
    )
    .await;
    assert!(
        run.journal(observer).is_empty(),
        "an observer never journals a leadership"
    );
    run.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_live_v3_candidates_with_one_id_are_reported() {
    let mut run = Run::new("v3", 2, 0).await;
    let first = run.spawn("twin-a", NodeArgs::new().id("twin"));
    run.nodes[first].wait_serving().await;
    run.sole_leader(SLACK).await;
    let second = run.spawn("twin-b", NodeArgs::new().id("twin"));
    let warning = "another live candidate uses the same id";
    let line = eventually(SLACK, "the misconfiguration to be logged", || async {
        run.nodes[second]
            .output()
            .lines()
            .find(|l| l.contains(warning))
            .map(str::to_owned)
    })
    .await;
    // Both advertise URLs are named.
    assert!(line.contains(&run.nodes[first].url()), "{line}");
    assert!(line.contains(&run.nodes[second].url()), "{line}");
    run.assert_safe();
}
