//! What the daemon does with its leadership: campaign for as long as it runs,
//! run the `--exec` command while it leads, hand over on request, and shut
//! down in order (stop the command, then resign).
//!
//! Nothing is released (resign, shutdown, the next campaign) while a command
//! of this node may still be alive: every end of a command waits until it and
//! everything it left are confirmed gone. When that cannot be confirmed the
//! leadership is abandoned instead (its claim expires after the TTL, by when
//! the watchdog has killed by the deadline), and the node campaigns again
//! only once the leftovers are gone.

use std::sync::Arc;
use std::time::Duration;

use elect::{Election, Leadership};
use tokio::sync::{mpsc, oneshot, watch};

use crate::exec::{ExecSpec, Identity, Leftover, OnExit, Running, Stopped, Watch};
use crate::metrics::Metrics;

/// How a hand-over request (`POST /v1/resign`) ended.
#[derive(Debug)]
pub enum ResignReply {
    /// This node does not lead: nothing changed.
    NotLeader,
    /// It stepped down and released its key.
    Resigned,
    /// It stepped down, but did not release its key (it expires on its own).
    Failed(String),
}

/// A hand-over request, answered on the channel.
pub struct ResignRequest(pub oneshot::Sender<ResignReply>);

/// The daemon's leadership loop.
pub struct Lead {
    pub election: Arc<Election>,
    pub exec: Option<ExecSpec>,
    pub cooldown: Duration,
    pub metrics: Arc<Metrics>,
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
        self,
        mut requests: mpsc::Receiver<ResignRequest>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Finish {
        let mut after = After::Campaign;
        let exit = loop {
            after = match after {
                After::Campaign => {
                    let leadership = tokio::select! {
                        biased;
                        _ = shutdown.wait_for(|stop| *stop) => break None,
                        Some(ResignRequest(reply)) = requests.recv() => {
                            let _ = reply.send(ResignReply::NotLeader);
                            continue;
                        }
                        leadership = self.election.campaign() => match leadership {
                            Ok(leadership) => leadership,
                            Err(_) => break None,
                        },
                    };
                    self.lead(leadership, &mut requests, &mut shutdown).await
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
        &self,
        left: &mut Leftover,
        requests: &mut mpsc::Receiver<ResignRequest>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        loop {
            let pause = tokio::time::sleep(Duration::from_secs(1));
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    biased;
                    _ = shutdown.wait_for(|stop| *stop) => return false,
                    Some(ResignRequest(reply)) = requests.recv() => {
                        let _ = reply.send(ResignReply::NotLeader);
                    }
                    _ = &mut pause => break,
                }
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
        &self,
        requests: &mut mpsc::Receiver<ResignRequest>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ()> {
        let until = tokio::time::sleep(self.cooldown);
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = &mut until => return Ok(()),
                _ = shutdown.wait_for(|stop| *stop) => return Err(()),
                Some(ResignRequest(reply)) = requests.recv() => {
                    let _ = reply.send(ResignReply::NotLeader);
                }
            }
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
        &self,
        leadership: Leadership,
        requests: &mut mpsc::Receiver<ResignRequest>,
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
        loop {
            let event = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => Event::Shutdown,
                _ = leadership.lost() => Event::Lost,
                Some(request) = requests.recv() => Event::Resign(request),
                watch = watch(&mut child) => Event::Command(watch),
                changed = updates.changed() => match changed {
                    Ok(()) => Event::Renewed,
                    Err(_) => Event::Shutdown,
                },
            };
            match event {
                Event::Shutdown => {
                    if let Err(left) = stop(child.take()).await {
                        tracing::error!(term = leadership.term(), "{UNCONFIRMED}");
                        leadership.abandon().await;
                        return After::Contain(left, Box::new(After::Shutdown));
                    }
                    return self.shut_down(leadership).await;
                }
                Event::Lost => {
                    // SIGTERM now, or SIGKILL when the deadline has passed.
                    if let Err(left) = stop(child.take()).await {
                        tracing::error!(term = leadership.term(), "{UNCONFIRMED}");
                        leadership.abandon().await;
                        return After::Contain(left, Box::new(After::Campaign));
                    }
                    return After::Campaign;
                }
                Event::Resign(ResignRequest(reply)) => {
                    if let Err(left) = stop(child.take()).await {
                        tracing::error!(term = leadership.term(), "{UNCONFIRMED}");
                        leadership.abandon().await;
                        let _ = reply.send(ResignReply::Failed(UNCONFIRMED.to_owned()));
                        return After::Contain(left, Box::new(After::Cooldown));
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
                            tracing::error!(term = leadership.term(), "{UNCONFIRMED}");
                            leadership.abandon().await;
                            return After::Contain(left, Box::new(After::Campaign));
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

enum Event {
    Shutdown,
    Lost,
    Resign(ResignRequest),
    Renewed,
    Command(Watch),
}

async fn watch(child: &mut Option<Running>) -> Watch {
    match child {
        Some(running) => running.watch().await,
        None => std::future::pending().await,
    }
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
    //! `tests/containment.rs`).

    use super::*;
    use elect::testing::{Memory, start_single};
    use elect::{Config, Role};

    const TTL: Duration = Duration::from_secs(3);
    const COOLDOWN: Duration = Duration::from_secs(7);

    struct Scene {
        election: Arc<Election>,
        store: Arc<Memory<false>>,
        requests: mpsc::Sender<ResignRequest>,
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
        let lead = Lead {
            election: election.clone(),
            exec: None,
            cooldown: COOLDOWN,
            metrics: Arc::new(Metrics::new()),
        };
        let task = tokio::spawn(lead.run(requests_rx, stop_rx));
        Scene {
            election,
            store,
            requests,
            stop,
            task,
            journal,
            _dir: dir,
        }
    }

    impl Scene {
        async fn resign(&self) -> ResignReply {
            let (reply, answer) = oneshot::channel();
            self.requests.send(ResignRequest(reply)).await.unwrap();
            answer.await.unwrap()
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
}
