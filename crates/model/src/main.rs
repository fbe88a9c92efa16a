//! Runs the model checker.
//!
//! * `elect-model`: every protocol in every configuration CI checks: the
//!   safe protocols exhaustively, the unsafe ones until the first
//!   counterexample (printed);
//! * `elect-model PROTOCOL CONFIG [FIELD=VALUE…]`: one protocol (`Today`,
//!   `OneWrite`, `GuardianHandsOnAnyRecord`, `OneWriteWithoutAnchor`,
//!   `OneWriteCreateRevisionTerm`) in one configuration (`ci`, `wipe`,
//!   `old-rule`, `hand-delete`, `short-outage`, `no-state-file`), its
//!   bounds changed by `FIELD=VALUE` (`campaigns`, `crashes`, `restarts`,
//!   `verdicts`, `transfers`, `hand_deletes`, `ttl`, `margin`,
//!   `wipe_outage`, `max_revision`, and `0`/`1` for `priorities`,
//!   `state_file`, `reduce`); exhaustively, or with `--find` until the
//!   first counterexample (with every revision and node name kept);
//! * `elect-model shards`: the shards' protocol in every configuration CI
//!   checks, and each unsafe variant until its counterexamples;
//!   `elect-model shards PROTOCOL CONFIG [FIELD=VALUE…]` one protocol
//!   (`Placed`, `CoordinatorMoves`, `MovesBeforeStopping`,
//!   `MovesWithoutVersion`, `GuardianMovesAnyRecord`, `BelievesWhenNamed`)
//!   in one configuration (`ci`, `wipe`), its bounds changed (`shards`,
//!   `campaigns`, `crashes`, `restarts`, `moves`, `ttl`, `margin`,
//!   `wipe_outage`, `max_revision`, and `0`/`1` for `reduce`).

use std::process::ExitCode;

use elect_model::shards::{self, ShardConfig, ShardElection, ShardProtocol};
use elect_model::{
    Checked, Config, Election, Outcome, Protocol, Trace, exhaust, exhaust_model, render,
    search_any, search_model,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.first().is_some_and(|a| a == "shards") {
        return sharded(&args[1..], threads);
    }
    if args.is_empty() {
        let checks = Protocol::ALL
            .into_iter()
            .flat_map(|protocol| match protocol.caught() {
                None => Config::suite(protocol)
                    .into_iter()
                    .map(|(name, config)| Check::Exhaust(name, Election::new(config)))
                    .collect(),
                Some((config, breaks)) => vec![Check::Catch(Election::new(config), breaks)],
            });
        return run_suite(checks, threads, render);
    }
    match one(&args, threads) {
        Ok(outcome) => {
            println!("{}", outcome.summary());
            report(&outcome, outcome.model.config.reduce, render);
            ExitCode::SUCCESS
        }
        Err(usage) => {
            eprintln!("elect-model: {usage}");
            ExitCode::from(2)
        }
    }
}

/// One check of a suite: a safe protocol's configuration checked
/// exhaustively, or an unsafe protocol searched until it shows each of its
/// counterexamples.
enum Check<M> {
    Exhaust(&'static str, M),
    Catch(M, &'static [&'static str]),
}

