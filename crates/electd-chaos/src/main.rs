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
//! Then it stops everything, runs the journal checker (and, with `--exec`,
//! checks that no two commands ever ran at once) and prints a summary.
//! Exits 1 on any violation. `--seed` makes the schedule (fault kinds,
//! durations, targets by role, the nodes' priorities) reproducible.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use harness::app::{HealthSwitch, Mode};
use harness::checker::{check, longest, without};
use harness::etcd::{Etcd, EtcdOptions};
use harness::node::{Node, NodeArgs};
use harness::now_ns;
use harness::procs;
use harness::proxy::{Direction, Fault, FaultProxy};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::time::{Instant, sleep};

/// `argv[1]` of the `--exec` command the soak gives its nodes.
const CHILD_MODE: &str = "--exec-child";

/// The admin token of every node (`ELECTD_ADMIN_TOKEN`; loopback only).
const ADMIN_TOKEN: &str = "electd-chaos-admin-token";

/// The health check of every node, of its app at `url`: a verdict within a
/// few checks, so that flaps of a few hundred milliseconds change it.
fn health_checked(args: NodeArgs, url: String) -> NodeArgs {
    args.health_url(url)
        .health_interval(Duration::from_millis(100))
        .health_timeout(Duration::from_millis(200))
        .health_failures(2)
        .health_successes(2)
}

/// `--preempt-after` of the nodes that preempt: well under the TTL, so that
/// preemption happens often in a soak.
const PREEMPT_AFTER: Duration = Duration::from_secs(1);

/// The priorities a v3 node draws from at each start: ties, and ranks apart.
const PRIORITIES: [i64; 5] = [0, 0, 1, 5, 10];

/// The answers from admin endpoints the issue allows: done (200), refused
/// (409), needs v3 (501), shutting down (503), hand-over timed out (504).
const ALLOWED_ANSWERS: [u16; 5] = [200, 409, 501, 503, 504];

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

/// The `--exec` command: ticks every 50 ms with `CLOCK_MONOTONIC` times, and
/// keeps a grandchild in its process group.
fn child(file: &Path) -> ExitCode {
    let term = std::env::var("ELECTD_TERM").unwrap_or_default();
    let pid = std::process::id();
    let Ok(mut out) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
    else {
        return ExitCode::FAILURE;
    };
    if let Ok(grandchild) = std::process::Command::new("sleep").arg("1000").spawn() {
        let _ = writeln!(out, "grandchild {pid} {}", grandchild.id());
    }
    loop {
        if writeln!(out, "tick {term} {pid} {}", now_ns()).is_err() {
            return ExitCode::FAILURE;
        }
        // The work this command stands for: a beat every 50 ms.
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    KillRestart,
    ElectdKillRestart,
    PauseResume,
    TermRestart,
    SilentPartition,
    LoudPartition,
    Delay,
    EtcdMemberRestart,
    EtcdMemberCutOff,
    EtcdWipe,
    WatchdogKill,
    WatchdogPause,
    CommandKill,
    HealthFail,
    HealthFlap,
    Drain,
    Transfer,
    TransferTargetStopped,
    TransferTargetKilled,
    PreemptorUnhealthy,
    DrainInFailover,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::KillRestart => "kill -9 (guardian and electd) + restart",
            Kind::ElectdKillRestart => "kill -9 of electd only + restart",
            Kind::PauseResume => "SIGSTOP/SIGCONT",
            Kind::TermRestart => "SIGTERM + restart",
            Kind::SilentPartition => "silent partition",
            Kind::LoudPartition => "loud partition",
            Kind::Delay => "delay",
            Kind::EtcdMemberRestart => "etcd member kill + restart",
            Kind::EtcdMemberCutOff => "etcd member cut off",
            Kind::EtcdWipe => "etcd data wiped",
            Kind::WatchdogKill => "kill -9 of the watchdog",
            Kind::WatchdogPause => "SIGSTOP/SIGCONT of the watchdog",
            Kind::CommandKill => "kill -9 of the command",
            Kind::HealthFail => "health fails or recovers",
            Kind::HealthFlap => "health flaps",
            Kind::Drain => "drain or undrain",
            Kind::Transfer => "resign?to=",
            Kind::TransferTargetStopped => "resign?to=, target SIGSTOPped",
            Kind::TransferTargetKilled => "resign?to=, target kill -9",
            Kind::PreemptorUnhealthy => "preempting node turns unhealthy",
            Kind::DrainInFailover => "kill -9 leader, drain another",
        }
    }
}

