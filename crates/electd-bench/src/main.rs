//! `electd-bench`: how fast a new leader takes over, how much load electd puts
//! on etcd, how little it costs to run, side by side with `etcdctl elect`.
//!
//! It starts its own etcd and nodes, measures, stops everything, prints a
//! table (`--json` for the raw numbers) and writes SVG plots of the latency
//! distributions to `--out`. Timestamps come from the nodes' journals
//! (`CLOCK_MONOTONIC`, one clock for every process on the host) and from
//! etcd's own events and `/metrics`.

mod cluster;
mod cold_start;
mod cost;
mod crash;
mod elector;
mod etcdctl;
mod fleet;
mod floor;
mod handover;
mod host;
mod load;
mod peer;
mod plot;
mod report;
mod shards;
mod stats;
mod steer;
mod writes;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use harness::etcd::Etcd;

use crate::report::{ApiReport, Report};
use crate::stats::Summary;
use crate::steer::Steer;

#[derive(Parser)]
#[command(name = "electd-bench", about)]
struct Args {
    /// Which APIs to measure.
    #[arg(long, value_delimiter = ',', default_value = "v2,v3")]
    api: Vec<String>,
    /// Hand-over runs per API and trigger (SIGTERM, /v1/resign; steered:
    /// /v1/resign?to=, /v1/drain, unhealthy, preemption).
    #[arg(long, default_value_t = 30)]
    handovers: usize,
    /// Candidate counts for the steered hand-over rows.
    #[arg(long, value_delimiter = ',', default_value = "3")]
    steer_candidates: Vec<usize>,
    /// Crash failover runs per API at TTL 2 s (half as many at 10 s).
    #[arg(long, default_value_t = 20)]
    crashes: usize,
    /// kill -9 of the leader's electd alone (host alive) per API, TTL and
    /// with and without `--exec`.
    #[arg(long, default_value_t = 21)]
    host_alive_crashes: usize,
    /// TTLs (s) of the host-alive crash rows.
    #[arg(long, value_delimiter = ',', default_value = "10,2")]
    host_alive_ttls: Vec<u64>,
    /// Whole-node crash runs at TTL 10 s [default: half of --crashes].
    #[arg(long)]
    crashes_ttl10: Option<usize>,
    /// How long every candidate has run, and the queue has been still,
    /// before a hand-over or crash is set off (ms).
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
    /// Candidate counts for the fleet-size hand-over rows (v3).
    #[arg(long, value_delimiter = ',', default_value = "3,30,100")]
    fleet: Vec<usize>,
    /// SIGTERM hand-overs per fleet size.
    #[arg(long, default_value_t = 21)]
    fleet_handovers: usize,
    /// Cold starts of three nodes per API.
    #[arg(long, default_value_t = 10)]
    cold_starts: usize,
    /// Candidate counts for the etcd-load measurements.
    #[arg(long, value_delimiter = ',', default_value = "3,100,1000")]
    candidates: Vec<usize>,
    /// How long a leader's memory is watched.
    #[arg(long, default_value_t = 300)]
    memory_seconds: u64,
    /// How long each HTTP load runs.
    #[arg(long, default_value_t = 10)]
    http_seconds: u64,
    /// Rounds of the settled hand-over beside etcdctl elect and the floor
    /// (each: floor samples, one hand-over of each), and etcdctl's hand-overs
    /// to a successor just spawned (crashes are fewer: each waits out a 60 s
    /// lease).
    #[arg(long, default_value_t = 21)]
    etcdctl_handovers: usize,
    /// etcdctl elect crash runs (about a minute each).
    #[arg(long, default_value_t = 5)]
    etcdctl_crashes: usize,
    /// Shards of the shards section (`--shards N` on every node).
    #[arg(long, default_value_t = 10_000)]
    shards: u32,
    /// Nodes of the shards section (a join makes one more).
    #[arg(long, default_value_t = 20)]
    shard_nodes: usize,
    /// How long the settled shards section idles, counting etcd's raft
    /// proposals (s).
    #[arg(long, default_value_t = 60)]
    shard_idle_seconds: u64,
    /// Rounds of the shards section: each a SIGTERM, a kill -9 of electd,
    /// a kill -9 of a whole node (a TTL's wait) and a join.
    #[arg(long, default_value_t = 3)]
    shard_rounds: usize,
    /// The TTL of the shards section's nodes (s).
    #[arg(long, default_value_t = 10)]
    shard_ttl: u64,
    /// Only these sections [default: all].
    #[arg(long, value_delimiter = ',')]
    only: Vec<Section>,
    /// The smallest useful run (a few seconds per section), to check the benchmark itself.
    #[arg(long)]
    quick: bool,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// Where to write results.json and the SVG plots.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// The electd binary [default: next to this program].
    #[arg(long)]
    electd: Option<PathBuf>,
}

