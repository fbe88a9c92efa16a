//! The backend-independent state machine: campaign → lead → step down.
//!
//! One task runs [`Machine::run`]. It owns all timing and safety decisions:
//!
//! * a claim's **deadline** is `sent_at + TTL − margin` of the last
//!   acknowledged renewal (never the receive time);
//! * this node leads while it holds a claim, etcd shows that claim as the
//!   leader key, and the deadline has not passed; [`Status`] carries the
//!   deadline so readers decide at the instant they ask;
//! * renewals run in their own task every TTL/3 and are retried quickly on
//!   transient errors; a failed compare is an immediate loss;
//! * a renewal acknowledged after the deadline resumes the same term as a new
//!   interval (the key was still ours, so nobody else led);
//! * on resign and shutdown the node stops calling itself leader and journals
//!   `ended` *before* it deletes its key;
//! * terms never go backwards: no leader below the floor (`history.rs`) is
//!   reported, none is led with, and when etcd's history goes backwards the
//!   floor rises past it until etcd's revision has passed it again.
//!
//! Backends speak etcd (and stamp the health cells, report telemetry); see
//! [`crate::backend`].

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{Instant, sleep, sleep_until, timeout};

mod report;
mod steer;
mod tenure;

use crate::backend::retry::Backoff;
use crate::backend::{Backend, Campaign, Change, Handover, RenewError, Renewal, View};
use crate::claim::HeldClaim;
use crate::config::Config;
use crate::error::{EtcdError, TransferError};
use crate::history::{Keeper, Regression, Revisions};
use crate::journal::{EndReason, Journal};
use crate::shards::holding::Holding;
use crate::status::{Obstacle, Problem, Status, Tenure};
use crate::telemetry::RenewalOutcome;
use crate::value::Candidacy;
use crate::vitals::Vitals;

/// What the handles ([`crate::Election`], [`crate::Leadership`]) ask of the loop.
pub(crate) enum Command {
    /// Start (or keep) campaigning.
    Campaign,
    /// Give up the claim of `term` (any claim when `None`) and stop campaigning.
    Resign {
        term: Option<u64>,
        reply: Option<oneshot::Sender<Result<(), EtcdError>>>,
    },
    /// Stop leading with `term` (any claim when `None`) and stop campaigning,
    /// but leave the claim in etcd to expire on its own: for a leader that
    /// cannot confirm its work has stopped, so must not hand over early.
    Abandon {
        term: Option<u64>,
        reason: EndReason,
        reply: oneshot::Sender<()>,
    },
    /// Give up any claim and stop the loop; with `release: false` a claim
    /// that led is left to expire instead (see `Abandon`).
    Shutdown {
        release: bool,
        reply: oneshot::Sender<()>,
    },
    /// Change what this candidate offers (`steer.rs`).
    Candidacy {
        healthy: Option<bool>,
        drained: Option<bool>,
        reply: oneshot::Sender<()>,
    },
    /// Hand the leadership of `term` to the candidate `to` (`steer.rs`).
    Transfer {
        term: u64,
        to: String,
        reason: Handover,
        reply: oneshot::Sender<Result<Handed, TransferError>>,
    },
    /// Withdraw the transfer record of `revision`, if not consumed yet.
    CancelTransfer {
        revision: i64,
        reply: oneshot::Sender<Result<bool, EtcdError>>,
    },
}

/// A hand-over made: to whom, and the transfer record's revision.
pub(crate) struct Handed {
    pub target: String,
    pub revision: i64,
}

/// A claim this process holds in etcd.
#[derive(Clone, Copy, Debug)]
struct Claim {
    /// v2: the key's `createdIndex`; v3: the lease. A view's `mine` names it.
    id: u64,
    deadline: Instant,
    next_renew: Instant,
    failures: u32,
    /// Whether a tenure began with this claim: only then may work done as
    /// leader still be winding down when it is given up.
    led: bool,
}

enum Wake {
    Command(Option<Command>),
    Campaigned(Result<Result<Campaign, EtcdError>, JoinError>),
    Renewed(Result<Result<Renewal, RenewError>, JoinError>),
    RenewDue,
    Change(Change),
    Timer,
}

