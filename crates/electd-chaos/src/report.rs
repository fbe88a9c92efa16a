//! The report: what was injected, what the nodes answered, what the
//! journal checker found, how long nobody led and how much of that etcd
//! itself could not serve; and the verdict.

use std::collections::BTreeMap;

use harness::checker::{Interval, Report, longest, without};

use crate::draw::Kind;
use crate::fleet::{ShardsAtEnd, Soak};

/// Prints the report of a run whose faults went from `started` to
/// `faulted_until` (`CLOCK_MONOTONIC` ns); whether it was safe and every
/// admin answer allowed. The election's lines are of its own leaderships;
/// with `--shards`, the shards' follow (`shards_at_end`: what the nodes
/// said once the faults were over).
pub fn print(
    soak: &Soak,
    report: &Report,
    counts: &BTreeMap<Kind, u32>,
    outages: &[(u64, u64)],
    (started, faulted_until): (u64, u64),
    exec: bool,
    shards_at_end: Option<ShardsAtEnd>,
) -> bool {
    // The checker's violations of a shard start "shard K: ".
    let overlaps = report
        .violations
        .iter()
        .filter(|v| v.starts_with("overlap"))
        .count();
    let election = Report {
        intervals: report
            .intervals
            .iter()
            .filter(|i| i.shard.is_none())
            .cloned()
            .collect(),
        violations: Vec::new(),
    };
    let terms: std::collections::BTreeSet<u64> =
        election.intervals.iter().map(|i| i.term).collect();
    let gaps = election.gaps(started, faulted_until);
    let (gap_start, gap) = longest(&gaps);
    let (outage_start, outage) = longest(outages);
    let (served_gap_start, served_gap) = longest(&without(&gaps, outages));
    let since = |t: u64| t.saturating_sub(started) as f64 / 1e9;

    println!("faults injected: {}", counts.values().sum::<u32>());
    for (kind, n) in counts {
        println!("  {:<32} {n}", kind.name());
    }
    println!("steering outcomes and admin answers:");
    for (what, n) in &soak.outcomes {
        println!("  {what:<60} {n}");
    }
    println!("leaderships ended, by journal reason:");
    print_reasons(&election.intervals);
    println!("leaderships: {}", election.intervals.len());
    println!("terms: {}", terms.len());
    println!(
        "longest time without a leader: {:.3} s (from {:.3} s into the faults)",
        gap as f64 / 1e9,
        since(gap_start)
    );
    println!(
        "longest time etcd was unavailable (no member healthy): {:.3} s (from {:.3} s), {:.3} s in all",
        outage as f64 / 1e9,
        since(outage_start),
        outages.iter().map(|(a, b)| b - a).sum::<u64>() as f64 / 1e9
    );
    println!(
        "longest time without a leader while etcd answered: {:.3} s (from {:.3} s)",
        served_gap as f64 / 1e9,
        since(served_gap_start)
    );
    println!("overlapping leaderships: {overlaps}");
    if let (Some(count), Some(at_end)) = (soak.shards, shards_at_end) {
        print_shards(report, count, &at_end, outages, (started, faulted_until));
    }
    let mut ok = report.violations.is_empty();
    for violation in &report.violations {
        println!("VIOLATION: {violation}");
    }
    if exec {
        let ticks = harness::ticks::read(&soak.ticks, 0);
        let child_overlaps = ticks.overlaps();
        println!("--exec commands run: {}", ticks.children.len());
        println!("commands running at once: {}", child_overlaps.len());
        for (a, b) in &child_overlaps {
            println!("VIOLATION: commands overlapped: {a:?} and {b:?}");
        }
        ok &= child_overlaps.is_empty();
    }
    println!("result: {}", if ok { "safe" } else { "UNSAFE" });
    for answer in &soak.unexpected {
        println!("UNEXPECTED admin answer: {answer}");
    }
    if !soak.unexpected.is_empty() {
        println!(
            "admin answers the issue does not allow: {} (the soak fails)",
            soak.unexpected.len()
        );
        ok = false;
    }
    ok
}

/// Leaderships by their journal `ended` reason, one line each.
fn print_reasons(intervals: &[Interval]) {
    let mut reasons: BTreeMap<&str, u32> = BTreeMap::new();
    for interval in intervals {
        *reasons
            .entry(interval.reason.map_or("(none: killed)", |r| r.as_str()))
            .or_default() += 1;
    }
    for (reason, n) in &reasons {
        println!("  {reason:<32} {n}");
    }
}

/// What the journals show of the shards over the faults.
struct ShardSummary {
    /// Every shard's leaderships, by shard then start.
    intervals: Vec<Interval>,
    terms: usize,
    /// Times a shard's next leader was another node.
    moves: usize,
    /// `(length, shard, start)` of the longest time one shard had no
    /// leader, and of the longest while etcd answered (ns).
    widest: (u64, u32, u64),
    widest_served: (u64, u32, u64),
    /// Overlaps by shard ("shard K"), only those with any.
    overlapping: BTreeMap<String, u32>,
}

