//! Shards (`--shards N`): a record per shard, `~~shards/<K>`, bound to its
//! leader's lease; the shard's term is the record's last write
//! (`mod_revision`), so it grows with every new leader.
//!
//! Every node mirrors the records and, after every change of them or of
//! the queue, runs the placement rule (`crate::shards::place`) with the
//! eligible candidates (live, healthy, undrained) as its own mirror of the
//! election shows them. A node writes only:
//!
//! * **a take**: shards the rule names it for whose record is absent, put
//!   bound to its lease, comparing each record absent and its own
//!   candidate key still bound to its lease;
//! * **a hand-over**: shards it holds that the rule names another node
//!   for, once it no longer calls them its own, put bound to the
//!   successor's lease, comparing each record unchanged since read and
//!   still bound to this node's lease, and the successor's candidate key
//!   unchanged since read (a drain or a health verdict just written fails
//!   it), in one transaction;
//! * **a refresh**, after etcd's history went backwards: its own records
//!   written again once etcd's revision has passed the old history's, so
//!   that no shard is led at a term the old history had already given.
//!
//! A lease's end (expiry, or the guardian's revoke after a crash) deletes
//! all of its records in one raft entry; the rule then names new holders,
//! which take them. Nobody else writes a record: the rule only names, so
//! safety never rests on the nodes agreeing on it. Writes are batched
//! within etcd's limits and paced: one batch at a time, the next once the
//! watch has shown the last.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use etcd_client::{EventType, GetOptions, SortOrder, SortTarget, WatchOptions, WatchResponse};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};

use super::conn::malformed;
use super::shared::Shared;
use super::txn::{self, Conditional};
use crate::backend::retry::Backoff;
use crate::claim::HeldClaim;
use crate::error::EtcdError;
use crate::journal::EndReason;
use crate::shards::holding::{Holding, Led};
use crate::shards::{ShardLeader, ShardMap, place};
use crate::value::{self, Named};

/// The most operations, and separately the most compares, in one
/// transaction, to begin with: etcd's default `--max-txn-ops`. A batch
/// etcd refuses as too large halves it (`Shards::write`).
const MAX_TXN_OPS: usize = 128;

/// Records read per request: well under gRPC's 4 MiB answer limit with the
/// longest values (about 2 KiB each).
const PAGE: i64 = 1000;

/// What the election gives the shards task.
pub(crate) struct ShardWiring {
    /// How many shards.
    pub count: u32,
    /// Our claim and its deadline, from the election loop.
    pub claims: watch::Receiver<Option<HeldClaim>>,
    /// Where the shards task publishes what it sees.
    pub map: watch::Sender<ShardMap>,
    /// What this process leads, journaled (shared with the loop).
    pub holding: Arc<Holding>,
}

/// A shard's record as read.
#[derive(Clone, Debug)]
struct Record {
    lease: i64,
    mod_revision: i64,
    /// Its value, when in electd's form and naming the lease it is bound
    /// to; a record anyone could have written by hand names no leader.
    named: Option<Named>,
}

struct Shards {
    shared: Arc<Shared>,
    claims: watch::Receiver<Option<HeldClaim>>,
    map: watch::Sender<ShardMap>,
    holding: Arc<Holding>,
    records: Vec<Option<Record>>,
    /// The revision the records reflect.
    revision: i64,
    /// Shards of ours being handed over: not called ours, whatever the
    /// records say, until a read or the watch shows where they went.
    letting_go: BTreeSet<u32>,
    /// Our last write's revision: nothing more is written until the watch
    /// has shown it (one batch at a time).
    awaiting: Option<i64>,
    /// Leases whose records were deleted (their end), and when this task
    /// saw it: not placed on for a TTL, by which a quiet follower's count
    /// of the queue has dropped their candidate keys too.
    ended: HashMap<i64, Instant>,
    /// The most operations (and compares) a batch may have now.
    txn_ops: usize,
}

