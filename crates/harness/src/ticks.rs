//! What `--exec` commands under test write, and how to read it back: one
//! line per 50 ms with the command's term, PID and the time, plus the PID of
//! a grandchild it started and the `ELECTD_*` variables it saw.
//!
//! ```text
//! env <pid> ELECTD_TERM=7
//! grandchild <pid> <grandchild pid>
//! tick <term> <pid> <ns>
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A command that writes this format: its environment, a grandchild in its
/// process group, then its term, PID and the time (`date`, so read it back
/// with [`realtime_offset`]) every 50 ms. Its first argument is the file.
pub const TICKER: &str = r#"#!/bin/sh
f="$1"
env | grep '^ELECTD_' | sed "s/^/env $$ /" >> "$f"
sleep 1000 &
echo "grandchild $$ $!" >> "$f"
while :; do echo "tick $ELECTD_TERM $$ $(date +%s%N)" >> "$f"; sleep 0.05; done
"#;

/// Writes [`TICKER`] into `dir`; returns its path.
pub fn write_ticker(dir: &Path) -> PathBuf {
    let script = dir.join("ticker.sh");
    std::fs::write(&script, TICKER).expect("the ticker script is written");
    script
}

/// One command process, from its first tick to its last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    /// The node (tick file) it belongs to.
    pub node: String,
    /// Its `ELECTD_TERM`.
    pub term: u64,
    /// First tick, `CLOCK_MONOTONIC` ns.
    pub first: u64,
    /// Last tick, `CLOCK_MONOTONIC` ns.
    pub last: u64,
}

/// Everything the tick files say.
#[derive(Debug, Default)]
pub struct Ticks {
    /// Every command process, by first tick.
    pub children: Vec<Child>,
    /// Grandchild PIDs.
    pub grandchildren: Vec<u32>,
    /// `VAR=value` lines the commands saw.
    pub env: Vec<String>,
}

impl Ticks {
    /// Pairs of children that ran at the same time.
    pub fn overlaps(&self) -> Vec<(Child, Child)> {
        self.children
            .windows(2)
            .filter(|w| w[1].first <= w[0].last)
            .map(|w| (w[0].clone(), w[1].clone()))
            .collect()
    }
}

/// `CLOCK_REALTIME` − `CLOCK_MONOTONIC` now, in ns: subtracted from the
/// times commands took from `date +%s%N`, it puts them on the journals' clock.
pub fn realtime_offset() -> i128 {
    let realtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    realtime - crate::now_ns() as i128
}

/// Reads `(node, file)` tick files. `offset` is subtracted from each time
/// (the realtime − monotonic offset when the times came from `date`, else 0).
pub fn read(files: &[(String, PathBuf)], offset: i128) -> Ticks {
    let mut children: HashMap<u32, Child> = HashMap::new();
    let mut ticks = Ticks::default();
    for (node, file) in files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["tick", term, pid, ns] => {
                    let (Ok(term), Ok(pid), Ok(ns)) =
                        (term.parse(), pid.parse::<u32>(), ns.parse::<i128>())
                    else {
                        continue;
                    };
                    let t = u64::try_from(ns - offset).unwrap_or(0);
                    let child = children.entry(pid).or_insert(Child {
                        node: node.clone(),
                        term,
                        first: t,
                        last: t,
                    });
                    child.first = child.first.min(t);
                    child.last = child.last.max(t);
                }
                ["grandchild", _, pid] => {
                    if let Ok(pid) = pid.parse() {
                        ticks.grandchildren.push(pid);
                    }
                }
                ["env", _, var] => ticks.env.push((*var).to_owned()),
                _ => {}
            }
        }
    }
    ticks.children = children.into_values().collect();
    ticks.children.sort_by_key(|c| c.first);
    ticks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_children_and_finds_overlaps() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(
            &a,
            "env 10 ELECTD_TERM=3\ngrandchild 10 11\ntick 3 10 100\ntick 3 10 200\n",
        )
        .unwrap();
        std::fs::write(&b, "tick 5 20 150\ntick 5 20 300\n").unwrap();
        let ticks = read(&[("a".into(), a), ("b".into(), b)], 0);
        assert_eq!(ticks.children.len(), 2);
        assert_eq!(ticks.children[0].last, 200);
        assert_eq!(ticks.grandchildren, vec![11]);
        assert_eq!(ticks.env, vec!["ELECTD_TERM=3"]);
        assert_eq!(ticks.overlaps().len(), 1);
    }
}
