//! The v3 API: a lease per campaign, a queue of candidate keys, and one
//! leader record whose last write's revision (`mod_revision`) is the term.
//!
//! * **campaign**: grant a lease with the TTL, then put the candidate key
//!   `~c/<lease hex>` with it in a transaction that requires it to be absent;
//! * **lead**: the candidate whose turn it is creates the record `~leader`,
//!   bound to its lease, by a transaction that requires the record absent
//!   and its own key still queued (`follow.rs`, `succession.rs`), once every
//!   lease of a key it saw leading is gone (`predecessors.rs`);
//! * **renew**: keep-alives on the lease's stream, which keep the candidate
//!   key and the record; an answer without a positive TTL means the lease is
//!   gone. Keep-alives are not raft proposals;
//! * **release**: hand the record to whose turn it is in one transaction
//!   that also deletes our candidate key (`txn::hand_record`), where every
//!   compare holds; then revoke the lease: without a hand-over, the record
//!   and the candidate key go in that one raft entry, which is what the
//!   successor checks before it takes the record itself.
//!
//! A hand-over costs one write before the successor leads (two when the
//! record cannot be handed on: the revoke and the successor's record),
//! whatever the number of candidates. A leader whose record someone else deletes stops
//! leading and lets its lease expire rather than revoke it (its `--exec`
//! command or library caller may still be winding down until the deadline):
//! the successor waits for exactly that expiry. Trade-off: if the next in
//! line died too, its key heads the queue until its lease expires, so a
//! double failure can leave the election leaderless for up to about two TTLs.
//!
//! One client talks to one endpoint at a time, with etcd's `hasleader`
//! metadata so a member cut off from the majority fails requests and
//! cancels watches instead of hanging; a request that times out or cannot
//! connect moves to the next endpoint on a fresh connection (`conn.rs`).

mod classify;
mod conn;
mod follow;
mod handing;
mod keys;
mod ledger;
mod mirror;
mod predecessors;
mod shards;
mod shared;
mod succession;
mod txn;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use etcd_client::{ConnectOptions, LeaseKeepAliveStream, LeaseKeeper};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::conn::{Client, Conn, malformed};
use self::keys::Layout;
use self::predecessors::Predecessors;
pub(crate) use self::shards::ShardWiring;
use self::shared::{Ours, Shared};
use self::succession::Departing;
use self::txn::Entry;
use super::{Backend, Campaign, Change, Handover, RenewError, Renewal, Target};
use crate::claim::{self, Claim};
use crate::config::Config;
use crate::error::{ConfigError, EtcdError, TransferError};
use crate::history::Revisions;
use crate::journal::EndReason;
use crate::ledger::{Ended, Ending};
use crate::status::Candidate;
use crate::value::{self, Candidacy};
use crate::vitals::Vitals;

struct Session {
    ours: Ours,
    keepalive: Option<(u64, LeaseKeeper, LeaseKeepAliveStream)>,
}