struct Soak {
    dir: PathBuf,
    binary: PathBuf,
    /// Every node's `--api` and `--ttl`.
    node_args: NodeArgs,
    exec: Option<Vec<String>>,
    etcd: Etcd,
    nodes: Vec<Node>,
    links: Vec<Vec<FaultProxy>>,
    retired: Vec<Node>,
    journals: Vec<PathBuf>,
    ticks: Vec<(String, PathBuf)>,
    deaths: std::collections::HashMap<u32, u64>,
    /// Whether the nodes speak v3 (priorities, preemption, `?to=`).
    v3: bool,
    /// Each node's health endpoint, kept across its restarts (the app
    /// beside it is as broken after electd restarts as before), and what
    /// it answers now.
    health: Vec<HealthSwitch>,
    health_mode: Vec<Mode>,
    /// Whether each node is drained (a restart undrains, unless it starts
    /// with `--drained`).
    drained: Vec<bool>,
    /// Each node's priority and whether it preempts, as of its last start.
    priority: Vec<i64>,
    preempt: Vec<bool>,
    /// Draws each start's priority, preemption and `--drained`: a stream
    /// apart from the schedule's, from the same seed.
    config_rng: StdRng,
    /// For the admin endpoints (a long timeout: a drained leader answers
    /// once its command has stopped and it has handed over).
    admin: reqwest::Client,
    /// Each admin answer (`what -> status error`) and sub-outcome, counted.
    outcomes: BTreeMap<String, u32>,
    /// Admin answers the issue does not allow.
    unexpected: Vec<String>,
    /// The schedule as it ran, for reading a kept run's logs against.
    fault_log: std::fs::File,
    started: u64,
}

/// What an admin endpoint answered: `None` when the node did not answer.
#[derive(Clone, Debug)]
struct Reply {
    status: Option<u16>,
    /// The JSON body's `error` code, on a refusal.
    error: Option<String>,
}

impl Reply {
    fn describe(&self) -> String {
        match (self.status, &self.error) {
            (None, _) => "no answer".to_owned(),
            (Some(code), Some(error)) => format!("{code} {error}"),
            (Some(code), None) => code.to_string(),
        }
    }
}

/// POSTs to an admin endpoint with the bearer token.
async fn post(http: reqwest::Client, url: String) -> Reply {
    let sent = http
        .post(&url)
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .send()
        .await;
    let Ok(resp) = sent else {
        return Reply {
            status: None,
            error: None,
        };
    };
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let error = (status != 200)
        .then(|| serde_json::from_str::<serde_json::Value>(&body).ok())
        .flatten()
        .and_then(|v| v["error"].as_str().map(str::to_owned));
    Reply {
        status: Some(status),
        error,
    }
}

impl Soak {
    fn spawn(&mut self, i: usize) {
        let name = format!("n{i}");
        let restart = i < self.nodes.len();
        let args = self
            .node_args
            .clone()
            .etcd(self.links[i].iter().map(FaultProxy::url));
        let mut args = health_checked(args, self.health[i].url());
        let mut priority = if self.v3 {
            PRIORITIES[self.config_rng.random_range(0..PRIORITIES.len())]
        } else {
            0
        };
        // Preempting only means something above the lowest rank. On v3 some
        // node always preempts: when no other does, this one does.
        let mut preempt = priority > 0 && self.config_rng.random_bool(0.5);
        let others_preempt = (0..self.preempt.len()).any(|j| j != i && self.preempt[j]);
        if self.v3 && !others_preempt && !preempt {
            priority = PRIORITIES[self.config_rng.random_range(2..PRIORITIES.len())];
            preempt = true;
        }
        // Some restarts come back drained, as after maintenance.
        let drained = restart && self.config_rng.random_bool(0.1);
        if priority != 0 {
            args = args.priority(priority);
        }
        if preempt {
            args = args.preempt(PREEMPT_AFTER);
        }
        if drained {
            args = args.drained();
        }
        if let Some(exec) = &self.exec {
            let ticks = self.dir.join(format!("{name}.ticks")).display().to_string();
            args = args.exec(exec.iter().cloned().chain([ticks]));
        }
        let node = Node::spawn_with_env(
            &self.binary,
            &self.dir,
            &name,
            &args,
            &[("ELECTD_ADMIN_TOKEN", ADMIN_TOKEN)],
        );
        self.note(&format!(
            "  n{i} started: priority {priority}{}{}",
            if preempt { ", --preempt" } else { "" },
            if drained { ", --drained" } else { "" }
        ));
        if restart {
            let old = std::mem::replace(&mut self.nodes[i], node);
            self.deaths.extend(old.deaths());
            self.retired.push(old);
            self.priority[i] = priority;
            self.preempt[i] = preempt;
            self.drained[i] = drained;
        } else {
            self.journals.push(node.journal.clone());
            self.ticks
                .push((name.clone(), self.dir.join(format!("{name}.ticks"))));
            self.nodes.push(node);
            self.priority.push(priority);
            self.preempt.push(preempt);
            self.drained.push(drained);
        }
        if preempt {
            self.count("started with --preempt");
        }
        if drained {
            self.count("started with --drained");
        }
    }

