//! Following the election: read every key under the prefix once, keep that
//! mirror up to date from one watch, and after each change say what the
//! election looks like; the candidate whose turn it is takes the step
//! (`succession::Step`) itself, by a transaction that only succeeds while the
//! keys are as it saw them.
//!
//! So a hand-over costs the old leader's revoke and the successor's record,
//! whatever the number of candidates: every node learns from the watch, and
//! only one acts. A silently dead connection is noticed within two thirds of
//! a TTL (progress requests every TTL/3); a compacted revision, a watch
//! answer older than the mirror, or a regression noticed by any request
//! makes the task read everything afresh.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, GetOptions, WatchFilterType, WatchOptions, WatchResponse};
use tokio::sync::oneshot;
use tokio::time::{Instant, interval, sleep, sleep_until};

use super::conn::{Link, malformed};
use super::mirror::{Kv, Mirror};
use super::shared::{Ours, Shared};
use super::succession::{self, Assessment, Preempt, Step, revision_u64};
use super::{classify, txn};
use crate::backend::retry::Backoff;
use crate::backend::{Change, View};
use crate::error::EtcdError;
use crate::status::{Foreign, Obstacle};
use crate::value;

/// What happened while waiting for the next change.
enum Woke {
    /// The mirror changed.
    Changed,
    /// A timer (a predecessor's lease may be gone).
    Timer,
    /// Read everything afresh.
    Reread,
}

/// How many eligible candidates after the leader watch deletions: the
/// next in line, and one more in case it goes first.
const WATCHING_DELETIONS: usize = 2;

/// After this many failed counts in a row, a follower watches everything
/// rather than read the whole queue at every count.
const FAILED_COUNTS: u32 = 3;

/// What a follower watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watch {
    /// Every change: the leader, those next in line, a transfer's target,
    /// observers, candidates with `--preempt`, and everyone while there is
    /// no leader, a foreign key or a wait for a predecessor's lease.
    Everything,
    /// Puts only, while the record created at revision `record`, bound to
    /// `lease`, leads: the rest of the queue. A hand-over then costs etcd
    /// and this process nothing until the successor's record is put; a
    /// count of the keys then (and every half TTL, for the departures
    /// nobody else reports) tells whether it missed a deletion, so what it
    /// did not see lasts less than a TTL.
    PutsOnly { record: i64, lease: i64 },
}

/// The task's own state.
struct Follower {
    shared: Arc<Shared>,
    ours: Option<Ours>,
    /// Whether our claim led: when its record goes, the claim is over.
    led: bool,
    /// When to look at the predecessors' leases again.
    recheck_at: Option<Instant>,
    /// A wait, as the acting candidate (or anyone who looked) saw it.
    waiting: Option<Obstacle>,
    /// Leases of other live candidates with our id, already warned about.
    twins: HashSet<i64>,
    /// `--preempt`: since when this candidate has been eligible, with no
    /// hand-over in between.
    eligible_since: Option<Instant>,
    /// The record's lease in the last view sent, when it was ours.
    published_mine: Option<u64>,
    /// The leader whose predecessors' leases this candidate, next in line,
    /// looked up already (`look_ahead`).
    looked_ahead: Option<i64>,
    /// Counts of the keys that failed in a row (`missed_deletions`).
    failed_counts: u32,
}

/// Runs until aborted (a new campaign or a release starts another), from
/// when `after` resolves or is dropped.
pub(super) async fn follow(
    shared: Arc<Shared>,
    ours: Option<Ours>,
    after: Option<oneshot::Receiver<()>>,
) {
    if let Some(after) = after {
        let _ = after.await;
    }
    let mut backoff = Backoff::new(shared.client.timing().backoff_cap());
    let mut follower = Follower {
        shared,
        ours,
        led: false,
        recheck_at: None,
        waiting: None,
        twins: HashSet::new(),
        eligible_since: None,
        published_mine: None,
        looked_ahead: None,
        failed_counts: 0,
    };
    loop {
        match follower.run().await {
            Ok(()) => backoff.reset(),
            Err(err) => {
                if follower
                    .shared
                    .client
                    .changes()
                    .send(Change::Problem(err))
                    .is_err()
                {
                    return;
                }
                sleep(backoff.next_delay()).await;
            }
        }
    }
}

