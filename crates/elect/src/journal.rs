//! The leadership journal: one JSON line per leadership event, appended and
//! handed to the kernel *before* the node acts on the event, so a checker can
//! prove from the journals of a run that no two leaderships overlapped.
//!
//! ```text
//! {"event":"acquired","deadline_ns":…,"id":"a","pid":42,"term":7,"t_ns":…}
//! {"event":"renewed","deadline_ns":…,"id":"a","pid":42,"term":7,"t_ns":…}
//! {"event":"ended","reason":"shutdown","id":"a","pid":42,"term":7,"t_ns":…}
//! {"event":"acquired","deadline_ns":…,"id":"a","pid":42,"shard":3,"term":9,"t_ns":…}
//! ```
//!
//! With `--shards`, each shard's leadership has its own `acquired` and
//! `ended` lines, with a `shard` field; `renewed` lines (term 0 when the
//! process does not lead the election itself) apply to every leadership
//! the process holds.
//!
//! Times are `CLOCK_MONOTONIC` nanoseconds, one clock for every process of a host.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Why a leadership ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EndReason {
    /// Released on request (API or `/v1/resign`).
    Resign,
    /// Released because the process is shutting down.
    Shutdown,
    /// The deadline passed without a confirmed renewal.
    Deadline,
    /// etcd says the key is not ours any more (compare failed, key or lease gone).
    Lost,
    /// The program's health check failed: it stepped down and released.
    Unhealthy,
    /// Drained by an operator: it stepped down and released.
    Drain,
    /// Handed to a named candidate.
    Transfer,
    /// Handed to a candidate of higher priority that asked for it.
    Preempted,
}

impl EndReason {
    /// Every reason, so that a metric can export each one from the start
    /// (at 0) rather than only those seen.
    pub const ALL: [EndReason; 8] = [
        EndReason::Resign,
        EndReason::Shutdown,
        EndReason::Deadline,
        EndReason::Lost,
        EndReason::Unhealthy,
        EndReason::Drain,
        EndReason::Transfer,
        EndReason::Preempted,
    ];

    /// The reason as written in journals and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Resign => "resign",
            EndReason::Shutdown => "shutdown",
            EndReason::Deadline => "deadline",
            EndReason::Lost => "lost",
            EndReason::Unhealthy => "unhealthy",
            EndReason::Drain => "drain",
            EndReason::Transfer => "transfer",
            EndReason::Preempted => "preempted",
        }
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Event {
    /// Leadership confirmed (also when a lapsed term resumes).
    Acquired {
        /// The deadline, `CLOCK_MONOTONIC` ns.
        deadline_ns: u64,
    },
    /// A renewal was acknowledged.
    Renewed {
        /// The new deadline, `CLOCK_MONOTONIC` ns.
        deadline_ns: u64,
    },
    /// Leadership ended; `t_ns` is when the node stopped calling itself leader.
    Ended {
        /// Why.
        reason: EndReason,
    },
}

/// One journal line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
    /// The node's id.
    pub id: String,
    /// The process that wrote the line.
    pub pid: u32,
    /// The term the event belongs to.
    pub term: u64,
    /// When, `CLOCK_MONOTONIC` ns.
    pub t_ns: u64,
    /// With `--shards`: the shard an `acquired` or `ended` line is about
    /// (absent: the election itself). A `renewed` line never has one: it
    /// applies to everything the process leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
}

/// Appends records to the journal file, if one is configured.
pub(crate) struct Journal {
    file: Option<File>,
    id: String,
    pid: u32,
}

impl Journal {
    pub(crate) fn open(path: Option<&Path>, id: &str) -> Result<Journal, ConfigError> {
        let file = path
            .map(|p| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|source| ConfigError::Journal {
                        path: p.to_owned(),
                        source,
                    })
            })
            .transpose()?;
        Ok(Journal {
            file,
            id: id.to_owned(),
            pid: std::process::id(),
        })
    }

    /// Writes one line with a single `write(2)`: with `O_APPEND` it lands whole
    /// and is in the kernel's hands before we act.
    pub(crate) fn write(&mut self, term: u64, t_ns: u64, event: Event) {
        self.write_for(None, term, t_ns, event);
    }

    /// Like [`Journal::write`], for `shard` (`None`: the election).
    pub(crate) fn write_for(&mut self, shard: Option<u32>, term: u64, t_ns: u64, event: Event) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let record = Record {
            event,
            id: self.id.clone(),
            pid: self.pid,
            term,
            t_ns,
            shard,
        };
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        if let Err(err) = file.write_all(&line) {
            tracing::error!(%err, "cannot append to the journal");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_documented_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut j = Journal::open(Some(&path), "a").unwrap();
        j.write(7, 100, Event::Acquired { deadline_ns: 200 });
        j.write(
            7,
            150,
            Event::Ended {
                reason: EndReason::Shutdown,
            },
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["event"], "acquired");
        assert_eq!(lines[0]["deadline_ns"], 200);
        assert_eq!(lines[0]["term"], 7);
        assert_eq!(lines[0]["pid"], std::process::id());
        assert_eq!(lines[1]["event"], "ended");
        assert_eq!(lines[1]["reason"], "shutdown");
        let back: Record = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(back.event, Event::Acquired { deadline_ns: 200 });
    }

    #[test]
    fn an_unopenable_journal_is_a_configuration_error() {
        let err = Journal::open(Some(Path::new("/nonexistent-dir/j")), "a").err();
        assert!(matches!(err, Some(ConfigError::Journal { .. })));
    }
}