    /// kill -9 of node `i`, its death recorded for the checker.
    fn kill(&mut self, i: usize) {
        self.nodes[i].kill9();
        self.deaths.extend(self.nodes[i].deaths());
    }

    /// A line of the fault log, stamped with the time into the faults.
    fn note(&mut self, line: &str) {
        let at = now_ns().saturating_sub(self.started) as f64 / 1e9;
        let _ = writeln!(self.fault_log, "{at:.3} s: {line}");
    }

    fn count(&mut self, what: &str) {
        *self.outcomes.entry(what.to_owned()).or_default() += 1;
    }

    /// Records an admin answer: counted, logged, and kept aside when the
    /// issue does not allow it.
    fn record(&mut self, what: &str, node: usize, reply: &Reply) {
        let described = reply.describe();
        self.note(&format!("  {what} at n{node} -> {described}"));
        self.count(&format!("{what} -> {described}"));
        if let Some(code) = reply.status
            && !ALLOWED_ANSWERS.contains(&code)
        {
            self.unexpected
                .push(format!("{what} at n{node} answered {described}"));
        }
    }

    /// POSTs `path` to node `i`'s admin endpoint and records the answer.
    async fn admin(&mut self, i: usize, what: &str, path: &str) -> Reply {
        let reply = post(self.admin.clone(), format!("{}{path}", self.nodes[i].url())).await;
        self.record(what, i, &reply);
        reply
    }

    async fn drain(&mut self, i: usize) {
        let reply = self.admin(i, "drain", "/v1/drain").await;
        // Unanswered, it may have drained all the same: undrained at the end.
        if matches!(reply.status, None | Some(200)) {
            self.drained[i] = true;
        }
    }

    async fn undrain(&mut self, i: usize) {
        let reply = self.admin(i, "undrain", "/v1/undrain").await;
        if reply.status == Some(200) {
            self.drained[i] = false;
        }
    }

    /// Switches node `i`'s health endpoint.
    fn set_health(&mut self, i: usize, mode: Mode) {
        self.health[i].set(mode);
        self.health_mode[i] = mode;
        self.note(&format!("  n{i} health -> {mode:?}"));
        self.count(&format!("health -> {mode:?}"));
    }

    /// Whether node `i` is kept out of the running (unhealthy or drained).
    fn out(&self, i: usize) -> bool {
        self.health_mode[i] != Mode::Healthy || self.drained[i]
    }

    /// Brings back the first node kept out, if any; whether there was one.
    async fn restore_one(&mut self) -> bool {
        let Some(i) = (0..self.nodes.len()).find(|&i| self.out(i)) else {
            return false;
        };
        if self.health_mode[i] != Mode::Healthy {
            self.set_health(i, Mode::Healthy);
        }
        if self.drained[i] {
            self.undrain(i).await;
        }
        true
    }

    /// Whether another node may be kept out: at most `(nodes - 1) / 2` at once.
    fn may_take_out(&self) -> bool {
        let out = (0..self.nodes.len()).filter(|&i| self.out(i)).count();
        out < (self.nodes.len() - 1) / 2
    }