impl Follower {
    /// The mirror: shared, so that a status or a hand-over can look at the
    /// queue when it asks. Never held across an await, and never taken
    /// twice in one statement (a guard lives to the statement's end).
    fn mirror(&self) -> std::sync::MutexGuard<'_, Mirror> {
        self.shared.mirror()
    }

    /// One read and the watch after it, until something calls for a new
    /// read (or for watching more, or less, than this watch does).
    async fn run(&mut self) -> Result<(), EtcdError> {
        self.read().await?;
        let assessment = succession::assess(&self.shared.layout, &self.mirror());
        let mut watching = self.watch_for(&assessment);
        let shared = self.shared.clone();
        let client = &shared.client;
        let mut generations = client.generations();
        generations.borrow_and_update();
        let link = client.link().await?;
        let mut options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(self.mirror().revision + 1);
        if let Watch::PutsOnly { .. } = watching {
            options = options.with_filters([WatchFilterType::NoDelete]);
        }
        let mut watcher = link.client.watch_client();
        let mut stream = client
            .call(
                "watch",
                &link,
                watcher.watch(shared.layout.prefix(), Some(options)),
            )
            .await?;
        let progress = client.timing().progress_interval();
        let mut ticks = interval(progress);
        ticks.tick().await;
        let mut awaiting_progress = false;
        let mut count_at = Instant::now() + client.timing().quiet_count_interval();
        loop {
            let mut now = self.settle().await?;
            if self.caught_up_on_new_record(watching, now, &link).await {
                now = self.settle().await?;
                if let Watch::PutsOnly { .. } = now {
                    watching = now;
                }
            }
            if now != watching {
                // Watching less needs a new watch; watching more, or a
                // deletion missed, needs a read first too.
                return Ok(());
            }
            let resync = client.resync.notified();
            let woke = tokio::select! {
                // Answers first: a progress answer that came while this
                // task was busy must count before the tick that checks it.
                biased;
                message = stream.message() => {
                    let response = match message {
                        Ok(Some(response)) => response,
                        Ok(None) => {
                            client.conn.reconnect(link.generation);
                            return Err(EtcdError::unreachable(
                                link.endpoint.clone(),
                                "watch stream closed",
                            ));
                        }
                        Err(err) => {
                            let err = client.conn.error(&link.endpoint, err).await;
                            if err.is_connection_problem() {
                                client.conn.reconnect(link.generation);
                            }
                            return Err(err);
                        }
                    };
                    awaiting_progress = false;
                    self.apply(&response, &link.endpoint)?
                }
                _ = ticks.tick() => {
                    if awaiting_progress {
                        client.conn.reconnect(link.generation);
                        return Err(EtcdError::Timeout {
                            endpoint: link.endpoint.clone(),
                            timeout: progress,
                        });
                    }
                    if let Err(err) = stream.request_progress().await {
                        return Err(client.conn.error(&link.endpoint, err).await);
                    }
                    awaiting_progress = true;
                    Woke::Timer
                }
                _ = sleep_until_opt(self.recheck_at), if self.recheck_at.is_some() => {
                    self.recheck_at = None;
                    Woke::Timer
                }
                _ = sleep_until(count_at), if watching != Watch::Everything => {
                    count_at = Instant::now() + client.timing().quiet_count_interval();
                    if self.missed_deletions(&link).await {
                        Woke::Reread
                    } else {
                        Woke::Timer
                    }
                }
                _ = resync => Woke::Reread,
                // The connection was replaced (a request failed): this
                // stream may be on a dead connection. Start over.
                _ = generations.changed() => Woke::Reread,
            };
            match woke {
                Woke::Changed | Woke::Timer => {}
                Woke::Reread => return Ok(()),
            }
        }
    }

    /// A new record seen while watching puts only: the old leader's lease
    /// ended (a revoke or an expiry takes all its keys at once) and the
    /// record's txn deleted any transfer or preemption record, so the
    /// mirror drops them (`Mirror::record_replaced`); unless someone deleted
    /// the record by hand (its keys are then still there), which the count
    /// tells, as it tells any deletion missed. Returns whether the mirror
    /// is whole again without a read.
    async fn caught_up_on_new_record(&mut self, watching: Watch, now: Watch, link: &Link) -> bool {
        let (
            Watch::PutsOnly { lease: old, .. },
            Watch::PutsOnly {
                record, lease: new, ..
            },
        ) = (watching, now)
        else {
            return false;
        };
        if now == watching || old == new {
            return false;
        }
        self.mirror().record_replaced(old, record);
        !self.missed_deletions(link).await
    }

    /// Whether this node, watching puts only, missed a deletion: its mirror
    /// then holds a key etcd no longer has (it holds every other key, as it
    /// sees every put). Counted at the mirror's own revision, so that later
    /// changes do not blur the count; the count is all etcd sends. A failed
    /// count counts as a miss (the read that follows says what is wrong);
    /// after a few in a row this task watches everything instead.
    async fn missed_deletions(&mut self, link: &Link) -> bool {
        let (revision, held) = {
            let mirror = self.mirror();
            (mirror.revision, mirror.key_count())
        };
        let client = &self.shared.client;
        let mut kv = link.client.kv_client();
        let options = GetOptions::new()
            .with_prefix()
            .with_count_only()
            .with_revision(revision)
            .with_serializable();
        let counted = client
            .call(
                "range",
                link,
                kv.get(self.shared.layout.prefix(), Some(options)),
            )
            .await;
        match counted {
            Ok(resp) => {
                self.failed_counts = 0;
                usize::try_from(resp.count()) != Ok(held)
            }
            Err(err) => {
                self.failed_counts += 1;
                tracing::info!(id = %self.shared.id, revision, error = %err, failures = self.failed_counts, "counting the election's keys failed: reading them instead");
                true
            }
        }
    }

    /// Reads every key of the election, linearizably.
    async fn read(&mut self) -> Result<(), EtcdError> {
        let client = &self.shared.client;
        let link = client.link().await?;
        let mut kv = link.client.kv_client();
        let (mut resp, revision) = client
            .call_linearizable(
                "range",
                &link,
                kv.get(
                    self.shared.layout.prefix(),
                    Some(GetOptions::new().with_prefix()),
                ),
            )
            .await?;
        let mut mirror = Mirror::new(&self.shared.layout);
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
        *self.shared.mirror() = mirror;
        // What was waited for is looked at again, from what was just read.
        self.waiting = None;
        self.recheck_at = None;
        Ok(())
    }

    /// Applies one watch answer to the mirror.
    fn apply(&mut self, response: &WatchResponse, endpoint: &str) -> Result<Woke, EtcdError> {
        let shared = &self.shared;
        shared.health.etcd_ok();
        let mut mirror = shared.mirror();
        if response.canceled() {
            if response.compact_revision() > 0 {
                // Our revision was compacted away: read again from now.
                return Ok(Woke::Reread);
            }
            return Err(classify::watch_cancelled(
                endpoint,
                response.cancel_reason(),
                &shared.client.conn.denied,
            ));
        }
        let header = response.header().map_or(0, |h| h.revision());
        if response.events().is_empty() {
            if header > 0 && header < mirror.revision {
                // This member's history is behind what we read: it may be a
                // wiped or restored store. A linearizable read tells.
                return Ok(Woke::Reread);
            }
            if response.created() {
                // Stamped with etcd's revision before the events since our
                // read are sent: no mark of progress.
                return Ok(Woke::Timer);
            }
            mirror.revision = mirror.revision.max(header);
            shared
                .client
                .revisions()
                .observed(revision_u64(mirror.revision));
            return Ok(Woke::Timer);
        }
        for event in response.events() {
            let Some(kv) = event.kv() else {
                continue;
            };
            match event.event_type() {
                EventType::Put => {
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
                EventType::Delete => {
                    mirror.remove(kv.key());
                }
            }
            mirror.revision = mirror.revision.max(kv.mod_revision());
        }
        shared
            .client
            .revisions()
            .observed(revision_u64(mirror.revision));
        Ok(Woke::Changed)
    }

    /// Says what the mirror shows, and takes the step when it is ours.
    /// Returns what to watch from here.
    async fn settle(&mut self) -> Result<Watch, EtcdError> {
        loop {
            let assessment = succession::assess(&self.shared.layout, &self.mirror());
            self.shared.predecessors().note(assessment.leading.as_ref());
            let mine = self.mine(&assessment);
            if self.claim_lost(mine) {
                continue;
            }
            self.warn_twins();
            let acted = self.decline_transfer(&assessment).await?
                || self.act(&assessment).await?
                || self.ask_to_lead(&assessment).await?;
            if !acted {
                let newly_mine = mine.is_some() && mine != self.published_mine;
                self.publish(&assessment, mine);
                if newly_mine {
                    // The record is ours: let the state machine begin (and
                    // journal) the tenure before this task reads the next
                    // watch answer (our own record's, already waiting).
                    tokio::task::yield_now().await;
                }
                self.look_ahead(&assessment);
                return Ok(self.watch_for(&assessment));
            }
        }
    }

    /// What to watch while the keys are as `assessment` says (see `Watch`).
    fn watch_for(&self, assessment: &Assessment) -> Watch {
        let (Some(ours), Some((_, leader))) = (&self.ours, &assessment.writer) else {
            return Watch::Everything;
        };
        // A transfer to another candidate, or a request to lead, whose end
        // this node misses changes nothing it does: the record changes
        // either way, and a node without `--preempt` never asks.
        let to_us = assessment
            .transfer
            .as_ref()
            .is_some_and(|t| t.target.lease == ours.lease);
        let quiet = *leader != ours.lease
            && assessment.step == Step::Wait
            && assessment.anchored
            && assessment.obstacle.is_none()
            && !to_us
            && self.waiting.is_none()
            && self.recheck_at.is_none()
            && self.shared.preempt_after.is_none()
            && self.failed_counts < FAILED_COUNTS;
        if !quiet {
            return Watch::Everything;
        }
        let mirror = self.mirror();
        if mirror.among_next(ours.lease, *leader, WATCHING_DELETIONS) {
            return Watch::Everything;
        }
        match mirror.get(&self.shared.layout.record()) {
            Some(record) => Watch::PutsOnly {
                record: record.create_revision,
                lease: record.lease,
            },
            None => Watch::Everything,
        }
    }

    /// The record's lease, when this process wrote it.
    fn mine(&self, assessment: &Assessment) -> Option<u64> {
        assessment
            .writer
            .as_ref()
            .filter(|(nonce, _)| *nonce == self.shared.nonce)
            .and_then(|(_, lease)| u64::try_from(*lease).ok())
    }

    /// Whether our claim just ended: the record we led with is gone (or no
    /// longer ours), or our candidate key is gone while not leading.
    fn claim_lost(&mut self, mine: Option<u64>) -> bool {
        let Some(ours) = &self.ours else {
            return false;
        };
        let leading = mine == u64::try_from(ours.lease).ok();
        let queued = self
            .mirror()
            .get(&ours.key)
            .is_some_and(|kv| kv.lease == ours.lease && kv.create_revision == ours.create_revision);
        if leading {
            self.led = true;
            return false;
        }
        if queued && !self.led {
            return false;
        }
        // A record someone else deleted: the lease is left to expire, after
        // our deadline; successors wait for exactly that (`predecessors.rs`).
        let claim = u64::try_from(ours.lease).unwrap_or(0);
        self.ours = None;
        self.led = false;
        let _ = self
            .shared
            .client
            .changes()
            .send(Change::ClaimLost { claim });
        true
    }

    /// Takes the step if it is ours to take and nobody it must outlive is
    /// left. Returns whether the keys changed (so look again).
    async fn act(&mut self, assessment: &Assessment) -> Result<bool, EtcdError> {
        if assessment.step == Step::Wait {
            self.waiting = None;
            self.recheck_at = None;
            return Ok(false);
        }
        let Some(ours) = self.ours.clone() else {
            return self
                .look_at_predecessors(assessment, None)
                .await
                .map(|_| false);
        };
        if assessment.next.as_ref().map(|c| c.lease) != Some(ours.lease) {
            return self
                .look_at_predecessors(assessment, None)
                .await
                .map(|_| false);
        }
        // The record's revision would be the term: never at or below the floor.
        let floor = self.shared.client.revisions().floor();
        if matches!(assessment.step, Step::TakeRecord { .. })
            && revision_u64(self.mirror().revision).saturating_add(1) < floor
        {
            return Ok(false);
        }
        if !self
            .look_at_predecessors(assessment, Some(ours.lease))
            .await?
        {
            return Ok(false);
        }
        match assessment.step {
            Step::Wait => Ok(false),
            Step::LayAnchor => self.lay_anchor().await,
            Step::TakeRecord { anchor, transfer } => {
                self.take_record(&ours, anchor, transfer).await
            }
        }
    }

    /// While someone leads, the candidate next in line looks up the leases
    /// of the earlier leaders it remembers, once per leader, so that when
    /// this one goes, its lease is the only one left to look up (every
    /// other candidate does nothing). A lease that is gone stays gone: etcd
    /// never hands out an id again, so looking now is as good as looking
    /// then. In the background, so a slow etcd never holds up following;
    /// it only saves work, and failures are left for the lookup that counts.
    fn look_ahead(&mut self, assessment: &Assessment) {
        let (Some(ours), Some(leading)) = (&self.ours, &assessment.leading) else {
            return;
        };
        if assessment.step != Step::Wait || self.looked_ahead == Some(leading.lease) {
            return;
        }
        let runner_up = match &assessment.transfer {
            Some(transfer) => Some(transfer.target.lease),
            None => self.mirror().runner_up(leading.lease).map(|c| c.lease),
        };
        if runner_up != Some(ours.lease) {
            return;
        }
        let current = leading.lease;
        self.looked_ahead = Some(current);
        let earlier: Vec<i64> = self
            .shared
            .predecessors()
            .pending(ours.lease)
            .into_iter()
            .map(|(_, lease)| lease)
            .filter(|&lease| lease != current)
            .collect();
        if earlier.is_empty() {
            return;
        }
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let client = &shared.client;
            let lookups = futures_util::future::join_all(
                earlier.iter().map(|&lease| client.lease_left(lease)),
            )
            .await;
            for (lease, left) in earlier.into_iter().zip(lookups) {
                if let Ok(None) = left {
                    shared.predecessors().forget(lease);
                }
            }
        });
    }

    /// Checks the leases of the keys seen leading. The acting candidate
    /// (`own`) looks at every one; others only at one that is visibly alive
    /// or was not electd's, to say what the election waits for. Returns
    /// whether none is left.
    async fn look_at_predecessors(
        &mut self,
        assessment: &Assessment,
        own: Option<i64>,
    ) -> Result<bool, EtcdError> {
        let pending = match own {
            Some(own) => self.shared.predecessors().pending(own),
            None => {
                if self.recheck_at.is_some() {
                    // Looked already; the timer says when to look again.
                    return Ok(false);
                }
                let leading = assessment.leading.as_ref().map(|l| l.lease);
                let alive = self
                    .shared
                    .predecessors()
                    .worth_a_look(&self.mirror(), leading);
                alive.into_iter().collect()
            }
        };
        if pending.is_empty() {
            self.waiting = None;
            return Ok(true);
        }
        let client = &self.shared.client;
        let lookups = futures_util::future::join_all(
            pending.iter().map(|(_, lease)| client.lease_left(*lease)),
        )
        .await;
        let mut longest: Option<(Vec<u8>, i64, Duration)> = None;
        for ((key, lease), left) in pending.into_iter().zip(lookups) {
            match left? {
                None => self.shared.predecessors().forget(lease),
                Some(left) => {
                    if longest.as_ref().is_none_or(|(_, _, l)| left > *l) {
                        longest = Some((key, lease, left));
                    }
                }
            }
        }
        let Some((key, lease, left)) = longest else {
            self.waiting = None;
            return Ok(true);
        };
        let now = Instant::now();
        self.waiting = Some(Obstacle::Predecessor {
            key: String::from_utf8_lossy(&key).into_owned(),
            lease,
            expires: Some(now + left),
        });
        // Look again when it may have expired, or sooner: a lease can be
        // revoked early, and its holder may renew it.
        let again = self.shared.client.timing().lease_recheck(left);
        self.recheck_at = Some(now + again);
        Ok(false)
    }

    /// Lays the anchor while no old-rule key exists.
    async fn lay_anchor(&mut self) -> Result<bool, EtcdError> {
        let layout = &self.shared.layout;
        let anchor = layout.anchor();
        let Some(revision) = self.transact("anchor", &txn::lay_anchor(layout)).await? else {
            return Ok(false);
        };
        tracing::info!(id = %self.shared.id, revision, "laid the election's anchor: etcd election clients and electd releases before the leader record can no longer lead here");
        let mut mirror = self.mirror();
        mirror.insert(
            anchor,
            Kv {
                create_revision: revision,
                mod_revision: revision,
                lease: 0,
                value: layout.anchor_value().as_bytes().to_vec(),
            },
        );
        mirror.revision = mirror.revision.max(revision);
        Ok(true)
    }

    /// Creates the leader record, bound to our lease: only while it is
    /// absent, our key is still queued, and the anchor is the one we saw
    /// (or, without one, our key is the oldest under the prefix).
    async fn take_record(
        &mut self,
        ours: &Ours,
        anchor: Option<i64>,
        transfer: Option<i64>,
    ) -> Result<bool, EtcdError> {
        let layout = &self.shared.layout;
        let record = layout.record();
        let value = value::encode_record(
            &self.shared.id,
            &self.shared.advertise,
            &self.shared.nonce,
            ours.lease,
            &self.shared.candidacy(),
        );
        let taking = txn::Taking {
            key: ours.key.clone(),
            create_revision: ours.create_revision,
            lease: ours.lease,
            anchor,
            transfer,
        };
        let take = txn::take_record(layout, &taking, value.clone());
        let Some(revision) = self.transact("txn", &take).await? else {
            return Ok(false);
        };
        let mut mirror = self.mirror();
        mirror.insert(
            record,
            Kv {
                create_revision: revision,
                mod_revision: revision,
                lease: ours.lease,
                value: value.into_bytes(),
            },
        );
        mirror.remove(&layout.transfer());
        mirror.remove(&layout.preempt());
        mirror.revision = mirror.revision.max(revision);
        Ok(true)
    }

    /// A transfer to us while we may not lead (unhealthy, drained): decline
    /// it, so the ordinary succession goes on. Returns whether the keys changed.
    async fn decline_transfer(&mut self, assessment: &Assessment) -> Result<bool, EtcdError> {
        let (Some(ours), Some(transfer)) = (&self.ours, &assessment.transfer) else {
            return Ok(false);
        };
        if transfer.target.lease != ours.lease || transfer.target.named.candidacy.eligible() {
            return Ok(false);
        }
        let key = self.shared.layout.transfer();
        let declined = self.delete_unchanged(key, transfer.mod_revision).await?;
        if declined {
            tracing::info!(id = %self.shared.id, "declined a hand-over: this node may not lead now");
        }
        Ok(declined)
    }

    /// `--preempt`: once eligible for long enough, ask a leader of lower
    /// priority to hand over, by a request in etcd bound to our lease.
    /// Returns whether the keys changed.
    async fn ask_to_lead(&mut self, assessment: &Assessment) -> Result<bool, EtcdError> {
        let Some(after) = self.shared.preempt_after else {
            return Ok(false);
        };
        let Some(ours) = self.ours.clone() else {
            self.eligible_since = None;
            return Ok(false);
        };
        let standing = assessment
            .preempt
            .as_ref()
            .filter(|request| request.by.lease == ours.lease);
        let eligible = self
            .mirror()
            .candidate(ours.lease)
            .is_some_and(|c| c.named.candidacy.eligible());
        if !eligible || assessment.transfer.is_some() {
            // A hand-over in progress (or just made) restarts the clock.
            self.eligible_since = None;
            let to_us = assessment
                .transfer
                .as_ref()
                .is_some_and(|t| t.target.lease == ours.lease);
            if eligible && to_us {
                // Ours to take: the record's txn deletes the request too,
                // one write fewer on the way to leading.
                return Ok(false);
            }
            return self.withdraw_ask(standing).await;
        }
        let now = Instant::now();
        let since = *self.eligible_since.get_or_insert(now);
        let priority = self.shared.candidacy().priority;
        let outranks = assessment
            .leader_priority
            .is_some_and(|leader| priority > leader);
        if !outranks || !assessment.anchored || self.mine(assessment).is_some() {
            return self.withdraw_ask(standing).await;
        }
        if assessment.preempt.is_some() {
            return Ok(false);
        }
        if now < since + after {
            self.recheck_at = Some(
                self.recheck_at
                    .map_or(since + after, |r| r.min(since + after)),
            );
            return Ok(false);
        }
        let value = value::encode_record(
            &self.shared.id,
            &self.shared.advertise,
            &self.shared.nonce,
            ours.lease,
            &self.shared.candidacy(),
        );
        let ask = txn::ask_to_lead(&self.shared.layout, ours.lease, value);
        let asked = self.transact("txn", &ask).await?.is_some();
        if asked {
            tracing::info!(id = %self.shared.id, priority, "asked the leader of lower priority to hand over");
        }
        Ok(asked)
    }

    /// Takes back our own request to lead once it no longer holds (we may
    /// not lead, no longer outrank the leader, or lead ourselves), so that
    /// it neither moves leadership nor blocks another candidate's request.
    async fn withdraw_ask(&mut self, standing: Option<&Preempt>) -> Result<bool, EtcdError> {
        let Some(request) = standing else {
            return Ok(false);
        };
        let key = self.shared.layout.preempt();
        let withdrawn = self.delete_unchanged(key, request.mod_revision).await?;
        if withdrawn {
            tracing::info!(id = %self.shared.id, "withdrew the request to lead");
        }
        Ok(withdrawn)
    }

    /// Deletes `key` if unchanged since `mod_revision`, from the mirror too.
    async fn delete_unchanged(
        &mut self,
        key: Vec<u8>,
        mod_revision: i64,
    ) -> Result<bool, EtcdError> {
        let deleted = self
            .shared
            .client
            .delete_unchanged(key.clone(), mod_revision)
            .await?;
        if deleted {
            self.mirror().remove(&key);
        }
        Ok(deleted)
    }

    /// Runs a conditional write; its revision when it succeeded.
    async fn transact(
        &self,
        op: &'static str,
        conditional: &txn::Conditional,
    ) -> Result<Option<i64>, EtcdError> {
        self.shared.client.transact(op, conditional).await
    }

    /// Sends the view to the state machine.
    fn publish(&mut self, assessment: &Assessment, mine: Option<u64>) {
        self.published_mine = mine;
        let shared = &self.shared;
        let mut leader = assessment.leader.clone();
        let mut obstacle = assessment.obstacle.clone();
        // A record naming this node that this process did not write: others
        // cannot tell, but this node can deny it.
        if mine.is_none()
            && let Some(l) = leader.as_mut()
            && l.id.as_deref() == Some(shared.id.as_str())
            && assessment.writer.is_some()
        {
            l.verified = false;
            obstacle = Some(Obstacle::ForeignKey {
                key: String::from_utf8_lossy(&shared.layout.record()).into_owned(),
                kind: Foreign::NamesThisNode,
                expiry: match assessment.writer.as_ref().map(|(_, lease)| *lease) {
                    Some(lease) if lease != 0 => crate::status::Expiry::Lease(lease),
                    _ => crate::status::Expiry::Never,
                },
                api: crate::api::Api::V3,
            });
        }
        // A request to hand over, for us as the leader: from an eligible
        // candidate of a higher priority than ours.
        let asked = match (&assessment.preempt, mine) {
            (Some(request), Some(_))
                if request.by.named.candidacy.eligible()
                    && assessment
                        .leader_priority
                        .is_some_and(|p| request.by.named.candidacy.priority > p) =>
            {
                Some(request.by.named.id.clone())
            }
            _ => None,
        };
        let view = View {
            revision: revision_u64(self.mirror().revision),
            epoch: shared.client.revisions().epoch(),
            leader,
            mine,
            claimable_at: None,
            obstacle: obstacle.or_else(|| self.waiting.clone()),
            asked,
        };
        let _ = shared.client.changes().send(Change::View(view));
    }

    /// Warns once about each other live candidate with our id: a
    /// misconfiguration. Looks only at the candidates put since it last
    /// looked.
    fn warn_twins(&mut self) {
        let own = self.ours.as_ref().map(|o| o.lease);
        let fresh = self.mirror().take_fresh();
        for candidate in fresh {
            if Some(candidate.lease) == own
                || candidate.named.id != self.shared.id
                || candidate.named.nonce == self.shared.nonce
                || !self.twins.insert(candidate.lease)
            {
                continue;
            }
            tracing::warn!(
                id = %self.shared.id,
                ours = %self.shared.advertise,
                other = %candidate.named.advertise,
                "another live candidate uses the same id: give every node its own {}",
                self.shared.id_setting
            );
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
