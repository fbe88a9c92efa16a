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
    Config, Outcome, Protocol, exhaust, exhaust_model, render, search, search_any, search_model,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.first().is_some_and(|a| a == "shards") {
        return sharded(&args[1..], threads);
    }
    if args.is_empty() {
        let mut failed = false;
        for protocol in Protocol::ALL {
            match protocol.caught() {
                None => {
                    for (name, config) in Config::suite(protocol) {
                        let outcome = exhaust(config, threads);
                        println!("{name:>9} {}", outcome.summary());
                        failed |= !report(&outcome, true);
                    }
                }
                Some((config, breaks)) => {
                    let outcome = search(config, breaks);
                    println!("   caught {}", outcome.summary());
                    report(&outcome, false);
                    failed |= outcome.violated().len() < breaks.len();
                }
            }
        }
        return if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    match one(&args, threads) {
        Ok(outcome) => {
            println!("{}", outcome.summary());
            report(&outcome, outcome.model.config.reduce);
            ExitCode::SUCCESS
        }
        Err(usage) => {
            eprintln!("elect-model: {usage}");
            ExitCode::from(2)
        }
    }
}

/// Prints what `outcome` found (with `examples`, also the `sometimes`
/// properties never seen); whether every property held as it should.
fn report(outcome: &Outcome, examples: bool) -> bool {
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
    let report = |outcome: &Outcome<ShardElection>, examples: bool| {
        for name in outcome.violated() {
            println!("          violated: {name}");
            if let Some(trace) = outcome.counterexample(name) {
                print!("{}", shards::render(&outcome.model, trace));
            }
        }
        if examples {
            for name in &outcome.never {
                println!("          never happened: {name}");
            }
        }
    };
    if args.is_empty() {
        let mut failed = false;
        for protocol in ShardProtocol::ALL {
            match ShardConfig::caught(protocol) {
                None => {
                    for (name, config) in ShardConfig::suite(protocol) {
                        let outcome = exhaust_model(ShardElection::new(config), threads);
                        println!("{name:>9} {}", outcome.summary());
                        report(&outcome, true);
                        failed |= !outcome.violated().is_empty() || !outcome.never.is_empty();
                    }
                }
                Some((config, breaks)) => {
                    let outcome = search_model(ShardElection::new(config), breaks);
                    println!("   caught {}", outcome.summary());
                    report(&outcome, false);
                    failed |= outcome.violated().len() < breaks.len();
                }
            }
        }
        return if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    match one_sharded(args) {
        Ok(config) => {
            let outcome = exhaust_model(ShardElection::new(config), threads);
            println!("{}", outcome.summary());
            report(&outcome, config.reduce);
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
