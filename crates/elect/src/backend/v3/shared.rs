//! What the backend and its follow task share: the connection, the
//! mirror of the election, this node's identity and candidacy, and our
//! claim. Below both, so that neither imports the other's internals.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use etcd_client::GetOptions;

use super::conn::{Client, malformed};
use super::keys::Layout;
use super::mirror::{Kv, Mirror};
use super::predecessors::Predecessors;
use crate::claim::ClaimHook;
use crate::error::EtcdError;
use crate::ledger::Ending;
use crate::value::{Candidacy, Named};
use crate::vitals::Vitals;

/// What the backend and its follow task share.
pub(super) struct Shared {
    pub(super) client: Client,
    pub(super) layout: Layout,
    /// Made at start; in every value this process writes.
    pub(super) nonce: String,
    pub(super) id: String,
    pub(super) advertise: String,
    /// Where a candidate's id is set, for the warning about twins.
    pub(super) id_setting: String,
    pub(super) health: Arc<Vitals>,
    pub(super) predecessors: std::sync::Mutex<Predecessors>,
    /// What this candidate offers now, in every value it writes.
    pub(super) candidacy: std::sync::Mutex<Candidacy>,
    /// `--preempt`: how long to be eligible before asking to lead.
    pub(super) preempt_after: Option<Duration>,
    /// The keys of the election as the follow task last saw them, with the
    /// queue decoded: what a hand-over checks, and where the succession
    /// order for status readers comes from.
    pub(super) mirror: std::sync::Mutex<Mirror>,
    pub(super) on_claim: Option<ClaimHook>,
    /// How many ended leaderships the history keeps (`ledger.rs`).
    pub(super) history_size: usize,
    /// The last leadership this node saw, and how its record went
    /// (`follow/past.rs`): here, not in a follow task, so that a node that
    /// lost its claim and campaigns again with a new task still owes the
    /// history the entry of a leadership nobody else saw end.
    pub(super) seen: std::sync::Mutex<Option<Seen>>,
    /// The mirror's revision, sent each time the follow task has settled
    /// on a change: what the shards task places again on.
    pub(super) queue_seen: tokio::sync::watch::Sender<i64>,
}

/// A leadership this node saw, by its record (`follow/past.rs`).
#[derive(Clone, Debug)]
pub(super) struct Seen {
    pub(super) term: i64,
    pub(super) lease: i64,
    pub(super) holder: Named,
    /// When this node saw its record go, and what that says.
    pub(super) gone: Option<(SystemTime, Ending)>,
}

impl Shared {
    pub(super) fn candidacy(&self) -> Candidacy {
        *self.candidacy.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn mirror(&self) -> std::sync::MutexGuard<'_, Mirror> {
        // Plain data, changed in place by calls that cannot panic midway.
        self.mirror.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Our candidate key's value, as we offer ourselves now.
    pub(super) fn value(&self) -> String {
        self.value_offering(&self.candidacy())
    }

    pub(super) fn value_offering(&self, candidacy: &Candidacy) -> String {
        crate::value::encode_candidate(&self.id, &self.advertise, &self.nonce, candidacy)
    }
    /// Every key of the election (its history aside), read linearizably,
    /// as a fresh mirror.
    pub(super) async fn read_election(&self) -> Result<Mirror, EtcdError> {
        let client = &self.client;
        let link = client.link().await?;
        let mut kv = link.client.kv_client();
        let (start, end) = self.layout.election_range();
        let (mut resp, revision) = client
            .call_linearizable(
                "range",
                &link,
                kv.get(start, Some(GetOptions::new().with_range(end))),
            )
            .await?;
        let mut mirror = Mirror::new(&self.layout);
        mirror.revision = revision;
        for kv in resp.take_kvs() {
            if kv.create_revision() <= 0 {
                return Err(malformed(
                    &link.endpoint,
                    "range",
                    "non-positive create_revision",
                ));
            }
            mirror.insert(
                kv.key().to_vec(),
                Kv {
                    create_revision: kv.create_revision(),
                    mod_revision: kv.mod_revision(),
                    lease: kv.lease(),
                    value: kv.value().to_vec(),
                },
            );
        }
        Ok(mirror)
    }

    pub(super) fn seen(&self) -> std::sync::MutexGuard<'_, Option<Seen>> {
        // Plain data, replaced whole.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn predecessors(&self) -> std::sync::MutexGuard<'_, Predecessors> {
        // Plain data; a panic elsewhere cannot leave it inconsistent.
        self.predecessors.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Our claim: the lease and the candidate key put with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Ours {
    pub(super) lease: i64,
    pub(super) key: Vec<u8>,
    pub(super) create_revision: i64,
}
