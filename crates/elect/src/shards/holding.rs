//! Which shards this process leads, journaled before anyone acts on it.
//!
//! Two tasks change it: the shards task, which decides from etcd what is
//! led (and gives shards away), and the election loop, which gives up the
//! claim every shard is led under (a shutdown, a lost lease). One lock
//! orders them, so a shard's `ended` line is always written before the
//! write that lets another node lead it, and a claim given up is never
//! led under again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::claim::HeldClaim;
use crate::clock::instant_to_ns;
use crate::journal::{EndReason, Event, Journal};
use crate::telemetry::Telemetry;

/// What this process leads, by shard, with each shard's term.
pub(crate) type Led = BTreeMap<u32, u64>;

pub(crate) struct Holding {
    inner: Mutex<Inner>,
    telemetry: Arc<dyn Telemetry>,
    /// A guard was let go: the shards task looks again at what it may
    /// hand on.
    released: Notify,
}

struct Inner {
    journal: Journal,
    led: Led,
    /// The deadline the shards in `led` are led until at the latest.
    deadline: Option<Instant>,
    /// Claims the election loop gave up: never led under again.
    given_up: HashSet<u64>,
    /// The shards whose work runs (a guard given out and not let go), with
    /// the term it was given for: not handed on until it is let go.
    working: HashMap<u32, u64>,
}

impl Holding {
    pub(crate) fn new(journal: Journal, telemetry: Arc<dyn Telemetry>) -> Holding {
        Holding {
            telemetry,
            inner: Mutex::new(Inner {
                journal,
                led: Led::new(),
                deadline: None,
                given_up: HashSet::new(),
                working: HashMap::new(),
            }),
            released: Notify::new(),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Plain data, changed in place by calls that cannot panic midway.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shards task: `next` is what it may lead under `claim` now.
    /// Journals what ends (`why` says why each ended) and then what
    /// begins; returns what is led, which is nothing under a claim the
    /// loop gave up.
    pub(crate) fn lead(
        &self,
        claim: Option<HeldClaim>,
        next: &Led,
        why: impl Fn(u32) -> EndReason,
    ) -> Led {
        let mut inner = self.inner();
        let claim = claim.filter(|c| !inner.given_up.contains(&c.id));
        let empty = Led::new();
        let next = if claim.is_some() { next } else { &empty };
        let ending: Vec<(u32, u64)> = inner
            .led
            .iter()
            .filter(|(shard, term)| next.get(shard) != Some(term))
            .map(|(shard, term)| (*shard, *term))
            .collect();
        for (shard, term) in ending {
            let reason = why(shard);
            inner.end(shard, term, reason);
            self.telemetry.shard_ended(reason);
        }
        if let Some(claim) = claim {
            inner.deadline = Some(claim.deadline);
            for (&shard, &term) in next {
                if !inner.led.contains_key(&shard) {
                    let deadline_ns = instant_to_ns(claim.deadline);
                    inner.journal.write_for(
                        Some(shard),
                        term,
                        instant_to_ns(Instant::now()),
                        Event::Acquired { deadline_ns },
                    );
                    inner.led.insert(shard, term);
                    self.telemetry.shard_acquired();
                }
            }
        }
        inner.led.clone()
    }

    /// A guard given out for `shard` at `term`: its work runs from now
    /// until [`Holding::let_go`].
    pub(crate) fn work(&self, shard: u32, term: u64) {
        self.inner().working.insert(shard, term);
    }

    /// The work of `shard` at `term` has stopped (its guard was dropped).
    pub(crate) fn let_go(&self, shard: u32, term: u64) {
        let mut inner = self.inner();
        if inner.working.get(&shard) == Some(&term) {
            inner.working.remove(&shard);
        }
        drop(inner);
        self.released.notify_one();
    }

    /// Whether `shard`'s work still runs.
    pub(crate) fn working(&self, shard: u32) -> bool {
        self.inner().working.contains_key(&shard)
    }

    /// Resolves once a guard was let go since the last call.
    pub(crate) async fn released(&self) {
        self.released.notified().await;
    }

    /// The election loop gives up claim `id`: every shard led under it
    /// ends now, for `reason`, before the loop's release is sent.
    pub(crate) fn give_up(&self, id: u64, reason: EndReason) {
        let mut inner = self.inner();
        inner.given_up.insert(id);
        let led = std::mem::take(&mut inner.led);
        for (shard, term) in led {
            inner.end(shard, term, reason);
            self.telemetry.shard_ended(reason);
        }
    }
}

impl Inner {
    /// Journals the end of `shard`'s leadership: now, or at the deadline
    /// if that came first.
    fn end(&mut self, shard: u32, term: u64, reason: EndReason) {
        let now = Instant::now();
        let at = self.deadline.map_or(now, |d| now.min(d));
        self.journal.write_for(
            Some(shard),
            term,
            instant_to_ns(at),
            Event::Ended { reason },
        );
        self.led.remove(&shard);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::journal::Record;

    fn lines(path: &std::path::Path) -> Vec<Record> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a record"))
            .collect()
    }

    #[test]
    fn shards_are_journaled_as_they_begin_and_end_and_a_claim_given_up_leads_nothing() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("j.jsonl");
        let journal = Journal::open(Some(&path), "a").expect("a journal");
        let holding = Holding::new(journal, Arc::new(crate::telemetry::NoTelemetry));
        let claim = Some(HeldClaim {
            id: 7,
            deadline: Instant::now() + Duration::from_secs(5),
        });
        let led = holding.lead(claim, &Led::from([(1, 10), (2, 11)]), |_| EndReason::Lost);
        assert_eq!(led.len(), 2);
        let led = holding.lead(claim, &Led::from([(2, 11)]), |_| EndReason::Transfer);
        assert_eq!(led, Led::from([(2, 11)]));
        holding.give_up(7, EndReason::Shutdown);
        let again = holding.lead(claim, &Led::from([(2, 11)]), |_| EndReason::Lost);
        assert!(again.is_empty(), "led under a claim given up: {again:?}");
        let records = lines(&path);
        let seen: Vec<(Option<u32>, &str)> = records
            .iter()
            .map(|r| {
                let what = match &r.event {
                    Event::Acquired { .. } => "acquired",
                    Event::Ended { reason } => reason.as_str(),
                    Event::Renewed { .. } => "renewed",
                };
                (r.shard, what)
            })
            .collect();
        assert_eq!(
            seen,
            [
                (Some(1), "acquired"),
                (Some(2), "acquired"),
                (Some(1), "transfer"),
                (Some(2), "shutdown"),
            ]
        );
    }
}
