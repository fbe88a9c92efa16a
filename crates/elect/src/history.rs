//! What this node knows of etcd's history: the highest revision (v2: index)
//! it has seen, and the floor below which no term is current.
//!
//! A linearizable answer (a quorum read or a write) reflects every write
//! acknowledged before its request left. So if a request *sent* after an
//! answer at revision `r` comes back at a revision below `r`, etcd's history
//! went backwards: its data was wiped or restored from an older snapshot,
//! and a term handed out now could repeat a fencing token someone already
//! holds. Answers that are not linearizable (keep-alives, lease lookups,
//! watch events, served by whichever member holds the stream) are never
//! compared. A member that has not caught up yet cannot cause a false
//! alarm this way: a linearizable request waits until the member has.
//!
//! The floor only grows: every term seen raises it, and a regression lifts
//! it past the highest revision seen. With a state file both survive a
//! restart; without one, a restarted node accepts whatever history etcd has
//! (a node that never saw the old history cannot tell it was lost).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::ConfigError;

/// Revisions as seen by one backend: shared by its requests and the loop.
#[derive(Debug, Default)]
pub(crate) struct Revisions {
    high: AtomicU64,
    floor: AtomicU64,
    /// Counts regressions. A view is tagged with the epoch current once its
    /// answer was checked, so the loop can drop views of a lost history
    /// that were still on their way when a regression was noticed.
    epoch: AtomicU64,
    /// The highest revision of a history etcd lost (0: none lost since
    /// start): shards are led only at terms above it.
    lost: AtomicU64,
}

/// etcd answered a request at a revision below one seen before the request left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Regression {
    pub from: u64,
    pub to: u64,
    /// The epoch this regression began.
    pub epoch: u64,
}

impl Revisions {
    pub(crate) fn new(saved: Saved) -> Revisions {
        Revisions {
            high: AtomicU64::new(saved.revision),
            floor: AtomicU64::new(saved.floor),
            epoch: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }

    /// Taken just before a linearizable request leaves.
    pub(crate) fn before_request(&self) -> u64 {
        self.high.load(Ordering::Acquire)
    }

    /// Records the revision of a linearizable answer to a request sent when
    /// the highest revision seen was `before`. On a regression the floor
    /// rises past the old history at once, before anyone acts on the
    /// answer, and the new history becomes the one compared against.
    pub(crate) fn answered(&self, before: u64, revision: u64) -> Option<Regression> {
        if revision < before {
            self.floor
                .fetch_max(before.saturating_add(1), Ordering::AcqRel);
            self.lost.fetch_max(before, Ordering::AcqRel);
            self.high.store(revision, Ordering::Release);
            let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
            return Some(Regression {
                from: before,
                to: revision,
                epoch,
            });
        }
        self.high.fetch_max(revision, Ordering::AcqRel);
        None
    }

    /// Records a revision seen in a watch event or progress notification.
    /// Not compared (the member that streams it may lag), but what it shows
    /// was committed, so any linearizable answer sent later must be at
    /// least at it.
    pub(crate) fn observed(&self, revision: u64) {
        self.high.fetch_max(revision, Ordering::AcqRel);
    }

    /// The current epoch: tag a view with it after its answer was checked.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The highest revision seen.
    pub(crate) fn high(&self) -> u64 {
        self.high.load(Ordering::Acquire)
    }

    /// The lowest term that may still be current.
    /// The highest revision of a history etcd has since lost (wiped or
    /// restored from an older snapshot), 0 if none.
    pub(crate) fn lost(&self) -> u64 {
        self.lost.load(Ordering::Acquire)
    }

    pub(crate) fn floor(&self) -> u64 {
        self.floor.load(Ordering::Acquire)
    }

    /// Raises the floor to `term`; returns whether it moved.
    pub(crate) fn raise_floor(&self, term: u64) -> bool {
        self.floor.fetch_max(term, Ordering::AcqRel) < term
    }
}

/// What the state file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Saved {
    /// The term floor.
    pub floor: u64,
    /// The highest revision seen.
    pub revision: u64,
}

