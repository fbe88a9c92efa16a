//! The journal checker: proves the safety invariant (ARCHITECTURE.md, "The
//! time model") over all journals of a run.
//!
//! Each leadership interval is `[acquired, end]` where `end` is the `ended`
//! line's time, or, when the process wrote none (it was killed), its last
//! `deadline_ns` or its death, whichever came first. The checker proves:
//!
//! * no two intervals overlap;
//! * when B follows A, `term(B) > term(A)`, or the terms are equal and both
//!   belong to the same process (a lapsed term resumed);
//! * one term never belongs to two processes.
//!
//! A process is its PID: [`check`] reads journals written on one host, in
//! one PID namespace. Journals written in containers, where PIDs repeat
//! (electd is the guardian's child in each, with the same PID), go to
//! [`check_apart`], where a process is its journal and its PID.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use elect::journal::{EndReason, Event, Record};

/// One leadership, as the journals show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    /// The node's id.
    pub id: String,
    /// The process.
    pub pid: u32,
    /// With [`check_apart`], the index of the journal that told of it, in
    /// whose PID namespace `pid` is; `None` when all share the host's.
    pub journal: Option<usize>,
    /// The term.
    pub term: u64,
    /// When it was acquired (`CLOCK_MONOTONIC` ns).
    pub start_ns: u64,
    /// When it ended at the latest.
    pub end_ns: u64,
    /// Why it ended; `None` when no `ended` line was written.
    pub reason: Option<EndReason>,
    /// With `--shards`, the shard led (`None`: the election itself). The
    /// checks hold per shard.
    pub shard: Option<u32>,
}

/// What the checker found.
#[derive(Debug, Default)]
pub struct Report {
    /// Every interval, by start time.
    pub intervals: Vec<Interval>,
    /// Every violation of the invariant, described.
    pub violations: Vec<String>,
}

/// A journal that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The file cannot be read.
    #[error("cannot read journal {path}: {source}")]
    Read {
        /// The journal.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a journal record.
    #[error("{path}:{line}: not a journal record: {reason}")]
    Malformed {
        /// The journal.
        path: PathBuf,
        /// The line number.
        line: usize,
        /// Why.
        reason: String,
    },
}

impl Report {
    /// Panics with every violation if there is any.
    pub fn assert_safe(&self) {
        assert!(
            self.violations.is_empty(),
            "safety violated:\n{}\nintervals:\n{:#?}",
            self.violations.join("\n"),
            self.intervals
        );
    }

    /// The times within `[from, to]` during which nobody led, as
    /// `(start_ns, end_ns)` in order.
    pub fn gaps(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut covered_until = from;
        for interval in &self.intervals {
            if interval.start_ns > covered_until && covered_until < to {
                gaps.push((covered_until, interval.start_ns.min(to)));
            }
            covered_until = covered_until.max(interval.end_ns);
        }
        if covered_until < to {
            gaps.push((covered_until, to));
        }
        gaps
    }

    /// The longest of [`Report::gaps`], as `(start_ns, length_ns)`.
    pub fn longest_gap(&self, from: u64, to: u64) -> (u64, u64) {
        longest(&self.gaps(from, to))
    }
}

/// The longest of `spans` (`(start_ns, end_ns)`; the first of equals), as
/// `(start_ns, length_ns)`.
pub fn longest(spans: &[(u64, u64)]) -> (u64, u64) {
    spans
        .iter()
        .map(|&(start, end)| (start, end.saturating_sub(start)))
        .fold(
            (0, 0),
            |best, span| if span.1 > best.1 { span } else { best },
        )
}

/// `spans` with every part that lies in one of `holes` cut out; both sorted
/// by start, `holes` not overlapping one another.
pub fn without(spans: &[(u64, u64)], holes: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut left = Vec::new();
    for &(start, end) in spans {
        let mut from = start;
        for &(hole_start, hole_end) in holes {
            if hole_end <= from || hole_start >= end {
                continue;
            }
            if hole_start > from {
                left.push((from, hole_start));
            }
            from = from.max(hole_end);
        }
        if from < end {
            left.push((from, end));
        }
    }
    left
}