/// Sums up the shards of a checked run: `count` shards, faults from
/// `started` to `faulted_until`, etcd unavailable during `outages`. A
/// shard never led was leaderless all along.
fn summarize_shards(
    report: &Report,
    count: u32,
    outages: &[(u64, u64)],
    (started, faulted_until): (u64, u64),
) -> ShardSummary {
    let mut by_shard: BTreeMap<u32, Vec<Interval>> = (0..count).map(|k| (k, Vec::new())).collect();
    for interval in &report.intervals {
        if let Some(shard) = interval.shard {
            by_shard.entry(shard).or_default().push(interval.clone());
        }
    }
    let mut summary = ShardSummary {
        intervals: Vec::new(),
        terms: 0,
        moves: 0,
        widest: (0, 0, 0),
        widest_served: (0, 0, 0),
        overlapping: BTreeMap::new(),
    };
    for (shard, intervals) in by_shard {
        summary.moves += intervals.windows(2).filter(|w| w[0].id != w[1].id).count();
        let mut terms: Vec<u64> = intervals.iter().map(|i| i.term).collect();
        terms.dedup();
        summary.terms += terms.len();
        let of_shard = Report {
            intervals,
            violations: Vec::new(),
        };
        let gaps = of_shard.gaps(started, faulted_until);
        let (start, gap) = longest(&gaps);
        if gap > summary.widest.0 {
            summary.widest = (gap, shard, start);
        }
        let (start, gap) = longest(&without(&gaps, outages));
        if gap > summary.widest_served.0 {
            summary.widest_served = (gap, shard, start);
        }
        summary.intervals.extend(of_shard.intervals);
    }
    // The checker's violations of a shard start "shard K: ".
    for violation in &report.violations {
        if let Some((shard, rest)) = violation.split_once(": ")
            && shard.starts_with("shard ")
            && rest.starts_with("overlap")
        {
            *summary.overlapping.entry(shard.to_owned()).or_default() += 1;
        }
    }
    summary
}

/// The shards' lines: leaderships, moves (a shard's next leader is another
/// node), the longest time any one shard had no leader (all of it, and
/// while etcd answered), the shards led at the end, overlaps per shard;
/// then the one-line summary.
fn print_shards(
    report: &Report,
    count: u32,
    at_end: &ShardsAtEnd,
    outages: &[(u64, u64)],
    (started, faulted_until): (u64, u64),
) {
    let since = |t: u64| t.saturating_sub(started) as f64 / 1e9;
    let ShardSummary {
        intervals,
        terms,
        moves,
        widest,
        widest_served,
        overlapping,
    } = summarize_shards(report, count, outages, (started, faulted_until));
    let overlaps: u32 = overlapping.values().sum();
    println!("shards: {count}");
    println!("shard leaderships: {}", intervals.len());
    println!("shard leaderships ended, by journal reason:");
    print_reasons(&intervals);
    println!("shard terms: {terms}");
    println!("shard moves (a shard's next leader another node): {moves}");
    println!(
        "longest time a shard had no leader: {:.3} s (shard {}, from {:.3} s into the faults)",
        widest.0 as f64 / 1e9,
        widest.1,
        since(widest.2)
    );
    println!(
        "longest time a shard had no leader while etcd answered: {:.3} s (shard {}, from {:.3} s)",
        widest_served.0 as f64 / 1e9,
        widest_served.1,
        since(widest_served.2)
    );
    let settled = match at_end.all_within {
        Some(within) => format!(
            "all within {:.3} s of the faults' end",
            within.as_secs_f64()
        ),
        None => "NOT all: some shard had no leader when the soak stopped asking".to_owned(),
    };
    println!(
        "shards led at the end: {} of {count} ({settled})",
        at_end.led
    );
    println!("overlapping shard leaderships: {overlaps}");
    for (shard, n) in &overlapping {
        println!("  {shard}: {n}");
    }
    println!(
        "shards {count}: led at the end {}/{count}, moves {moves}, longest per-shard gap {:.3} s ({:.3} s while etcd answered), overlaps {overlaps}",
        at_end.led,
        widest.0 as f64 / 1e9,
        widest_served.0 as f64 / 1e9
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use harness::checker::check;

    use super::*;

    /// A journal line of `node` (its pid `pid`) about `shard`.
    fn line(node: &str, pid: u32, shard: u32, term: u64, t_ns: u64, event: &str) -> String {
        format!(
            r#"{{{event},"id":"{node}","pid":{pid},"term":{term},"t_ns":{t_ns},"shard":{shard}}}"#
        )
    }

    #[test]
    fn shards_are_summed_up_from_the_checkers_report() {
        let dir = tempfile::tempdir().unwrap();
        let acquired = r#""event":"acquired","deadline_ns":1000"#;
        let ended = r#""event":"ended","reason":"transfer""#;
        // Shard 0: n0 until 200, n1 from 150 (an overlap) until 300.
        // Shard 1: n0 from 100 to 400. Shard 2: never led.
        let n0 = [
            line("n0", 10, 0, 5, 100, acquired),
            line("n0", 10, 1, 6, 100, acquired),
            line("n0", 10, 0, 5, 200, ended),
            line("n0", 10, 1, 6, 400, ended),
        ];
        let n1 = [
            line("n1", 11, 0, 7, 150, acquired),
            line("n1", 11, 0, 7, 300, ended),
        ];
        let journals = [dir.path().join("n0.jsonl"), dir.path().join("n1.jsonl")];
        std::fs::write(&journals[0], n0.join("\n")).unwrap();
        std::fs::write(&journals[1], n1.join("\n")).unwrap();
        let report = check(&journals, &HashMap::new()).unwrap();

        let summary = summarize_shards(&report, 3, &[(0, 50)], (0, 500));
        assert_eq!(summary.intervals.len(), 3);
        assert_eq!(summary.terms, 3);
        assert_eq!(summary.moves, 1);
        assert_eq!(
            summary.overlapping,
            BTreeMap::from([("shard 0".to_owned(), 1)])
        );
        // Shard 2, never led, had no leader all along; 50 ns of it etcd
        // did not answer.
        assert_eq!(summary.widest, (500, 2, 0));
        assert_eq!(summary.widest_served, (450, 2, 50));
    }
}
