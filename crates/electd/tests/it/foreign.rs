//! Keys electd did not write: put by hand (no lease, no TTL, garbage), a
//! forged value naming a live node, a key deleted by hand, etcd's own
//! election clients on the same prefix, and a leader of electd's earlier
//! layout. Nobody claims beside them, every node says the same thing about
//! them (the exact key, whether it expires, how to clear it), and the
//! election resumes once they are gone.

use std::process::Stdio;
use std::time::Duration;

use harness::etcd::{Etcd, binaries};
use harness::eventually;
use harness::node::NodeArgs;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use crate::common::{Run, SLACK, unhealthy, warned_once};

/// The v2 key of the default election.
const V2_KEY: &str = "leader";
/// The v3 leader record of the default election.
const RECORD: &str = "/electd/leader/~leader";

/// Starts `nodes` nodes on `etcd` as it is (with whatever someone put there).
async fn nodes_on(etcd: Etcd, api: &'static str, nodes: usize) -> Run {
    Run::with_etcd(etcd, api, 2, nodes).await
}

/// Every node reports the same foreign key on `/healthz` and `/v1/status`,
/// `/health/follower` is 503, and nobody leads.
async fn everyone_reports(run: &Run, key: &str, words: &[&str]) {
    for node in &run.nodes {
        let mut all = vec![key];
        all.extend_from_slice(words);
        unhealthy(node, &all).await;
        let status = node.status().await.expect("a status");
        assert_eq!(status["obstacle"]["kind"], "foreign_key", "{status}");
        assert_eq!(status["obstacle"]["key"], key, "{status}");
        assert_eq!(status["obstacle"]["blocking"], true, "{status}");
        assert_ne!(status["role"], "leader", "{status}");
        let follower = node.get("/health/follower").await.expect("an answer");
        assert_eq!(follower.status, 503, "{}: {}", node.name, follower.body);
        assert_eq!(node.get("/livez").await.map(|a| a.status), Some(200));
    }
}

/// Deletes `key` by hand: v2 `/leader`, v3 the whole key.
async fn delete(run: &Run, api: &str, key: &str) {
    match api {
        "v2" => {
            let url = format!("{}/v2/keys{key}", run.etcd.endpoint(0));
            let resp = harness::http()
                .build()
                .expect("a client")
                .delete(url)
                .send()
                .await
                .expect("an answer");
            assert!(resp.status().is_success(), "{}", resp.status());
        }
        _ => assert!(run.etcd.v3_delete(key, false).await),
    }
}

/// A key put by hand before any node starts: without a lease (v3) or a TTL
/// (v2) it never expires, so every node says so, names it, and says how to
/// remove it; once removed, the election resumes.
async fn a_key_put_by_hand_blocks_the_election_until_removed(api: &'static str) {
    let etcd = Etcd::single().await;
    let key = match api {
        "v2" => {
            assert!(etcd.v2_put(V2_KEY, "garbage").await < 300);
            format!("/{V2_KEY}")
        }
        _ => {
            assert!(etcd.v3_put("/electd/leader/zzz", "garbage").await);
            "/electd/leader/zzz".to_owned()
        }
    };
    let run = nodes_on(etcd, api, 3).await;
    let remove = if api == "v2" {
        "etcdctl rm"
    } else {
        "etcdctl del"
    };
    everyone_reports(&run, &key, &["never expires", remove]).await;
    for node in &run.nodes {
        assert_eq!(
            node.answer().await.as_deref(),
            Some("I am a follower and the leader is unknown")
        );
        warned_once(node, &key);
    }
    delete(&run, api, &key).await;
    run.sole_leader(run.ttl() + SLACK).await;
    for node in &run.nodes {
        eventually(SLACK, "/healthz to be fine again", || async {
            (node.get("/healthz").await?.status == 200).then_some(())
        })
        .await;
    }
    run.assert_safe();
}

