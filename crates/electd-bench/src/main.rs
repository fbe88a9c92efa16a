//! `electd-bench`: how fast a new leader takes over, how much load electd puts
//! on etcd, how little it costs to run, side by side with `etcdctl elect`.
//!
//! It starts its own etcd and nodes, measures, stops everything, prints a
//! table (`--json` for the raw numbers) and writes SVG plots of the latency
//! distributions to `--out`. Timestamps come from the nodes' journals
//! (`CLOCK_MONOTONIC`, one clock for every process on the host) and from
//! etcd's own events and `/metrics`.

mod cluster;
mod etcdctl;
mod load;
mod plot;
mod stats;
mod steer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use harness::etcd::Etcd;
use harness::node::NodeArgs;
use harness::now_ns;
use reqwest::Method;
use serde::Serialize;

use crate::cluster::{Cluster, Deletions};
use crate::stats::Summary;
use crate::steer::{Steer, Steered};

const TOKEN: &str = "bench-token";

#[derive(Parser)]
#[command(name = "electd-bench", about)]
struct Args {
    /// Which APIs to measure.
    #[arg(long, value_delimiter = ',', default_value = "v2,v3")]
    api: Vec<String>,
    /// Hand-over runs per API and trigger (SIGTERM, /v1/resign; steered:
    /// /v1/resign?to=, /v1/drain, preemption).
    #[arg(long, default_value_t = 30)]
    handovers: usize,
    /// Crash failover runs per API at TTL 2 s (half as many at 10 s).
    #[arg(long, default_value_t = 20)]
    crashes: usize,
    /// kill -9 of the leader's electd alone (host alive) per API, TTL and
    /// with and without `--exec`.
    #[arg(long, default_value_t = 20)]
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
    #[arg(long, default_value_t = 20)]
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
    /// etcdctl elect runs: hand-overs (crashes are fewer: each waits out a 60 s lease).
    #[arg(long, default_value_t = 20)]
    etcdctl_handovers: usize,
    /// etcdctl elect crash runs (about a minute each).
    #[arg(long, default_value_t = 5)]
    etcdctl_crashes: usize,
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
    /// Steered hand-over: /v1/resign?to=, /v1/drain, preemption.
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
    /// etcdctl elect, and electd v3 beside it on the same etcd.
    Etcdctl,
    /// SIGTERM hand-over with 3, 30, 100 candidates (v3).
    Fleet,
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
    }

    fn settle(&self) -> Duration {
        Duration::from_millis(self.settle_ms)
    }
}

#[derive(Default, Serialize)]
struct Report {
    machine: String,
    date: String,
    quick: bool,
    apis: Vec<ApiReport>,
    etcdctl: Option<etcdctl::Report>,
}

#[derive(Default, Serialize)]
struct ApiReport {
    api: String,
    /// SIGTERM of the leader → the next `acquired` (ms).
    sigterm_handover_ms: Option<Summary>,
    /// `POST /v1/resign` → the next `acquired` (ms).
    resign_handover_ms: Option<Summary>,
    /// `POST /v1/resign?to=ID`, `ID` the last of three in line (v3).
    to_handover: Option<Steered>,
    /// `POST /v1/drain` on the leader.
    drain_handover: Option<Steered>,
    /// A node of higher priority with `--preempt` takes over (v3).
    preempt_handover: Option<Steered>,
    crash: Vec<Crash>,
    /// kill -9 of the leader's electd alone, its guardian alive.
    host_alive: Vec<HostAlive>,
    /// SIGTERM hand-over by fleet size (v3).
    fleet: Vec<Fleet>,
    /// Start of three nodes → the first `acquired` (ms).
    cold_start_ms: Option<Summary>,
    load: Vec<load::Load>,
    memory: Option<Memory>,
    http: Vec<Http>,
}

#[derive(Serialize)]
struct Crash {
    ttl_s: u64,
    /// kill -9 → the next `acquired` (ms).
    kill_to_acquired_ms: Option<Summary>,
    /// The dead leader's lease could end (last renewal sent + TTL) → etcd deletes the key (ms): etcd's expiry tick.
    lease_end_to_delete_ms: Option<Summary>,
    /// etcd deletes the key → the next `acquired` (ms): electd's own reaction.
    delete_to_acquired_ms: Option<Summary>,
}

