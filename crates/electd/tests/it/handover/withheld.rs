//! Where nobody may be handed the record in one write: no anchor (a key of
//! the old oldest-key rule could lead), or a node of the previous release
//! queued (it would misread a handed-over record). The leader releases as
//! before and the next takes the record itself (`handover::withheld::*`).

use super::*;

/// With the anchor gone and a key of the old rule in the election (etcd's
/// own election client, `etcdctl elect`), only the oldest key may lead:
/// nobody is handed the record; the leader revokes (one write) and the
/// oldest candidate takes it (the next); the election client never leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_anchor_nobody_is_handed_the_record() {
    let mut s = Steered::new("v3", TTL).await;
    s.line_up((0..3).map(|_| Opts::default())).await;
    settled(&s.run, &[0, 1, 2], 3).await;
    // The old rule's key first: with none, the leader lays the anchor again.
    let (mut client, mut said) = etcdctl_elect_client(&s.run.etcd, "the-old-rule");
    eventually(SLACK, "etcdctl elect's key", || async {
        let keys = s.run.etcd.v3_keys("/electd/leader/").await;
        keys.iter().any(|k| !k.contains('~')).then_some(())
    })
    .await;
    assert!(s.run.etcd.v3_delete(ANCHOR, false).await);
    for (leader, next) in [(0, 1), (1, 2)] {
        let before = s.run.etcd.v3_revision().await;
        s.run.nodes[leader].terminate();
        assert_eq!(s.run.sole_leader_among(&[next], SLACK).await, next);
        assert_term(&s.run, next, before, 2).await;
        let status = s.run.nodes[leader].wait_exit(SLACK).await;
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    }
    let run = &s.run;
    assert_eq!(
        run.etcd.v3_get(ANCHOR, None).await,
        None,
        "the anchor laid beside an old-rule key"
    );
    let elected = tokio::time::timeout(Duration::from_millis(100), said.next_line()).await;
    assert!(elected.is_err(), "etcdctl elect was elected: {elected:?}");
    let _ = client.kill().await;
    s.assert_safe();
}

/// A candidate of the previous release (its value lacks `accepts_record`)
/// in the queue: nobody is handed the record while it is there (the leader
/// revokes, the next takes the record itself), and no record ever carries
/// its value. Once it is gone, hand-overs are one write again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_node_of_the_previous_release_queued_nobody_is_handed_the_record() {
    let mut s = Steered::new("v3", TTL).await;
    s.line_up((0..3).map(|_| Opts::default())).await;
    settled(&s.run, &[0, 1, 2], 3).await;
    let run = &s.run;
    let etcd = &run.etcd;
    let lease = queue_previous_release(etcd).await;
    let old = format!("{QUEUE}{lease:x}");
    let queued = etcd.v3_get(&old, None).await.expect("the old node's key");
    let order = settled(run, &[0, 1, 2], 4).await;
    assert_eq!(order, ["n0", "n1", "n2", "old"]);
    let start = etcd.v3_revision().await;
    run.nodes[0].terminate();
    assert_eq!(run.sole_leader_among(&[1, 2], SLACK).await, 1);
    assert_term(run, 1, start, 2).await;
    assert_eq!(etcd.v3_get(&old, None).await, Some(queued));
    let now = etcd.v3_revision().await;
    for revision in start..=now {
        if let Some(record) = etcd.v3_get(RECORD, Some(revision)).await {
            assert!(
                !record.value.contains("\"old\""),
                "at {revision}: {record:?}"
            );
        }
    }
    // Gone: one write again.
    assert!(etcd.v3_revoke(lease).await);
    settled(run, &[1, 2], 2).await;
    let before = etcd.v3_revision().await;
    run.nodes[1].terminate();
    assert_eq!(run.sole_leader_among(&[2], SLACK).await, 2);
    assert_term(run, 2, before, 1).await;
    s.assert_safe();
}

/// The value a candidate of the previous release writes: no `accepts_record`.
const PREVIOUS_RELEASE: &str = r#"{"id":"old","advertise":"http://127.0.0.1:7","nonce":"0ld","priority":0,"healthy":true,"drained":false}"#;

/// Queues a candidate of the previous release, last in line, its lease
/// alive for two minutes; its lease.
pub(super) async fn queue_previous_release(etcd: &Etcd) -> i64 {
    let lease = etcd.v3_grant(120).await;
    let key = format!("{QUEUE}{lease:x}");
    assert!(etcd.v3_put_with_lease(&key, PREVIOUS_RELEASE, lease).await);
    lease
}