/// Reads journals written in one PID namespace (this host's) and checks
/// them. `deaths` maps a PID killed with SIGKILL to when it died.
pub fn check<P: AsRef<Path>>(
    journals: &[P],
    deaths: &HashMap<u32, u64>,
) -> Result<Report, CheckError> {
    let mut records = Vec::new();
    for path in journals {
        records.extend(read(path.as_ref())?.into_iter().map(|r| (None, r)));
    }
    Ok(check_processes(&records, |_, pid| {
        deaths.get(&pid).copied()
    }))
}

/// A journal written in a PID namespace of its own (a container's), and
/// when that namespace was killed, if it was: the death of every process
/// that wrote the journal (`CLOCK_MONOTONIC` ns, which containers share
/// with the host).
#[derive(Clone, Debug)]
pub struct Apart {
    /// The journal.
    pub path: PathBuf,
    /// When its PID namespace was killed (`podman kill`: its PID 1, and the
    /// kernel kills the rest).
    pub killed_at: Option<u64>,
}

/// Reads journals, each written in a PID namespace of its own, and checks
/// them together: a process is its journal and its PID.
pub fn check_apart(journals: &[Apart]) -> Result<Report, CheckError> {
    let mut records = Vec::new();
    for (index, journal) in journals.iter().enumerate() {
        records.extend(read(&journal.path)?.into_iter().map(|r| (Some(index), r)));
    }
    Ok(check_processes(&records, |journal, _| {
        journal.and_then(|j| journals[j].killed_at)
    }))
}

/// A journal's records; none when it was never written.
fn read(path: &Path) -> Result<Vec<Record>, CheckError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CheckError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut records = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(line).map_err(|e| CheckError::Malformed {
            path: path.to_owned(),
            line: n + 1,
            reason: e.to_string(),
        })?;
        records.push(record);
    }
    Ok(records)
}

/// Checks records already read, written in one PID namespace; each
/// process's records in the order it wrote them.
pub fn check_records(records: &[Record], deaths: &HashMap<u32, u64>) -> Report {
    let records: Vec<(Option<usize>, Record)> = records.iter().map(|r| (None, r.clone())).collect();
    check_processes(&records, |_, pid| deaths.get(&pid).copied())
}

/// A process: the journal whose PID namespace it ran in (`None`: the
/// host's), and its PID there.
type Process = (Option<usize>, u32);

/// "pid 7", or "pid 2 of journal 1" where PIDs repeat across journals.
fn named((journal, pid): Process) -> String {
    match journal {
        None => format!("pid {pid}"),
        Some(journal) => format!("pid {pid} of journal {journal}"),
    }
}