#[derive(Serialize)]
struct HostAlive {
    ttl_s: u64,
    /// With `--exec -- sleep 1000`.
    exec: bool,
    /// kill -9 of the leader's electd (not its guardian) → the next `acquired` (ms).
    kill_to_acquired_ms: Option<Summary>,
    /// The guardian's own `released_in_ms`: electd reaped → its processes
    /// swept and its claims released (ms).
    guardian_released_in_ms: Option<Summary>,
    /// kill -9 → a watcher of the bench's own sees the release (the first
    /// delete of the election's keys) (ms).
    kill_to_delete_ms: Option<Summary>,
    /// That delete → the next `acquired` (ms): the successor's reaction.
    delete_to_acquired_ms: Option<Summary>,
}

#[derive(Serialize)]
struct Fleet {
    candidates: usize,
    /// SIGTERM of the leader → the next `acquired` (ms).
    sigterm_handover_ms: Option<Summary>,
}

#[derive(Serialize)]
struct Memory {
    idle_leader_rss_kb: u64,
    idle_follower_rss_kb: u64,
    leader_rss_kb_start: u64,
    leader_rss_kb_end: u64,
    leader_rss_kb_max: u64,
    watched_seconds: u64,
}

#[derive(Serialize)]
struct Http {
    path: String,
    requests_per_second: f64,
    p99_ms: f64,
    /// Largest time between two renewals during the load (the interval is
    /// TTL/3); `None` when the load was too short to see two.
    worst_renewal_gap_ms: Option<f64>,
    renewal_interval_ms: f64,
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The flags of every node of a measurement: one etcd endpoint, an
/// election of its own.
fn node_args(api: &str, ttl: u64, etcd: &str, election: &str) -> NodeArgs {
    NodeArgs::new()
        .api(api)
        .ttl(ttl)
        .etcd([etcd])
        .election(election)
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
        machine: machine(),
        date: date(),
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
    write_plots(&args.out, &report)?;
    if args.json {
        println!("{json}");
    } else {
        print_table(&report);
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
        let sigterm = handovers(binary, api, &endpoint, args.handovers, false).await?;
        out.sigterm_handover_ms = Summary::of(&sigterm);
        let resign = handovers(binary, api, &endpoint, args.handovers, true).await?;
        out.resign_handover_ms = Summary::of(&resign);
    }

    if args.runs(Section::Steered) {
        // Hand-over to a named node and priorities are v3's alone.
        let steers: &[Steer] = match api {
            "v3" => &[Steer::To, Steer::Drain, Steer::Preempt],
            _ => &[Steer::Drain],
        };
        for &how in steers {
            eprintln!("  steered hand-over: {how:?}, {} runs", args.handovers);
            let steered = steer::measure(binary, api, &endpoint, args.handovers, how).await?;
            match how {
                Steer::To => out.to_handover = Some(steered),
                Steer::Drain => out.drain_handover = Some(steered),
                Steer::Preempt => out.preempt_handover = Some(steered),
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
                    host_alive_crashes(
                        binary,
                        api,
                        &endpoint,
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
                .push(crashes(binary, api, &endpoint, ttl, runs).await?);
        }
    }

    if args.runs(Section::Fleet) && api == "v3" {
        for &n in &args.fleet {
            eprintln!(
                "  fleet: SIGTERM hand-over with {n} candidates, {} runs",
                args.fleet_handovers
            );
            out.fleet.push(Fleet {
                candidates: n,
                sigterm_handover_ms: Summary::of(
                    &fleet(binary, &endpoint, n, args.fleet_handovers, args.settle()).await?,
                ),
            });
        }
    }

    if args.runs(Section::ColdStart) {
        eprintln!("  cold start: {} runs", args.cold_starts);
        out.cold_start_ms =
            Summary::of(&cold_starts(binary, api, &endpoint, args.cold_starts).await?);
    }

    if args.runs(Section::Load) {
        for &n in &args.candidates {
            eprintln!("  etcd load: {n} candidates");
            out.load.push(load::measure(api, n, args.quick).await?);
        }
    }

    if args.runs(Section::Memory) {
        eprintln!("  memory: {} s", args.memory_seconds);
        out.memory = Some(memory(binary, api, &endpoint, args.memory_seconds).await?);
    }

    if args.runs(Section::Http) {
        eprintln!("  HTTP: {} s per path", args.http_seconds);
        out.http = http(binary, api, &endpoint, args.http_seconds).await?;
    }
    Ok(out)
}

/// SIGTERM (or `/v1/resign`) of the leader → the next leader's `acquired`.
async fn handovers(
    binary: &Path,
    api: &str,
    endpoint: &str,
    runs: usize,
    resign: bool,
) -> anyhow::Result<Vec<f64>> {
    let election = if resign {
        "handover-resign"
    } else {
        "handover-sigterm"
    };
    let args = node_args(api, 10, endpoint, election).resign_cooldown(Duration::from_secs(1));
    let mut cluster = Cluster::start(binary, &args, &[("ELECTD_ADMIN_TOKEN", TOKEN)], 3).await;
    let limit = Duration::from_secs(20);
    let mut samples = Vec::new();
    for _ in 0..runs {
        let leader = cluster.leader(limit).await.context("no leader")?;
        if !cluster.all_follow(leader, limit).await {
            bail!("the followers never named the leader");
        }
        if resign {
            // The previous resigner waits out its cooldown before it campaigns
            // again; resigning before that would measure the cooldown.
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
        let asked = now_ns();
        if resign {
            let auth = format!("Bearer {TOKEN}");
            cluster.nodes[leader]
                .request(Method::POST, "/v1/resign", &[("Authorization", &auth)])
                .await
                .context("no answer to /v1/resign")?;
        } else {
            cluster.nodes[leader].terminate();
        }
        let (_, acquired) = cluster
            .acquired_after(asked, Some(leader), limit)
            .await
            .context("nobody took over")?;
        samples.push(ms(acquired - asked));
        if !resign {
            cluster.nodes[leader].wait_exit(limit).await;
            cluster.restart(leader).await;
        }
    }
    Ok(samples)
}

/// kill -9 of the leader → the next `acquired`, split at etcd's delete of the key.
async fn crashes(
    binary: &Path,
    api: &str,
    endpoint: &str,
    ttl: u64,
    runs: usize,
) -> anyhow::Result<Crash> {
    let election = format!("crash-{ttl}");
    let deletions = match api {
        "v2" => Deletions::watch_v2(endpoint.to_owned(), election.clone()),
        _ => Deletions::watch_v3(endpoint.to_owned(), format!("/electd/{election}/")),
    };
    let args = node_args(api, ttl, endpoint, &election);
    let mut cluster = Cluster::start(binary, &args, &[], 3).await;
    let margin = elect::default_margin(Duration::from_secs(ttl));
    let limit = Duration::from_secs(ttl + 20);
    let (mut kill_to, mut tick, mut reaction) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let leader = cluster.leader(limit).await.context("no leader")?;
        if !cluster.all_follow(leader, limit).await {
            bail!("the followers never named the leader");
        }
        let killed = cluster.nodes[leader].kill9();
        // The last acknowledged renewal was sent at deadline + margin − TTL.
        let lease_end = cluster
            .last_deadline(leader)
            .context("no deadline journalled")?
            + margin.as_nanos() as u64;
        let (_, acquired) = cluster
            .acquired_after(killed, Some(leader), limit)
            .await
            .context("nobody took over")?;
        kill_to.push(ms(acquired - killed));
        if let Some(deleted) = deletions.after(killed) {
            tick.push(ms(deleted.saturating_sub(lease_end)));
            reaction.push(ms(acquired.saturating_sub(deleted)));
        }
        cluster.restart(leader).await;
    }
    Ok(Crash {
        ttl_s: ttl,
        kill_to_acquired_ms: Summary::of(&kill_to),
        lease_end_to_delete_ms: Summary::of(&tick),
        delete_to_acquired_ms: Summary::of(&reaction),
    })
}

/// kill -9 of the leader's electd alone (its guardian lives, as on a host
/// that lives) → the next `acquired`.
async fn host_alive_crashes(
    binary: &Path,
    api: &str,
    endpoint: &str,
    ttl: u64,
    exec: bool,
    runs: usize,
    settle: Duration,
) -> anyhow::Result<HostAlive> {
    let election = format!("alive-{ttl}-{}", if exec { "exec" } else { "plain" });
    let deletions = match api {
        "v2" => Deletions::watch_v2(endpoint.to_owned(), election.clone()),
        _ => Deletions::watch_v3(endpoint.to_owned(), format!("/electd/{election}/")),
    };
    let mut args = node_args(api, ttl, endpoint, &election);
    if exec {
        args = args.exec(["sleep", "1000"]);
    }
    let mut cluster = Cluster::start(binary, &args, &[], 3).await;
    let limit = Duration::from_secs(ttl + 20);
    let (mut kill_to, mut released) = (Vec::new(), Vec::new());
    let (mut to_delete, mut reaction) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let leader = cluster.leader(limit).await.context("no leader")?;
        if !cluster.all_follow(leader, limit).await {
            bail!("the followers never named the leader");
        }
        // Looked up before the clock starts.
        cluster.nodes[leader].electd_pid();
        tokio::time::sleep(settle).await;
        let killed = cluster.nodes[leader].kill9_electd();
        let (_, acquired) = cluster
            .acquired_after(killed, Some(leader), limit)
            .await
            .context("nobody took over")?;
        kill_to.push(ms(acquired - killed));
        if let Some(deleted) = deletions.after(killed) {
            to_delete.push(ms(deleted - killed));
            reaction.push(ms(acquired.saturating_sub(deleted)));
        }
        // The guardian exits once it has released.
        cluster.nodes[leader].wait_exit(limit).await;
        if let Some(r) = released_in_ms(&cluster.nodes[leader].output()) {
            released.push(r);
        }
        cluster.restart(leader).await;
    }
    Ok(HostAlive {
        ttl_s: ttl,
        exec,
        kill_to_acquired_ms: Summary::of(&kill_to),
        guardian_released_in_ms: Summary::of(&released),
        kill_to_delete_ms: Summary::of(&to_delete),
        delete_to_acquired_ms: Summary::of(&reaction),
    })
}

/// The last `released_in_ms=` a guardian logged.
fn released_in_ms(log: &str) -> Option<f64> {
    log.lines()
        .rev()
        .find_map(|l| l.split("released_in_ms=").nth(1))?
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?
        .parse()
        .ok()
}

/// SIGTERM of the leader of `n` settled v3 candidates → the next `acquired`.
async fn fleet(
    binary: &Path,
    endpoint: &str,
    n: usize,
    runs: usize,
    settle: Duration,
) -> anyhow::Result<Vec<f64>> {
    let args = node_args("v3", 10, endpoint, &format!("fleet-{n}"));
    let mut cluster = Cluster::start(binary, &args, &[], n).await;
    let limit = Duration::from_secs(60);
    let mut samples = Vec::new();
    for _ in 0..runs {
        let leader = cluster.leader(limit).await.context("no leader")?;
        if !cluster.all_follow(leader, limit).await {
            bail!("the followers never named the leader");
        }
        tokio::time::sleep(settle).await;
        let asked = now_ns();
        cluster.nodes[leader].terminate();
        // The time comes from the journals: reading n of them in a tight
        // loop meanwhile would only load the host.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, acquired) = cluster
            .acquired_after(asked, Some(leader), limit)
            .await
            .context("nobody took over")?;
        samples.push(ms(acquired - asked));
        cluster.nodes[leader].wait_exit(limit).await;
        cluster.restart(leader).await;
    }
    Ok(samples)
}

/// Three nodes started at once → the first `acquired`.
async fn cold_starts(
    binary: &Path,
    api: &str,
    endpoint: &str,
    runs: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut samples = Vec::new();
    for run in 0..runs {
        let args = node_args(api, 10, endpoint, &format!("cold-{run}"));
        let started = now_ns();
        let cluster = Cluster::start(binary, &args, &[], 3).await;
        let (_, acquired) = cluster
            .acquired_after(started, None, Duration::from_secs(20))
            .await
            .context("no leader after a cold start")?;
        samples.push(ms(acquired - started));
    }
    Ok(samples)
}

/// RSS of an idle leader and follower, and of the leader over `seconds`.
async fn memory(binary: &Path, api: &str, endpoint: &str, seconds: u64) -> anyhow::Result<Memory> {
    let args = node_args(api, 10, endpoint, "memory");
    let cluster = Cluster::start(binary, &args, &[], 2).await;
    let limit = Duration::from_secs(20);
    let leader = cluster.leader(limit).await.context("no leader")?;
    cluster.all_follow(leader, limit).await;
    // Let start-up allocations settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = cluster.nodes[leader].pid();
    let start = rss_kb(pid);
    let follower = rss_kb(cluster.nodes[1 - leader].pid());
    let mut max = start;
    let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1).min(until - tokio::time::Instant::now())).await;
        max = max.max(rss_kb(pid));
    }
    let end = rss_kb(pid);
    Ok(Memory {
        idle_leader_rss_kb: start,
        idle_follower_rss_kb: follower,
        leader_rss_kb_start: start,
        leader_rss_kb_end: end,
        leader_rss_kb_max: max.max(end),
        watched_seconds: seconds,
    })
}