    async fn leader(&self) -> Option<usize> {
        for (i, node) in self.nodes.iter().enumerate() {
            if node.is_leader().await {
                return Some(i);
            }
        }
        None
    }

    /// The `--exec` watchdog of node `i` (its live child), if it runs one.
    fn watchdog(&self, i: usize) -> Option<u32> {
        procs::children(self.nodes[i].electd_pid())
            .into_iter()
            .find(|p| !p.zombie())
            .map(|p| p.pid)
    }

    /// The highest term floor any node holds: what etcd's revision must
    /// pass for the election to go on after etcd lost its history.
    async fn highest_floor(&self) -> u64 {
        let mut floor = 0;
        for node in &self.nodes {
            if let Some(status) = node.status().await
                && let Some(f) = status["floor"].as_u64()
            {
                floor = floor.max(f);
            }
        }
        floor
    }

    fn link(&self, i: usize, apply: impl Fn(&FaultProxy)) {
        for proxy in &self.links[i] {
            apply(proxy);
        }
    }
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
        "electd-chaos: --api {} --nodes {} --etcd-members {members} --ttl {} --duration {:?}{} --seed {seed}",
        args.api,
        args.nodes,
        args.ttl,
        duration,
        if args.exec { " --exec" } else { "" }
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
    let mut soak = Soak {
        dir: dir.path().to_owned(),
        binary,
        node_args: NodeArgs::new().api(&args.api).ttl(args.ttl),
        exec,
        etcd,
        nodes: Vec::new(),
        links,
        retired: Vec::new(),
        journals: Vec::new(),
        ticks: Vec::new(),
        deaths: Default::default(),
        v3: args.api == "v3",
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
    let mut kinds: Vec<Kind> = vec![
        Kind::KillRestart,
        Kind::ElectdKillRestart,
        Kind::PauseResume,
        Kind::TermRestart,
        Kind::SilentPartition,
        Kind::LoudPartition,
        Kind::Delay,
        Kind::EtcdMemberRestart,
    ];
    if members == 3 {
        kinds.push(Kind::EtcdMemberCutOff);
    }
    if args.exec {
        kinds.extend([Kind::WatchdogKill, Kind::WatchdogPause, Kind::CommandKill]);
    }
    kinds.extend([
        Kind::HealthFail,
        Kind::HealthFlap,
        Kind::Drain,
        Kind::DrainInFailover,
    ]);
    if args.nodes > 1 {
        // On v2 the leader must refuse it (501 needs_v3).
        kinds.push(Kind::Transfer);
        if soak.v3 {
            kinds.extend([
                Kind::TransferTargetStopped,
                Kind::TransferTargetKilled,
                Kind::PreemptorUnhealthy,
            ]);
        }
    }
    // Every kind twice but the wipe, which costs a leaderless spell until
    // the revision is raised past the nodes' floor: half as often.
    kinds = kinds.iter().flat_map(|&k| [k, k]).collect();
    kinds.push(Kind::EtcdWipe);
    let mut counts: BTreeMap<Kind, u32> = BTreeMap::new();
    while Instant::now() < until {
        let kind = kinds[rng.random_range(0..kinds.len())];
        let target_leader = rng.random_bool(0.6);
        let hold = ttl.mul_f64(rng.random_range(0.1..2.0));
        let settle = ttl.mul_f64(rng.random_range(0.0..0.5));
        let member = rng.random_range(0..members);
        let delay = ttl.mul_f64(rng.random_range(0.05..0.4));
        let jitter = ttl.mul_f64(rng.random_range(0.0..0.1));
        let random_node = rng.random_range(0..args.nodes);
        // The steering actions' draws, made every round so that the
        // schedule depends on the seed alone.
        let steer = Steer {
            offset: rng.random_range(0..args.nodes.max(2) - 1),
            failing: [Mode::Unhealthy, Mode::Refuse, Mode::Stall][rng.random_range(0..3)],
            restore: rng.random_bool(0.5),
            // The target is stopped or killed before the ask a third of
            // the time (it cannot take over: the leader withdraws the
            // hand-over, and a stopped target wakes up late); otherwise
            // within milliseconds of it (a hand-over takes a few), or up
            // to the hand-over bound (a quarter of the TTL) and past it.
            first: rng.random_bool(0.34),
            midway: if rng.random_bool(0.5) {
                Duration::from_micros(rng.random_range(0..10_000))
            } else {
                ttl.mul_f64(rng.random_range(0.0..0.35))
            },
            flaps: rng.random_range(3..10),
            flap: Duration::from_millis(rng.random_range(50..400)),
            lag: PREEMPT_AFTER.mul_f64(rng.random_range(0.0..1.5)),
            failover: ttl.mul_f64(rng.random_range(0.0..1.2)),
        };
        let node = match target_leader {
            true => soak.leader().await.unwrap_or(random_node),
            false => random_node,
        };
        *counts.entry(kind).or_default() += 1;
        let line = format!(
            "{} (node n{node}, etcd member {member}, hold {hold:?})",
            kind.name()
        );
        soak.note(&line);
        let draw = Draw {
            node,
            member,
            hold,
            delay,
            jitter,
            steer,
        };
        inject(&mut soak, &args.api, kind, &draw).await;
        sleep(settle.min(until.saturating_duration_since(Instant::now()))).await;
    }
    // Every node a candidate again, so the run ends as it began.
    for i in 0..soak.nodes.len() {
        soak.nodes[i].resume();
        if soak.health_mode[i] != Mode::Healthy {
            soak.set_health(i, Mode::Healthy);
        }
        if soak.drained[i] {
            soak.undrain(i).await;
        }
    }
    let faulted_until = now_ns();
    sampler.abort();
    let outages = outage_log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .finish(faulted_until);

    // Stop everything in order, then read the evidence.
    for i in 0..soak.nodes.len() {
        soak.link(i, FaultProxy::heal);
        soak.nodes[i].resume();
        soak.nodes[i].terminate();
    }
    for node in &mut soak.nodes {
        if node
            .wait_exit(ttl + Duration::from_secs(10))
            .await
            .is_none()
        {
            node.kill9();
            soak.deaths.extend(node.deaths());
        }
    }
    for node in soak.nodes.iter().chain(&soak.retired) {
        soak.deaths.extend(node.deaths());
    }
    let report = check(&soak.journals, &soak.deaths)?;
    let overlaps = report
        .violations
        .iter()
        .filter(|v| v.starts_with("overlap"))
        .count();
    let terms: std::collections::BTreeSet<u64> = report.intervals.iter().map(|i| i.term).collect();
    let gaps = report.gaps(started, faulted_until);
    let (gap_start, gap) = longest(&gaps);
    let (outage_start, outage) = longest(&outages);
    let (served_gap_start, served_gap) = longest(&without(&gaps, &outages));
    let since = |t: u64| t.saturating_sub(started) as f64 / 1e9;

    println!("faults injected: {}", counts.values().sum::<u32>());
    for (kind, n) in &counts {
        println!("  {:<32} {n}", kind.name());
    }
    println!("steering outcomes and admin answers:");
    for (what, n) in &soak.outcomes {
        println!("  {what:<60} {n}");
    }
    let mut reasons: BTreeMap<&str, u32> = BTreeMap::new();
    for interval in &report.intervals {
        *reasons
            .entry(interval.reason.map_or("(none: killed)", |r| r.as_str()))
            .or_default() += 1;
    }
    println!("leaderships ended, by journal reason:");
    for (reason, n) in &reasons {
        println!("  {reason:<32} {n}");
    }
    println!("leaderships: {}", report.intervals.len());
    println!("terms: {}", terms.len());
    println!(
        "longest time without a leader: {:.3} s (from {:.3} s into the faults)",
        gap as f64 / 1e9,
        since(gap_start)
    );
    println!(
        "longest time etcd was unavailable (no member healthy): {:.3} s (from {:.3} s), {:.3} s in all",
        outage as f64 / 1e9,
        since(outage_start),
        outages.iter().map(|(a, b)| b - a).sum::<u64>() as f64 / 1e9
    );
    println!(
        "longest time without a leader while etcd answered: {:.3} s (from {:.3} s)",
        served_gap as f64 / 1e9,
        since(served_gap_start)
    );
    println!("overlapping leaderships: {overlaps}");
    let mut ok = report.violations.is_empty();
    for violation in &report.violations {
        println!("VIOLATION: {violation}");
    }
    if args.exec {
        let ticks = harness::ticks::read(&soak.ticks, 0);
        let child_overlaps = ticks.overlaps();
        println!("--exec commands run: {}", ticks.children.len());
        println!("commands running at once: {}", child_overlaps.len());
        for (a, b) in &child_overlaps {
            println!("VIOLATION: commands overlapped: {a:?} and {b:?}");
        }
        ok &= child_overlaps.is_empty();
    }
    println!("result: {}", if ok { "safe" } else { "UNSAFE" });
    for answer in &soak.unexpected {
        println!("UNEXPECTED admin answer: {answer}");
    }
    if !soak.unexpected.is_empty() {
        println!(
            "admin answers the issue does not allow: {} (the soak fails)",
            soak.unexpected.len()
        );
        ok = false;
    }
    if args.keep {
        println!("journals and logs kept in {}", dir.keep().display());
    }
    Ok(ok)
}

/// When etcd was unavailable, as `(start_ns, end_ns)` spans.
#[derive(Default)]
struct Outages {
    spans: Vec<(u64, u64)>,
    open: Option<u64>,
}

impl Outages {
    fn record(&mut self, at: u64, available: bool) {
        match (available, self.open) {
            (false, None) => self.open = Some(at),
            (true, Some(start)) => {
                self.spans.push((start, at));
                self.open = None;
            }
            _ => {}
        }
    }

