//! The report: what was injected, what the nodes answered, what the
//! journal checker found, how long nobody led and how much of that etcd
//! itself could not serve; and the verdict.

use std::collections::BTreeMap;

use harness::checker::{Report, longest, without};

use crate::draw::Kind;
use crate::fleet::Soak;

/// Prints the report of a run whose faults went from `started` to
/// `faulted_until` (`CLOCK_MONOTONIC` ns); whether it was safe and every
/// admin answer allowed.
pub fn print(
    soak: &Soak,
    report: &Report,
    counts: &BTreeMap<Kind, u32>,
    outages: &[(u64, u64)],
    (started, faulted_until): (u64, u64),
    exec: bool,
) -> bool {
    let overlaps = report
        .violations
        .iter()
        .filter(|v| v.starts_with("overlap"))
        .count();
    let terms: std::collections::BTreeSet<u64> = report.intervals.iter().map(|i| i.term).collect();
    let gaps = report.gaps(started, faulted_until);
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
    let mut reasons: BTreeMap<&str, u32> = BTreeMap::new();
    for interval in &report.intervals {
        *reasons
            .entry(interval.reason.map_or("(none: killed)", |r| r.as_str()))
            .or_default() += 1;
    }
    println!("leaderships ended, by journal reason:");
    for (reason, n) in &reasons {
        println!("  {reason:<32} {n}");
    }
    println!("leaderships: {}", report.intervals.len());
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