/// `wrk` against the leader's `/` and `/v1/status`, watching its renewals.
async fn http(binary: &Path, api: &str, endpoint: &str, seconds: u64) -> anyhow::Result<Vec<Http>> {
    if which("wrk").is_none() {
        eprintln!("  (wrk not found: skipping HTTP; scripts/setup.sh installs it)");
        return Ok(Vec::new());
    }
    let ttl = 3;
    let args = node_args(api, ttl, endpoint, "http");
    let cluster = Cluster::start(binary, &args, &[], 1).await;
    let leader = cluster
        .leader(Duration::from_secs(20))
        .await
        .context("no leader")?;
    let node = &cluster.nodes[leader];
    let mut results = Vec::new();
    for path in ["/", "/v1/status"] {
        let started = now_ns();
        let output = tokio::process::Command::new("wrk")
            .args(["-t2", "-c32", &format!("-d{seconds}s"), "--latency"])
            .arg(format!("{}{path}", node.url()))
            .output()
            .await
            .context("wrk runs")?;
        let ended = now_ns();
        let text = String::from_utf8_lossy(&output.stdout);
        let renewals: Vec<u64> = std::fs::read_to_string(&node.journal)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["event"] == "renewed")
            .filter_map(|r| r["t_ns"].as_u64())
            .filter(|&t| t >= started && t <= ended)
            .collect();
        let worst = renewals
            .windows(2)
            .map(|w| ms(w[1] - w[0]))
            .reduce(f64::max);
        results.push(Http {
            path: path.to_owned(),
            requests_per_second: wrk_rps(&text).unwrap_or(0.0),
            p99_ms: wrk_p99_ms(&text).unwrap_or(0.0),
            worst_renewal_gap_ms: worst,
            renewal_interval_ms: ttl as f64 * 1000.0 / 3.0,
        });
    }
    Ok(results)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

