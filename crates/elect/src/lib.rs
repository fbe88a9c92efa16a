//! Leader election on etcd, with leadership you can trust at the instant you ask.
//!
//! Many copies of a program run on many machines; exactly one of them must act
//! as leader at any instant, and everyone must be able to ask who leads. This
//! crate runs that election on etcd, through its v3 API (leases, a queue of
//! candidate keys, one leader record whose revision is the term) or its v2
//! keys API (one key with a TTL).
//!
//! # Safety
//!
//! A leader's deadline is the *send* time of its last acknowledged renewal
//! plus the TTL minus a small margin: etcd cannot have expired the key before
//! then. Leadership is computed when asked ([`Leadership::is_valid`],
//! [`Status::is_leader`]), so a process that was paused past its deadline
//! answers correctly the moment it wakes. Each leadership carries a **term**,
//! etcd's revision of the leader key, which strictly increases from one leader
//! to the next: pass it to the resources you guard as a fencing token. The
//! election never leads with (nor reports) a term at or below one it has
//! seen, even when etcd's history goes backwards (a restore from an older
//! snapshot): see [`Obstacle::Regressed`] and [`ConfigBuilder::state_file`].
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use elect::{Api, Config, Election};
//!
//! # async fn run() -> Result<(), elect::Error> {
//! let config = Config::builder()
//!     .endpoints(["http://127.0.0.1:2379"])
//!     .election("backup")
//!     .id("worker-1")
//!     .advertise("http://10.0.0.1:8080")
//!     .ttl(Duration::from_secs(5))
//!     .api(Api::V3)
//!     .build()?;
//! let election = Election::start(config)?;
//! let leadership = election.campaign().await?;
//! println!("leading with fencing token {}", leadership.term());
//! tokio::select! {
//!     _ = leadership.lost() => println!("lost leadership"),
//!     _ = tokio::signal::ctrl_c() => leadership.resign().await?,
//! }
//! election.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! * [`Config`] (`config.rs`): validated settings and the time model's knobs.
//! * [`Election`], [`Leadership`], [`LeaderWatch`] (this file): the handles.
//! * `election.rs`: the state machine that owns timing and safety.
//! * `backend/`: one module per etcd API (`v2.rs`, `v3/`), speaking the protocol.
//! * `history.rs`: the highest revision seen and the term floor.
//! * [`Status`] (`status.rs`): the shared snapshot every reader uses.
//! * [`journal`]: the JSON-lines leadership journal that proves safety in tests.

#![deny(missing_docs)]

mod api;
mod backend;
mod claim;
mod clock;
mod config;
mod election;
mod error;
mod health;
mod history;
pub mod journal;
mod names;
mod release;
mod status;
mod telemetry;
mod timing;
mod tls;
mod value;

use std::sync::Arc;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout};

pub use crate::api::Api;
pub use crate::claim::Claim;
pub use crate::clock::{instant_to_ns, monotonic_ns};
pub use crate::config::{Config, ConfigBuilder};
pub use crate::error::{ConfigError, Error, EtcdError, TlsMisfit, TransferError, TtlProblem};
pub use crate::health::Unhealthy;
pub use crate::names::Names;
pub use crate::release::Releaser;
pub use crate::status::{
    Candidate, Expiry, Foreign, Leader, Obstacle, Problem, Role, Status, Tenure,
};
pub use crate::telemetry::{RenewalOutcome, RequestOutcome, Telemetry};
pub use crate::timing::{MAX_TTL, Timing, default_margin};
pub use crate::value::Candidacy;

use crate::backend::{Backend, Change};
use crate::election::{Command, Machine, Parts};
use crate::health::HealthCells;
use crate::history::{Keeper, Revisions};
use crate::journal::Journal;

/// A running election: a background task that follows it (and campaigns when
/// asked), and this handle to talk to it. Cheap to share behind an `Arc`.
pub struct Election {
    config: Config,
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<Status>,
    /// The status's tenure alone: what [`Election::campaign`] waits on.
    tenures: watch::Receiver<Option<Tenure>>,
    health: Arc<HealthCells>,
    backend: AnyBackend,
    /// The runtime the election task runs on: etcd reads made for callers
    /// run there too, next to the connections they use.
    runtime: tokio::runtime::Handle,
}

