//! Following the election: read every key of it once, keep that
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

mod past;
mod preempt;
mod quiet;
mod state;
mod turn;

use std::collections::HashSet;
use std::sync::Arc;

use etcd_client::{EventType, WatchFilterType, WatchOptions, WatchResponse};
use tokio::sync::oneshot;
use tokio::time::{Instant, interval, sleep, sleep_until};

use super::classify;
use super::mirror::Kv;
use super::shared::{Ours, Shared};
use super::succession::{self, Assessment, revision_u64};
use crate::backend::retry::Backoff;
use crate::backend::{Change, View};
use crate::error::EtcdError;
use crate::status::{Foreign, Obstacle};

use self::quiet::Scope;
use self::state::Follower;

/// What happened while waiting for the next change.
enum Woke {
    /// The mirror changed.
    Changed,
    /// A timer (a predecessor's lease may be gone).
    Timer,
    /// Read everything afresh.
    Reread,
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
        owed: None,
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
        // The election's keys; its history is nobody's turn to act on.
        let (start, end) = shared.layout.election_range();
        let mut options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(self.mirror().revision + 1);
        if let Scope::PutsOnly { .. } = watching {
            options = options.with_filters([WatchFilterType::NoDelete]);
        }
        let mut watcher = link.client.watch_client();
        let mut stream = client
            .call("watch", &link, watcher.watch(start, Some(options)))
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
                if let Scope::PutsOnly { .. } = now {
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
                    let response = client.watch_answer(&link, message).await?;
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
                _ = sleep_until(count_at), if watching != Scope::Everything => {
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

    /// Reads every key of the election, linearizably.
    async fn read(&mut self) -> Result<(), EtcdError> {
        let mirror = self.shared.read_election().await?;
        *self.shared.mirror() = mirror;
        self.note_record();
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
    async fn settle(&mut self) -> Result<Scope, EtcdError> {
        loop {
            self.note_record();
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
                self.shared.queue_seen.send_replace(self.mirror().revision);
                if newly_mine {
                    // The record is ours: let the state machine begin (and
                    // journal) the tenure before this task reads the next
                    // watch answer (our own record's, already waiting).
                    tokio::task::yield_now().await;
                    self.shared.after_leading(self.owed.take());
                }
                self.look_ahead(&assessment);
                return Ok(self.watch_for(&assessment));
            }
        }
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