/// A value in electd's format naming a live node. v3: a record put by
/// hand is bound to no lease, so nobody trusts it; one bound to a lease
/// that matches its value cannot be told from a real one by the others,
/// but the node it names denies it. v2: a value with a TTL cannot be
/// checked by the others; the named node denies it.
async fn a_forged_value_naming_a_live_node_is_never_its_leadership(api: &'static str) {
    let etcd = Etcd::single().await;
    let mut run = nodes_on(etcd, api, 0).await;
    let n1 = run.spawn("n1", NodeArgs::new());
    let n2 = run.spawn("n2", NodeArgs::new());
    run.nodes[n1].wait_serving().await;
    run.nodes[n2].wait_serving().await;
    let leader = run.sole_leader(SLACK).await;
    // Everyone steps aside: the forged value is all there is.
    for i in [n1, n2] {
        run.nodes[i].terminate();
        run.nodes[i].wait_exit(SLACK).await;
    }
    let _ = leader;
    let advertise = "http://127.0.0.1:1";
    let mut forged_lease = None;
    match api {
        "v2" => {
            let forged = format!(r#"{{"id":"n1","advertise":"{advertise}"}}"#);
            let url = format!("{}/v2/keys/{V2_KEY}", run.etcd.endpoint(0));
            let resp = harness::http()
                .build()
                .expect("a client")
                .put(url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(format!(
                    "value={}&ttl=30",
                    harness::wire::form_escape(&forged)
                ))
                .send()
                .await
                .expect("an answer");
            assert!(resp.status().is_success());
        }
        _ => {
            // Bound to a lease that matches its value: as good as real to others.
            let lease = run.etcd.v3_grant(30).await;
            let forged = format!(
                r#"{{"id":"n1","advertise":"{advertise}","nonce":"x","lease":"{lease:x}"}}"#
            );
            assert!(run.etcd.v3_put_with_lease(RECORD, &forged, lease).await);
            forged_lease = Some(lease);
        }
    }
    run.restart(n1, NodeArgs::new(), &[]);
    run.restart(n2, NodeArgs::new(), &[]);
    run.nodes[n1].wait_serving().await;
    run.nodes[n2].wait_serving().await;
    // n2 cannot tell; n1 denies.
    eventually(SLACK, "n2 to name n1 as leader", || async {
        let status = run.nodes[n2].status().await?;
        (status["leader"]["id"] == "n1").then_some(())
    })
    .await;
    let key = if api == "v2" {
        format!("/{V2_KEY}")
    } else {
        RECORD.to_owned()
    };
    unhealthy(&run.nodes[n1], &[&key, "names this node"]).await;
    let status = run.nodes[n1].status().await.expect("a status");
    assert_eq!(status["role"], "follower", "{status}");
    assert_eq!(status["leader"]["verified"], false, "{status}");
    assert_eq!(
        run.nodes[n1].answer().await.as_deref(),
        Some("I am a follower and the leader is unknown")
    );
    assert_eq!(
        run.nodes[n1].get("/health/leader").await.map(|a| a.status),
        Some(503)
    );
    if api == "v3" {
        // Put by hand with no lease at all: nobody trusts it.
        assert!(
            run.etcd
                .v3_put(RECORD, r#"{"id":"n2","advertise":"x"}"#)
                .await
        );
        for i in [n1, n2] {
            unhealthy(&run.nodes[i], &[RECORD, "never expires"]).await;
            let status = run.nodes[i].status().await.expect("a status");
            assert_eq!(status["leader"]["verified"], false, "{status}");
        }
    }
    delete(&run, api, &key).await;
    // Whoever holds the forged record's lease may think it leads: the
    // election waits for that lease, and goes on once it is revoked.
    if let Some(lease) = forged_lease {
        assert!(run.etcd.v3_revoke(lease).await);
    }
    run.sole_leader(run.ttl() + SLACK).await;
    run.assert_safe();
}

/// Someone deletes only the leader record (v3) or the key (v2). The old
/// leader stops at once but keeps its lease until it expires; the others
/// all say they wait for it, and only then does the next one lead.
async fn the_leader_record_deleted_by_hand_is_waited_out(api: &'static str) {
    let run = Run::new(api, 2, 3).await;
    let leader = run.sole_leader(SLACK).await;
    let term = run.nodes[leader].status().await.expect("a status")["term"]
        .as_u64()
        .expect("a term");
    let key = if api == "v2" {
        format!("/{V2_KEY}")
    } else {
        RECORD.to_owned()
    };
    delete(&run, api, &key).await;
    let deleted_at = harness::now_ns();
    if api == "v3" {
        // Every node sees the same wait: the old leader's lease, still alive.
        for node in &run.nodes {
            eventually(SLACK, "every node to say what it waits for", || async {
                let status = node.status().await?;
                let waiting = status["obstacle"]["kind"] == "waiting"
                    && status["obstacle"]["lease"].is_string();
                waiting.then_some(())
            })
            .await;
        }
    }
    let next = eventually(run.ttl() * 2 + SLACK, "a new term", || async {
        let i = run.sole_leader(SLACK).await;
        let t = run.nodes[i].status().await?["term"].as_u64()?;
        (t > term).then_some(i)
    })
    .await;
    let ended = run
        .journal(leader)
        .into_iter()
        .find(|r| r["event"] == "ended")
        .expect("the old leader ended");
    assert_eq!(ended["reason"], "lost");
    // The successor started only after the old leader's deadline.
    let report = run.assert_safe();
    let old = report
        .intervals
        .iter()
        .find(|i| i.term == term)
        .expect("the old leadership");
    let new = report
        .intervals
        .iter()
        .find(|i| i.id == run.nodes[next].name && i.term > term)
        .expect("the new leadership");
    assert!(new.start_ns > deleted_at && new.start_ns > old.end_ns);
}

/// What `etcdctl elect` prints, line by line: its key and proposal once it leads.
pub type Said = Lines<BufReader<ChildStdout>>;

/// Starts `etcdctl elect /electd/leader PROPOSAL` (etcd's own election
/// client, the old oldest-key rule), killed on drop, and what it prints.
pub fn etcdctl_elect_client(etcd: &Etcd, proposal: &str) -> (Child, Said) {
    let mut child = tokio::process::Command::new(&binaries().etcdctl)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", etcd.endpoint(0)))
        .args(["elect", "/electd/leader", proposal])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("etcdctl runs");
    let stdout = child.stdout.take().expect("its stdout");
    (child, BufReader::new(stdout).lines())
}

/// Starts `etcdctl elect NAME PROPOSAL` and waits until it says it leads.
async fn etcdctl_elect(etcd: &Etcd, proposal: &str) -> Child {
    let (child, mut lines) = etcdctl_elect_client(etcd, proposal);
    tokio::time::timeout(SLACK, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(proposal) {
                return;
            }
        }
    })
    .await
    .expect("etcdctl elect to lead");
    child
}

/// etcd's own election client leads the prefix: electd never claims beside
/// it. When it resigns it deletes its key but keeps its lease: every node
/// says it waits for that lease and until when, and leads once it is gone.
/// A client that joins once electd has laid its anchor never leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcds_own_election_clients_never_lead_beside_electd() {
    let etcd = Etcd::single().await;
    let mut client = etcdctl_elect(&etcd, "the-proposal").await;
    let run = nodes_on(etcd, "v3", 3).await;
    let key = run
        .etcd
        .v3_keys("/electd/leader/")
        .await
        .into_iter()
        .find(|k| !k.contains('~'))
        .expect("etcdctl's key");
    everyone_reports(&run, &key, &["etcd election client", "etcdctl del"]).await;
    for node in &run.nodes {
        assert!(
            node.journal.metadata().map_or(true, |m| m.len() == 0),
            "{} led",
            node.name
        );
    }
    // SIGINT: etcdctl resigns (deletes its key) and exits; its lease lives on.
    let pid = rustix::process::Pid::from_raw(client.id().expect("a pid") as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("a signal");
    let _ = tokio::time::timeout(SLACK, client.wait()).await;
    let lease = key.rsplit('/').next().expect("a lease").to_owned();
    for node in &run.nodes {
        eventually(
            SLACK,
            "every node to say it waits for the lease",
            || async {
                let status = node.status().await?;
                let obstacle = &status["obstacle"];
                let waiting = obstacle["kind"] == "waiting"
                    && obstacle["lease"] == lease.as_str()
                    && obstacle["expires_in_s"].as_f64()? > 0.0;
                waiting.then_some(())
            },
        )
        .await;
        assert_eq!(
            node.get("/healthz").await.map(|a| a.status),
            Some(200),
            "a wait is not a fault"
        );
    }
    for node in &run.nodes {
        assert!(
            !node.is_leader().await,
            "{} led before the lease went",
            node.name
        );
        eventually(SLACK, "the wait to be logged", || async {
            node.output()
                .lines()
                .any(|l| l.contains("WARN") && l.contains(&lease) && l.contains("expires"))
                .then_some(())
        })
        .await;
    }
    // Revoking the lease ends the wait at once.
    run.etcd.etcdctl("v3", &["lease", "revoke", &lease]);
    let leader = run.sole_leader(SLACK).await;
    // A client that comes now sees electd's anchor ahead of it: it never leads.
    let (mut late, mut lines) = etcdctl_elect_client(&run.etcd, "too-late");
    let said = tokio::time::timeout(Duration::from_secs(3), lines.next_line()).await;
    assert!(said.is_err(), "a late etcdctl elect was elected: {said:?}");
    assert_eq!(run.sole_leader(SLACK).await, leader);
    let _ = late.kill().await;
    run.assert_safe();
}

/// A leader of electd's earlier layout (its key `<prefix><lease hex>`, the
/// oldest under the prefix) leads by its rule: the new nodes follow it and
/// never lead beside it; once it is gone, they lay the anchor and lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_of_the_earlier_layout_is_followed_until_it_leaves() {
    let etcd = Etcd::single().await;
    let lease = etcd.v3_grant(60).await;
    let key = format!("/electd/leader/{lease:x}");
    assert!(
        etcd.v3_put_with_lease(
            &key,
            r#"{"id":"old","advertise":"http://127.0.0.1:7"}"#,
            lease
        )
        .await
    );
    let run = nodes_on(etcd, "v3", 3).await;
    for node in &run.nodes {
        eventually(SLACK, "every node to follow the old leader", || async {
            let answer = node.answer().await?;
            (answer == "I am a follower and the leader is on port 7").then_some(())
        })
        .await;
        let follower = node.get("/health/follower").await.expect("an answer");
        assert_eq!(follower.status, 200, "{}", follower.body);
    }
    // It leaves (its lease is revoked, as a resign does): the new nodes take over.
    assert!(run.etcd.v3_revoke(lease).await);
    run.sole_leader(SLACK).await;
    let keys = run.etcd.v3_keys("/electd/leader/").await;
    assert!(keys.iter().any(|k| k.ends_with("~anchor")), "{keys:?}");
    run.assert_safe();
}

