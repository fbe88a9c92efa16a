//! `--exec` containment, against a real etcd with real processes. For each
//! process electd starts or is (electd, the watchdog, the command, a
//! grandchild in the command's process group, a `setsid` escapee, a
//! double-forked daemon) and each
//! fault of one of them (kill -9, SIGSTOP past the TTL, SIGSTOP then kill -9,
//! exiting on its own, kill -9 while a hand-over is in flight):
//!
//! * no two commands ever run at once, across nodes and on one node, by
//!   what the commands and their escapees record themselves;
//! * none runs past its leadership (`ended`, or the last deadline);
//! * when the next command is up, nothing of the previous one runs;
//! * no electd holds a zombie, and nothing is left running at the end.

mod scene;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use harness::node::NodeArgs;
use harness::now_ns;
use rustix::process::Signal;

use self::scene::{SLACK, Scene, assert_gone, signal};
use crate::common;

async fn watchdog_command_and_descendants(api: &'static str) {
    let _alone = common::exclusive().await;
    let mut s = Scene::new(api, 3, NodeArgs::new()).await;

    // kill -9 of the watchdog, with the grandchild, the escapee and the
    // daemon stopped for longer than the TTL: electd kills them all (the
    // daemon comes to electd with the watchdog's death) and resigns.
    let c = s.leader().await;
    for pid in [c.grandchild, c.escapee, c.daemon] {
        signal(pid, Signal::STOP);
    }
    s.outlive_ttl(c.node, now_ns()).await;
    signal(c.watchdog, Signal::KILL);
    let c = s.next(&c).await;
    s.settled().await;

    // SIGSTOP of the watchdog: its silence gets it killed, with the command.
    signal(c.watchdog, Signal::STOP);
    let c = s.next(&c).await;
    s.settled().await;

    // kill -9 of the grandchild, the escapee and the daemon changes
    // nothing; the command, stopped for longer than the TTL, is killed after
    // the grace of a hand-over on request.
    for pid in [c.grandchild, c.escapee, c.daemon] {
        signal(pid, Signal::KILL);
    }
    signal(c.pid, Signal::STOP);
    s.outlive_ttl(c.node, now_ns()).await;
    assert_eq!(s.resign(c.node).await, 200);
    let c = s.next(&c).await;
    s.settled().await;

    // The grandchild, the escapee and the daemon exit (SIGTERM), then the
    // command is stopped and killed: the watchdog reaps it all and the
    // leader resigns.
    for pid in [c.grandchild, c.escapee, c.daemon] {
        signal(pid, Signal::TERM);
    }
    signal(c.pid, Signal::STOP);
    signal(c.pid, Signal::KILL);
    let c = s.next(&c).await;
    s.settled().await;

    // SIGSTOP, then kill -9, of the grandchild, the escapee and the daemon
    // (nothing changes), then of the watchdog.
    for pid in [c.grandchild, c.escapee, c.daemon, c.watchdog] {
        signal(pid, Signal::STOP);
        signal(pid, Signal::KILL);
    }
    let c = s.next(&c).await;
    s.settled().await;

    // The command exits on its own.
    signal(c.pid, Signal::TERM);
    let c = s.next(&c).await;
    s.settled().await;

    // The watchdog exits on its own (SIGTERM's default action).
    signal(c.watchdog, Signal::TERM);
    let c = s.next(&c).await;
    s.settled().await;

    // SIGSTOP of the watchdog, then SIGTERM to electd: electd does not wait
    // for it past its silence, kills it and the command, then hands over.
    signal(c.watchdog, Signal::STOP);
    s.run.nodes[c.node].terminate();
    s.terminated(c.node).await;
    let next = s.next(&c).await;
    s.restart(c.node).await;
    let c = next;

    // A hand-over in flight (SIGTERM) while the watchdog is killed.
    s.run.nodes[c.node].terminate();
    s.winding_down(&c).await;
    signal(c.watchdog, Signal::KILL);
    s.terminated(c.node).await;
    let next = s.next(&c).await;
    s.restart(c.node).await;
    let c = next;

    // A hand-over in flight (SIGTERM) while the command is killed.
    s.run.nodes[c.node].terminate();
    s.winding_down(&c).await;
    signal(c.pid, Signal::KILL);
    s.terminated(c.node).await;
    let next = s.next(&c).await;
    s.restart(c.node).await;
    let c = next;

    // A hand-over in flight (POST /v1/resign) while the command is killed,
    // then one while the watchdog is.
    let (status, ()) = tokio::join!(s.resign(c.node), async {
        s.winding_down(&c).await;
        signal(c.pid, Signal::KILL);
    });
    assert_eq!(status, 200);
    let c = s.next(&c).await;
    let (status, ()) = tokio::join!(s.resign(c.node), async {
        s.winding_down(&c).await;
        signal(c.watchdog, Signal::KILL);
    });
    assert_eq!(status, 200);
    let c = s.next(&c).await;
    s.settled().await;

    // A hand-over in flight (SIGTERM) while electd itself is killed, as an
    // OOM kill would: the watchdog kills the rest.
    s.run.nodes[c.node].terminate();
    s.winding_down(&c).await;
    s.run.kill9(c.node);
    s.next(&c).await;
    s.restart(c.node).await;

    s.finish().await;
}

