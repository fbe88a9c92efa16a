//! One module per command, and the dispatch to them.

mod drain;
mod history;
mod list;
mod shards;
mod switchover;
mod watch;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::error::Error;

pub async fn run(cli: Cli) -> Result<(), Error> {
    let context = Context::new(&cli)?;
    match cli.command {
        Command::List { watch: false } => list::once(&context).await,
        Command::List { watch: true } => list::follow(&context).await,
        Command::Switchover { to } => switchover::run(&context, to.as_deref()).await,
        Command::Drain { id } => drain::run(&context, id.as_deref(), true).await,
        Command::Undrain { id } => drain::run(&context, id.as_deref(), false).await,
        Command::History { limit } => history::run(&context, limit).await,
        Command::Watch => watch::run(&context).await,
        Command::Shards { all, watch: false } => shards::once(&context, all).await,
        Command::Shards { all, watch: true } => shards::follow(&context, all).await,
    }
}