/// A `~transfer` someone else wrote is no hand-over of ours: while it
/// exists nobody may take the leader record (a real transfer must never be
/// overtaken), so every node names it once the leader steps down; removed,
/// the election goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_record_put_by_hand_blocks_the_election_until_removed() {
    let mut run = nodes_on(Etcd::single().await, "v3", 0).await;
    let env = [("ELECTD_ADMIN_TOKEN", "t0ken")];
    for i in 0..2 {
        run.spawn_with_env(&format!("n{i}"), NodeArgs::new(), &env);
    }
    for node in &run.nodes {
        node.wait_serving().await;
    }
    let leader = run.sole_leader(SLACK).await;
    let key = "/electd/leader/~transfer";
    assert!(run.etcd.v3_put(key, "garbage").await);
    let resigned = run.nodes[leader]
        .request(
            reqwest::Method::POST,
            "/v1/resign",
            &[("Authorization", "Bearer t0ken")],
        )
        .await
        .expect("an answer");
    assert_eq!(resigned.status, 200, "{}", resigned.body);
    everyone_reports(&run, key, &["never expires", "etcdctl del"]).await;
    assert!(run.etcd.v3_delete(key, false).await);
    run.sole_leader(run.ttl() + SLACK).await;
    run.assert_safe();
}

both_apis!(
    a_key_put_by_hand_blocks_the_election_until_removed,
    a_forged_value_naming_a_live_node_is_never_its_leadership,
    the_leader_record_deleted_by_hand_is_waited_out,
);
