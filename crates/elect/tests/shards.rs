//! The library's shards against a real etcd: each shard gained comes with
//! a guard, and a planned move waits for the guard to be dropped.

use std::sync::Arc;
use std::time::Duration;

use elect::{Api, Election};
use harness::etcd::Etcd;
use harness::eventually;

mod common;

use common::{LIMIT, config};

/// A node of a sharded election in a task: campaigning (which leads the
/// election itself only for one of them) is what puts it in the running
/// for the shards.
fn sharded(etcd: &Etcd, id: &str) -> (Arc<Election>, elect::shards::ShardLeaderships) {
    let config = config(etcd, Api::V3, id).shards(10).build().unwrap();
    let election = Arc::new(Election::start(config).unwrap());
    let gained = election
        .shard_leaderships()
        .expect("an election with shards");
    let campaigning = election.clone();
    tokio::spawn(async move {
        let _leadership = campaigning.campaign().await;
        std::future::pending::<()>().await;
    });
    (election, gained)
}

/// A planned move waits for the guard: the shards a joining node is due
/// are told lost on the old node at once, but move only once their guards
/// are dropped (their work stopped), then go to the joiner at higher terms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_moves_only_once_its_work_has_stopped() {
    let etcd = Etcd::single().await;
    let (_a, mut gained_a) = sharded(&etcd, "a");
    let mut guards = Vec::new();
    for _ in 0..10 {
        let guard = tokio::time::timeout(LIMIT, gained_a.next())
            .await
            .expect("a gains every shard")
            .expect("a guard");
        assert!(guard.deadline().is_some());
        guards.push(guard);
    }
    let (b, mut gained_b) = sharded(&etcd, "b");
    // b's share is 4 to 6 of 10: at least 4 of a's guards are told lost.
    let told_lost = |guards: &[elect::shards::ShardLeadership]| {
        guards.iter().filter(|g| g.deadline().is_none()).count()
    };
    {
        let guards = &guards;
        eventually(
            LIMIT,
            "a's guards for b's share to be told lost",
            || async { (told_lost(guards) >= 4).then_some(()) },
        )
        .await;
    }
    let (losing, staying): (Vec<_>, Vec<_>) =
        guards.into_iter().partition(|g| g.deadline().is_none());
    for guard in &losing {
        tokio::time::timeout(Duration::from_secs(1), guard.lost())
            .await
            .expect("lost() resolves for a shard told lost");
    }
    // While a holds them, none moves.
    let early = tokio::time::timeout(Duration::from_secs(1), gained_b.next()).await;
    assert!(early.is_err(), "b gained a shard whose work still ran");
    let b_map = b.shards().expect("b's map");
    for guard in &losing {
        let leader = b_map.leaders[guard.shard() as usize].as_ref();
        assert_eq!(
            leader.map(|l| l.id.as_str()),
            Some("a"),
            "shard {} moved before its guard was dropped",
            guard.shard()
        );
    }
    // Dropping them lets them go: b gains exactly those, at higher terms.
    let moving: std::collections::BTreeMap<u32, u64> =
        losing.iter().map(|g| (g.shard(), g.term())).collect();
    drop(losing);
    let mut gained = std::collections::BTreeMap::new();
    while gained.len() < moving.len() {
        let guard = tokio::time::timeout(LIMIT, gained_b.next())
            .await
            .expect("b gains what a let go")
            .expect("a guard");
        gained.insert(guard.shard(), guard.term());
    }
    assert_eq!(
        gained.keys().collect::<Vec<_>>(),
        moving.keys().collect::<Vec<_>>()
    );
    for (shard, term) in &gained {
        assert!(*term > moving[shard], "shard {shard}: term {term}");
    }
    // What a kept, it still leads.
    assert!(staying.iter().all(|g| g.deadline().is_some()));
}