    fn finish(&mut self, at: u64) -> Vec<(u64, u64)> {
        self.record(at, true);
        std::mem::take(&mut self.spans)
    }
}

/// Samples etcd's availability four times a second: available when any
/// member says it is healthy (it has a raft leader and serves a quorum
/// read), asked directly, not through the nodes' fault proxies. Separates
/// time without a leader that electd caused from time etcd could not serve.
async fn watch_etcd(endpoints: Vec<String>, outages: Arc<Mutex<Outages>>) {
    let Ok(http) = harness::http().timeout(Duration::from_millis(500)).build() else {
        return;
    };
    loop {
        let asked = now_ns();
        let mut available = false;
        for endpoint in &endpoints {
            let health = http.get(format!("{endpoint}/health")).send().await;
            if let Ok(resp) = health
                && let Ok(body) = resp.json::<serde_json::Value>().await
                && body["health"] == "true"
            {
                available = true;
                break;
            }
        }
        outages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(asked, available);
        sleep(Duration::from_millis(250)).await;
    }
}

/// One round's draws.
struct Draw {
    /// The target: the leader, or a random node.
    node: usize,
    member: usize,
    hold: Duration,
    delay: Duration,
    jitter: Duration,
    steer: Steer,
}

/// The steering actions' draws.
struct Steer {
    /// Picks another node: `(n + 1 + offset) % nodes`, never `n`.
    offset: usize,
    /// How a failing health check fails.
    failing: Mode,
    /// Whether a node taken out (unhealthy, drained) is brought back at
    /// the end of the hold, or left out for later rounds.
    restore: bool,
    /// Whether a hand-over's target is stopped or killed before the ask,
    /// and if not, how long after.
    first: bool,
    midway: Duration,
    /// Changes of verdict in a flap, and the time between them.
    flaps: u32,
    flap: Duration,
    /// How long after a preempting node turns healthy it turns unhealthy.
    lag: Duration,
    /// How long after the leader is killed another node is drained.
    failover: Duration,
}

impl Soak {
    /// The node `offset` picks other than `n`.
    fn other(&self, n: usize, offset: usize) -> usize {
        (n + 1 + offset) % self.nodes.len()
    }

