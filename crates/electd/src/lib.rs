//! `electd`: the daemon. A thin shell around the `elect` library: command
//! line → configuration → election + HTTP server, `--exec` supervision and
//! the guardian.
//!
//! This crate is a binary first; its library exists so that the tools that
//! generate the man page, the shell completions and the flags reference
//! read the one command-line definition ([`command`]) the binary parses
//! (and date the man page as the answers date times: [`wallclock`]).

mod app_check;
mod cli;
mod daemon;
mod http;
mod lead;
pub mod manual;
mod metrics;
mod process;
mod settings;
mod supervise;
pub mod wallclock;

pub use process::main;

/// electd's command line as clap defines it, with its help texts: the
/// source of the man page, the completions and the flags reference.
pub fn command() -> clap::Command {
    <cli::Cli as clap::CommandFactory>::command()
}