enum Flow {
    Continue,
    /// Stop the loop, then tell whoever asked (once the state file is saved).
    Stop(Option<oneshot::Sender<()>>),
}

pub(crate) struct Machine<B: Backend> {
    backend: Arc<B>,
    config: Config,
    status: watch::Sender<Status>,
    /// Our claim and its deadline (`Parts::claims`).
    claims: watch::Sender<Option<HeldClaim>>,
    /// With shards, what this process leads of them (`Parts::shards`).
    shards: Option<Arc<Holding>>,
    /// The last deadline a `renewed` line gave the shards, while this node
    /// does not lead the election itself.
    shards_renewed_until: Option<Instant>,
    /// `status`'s tenure, alone (`Parts::tenures`).
    tenures: watch::Sender<Option<Tenure>>,
    health: Arc<Vitals>,
    journal: Journal,
    commands: mpsc::UnboundedReceiver<Command>,
    changes: mpsc::UnboundedReceiver<Change>,
    revisions: Arc<Revisions>,
    /// Writes the floor and the revision to `--state-file`, if there is one.
    keeper: Option<Keeper>,
    /// etcd's history went backwards: no leadership until its revision passes `from`.
    regressed: Option<Regression>,
    /// Views of an earlier history epoch are dropped.
    epoch: u64,
    /// Whether `campaign()` was called since the current tenure began: the
    /// caller is done with it already (it can see the deadline pass before
    /// the loop does), so its end does not stop the campaign.
    asked_again: bool,
    /// What this candidate offers now: only an eligible one may lead.
    candidacy: Candidacy,
    /// The term of this process's last tenure: the only term that may lead
    /// again at the floor itself (a lapsed term resuming). A new one must be
    /// above it.
    last_term: Option<u64>,
    /// The view's obstacle, or the regression: logged once per change.
    obstacle: Option<Obstacle>,
    campaigning: bool,
    claim: Option<Claim>,
    campaign_task: Option<JoinHandle<Result<Campaign, EtcdError>>>,
    renew_task: Option<JoinHandle<Result<Renewal, RenewError>>>,
    view: Option<View>,
    /// A v2 campaign found the key taken at this revision minus one: only a
    /// newer view can show it vacant.
    campaign_floor: u64,
    retry_at: Option<Instant>,
    backoff: Backoff,
    tenure: Option<Tenure>,
    problem: Option<Problem>,
}

/// What the loop is given to run with.
pub(crate) struct Parts<B> {
    pub backend: Arc<B>,
    pub config: Config,
    pub status: watch::Sender<Status>,
    /// Our claim and its deadline, for what leads under it besides the
    /// election (the shards): one lease, one deadline for everything.
    pub claims: watch::Sender<Option<HeldClaim>>,
    /// With shards: what this process leads of them. The loop ends them
    /// all when it gives up the claim, before the release.
    pub shards: Option<Arc<Holding>>,
    /// This node's tenure alone, as `status` has it: what a campaign waits
    /// for, so that a change of anything else (every change of revision)
    /// does not wake it, on another thread.
    pub tenures: watch::Sender<Option<Tenure>>,
    pub health: Arc<Vitals>,
    pub journal: Journal,
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub changes: mpsc::UnboundedReceiver<Change>,
    pub revisions: Arc<Revisions>,
    pub keeper: Option<Keeper>,
}

impl<B: Backend> Machine<B> {
    pub(crate) fn new(parts: Parts<B>) -> Self {
        let Parts {
            backend,
            config,
            status,
            claims,
            shards,
            tenures,
            health,
            journal,
            commands,
            changes,
            revisions,
            keeper,
        } = parts;
        let backoff = Backoff::new(config.timing.backoff_cap());
        let candidacy = config.candidacy;
        Machine {
            backend,
            config,
            status,
            claims,
            shards,
            shards_renewed_until: None,
            tenures,
            health,
            journal,
            commands,
            changes,
            revisions,
            keeper,
            regressed: None,
            epoch: 0,
            asked_again: false,
            candidacy,
            last_term: None,
            obstacle: None,
            campaigning: false,
            claim: None,
            campaign_task: None,
            renew_task: None,
            view: None,
            campaign_floor: 0,
            retry_at: None,
            backoff,
            tenure: None,
            problem: None,
        }
    }

