//! What the daemon does with its leadership: campaign for as long as it runs,
//! run the `--exec` command while it leads, hand over on request (to the
//! next in line, or to a named node), step down when its health check fails
//! or it is drained, hand over to a candidate of higher priority that asks,
//! and shut down in order (stop the command, then resign).
//!
//! Every way of stepping down stops the command first, and each is one
//! step of the library's: `resign`, `set_healthy(false)`, `set_drained`,
//! `transfer_to`, `yield_to`.
//!
//! Nothing is released (resign, shutdown, the next campaign) while a command
//! of this node may still be alive: every end of a command waits until it and
//! everything it left are confirmed gone. When that cannot be confirmed the
//! leadership is abandoned instead (its claim expires after the TTL, by when
//! the watchdog has killed by the deadline), and the node campaigns again
//! only once the leftovers are gone.

use std::sync::Arc;
use std::time::Duration;

use elect::{Election, Leader, Leadership, TransferError};
use tokio::sync::{mpsc, oneshot, watch};

use crate::app_check::Verdict;
use crate::metrics::Metrics;
use crate::supervise::exec::{ExecSpec, Identity, Leftover, OnExit, Running, Stopped, Watch};

/// How a hand-over request (`POST /v1/resign[?to=ID]`) ended.
#[derive(Debug)]
pub enum ResignReply {
    /// This node does not lead: nothing changed.
    NotLeader,
    /// It stepped down and released its key.
    Resigned,
    /// It stepped down, but did not release its key (it expires on its own).
    Failed(String),
    /// It handed over to the named candidate, which leads now.
    Transferred,
    /// The named hand-over cannot be made: nothing changed.
    Refused(TransferError),
    /// The named candidate did not take over in time: the hand-over was
    /// withdrawn and the ordinary succession goes on; who leads, if known.
    TimedOut(Option<Leader>),
}

/// An operator's request, answered on its channel.
pub enum Request {
    /// `POST /v1/resign`, to the next in line or `to` a named candidate.
    Resign {
        to: Option<String>,
        reply: oneshot::Sender<ResignReply>,
    },
    /// `POST /v1/drain` (`true`) or `POST /v1/undrain` (`false`); answered
    /// once applied (a leader has handed over).
    Drain {
        drained: bool,
        reply: oneshot::Sender<()>,
    },
}

/// The daemon's leadership loop.
pub struct Lead {
    pub election: Arc<Election>,
    pub exec: Option<ExecSpec>,
    pub cooldown: Duration,
    pub metrics: Arc<Metrics>,
    /// The health check's verdicts, with `--health-url`.
    pub health: Option<watch::Receiver<Verdict>>,
}

/// How the leadership loop ended.
#[derive(Debug)]
pub struct Finish {
    /// The status to exit with, when `--exec-on-exit exit` asked for one.
    pub exit: Option<u8>,
    /// Whether every command it ran is confirmed gone. When not, the
    /// election was abandoned, not released.
    pub contained: bool,
}

enum After {
    Campaign,
    Cooldown,
    Exit(u8),
    Shutdown,
    /// The command's processes are not confirmed gone and the leadership
    /// was abandoned: contain them, then go on as the second says.
    Contain(Leftover, Box<After>),
}

/// Why a leadership's command could not be confirmed gone, for the log and
/// the hand-over reply.
const UNCONFIRMED: &str = "the command's processes are not confirmed gone after SIGKILL: \
                           the claim is left to expire after the TTL";

impl Lead {
    /// Runs until `shutdown` turns true; then stops the command and resigns
    /// (or abandons, when the command is not confirmed gone).
    pub async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Finish {
        let mut after = After::Campaign;
        let exit = loop {
            after = match after {
                After::Campaign => {
                    let election = self.election.clone();
                    let campaign = async move { election.campaign().await };
                    match self.wait_idle(campaign, &mut requests, &mut shutdown).await {
                        Some(Ok(leadership)) => {
                            self.lead(leadership, &mut requests, &mut shutdown).await
                        }
                        Some(Err(_)) | None => break None,
                    }
                }
                After::Cooldown => {
                    if self.cool_down(&mut requests, &mut shutdown).await.is_err() {
                        break None;
                    }
                    After::Campaign
                }
                After::Exit(code) => break Some(code),
                After::Shutdown => break None,
                After::Contain(mut left, then) => {
                    if self.contain(&mut left, &mut requests, &mut shutdown).await {
                        *then
                    } else {
                        // Shut down with the leftovers still there: never release.
                        self.election.abandon().await;
                        return Finish {
                            exit: None,
                            contained: false,
                        };
                    }
                }
            };
        };
        // Resign with reason `shutdown` while the command is already stopped.
        self.election.shutdown().await;
        Finish {
            exit,
            contained: true,
        }
    }

