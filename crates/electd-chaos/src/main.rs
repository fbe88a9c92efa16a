//! `electd-chaos`: a bounded chaos soak.
//!
//! Starts etcd (one or three members, each member's peer traffic behind a
//! fault proxy) and N `electd` nodes, each reaching etcd through fault
//! proxies of its own. For `--duration` it injects random faults, one at a
//! time: kill -9 and restart, SIGSTOP/SIGCONT, SIGTERM and restart, silent
//! and loud partitions, delays, etcd member kills and restarts, a member cut
//! off from the others, etcd's data wiped (then its revision raised past the
//! nodes' floor, as an operator would), and with `--exec` kill -9 or SIGSTOP
//! of a leader's watchdog and kill -9 of its command.
//!
//! Every node also steers: it has a health endpoint of its own
//! ([`HealthSwitch`], `--health-url`) and the admin token, and on v3 a
//! priority drawn at each start, some with `--preempt`. Mixed into the same
//! schedule: health checks that fail (500, refused, stalled) or flap, drains
//! and undrains, hand-overs to a named node (`POST /v1/resign?to=ID`; on v2
//! the leader must answer 501), some with the target SIGSTOPped or killed
//! while the hand-over is under way, a preempting node turning unhealthy
//! around the moment it asks, and a drain during a failover. At most
//! `(nodes - 1) / 2` nodes are kept unhealthy or drained at once by the
//! single-node actions, and every node is healthy and undrained again before
//! the end. Every admin answer is recorded; one the issue does not allow
//! (anything but 200, 409, 501, 503 or 504) fails the run.
//!
//! With `--shards N` (v3) every node leads shards too, and the schedule
//! adds the shard faults: the node leading the most shards stopped past
//! its TTL, a join and a leave at once, every node restarted (one after
//! another, or all at once), a record electd did not write under the shard
//! prefix (which no node may trust), a move of shards (by a drain, an
//! undrain or a join) interrupted by kill -9 of either side, and the
//! election handed over by its leader on a slow link. The checker
//! proves each shard apart, and the report adds the shards' leaderships,
//! moves, longest leaderless time of any shard, and how many are led at the
//! end.
//!
//! Then it stops everything, runs the journal checker (and, with `--exec`,
//! checks that no two commands ever ran at once) and prints a summary.
//! Exits 1 on any violation. `--seed` makes the schedule (fault kinds,
//! durations, targets by role, the nodes' priorities) reproducible.

mod admin;
mod availability;
mod child;
mod draw;
mod faults;
mod fleet;
mod report;
mod schedule;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use harness::app::{HealthSwitch, Mode};
use harness::checker::check;
use harness::etcd::{Etcd, EtcdOptions};
use harness::node::NodeArgs;
use harness::now_ns;
use harness::proxy::FaultProxy;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::{Instant, sleep};

use crate::availability::{Outages, watch_etcd};
use crate::child::{CHILD_MODE, child};
use crate::fleet::Soak;

#[derive(Parser)]
#[command(name = "electd-chaos", about)]
struct Args {
    /// etcd API for the nodes.
    #[arg(long, default_value = "v3", value_parser = ["v2", "v3"])]
    api: String,
    /// How long to inject faults, e.g. 60s, 20m, 1h.
    #[arg(long, default_value = "60s")]
    duration: String,
    /// Seed of the fault schedule [default: random, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// electd nodes.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// etcd members: 1 or 3.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    etcd_members: u8,
    /// Give every node an --exec command, and check that no two ever run at once.
    #[arg(long)]
    exec: bool,
    /// Start every node with --shards N (v3, not with --exec): the shard
    /// faults join the schedule, and the checker proves each shard apart.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    shards: Option<u32>,
    /// Lease TTL of the nodes, in seconds.
    #[arg(long, default_value_t = 2)]
    ttl: u64,
    /// The electd binary [default: next to this program].
    #[arg(long)]
    electd: Option<PathBuf>,
    /// Keep the run's directory (journals, logs) and print where it is.
    #[arg(long)]
    keep: bool,
}