    pub(crate) async fn run(mut self) {
        self.backend.start();
        self.publish();
        let stopped;
        loop {
            self.health.loop_tick();
            if self.should_campaign() {
                let backend = self.backend.clone();
                self.campaign_task = Some(tokio::spawn(async move { backend.campaign().await }));
            }
            let wake = self.wait().await;
            if let Flow::Stop(reply) = self.handle(wake).await {
                stopped = reply;
                break;
            }
            self.reconcile();
            self.release_stale_claim().await;
            self.publish_claim(EndReason::Lost);
        }
        self.backend.stop();
        if let Some(keeper) = &self.keeper {
            keeper.flush(self.saved());
        }
        if let Some(reply) = stopped {
            let _ = reply.send(());
        }
    }

    fn should_campaign(&self) -> bool {
        if self.config.observer
            || !self.campaigning
            || self.claim.is_some()
            || self.campaign_task.is_some()
            || self.retry_at.is_some()
        {
            return false;
        }
        if B::QUEUES {
            // A place in the queue is no leadership: the backend creates the
            // leader record only at a revision above the floor, and an
            // ineligible candidate queues to be seen, never to lead.
            return true;
        }
        if !self.candidacy.eligible() {
            return false;
        }
        // A single key: try only when it looks vacant, never on a view older
        // than the campaign that found it taken, and only where the key's
        // `createdIndex` (the next index) would be a term above the floor.
        match &self.view {
            None => self.campaign_floor == 0 && self.regressed.is_none(),
            Some(view) => {
                view.leader.is_none()
                    && view.revision >= self.campaign_floor
                    && view.revision.saturating_add(1) >= self.revisions.floor()
                    && self.regressed.is_none()
            }
        }
    }

    async fn wait(&mut self) -> Wake {
        let heartbeat = self.config.timing.renew_interval();
        let deadline = self.tenure.map(|t| t.deadline);
        let renew_at = match (&self.claim, &self.renew_task) {
            (Some(claim), None) => Some(claim.next_renew),
            _ => None,
        };
        tokio::select! {
            biased;
            cmd = self.commands.recv() => Wake::Command(cmd),
            res = join(&mut self.campaign_task), if self.campaign_task.is_some() => {
                self.campaign_task = None;
                Wake::Campaigned(res)
            }
            res = join(&mut self.renew_task), if self.renew_task.is_some() => {
                self.renew_task = None;
                Wake::Renewed(res)
            }
            _ = sleep_until_opt(deadline), if deadline.is_some() => Wake::Timer,
            _ = sleep_until_opt(renew_at), if renew_at.is_some() => Wake::RenewDue,
            Some(change) = self.changes.recv() => Wake::Change(change),
            _ = sleep_until_opt(self.retry_at), if self.retry_at.is_some() => {
                self.retry_at = None;
                Wake::Timer
            }
            _ = sleep(heartbeat) => Wake::Timer,
        }
    }

    async fn handle(&mut self, wake: Wake) -> Flow {
        match wake {
            Wake::Command(cmd) => return self.on_command(cmd).await,
            Wake::Campaigned(res) => {
                let res = res.unwrap_or_else(|e| Err(task_failed(e)));
                self.on_campaign(res);
            }
            Wake::Renewed(res) => {
                let res = res.unwrap_or_else(|e| Err(RenewError::Failed(task_failed(e))));
                self.on_renewal(res);
            }
            Wake::RenewDue => {
                let backend = self.backend.clone();
                // The backend bounds each attempt; this outer bound only keeps
                // a misbehaving backend from stopping renewals for good.
                let limit = self.config.timing.renewal_bound();
                self.renew_task = Some(tokio::spawn(async move {
                    timeout(limit, backend.renew()).await.unwrap_or_else(|_| {
                        Err(RenewError::Failed(EtcdError::Timeout {
                            endpoint: "etcd".to_owned(),
                            timeout: limit,
                        }))
                    })
                }));
            }
            Wake::Change(change) => self.on_change(change),
            Wake::Timer => {}
        }
        Flow::Continue
    }

