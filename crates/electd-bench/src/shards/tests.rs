use harness::checker::{Interval, Report};

use super::*;

#[test]
fn the_issues_bounds() {
    assert_eq!(bounds(10_000, 20), (475, 525));
    assert_eq!(bounds(10_000, 21), (452, 500));
    assert_eq!(bounds(1_000, 5), (190, 210));
    assert_eq!(bounds(7, 3), (2, 3));
}

fn interval(id: &str, shard: u32, start_ns: u64, end_ns: u64) -> Interval {
    Interval {
        id: id.to_owned(),
        pid: 1,
        journal: None,
        term: start_ns,
        start_ns,
        end_ns,
        reason: None,
        shard: Some(shard),
    }
}

#[test]
fn all_led_is_the_first_instant_every_shard_has_a_leader() {
    let report = Report {
        intervals: vec![
            interval("a", 0, 10, 50),
            interval("a", 1, 20, 30),
            // Shard 1 is leaderless from 30 to 40.
            interval("b", 1, 40, 100),
            interval("b", 0, 50, 100),
        ],
        violations: Vec::new(),
    };
    assert_eq!(all_led_from(&report, 2, 0), Some(20));
    assert_eq!(all_led_from(&report, 2, 25), Some(25));
    assert_eq!(all_led_from(&report, 2, 35), Some(40));
    assert_eq!(all_led_from(&report, 3, 0), None);
}

#[test]
fn a_leave_gives_each_shard_its_gap() {
    let report = Report {
        intervals: vec![
            interval("a", 0, 10, 100),
            interval("b", 0, 103, 200),
            interval("a", 1, 10, 100),
            interval("c", 1, 110, 200),
            interval("b", 2, 10, 200),
        ],
        violations: Vec::new(),
    };
    let left = left(&report, "a", 100).expect("every shard led again");
    assert_eq!(left.shards, 2);
    assert_eq!(left.gaps, vec![3e-6, 10e-6]);
    assert_eq!(left.all_led_again_ms, 10e-6);
    let unled = Report {
        intervals: vec![interval("a", 0, 10, 100)],
        violations: Vec::new(),
    };
    assert!(super::left(&unled, "a", 100).is_none());
}
