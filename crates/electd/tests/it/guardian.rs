//! The guardian, against a real etcd with real processes: electd killed on
//! a live host hands over in milliseconds; a stopped electd, a dead
//! guardian or a claim that is no longer electd's own changes nothing of
//! the safety proof. Every scenario ends with the journal checker.

use std::time::Duration;

use harness::eventually;
use harness::node::NodeArgs;

use crate::common::{Run, SLACK};

const TOKEN: &str = "t0ken-for-guardians";

/// TTL 10: anything near it is an expiry, not a release.
const TTL: u64 = 10;

async fn nodes(api: &'static str, n: usize, own: NodeArgs) -> Run {
    let mut run = Run::new(api, TTL, 0).await;
    for i in 0..n {
        run.spawn_with_env(
            &format!("n{i}"),
            own.clone(),
            &[("ELECTD_ADMIN_TOKEN", TOKEN)],
        );
    }
    for node in &run.nodes {
        node.wait_serving().await;
    }
    run
}

/// kill -9 of the leader's electd, its guardian and host alive: the next
/// leader takes over in milliseconds, not a TTL; with `--exec`, the old
/// command's group is gone before the new one starts (the checker reads
/// what the commands recorded).
async fn a_killed_electd_is_released_by_its_guardian(api: &'static str) {
    for exec in [false, true] {
        let mut run = Run::new(api, TTL, 0).await;
        let script = harness::ticks::write_ticker(run.dir.path());
        let mut files = Vec::new();
        for i in 0..3 {
            let name = format!("n{i}");
            let file = run.dir.path().join(format!("{name}.ticks"));
            let (script, ticks) = (script.display().to_string(), file.display().to_string());
            let own = match exec {
                true => NodeArgs::new().exec(["sh", &script, &ticks]),
                false => NodeArgs::new(),
            };
            run.spawn(&name, own);
            files.push((name, file));
        }
        for node in &run.nodes {
            node.wait_serving().await;
        }
        let leader = run.sole_leader(SLACK).await;
        let before = run.term(leader).await;
        if exec {
            eventually(SLACK, "the leader's command to tick", || async {
                let text = std::fs::read_to_string(&files[leader].1).unwrap_or_default();
                text.contains(&format!("tick {before} ")).then_some(())
            })
            .await;
        }
        // The journal's PID is electd's, not its guardian's.
        let electd = u64::from(run.nodes[leader].electd_pid());
        assert_eq!(run.journal(leader)[0]["pid"].as_u64(), Some(electd));
        let killed = run.kill9_electd(leader);
        let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
        let next = run.sole_leader_among(&others, SLACK).await;
        let took = run.took(next, killed);
        assert!(
            took < Duration::from_secs(1),
            "exec {exec}: {took:?} from the kill to the next leader"
        );
        assert!(run.term(next).await > before);
        // The guardian goes with what it guarded, with electd's status.
        let status = run.nodes[leader].wait_exit(SLACK).await;
        assert_eq!(status.and_then(|s| s.code()), Some(137), "{status:?}");
        let output = run.nodes[leader].output();
        assert!(
            output.contains("electd died: its processes are gone and its claims released"),
            "{output}"
        );
        run.assert_safe();
        let ticks = harness::ticks::read(&files, harness::ticks::realtime_offset());
        assert!(ticks.overlaps().is_empty(), "{:?}", ticks.overlaps());
    }
}

/// SIGSTOP of the leader's electd past the TTL: it is not dead, so its
/// guardian does nothing; the lease runs out as always. Killed while
/// stopped, nothing is left to release.
async fn a_stopped_electd_is_not_released(api: &'static str) {
    let mut run = Run::new(api, 3, 2).await;
    let leader = run.sole_leader(SLACK).await;
    let stopped = harness::now_ns();
    run.nodes[leader].pause();
    let next = run
        .sole_leader_among(&[1 - leader], run.ttl() + SLACK)
        .await;
    let took = run.took(next, stopped);
    assert!(
        took >= run.ttl() / 2,
        "{took:?}: released while only stopped"
    );
    run.kill9_electd(leader);
    let status = run.nodes[leader].wait_exit(SLACK).await;
    assert_eq!(status.and_then(|s| s.code()), Some(137), "{status:?}");
    let term_then = run.term(next).await;
    assert!(run.nodes[next].is_leader().await);
    assert_eq!(run.term(next).await, term_then);
    run.assert_safe();
}

