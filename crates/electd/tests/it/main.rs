//! electd's integration tests, one test binary (linking one binary instead
//! of one per file is most of what a rebuild after a change to the harness
//! costs): each module was a file of its own, and a test's name is still
//! `module::test`. Everything runs against a real etcd and real electd
//! processes, started through the `harness` crate.

#[macro_use]
mod common;

mod cli;
mod cluster;
mod containment;
mod election;
mod etcd_trouble;
mod faults;
mod foreign;
mod guardian;
mod handover;
mod health_check;
mod history;
mod hostile;
mod metrics;
mod monitoring;
mod operations;
mod packaging;
mod queue;
mod security;
mod shards;
mod steering;
mod ui;
mod watch;
