//! The handles a program holds: [`Leadership`], this node's leadership of
//! one term (its fencing token, its deadline, and the ways it ends), and
//! [`LeaderWatch`], which follows who leads.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout};

use crate::backend;
use crate::election::Command;
use crate::error::{Error, TransferError};
use crate::journal;
use crate::status::{Leader, Status};

/// This node's leadership of one term. Dropping it while it is still valid
/// resigns in the background; dropping it after it was lost changes nothing
/// (the election keeps campaigning).
pub struct Leadership {
    pub(crate) term: u64,
    pub(crate) status: watch::Receiver<Status>,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) released: bool,
}

impl Leadership {
    /// The term: a fencing token that strictly increases from one leader to the next.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The instant until which this leadership is guaranteed, if it still holds.
    pub fn deadline(&self) -> Option<Instant> {
        let now = Instant::now();
        self.status
            .borrow()
            .tenure_at(now)
            .filter(|t| t.term == self.term)
            .map(|t| t.deadline)
    }

    /// Whether this node still leads with this term, checked against the deadline now.
    pub fn is_valid(&self) -> bool {
        self.deadline().is_some()
    }

    /// Resolves when this leadership ends: deadline passed, key lost, or resigned.
    pub async fn lost(&self) {
        let mut status = self.status.clone();
        loop {
            let Some(deadline) = self.deadline() else {
                return;
            };
            tokio::select! {
                changed = status.changed() => if changed.is_err() { return },
                _ = sleep_until(deadline) => {}
            }
        }
    }

    /// Steps down and deletes the key, so the next candidate takes over now.
    /// Returns once etcd confirmed the release. The election stops campaigning
    /// until [`Election::campaign`](crate::Election::campaign) is called again.
    pub async fn resign(mut self) -> Result<(), Error> {
        self.released = true;
        let (reply, done) = oneshot::channel();
        self.commands
            .send(Command::Resign {
                term: Some(self.term),
                reply: Some(reply),
            })
            .map_err(|_| Error::Stopped)?;
        done.await.map_err(|_| Error::Stopped)?.map_err(Error::from)
    }
}