/// A section of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Section {
    /// Graceful hand-over: SIGTERM and /v1/resign.
    Handover,
    /// Steered hand-over: /v1/resign?to=, /v1/drain, unhealthy, preemption.
    Steered,
    /// Crash failover.
    Crash,
    /// Time to first leader.
    ColdStart,
    /// etcd load as candidates grow.
    Load,
    /// Memory.
    Memory,
    /// HTTP under wrk.
    Http,
    /// etcdctl elect, and electd v3 and the floor beside it on the same etcd.
    Etcdctl,
    /// SIGTERM hand-over with 3, 30, 100 candidates (v3).
    Fleet,
    /// A leader per shard: --shards over --shard-nodes (v3).
    Shards,
}

impl Args {
    fn runs(&self, section: Section) -> bool {
        self.only.is_empty() || self.only.contains(&section)
    }

    fn shrink(&mut self) {
        self.handovers = 2;
        self.crashes = 2;
        self.cold_starts = 1;
        self.candidates = vec![3, 20];
        self.memory_seconds = 2;
        self.http_seconds = 1;
        self.etcdctl_handovers = 1;
        self.etcdctl_crashes = 0;
        self.host_alive_crashes = 1;
        self.host_alive_ttls = vec![2];
        self.settle_ms = 100;
        self.fleet = vec![3];
        self.fleet_handovers = 1;
        self.steer_candidates = vec![3];
        self.shards = 100;
        self.shard_nodes = 3;
        self.shard_idle_seconds = 1;
        self.shard_rounds = 1;
        self.shard_ttl = 2;
    }

    fn settle(&self) -> Duration {
        Duration::from_millis(self.settle_ms)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let mut args = Args::parse();
    if args.quick {
        args.shrink();
    }
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("electd-bench: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let binary = match &args.electd {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("electd"),
    };
    if !binary.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p electd) or pass --electd",
            binary.display()
        );
    }
    // 1,000 in-process candidates need a few thousand descriptors.
    harness::raise_fd_limit();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut report = Report {
        machine: host::machine(),
        date: host::date(),
        quick: args.quick,
        ..Report::default()
    };
    for api in &args.api {
        if !matches!(api.as_str(), "v2" | "v3") {
            bail!("--api takes v2 and/or v3, not {api:?}");
        }
        eprintln!("== {api}");
        report.apis.push(measure_api(&args, &binary, api).await?);
    }
    if args.runs(Section::Etcdctl) {
        eprintln!("== etcdctl elect");
        report.etcdctl = etcdctl::measure(
            &binary,
            args.etcdctl_handovers,
            args.etcdctl_crashes,
            args.settle(),
        )
        .await?;
    }

    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(args.out.join("results.json"), &json)?;
    plot::write_plots(&args.out, &report)?;
    if args.json {
        println!("{json}");
    } else {
        report::print_table(&report);
    }
    eprintln!("results and plots in {}", args.out.display());
    Ok(())
}