    /// Retries containment once a second until it is confirmed (true) or
    /// shutdown is asked (false; electd tries once more before it exits);
    /// no campaign meanwhile.
    async fn contain(
        &mut self,
        left: &mut Leftover,
        requests: &mut mpsc::Receiver<Request>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        loop {
            let pause = tokio::time::sleep(Duration::from_secs(1));
            if self.wait_idle(pause, requests, shutdown).await.is_none() {
                return false;
            }
            if left.contain().await {
                tracing::info!("the command's processes are gone at last");
                return true;
            }
            tracing::warn!("{UNCONFIRMED}; trying again");
        }
    }

    /// A resigned node waits before campaigning again, so that the hand-over
    /// actually moves leadership elsewhere.
    async fn cool_down(
        &mut self,
        requests: &mut mpsc::Receiver<Request>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ()> {
        let until = tokio::time::sleep(self.cooldown);
        self.wait_idle(until, requests, shutdown).await.ok_or(())
    }

    /// Waits for `until` while this node does not lead, answering requests
    /// and health verdicts meanwhile; `None` when shutdown is asked first.
    async fn wait_idle<T>(
        &mut self,
        until: impl std::future::Future<Output = T>,
        requests: &mut mpsc::Receiver<Request>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<T> {
        tokio::pin!(until);
        loop {
            let waited = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => return None,
                Some(request) = requests.recv() => Idle::Request(request),
                Some(healthy) = verdict(&mut self.health) => Idle::Verdict(healthy),
                done = &mut until => return Some(done),
            };
            self.idle(waited).await;
        }
    }

    /// Acts on what came while this node does not lead.
    async fn idle(&self, waited: Idle) {
        match waited {
            Idle::Request(Request::Resign { reply, .. }) => {
                let _ = reply.send(ResignReply::NotLeader);
            }
            Idle::Request(Request::Drain { drained, reply }) => {
                self.election.set_drained(drained).await;
                let _ = reply.send(());
            }
            Idle::Verdict(healthy) => self.election.set_healthy(healthy).await,
        }
    }

    fn start(&self, spec: &ExecSpec, leadership: &Leadership) -> Option<Running> {
        let deadline = leadership.deadline()?;
        let status = self.election.status();
        let who = Identity {
            term: leadership.term(),
            id: &status.id,
            election: &status.election,
            advertise: &status.advertise,
        };
        match Running::start(spec, &who, deadline) {
            Ok(running) => {
                tracing::info!(term = who.term, command = ?spec.command, "started the command");
                Some(running)
            }
            Err(err) => {
                tracing::error!(%err, command = ?spec.command, "cannot start the command");
                None
            }
        }
    }

    async fn lead(
        &mut self,
        leadership: Leadership,
        requests: &mut mpsc::Receiver<Request>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> After {
        let mut child = self
            .exec
            .as_ref()
            .and_then(|spec| self.start(spec, &leadership));
        if self.exec.is_some() && child.is_none() {
            // Could not even start it: let another node try.
            let _ = leadership.resign().await;
            return After::Cooldown;
        }
        let mut updates = self.election.subscribe();
        // A request to hand over that could not be answered is listened to
        // again only after the next change of state, not in a busy loop.
        let mut refused_ask = false;
        loop {
            let event = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => Event::Shutdown,
                _ = leadership.lost() => Event::Lost,
                Some(request) = requests.recv() => Event::Request(request),
                Some(healthy) = verdict(&mut self.health) => Event::Verdict(healthy),
                Some(by) = leadership.preempted(), if !refused_ask => Event::Preempted(by),
                watch = watch(&mut child) => Event::Command(watch),
                changed = updates.changed() => match changed {
                    Ok(()) => Event::Renewed,
                    Err(_) => Event::Shutdown,
                },
            };
            match event {
                Event::Shutdown => {
                    if let Err(left) = stop(child.take()).await {
                        return unconfirmed(&leadership, left, After::Shutdown).await;
                    }
                    return self.shut_down(leadership).await;
                }
                Event::Lost => {
                    // SIGTERM now, or SIGKILL when the deadline has passed.
                    if let Err(left) = stop(child.take()).await {
                        return unconfirmed(&leadership, left, After::Campaign).await;
                    }
                    return After::Campaign;
                }
                Event::Request(Request::Drain { drained, reply }) => {
                    if !drained {
                        // Not drained while it leads: nothing to do but say so.
                        self.election.set_drained(false).await;
                        let _ = reply.send(());
                        continue;
                    }
                    let after = self
                        .step_aside(&leadership, &mut child, |e| async move {
                            e.set_drained(true).await
                        })
                        .await;
                    let _ = reply.send(());
                    return after;
                }
                Event::Verdict(healthy) => {
                    if healthy {
                        self.election.set_healthy(true).await;
                        continue;
                    }
                    tracing::warn!(term = leadership.term(), "unhealthy: handing over");
                    return self
                        .step_aside(&leadership, &mut child, |e| async move {
                            e.set_healthy(false).await
                        })
                        .await;
                }
                Event::Request(Request::Resign {
                    to: Some(to),
                    reply,
                }) => {
                    // Checked first: a refusal changes nothing.
                    if let Err(err) = self.election.check_transfer(&to) {
                        let _ = reply.send(ResignReply::Refused(err));
                        continue;
                    }
                    match self.hand_to(&leadership, &mut child, &to, false).await {
                        Ok((after, outcome)) => {
                            let _ = reply.send(outcome);
                            return after;
                        }
                        Err(refused) => {
                            let _ = reply.send(ResignReply::Refused(refused));
                        }
                    }
                }
                Event::Preempted(by) => {
                    tracing::info!(term = leadership.term(), candidate = %by, "a candidate of higher priority asks to lead: handing over");
                    match self.hand_to(&leadership, &mut child, &by, true).await {
                        Ok((after, _)) => return after,
                        Err(err) => {
                            tracing::warn!(term = leadership.term(), candidate = %by, %err, "cannot hand over to the candidate that asked");
                            refused_ask = true;
                        }
                    }
                }
                Event::Request(Request::Resign { to: None, reply }) => {
                    if let Err(left) = stop(child.take()).await {
                        let _ = reply.send(ResignReply::Failed(UNCONFIRMED.to_owned()));
                        return unconfirmed(&leadership, left, After::Cooldown).await;
                    }
                    if !leadership.is_valid() {
                        // Lapsed at its deadline: nothing to hand over.
                        let _ = reply.send(ResignReply::NotLeader);
                        return After::Campaign;
                    }
                    let outcome = match leadership.resign().await {
                        Ok(()) => ResignReply::Resigned,
                        Err(err) => ResignReply::Failed(err.to_string()),
                    };
                    tracing::info!(outcome = ?outcome, "resigned on request");
                    let _ = reply.send(outcome);
                    return After::Cooldown;
                }
                Event::Renewed => {
                    refused_ask = false;
                    if let (Some(running), Some(deadline)) = (child.as_mut(), leadership.deadline())
                    {
                        running.extend(deadline);
                    } else if child.is_none()
                        && let Some(spec) = self.exec.as_ref()
                    {
                        // The watchdog stopped it at the deadline, yet the term goes on.
                        child = self.restart_in_time(spec, &leadership);
                    }
                }
                Event::Command(watch) => {
                    let (Some(running), Some(spec)) = (child.take(), self.exec.as_ref()) else {
                        continue;
                    };
                    let by_deadline = running.stopped_by_deadline() || !leadership.is_valid();
                    if watch == Watch::Unresponsive {
                        tracing::warn!(
                            term = leadership.term(),
                            "the watchdog stopped answering: killing it and the command"
                        );
                    }
                    // An exited watchdog is only reaped (with whatever it left,
                    // if it died); one that stopped answering is killed first.
                    let stopped = running.kill().await;
                    let stopped = match stopped {
                        Ok(stopped) => stopped,
                        Err(left) => {
                            return unconfirmed(&leadership, left, After::Campaign).await;
                        }
                    };
                    if by_deadline {
                        tracing::warn!(
                            term = leadership.term(),
                            "the command was stopped at the leadership deadline"
                        );
                        // A renewal confirmed after the watchdog fired lets the
                        // term go on, and the command with it.
                        child = self.restart_in_time(spec, &leadership);
                        continue;
                    }
                    tracing::warn!(
                        term = leadership.term(),
                        on_exit = ?spec.on_exit,
                        "the command {}",
                        stopped.describe()
                    );
                    match spec.on_exit {
                        OnExit::Resign => {
                            let _ = leadership.resign().await;
                            return After::Cooldown;
                        }
                        OnExit::Exit => {
                            let _ = leadership.resign().await;
                            return After::Exit(stopped.exit_code());
                        }
                        OnExit::Restart => {
                            // At most one start per second, never after the leadership ended.
                            let pause = tokio::select! {
                                _ = tokio::time::sleep(Duration::from_secs(1)) => None,
                                _ = leadership.lost() => Some(After::Campaign),
                                _ = shutdown.wait_for(|stop| *stop) => Some(After::Shutdown),
                            };
                            match pause {
                                Some(After::Shutdown) => return self.shut_down(leadership).await,
                                Some(after) => return after,
                                None => {}
                            }
                            self.metrics.exec_restarted();
                            child = self.start(spec, &leadership);
                        }
                    }
                }
            }
        }
    }

    /// Steps down because this node may not lead now (unhealthy, drained):
    /// the command stopped and confirmed gone first, then `step` (which ends
    /// the leadership and releases it).
    async fn step_aside<F, Fut>(
        &self,
        leadership: &Leadership,
        child: &mut Option<Running>,
        step: F,
    ) -> After
    where
        F: FnOnce(Arc<Election>) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        if let Err(left) = stop(child.take()).await {
            let after = unconfirmed(leadership, left, After::Campaign).await;
            step(self.election.clone()).await;
            return after;
        }
        step(self.election.clone()).await;
        After::Campaign
    }