/// The v3 backend.
pub(crate) struct V3 {
    shared: Arc<Shared>,
    session: Mutex<Option<Session>>,
    follower: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// The history entry to write if the transfer put at this revision is
    /// withdrawn (nobody took it): the leadership that put it ended with
    /// no successor of its choosing.
    withdrawable: std::sync::Mutex<Option<(i64, Entry)>>,
    /// A guardian's: the entry of the dead process's leadership, when its
    /// record was still bound to one of its leases and not handed on, to
    /// write once the leases are revoked.
    released: std::sync::Mutex<Option<Entry>>,
    /// `--shards`: what the shards task is given when the backend starts,
    /// then the task itself.
    shard_wiring: std::sync::Mutex<Option<ShardWiring>>,
    shards_task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl V3 {
    pub(crate) fn new(
        config: &Config,
        health: Arc<Vitals>,
        revisions: Arc<Revisions>,
        changes: mpsc::UnboundedSender<Change>,
        shard_wiring: Option<ShardWiring>,
    ) -> Result<V3, ConfigError> {
        let mut options = ConnectOptions::new()
            .with_require_leader(true)
            .with_connect_timeout(config.timing.connect_timeout())
            .with_tcp_keepalive(config.timing.tcp_keepalive());
        if let Some(tls) = &config.tls {
            options = options.with_tls(tls.tonic_config());
        }
        let anonymous = config.credentials.as_ref().map(|_| options.clone());
        if let Some(c) = &config.credentials {
            // etcd-client authenticates when it connects, and again (once)
            // when etcd says the token expired.
            options = options
                .with_user(c.user.clone(), c.password.clone())
                .with_auto_token_refresh(true);
        }
        let layout = Layout::new(&config.election);
        let prefix = String::from_utf8_lossy(layout.prefix()).into_owned();
        let denied = match &config.credentials {
            Some(c) => format!(
                "user {:?} needs a role with readwrite on the prefix {prefix}",
                c.user
            ),
            // etcd takes the client certificate's common name as the user.
            None => format!(
                "the user named by the client certificate needs a role with readwrite on the \
                 prefix {prefix}"
            ),
        };
        let conn = Conn::new(
            config.endpoints.clone(),
            options,
            anonymous,
            config.tls.clone(),
            config.timing.diagnose_within(),
            denied,
            config.names.user.clone(),
        );
        let nonce = value::new_nonce();
        let mirror = mirror::Mirror::new(&layout);
        Ok(V3 {
            shared: Arc::new(Shared {
                client: Client::new(
                    conn,
                    config.timing,
                    health.clone(),
                    config.telemetry.clone(),
                    revisions,
                    changes,
                ),
                nonce,
                layout,
                id: config.id.clone(),
                advertise: config.advertise.clone(),
                id_setting: config.names.id.clone(),
                health,
                predecessors: std::sync::Mutex::new(Predecessors::default()),
                candidacy: std::sync::Mutex::new(config.candidacy),
                preempt_after: config.preempt_after,
                mirror: std::sync::Mutex::new(mirror),
                on_claim: config.on_claim.clone(),
                seen: std::sync::Mutex::new(None),
                history_size: config.history_size,
                queue_seen: tokio::sync::watch::Sender::new(0),
            }),
            session: Mutex::new(None),
            follower: std::sync::Mutex::new(None),
            withdrawable: std::sync::Mutex::new(None),
            released: std::sync::Mutex::new(None),
            shard_wiring: std::sync::Mutex::new(shard_wiring),
            shards_task: std::sync::Mutex::new(None),
        })
    }

    fn follow_with(&self, ours: Option<Ours>) {
        self.follow_after(ours, None);
    }

    /// Stops the follow task and starts another, which reads the election
    /// only once `after` resolves (or is dropped): a node letting go of its
    /// claim reads again once its revoke is in, not in etcd's way while
    /// the successor takes over.
    fn follow_after(&self, ours: Option<Ours>, after: Option<oneshot::Receiver<()>>) {
        let task = tokio::spawn(follow::follow(self.shared.clone(), ours, after));
        let mut follower = self.follower.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = follower.replace(task) {
            old.abort();
        }
    }

    /// Connects to etcd, if not connected yet.
    pub(crate) async fn connect(&self) -> Result<(), EtcdError> {
        self.shared.client.link().await.map(|_| ())
    }

    /// Revokes `lease`; `Ok` when it is already gone.
    pub(crate) async fn revoke(&self, lease: i64) -> Result<(), EtcdError> {
        self.shared.client.revoke(lease).await
    }

    /// Our key, rewritten in place with the candidacy offered now: its
    /// place in the queue and its lease stay.
    async fn rewrite(&self, ours: &Ours) -> Result<(), EtcdError> {
        let rewrite = txn::rewrite_candidacy(
            &ours.key,
            ours.create_revision,
            ours.lease,
            self.shared.value(),
        );
        self.shared.client.transact("txn", &rewrite).await?;
        Ok(())
    }

    /// Revokes a lease we no longer use, in the background.
    fn abandon(&self, lease: i64) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let _ = shared.client.revoke(lease).await;
        });
    }

    async fn join_queue(&self, sent_at: Instant) -> Result<Campaign, EtcdError> {
        let client = &self.shared.client;
        let link = client.link().await?;
        let ttl = self.shared.client.timing().ttl();
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let mut leases = link.client.lease_client();
        let (grant, _) = client
            .call_linearizable("grant", &link, leases.grant(ttl_secs, None))
            .await?;
        if grant.ttl() <= 0 || grant.id() <= 0 {
            return Err(malformed(&link.endpoint, "lease grant", "no lease or TTL"));
        }
        let lease = grant.id();
        let granted = Duration::from_secs(u64::try_from(grant.ttl()).unwrap_or(0));
        let key = self.shared.layout.candidate(lease);
        claim::tell(self.shared.on_claim.as_ref(), Claim::Lease(lease));
        // Known before the put, so a release can revoke the lease even if the
        // rest of the campaign fails.
        *self.session.lock().await = Some(Session {
            ours: Ours {
                lease,
                key: key.clone(),
                create_revision: 0,
            },
            keepalive: None,
        });
        let offered = self.shared.candidacy();
        let queue = txn::queue(
            &self.shared.layout,
            lease,
            self.shared.value_offering(&offered),
        );
        let Some(create_revision) = client.transact("txn", &queue).await? else {
            return Err(EtcdError::Rejected {
                endpoint: link.endpoint.clone(),
                detail: format!(
                    "candidate key {} already exists",
                    String::from_utf8_lossy(&key)
                ),
            });
        };
        let ours = Ours {
            lease,
            key,
            create_revision,
        };
        if let Some(session) = self.session.lock().await.as_mut() {
            session.ours = ours.clone();
        }
        // A change of candidacy while the put was on its way found no key
        // to rewrite (a drain, an undrain, a health verdict): written now.
        if self.shared.candidacy() != offered {
            self.rewrite(&ours).await?;
        }
        self.follow_with(Some(ours));
        Ok(Campaign::Claimed {
            claim: u64::try_from(lease).unwrap_or(0),
            view: None,
            renewal: Renewal {
                sent_at,
                ttl: granted,
            },
        })
    }
}

