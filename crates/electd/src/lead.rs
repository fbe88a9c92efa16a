//! What the daemon does with its leadership: campaign for as long as it runs,
//! run the `--exec` command while it leads, hand over on request, and shut
//! down in order (stop the command, then resign).

use std::sync::Arc;
use std::time::Duration;

use elect::{Election, Leadership};
use tokio::sync::{mpsc, oneshot, watch};

use crate::exec::{ExecSpec, Identity, OnExit, Running, describe};
use crate::metrics::Metrics;

/// How a hand-over request (`POST /v1/resign`) ended.
#[derive(Debug)]
pub enum ResignReply {
    /// This node does not lead: nothing changed.
    NotLeader,
    /// It stepped down and released its key.
    Resigned,
    /// It stepped down, but etcd did not confirm the release (the key expires on its own).
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

enum After {
    Campaign,
    Cooldown,
    Exit(u8),
    Shutdown,
}

impl Lead {
    /// Runs until `shutdown` turns true; then stops the command and resigns.
    /// Returns the status to exit with when `--exec-on-exit exit` asked for one.
    pub async fn run(
        self,
        mut requests: mpsc::Receiver<ResignRequest>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Option<u8> {
        let exit = loop {
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
            match self.lead(leadership, &mut requests, &mut shutdown).await {
                After::Campaign => {}
                After::Cooldown => {
                    if self.cool_down(&mut requests, &mut shutdown).await.is_err() {
                        break None;
                    }
                }
                After::Exit(code) => break Some(code),
                After::Shutdown => break None,
            }
        };
        // Resign with reason `shutdown` while the command is already stopped.
        self.election.shutdown().await;
        exit
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
                status = exited(&mut child) => Event::Exited(status),
                changed = updates.changed() => match changed {
                    Ok(()) => Event::Renewed,
                    Err(_) => Event::Shutdown,
                },
            };
            match event {
                Event::Shutdown => {
                    stop(child.take()).await;
                    return self.shut_down(leadership).await;
                }
                Event::Lost => {
                    // SIGTERM now; the watchdog kills by the deadline at the latest.
                    stop(child.take()).await;
                    return After::Campaign;
                }
                Event::Resign(ResignRequest(reply)) => {
                    stop(child.take()).await;
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
                        running.extend(deadline).await;
                    } else if child.is_none()
                        && let Some(spec) = self.exec.as_ref()
                    {
                        // The watchdog stopped it at the deadline, yet the term goes on.
                        child = self.restart_in_time(spec, &leadership);
                    }
                }
                Event::Exited(status) => {
                    let Some(running) = child.take() else {
                        continue;
                    };
                    let Some(spec) = self.exec.as_ref() else {
                        continue;
                    };
                    if running.stopped_by_deadline() || !leadership.is_valid() {
                        tracing::warn!(
                            term = leadership.term(),
                            "the command was stopped at the leadership deadline"
                        );
                        // A renewal confirmed after the watchdog fired lets the
                        // term go on, and the command with it.
                        child = self.restart_in_time(spec, &leadership);
                        continue;
                    }
                    let (code, what) = match &status {
                        Ok(status) => (status.code().unwrap_or(1), describe(status)),
                        Err(err) => (1, format!("could not be waited for: {err}")),
                    };
                    tracing::warn!(term = leadership.term(), on_exit = ?spec.on_exit, "the command {what}");
                    match spec.on_exit {
                        OnExit::Resign => {
                            let _ = leadership.resign().await;
                            return After::Cooldown;
                        }
                        OnExit::Exit => {
                            let _ = leadership.resign().await;
                            return After::Exit(u8::try_from(code).unwrap_or(1));
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
    Exited(std::io::Result<std::process::ExitStatus>),
}

async fn exited(child: &mut Option<Running>) -> std::io::Result<std::process::ExitStatus> {
    match child {
        Some(running) => running.exited().await,
        None => std::future::pending().await,
    }
}

async fn stop(child: Option<Running>) {
    if let Some(running) = child
        && let Some(status) = running.stop().await
    {
        tracing::info!("the command {} after stop", describe(&status));
    }
}