/// The checks, over records tagged with their journal's PID namespace;
/// `death` says when a process was killed, if it was.
fn check_processes(
    records: &[(Option<usize>, Record)],
    death: impl Fn(Option<usize>, u32) -> Option<u64>,
) -> Report {
    let mut report = Report::default();
    let mut open: HashMap<(Process, Option<u32>), (Interval, u64)> = HashMap::new();
    for (journal, r) in records {
        let process = (*journal, r.pid);
        let who = match r.shard {
            None => named(process),
            Some(shard) => format!("{} (shard {shard})", named(process)),
        };
        let key = (process, r.shard);
        match &r.event {
            Event::Acquired { deadline_ns } => {
                if let Some((prev, last_deadline)) = open.remove(&key) {
                    report.violations.push(format!(
                        "{who} acquired term {} without ending term {}",
                        r.term, prev.term
                    ));
                    close(&mut report, prev, last_deadline.min(r.t_ns), None);
                }
                open.insert(
                    key,
                    (
                        Interval {
                            id: r.id.clone(),
                            pid: r.pid,
                            journal: *journal,
                            term: r.term,
                            start_ns: r.t_ns,
                            end_ns: *deadline_ns,
                            reason: None,
                            shard: r.shard,
                        },
                        *deadline_ns,
                    ),
                );
            }
            Event::Renewed { deadline_ns } => {
                // One line per renewal applies to every shard the process
                // leads; term 0 when it leads no term of the election.
                for ((p, shard), (_, last)) in open.iter_mut() {
                    if *p == process && shard.is_some() {
                        *last = (*last).max(*deadline_ns);
                    }
                }
                match open.get_mut(&(process, None)) {
                    Some((interval, last)) if interval.term == r.term => {
                        *last = (*last).max(*deadline_ns);
                    }
                    None if r.term == 0 => {}
                    _ => report
                        .violations
                        .push(format!("{who} renewed term {} it had not acquired", r.term)),
                }
            }
            Event::Ended { reason } => match open.remove(&key) {
                Some((interval, last)) if interval.term == r.term => {
                    if r.t_ns > last {
                        report.violations.push(format!(
                            "{who} term {} ended at {} after its deadline {}",
                            r.term, r.t_ns, last
                        ));
                    }
                    close(&mut report, interval, r.t_ns.min(last), Some(*reason));
                }
                other => {
                    report
                        .violations
                        .push(format!("{who} ended term {} it was not leading", r.term));
                    if let Some((interval, last)) = other {
                        close(&mut report, interval, last, None);
                    }
                }
            },
            other => report.violations.push(format!(
                "{who} wrote an event this checker does not know: {other:?}"
            )),
        }
    }
    for (((journal, pid), _), (interval, last)) in open {
        let end = death(journal, pid).map_or(last, |death| death.min(last));
        close(&mut report, interval, end, None);
    }
    report.intervals.sort_by_key(|i| (i.start_ns, i.end_ns));
    let mut shards: Vec<Option<u32>> = report.intervals.iter().map(|i| i.shard).collect();
    shards.sort_unstable();
    shards.dedup();
    let mut violations = Vec::new();
    for shard in shards {
        let intervals: Vec<&Interval> = report
            .intervals
            .iter()
            .filter(|i| i.shard == shard)
            .collect();
        check_one(&intervals, shard, &mut violations);
    }
    report.violations.extend(violations);
    report
}

/// The checks over the intervals of one election (`shard`: `None`) or of
/// one shard, by start time.
fn check_one(intervals: &[&Interval], shard: Option<u32>, violations: &mut Vec<String>) {
    let of = match shard {
        None => String::new(),
        Some(shard) => format!("shard {shard}: "),
    };
    let mut owner_of_term: HashMap<u64, Process> = HashMap::new();
    for i in intervals {
        if let Some(&other) = owner_of_term.get(&i.term)
            && other != i.process()
        {
            violations.push(format!(
                "{of}term {} belongs to two processes: {} and {}",
                i.term,
                named(other),
                named(i.process())
            ));
        }
        owner_of_term.insert(i.term, i.process());
    }
    let mut latest: Option<&Interval> = None;
    for &i in intervals {
        if let Some(prev) = latest {
            if i.start_ns < prev.end_ns {
                violations.push(format!(
                    "{of}overlap: {} ({}, term {}) led until {} but {} ({}, term {}) acquired at {} ({:.3} ms earlier)",
                    prev.id,
                    named(prev.process()),
                    prev.term,
                    prev.end_ns,
                    i.id,
                    named(i.process()),
                    i.term,
                    i.start_ns,
                    (prev.end_ns - i.start_ns) as f64 / 1e6
                ));
            }
            let same_process_resumes = i.term == prev.term && i.process() == prev.process();
            if i.term < prev.term || (i.term == prev.term && !same_process_resumes) {
                violations.push(format!(
                    "{of}term went from {} ({}) to {} ({})",
                    prev.term,
                    named(prev.process()),
                    i.term,
                    named(i.process())
                ));
            }
        }
        if latest.is_none_or(|p| i.end_ns >= p.end_ns) {
            latest = Some(i);
        }
    }
}

