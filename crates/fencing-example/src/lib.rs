//! Fencing with `electd --exec`, worked: `fenced-store` holds a counter and
//! refuses requests from older terms; `fenced-worker`, run by `electd --exec`,
//! increments it by read-then-write and passes `ELECTD_TERM` with every
//! request. The guide is `docs/src/guides/fencing.md`.
//!
//! This library is the store's HTTP API, shared by both programs and the
//! test:
//!
//! | request | answer |
//! |---|---|
//! | `GET /counter?term=T` | 200 [`Counter`]; 409 [`Refusal`] when `T` is older than a term already seen |
//! | `PUT /counter?term=T&value=V` | 200 [`Counter`] (the value is now `V`); 409 [`Refusal`] as above |
//! | `GET /counter` | 200 [`Counter`], unfenced: for people, not for writers |
//! | `GET /stats` | 200 [`Stats`] |
//!
//! A fenced request with a newer term raises the store's highest term: from
//! then on, every request from an older term is refused.

use serde::{Deserialize, Serialize};

/// The counter: its value and the term of the write that set it (0 before
/// the first write).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub value: u64,
    pub term: u64,
}

/// The body of a 409: the request's term is older than `highest`, a term the
/// store has already seen, so the request comes from a leader that has been
/// replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub error: String,
    pub term: u64,
    pub highest: u64,
}

/// What the store has seen, for people and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// The counter's value.
    pub value: u64,
    /// The term of the write that set it.
    pub term: u64,
    /// The highest term any request has carried.
    pub highest: u64,
    /// Writes accepted. The worker's writes each add one to the value it
    /// read, so `writes - value` increments were lost: overwritten by a
    /// write computed from an older read.
    pub writes: u64,
    /// Requests that carried a term older than the highest seen before them.
    pub stale: u64,
    /// Stale requests refused: all of them when fenced, none when not.
    pub refused: u64,
    /// Whether the store refuses stale requests (not with `--unfenced`).
    pub fenced: bool,
}