fn wrk_rps(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()
}

fn wrk_p99_ms(text: &str) -> Option<f64> {
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))?
        .trim();
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        _ => return None,
    })
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split(':')
                .nth(1)
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb / 1024 / 1024);
    let uname = rustix::system::uname();
    format!(
        "{cpu}, {cores} cores, {memory} GiB, Linux {}",
        uname.release().to_string_lossy()
    )
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn write_plots(out: &Path, report: &Report) -> anyhow::Result<()> {
    let mut handover = Vec::new();
    let mut crash = Vec::new();
    for api in &report.apis {
        if let Some(s) = &api.sigterm_handover_ms {
            handover.push((format!("electd {} SIGTERM", api.api), s.samples.clone()));
        }
        if let Some(s) = &api.resign_handover_ms {
            handover.push((format!("electd {} /v1/resign", api.api), s.samples.clone()));
        }
        for c in &api.crash {
            if let Some(s) = &c.delete_to_acquired_ms {
                crash.push((
                    format!("electd {} TTL {} s", api.api, c.ttl_s),
                    s.samples.clone(),
                ));
            }
        }
    }
    if let Some(e) = &report.etcdctl {
        for (name, s) in [
            (
                "electd v3 SIGTERM, settled: → ~leader in etcd",
                &e.electd.leads_in_etcd_ms,
            ),
            (
                "etcdctl elect SIGINT, settled: → key deleted in etcd",
                &e.etcdctl.leads_in_etcd_ms,
            ),
        ] {
            if let Some(s) = s {
                handover.push((name.to_owned(), s.samples.clone()));
            }
        }
        if let Some(s) = &e.delete_to_elected_ms {
            crash.push(("etcdctl elect TTL 60 s".to_owned(), s.samples.clone()));
        }
    }
    plot::cdf(
        &out.join("handover.svg"),
        "Graceful hand-over: signal → next leader",
        &handover,
    )?;
    let mut steered = Vec::new();
    for api in &report.apis {
        for (name, row) in [
            ("?to=", &api.to_handover),
            ("drain", &api.drain_handover),
            ("preemption", &api.preempt_handover),
        ] {
            if let Some(s) = row.as_ref().and_then(|r| r.ended_to_acquired_ms.as_ref()) {
                steered.push((format!("electd {} {name}", api.api), s.samples.clone()));
            }
        }
    }
    plot::cdf(
        &out.join("steered.svg"),
        "Steered hand-over: old leader's end → next leader",
        &steered,
    )?;
    let mut alive = Vec::new();
    for api in &report.apis {
        for h in &api.host_alive {
            if let Some(s) = &h.kill_to_acquired_ms {
                let exec = if h.exec { ", --exec" } else { "" };
                alive.push((
                    format!("electd {} TTL {} s{exec}", api.api, h.ttl_s),
                    s.samples.clone(),
                ));
            }
        }
    }
    plot::cdf(
        &out.join("crash-host-alive.svg"),
        "Crash failover, host alive: kill -9 of electd → next leader",
        &alive,
    )?;
    plot::cdf(
        &out.join("crash-reaction.svg"),
        "Crash failover: etcd deletes the dead leader's key → next leader",
        &crash,
    )?;
    Ok(())
}