fn parse_duration(raw: &str) -> anyhow::Result<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: u64 = number
        .parse()
        .with_context(|| format!("{raw:?} is not a duration"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => bail!("{raw:?} is not a duration like 60s, 20m or 1h"),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(CHILD_MODE) {
        return match args.get(2) {
            Some(file) => child(Path::new(file)),
            None => ExitCode::FAILURE,
        };
    }
    let args = Args::parse();
    match soak(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("electd-chaos: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn soak(args: Args) -> anyhow::Result<bool> {
    let duration = parse_duration(&args.duration)?;
    if args.shards.is_some() && args.api != "v3" {
        bail!("--shards needs --api v3: v2's one key has one leader");
    }
    if args.shards.is_some() && args.exec {
        bail!("--shards cannot go with --exec: electd runs no command per shard yet");
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let binary = match args.electd {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("electd"),
    };
    if !binary.exists() {
        bail!(
            "{} not found: build it (cargo build -p electd) or pass --electd",
            binary.display()
        );
    }
    let ttl = Duration::from_secs(args.ttl);
    let members = usize::from(args.etcd_members);
    let dir = tempfile::Builder::new().prefix("electd-chaos-").tempdir()?;
    println!(
        "electd-chaos: --api {} --nodes {} --etcd-members {members} --ttl {} --duration {:?}{}{} --seed {seed}",
        args.api,
        args.nodes,
        args.ttl,
        duration,
        if args.exec { " --exec" } else { "" },
        args.shards
            .map_or_else(String::new, |n| format!(" --shards {n}"))
    );
    let etcd = Etcd::start(EtcdOptions {
        members,
        peer_proxies: true,
        ..EtcdOptions::default()
    })
    .await;
    let mut links = Vec::new();
    for _ in 0..args.nodes {
        let mut proxies = Vec::new();
        for endpoint in etcd.endpoints() {
            let target = endpoint.trim_start_matches("http://").parse()?;
            proxies.push(FaultProxy::start(target).await);
        }
        links.push(proxies);
    }
    let exec = args.exec.then(|| {
        vec![
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            CHILD_MODE.to_owned(),
        ]
    });
    let mut node_args = NodeArgs::new().api(&args.api).ttl(args.ttl);
    if let Some(count) = args.shards {
        node_args = node_args.shards(count);
    }
    let mut soak = Soak {
        dir: dir.path().to_owned(),
        binary,
        node_args,
        exec,
        etcd,
        nodes: Vec::new(),
        links,
        retired: Vec::new(),
        journals: Vec::new(),
        ticks: Vec::new(),
        deaths: Default::default(),
        v3: args.api == "v3",
        shards: args.shards,
        ttl,
        health: (0..args.nodes).map(|_| HealthSwitch::start(true)).collect(),
        health_mode: vec![Mode::Healthy; args.nodes],
        drained: Vec::new(),
        priority: Vec::new(),
        preempt: Vec::new(),
        config_rng: StdRng::seed_from_u64(seed ^ 0x5eed_c0f1_9000_0013),
        admin: harness::http()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()?,
        outcomes: BTreeMap::new(),
        unexpected: Vec::new(),
        fault_log: std::fs::File::create(dir.path().join("faults.log"))?,
        started: now_ns(),
    };
    for i in 0..args.nodes {
        soak.spawn(i);
    }
    let first_leader = async {
        let until = Instant::now() + ttl + Duration::from_secs(20);
        while Instant::now() < until {
            if soak.leader().await.is_some() {
                return true;
            }
            sleep(Duration::from_millis(20)).await;
        }
        false
    };
    if !first_leader.await {
        bail!(
            "no leader within {:?} of starting",
            ttl + Duration::from_secs(20)
        );
    }
    let started = now_ns();
    soak.started = started;
    let until = Instant::now() + duration;
    let outage_log = Arc::new(Mutex::new(Outages::default()));
    let sampler = tokio::spawn(watch_etcd(soak.etcd.endpoints(), outage_log.clone()));
    let kinds = schedule::kinds(
        members,
        args.exec,
        args.nodes,
        soak.v3,
        args.shards.is_some(),
    );
    let counts = schedule::run(&mut soak, &mut rng, &args.api, &kinds, ttl, members, until).await;
    schedule::restore(&mut soak).await;
    let faulted_until = now_ns();
    // How many shards are led once the faults are over, and how soon all are.
    let shards_at_end = match args.shards {
        Some(count) => Some(
            soak.shards_settle(count, ttl * 2 + Duration::from_secs(20))
                .await,
        ),
        None => None,
    };
    sampler.abort();
    let outages = outage_log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .finish(faulted_until);

    // Stop everything in order, then read the evidence.
    soak.stop(ttl).await;
    let report = check(&soak.journals, &soak.deaths)?;
    let ok = report::print(
        &soak,
        &report,
        &counts,
        &outages,
        (started, faulted_until),
        args.exec,
        shards_at_end,
    );
    if args.keep {
        println!("journals and logs kept in {}", dir.keep().display());
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("20m").unwrap(), Duration::from_secs(1200));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("5 days").is_err());
    }
}
