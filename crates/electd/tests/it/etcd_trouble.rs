//! When etcd is missing, misconfigured or restarting, a node never claims
//! leadership, says exactly what is wrong (once in the log, and on
//! /healthz), keeps running, and recovers by itself.

use std::time::{Duration, Instant};

use harness::etcd::{Etcd, EtcdOptions};
use harness::node::{Node, NodeArgs};
use harness::{eventually, free_port};

use crate::common;
use crate::common::Run;

const SLACK: Duration = Duration::from_secs(8);

both_apis!(
    unreachable_etcd_is_reported_and_shutdown_still_exits_0,
    an_etcd_restart_interrupts_and_then_resumes_the_election,
);

async fn unreachable_etcd_is_reported_and_shutdown_still_exits_0(api: &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let args = NodeArgs::new().api(api).ttl(2).etcd([&nowhere]);
    let mut node = Node::spawn(common::electd(), dir.path(), "lonely", &args);
    node.wait_serving().await;
    let health = eventually(SLACK, "/healthz to say etcd is unreachable", || async {
        let h = node.get("/healthz").await?;
        (h.status == 503 && h.body.contains("etcd unreachable")).then_some(h)
    })
    .await;
    assert!(health.body.contains(&nowhere), "{}", health.body);
    assert_eq!(
        node.answer().await.unwrap(),
        "I am a follower and no leader is elected yet"
    );
    // Several retries later (backoff starts at 100 ms), still one line about
    // it: an observation window for something that must not happen, not a wait.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let complaints = node
        .output()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("etcd unreachable"))
        .count();
    assert_eq!(complaints, 1, "{}", node.output());
    let asked = Instant::now();
    node.signal(rustix::process::Signal::INT);
    let status = node.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
}

async fn an_etcd_restart_interrupts_and_then_resumes_the_election(api: &'static str) {
    let mut run = Run::new(api, 2, 2).await;
    run.sole_leader(SLACK).await;
    run.etcd.kill(0);
    // Without etcd nobody can prove a lease: no leader once deadlines pass.
    eventually(
        run.ttl() + SLACK,
        "every node to stop leading and report etcd",
        || async {
            for node in &run.nodes {
                if node.is_leader().await || node.get("/healthz").await?.status != 503 {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    run.etcd.restart(0);
    run.etcd.wait_healthy().await;
    run.sole_leader(run.ttl() * 2 + SLACK).await;
    for node in &run.nodes {
        eventually(SLACK, "healthz to recover", || async {
            (node.get("/healthz").await?.status == 200).then_some(())
        })
        .await;
    }
    run.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_disabled_on_etcd_says_how_to_enable_it() {
    let etcd = Etcd::start(EtcdOptions {
        v2: false,
        ..EtcdOptions::default()
    })
    .await;
    let run = Run::with_etcd(etcd, "v2", 2, 1).await;
    let node = &run.nodes[0];
    let health = eventually(SLACK, "/healthz to name the cause", || async {
        let h = node.get("/healthz").await?;
        (h.status == 503 && h.body.contains("v2 API disabled on etcd")).then_some(h)
    })
    .await;
    assert!(health.body.contains("--enable-v2=true"), "{}", health.body);
    assert!(health.body.contains("--api v3"), "{}", health.body);
    assert!(node.output().contains("--enable-v2=true"));
    assert!(!node.is_leader().await);
    assert!(run.journal(0).is_empty());
}