#[derive(Clone)]
enum AnyBackend {
    V2(Arc<backend::v2::V2>),
    V3(Arc<backend::v3::V3>),
    #[cfg(any(test, feature = "test-util"))]
    Single(Arc<backend::memory::Memory<false>>),
    #[cfg(any(test, feature = "test-util"))]
    Queue(Arc<backend::memory::Memory<true>>),
}

impl Election {
    /// Starts following the election described by `config`. Must be called
    /// from within a tokio runtime; the election task runs on that runtime.
    /// It does not campaign until [`Election::campaign`] is called.
    pub fn start(config: Config) -> Result<Election, Error> {
        let saved = match &config.state_file {
            Some(path) => history::load(path)?,
            None => history::Saved::default(),
        };
        let wiring = Wiring {
            health: Arc::new(HealthCells::new()),
            revisions: Arc::new(Revisions::new(saved)),
            changes: mpsc::unbounded_channel(),
        };
        let (health, revisions, tx) = (
            wiring.health.clone(),
            wiring.revisions.clone(),
            wiring.changes.0.clone(),
        );
        match config.api {
            Api::V2 => {
                let backend = Arc::new(backend::v2::V2::new(&config, health, revisions, tx)?);
                Self::start_with(config, wiring, backend.clone(), AnyBackend::V2(backend))
            }
            Api::V3 => {
                let backend = Arc::new(backend::v3::V3::new(&config, health, revisions, tx)?);
                Self::start_with(config, wiring, backend.clone(), AnyBackend::V3(backend))
            }
        }
    }