    fn on_campaign(&mut self, res: Result<Campaign, EtcdError>) {
        match res {
            Ok(Campaign::Claimed {
                claim,
                view,
                renewal,
            }) => {
                self.backoff.reset();
                self.clear_problem();
                self.claim = Some(Claim {
                    id: claim,
                    deadline: self.deadline_after(renewal),
                    next_renew: renewal.sent_at + self.config.timing.renew_interval(),
                    failures: 0,
                    led: false,
                });
                if let Some(view) = view {
                    self.apply_view(*view);
                }
            }
            Ok(Campaign::Taken { revision }) => {
                self.backoff.reset();
                self.clear_problem();
                self.campaign_floor = revision.saturating_add(1);
            }
            Err(err) => {
                self.set_problem(&err);
                self.retry_at = Some(Instant::now() + self.backoff.next_delay());
            }
        }
    }

    fn on_renewal(&mut self, res: Result<Renewal, RenewError>) {
        let renewed_until = res.as_ref().ok().map(|r| self.deadline_after(*r));
        let Some(claim) = self.claim.as_mut() else {
            return;
        };
        match res {
            Ok(renewal) => {
                if let Some(deadline) = renewed_until {
                    claim.deadline = claim.deadline.max(deadline);
                }
                claim.next_renew = renewal.sent_at + self.config.timing.renew_interval();
                claim.failures = 0;
                self.config.telemetry.renewal(RenewalOutcome::Renewed);
                self.clear_problem();
            }
            Err(RenewError::Lost) => {
                tracing::info!(id = %self.config.id, claim = claim.id, "etcd says our claim is gone");
                self.drop_claim();
                self.config.telemetry.renewal(RenewalOutcome::Lost);
            }
            Err(RenewError::Failed(err)) => {
                let backoff = self.config.timing.renew_retry(claim.failures);
                claim.failures = claim.failures.saturating_add(1);
                claim.next_renew = Instant::now() + backoff;
                self.config.telemetry.renewal(RenewalOutcome::Failed);
                self.set_problem(&err);
            }
        }
    }

    fn on_change(&mut self, change: Change) {
        match change {
            Change::View(view) => {
                self.clear_problem();
                self.apply_view(view);
            }
            Change::ClaimLost { claim } => {
                if self.claim.is_some_and(|c| c.id == claim) {
                    tracing::info!(id = %self.config.id, claim, "our key is gone from etcd");
                    self.drop_claim();
                    if let Some(task) = self.renew_task.take() {
                        task.abort();
                    }
                    self.config.telemetry.renewal(RenewalOutcome::Lost);
                }
            }
            Change::Problem(err) => self.set_problem(&err),
            Change::Regressed(regression) => self.on_regression(regression),
        }
    }

    /// etcd's history went backwards: nothing seen of the old one is
    /// current any more, and no term of the new one may be led with or
    /// reported until its revision has passed the old one.
    fn on_regression(&mut self, regression: Regression) {
        self.epoch = self.epoch.max(regression.epoch);
        self.regressed = Some(regression);
        self.view = None;
        self.campaign_floor = 0;
    }

    fn raise_floor(&mut self, term: u64) {
        self.revisions.raise_floor(term);
    }