/// Runs the shards of this node's election until aborted.
pub(super) async fn run(shared: Arc<Shared>, wiring: ShardWiring) {
    let backoff_cap = shared.client.timing().backoff_cap();
    let mut shards = Shards {
        records: vec![None; wiring.count as usize],
        shared,
        claims: wiring.claims,
        map: wiring.map,
        holding: wiring.holding,
        revision: 0,
        letting_go: BTreeSet::new(),
        awaiting: None,
        ended: HashMap::new(),
        txn_ops: MAX_TXN_OPS,
    };
    let mut backoff = Backoff::new(backoff_cap);
    loop {
        match shards.follow().await {
            Ok(()) => backoff.reset(),
            Err(err) => {
                tracing::warn!(id = %shards.shared.id, error = %err, "following the shards failed: reading them again");
                shards.publish();
                sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// How a watch answer leaves the records.
enum Applied {
    Current,
    Reread,
}

impl Shards {
    /// One read and the watch after it, until something calls for a read.
    async fn follow(&mut self) -> Result<(), EtcdError> {
        self.read().await?;
        let shared = self.shared.clone();
        let client = &shared.client;
        let link = client.link().await?;
        let mut generations = client.generations();
        generations.borrow_and_update();
        let mut queue = self.shared.queue_seen.subscribe();
        let (start, end) = self.shared.layout.shards_range();
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(self.revision + 1);
        let mut watcher = link.client.watch_client();
        let mut stream = client
            .call("watch", &link, watcher.watch(start, Some(options)))
            .await?;
        loop {
            if !self.act().await? {
                // A transaction failed its compares: what it relied on
                // changed; read again.
                return Ok(());
            }
            self.publish();
            let deadline = self
                .claims
                .borrow()
                .map(|c| c.deadline)
                .filter(|d| *d > Instant::now());
            tokio::select! {
                message = stream.message() => {
                    let response = client.watch_answer(&link, message).await?;
                    if let Applied::Reread = self.apply(&response) {
                        return Ok(());
                    }
                }
                _ = queue.changed() => {}
                () = self.holding.released() => {}
                changed = self.claims.changed() => {
                    if changed.is_err() {
                        // The election loop is gone: nothing leads any more.
                        std::future::pending::<()>().await;
                    }
                }
                // Past the deadline the map says so (publish), unasked.
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
                _ = generations.changed() => return Ok(()),
            }
        }
    }

    /// Reads every record, linearizably, a page at a time at one revision.
    async fn read(&mut self) -> Result<(), EtcdError> {
        let client = &self.shared.client;
        let link = client.link().await?;
        let mut kv = link.client.kv_client();
        let (mut from, end) = self.shared.layout.shards_range();
        let mut records = vec![None; self.records.len()];
        let mut revision = 0;
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(PAGE)
                .with_sort(SortTarget::Key, SortOrder::Ascend);
            let resp = if revision == 0 {
                let (resp, at) = client
                    .call_linearizable("range", &link, kv.get(from.clone(), Some(options)))
                    .await?;
                revision = at;
                resp
            } else {
                options = options.with_revision(revision);
                client
                    .call("range", &link, kv.get(from.clone(), Some(options)))
                    .await?
            };
            for kv in resp.kvs() {
                if kv.create_revision() <= 0 || kv.mod_revision() <= 0 {
                    return Err(malformed(&link.endpoint, "range", "non-positive revision"));
                }
                self.note(
                    &mut records,
                    kv.key(),
                    kv.lease(),
                    kv.mod_revision(),
                    kv.value(),
                );
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
        self.records = records;
        self.revision = revision;
        self.awaiting = None;
        let ours = self.ours();
        // A hand-over whose outcome was unknown: the read tells.
        self.letting_go
            .retain(|&k| ours.is_some_and(|l| held_by(&records_of(&self.records, k), l)));
        Ok(())
    }

    fn note(
        &self,
        records: &mut [Option<Record>],
        key: &[u8],
        lease: i64,
        mod_revision: i64,
        raw: &[u8],
    ) {
        let Some(slot) = self
            .shared
            .layout
            .shard_number(key)
            .and_then(|k| records.get_mut(k as usize))
        else {
            // A shard past our count (an election run with more shards
            // before), or a key not in electd's form: not ours to judge.
            return;
        };
        let named = value::decode(raw).filter(|n| lease > 0 && n.lease == Some(lease));
        *slot = Some(Record {
            lease,
            mod_revision,
            named,
        });
    }

    /// Applies one watch answer to the records.
    fn apply(&mut self, response: &WatchResponse) -> Applied {
        if response.canceled() {
            return Applied::Reread;
        }
        let header = response.header().map_or(0, |h| h.revision());
        if header > 0 && header < self.revision {
            // Behind what we read: a wiped or restored store. Read again.
            return Applied::Reread;
        }
        let mut records = std::mem::take(&mut self.records);
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            match event.event_type() {
                EventType::Put => {
                    self.note(
                        &mut records,
                        kv.key(),
                        kv.lease(),
                        kv.mod_revision(),
                        kv.value(),
                    );
                }
                EventType::Delete => {
                    if let Some(slot) = self
                        .shared
                        .layout
                        .shard_number(kv.key())
                        .and_then(|k| records.get_mut(k as usize))
                    {
                        // Only a lease's end deletes a record (moves and
                        // takes are puts): its holder is gone, whatever a
                        // quiet mirror of the queue still lists.
                        if let Some(record) = slot.take() {
                            self.ended.insert(record.lease, Instant::now());
                        }
                    }
                }
            }
        }
        self.records = records;
        if !response.created() {
            self.revision = self.revision.max(header);
        }
        if let Some(ours) = self.ours() {
            let records = &self.records;
            self.letting_go
                .retain(|&k| held_by(&records_of(records, k), ours));
        }
        Applied::Current
    }

    /// Our lease while our claim's deadline has not passed.
    fn ours(&self) -> Option<i64> {
        let claim = (*self.claims.borrow())?;
        (Instant::now() < claim.deadline).then(|| i64::try_from(claim.id).ok())?
    }

    /// Takes, hands over or refreshes one batch, as the rule says. Returns
    /// false when a transaction failed its compares (read again).
    async fn act(&mut self) -> Result<bool, EtcdError> {
        let Some(ours) = self.ours() else {
            return Ok(true);
        };
        if self.awaiting.is_some_and(|at| self.revision < at) {
            return Ok(true);
        }
        self.awaiting = None;
        let revisions = self.shared.client.revisions();
        let lost = i64::try_from(revisions.lost()).unwrap_or(i64::MAX);
        if revisions.high() < revisions.lost() {
            // The next write's revision would not be above the old
            // history's: nothing is taken or refreshed until it would be.
            return Ok(true);
        }
        let ttl = self.shared.client.timing().ttl();
        self.ended.retain(|_, seen| seen.elapsed() < ttl);
        let candidates: Vec<(String, Arc<super::mirror::Queued>)> = self
            .shared
            .mirror()
            .queue()
            .filter(|q| q.named.candidacy.eligible() && !self.ended.contains_key(&q.lease))
            .map(|q| (format!("{:x}", q.lease), q.clone()))
            .collect();
        let eligible: Vec<&str> = candidates.iter().map(|(name, _)| name.as_str()).collect();
        let holder_names: Vec<Option<String>> = self
            .records
            .iter()
            .map(|r| r.as_ref().map(|r| format!("{:x}", r.lease)))
            .collect();
        let holders: Vec<Option<&str>> = holder_names.iter().map(|h| h.as_deref()).collect();
        let placement = place(&holders, &eligible);
        let me = format!("{ours:x}");
        let layout = &self.shared.layout;
        let my_candidate_key = layout.candidate(ours);

        // Orphans named for us, their records absent.
        let takes: Vec<u32> = (0..self.records.len())
            .filter(|&k| self.records[k].is_none() && placement.target(k) == Some(me.as_str()))
            .filter_map(|k| u32::try_from(k).ok())
            .take(self.txn_ops - 1)
            .collect();
        if !takes.is_empty() {
            let value = self.our_value(ours);
            let take = txn::take_shards(layout, &takes, &my_candidate_key, ours, &value);
            return self.write("take", &take, &takes).await;
        }

        // Ours, named for another node: the first successor's batch.
        let mut handing: Vec<(u32, i64)> = Vec::new();
        let mut successor: Option<&Arc<super::mirror::Queued>> = None;
        for (k, record) in self.records.iter().enumerate() {
            let Some(record) = record.as_ref().filter(|r| r.lease == ours) else {
                continue;
            };
            let Some(target) = placement.target(k).filter(|t| *t != me) else {
                continue;
            };
            let Some((_, queued)) = candidates.iter().find(|(name, _)| name == target) else {
                continue;
            };
            if successor.is_some_and(|s| s.lease != queued.lease) {
                continue;
            }
            successor = Some(queued);
            if let Ok(k) = u32::try_from(k) {
                handing.push((k, record.mod_revision));
            }
            if handing.len() == (self.txn_ops - 1) / 2 {
                break;
            }
        }
        if let Some(to) = successor {
            // Stop calling them ours before the write that gives them away,
            // and hand on only those whose work has stopped (the guards
            // the library gave out let go; the rest wait for theirs).
            self.letting_go.extend(handing.iter().map(|(k, _)| *k));
            self.publish();
            handing.retain(|(k, _)| !self.holding.working(*k));
            if handing.is_empty() {
                return Ok(true);
            }
            let value =
                value::encode_shard(&to.named.id, &to.named.advertise, &to.named.nonce, to.lease);
            let hand = txn::hand_shards(
                layout,
                &handing,
                ours,
                &to.key,
                to.mod_revision,
                to.lease,
                &value,
            );
            let shards: Vec<u32> = handing.iter().map(|(k, _)| *k).collect();
            let written = self.write("hand", &hand, &shards).await;
            if let Ok(false) = written {
                // Not written, for certain: still ours.
                for k in &shards {
                    self.letting_go.remove(k);
                }
            }
            return written;
        }

        // Ours at a term the lost history had already given: written again.
        let stale: Vec<(u32, i64)> = self
            .records
            .iter()
            .enumerate()
            .filter_map(|(k, r)| {
                let r = r.as_ref()?;
                (r.lease == ours && r.mod_revision <= lost)
                    .then_some((u32::try_from(k).ok()?, r.mod_revision))
            })
            .take((self.txn_ops - 1) / 2)
            .collect();
        if !stale.is_empty() {
            let value = self.our_value(ours);
            let refresh = txn::refresh_shards(layout, &stale, ours, &value);
            let shards: Vec<u32> = stale.iter().map(|(k, _)| *k).collect();
            return self.write("refresh", &refresh, &shards).await;
        }
        Ok(true)
    }

    /// The value of a record of ours, bound to `lease`.
    fn our_value(&self, lease: i64) -> String {
        let shared = &self.shared;
        value::encode_shard(&shared.id, &shared.advertise, &shared.nonce, lease)
    }

    /// Runs one batch; false when its compares failed.
    async fn write(
        &mut self,
        what: &str,
        batch: &Conditional,
        shards: &[u32],
    ) -> Result<bool, EtcdError> {
        let written = match self.shared.client.transact("txn", batch).await {
            Err(EtcdError::Rejected { detail, .. }) if too_large(&detail) && self.txn_ops > 3 => {
                // Nothing was written: the next batch is half as large.
                self.txn_ops /= 2;
                tracing::warn!(id = %self.shared.id, what, shards = shards.len(), txn_ops = self.txn_ops, %detail, "etcd refused a batch of shards as too large: splitting");
                return Ok(true);
            }
            written => written?,
        };
        tracing::debug!(id = %self.shared.id, what, shards = shards.len(), revision = ?written, "shards written");
        match written {
            Some(revision) => {
                self.awaiting = Some(revision);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Tells readers what this node sees now.
    fn publish(&self) {
        let claim = *self.claims.borrow();
        let ours = self.ours();
        let lost = i64::try_from(self.shared.client.revisions().lost()).unwrap_or(i64::MAX);
        let leaders: Vec<Option<ShardLeader>> = self
            .records
            .iter()
            .map(|r| {
                let r = r.as_ref()?;
                let named = r.named.as_ref()?;
                (r.mod_revision > lost).then(|| ShardLeader {
                    id: named.id.clone(),
                    advertise: named.advertise.clone(),
                    term: u64::try_from(r.mod_revision).unwrap_or(0),
                })
            })
            .collect();
        let mine: Led = match ours {
            Some(ours) => self
                .records
                .iter()
                .enumerate()
                .filter_map(|(k, r)| {
                    let k = u32::try_from(k).ok()?;
                    let r = r.as_ref()?;
                    let ours = !self.letting_go.contains(&k)
                        && r.lease == ours
                        && r.mod_revision > lost
                        && r.named
                            .as_ref()
                            .is_some_and(|n| n.nonce == self.shared.nonce);
                    ours.then(|| (k, u64::try_from(r.mod_revision).unwrap_or(0)))
                })
                .collect(),
            None => Led::new(),
        };
        let past_deadline = claim.is_some_and(|c| Instant::now() >= c.deadline);
        let led = self.holding.lead(claim, &mine, |shard| {
            if self.letting_go.contains(&shard) {
                EndReason::Transfer
            } else if past_deadline {
                EndReason::Deadline
            } else {
                EndReason::Lost
            }
        });
        let held: Vec<u32> = led.keys().copied().collect();
        let next = ShardMap {
            leaders,
            held,
            deadline: claim.map(|c| c.deadline),
            revision: u64::try_from(self.revision).unwrap_or(0),
            claim: claim.map(|c| c.id),
        };
        self.map.send_if_modified(|map| {
            let changed = *map != next;
            if changed {
                *map = next;
            }
            changed
        });
    }
}

/// Whether etcd refused a transaction for its size (`--max-txn-ops`,
/// `--max-request-bytes`), which a smaller batch may pass.
fn too_large(detail: &str) -> bool {
    detail.contains("too many operations") || detail.contains("request is too large")
}

fn records_of(records: &[Option<Record>], shard: u32) -> Option<&Record> {
    records.get(shard as usize)?.as_ref()
}

fn held_by(record: &Option<&Record>, lease: i64) -> bool {
    record.is_some_and(|r| r.lease == lease)
}
