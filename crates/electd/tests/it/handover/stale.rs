//! The one write against a stale reading: what changes between the
//! departing leader's reading and its write fails the write, and the
//! ordinary succession goes on (`handover::stale::*`).

use super::*;

/// How late the departing leader hears of etcd's changes (its watch and
/// every answer to it): long enough that the change made just before it
/// departs is not in its reading, well under a third of the TTL.
const LATE: Duration = Duration::from_millis(500);

/// What changes between the departing leader's reading and its write.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// The successor is drained (its key rewritten).
    Drained,
    /// The successor turns unhealthy (its key rewritten).
    Unhealthy,
    /// The successor shuts down (SIGTERM: its lease revoked).
    ShutDown,
    /// The successor's electd is killed (its guardian revokes its lease).
    KilledElectd,
    /// Someone rewrites the successor's key, same value, same lease.
    KeyRewritten,
    /// Someone rewrites the record, same value, same lease.
    RecordRewritten,
    /// A node of the previous release queues (last in line).
    PreviousReleaseQueued,
}

/// n0 leads over n1 and n2, and hears of etcd's changes late; `change`
/// happens, then n0 gets SIGTERM. Its one write compares what it read
/// (the record unchanged and bound to its lease, the successor's key
/// unchanged): it fails, nothing is overwritten, n0 revokes its lease (one
/// write) and whose turn it is takes the record itself (the next): a
/// successor that changed is not handed the record.
async fn a_stale_reading_fails_the_one_write(change: Change) {
    let run = Run::faulty(Etcd::single().await, "v3", TTL, 0).await;
    let mut s = Steered::with_run(run);
    let switch = HealthSwitch::start(true);
    let debug = vec![("RUST_LOG", "info,elect::backend::v3=debug")];
    s.line_up([
        Opts {
            env: debug,
            ..Opts::default()
        },
        Opts {
            health: Some(&switch),
            ..Opts::default()
        },
        Opts::default(),
    ])
    .await;
    let (leader, successor, third) = (0, 1, 2);
    let order = settled(&s.run, &[0, 1, 2], 3).await;
    assert_eq!(order, ["n0", "n1", "n2"]);
    for proxy in s.run.link(leader) {
        proxy.set(
            Direction::Downstream,
            Fault::Delay {
                fixed: LATE,
                jitter: Duration::ZERO,
            },
        );
    }
    let key = candidate_key(&s.run.etcd, "n1").await;
    let foreign = match change {
        Change::KeyRewritten => Some(key.as_str()),
        Change::RecordRewritten => Some(RECORD),
        _ => None,
    };
    let stored = match foreign {
        Some(k) => s.run.etcd.v3_get(k, None).await,
        None => None,
    };
    // The change is written after this moment; n0 hears of it LATE after.
    let mut unseen_at = Instant::now();
    match change {
        Change::Drained => {
            let (code, body) = admin(&s.run, successor, "/v1/drain").await;
            assert_eq!(code, 200, "{body}");
        }
        Change::Unhealthy => {
            switch.set_healthy(false);
            unseen_at = written_after(&s.run.etcd, &key, |k| {
                k.is_some_and(|k| k.value.contains("\"healthy\":false"))
            })
            .await;
        }
        Change::ShutDown => {
            s.run.nodes[successor].terminate();
            unseen_at = written_after(&s.run.etcd, &key, |k| k.is_none()).await;
        }
        Change::KilledElectd => {
            s.run.kill9_electd(successor);
            unseen_at = written_after(&s.run.etcd, &key, |k| k.is_none()).await;
        }
        Change::KeyRewritten | Change::RecordRewritten => {
            let (k, stored) = (foreign.expect("a key"), stored.clone().expect("the key"));
            assert!(
                s.run
                    .etcd
                    .v3_put_with_lease(k, &stored.value, stored.lease)
                    .await
            );
        }
        Change::PreviousReleaseQueued => {
            withheld::queue_previous_release(&s.run.etcd).await;
        }
    }
    let before = s.run.etcd.v3_revision().await;
    s.run.nodes[leader].terminate();
    let unseen = unseen_at.elapsed();
    assert!(
        unseen < LATE,
        "{change:?} was written up to {unseen:?} before n0 departed: it may have heard of it"
    );
    let gone = match change {
        Change::ShutDown => Some(0),
        Change::KilledElectd => Some(137),
        _ => None,
    };
    if let Some(code) = gone {
        let status = s.run.nodes[successor].wait_exit(SLACK).await;
        assert_eq!(status.and_then(|s| s.code()), Some(code), "{status:?}");
    }
    let etcd = &s.run.etcd;
    let run = &s.run;
    let live: Vec<usize> = match change {
        Change::ShutDown | Change::KilledElectd => vec![third],
        _ => vec![successor, third],
    };
    let next = run.sole_leader_among(&live, SLACK).await;
    let expected = match change {
        Change::KeyRewritten | Change::RecordRewritten | Change::PreviousReleaseQueued => successor,
        _ => third,
    };
    assert_eq!(next, expected, "{change:?}: the wrong successor");
    // n0's write failed; its revoke is `before + 1`; the successor's own
    // record `before + 2`.
    assert_term(run, next, before, 2).await;
    let status = s.run.nodes[leader].wait_exit(SLACK).await;
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    let output = s.run.nodes[leader].output();
    assert!(output.contains(CHANGED), "{change:?}: {output}");
    // The write after the foreign one deleted the record (n0's revoke): no
    // hand-over wrote over it.
    assert_eq!(
        etcd.v3_get(RECORD, Some(before + 1)).await,
        None,
        "{change:?}: something wrote the record after the change"
    );
    if matches!(change, Change::Drained | Change::Unhealthy) {
        assert!(
            s.run.last_acquired(successor).is_none(),
            "{change:?}: n1 led"
        );
    }
    s.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_successor_drained() {
    a_stale_reading_fails_the_one_write(Change::Drained).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_successor_unhealthy() {
    a_stale_reading_fails_the_one_write(Change::Unhealthy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_successor_shut_down() {
    a_stale_reading_fails_the_one_write(Change::ShutDown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_successors_electd_killed() {
    a_stale_reading_fails_the_one_write(Change::KilledElectd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_write_to_the_successors_key() {
    a_stale_reading_fails_the_one_write(Change::KeyRewritten).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_write_to_the_record() {
    a_stale_reading_fails_the_one_write(Change::RecordRewritten).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_the_previous_release_queued() {
    a_stale_reading_fails_the_one_write(Change::PreviousReleaseQueued).await;
}
