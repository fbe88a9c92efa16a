//! A model of electd's v3 election for the [stateright] model checker:
//! candidates with leases that expire, the leader record, the anchor, a
//! named hand-over's transfer record, departing leaders and guardians, a
//! node paused past its deadline, crashes, and an etcd wipe against the
//! term floor, checked exhaustively over every interleaving within bounds
//! (`MODEL.md` says what it covers and what it leaves out).
//!
//! The protocol is a parameter ([`Protocol`]): today's, the one-write
//! hand-over of issue 20, and three unsafe ideas for it, each of which the
//! checker must catch. Four properties must hold in every state:
//! [`ONE_LEADER`], [`TERMS_GROW`], [`HOLDERS_WRITE`] and, for the history,
//! [`HOLDERS_RECORD`].
//!
//! [stateright]: https://docs.rs/stateright

mod check;
mod config;
mod etcd;
mod model;
mod pack;
mod protocol;
mod reduce;
pub mod shards;
mod state;
mod symmetry;

pub use check::{
    Checked, Outcome, SEARCH_DEPTH, Trace, describe, exhaust, exhaust_model, render, search,
    search_any, search_model,
};
pub use config::{Config, Protocol, Start};
pub use etcd::{Candidate, Etcd, Key, Lease, LeaseId, Owner, Rev};
pub use model::{Action, HOLDERS_RECORD, HOLDERS_WRITE, ONE_LEADER, SAFETY, TERMS_GROW};
pub use protocol::Election;
pub use state::{Claim, Ghost, Guardian, Node, Proc, Request, State};

#[cfg(test)]
mod tests;
