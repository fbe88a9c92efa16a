//! TEST DOUBLE: an in-memory, single-key election store for deterministic
//! unit tests of the state machine under paused tokio time. It never stands
//! in for etcd anywhere else: integration tests and demos use a real etcd.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep};

use super::{Backend, Campaign, Change, RenewError, Renewal, View};
use crate::error::EtcdError;
use crate::status::{Leader, Status};

/// How the double answers renewals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RenewScript {
    /// Acknowledge after `latency`.
    Answer { latency: Duration },
    /// Fail at once, as when etcd is unreachable.
    Fail,
}

#[derive(Clone, Debug)]
enum Owner {
    Us,
    Other(String),
    Foreign,
}

struct Store {
    revision: u64,
    key: Option<(u64, Owner)>,
    renew: RenewScript,
    renewals: u32,
    /// Whether the node still called itself leader when it asked to release.
    leader_at_release: Vec<bool>,
    /// The claim was left to expire: a release leaves it alone.
    forgotten: bool,
    observer: Option<watch::Receiver<Status>>,
}

pub(crate) struct Memory {
    ttl: Duration,
    store: Mutex<Store>,
    tx: mpsc::UnboundedSender<Change>,
}

impl Memory {
    pub(crate) fn new(ttl: Duration, tx: mpsc::UnboundedSender<Change>) -> Memory {
        Memory {
            ttl,
            store: Mutex::new(Store {
                revision: 1,
                key: None,
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
        self.store.lock().expect("test double lock")
    }

    fn view(store: &Store) -> View {
        let leader = store.key.as_ref().map(|(term, owner)| match owner {
            Owner::Us => Leader {
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
                Some((term, Owner::Us)) => Some(term),
                _ => None,
            },
            leader,
            claimable_at: None,
            obstacle: None,
        }
    }

    fn announce(&self, store: &Store) {
        let _ = self.tx.send(Change::View(Self::view(store)));
    }

    /// Someone else deletes the key, as v2 reports a plain delete: its holder
    /// may lead until a TTL from now.
    pub(crate) fn delete_by_someone_else(&self) {
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

    pub(crate) fn script_renewals(&self, script: RenewScript) {
        self.store().renew = script;
    }

    pub(crate) fn renewals(&self) -> u32 {
        self.store().renewals
    }

    pub(crate) fn leader_at_release(&self) -> Vec<bool> {
        self.store().leader_at_release.clone()
    }

    /// The key expires (or is deleted) in etcd.
    pub(crate) fn expire(&self) {
        let mut store = self.store();
        store.revision += 1;
        store.key = None;
        self.announce(&store);
    }

    /// Another node holds the key with a new term.
    pub(crate) fn take_over(&self, id: &str) {
        let mut store = self.store();
        store.revision += 1;
        store.key = Some((store.revision, Owner::Other(id.to_owned())));
        self.announce(&store);
    }

    /// Someone overwrites the key with a value electd did not write.
    pub(crate) fn overwrite_foreign(&self) {
        let mut store = self.store();
        store.revision += 1;
        let term = store.key.as_ref().map_or(store.revision, |(t, _)| *t);
        store.key = Some((term, Owner::Foreign));
        self.announce(&store);
    }
}

impl Backend for Memory {
    const QUEUES: bool = false;

    fn start(&self) {
        let store = self.store();
        self.announce(&store);
    }

    async fn campaign(&self) -> Result<Campaign, EtcdError> {
        let sent_at = Instant::now();
        let mut store = self.store();
        store.forgotten = false;
        if store.key.is_some() {
            return Ok(Campaign::Taken {
                revision: store.revision,
            });
        }
        store.revision += 1;
        let term = store.revision;
        store.key = Some((term, Owner::Us));
        self.announce(&store);
        Ok(Campaign::Claimed {
            claim: term,
            view: Some(Box::new(Self::view(&store))),
            renewal: Renewal {
                sent_at,
                ttl: self.ttl,
            },
        })
    }

    async fn renew(&self) -> Result<Renewal, RenewError> {
        let sent_at = Instant::now();
        let script = self.store().renew;
        match script {
            RenewScript::Fail => Err(RenewError::Failed(EtcdError::Unreachable {
                endpoint: "memory".into(),
                detail: "scripted failure".into(),
            })),
            RenewScript::Answer { latency } => {
                sleep(latency).await;
                let mut store = self.store();
                if !matches!(store.key, Some((_, Owner::Us))) {
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

    async fn release(&self) -> Result<(), EtcdError> {
        let mut store = self.store();
        if store.forgotten {
            return Ok(());
        }
        let leading = store
            .observer
            .as_ref()
            .is_some_and(|s| s.borrow().is_leader());
        store.leader_at_release.push(leading);
        if matches!(store.key, Some((_, Owner::Us))) {
            store.revision += 1;
            store.key = None;
            self.announce(&store);
        }
        Ok(())
    }

    async fn candidates(&self) -> Result<Vec<Leader>, EtcdError> {
        Ok(Self::view(&self.store()).leader.into_iter().collect())
    }

    fn stop(&self) {}
}
