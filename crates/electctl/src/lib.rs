//! `electctl`: operate an electd election from the command line, through
//! any node's HTTP API.
//!
//! This crate is a binary first; its library exists so that the tools that
//! generate the man page and the shell completions read the one
//! command-line definition ([`command`]) the binary parses.

mod cli;
mod client;
mod commands;
mod context;
mod error;
pub mod manual;
mod refusal;
mod show;
mod wire;

use std::process::ExitCode;

use clap::Parser as _;

/// electctl's command line as clap defines it, with its help texts: the
/// source of the man page and the completions.
pub fn command() -> clap::Command {
    <cli::Cli as clap::CommandFactory>::command()
}

/// The binary: parses the command line, runs the command, and exits with
/// the status the manual gives (0 done, 1 refused, 2 usage, 3 no answer or
/// timed out).
pub fn main() -> ExitCode {
    // clap exits 2 on a usage error, 0 after --help and --version.
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            error::warn(format_args!("cannot start a runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.exit_status() == 0 => ExitCode::SUCCESS,
        Err(e) => {
            error::warn(&e);
            ExitCode::from(e.exit_status())
        }
    }
}