impl Interval {
    fn process(&self) -> Process {
        (self.journal, self.pid)
    }
}

fn close(report: &mut Report, mut interval: Interval, end: u64, reason: Option<EndReason>) {
    interval.end_ns = end.max(interval.start_ns);
    interval.reason = reason;
    report.intervals.push(interval);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pid: u32, term: u64, t_ns: u64, event: Event) -> Record {
        Record {
            event,
            id: format!("n{pid}"),
            pid,
            term,
            t_ns,
            shard: None,
        }
    }
    fn acquired(pid: u32, term: u64, t: u64, deadline: u64) -> Record {
        rec(
            pid,
            term,
            t,
            Event::Acquired {
                deadline_ns: deadline,
            },
        )
    }
    fn renewed(pid: u32, term: u64, t: u64, deadline: u64) -> Record {
        rec(
            pid,
            term,
            t,
            Event::Renewed {
                deadline_ns: deadline,
            },
        )
    }
    fn ended(pid: u32, term: u64, t: u64) -> Record {
        rec(
            pid,
            term,
            t,
            Event::Ended {
                reason: EndReason::Shutdown,
            },
        )
    }

    fn of_shard(shard: u32, record: Record) -> Record {
        Record {
            shard: Some(shard),
            ..record
        }
    }

    #[test]
    fn shards_are_checked_each_on_its_own_and_renewals_extend_them_all() {
        let records = [
            // Process 1 leads shards 0 and 1, and the election (term 5).
            acquired(1, 5, 100, 1000),
            of_shard(0, acquired(1, 7, 110, 1000)),
            of_shard(1, acquired(1, 8, 120, 1000)),
            // Process 2 leads shard 2 at the same time: another shard.
            of_shard(2, acquired(2, 9, 130, 1000)),
            // A renewal of process 2, which leads no term of the election,
            // and one of process 1, which does: each extends its shards.
            renewed(2, 0, 900, 3000),
            renewed(1, 5, 900, 3000),
            // Shard 0 moves to process 2 after process 1 let it go.
            of_shard(0, ended(1, 7, 1500)),
            of_shard(0, acquired(2, 11, 1600, 3000)),
        ];
        let report = check_records(&records, &HashMap::new());
        report.assert_safe();
        let shard_2 = report.intervals.iter().find(|i| i.shard == Some(2));
        assert_eq!(shard_2.map(|i| i.end_ns), Some(3000), "renewed to 3000");
        // Shard 1 stays with process 1 until its deadline; process 2 taking
        // it before then is an overlap, of that shard only.
        let mut overlapping = records.to_vec();
        overlapping.push(of_shard(1, acquired(2, 12, 2000, 3000)));
        let report = check_records(&overlapping, &HashMap::new());
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
        assert!(
            report.violations[0].starts_with("shard 1: overlap"),
            "{:?}",
            report.violations
        );
        // A shard's term must grow.
        let mut backwards = records.to_vec();
        backwards.push(of_shard(0, ended(2, 11, 1700)));
        backwards.push(of_shard(0, acquired(1, 10, 1800, 3000)));
        let report = check_records(&backwards, &HashMap::new());
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.starts_with("shard 0: term went from 11")),
            "{:?}",
            report.violations
        );
    }

    #[test]
    fn a_clean_hand_over_passes() {
        let r = check_records(
            &[
                acquired(1, 5, 100, 200),
                renewed(1, 5, 150, 300),
                ended(1, 5, 250),
                acquired(2, 7, 251, 400),
            ],
            &HashMap::new(),
        );
        r.assert_safe();
        assert_eq!(r.intervals.len(), 2);
        assert_eq!(r.intervals[0].end_ns, 250);
        assert_eq!(r.longest_gap(100, 400), (250, 1));
        assert_eq!(r.longest_gap(0, 500), (0, 100));
        assert_eq!(r.gaps(0, 500), vec![(0, 100), (250, 251), (400, 500)]);
    }

    #[test]
    fn holes_are_cut_out_of_spans() {
        let spans = [(0, 100), (200, 300)];
        assert_eq!(without(&spans, &[]), spans.to_vec());
        assert_eq!(
            without(&spans, &[(10, 20), (90, 210), (250, 400)]),
            vec![(0, 10), (20, 90), (210, 250)]
        );
        assert_eq!(longest(&[(0, 10), (20, 90)]), (20, 70));
        assert_eq!(longest(&[]), (0, 0));
    }

    #[test]
    fn overlaps_are_caught() {
        let r = check_records(
            &[acquired(1, 5, 100, 300), acquired(2, 7, 200, 400)],
            &HashMap::new(),
        );
        assert!(
            r.violations.iter().any(|v| v.starts_with("overlap")),
            "{r:?}"
        );
    }

    #[test]
    fn a_killed_leader_ends_at_its_death_or_deadline() {
        let deaths = HashMap::from([(1, 150)]);
        let r = check_records(
            &[acquired(1, 5, 100, 300), acquired(2, 7, 200, 400)],
            &deaths,
        );
        r.assert_safe();
        assert_eq!(r.intervals[0].end_ns, 150);
    }

    #[test]
    fn terms_must_grow_and_belong_to_one_process() {
        let r = check_records(
            &[acquired(1, 7, 100, 150), acquired(2, 5, 200, 300)],
            &HashMap::new(),
        );
        assert!(
            r.violations.iter().any(|v| v.starts_with("term went")),
            "{r:?}"
        );
        let r = check_records(
            &[acquired(1, 7, 100, 150), acquired(2, 7, 200, 300)],
            &HashMap::new(),
        );
        assert!(
            r.violations.iter().any(|v| v.contains("two processes")),
            "{r:?}"
        );
        // The same process resuming its lapsed term is fine.
        let r = check_records(
            &[
                acquired(1, 7, 100, 150),
                rec(
                    1,
                    7,
                    150,
                    Event::Ended {
                        reason: EndReason::Deadline,
                    },
                ),
                acquired(1, 7, 160, 300),
            ],
            &HashMap::new(),
        );
        r.assert_safe();
    }

    #[test]
    fn processes_apart_are_their_journal_and_pid() {
        // electd is PID 2 in both containers: one process each (the first
        // killed, its term lapsed), not one that acquired twice.
        let apart = |journal, record| (Some(journal), record);
        let records = [
            apart(0, acquired(2, 5, 100, 200)),
            apart(1, acquired(2, 7, 300, 400)),
        ];
        let r = check_processes(&records, |_, _| None);
        r.assert_safe();
        assert_eq!(r.intervals[1].journal, Some(1));
        // Keyed by PID alone, the same records read as one process.
        let shared: Vec<_> = records.iter().map(|(_, r)| (None, r.clone())).collect();
        assert!(!check_processes(&shared, |_, _| None).violations.is_empty());

        // A death is its own journal's: container 0 killed at 150 ends its
        // term there, container 1's runs to its deadline and overlaps.
        let records = [
            apart(0, acquired(2, 5, 100, 300)),
            apart(1, acquired(2, 7, 200, 400)),
        ];
        let killed = |journal: Option<usize>, pid| (journal == Some(0) && pid == 2).then_some(150);
        check_processes(&records, killed).assert_safe();
        let killed = |journal: Option<usize>, pid| (journal == Some(1) && pid == 2).then_some(250);
        let r = check_processes(&records, killed);
        assert!(
            r.violations
                .iter()
                .any(|v| v.contains("overlap") && v.contains("pid 2 of journal 0")),
            "{r:?}"
        );
        assert_eq!(r.intervals[1].end_ns, 250);
    }

    #[test]
    fn an_end_after_the_deadline_is_a_violation() {
        let r = check_records(
            &[acquired(1, 5, 100, 200), ended(1, 5, 250)],
            &HashMap::new(),
        );
        assert!(!r.violations.is_empty());
    }
}