    async fn on_command(&mut self, cmd: Option<Command>) -> Flow {
        match cmd {
            Some(Command::Campaign) => {
                self.campaigning = true;
                self.asked_again = true;
                Flow::Continue
            }
            Some(Command::Resign { term, reply }) => {
                let held = self.tenure.map(|t| t.term);
                if term.is_some() && term != held {
                    // A guard of an earlier term: that leadership is already over.
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(()));
                    }
                    return Flow::Continue;
                }
                self.campaigning = false;
                let res = self.relinquish(EndReason::Resign, true).await;
                if let Some(reply) = reply {
                    let _ = reply.send(res);
                }
                Flow::Continue
            }
            Some(Command::Abandon {
                term,
                reason,
                reply,
            }) => {
                let held = self.tenure.map(|t| t.term);
                if term.is_none() || term == held {
                    self.campaigning = false;
                    let _ = self.relinquish(reason, false).await;
                }
                let _ = reply.send(());
                Flow::Continue
            }
            Some(Command::Shutdown { release, reply }) => {
                // A failed release only means the key expires on its own.
                let _ = self.relinquish(EndReason::Shutdown, release).await;
                Flow::Stop(Some(reply))
            }
            Some(Command::Candidacy {
                healthy,
                drained,
                reply,
            }) => {
                self.on_candidacy(healthy, drained).await;
                let _ = reply.send(());
                Flow::Continue
            }
            Some(Command::Transfer {
                term,
                to,
                reason,
                reply,
            }) => {
                let _ = reply.send(self.on_transfer(term, &to, reason).await);
                Flow::Continue
            }
            Some(Command::CancelTransfer { revision, reply }) => {
                let _ = reply.send(self.backend.cancel_hand_over(revision).await);
                Flow::Continue
            }
            None => {
                let _ = self.relinquish(EndReason::Shutdown, true).await;
                Flow::Stop(None)
            }
        }
    }

    /// Forgets the claim: etcd says it is gone.
    fn drop_claim(&mut self) {
        self.claim = None;
    }

    /// Stops leading, then gives up the claim: in that order, because the
    /// successor may take over within a millisecond of the delete. Without
    /// `release` a claim that led is only forgotten: its lease (v3) or key
    /// (v2) expires after the TTL, after the deadline of any leadership it
    /// held; one that never led is released all the same.
    async fn relinquish(&mut self, reason: EndReason, release: bool) -> Result<(), EtcdError> {
        let limit = self.config.timing.release_bound();
        if let Some(mut task) = self.campaign_task.take() {
            // A campaign in flight may be about to claim; wait for it so that
            // claim is released too. One that does not finish in time is
            // stopped; whatever it created expires with its TTL.
            match timeout(limit, &mut task).await {
                Ok(Ok(res)) => self.on_campaign(res),
                Ok(Err(_)) => {}
                Err(_) => task.abort(),
            }
        }
        if let Some(tenure) = self.tenure {
            self.end(tenure, reason);
        }
        if let Some(task) = self.renew_task.take() {
            task.abort();
        }
        let claim = self.claim.take();
        let held = claim.is_some() || self.view.as_ref().is_some_and(|v| v.mine.is_some());
        self.retry_at = None;
        self.publish();
        // Before the release too: whatever leads under the claim (the
        // shards) stops with it, before a successor can take over.
        self.publish_claim(reason);
        if !held {
            return Ok(());
        }
        // A claim that never led has no work to wait out. Left to expire,
        // it would stay queued and eligible (v3): a departing leader could
        // hand it the record, which nobody could then take before its lease
        // ran out. So it is released even when asked to abandon.
        let release = release
            || claim.is_some_and(|c| {
                let never_led = !c.led;
                if never_led {
                    tracing::info!(id = %self.config.id, claim = c.id, "releasing a claim that never led, though asked to leave it to expire: nothing of it to wait out");
                }
                never_led
            });
        if !release {
            // The key stays, and reads as ours (so this node never names
            // itself leader), until it expires.
            self.backend.forget().await;
            return Ok(());
        }
        match timeout(limit, self.backend.release(reason)).await {
            Ok(res) => res,
            Err(_) => Err(EtcdError::Timeout {
                endpoint: "etcd".to_owned(),
                timeout: limit,
            }),
        }
    }

    fn deadline_after(&self, renewal: Renewal) -> Instant {
        self.config
            .timing
            .deadline_after(renewal.sent_at, renewal.ttl)
    }
}

async fn join<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, JoinError> {
    match task {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn task_failed(err: JoinError) -> EtcdError {
    EtcdError::Rejected {
        endpoint: "etcd".to_owned(),
        detail: format!("request task failed: {err}"),
    }
}