    /// The leader to ask for a hand-over (or `fallback` when none is seen:
    /// it answers 409 not_leader), and the node it is asked to hand to.
    async fn transfer_ends(&mut self, fallback: usize, offset: usize) -> (usize, usize) {
        let from = self.leader().await.unwrap_or(fallback);
        let to = self.other(from, offset);
        let state = match (self.health_mode[to], self.drained[to]) {
            (Mode::Healthy, false) => "a candidate".to_owned(),
            (mode, drained) => format!("{mode:?}, drained {drained}"),
        };
        self.note(&format!(
            "  asking n{from} (priority {}) to hand over to n{to} (priority {}, {state})",
            self.priority[from], self.priority[to]
        ));
        (from, to)
    }
}

async fn inject(soak: &mut Soak, api: &str, kind: Kind, draw: &Draw) {
    let &Draw {
        node,
        member,
        hold,
        delay,
        jitter,
        ref steer,
    } = draw;
    match kind {
        Kind::KillRestart => {
            soak.nodes[node].kill9();
            soak.deaths.extend(soak.nodes[node].deaths());
            sleep(hold).await;
            soak.spawn(node);
        }
        Kind::ElectdKillRestart => {
            // Its guardian releases the election, then exits with it.
            soak.nodes[node].kill9_electd();
            soak.deaths.extend(soak.nodes[node].deaths());
            if soak.nodes[node]
                .wait_exit(Duration::from_secs(10))
                .await
                .is_none()
            {
                soak.kill(node);
            }
            sleep(hold).await;
            soak.spawn(node);
        }
        Kind::PauseResume => {
            soak.nodes[node].pause();
            sleep(hold).await;
            soak.nodes[node].resume();
        }
        Kind::TermRestart => {
            soak.nodes[node].terminate();
            if soak.nodes[node]
                .wait_exit(Duration::from_secs(10))
                .await
                .is_none()
            {
                soak.nodes[node].kill9();
                soak.deaths.extend(soak.nodes[node].deaths());
            }
            sleep(hold).await;
            soak.spawn(node);
        }
        Kind::SilentPartition => {
            soak.link(node, FaultProxy::drop_all);
            sleep(hold).await;
            soak.link(node, FaultProxy::heal);
        }
        Kind::LoudPartition => {
            soak.link(node, FaultProxy::refuse);
            sleep(hold).await;
            soak.link(node, FaultProxy::heal);
        }
        Kind::Delay => {
            soak.link(node, |p| {
                p.set(
                    Direction::Both,
                    Fault::Delay {
                        fixed: delay,
                        jitter,
                    },
                )
            });
            sleep(hold).await;
            soak.link(node, FaultProxy::heal);
        }
        Kind::EtcdMemberRestart => {
            soak.etcd.kill(member);
            sleep(hold).await;
            soak.etcd.restart(member);
        }
        Kind::EtcdMemberCutOff => {
            soak.etcd.isolate(member);
            sleep(hold).await;
            soak.etcd.rejoin(member);
        }
        Kind::EtcdWipe => {
            let floor = soak.highest_floor().await;
            soak.etcd.wipe().await;
            sleep(hold).await;
            // The operator's way out: traffic until the revision passes the floor.
            let floor = floor.max(soak.highest_floor().await);
            soak.etcd.raise_past(api, floor).await;
        }
        Kind::WatchdogKill | Kind::WatchdogPause | Kind::CommandKill => {
            let Some(watchdog) = soak.watchdog(node) else {
                return;
            };
            match kind {
                Kind::WatchdogKill => procs::signal(watchdog, rustix::process::Signal::KILL),
                Kind::WatchdogPause => {
                    procs::signal(watchdog, rustix::process::Signal::STOP);
                    sleep(hold).await;
                    procs::signal(watchdog, rustix::process::Signal::CONT);
                }
                _ => {
                    if let Some(command) =
                        procs::children(watchdog).into_iter().find(|p| !p.zombie())
                    {
                        procs::signal(command.pid, rustix::process::Signal::KILL);
                    }
                }
            }
        }
        Kind::HealthFail => {
            if soak.health_mode[node] != Mode::Healthy {
                soak.set_health(node, Mode::Healthy);
                return;
            }
            if !soak.may_take_out() {
                soak.count("health fails: another node brought back instead");
                soak.restore_one().await;
                return;
            }
            soak.set_health(node, steer.failing);
            sleep(hold).await;
            if steer.restore {
                soak.set_health(node, Mode::Healthy);
            }
        }
        Kind::HealthFlap => {
            for flap in 0..steer.flaps {
                let mode = if flap % 2 == 0 {
                    steer.failing
                } else {
                    Mode::Healthy
                };
                soak.set_health(node, mode);
                sleep(steer.flap).await;
            }
            soak.set_health(node, Mode::Healthy);
        }
        Kind::Drain => {
            if soak.drained[node] {
                soak.undrain(node).await;
                return;
            }
            if !soak.may_take_out() {
                soak.count("drain: another node brought back instead");
                soak.restore_one().await;
                return;
            }
            soak.drain(node).await;
            sleep(hold).await;
            if steer.restore {
                soak.undrain(node).await;
            }
        }
        Kind::Transfer => {
            let (from, to) = soak.transfer_ends(node, steer.offset).await;
            let what = if api == "v3" {
                "resign?to="
            } else {
                "resign?to= (v2)"
            };
            soak.admin(from, what, &format!("/v1/resign?to=n{to}"))
                .await;
        }
        Kind::TransferTargetStopped | Kind::TransferTargetKilled => {
            // The target dies (or freezes) while the hand-over is under way,
            // or just after it took over.
            let (from, to) = soak.transfer_ends(node, steer.offset).await;
            let url = format!("{}/v1/resign?to=n{to}", soak.nodes[from].url());
            let stopped = kind == Kind::TransferTargetStopped;
            let strike = |soak: &mut Soak| {
                if stopped {
                    soak.nodes[to].pause();
                } else {
                    soak.kill(to);
                }
            };
            let verb = if stopped { "SIGSTOPped" } else { "killed" };
            let asked = if steer.first {
                strike(soak);
                soak.note(&format!("  n{to} {verb} just before the ask"));
                tokio::spawn(post(soak.admin.clone(), url))
            } else {
                let asked = tokio::spawn(post(soak.admin.clone(), url));
                sleep(steer.midway).await;
                strike(soak);
                soak.note(&format!("  n{to} {verb} {:?} after the ask", steer.midway));
                asked
            };
            let reply = asked.await.unwrap_or(Reply {
                status: None,
                error: None,
            });
            let what = match (stopped, steer.first) {
                (true, true) => "resign?to=, target SIGSTOPped before",
                (true, false) => "resign?to=, target SIGSTOPped after",
                (false, true) => "resign?to=, target killed before",
                (false, false) => "resign?to=, target killed after",
            };
            soak.record(what, from, &reply);
            sleep(hold).await;
            if stopped {
                soak.nodes[to].resume();
            } else {
                soak.spawn(to);
            }
        }
        Kind::PreemptorUnhealthy => {
            // The preempting node of the highest priority: the one most
            // likely to outrank whoever leads once it is back.
            let top = (0..soak.nodes.len())
                .filter(|&i| soak.preempt[i])
                .map(|i| soak.priority[i])
                .max();
            let Some(top) = top else {
                soak.count("preempting node: none running");
                return;
            };
            let preempting: Vec<usize> = (0..soak.nodes.len())
                .filter(|&i| soak.preempt[i] && soak.priority[i] == top)
                .collect();
            let p = preempting[steer.offset % preempting.len()];
            if soak.drained[p] {
                soak.undrain(p).await;
            }
            // Out for a moment (a leader hands over), then a healthy
            // candidate again: after --preempt-after it asks any leader it
            // outranks to hand over; it turns unhealthy before, around or
            // after that moment.
            soak.set_health(p, steer.failing);
            // Long enough for a verdict, also from stalled checks (two
            // timeouts of 200 ms).
            sleep(Duration::from_millis(800)).await;
            soak.set_health(p, Mode::Healthy);
            sleep(steer.lag).await;
            let leader = soak.leader().await;
            let when = match leader {
                Some(l) if l == p => "while it led",
                Some(l) if soak.priority[l] < soak.priority[p] => "while it outranked the leader",
                Some(_) => "while it did not outrank the leader",
                None => "while nobody led",
            };
            soak.count(&format!("preempting node unhealthy {when}"));
            soak.set_health(p, steer.failing);
            sleep(hold).await;
            soak.set_health(p, Mode::Healthy);
        }
        Kind::DrainInFailover => {
            let leader = soak.leader().await.unwrap_or(node);
            soak.kill(leader);
            soak.note(&format!("  n{leader} killed"));
            // Before its lease expires, or after.
            sleep(steer.failover).await;
            let drained = soak.other(leader, steer.offset);
            soak.drain(drained).await;
            sleep(hold).await;
            soak.spawn(leader);
            if steer.restore {
                soak.undrain(drained).await;
            }
        }
    }
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