/// kill -9 of the guardian, then of electd: electd dies with its guardian
/// (its parent-death signal) and the lease runs out, as when a whole host
/// dies. (electd killed first is a crash on a live host: released.)
async fn a_dead_guardian_means_the_ttl(api: &'static str) {
    let mut run = Run::new(api, 3, 3).await;
    let leader = run.sole_leader(SLACK).await;
    let electd = run.nodes[leader].electd_pid();
    let killed = run.kill9(leader);
    harness::procs::signal(electd, rustix::process::Signal::KILL);
    eventually(SLACK, "electd to die with its guardian", || async {
        (!harness::procs::running(electd)).then_some(())
    })
    .await;
    let alive = run.alive();
    let next = run.sole_leader_among(&alive, run.ttl() + SLACK).await;
    let took = run.took(next, killed);
    assert!(took >= run.ttl() / 2, "{took:?}, not an expiry");
    run.assert_safe();
}

/// A guardian releases only what its own electd held at its death: after a
/// resign (its lease revoked, v2: its value gone) and someone else leading,
/// electd's death touches nothing of the new leader's.
async fn a_guardian_releases_nothing_but_its_own(api: &'static str) {
    let own = NodeArgs::new().resign_cooldown(Duration::from_secs(600));
    let mut run = nodes(api, 2, own).await;
    let leader = run.sole_leader(SLACK).await;
    let auth = format!("Bearer {TOKEN}");
    let resigned = run.nodes[leader]
        .request(
            reqwest::Method::POST,
            "/v1/resign",
            &[("Authorization", &auth)],
        )
        .await
        .expect("an answer");
    assert_eq!(resigned.status, 200, "{}", resigned.body);
    let next = run.sole_leader_among(&[1 - leader], SLACK).await;
    let term_then = run.term(next).await;
    run.kill9_electd(leader);
    let status = run.nodes[leader].wait_exit(SLACK).await;
    assert_eq!(status.and_then(|s| s.code()), Some(137), "{status:?}");
    // Its release came and went: the new leader still leads, same term.
    assert!(run.nodes[next].is_leader().await);
    assert_eq!(run.term(next).await, term_then);
    let (last_term, _) = run.last_acquired(next).expect("an acquisition");
    assert_eq!(last_term, term_then);
    // A node restarted under the same id is a new claim: its guardian's.
    run.restart(leader, NodeArgs::new(), &[("ELECTD_ADMIN_TOKEN", TOKEN)]);
    run.nodes[leader].wait_serving().await;
    run.kill9_electd(next);
    assert_eq!(run.sole_leader_among(&[leader], SLACK).await, leader);
    run.assert_safe();
}

both_apis!(
    a_killed_electd_is_released_by_its_guardian,
    a_stopped_electd_is_not_released,
    a_dead_guardian_means_the_ttl,
    a_guardian_releases_nothing_but_its_own,
);

/// Observers and `--no-guardian` run as one process, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_and_no_guardian_run_alone() {
    let mut run = Run::new("v3", 2, 0).await;
    let observer = run.spawn("o", NodeArgs::new().observe());
    let alone = run.spawn("a", NodeArgs::new().no_guardian());
    for i in [observer, alone] {
        run.nodes[i].wait_serving().await;
        let pid = run.nodes[i].pid();
        let children = harness::procs::children(pid);
        assert!(children.is_empty(), "{}: {children:?}", run.nodes[i].name);
    }
    assert_eq!(run.sole_leader_among(&[alone], SLACK).await, alone);
    let journal = run.journal(alone);
    assert_eq!(
        journal[0]["pid"].as_u64(),
        Some(u64::from(run.nodes[alone].pid()))
    );
    run.assert_safe();
}