    /// Hands over to the candidate `to` (asked for it with `preempted`): the
    /// command stopped and confirmed gone first. `Err` when the hand-over
    /// could not even start, which changes nothing: this node still leads,
    /// and its command runs again.
    async fn hand_to(
        &self,
        leadership: &Leadership,
        child: &mut Option<Running>,
        to: &str,
        preempted: bool,
    ) -> Result<(After, ResignReply), TransferError> {
        if let Err(left) = stop(child.take()).await {
            let after = unconfirmed(leadership, left, After::Campaign).await;
            return Ok((after, ResignReply::Failed(UNCONFIRMED.to_owned())));
        }
        let within = self.election.config().timing().transfer_within();
        let result = if preempted {
            leadership.yield_to(to, within).await
        } else {
            leadership.transfer_to(to, within).await
        };
        match result {
            Ok(leader) => {
                tracing::info!(
                    term = leadership.term(),
                    to,
                    successor_term = leader.term,
                    "handed over"
                );
                Ok((After::Campaign, ResignReply::Transferred))
            }
            Err(TransferError::TimedOut { leader }) => {
                tracing::warn!(
                    term = leadership.term(),
                    to,
                    "the hand-over was not taken in time"
                );
                Ok((After::Campaign, ResignReply::TimedOut(leader)))
            }
            Err(TransferError::Etcd(err)) => {
                Ok((After::Campaign, ResignReply::Failed(err.to_string())))
            }
            Err(_) if !leadership.is_valid() => {
                // Stepped down, but the target was gone by then: the
                // ordinary succession goes on, as when it times out.
                tracing::warn!(
                    term = leadership.term(),
                    to,
                    "the candidate left during the hand-over"
                );
                let leader = self.election.status().current_leader();
                Ok((After::Campaign, ResignReply::TimedOut(leader)))
            }
            Err(refused) => {
                if let Some(spec) = self.exec.as_ref() {
                    *child = self.start(spec, leadership);
                }
                Err(refused)
            }
        }
    }

