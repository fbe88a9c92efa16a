//! The shards checks CI runs: the protocol as designed passes in every
//! configuration of its suite; each unsafe variant is caught, its
//! counterexample printed and inspected; and the move txn's compares.

use crate::check::{exhaust_model, search_model};
use crate::etcd::{Etcd, Key, Owner};
use crate::shards::model::{ONE_LEADER_PER_SHARD, SHARD_HOLDERS_WRITE, ShardAction};
use crate::shards::render::render;
use crate::shards::state::{
    MAX_SHARDS, Move, ShardConfig, ShardEtcd, ShardProtocol, ShardState, shard_bit,
};
use crate::shards::steps::{ShardElection, move_records};

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn the_shards_protocol_passes() {
    for (name, config) in ShardConfig::suite(ShardProtocol::Placed) {
        let outcome = exhaust_model(ShardElection::new(config), threads());
        eprintln!("{name}: {}", outcome.summary());
        if let Some(violated) = outcome.violated().first() {
            let model = ShardElection::new(config);
            let trace = outcome.counterexample(violated).map(|t| render(&model, t));
            panic!("{name}: {violated}:\n{}", trace.unwrap_or_default());
        }
        assert!(
            outcome.never.is_empty(),
            "{name}: never {:?}",
            outcome.never
        );
    }
}

/// The unsafe `protocol` is caught: a counterexample of each property it
/// breaks, printed; each returned with its last state and its steps.
fn caught(protocol: ShardProtocol) -> Vec<(&'static str, ShardState, Vec<ShardAction>)> {
    let (config, breaks) = ShardConfig::caught(protocol).expect("an unsafe protocol");
    let outcome = search_model(ShardElection::new(config), breaks);
    eprintln!("{}", outcome.summary());
    breaks
        .iter()
        .map(|&name| {
            let trace = outcome
                .counterexample(name)
                .unwrap_or_else(|| panic!("{protocol:?} not caught: {name}"));
            eprintln!("{name}:\n{}", render(&outcome.model, trace));
            let last = *trace.last_state();
            (name, last, trace.clone().into_actions())
        })
        .collect()
}

fn two_leaders(s: &ShardState) -> bool {
    (0..MAX_SHARDS).any(|k| s.leaders(k) > 1)
}

fn check(name: &str, last: &ShardState) {
    match name {
        ONE_LEADER_PER_SHARD => assert!(two_leaders(last), "{name}"),
        SHARD_HOLDERS_WRITE => assert!(last.ghost.stray_write, "{name}"),
        _ => panic!("{name} is not expected"),
    }
}

#[test]
fn a_coordinator_moving_a_shard_it_does_not_hold_is_caught() {
    for (name, last, actions) in caught(ShardProtocol::CoordinatorMoves) {
        check(name, &last);
        // The move is sent by a node that never held the shard (node 0
        // holds both from the start).
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, ShardAction::Move { node: 1 | 2, .. })),
            "{name}: {actions:?}"
        );
    }
}

#[test]
fn a_holder_writing_the_move_before_it_stops_is_caught() {
    for (name, last, actions) in caught(ShardProtocol::MovesBeforeStopping) {
        check(name, &last);
        // The holder still believes, its move landed.
        assert!(
            last.nodes[0]
                .proc
                .is_some_and(|p| (0..MAX_SHARDS).any(|k| p.believes(k)))
        );
        assert!(actions.contains(&ShardAction::Send(0)), "{actions:?}");
    }
}

#[test]
fn a_move_without_comparing_the_records_version_is_caught() {
    for (name, last, actions) in caught(ShardProtocol::MovesWithoutVersion) {
        check(name, &last);
        // The holder's move landed late, after the record had changed
        // hands (its guardian moved it, or its lease expired).
        let changed = actions
            .iter()
            .position(|a| matches!(a, ShardAction::GuardianSend(_) | ShardAction::Expire(_)));
        let stale = actions
            .iter()
            .rposition(|a| matches!(a, ShardAction::Land(_) | ShardAction::Send(_)));
        assert!(changed.is_some() && changed < stale, "{name}: {actions:?}");
    }
}

#[test]
fn a_guardian_moving_a_record_its_electd_handed_on_is_caught() {
    for (name, last, actions) in caught(ShardProtocol::GuardianMovesAnyRecord) {
        check(name, &last);
        let position = |f: &dyn Fn(&ShardAction) -> bool| actions.iter().position(f);
        let moved = position(&|a| matches!(a, ShardAction::Move { .. }));
        let crashed = position(&|a| matches!(a, ShardAction::Crash { guardian: true, .. }));
        let guardian = position(&|a| matches!(a, ShardAction::GuardianSend(_)));
        assert!(
            moved.is_some() && moved < crashed && crashed < guardian,
            "{name}: {actions:?}"
        );
    }
}

#[test]
fn a_successor_believing_once_named_is_caught() {
    for (name, last, actions) in caught(ShardProtocol::BelievesWhenNamed) {
        check(name, &last);
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, ShardAction::Named { .. })),
            "{actions:?}"
        );
    }
}

#[test]
fn a_batch_moves_only_if_every_record_and_the_successor_are_as_read() {
    let a = Owner::Process { node: 0, inc: 0 };
    let b = Owner::Process { node: 1, inc: 0 };
    let mut etcd = Etcd::new();
    let la = etcd.grant(a, 2).expect("a lease");
    let lb = etcd.grant(b, 2).expect("a lease");
    etcd.put_candidate(la, true);
    etcd.put_candidate(lb, true);
    let mut e = ShardEtcd {
        etcd,
        records: [None; MAX_SHARDS],
    };
    for k in 0..2 {
        let at = e.etcd.write();
        e.records[k] = Some(Key {
            lease: la,
            create: at,
            modr: at,
        });
    }
    let batch = Move {
        read: [Some((la, 4)), Some((la, 5)), None],
        to: lb,
        to_modr: 3,
    };
    assert_eq!(batch.batch(), shard_bit(0) | shard_bit(1));
    let safe = ShardProtocol::Placed;
    // One record not as read (the second's version): nothing moves, and
    // not the first either.
    let mut stale = Move {
        read: [Some((la, 4)), Some((la, 4)), None],
        ..batch
    };
    assert!(!move_records(&mut e.clone(), safe, &stale));
    // ...unless the version is not compared.
    assert!(move_records(
        &mut e.clone(),
        ShardProtocol::MovesWithoutVersion,
        &stale
    ));
    // The successor's key rewritten since read: refused.
    stale = Move {
        to_modr: 2,
        ..batch
    };
    assert!(!move_records(&mut e.clone(), safe, &stale));
    // As read: one write, both records bound to the successor, each its
    // own key still, the term the write's revision.
    let mut moved = e;
    assert!(move_records(&mut moved, safe, &batch));
    assert_eq!(moved.etcd.revision, 6);
    assert_eq!(
        moved.records[..2],
        [
            Some(Key {
                lease: lb,
                create: 4,
                modr: 6
            }),
            Some(Key {
                lease: lb,
                create: 5,
                modr: 6
            })
        ]
    );
    // Once moved, the same read no longer matches.
    assert!(!move_records(&mut moved, safe, &batch));
}
