//! TEST DOUBLE: an in-memory election store for deterministic tests of the
//! state machine (and of programs built on it) under paused tokio time. It
//! never stands in for etcd anywhere else: integration tests and demos use a
//! real etcd.
//!
//! Two modes, one per API's shape: a single key, claimed only when vacant
//! (v2), or a queue (v3), where every campaign holds a claim at once and the
//! first in line leads when the leader's place is vacant, with a term newer
//! than its claim.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep};

use super::{Backend, Campaign, Change, Handover, RenewError, Renewal, Target, View};
use crate::error::{EtcdError, TransferError};
use crate::journal::EndReason;
use crate::status::{Candidate, Leader, Status};
use crate::value::Candidacy;

/// How the double answers renewals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenewScript {
    /// Acknowledge after `latency`.
    Answer {
        /// How long each renewal takes.
        latency: Duration,
    },
    /// Fail at once, as when etcd is unreachable.
    Fail,
}

#[derive(Clone, Debug)]
enum Owner {
    /// Our claim, by its id.
    Us(u64),
    Other(String),
    Foreign,
}

struct Store {
    revision: u64,
    /// The leader's place: its term and holder.
    key: Option<(u64, Owner)>,
    /// Queue mode: our claim waiting in line, by id.
    queued: VecDeque<u64>,
    renew: RenewScript,
    renewals: u32,
    /// Whether the node still called itself leader when it asked to release.
    leader_at_release: Vec<bool>,
    /// The claim was left to expire: a release leaves it alone.
    forgotten: bool,
    observer: Option<watch::Receiver<Status>>,
}

/// The double: a store of one election, and the handle a test drives it by.
/// `QUEUE` picks the mode (module comment).
pub struct Memory<const QUEUE: bool> {
    ttl: Duration,
    store: Mutex<Store>,
    tx: mpsc::UnboundedSender<Change>,
}

