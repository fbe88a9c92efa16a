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
//! * [`History`] (`ledger.rs`): the election's own history in etcd, who
//!   led when and how each leadership ended ([`Election::history`]).
//! * [`Status`] (`status.rs`): the shared snapshot every reader uses.
//! * [`journal`]: the JSON-lines leadership journal that proves safety in tests.
//! * [`shards`]: the placement rule of shards over nodes (sharding is
//!   planned; the rule alone so far).

#![deny(missing_docs)]

mod api;
mod backend;
mod claim;
mod clock;
mod config;
mod election;
mod error;
mod history;
pub mod journal;
mod leadership;
mod ledger;
mod names;
mod release;
pub mod shards;
mod status;
mod telemetry;
mod timing;
mod tls;
mod value;
mod vitals;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

pub use crate::api::Api;
pub use crate::claim::Claim;
pub use crate::clock::{instant_to_ns, monotonic_ns};
pub use crate::config::{
    Config, ConfigBuilder, DEFAULT_HISTORY_SIZE, MAX_HISTORY_SIZE, MAX_SHARDS,
};
pub use crate::error::{ConfigError, Error, EtcdError, TlsMisfit, TransferError, TtlProblem};
pub use crate::leadership::{LeaderWatch, Leadership};
pub use crate::ledger::{Ended, Ending, History, HistoryEntry, Skipped};
pub use crate::names::Names;
pub use crate::release::Releaser;
pub use crate::status::{
    Candidate, Expiry, Foreign, Leader, Obstacle, Problem, Role, Status, Tenure,
};
pub use crate::telemetry::{RenewalOutcome, RequestOutcome, Telemetry};
pub use crate::timing::{MAX_TTL, Timing, default_margin};
pub use crate::value::Candidacy;
pub use crate::vitals::Unhealthy;

use crate::backend::{Backend, Change};
use crate::claim::HeldClaim;
use crate::election::{Command, Machine, Parts};
use crate::history::{Keeper, Revisions};
use crate::journal::Journal;
use crate::shards::holding::Holding;
use crate::shards::{ShardLeaderships, ShardMap};
use crate::vitals::Vitals;