fn row(name: &str, s: &Option<Summary>) {
    match s {
        Some(s) => println!(
            "  {name:<44} n={:<4} median {:>9.3}  p90 {:>9.3}  p99 {:>9.3}  min {:>9.3}  max {:>9.3}",
            s.n, s.median, s.p90, s.p99, s.min, s.max
        ),
        None => println!("  {name:<44} (no samples)"),
    }
}

fn print_table(report: &Report) {
    println!("electd-bench, {} — {}", report.date, report.machine);
    for api in &report.apis {
        println!("\n--api {} (milliseconds)", api.api);
        // Sections left out (--only) have nothing to show.
        if api.sigterm_handover_ms.is_some() || api.resign_handover_ms.is_some() {
            row(
                "hand-over: SIGTERM → next acquired",
                &api.sigterm_handover_ms,
            );
            row(
                "hand-over: /v1/resign → next acquired",
                &api.resign_handover_ms,
            );
        }
        for (name, asked, steered) in [
            ("?to= last in line", "request", &api.to_handover),
            ("drain", "request", &api.drain_handover),
            ("preemption", "/v1/undrain", &api.preempt_handover),
        ] {
            if let Some(steered) = steered {
                row(
                    &format!("{name}: {asked} → next acquired"),
                    &steered.request_to_acquired_ms,
                );
                row(
                    &format!("{name}: ended → next acquired"),
                    &steered.ended_to_acquired_ms,
                );
            }
        }
        for h in &api.host_alive {
            let exec = if h.exec { ", --exec" } else { "" };
            row(
                &format!("host alive TTL {} s{exec}: kill -9 electd → acq", h.ttl_s),
                &h.kill_to_acquired_ms,
            );
            row(
                &format!("host alive TTL {} s{exec}: guardian released", h.ttl_s),
                &h.guardian_released_in_ms,
            );
            row(
                &format!("host alive TTL {} s{exec}: kill → delete seen", h.ttl_s),
                &h.kill_to_delete_ms,
            );
            row(
                &format!("host alive TTL {} s{exec}: delete → acquired", h.ttl_s),
                &h.delete_to_acquired_ms,
            );
        }
        for f in &api.fleet {
            row(
                &format!("fleet {} candidates: SIGTERM → acquired", f.candidates),
                &f.sigterm_handover_ms,
            );
        }
        for c in &api.crash {
            row(
                &format!("crash TTL {} s: kill -9 → next acquired", c.ttl_s),
                &c.kill_to_acquired_ms,
            );
            row(
                &format!("crash TTL {} s: lease end → etcd deletes key", c.ttl_s),
                &c.lease_end_to_delete_ms,
            );
            row(
                &format!("crash TTL {} s: etcd deletes key → acquired", c.ttl_s),
                &c.delete_to_acquired_ms,
            );
        }
        if api.cold_start_ms.is_some() {
            row("cold start of 3 nodes → first acquired", &api.cold_start_ms);
        }
        if !api.load.is_empty() {
            println!(
                "  etcd load (proposals = raft entries; requests = gRPC messages or HTTP requests):"
            );
        }
        for l in &api.load {
            println!(
                "    {:>5} candidates: steady {:>7.2} proposals/s {:>8.1} requests/s; per hand-over {:>6.1} proposals {:>7.1} requests; {:>6.1} kB RSS per candidate",
                l.candidates,
                l.steady_proposals_per_s,
                l.steady_requests_per_s,
                l.proposals_per_handover,
                l.requests_per_handover,
                l.rss_kb_per_candidate
            );
        }
        if let Some(m) = &api.memory {
            println!(
                "  memory: idle leader {} kB, idle follower {} kB; leader over {} s: {} → {} kB (max {})",
                m.idle_leader_rss_kb,
                m.idle_follower_rss_kb,
                m.watched_seconds,
                m.leader_rss_kb_start,
                m.leader_rss_kb_end,
                m.leader_rss_kb_max
            );
        }
        for h in &api.http {
            let gap = h
                .worst_renewal_gap_ms
                .map_or_else(|| "n/a (too short)".to_owned(), |g| format!("{g:.1} ms"));
            println!(
                "  HTTP GET {:<11} {:>9.0} req/s, p99 {:>7.3} ms; worst renewal gap {gap} (interval {:.0} ms)",
                h.path, h.requests_per_second, h.p99_ms, h.renewal_interval_ms
            );
        }
    }
    if let Some(e) = &report.etcdctl {
        println!("\netcdctl elect (v3, session TTL 60 s; milliseconds)");
        for (who, p) in [
            ("electd v3 SIGTERM", &e.electd),
            ("etcdctl SIGINT", &e.etcdctl),
        ] {
            row(
                &format!("{who}: → released in etcd"),
                &p.released_in_etcd_ms,
            );
            row(
                &format!("{who}: → successor leads in etcd"),
                &p.leads_in_etcd_ms,
            );
            row(&format!("{who}: → successor says so"), &p.says_so_ms);
        }
        row(
            "etcdctl SIGINT, successor just spawned → printed",
            &e.fresh_successor_ms,
        );
        row("crash: kill -9 → next elected", &e.kill_to_elected_ms);
        row(
            "crash: etcd deletes key → next elected",
            &e.delete_to_elected_ms,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let text = "Running 1s test @ http://127.0.0.1:1/\n  Latency Distribution\n     50%  120.00us\n     99%    1.52ms\nRequests/sec:  41234.56\nTransfer/sec:      5.00MB\n";
        assert_eq!(wrk_rps(text), Some(41234.56));
        assert_eq!(wrk_p99_ms(text), Some(1.52));
        assert_eq!(wrk_p99_ms("     99%  900.00us"), Some(0.9));
    }
}