impl Leadership {
    /// Hands this leadership to the candidate `id` and to no one else (v3),
    /// and returns the new leader once it leads. `id` must be exactly one
    /// live, eligible candidate other than this node; otherwise nothing
    /// changes and this node still leads. Stop the work this node does as
    /// leader before calling it: this node steps down first (journal
    /// `ended`, reason `transfer`) and queues again behind the target. If
    /// the target does not lead within `within`, the hand-over is withdrawn
    /// ([`TransferError::TimedOut`]) and the ordinary succession goes on.
    ///
    /// ```no_run
    /// # async fn f(election: elect::Election) -> Result<(), Box<dyn std::error::Error>> {
    /// let leadership = election.campaign().await?;
    /// // … the work is stopped …
    /// let next = leadership
    ///     .transfer_to("worker-3", std::time::Duration::from_secs(1))
    ///     .await?;
    /// assert_eq!(next.id.as_deref(), Some("worker-3"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn transfer_to(&self, id: &str, within: Duration) -> Result<Leader, TransferError> {
        self.hand_to(id, within, backend::Handover::Transfer).await
    }

    /// Resolves with a candidate's id when one of a higher priority asks
    /// this leader to hand over (v3, [`ConfigBuilder::preempt_after`](crate::ConfigBuilder::preempt_after)), or
    /// with `None` when this leadership ends first. Answer it with
    /// [`Leadership::yield_to`], once the work is stopped.
    pub async fn preempted(&self) -> Option<String> {
        let mut status = self.status.clone();
        loop {
            let (asked, deadline) = {
                let now = Instant::now();
                let snapshot = status.borrow_and_update();
                let held = snapshot.tenure_at(now).filter(|t| t.term == self.term);
                (held.and(snapshot.asked.clone()), held.map(|t| t.deadline))
            };
            let deadline = deadline?;
            if asked.is_some() {
                return asked;
            }
            tokio::select! {
                changed = status.changed() => if changed.is_err() { return None },
                _ = sleep_until(deadline) => {}
            }
        }
    }

    /// Hands over to the candidate that asked ([`Leadership::preempted`]):
    /// as [`Leadership::transfer_to`], with journal reason `preempted`.
    pub async fn yield_to(&self, id: &str, within: Duration) -> Result<Leader, TransferError> {
        self.hand_to(id, within, backend::Handover::Preempted).await
    }

    async fn hand_to(
        &self,
        id: &str,
        within: Duration,
        reason: backend::Handover,
    ) -> Result<Leader, TransferError> {
        let (reply, done) = oneshot::channel();
        self.commands
            .send(Command::Transfer {
                term: self.term,
                to: id.to_owned(),
                reason,
                reply,
            })
            .map_err(|_| TransferError::NotLeader)?;
        let handed = done.await.map_err(|_| TransferError::NotLeader)??;
        let mut status = self.status.clone();
        let term = self.term;
        let target = handed.target.clone();
        let leads = |status: &mut watch::Receiver<Status>| {
            let target = target.clone();
            let mut status = status.clone();
            async move {
                loop {
                    if let Some(leader) = status.borrow_and_update().current_leader()
                        && leader.id.as_deref() == Some(target.as_str())
                        && leader.term > term
                    {
                        return Some(leader);
                    }
                    status.changed().await.ok()?;
                }
            }
        };
        if let Ok(Some(leader)) = timeout(within, leads(&mut status)).await {
            return Ok(leader);
        }
        let (reply, done) = oneshot::channel();
        let withdrawn = match self.commands.send(Command::CancelTransfer {
            revision: handed.revision,
            reply,
        }) {
            Ok(()) => done.await.map_err(|_| TransferError::NotLeader)??,
            Err(_) => false,
        };
        if !withdrawn {
            // The target consumed it meanwhile: it leads, or is about to.
            if let Ok(Some(leader)) = timeout(within, leads(&mut status)).await {
                return Ok(leader);
            }
        }
        Err(TransferError::TimedOut {
            leader: status.borrow().current_leader(),
        })
    }

    /// Steps down now and stops campaigning, like [`Leadership::resign`], but
    /// leaves the key to expire after the TTL instead of deleting it, so no
    /// successor leads before this leadership's deadline has passed: for a
    /// program that cannot confirm its work as leader has stopped.
    pub async fn abandon(&self) {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(Command::Abandon {
                term: Some(self.term),
                reason: journal::EndReason::Resign,
                reply,
            })
            .is_ok()
        {
            let _ = done.await;
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        if !self.released && self.is_valid() {
            let _ = self.commands.send(Command::Resign {
                term: Some(self.term),
                reply: None,
            });
        }
    }
}

/// Follows who leads. Returned by [`Election::observe`](crate::Election::observe).
pub struct LeaderWatch {
    pub(crate) status: watch::Receiver<Status>,
    pub(crate) last: Option<Option<Leader>>,
}

impl LeaderWatch {
    /// The leader now, as far as this node knows.
    pub fn current(&self) -> Option<Leader> {
        self.status.borrow().current_leader()
    }

    /// Waits for the next leader change and returns the new leader (`None`:
    /// no leader). The first call returns as soon as etcd has been read.
    pub async fn changed(&mut self) -> Result<Option<Leader>, Error> {
        loop {
            let (synced, leader, deadline) = {
                let now = Instant::now();
                let status = self.status.borrow_and_update();
                (
                    status.synced,
                    status.leader_at(now),
                    status.tenure_at(now).map(|t| t.deadline),
                )
            };
            if synced && self.last.as_ref() != Some(&leader) {
                self.last = Some(leader.clone());
                return Ok(leader);
            }
            tokio::select! {
                changed = self.status.changed() => changed.map_err(|_| Error::Stopped)?,
                // Our own leadership lapses at its deadline without any message.
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
            }
        }
    }
}