impl<const QUEUE: bool> Memory<QUEUE> {
    pub(crate) fn new(ttl: Duration, tx: mpsc::UnboundedSender<Change>) -> Memory<QUEUE> {
        Memory {
            ttl,
            store: Mutex::new(Store {
                revision: 1,
                key: None,
                queued: VecDeque::new(),
                renew: RenewScript::Answer {
                    latency: Duration::from_millis(1),
                },
                renewals: 0,
                leader_at_release: Vec::new(),
                forgotten: false,
                observer: None,
            }),
            tx,
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn view(store: &Store) -> View {
        let leader = store.key.as_ref().map(|(term, owner)| match owner {
            Owner::Us(_) => Leader {
                id: Some("me".into()),
                advertise: Some("http://127.0.0.1:8080".into()),
                term: *term,
                verified: true,
            },
            Owner::Other(id) => Leader {
                id: Some(id.clone()),
                advertise: Some("http://127.0.0.1:9090".into()),
                term: *term,
                verified: true,
            },
            Owner::Foreign => Leader {
                id: None,
                advertise: None,
                term: *term,
                verified: false,
            },
        });
        View {
            revision: store.revision,
            epoch: 0,
            mine: match store.key {
                Some((_, Owner::Us(claim))) => Some(claim),
                _ => None,
            },
            leader,
            claimable_at: None,
            obstacle: None,
            asked: None,
        }
    }

    /// Queue mode: the first in line takes a vacant place, with a new term.
    fn promote(store: &mut Store) {
        if QUEUE
            && store.key.is_none()
            && let Some(claim) = store.queued.pop_front()
        {
            store.revision += 1;
            store.key = Some((store.revision, Owner::Us(claim)));
        }
    }

    fn announce(&self, store: &mut Store) {
        Self::promote(store);
        let _ = self.tx.send(Change::View(Self::view(store)));
    }

    /// Someone else deletes the key, as v2 reports a plain delete: its holder
    /// may lead until a TTL from now.
    pub fn delete_by_someone_else(&self) {
        let mut store = self.store();
        store.revision += 1;
        store.key = None;
        let mut view = Self::view(&store);
        view.claimable_at = Some(Instant::now() + self.ttl);
        let _ = self.tx.send(Change::View(view));
    }

    /// Lets the double see the node's status when it releases.
    pub(crate) fn observe(&self, status: watch::Receiver<Status>) {
        self.store().observer = Some(status);
    }

    /// How renewals are answered from now on.
    pub fn script_renewals(&self, script: RenewScript) {
        self.store().renew = script;
    }

    /// Renewals acknowledged so far.
    pub fn renewals(&self) -> u32 {
        self.store().renewals
    }

    /// For each release, whether the node still called itself leader then.
    pub fn leader_at_release(&self) -> Vec<bool> {
        self.store().leader_at_release.clone()
    }

    /// The leader's place expires (or is deleted) in etcd.
    pub fn expire(&self) {
        let mut store = self.store();
        store.revision += 1;
        store.key = None;
        self.announce(&mut store);
    }

    /// Another node holds the leader's place with a new term.
    pub fn take_over(&self, id: &str) {
        let mut store = self.store();
        store.revision += 1;
        store.key = Some((store.revision, Owner::Other(id.to_owned())));
        self.announce(&mut store);
    }

    /// Someone overwrites the leader's place with a value electd did not write.
    pub fn overwrite_foreign(&self) {
        let mut store = self.store();
        store.revision += 1;
        let term = store.key.as_ref().map_or(store.revision, |(t, _)| *t);
        store.key = Some((term, Owner::Foreign));
        self.announce(&mut store);
    }

    /// The term of the leader's place, if held.
    pub fn term(&self) -> Option<u64> {
        self.store().key.as_ref().map(|(term, _)| *term)
    }
}

impl<const QUEUE: bool> Backend for Memory<QUEUE> {
    const QUEUES: bool = QUEUE;

    fn start(&self) {
        let mut store = self.store();
        self.announce(&mut store);
    }

    async fn campaign(&self) -> Result<Campaign, EtcdError> {
        let sent_at = Instant::now();
        let mut store = self.store();
        store.forgotten = false;
        let renewal = Renewal {
            sent_at,
            ttl: self.ttl,
        };
        if QUEUE {
            store.revision += 1;
            let claim = store.revision;
            store.queued.push_back(claim);
            self.announce(&mut store);
            return Ok(Campaign::Claimed {
                claim,
                view: Some(Box::new(Self::view(&store))),
                renewal,
            });
        }
        if store.key.is_some() {
            return Ok(Campaign::Taken {
                revision: store.revision,
            });
        }
        store.revision += 1;
        let term = store.revision;
        store.key = Some((term, Owner::Us(term)));
        self.announce(&mut store);
        Ok(Campaign::Claimed {
            claim: term,
            view: Some(Box::new(Self::view(&store))),
            renewal,
        })
    }

    async fn renew(&self) -> Result<Renewal, RenewError> {
        let sent_at = Instant::now();
        let script = self.store().renew;
        match script {
            RenewScript::Fail => Err(RenewError::Failed(EtcdError::unreachable(
                "memory",
                "scripted failure",
            ))),
            RenewScript::Answer { latency } => {
                sleep(latency).await;
                let mut store = self.store();
                let held = matches!(store.key, Some((_, Owner::Us(_)))) || !store.queued.is_empty();
                if !held {
                    return Err(RenewError::Lost);
                }
                store.renewals += 1;
                Ok(Renewal {
                    sent_at,
                    ttl: self.ttl,
                })
            }
        }
    }

    async fn forget(&self) {
        self.store().forgotten = true;
    }

    async fn release(&self, _why: EndReason) -> Result<(), EtcdError> {
        let mut store = self.store();
        if store.forgotten {
            return Ok(());
        }
        let leading = store
            .observer
            .as_ref()
            .is_some_and(|s| s.borrow().is_leader());
        store.leader_at_release.push(leading);
        store.queued.clear();
        if matches!(store.key, Some((_, Owner::Us(_)))) {
            store.revision += 1;
            store.key = None;
            self.announce(&mut store);
        }
        Ok(())
    }

    async fn set_candidacy(&self, _candidacy: Candidacy) -> Result<(), EtcdError> {
        // The double shows no queue; the loop's own gating is what is tested.
        Ok(())
    }

    fn handover_target(&self, _id: &str) -> Result<Target, TransferError> {
        Err(TransferError::NeedsV3)
    }

    async fn hand_over(&self, _target: &Target, _reason: Handover) -> Result<i64, TransferError> {
        Err(TransferError::NeedsV3)
    }

    async fn cancel_hand_over(&self, _revision: i64) -> Result<bool, EtcdError> {
        Ok(false)
    }

    async fn candidates(&self) -> Result<Vec<Candidate>, EtcdError> {
        let view = Self::view(&self.store());
        Ok(view
            .leader
            .iter()
            .map(|l| Candidate::leader(l, None))
            .collect())
    }

    fn stop(&self) {}
}