/// Runs every check; fails when a safe protocol breaks a property or never
/// shows an example it should, or an unsafe one is not caught.
fn run_suite<M: Checked>(
    checks: impl IntoIterator<Item = Check<M>>,
    threads: usize,
    render: fn(&M, &Trace<M>) -> String,
) -> ExitCode {
    let mut failed = false;
    for check in checks {
        match check {
            Check::Exhaust(name, model) => {
                let outcome = exhaust_model(model, threads);
                println!("{name:>9} {}", outcome.summary());
                failed |= !report(&outcome, true, render);
            }
            Check::Catch(model, breaks) => {
                let outcome = search_model(model, breaks);
                println!("   caught {}", outcome.summary());
                report(&outcome, false, render);
                failed |= outcome.violated().len() < breaks.len();
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints what `outcome` found (with `examples`, also the `sometimes`
/// properties never seen); whether every property held as it should.
fn report<M: Checked>(
    outcome: &Outcome<M>,
    examples: bool,
    render: fn(&M, &Trace<M>) -> String,
) -> bool {
    let model = &outcome.model;
    let violated = outcome.violated();
    for name in &violated {
        println!("          violated: {name}");
        if let Some(trace) = outcome.counterexample(name) {
            print!("{}", render(model, trace));
        }
    }
    if examples {
        for name in &outcome.never {
            println!("          never happened: {name}");
        }
    }
    violated.is_empty() && (!examples || outcome.never.is_empty())
}

fn one(args: &[String], threads: usize) -> Result<Outcome, String> {
    let [protocol, name, rest @ ..] = args else {
        return Err("usage: elect-model [PROTOCOL CONFIG [FIELD=VALUE…] [--find]]".to_owned());
    };
    let protocol = Protocol::ALL
        .into_iter()
        .find(|p| format!("{p:?}") == *protocol)
        .ok_or_else(|| format!("no protocol {protocol:?}"))?;
    let mut config =
        Config::named(name, protocol).ok_or_else(|| format!("no configuration {name:?}"))?;
    let mut find = false;
    for arg in rest {
        if arg == "--find" {
            find = true;
            continue;
        }
        let (field, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("{arg:?} is not FIELD=VALUE"))?;
        let value: u8 = value
            .parse()
            .map_err(|_| format!("{arg:?}: not a number"))?;
        let flag = value > 0;
        match field {
            "campaigns" => config.campaigns = value,
            "crashes" => config.crashes = value,
            "restarts" => config.restarts = value,
            "verdicts" => config.verdicts = value,
            "transfers" => config.transfers = value,
            "hand_deletes" => config.hand_deletes = value,
            "ttl" => config.ttl = value,
            "margin" => config.margin = value,
            "wipe_outage" => config.wipe_outage = value,
            "max_revision" => config.max_revision = value,
            "priorities" => config.priorities = flag,
            "state_file" => config.state_file = flag,
            "reduce" => config.reduce = flag,
            _ => return Err(format!("no field {field:?}")),
        }
    }
    Ok(if find {
        search_any(Config {
            reduce: false,
            ..config
        })
    } else {
        exhaust(config, threads)
    })
}

/// The shards' model: every check CI runs, or one configuration.
fn sharded(args: &[String], threads: usize) -> ExitCode {
    if args.is_empty() {
        let checks = ShardProtocol::ALL
            .into_iter()
            .flat_map(|protocol| match ShardConfig::caught(protocol) {
                None => ShardConfig::suite(protocol)
                    .into_iter()
                    .map(|(name, config)| Check::Exhaust(name, ShardElection::new(config)))
                    .collect(),
                Some((config, breaks)) => vec![Check::Catch(ShardElection::new(config), breaks)],
            });
        return run_suite(checks, threads, shards::render);
    }
    match one_sharded(args) {
        Ok(config) => {
            let outcome = exhaust_model(ShardElection::new(config), threads);
            println!("{}", outcome.summary());
            report(&outcome, config.reduce, shards::render);
            ExitCode::SUCCESS
        }
        Err(usage) => {
            eprintln!("elect-model: {usage}");
            ExitCode::from(2)
        }
    }
}

fn one_sharded(args: &[String]) -> Result<ShardConfig, String> {
    let [protocol, name, rest @ ..] = args else {
        return Err("usage: elect-model shards [PROTOCOL CONFIG [FIELD=VALUE…]]".to_owned());
    };
    let protocol = ShardProtocol::ALL
        .into_iter()
        .find(|p| format!("{p:?}") == *protocol)
        .ok_or_else(|| format!("no shards protocol {protocol:?}"))?;
    let mut config = ShardConfig::suite(protocol)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, config)| config)
        .ok_or_else(|| format!("no shards configuration {name:?}"))?;
    for arg in rest {
        let (field, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("{arg:?} is not FIELD=VALUE"))?;
        let value: u8 = value
            .parse()
            .map_err(|_| format!("{arg:?}: not a number"))?;
        match field {
            "shards" if (1..=shards::MAX_SHARDS).contains(&usize::from(value)) => {
                config.shards = value;
            }
            "shards" => return Err(format!("shards: 1 to {}", shards::MAX_SHARDS)),
            "campaigns" => config.campaigns = value,
            "crashes" => config.crashes = value,
            "restarts" => config.restarts = value,
            "moves" => config.moves = value,
            "ttl" => config.ttl = value,
            "margin" => config.margin = value,
            "wipe_outage" => config.wipe_outage = value,
            "max_revision" => config.max_revision = value,
            "reduce" => config.reduce = value > 0,
            _ => return Err(format!("no field {field:?}")),
        }
    }
    Ok(config)
}