async fn measure_api(args: &Args, binary: &Path, api: &str) -> anyhow::Result<ApiReport> {
    let mut out = ApiReport {
        api: api.to_owned(),
        ..ApiReport::default()
    };
    let etcd = Etcd::single().await;
    let endpoint = etcd.endpoint(0);

    if args.runs(Section::Handover) {
        eprintln!(
            "  hand-over: SIGTERM and /v1/resign, {} runs each",
            args.handovers
        );
        let sigterm = handover::handovers(binary, api, &endpoint, args.handovers, false).await?;
        out.sigterm_handover_ms = Summary::of(&sigterm);
        let resign = handover::handovers(binary, api, &endpoint, args.handovers, true).await?;
        out.resign_handover_ms = Summary::of(&resign);
    }

    if args.runs(Section::Steered) {
        // Hand-over to a named node and priorities are v3's alone.
        let steers: &[Steer] = match api {
            "v3" => &[Steer::To, Steer::Drain, Steer::Unhealthy, Steer::Preempt],
            _ => &[Steer::Drain],
        };
        for &n in &args.steer_candidates {
            for &how in steers {
                eprintln!(
                    "  steered hand-over: {how:?} among {n}, {} runs",
                    args.handovers
                );
                out.steered.push(
                    steer::measure(binary, api, &etcd, n, args.handovers, how, args.settle())
                        .await?,
                );
            }
        }
    }

    if args.runs(Section::Crash) {
        for &ttl in &args.host_alive_ttls {
            for exec in [false, true] {
                eprintln!(
                    "  crash failover, host alive: TTL {ttl} s, exec {exec}, {} runs",
                    args.host_alive_crashes
                );
                out.host_alive.push(
                    crash::host_alive_crashes(
                        binary,
                        api,
                        &etcd,
                        ttl,
                        exec,
                        args.host_alive_crashes,
                        args.settle(),
                    )
                    .await?,
                );
            }
        }
        let ttl10 = args.crashes_ttl10.unwrap_or(args.crashes.div_ceil(2));
        for (ttl, runs) in [(2, args.crashes), (10, ttl10)] {
            if args.quick && ttl == 10 {
                continue;
            }
            eprintln!("  crash failover: TTL {ttl} s, {runs} runs");
            out.crash
                .push(crash::crashes(binary, api, &endpoint, ttl, runs).await?);
        }
    }

    if args.runs(Section::Fleet) && api == "v3" {
        for &n in &args.fleet {
            eprintln!(
                "  fleet: SIGTERM hand-over with {n} candidates, {} runs",
                args.fleet_handovers
            );
            out.fleet
                .push(fleet::fleet(binary, &etcd, n, args.fleet_handovers, args.settle()).await?);
        }
    }

    if args.runs(Section::Shards) && api == "v3" {
        let plan = shards::Plan {
            shards: args.shards,
            nodes: args.shard_nodes,
            ttl_s: args.shard_ttl,
            idle: Duration::from_secs(args.shard_idle_seconds),
            rounds: args.shard_rounds,
        };
        if plan.shards == 0 || plan.nodes < 2 {
            bail!("the shards section needs --shards ≥ 1 and --shard-nodes ≥ 2");
        }
        eprintln!(
            "  shards: {} over {} nodes, {} rounds",
            plan.shards, plan.nodes, plan.rounds
        );
        out.shards = Some(shards::measure(binary, &etcd, &plan).await?);
    }

    if args.runs(Section::ColdStart) {
        eprintln!("  cold start: {} runs", args.cold_starts);
        out.cold_start_ms =
            Summary::of(&cold_start::cold_starts(binary, api, &endpoint, args.cold_starts).await?);
    }

    if args.runs(Section::Load) {
        for &n in &args.candidates {
            eprintln!("  etcd load: {n} candidates");
            out.load.push(load::measure(api, n, args.quick).await?);
        }
    }

    if args.runs(Section::Memory) {
        eprintln!("  memory: {} s", args.memory_seconds);
        out.memory = Some(cost::memory(binary, api, &endpoint, args.memory_seconds).await?);
    }

    if args.runs(Section::Http) {
        eprintln!("  HTTP: {} s per path", args.http_seconds);
        out.http = cost::http(binary, api, &endpoint, args.http_seconds).await?;
    }
    Ok(out)
}