impl Backend for V3 {
    const QUEUES: bool = true;

    fn start(&self) {
        self.follow_with(None);
        let wiring = self
            .shard_wiring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(wiring) = wiring {
            let task = tokio::spawn(shards::run(self.shared.clone(), wiring));
            *self.shards_task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
    }

    async fn campaign(&self) -> Result<Campaign, EtcdError> {
        // A claim lost while its lease lives (our record deleted by someone
        // else) is left to expire, not revoked: whoever acted on it may stay
        // busy until its deadline, and successors wait for that lease.
        if let Some(old) = self.session.lock().await.take() {
            // Whatever we did under it is over (the caller saw to that):
            // nothing for us to wait for, though the others will.
            self.shared.predecessors().ours_ended(old.ours.lease);
        }
        // The lease lives at least TTL from when the grant left.
        let sent_at = Instant::now();
        let result = self.join_queue(sent_at).await;
        if result.is_err()
            && let Some(session) = self.session.lock().await.take()
        {
            self.abandon(session.ours.lease);
        }
        result
    }

    async fn renew(&self) -> Result<Renewal, RenewError> {
        let mut guard = self.session.lock().await;
        let Some(session) = guard.as_mut() else {
            return Err(RenewError::Lost);
        };
        let client = &self.shared.client;
        let link = client.link().await.map_err(RenewError::Failed)?;
        if session
            .keepalive
            .as_ref()
            .is_none_or(|(generation, _, _)| *generation != link.generation)
        {
            // Opening the stream sends the first keep-alive and waits for its
            // answer; etcd-client fails it when the lease is gone.
            let sent_at = Instant::now();
            let mut leases = link.client.lease_client();
            return match client
                .call("keepalive", &link, leases.keep_alive(session.ours.lease))
                .await
            {
                Ok((keeper, stream)) => {
                    session.keepalive = Some((link.generation, keeper, stream));
                    Ok(Renewal {
                        sent_at,
                        ttl: client.timing().ttl(),
                    })
                }
                Err(EtcdError::LeaseNotFound { .. }) => Err(RenewError::Lost),
                Err(err) => Err(RenewError::Failed(err)),
            };
        }
        let Some((_, keeper, stream)) = session.keepalive.as_mut() else {
            return Err(RenewError::Failed(malformed(
                &link.endpoint,
                "keep-alive",
                "no stream",
            )));
        };
        let sent_at = Instant::now();
        let answer = client
            .call("keepalive", &link, async {
                keeper.keep_alive().await?;
                stream.message().await
            })
            .await;
        match answer {
            Ok(Some(resp)) if resp.id() == session.ours.lease && resp.ttl() > 0 => Ok(Renewal {
                sent_at,
                ttl: Duration::from_secs(u64::try_from(resp.ttl()).unwrap_or(0)),
            }),
            Ok(Some(resp)) if resp.ttl() <= 0 => Err(RenewError::Lost),
            Ok(Some(_)) => {
                session.keepalive = None;
                Err(RenewError::Failed(malformed(
                    &link.endpoint,
                    "keep-alive",
                    "answer for another lease",
                )))
            }
            Ok(None) => {
                session.keepalive = None;
                Err(RenewError::Failed(EtcdError::unreachable(
                    link.endpoint.clone(),
                    "keep-alive stream closed",
                )))
            }
            Err(err) => {
                session.keepalive = None;
                Err(RenewError::Failed(err))
            }
        }
    }

    async fn forget(&self) {
        // Dropped, not revoked: the lease runs out after the TTL.
        drop(self.session.lock().await.take());
        self.follow_with(None);
    }

    async fn release(&self, why: EndReason) -> Result<(), EtcdError> {
        let Some(session) = self.session.lock().await.take() else {
            return Ok(());
        };
        // Follow again (as a node without a claim) once the revoke is in.
        let (revoked, after) = oneshot::channel::<()>();
        self.follow_after(None, Some(after));
        let lease = session.ours.lease;
        let held = self.held(lease);
        let ending = Ending::Holder(why);
        let handed = match self.handing(lease, None) {
            Some(plan) => self.hand_record(&plan, ending).await.is_some(),
            None => false,
        };
        // After a hand-over the lease holds no key any more; otherwise the
        // record and the candidate key go with it, in one raft entry: what
        // a successor checks before it takes the record itself.
        let released = self.shared.client.revoke(lease).await;
        drop(revoked);
        // Released without a hand-over: how it ended, after the revoke (off
        // the successor's path), where nobody wrote it first.
        if !handed && let Some((term, holder)) = held {
            let ended = Ended {
                at: Some(SystemTime::now()),
                ending,
                to: None,
            };
            let entry = ledger::entry(term, &holder.id, &holder.advertise, holder.since_ms, &ended);
            self.shared.record_entry_or_log(&entry).await;
        }
        released
    }

    async fn give_up(&self) -> Result<(), EtcdError> {
        let Some(session) = self.session.lock().await.take() else {
            return Ok(());
        };
        let (revoked, after) = oneshot::channel::<()>();
        self.follow_after(None, Some(after));
        let released = self.shared.client.revoke(session.ours.lease).await;
        drop(revoked);
        released
    }

    async fn set_candidacy(&self, candidacy: Candidacy) -> Result<(), EtcdError> {
        *self
            .shared
            .candidacy
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = candidacy;
        let ours = match self.session.lock().await.as_ref() {
            Some(session) if session.ours.create_revision > 0 => session.ours.clone(),
            // Not queued yet: the campaign writes it once queued.
            _ => return Ok(()),
        };
        self.rewrite(&ours).await
    }

    fn handover_target(&self, id: &str) -> Result<Target, TransferError> {
        let mirror = self.shared.mirror();
        if mirror.revision == 0 {
            // Not read yet.
            return Err(TransferError::NoSuchCandidate { id: id.to_owned() });
        }
        if !succession::assess(&self.shared.layout, &mirror).anchored {
            return Err(TransferError::OldRule);
        }
        let named: Vec<&Arc<mirror::Queued>> =
            mirror.queue().filter(|c| c.named.id == id).collect();
        let candidate = match named.as_slice() {
            [] => return Err(TransferError::NoSuchCandidate { id: id.to_owned() }),
            [one] => *one,
            many => {
                return Err(TransferError::Ambiguous {
                    id: id.to_owned(),
                    count: many.len(),
                });
            }
        };
        if candidate.named.nonce == self.shared.nonce {
            return Err(TransferError::ToSelf { id: id.to_owned() });
        }
        if !candidate.named.candidacy.eligible() {
            return Err(TransferError::Ineligible {
                id: id.to_owned(),
                healthy: candidate.named.candidacy.healthy,
            });
        }
        Ok(Target {
            id: id.to_owned(),
            key: candidate.key.clone(),
            lease: candidate.lease,
            create_revision: candidate.create_revision,
        })
    }

    async fn hand_over(&self, target: &Target, reason: Handover) -> Result<i64, TransferError> {
        let Some(session) = self.session.lock().await.take() else {
            return Err(TransferError::NotLeader);
        };
        let ours = session.ours;
        let (revoked, after) = oneshot::channel::<()>();
        self.follow_after(None, Some(after));
        // A candidate that asked is awake and eligible: it gets the record
        // in one write. A named hand-over keeps its transfer record, which
        // bounds what a stopped target costs (TTL/4, then withdrawn): a
        // record handed to it could only expire with its lease.
        let ending = Ending::Holder(reason.end_reason());
        if reason == Handover::Preempted
            && let Some(plan) = self.handing(ours.lease, Some(target.lease))
            && let Some(revision) = self.hand_record(&plan, ending).await
        {
            let released = self.shared.client.revoke(ours.lease).await;
            drop(revoked);
            released?;
            return Ok(revision);
        }
        let layout = &self.shared.layout;
        // The transfer carries the leadership it ends: its target writes
        // the history entry as it consumes it.
        let held = self.held(ours.lease);
        let now = SystemTime::now();
        let from = held.as_ref().map(|(term, holder)| Departing {
            term: *term,
            advertise: holder.advertise.clone(),
            since_ms: holder.since_ms,
            ended_ms: value::unix_ms(now),
        });
        let value = serde_json::to_string(&succession::TransferValue {
            to: format!("{:x}", target.lease),
            by: self.shared.id.clone(),
            reason,
            from,
        })
        .unwrap_or_default();
        let put = txn::put_transfer(
            layout,
            ours.lease,
            &target.key,
            target.create_revision,
            target.lease,
            value,
        );
        let client = &self.shared.client;
        let put = client.transact("txn", &put).await;
        // Either way we release: the target then leads, or (no transfer)
        // the ordinary succession goes on.
        let released = client.revoke(ours.lease).await;
        drop(revoked);
        let put = put?;
        if let (Some(revision), Some((term, holder))) = (put, held) {
            let ended = Ended {
                at: Some(now),
                ending,
                to: None,
            };
            let entry = ledger::entry(term, &holder.id, &holder.advertise, holder.since_ms, &ended);
            *self.withdrawable.lock().unwrap_or_else(|e| e.into_inner()) = Some((revision, entry));
        }
        released?;
        put.ok_or_else(|| TransferError::NoSuchCandidate {
            id: target.id.clone(),
        })
    }

    async fn cancel_hand_over(&self, revision: i64) -> Result<bool, EtcdError> {
        let key = self.shared.layout.transfer();
        let withdrawn = self.shared.client.delete_unchanged(key, revision).await?;
        let entry = self
            .withdrawable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .filter(|(put_at, _)| *put_at == revision);
        // Nobody took it: the leadership that put it ended with no
        // successor of its choosing, and its target never wrote the entry.
        if withdrawn && let Some((_, entry)) = entry {
            self.shared.record_entry_or_log(&entry).await;
        }
        Ok(withdrawn)
    }

    async fn candidates(&self) -> Result<Vec<Candidate>, EtcdError> {
        // Worked out when asked, from the mirror: not after every change,
        // by every candidate.
        let mirror = self.shared.mirror();
        if mirror.revision == 0 {
            return Err(EtcdError::unreachable(
                self.shared.client.conn.endpoints.join(","),
                "the election has not been read yet",
            ));
        }
        Ok(succession::assess(&self.shared.layout, &mirror).succession(&mirror))
    }

    fn stop(&self) {
        let mut follower = self.follower.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = follower.take() {
            task.abort();
        }
        let shards = self
            .shards_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = shards {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever etcd (or someone writing to the prefix) holds, only a
        /// record bound to the lease its value names is trusted, and only a
        /// value with our nonce is taken as ours.
        #[test]
        fn arbitrary_keys_never_make_a_false_leader(
            keys in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["~leader", "~anchor", "~transfer", "~preempt", "~c/10", "~c/11", "10", "zzz", "~x"]),
                    proptest::collection::vec(any::<u8>(), 0..64),
                    1i64..100,
                    proptest::sample::select(vec![0i64, 0x10, 0x11, 7]),
                ),
                0..8,
            ),
        ) {
            let layout = Layout::new("leader");
            let mut mirror = mirror::Mirror::new(&layout);
            for (name, value, create_revision, lease) in keys {
                let key = [layout.prefix(), name.as_bytes()].concat();
                mirror.insert(
                    key,
                    mirror::Kv { create_revision, mod_revision: create_revision, lease, value },
                );
                mirror.revision = mirror.revision.max(create_revision);
            }
            let a = succession::assess(&layout, &mirror);
            if let Some(leader) = &a.leader
                && leader.verified
                && let Some(record) = mirror.get(&layout.record())
                && a.writer.is_some()
            {
                let named = crate::value::decode(&record.value).expect("a decodable record");
                prop_assert_eq!(named.lease, Some(record.lease));
                prop_assert!(record.lease != 0);
            }
            prop_assert!(a.writer.as_ref().is_none_or(|(nonce, _)| nonce.is_empty() || nonce != "never-written"));
            // A transfer is honoured only when bound to the lease of the
            // queued candidate it names.
            if let Some(transfer) = &a.transfer {
                let kv = mirror.get(&layout.transfer()).expect("the transfer key");
                prop_assert_eq!(kv.lease, transfer.target.lease);
                prop_assert!(mirror.queue().any(|c| c.lease == kv.lease));
            }
        }
    }
}