    fn start_with<B: Backend>(
        config: Config,
        wiring: Wiring,
        backend: Arc<B>,
        any: AnyBackend,
    ) -> Result<Election, Error> {
        let journal = Journal::open(config.journal.as_deref(), &config.id)?;
        let keeper = config.state_file.clone().map(|path| {
            Keeper::start(
                path,
                history::Saved {
                    floor: wiring.revisions.floor(),
                    revision: wiring.revisions.high(),
                },
            )
        });
        let (status_tx, status_rx) = watch::channel(first_status(&config));
        let (tenures_tx, tenures_rx) = watch::channel(None);
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let health = wiring.health.clone();
        let machine = Machine::new(Parts {
            backend,
            config: config.clone(),
            status: status_tx,
            tenures: tenures_tx,
            health: wiring.health,
            journal,
            commands: commands_rx,
            changes: wiring.changes.1,
            revisions: wiring.revisions,
            keeper,
        });
        tokio::spawn(machine.run());
        Ok(Election {
            config,
            commands: commands_tx,
            status: status_rx,
            tenures: tenures_rx,
            health,
            backend: any,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// The configuration this election runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The latest snapshot. Use [`Status::role`] to ask whether this node leads now.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// A receiver that is notified whenever the snapshot changes.
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Whether the election is working: the loop makes progress, etcd answered
    /// within the TTL, and nothing outside is known to be wrong. The error says why not.
    pub fn health(&self) -> Result<(), Unhealthy> {
        {
            let status = self.status.borrow();
            if let Some(problem) = &status.problem {
                return Err(Unhealthy::Etcd(problem.clone()));
            }
            if let Some(obstacle) = status.obstacle.as_ref().filter(|o| o.is_unhealthy()) {
                return Err(Unhealthy::Blocked(obstacle.clone()));
            }
        }
        self.health.check(&self.config.timing)
    }

    /// Whether the election loop itself is alive (it went round within the
    /// TTL), whatever etcd does: the question a liveness probe asks before
    /// restarting the process. A restart cannot fix anything `health` reports
    /// about etcd, and forgets the term floor (without a state file).
    pub fn liveness(&self) -> Result<(), Unhealthy> {
        self.health.check_loop(&self.config.timing)
    }

    /// Reports this program's own health verdict. While unhealthy the node
    /// is not a candidate: it cannot lead and is never chosen as a
    /// successor (v3 keeps it queued, visible as unhealthy). A leader told
    /// it is unhealthy steps down at once and releases, as a resign does
    /// (journal `ended`, reason `unhealthy`): stop the work it does as
    /// leader first. Returns once applied.
    pub async fn set_healthy(&self, healthy: bool) {
        self.offer(Some(healthy), None).await;
    }

    /// Drains this node (or ends a drain): out of the running like an
    /// unhealthy node (journal reason `drain`) until undrained.
    pub async fn set_drained(&self, drained: bool) {
        self.offer(None, Some(drained)).await;
    }

    async fn offer(&self, healthy: Option<bool>, drained: Option<bool>) {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(Command::Candidacy {
                healthy,
                drained,
                reply,
            })
            .is_ok()
        {
            let _ = done.await;
        }
    }

    /// Checks, without changing anything, that leadership could be handed to
    /// `id` now ([`Leadership::transfer_to`]): exactly one live, eligible
    /// candidate other than this node, on v3.
    pub fn check_transfer(&self, id: &str) -> Result<(), TransferError> {
        match &self.backend {
            AnyBackend::V2(b) => b.handover_target(id).map(drop),
            AnyBackend::V3(b) => b.handover_target(id).map(drop),
            #[cfg(any(test, feature = "test-util"))]
            AnyBackend::Single(b) => b.handover_target(id).map(drop),
            #[cfg(any(test, feature = "test-util"))]
            AnyBackend::Queue(b) => b.handover_target(id).map(drop),
        }
    }

    /// Follows leader changes, for programs that never campaign as well as for candidates.
    pub fn observe(&self) -> LeaderWatch {
        LeaderWatch {
            status: self.status.clone(),
            last: None,
        }
    }

    /// Campaigns until this node leads, then returns the leadership.
    ///
    /// Once a leadership is lost (its key is gone), the election stops
    /// campaigning until `campaign` is called again: whatever the program did
    /// as leader should be over before it may lead anew. (A leadership that
    /// only lapsed at its deadline while its key lives on may resume with the
    /// same term.) Cancelling the future does not stop the campaign;
    /// [`Leadership::resign`] (or dropping the guard) does.
    pub async fn campaign(&self) -> Result<Leadership, Error> {
        if self.config.observer {
            return Err(Error::Observer);
        }
        self.commands
            .send(Command::Campaign)
            .map_err(|_| Error::Stopped)?;
        // Woken by changes of this node's tenure only: a candidate that
        // follows is not woken (on the caller's thread) by every change of
        // the election's revision, as it would be by the status.
        let mut tenures = self.tenures.clone();
        loop {
            let leading = {
                let now = Instant::now();
                let tenure = *tenures.borrow_and_update();
                tenure.filter(|t| now < t.deadline)
            };
            if let Some(tenure) = leading {
                let mut status = self.status.clone();
                status.borrow_and_update();
                return Ok(Leadership {
                    term: tenure.term,
                    status,
                    commands: self.commands.clone(),
                    released: false,
                });
            }
            tenures.changed().await.map_err(|_| Error::Stopped)?;
        }
    }

    /// The candidates in succession order, the leader first, read from etcd
    /// now (v2 has a single key: the list holds the leader only).
    pub async fn candidates(&self) -> Result<Vec<Candidate>, Error> {
        let backend = self.backend.clone();
        let read = self.runtime.spawn(async move {
            match backend {
                AnyBackend::V2(b) => b.candidates().await,
                AnyBackend::V3(b) => b.candidates().await,
                #[cfg(any(test, feature = "test-util"))]
                AnyBackend::Single(b) => b.candidates().await,
                #[cfg(any(test, feature = "test-util"))]
                AnyBackend::Queue(b) => b.candidates().await,
            }
        });
        Ok(read.await.map_err(|_| Error::Stopped)??)
    }

    /// Stops the election: a leader steps down and deletes its key so that
    /// the next candidate takes over at once. Bounded in time even when etcd
    /// is unreachable (the key then expires on its own).
    pub async fn shutdown(&self) {
        self.stop(true).await;
    }

    /// Stops the election like [`Election::shutdown`], but a leader leaves
    /// its key to expire after the TTL instead of deleting it: for a program
    /// that cannot confirm the work it did as leader has stopped, so must
    /// not let a successor start early.
    pub async fn abandon(&self) {
        self.stop(false).await;
    }

    async fn stop(&self, release: bool) {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { release, reply })
            .is_ok()
        {
            let _ = done.await;
        }
    }
}

/// The status before anything is known: who this node is, nothing of etcd.
fn first_status(config: &Config) -> Status {
    Status {
        id: config.id.clone(),
        advertise: config.advertise.clone(),
        election: config.election.clone(),
        api: config.api,
        observer: config.observer,
        tenure: None,
        leader: None,
        leader_is_self: false,
        synced: false,
        problem: None,
        obstacle: None,
        floor: 0,
        revision: 0,
        candidacy: config.candidacy,
        asked: None,
    }
}

/// What a backend and the loop share: made before either.
struct Wiring {
    health: Arc<HealthCells>,
    revisions: Arc<Revisions>,
    changes: (
        mpsc::UnboundedSender<Change>,
        mpsc::UnboundedReceiver<Change>,
    ),
}

/// This node's leadership of one term. Dropping it while it is still valid
/// resigns in the background; dropping it after it was lost changes nothing
/// (the election keeps campaigning).
pub struct Leadership {
    term: u64,
    status: watch::Receiver<Status>,
    commands: mpsc::UnboundedSender<Command>,
    released: bool,
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
    /// until [`Election::campaign`] is called again.
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
    /// this leader to hand over (v3, [`ConfigBuilder::preempt_after`]), or
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

/// Follows who leads. Returned by [`Election::observe`].
pub struct LeaderWatch {
    status: watch::Receiver<Status>,
    last: Option<Option<Leader>>,
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

#[cfg(any(test, feature = "test-util"))]
pub mod testing {
    //! TEST DOUBLE (feature `test-util`): an election on an in-memory store
    //! instead of etcd, for deterministic tests under paused tokio time of
    //! the state machine and of programs built on it (as raft-rs exports
    //! `MemStorage`). Nothing else should use it: it is no etcd.
    //!
    //! ```
    //! # #[tokio::main(flavor = "current_thread", start_paused = true)]
    //! # async fn main() -> Result<(), elect::Error> {
    //! let config = elect::Config::builder().id("me").build()?;
    //! let (election, store) = elect::testing::start_queue(config)?;
    //! let leadership = election.campaign().await?;
    //! store.take_over("other");
    //! leadership.lost().await;
    //! # Ok(())
    //! # }
    //! ```

    use std::sync::Arc;

    pub use crate::backend::memory::{Memory, RenewScript};
    use crate::{AnyBackend, Config, Election, Error, HealthCells, Revisions, Wiring};

    fn wiring() -> Wiring {
        Wiring {
            health: Arc::new(HealthCells::new()),
            revisions: Arc::new(Revisions::default()),
            changes: tokio::sync::mpsc::unbounded_channel(),
        }
    }

    /// Starts `config`'s election on a single-key store (v2's shape).
    pub fn start_single(config: Config) -> Result<(Election, Arc<Memory<false>>), Error> {
        let wiring = wiring();
        let store = Arc::new(Memory::new(config.ttl(), wiring.changes.0.clone()));
        let election = Election::start_with(
            config,
            wiring,
            store.clone(),
            AnyBackend::Single(store.clone()),
        )?;
        store.observe(election.subscribe());
        Ok((election, store))
    }

    /// Starts `config`'s election on a queue (v3's shape).
    pub fn start_queue(config: Config) -> Result<(Election, Arc<Memory<true>>), Error> {
        let wiring = wiring();
        let store = Arc::new(Memory::new(config.ttl(), wiring.changes.0.clone()));
        let election = Election::start_with(
            config,
            wiring,
            store.clone(),
            AnyBackend::Queue(store.clone()),
        )?;
        store.observe(election.subscribe());
        Ok((election, store))
    }
}

#[cfg(test)]
mod tests;
