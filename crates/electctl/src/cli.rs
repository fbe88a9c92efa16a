//! The command line: the global options and one subcommand each, with the
//! help texts that `--help`, the man page and the completions come from.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Operate an electd election: who leads, who is next, hand over, drain a
/// node, read the election's history, follow each change, see its shards.
///
/// electctl talks to any node's HTTP API (--node). It finds the other
/// nodes, the leader included, through the candidates that node lists,
/// and each node's admin endpoints through that node's own /v1/status,
/// so --node may be any node of the election. Admin commands (switchover,
/// drain, undrain) need the admin token electd was started with.
#[derive(Debug, Parser)]
#[command(
    name = "electctl",
    version,
    about,
    after_long_help = crate::manual::after_long_help()
)]
pub struct Cli {
    /// Any node of the election: the URL of its HTTP port.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "ELECTCTL_NODE",
        default_value = "http://127.0.0.1:8080"
    )]
    pub node: String,

    /// File holding the admin token (the one electd reads with
    /// --admin-token-file); leading and trailing whitespace is removed. The
    /// token may instead come from ELECTD_ADMIN_TOKEN, never from a flag.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "ELECTD_ADMIN_TOKEN_FILE"
    )]
    pub token_file: Option<PathBuf>,

    /// Output: a table for people, or JSON for programs (the schema of
    /// each command is in the electctl reference of the book).
    #[arg(
        short = 'o',
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        default_value = "table"
    )]
    pub output: Output,

    /// How long to wait for a node's answer, for a switchover's new
    /// leader, and for a broken watch stream to come back, in seconds.
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        default_value = "30",
        value_parser = positive_seconds
    )]
    pub timeout: f64,

    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns, for people.
    Table,
    /// JSON, one object per result (per line when following a stream).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The election, its leader and how long it has led, then every
    /// candidate in succession order.
    List {
        /// Print the list again on every change (a drain, a health verdict,
        /// a candidate joining or leaving, a new leader), until interrupted.
        #[arg(short = 'w', long)]
        watch: bool,
    },
    /// Hand leadership over, to the next in line or to one candidate, and
    /// wait until the new leader leads.
    Switchover {
        /// Hand over to this candidate (its --id) and no other (etcd v3).
        #[arg(long, value_name = "ID", value_parser = node_id)]
        to: Option<String>,
    },
    /// Withdraw a node's candidacy: it never leads until undrained or
    /// restarted (a leader hands over first).
    Drain {
        /// The node's id [default: the node --node names].
        #[arg(value_name = "ID", value_parser = node_id)]
        id: Option<String>,
    },
    /// Make a drained node a candidate again.
    Undrain {
        /// The node's id [default: the node --node names].
        #[arg(value_name = "ID", value_parser = node_id)]
        id: Option<String>,
    },
    /// Who led when, and how each leadership ended, newest first (etcd v3).
    History {
        /// How many leaderships to show, from 1 (a node keeps its
        /// --history-size).
        #[arg(
            short = 'n',
            long,
            value_name = "N",
            default_value = "20",
            value_parser = clap::value_parser!(u32).range(1..)
        )]
        limit: u32,
    },
    /// One line per change of leader, for scripts, until interrupted: the
    /// time, the leader's id, its term and its URL.
    Watch,
    /// The shard map of an election started with --shards N: how many
    /// shards have no leader, how many each node leads, and each shard's
    /// leader and term (the first 20 unless --all).
    Shards {
        /// List every shard in the table, not only the first 20 (the JSON
        /// always has every shard).
        #[arg(short = 'a', long)]
        all: bool,
        /// Print the map again on every change of a shard's leader, with
        /// the last 10 moves seen (shard, from, to, term), until
        /// interrupted.
        #[arg(short = 'w', long)]
        watch: bool,
    },
}

/// A node's id as given: not empty (electd reads `?to=` with nothing after
/// it as no target at all, and would hand over to the next in line).
fn node_id(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("a node's id is not empty: electctl list shows the ids".to_owned());
    }
    Ok(raw.to_owned())
}

fn positive_seconds(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(seconds),
        _ => Err(format!("{raw:?} is not a positive number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let before = Cli::try_parse_from([
            "electctl",
            "--node",
            "http://h:1",
            "-o",
            "json",
            "list",
            "-w",
        ])
        .unwrap();
        let after = Cli::try_parse_from([
            "electctl",
            "list",
            "-w",
            "--node",
            "http://h:1",
            "-o",
            "json",
        ])
        .unwrap();
        for cli in [before, after] {
            assert_eq!(cli.node, "http://h:1");
            assert_eq!(cli.output, Output::Json);
            assert!(matches!(cli.command, Command::List { watch: true }));
        }
    }

    #[test]
    fn a_history_of_no_leaderships_is_a_usage_error() {
        for bad in ["0", "-1", "4294967296", "ten"] {
            let err = Cli::try_parse_from(["electctl", "history", "-n", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        let one = Cli::try_parse_from(["electctl", "history", "-n", "1"]).unwrap();
        assert!(matches!(one.command, Command::History { limit: 1 }));
    }

    #[test]
    fn an_empty_id_is_a_usage_error() {
        for command in [
            &["switchover", "--to", ""][..],
            &["switchover", "--to= "],
            &["drain", ""],
            &["undrain", ""],
        ] {
            let args = std::iter::once("electctl").chain(command.iter().copied());
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{command:?}");
        }
    }

    #[test]
    fn a_bad_timeout_is_a_usage_error() {
        for bad in ["0", "-1", "soon", "inf"] {
            let err = Cli::try_parse_from(["electctl", "--timeout", bad, "list"]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
    }
}