/// A running election: a background task that follows it (and campaigns when
/// asked), and this handle to talk to it. Cheap to share behind an `Arc`.
pub struct Election {
    config: Config,
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<Status>,
    /// The status's tenure alone: what [`Election::campaign`] waits on.
    tenures: watch::Receiver<Option<Tenure>>,
    health: Arc<Vitals>,
    backend: AnyBackend,
    /// `Config::shards`: what this node sees of them.
    shards: Option<watch::Receiver<ShardMap>>,
    /// The loop's claim, as it is now: what a shard map read is checked
    /// against (the map itself may lag a claim given up a moment ago).
    claims: watch::Receiver<Option<HeldClaim>>,
    /// What this process leads of the shards, where guards are kept.
    holding: Option<Arc<Holding>>,
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
            Some(path) => history::load(path, &config.names.program)?,
            None => history::Saved::default(),
        };
        let mut wiring = Wiring {
            health: Arc::new(Vitals::new()),
            revisions: Arc::new(Revisions::new(saved)),
            changes: mpsc::unbounded_channel(),
            claims: watch::Sender::new(None),
            shards: None,
            holding: None,
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
                let shards = match config.shards {
                    Some(count) => {
                        let (map, shards) = watch::channel(ShardMap::empty(count));
                        let journal = Journal::open(config.journal.as_deref(), &config.id)?;
                        let holding = Arc::new(Holding::new(journal, config.telemetry.clone()));
                        wiring.shards = Some(shards);
                        wiring.holding = Some(holding.clone());
                        Some(backend::v3::ShardWiring {
                            count,
                            claims: wiring.claims.subscribe(),
                            map,
                            holding,
                        })
                    }
                    None => None,
                };
                let backend = Arc::new(backend::v3::V3::new(
                    &config, health, revisions, tx, shards,
                )?);
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
            claims: wiring.claims.clone(),
            shards: wiring.holding.clone(),
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
            shards: wiring.shards,
            claims: wiring.claims.subscribe(),
            holding: wiring.holding,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// The shards as this node sees them now, when the election is split
    /// into them ([`ConfigBuilder::shards`]): which node leads each, and
    /// which this node leads until when ([`ShardMap::leads_at`]). `None`
    /// when the election has no shards.
    ///
    /// The map is checked against this node's claim as it is at the call:
    /// once the claim is given up (a shutdown, an abandon) the map holds
    /// nothing, even before the shards task has seen it.
    pub fn shards(&self) -> Option<ShardMap> {
        Some(shards::map::checked(self.shards.as_ref()?, &self.claims))
    }

    /// Each shard this node gains, with its guard, when the election has
    /// shards: hold the guard while the shard's work runs, and drop it once
    /// that work has stopped after [`shards::ShardLeadership::lost`] resolved. A
    /// planned move of the shard to another node waits for the drop (until
    /// the deadline at most): the work is gone before the shard moves.
    /// `None` when the election has no shards.
    ///
    /// ```no_run
    /// # async fn run(election: elect::Election) {
    /// let Some(mut gained) = election.shard_leaderships() else { return };
    /// while let Some(shard) = gained.next().await {
    ///     tokio::spawn(async move {
    ///         println!("leading shard {} at term {}", shard.shard(), shard.term());
    ///         shard.lost().await;
    ///         // Stop the shard's work here, then let the guard go.
    ///         drop(shard);
    ///     });
    /// }
    /// # }
    /// ```
    pub fn shard_leaderships(&self) -> Option<ShardLeaderships> {
        Some(ShardLeaderships::new(
            self.shards.clone()?,
            self.claims.clone(),
            self.holding.clone()?,
        ))
    }

    /// Woken on every change of the shards (see [`Election::shards`] for
    /// what to read then). `None` when the election has no shards.
    pub fn watch_shards(&self) -> Option<watch::Receiver<ShardMap>> {
        self.shards.clone()
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

    /// The election's history (v3), newest first: the leadership now (when
    /// someone leads, as its record says), then those that ended, at most
    /// `limit` of them and at most [`Config::history_size`], each with who
    /// held it, its term, when it began and ended (by the wall clock of the
    /// node that wrote it) and how. Read from etcd now, so every node that
    /// asks at one moment gets the same list. Keys in the history that are
    /// not electd's, or malformed, are listed in [`History::skipped`],
    /// never trusted.
    ///
    /// Every leadership writes its entry as it ends, at no cost to the
    /// hand-over: in the transaction that hands the record over (or that
    /// its successor consumes a transfer with); a release by a revoke
    /// writes it after; an expiry is written by the next leader, a while
    /// after it leads. A leader trims the oldest entries beyond the size.
    ///
    /// ```no_run
    /// # async fn run(election: &elect::Election) -> Result<(), elect::Error> {
    /// for leadership in election.history(10).await?.entries {
    ///     let how = match &leadership.ended {
    ///         None => "leads now".to_owned(),
    ///         Some(ended) => match &ended.to {
    ///             Some(to) => format!("{} (to {to})", ended.ending.as_str()),
    ///             None => ended.ending.as_str().to_owned(),
    ///         },
    ///     };
    ///     println!("term {}: {} {how}", leadership.term, leadership.id);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// On v2 it is [`Error::NeedsV3`]: one key has no room for a history.
    pub async fn history(&self, limit: usize) -> Result<History, Error> {
        let AnyBackend::V3(backend) = self.backend.clone() else {
            return Err(Error::NeedsV3 {
                what: "an election's history",
            });
        };
        let read = self
            .runtime
            .spawn(async move { backend.history(limit).await });
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
    /// not let a successor start early. A candidate's claim that never led
    /// is released as by [`Election::shutdown`]: there is nothing to wait
    /// out, and left queued it could be handed the leadership it can no
    /// longer take.
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
    health: Arc<Vitals>,
    revisions: Arc<Revisions>,
    changes: (
        mpsc::UnboundedSender<Change>,
        mpsc::UnboundedReceiver<Change>,
    ),
    /// The loop's claim, for the shards task.
    claims: watch::Sender<Option<HeldClaim>>,
    /// What the shards task publishes, when the election has shards.
    shards: Option<watch::Receiver<ShardMap>>,
    /// What this process leads of the shards, shared by the shards task
    /// and the loop.
    holding: Option<Arc<Holding>>,
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
    use crate::{AnyBackend, Config, Election, Error, Revisions, Vitals, Wiring};

    fn wiring() -> Wiring {
        Wiring {
            health: Arc::new(Vitals::new()),
            revisions: Arc::new(Revisions::default()),
            changes: tokio::sync::mpsc::unbounded_channel(),
            claims: tokio::sync::watch::Sender::new(None),
            shards: None,
            holding: None,
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