async fn electd_itself(api: &'static str) {
    let _alone = common::exclusive().await;
    let mut s = Scene::new(api, 3, NodeArgs::new()).await;

    // kill -9 of electd and its guardian (a whole host): the watchdog
    // kills everything at once; the lease runs out.
    let c = s.leader().await;
    s.run.kill9(c.node);
    let next = s.next(&c).await;
    s.restart(c.node).await;
    s.settled().await;
    let c = next;

    // kill -9 of electd only, its host alive: its guardian kills and reaps
    // what it left, then releases at once, long before the TTL.
    let killed = s.run.kill9_electd(c.node);
    let next = s.next(&c).await;
    let acquired = s
        .run
        .journal(next.node)
        .iter()
        .filter(|r| r["event"] == "acquired")
        .filter_map(|r| r["t_ns"].as_u64())
        .max()
        .expect("the next leader's acquisition");
    let took = Duration::from_nanos(acquired.saturating_sub(killed));
    assert!(
        took < s.run.ttl() / 2,
        "the next leader took {took:?}: not a release"
    );
    let status = s.run.nodes[c.node].wait_exit(SLACK).await;
    assert_eq!(status.and_then(|s| s.signal()), None, "{status:?}");
    assert_eq!(status.and_then(|s| s.code()), Some(137));
    s.restart(c.node).await;
    s.settled().await;
    let c = next;

    // SIGSTOP of electd past the TTL: the watchdog kills by the deadline;
    // electd wakes as a follower and reaps its watchdog.
    s.run.nodes[c.node].pause();
    let next = s.next(&c).await;
    s.run.nodes[c.node].resume();
    s.settled().await;
    let c = next;

    // SIGSTOP, then kill -9, of electd.
    s.run.nodes[c.node].pause();
    let next = s.next(&c).await;
    s.run.kill9(c.node);
    s.restart(c.node).await;
    s.settled().await;
    let c = next;

    // electd exits on its own (SIGTERM).
    s.run.nodes[c.node].terminate();
    s.terminated(c.node).await;
    s.next(&c).await;
    s.restart(c.node).await;

    s.finish().await;
}

both_apis!(watchdog_command_and_descendants, electd_itself);

/// `--exec-on-exit restart` starts the command again on the same node, in
/// the same term, only once the previous one is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_command_never_runs_beside_its_predecessor() {
    let _alone = common::exclusive().await;
    let mut s = Scene::new("v3", 1, NodeArgs::new().exec_on_exit("restart")).await;
    let c = s.leader().await;

    // kill -9 of the watchdog.
    signal(c.watchdog, Signal::KILL);
    let next = s.command(c.node).await;
    assert_eq!(next.term, c.term);
    assert_gone(&c);
    let c = next;

    // SIGSTOP of the watchdog.
    signal(c.watchdog, Signal::STOP);
    let next = s.command(c.node).await;
    assert_eq!(next.term, c.term);
    assert_gone(&c);

    // kill -9 of the command, SIGSTOP then kill -9 of it, and its exit.
    let mut c = next;
    for faults in [
        &[Signal::KILL][..],
        &[Signal::STOP, Signal::KILL],
        &[Signal::TERM],
    ] {
        for &fault in faults {
            signal(c.pid, fault);
        }
        let next = s.command(c.node).await;
        assert_eq!(next.term, c.term);
        assert_gone(&c);
        c = next;
    }

    // A second SIGTERM while the first hand-over is in flight exits at
    // once, and takes everything with it.
    s.run.nodes[c.node].terminate();
    s.winding_down(&c).await;
    s.run.nodes[c.node].terminate();
    let status = s.run.nodes[c.node].wait_exit(SLACK).await;
    assert_eq!(status.and_then(|s| s.code()), Some(130));
    assert_gone(&c);

    s.finish().await;
}