    /// Starts the command again in a term whose renewal came late, once the
    /// deadline is more than the grace period away (else the watchdog would
    /// stop it again at once).
    fn restart_in_time(&self, spec: &ExecSpec, leadership: &Leadership) -> Option<Running> {
        let deadline = leadership.deadline()?;
        if deadline.saturating_duration_since(tokio::time::Instant::now()) <= spec.grace {
            return None;
        }
        tracing::info!(
            term = leadership.term(),
            "the term goes on: starting the command again"
        );
        self.start(spec, leadership)
    }

    /// Shuts the election down (journal reason `shutdown`) while the
    /// leadership is still held: a guard dropped while valid resigns, and
    /// that resignation would come first.
    async fn shut_down(&self, leadership: Leadership) -> After {
        self.election.shutdown().await;
        drop(leadership);
        After::Shutdown
    }
}

/// What came while this node does not lead.
enum Idle {
    Request(Request),
    Verdict(bool),
}

enum Event {
    Shutdown,
    Lost,
    Request(Request),
    Verdict(bool),
    Preempted(String),
    Renewed,
    Command(Watch),
}

/// The next health verdict that differs from the last, when there is a check.
async fn verdict(health: &mut Option<watch::Receiver<Verdict>>) -> Option<bool> {
    match health {
        Some(verdicts) => match verdicts.changed().await {
            Ok(()) => Some(verdicts.borrow_and_update().healthy),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

async fn watch(child: &mut Option<Running>) -> Watch {
    match child {
        Some(running) => running.watch().await,
        None => std::future::pending().await,
    }
}

/// A command whose processes are not confirmed gone: the leadership is
/// abandoned (its claim expires after the TTL, by when the watchdog killed
/// by the deadline), and what is left is contained before `then`.
async fn unconfirmed(leadership: &Leadership, left: Leftover, then: After) -> After {
    tracing::error!(term = leadership.term(), "{UNCONFIRMED}");
    leadership.abandon().await;
    After::Contain(left, Box::new(then))
}

/// Stops the command, if any; `Err` with what is not confirmed gone.
async fn stop(child: Option<Running>) -> Result<(), Leftover> {
    if let Some(running) = child {
        let stopped: Stopped = running.stop().await?;
        tracing::info!("the command {} after stop", stopped.describe());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The daemon's policy, in-process on the library's test double under
    //! paused time: what a hand-over request, a cooldown, a loss and a
    //! shutdown do (the `--exec` side runs real processes in
    //! `tests/it/containment.rs`).

    use super::*;
    use elect::testing::{Memory, start_single};
    use elect::{Config, Role};

    const TTL: Duration = Duration::from_secs(3);
    const COOLDOWN: Duration = Duration::from_secs(7);

    fn verdict(healthy: bool) -> Verdict {
        Verdict {
            healthy,
            reason: "a test".to_owned(),
        }
    }

    struct Scene {
        election: Arc<Election>,
        store: Arc<Memory<false>>,
        requests: mpsc::Sender<Request>,
        health: watch::Sender<Verdict>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<Finish>,
        journal: std::path::PathBuf,
        _dir: tempfile::TempDir,
    }

    fn scene() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("j");
        let config = Config::builder()
            .id("me")
            .ttl(TTL)
            .api(elect::Api::V2)
            .journal(&journal)
            .build()
            .unwrap();
        let (election, store) = start_single(config).unwrap();
        let election = Arc::new(election);
        let (requests, requests_rx) = mpsc::channel(8);
        let (stop, stop_rx) = watch::channel(false);
        let (health, health_rx) = watch::channel(verdict(true));
        let lead = Lead {
            election: election.clone(),
            exec: None,
            cooldown: COOLDOWN,
            metrics: Arc::new(Metrics::new(true, false)),
            health: Some(health_rx),
        };
        let task = tokio::spawn(lead.run(requests_rx, stop_rx));
        Scene {
            election,
            store,
            requests,
            health,
            stop,
            task,
            journal,
            _dir: dir,
        }
    }

    impl Scene {
        async fn resign(&self) -> ResignReply {
            let (reply, answer) = oneshot::channel();
            self.requests
                .send(Request::Resign { to: None, reply })
                .await
                .unwrap();
            answer.await.unwrap()
        }

        async fn drain(&self, drained: bool) {
            let (reply, answer) = oneshot::channel();
            self.requests
                .send(Request::Drain { drained, reply })
                .await
                .unwrap();
            answer.await.unwrap();
        }

        async fn role_becomes(&self, role: Role) {
            let mut status = self.election.subscribe();
            tokio::time::timeout(Duration::from_secs(3600), async {
                while status.borrow_and_update().role() != role {
                    let _ = status.changed().await;
                }
            })
            .await
            .expect("the role within an hour of virtual time");
        }

        fn last_reason(&self) -> Option<String> {
            std::fs::read_to_string(&self.journal)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .rfind(|r| r["event"] == "ended")
                .and_then(|r| r["reason"].as_str().map(str::to_owned))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_resign_request_hands_over_and_cools_down_before_campaigning_again() {
        let s = scene();
        s.role_becomes(Role::Leader).await;
        assert!(matches!(s.resign().await, ResignReply::Resigned));
        assert_eq!(s.last_reason().as_deref(), Some("resign"));
        assert_eq!(
            s.store.leader_at_release(),
            vec![false],
            "released while leading"
        );
        // The key is vacant, but the node waits out its cooldown first.
        tokio::time::sleep(COOLDOWN - Duration::from_millis(10)).await;
        assert_ne!(s.election.status().role(), Role::Leader);
        s.role_becomes(Role::Leader).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_resign_request_to_a_follower_changes_nothing() {
        let s = scene();
        s.store.take_over("other");
        s.role_becomes(Role::Follower).await;
        assert!(matches!(s.resign().await, ResignReply::NotLeader));
        assert!(s.store.leader_at_release().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_loss_it_campaigns_again() {
        let s = scene();
        s.role_becomes(Role::Leader).await;
        s.store.take_over("other");
        s.role_becomes(Role::Follower).await;
        assert_eq!(s.last_reason().as_deref(), Some("lost"));
        s.store.expire();
        s.role_becomes(Role::Leader).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_releases_as_shutdown_and_reports_everything_contained() {
        let mut s = scene();
        s.role_becomes(Role::Leader).await;
        s.stop.send(true).unwrap();
        let finish = (&mut s.task).await.unwrap();
        assert!(finish.contained);
        assert_eq!(finish.exit, None);
        assert_eq!(s.last_reason().as_deref(), Some("shutdown"));
        assert_eq!(s.store.leader_at_release(), vec![false]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unhealthy_leader_steps_down_and_leads_again_only_once_healthy() {
        let s = scene();
        s.role_becomes(Role::Leader).await;
        s.health.send(verdict(false)).unwrap();
        // Nobody else runs: the key is vacant once released.
        s.role_becomes(Role::Candidate).await;
        assert_eq!(s.last_reason().as_deref(), Some("unhealthy"));
        assert_eq!(s.store.leader_at_release(), vec![false]);
        // Vacant key, but no candidacy: an hour passes without leading.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_ne!(s.election.status().role(), Role::Leader);
        s.health.send(verdict(true)).unwrap();
        s.role_becomes(Role::Leader).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_drained_leader_hands_over_and_stays_out_until_undrained() {
        let s = scene();
        s.role_becomes(Role::Leader).await;
        s.drain(true).await;
        assert_ne!(s.election.status().role(), Role::Leader);
        assert_eq!(s.last_reason().as_deref(), Some("drain"));
        assert!(s.election.status().candidacy.drained);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_ne!(s.election.status().role(), Role::Leader);
        s.drain(false).await;
        s.role_becomes(Role::Leader).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_named_hand_over_on_v2_is_refused_and_changes_nothing() {
        let s = scene();
        s.role_becomes(Role::Leader).await;
        let (reply, answer) = oneshot::channel();
        s.requests
            .send(Request::Resign {
                to: Some("other".into()),
                reply,
            })
            .await
            .unwrap();
        assert!(matches!(
            answer.await.unwrap(),
            ResignReply::Refused(TransferError::NeedsV3)
        ));
        assert_eq!(s.election.status().role(), Role::Leader);
        assert!(s.store.leader_at_release().is_empty());
    }
}