/// Reads the state file; a missing file is a fresh start.
/// Reads the state file `program` keeps (`program` names it in messages).
pub(crate) fn load(path: &Path, program: &str) -> Result<Saved, ConfigError> {
    let bad = |reason: String| ConfigError::StateFile {
        path: path.to_owned(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            bad(format!(
                "not a state file of {program} ({e}); remove it to start over"
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Fail now, not at the first write, if it can never be written.
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            match dir.map(std::fs::metadata) {
                Some(Err(e)) => Err(bad(format!("its directory cannot be used: {e}"))),
                _ => Ok(Saved::default()),
            }
        }
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Keeps the state file up to date from a background task: the loop only
/// hands over the latest state, never waits for the disk.
pub(crate) struct Keeper {
    path: PathBuf,
    latest: watch::Sender<Saved>,
    last_write: tokio::time::Instant,
}

impl Keeper {
    /// Starts the writer for `path`, which holds `saved` now.
    pub(crate) fn start(path: PathBuf, saved: Saved) -> Keeper {
        let (latest, mut changes) = watch::channel(saved);
        let writer = path.clone();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let state = *changes.borrow_and_update();
                let path = path.clone();
                let written = tokio::task::spawn_blocking(move || write(&path, state)).await;
                if let Ok(Err(err)) = written {
                    tracing::warn!(%err, "cannot write the state file");
                }
            }
        });
        Keeper {
            path: writer,
            latest,
            last_write: tokio::time::Instant::now(),
        }
    }

    /// Records the state, for the writer to save: at once when the floor
    /// moved, else at most every `every` (a v2 index moves with every
    /// renewal; a revision saved a little late only narrows what a restart
    /// can notice, while the floor, saved at once, keeps terms safe).
    pub(crate) fn note(&mut self, state: Saved, every: std::time::Duration) {
        let revision_due = self.last_write.elapsed() >= every;
        let sent = self.latest.send_if_modified(|saved| {
            let due =
                state.floor != saved.floor || (state.revision != saved.revision && revision_due);
            if due {
                *saved = state;
            }
            due
        });
        if sent {
            self.last_write = tokio::time::Instant::now();
        }
    }

    /// Writes the latest state now, on the caller's thread: at shutdown.
    pub(crate) fn flush(&self, state: Saved) {
        if let Err(err) = write(&self.path, state) {
            tracing::warn!(%err, "cannot write the state file");
        }
    }
}

/// Writes atomically: a crash leaves the old file or the new one, never half.
fn write(path: &Path, state: Saved) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec(&state).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_answer_below_what_was_seen_before_sending_is_a_regression() {
        let revisions = Revisions::new(Saved::default());
        let before = revisions.before_request();
        assert_eq!(revisions.answered(before, 100), None);
        // A request sent earlier may come back later with a lower revision.
        assert_eq!(revisions.answered(before, 90), None);
        assert_eq!(revisions.high(), 100);
        let before = revisions.before_request();
        assert_eq!(
            revisions.answered(before, 4),
            Some(Regression {
                from: 100,
                to: 4,
                epoch: 1
            })
        );
        assert_eq!(revisions.epoch(), 1);
        assert_eq!(
            revisions.floor(),
            101,
            "the floor rose past the old history"
        );
        // The new history is compared against from now on.
        assert_eq!(revisions.answered(revisions.before_request(), 5), None);
    }

    #[test]
    fn the_floor_only_grows() {
        let revisions = Revisions::new(Saved {
            floor: 7,
            revision: 9,
        });
        assert!(!revisions.raise_floor(5));
        assert_eq!(revisions.floor(), 7);
        assert!(revisions.raise_floor(8));
        assert_eq!(revisions.floor(), 8);
    }

    #[test]
    fn the_state_file_round_trips_and_bad_ones_are_configuration_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path, "electd").unwrap(), Saved::default());
        let state = Saved {
            floor: 42,
            revision: 99,
        };
        write(&path, state).unwrap();
        assert_eq!(load(&path, "electd").unwrap(), state);
        std::fs::write(&path, "garbage").unwrap();
        assert!(matches!(
            load(&path, "electd"),
            Err(ConfigError::StateFile { .. })
        ));
        assert!(matches!(
            load(&dir.path().join("missing").join("state.json"), "electd"),
            Err(ConfigError::StateFile { .. })
        ));
    }
}
