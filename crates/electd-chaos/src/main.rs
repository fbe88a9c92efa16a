//! `electd-chaos`: a bounded chaos soak.
//!
//! Starts etcd (one or three members, each member's peer traffic behind a
//! fault proxy) and N `electd` nodes, each reaching etcd through fault
//! proxies of its own. For `--duration` it injects random faults, one at a
//! time: kill -9 and restart, SIGSTOP/SIGCONT, SIGTERM and restart, silent
//! and loud partitions, delays, etcd member kills and restarts, a member cut
//! off from the others, etcd's data wiped (then its revision raised past the
//! nodes' floor, as an operator would), and with `--exec` kill -9 or SIGSTOP
//! of a leader's watchdog and kill -9 of its command. Then it stops everything, runs the journal checker
//! (and, with `--exec`, checks that no two commands ever ran at once) and
//! prints a summary. Exits 1 on any violation. `--seed` makes the schedule
//! (fault kinds, durations, targets by role) reproducible.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use harness::checker::{check, longest, without};
use harness::etcd::{Etcd, EtcdOptions};
use harness::node::Node;
use harness::now_ns;
use harness::procs;
use harness::proxy::{Direction, Fault, FaultProxy};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::time::{Instant, sleep};

/// `argv[1]` of the `--exec` command the soak gives its nodes.
const CHILD_MODE: &str = "--exec-child";

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
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::KillRestart => "kill -9 + restart",
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
        }
    }
}

struct Soak {
    dir: PathBuf,
    binary: PathBuf,
    node_args: Vec<String>,
    exec: Option<Vec<String>>,
    etcd: Etcd,
    nodes: Vec<Node>,
    links: Vec<Vec<FaultProxy>>,
    retired: Vec<Node>,
    journals: Vec<PathBuf>,
    ticks: Vec<(String, PathBuf)>,
    deaths: std::collections::HashMap<u32, u64>,
}

impl Soak {
    fn spawn(&mut self, i: usize) {
        let name = format!("n{i}");
        let mut args = self.node_args.clone();
        let urls: Vec<String> = self.links[i].iter().map(FaultProxy::url).collect();
        args.extend(["--etcd".to_owned(), urls.join(",")]);
        if let Some(exec) = &self.exec {
            args.push("--exec".to_owned());
            args.push("--".to_owned());
            args.extend(exec.iter().cloned());
            args.push(self.dir.join(format!("{name}.ticks")).display().to_string());
        }
        let node = Node::spawn(&self.binary, &self.dir, &name, &args);
        if i < self.nodes.len() {
            let old = std::mem::replace(&mut self.nodes[i], node);
            self.deaths.extend(old.deaths());
            self.retired.push(old);
        } else {
            self.journals.push(node.journal.clone());
            self.ticks
                .push((name.clone(), self.dir.join(format!("{name}.ticks"))));
            self.nodes.push(node);
        }
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
        procs::children(self.nodes[i].pid())
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
        node_args: vec![
            "--api".into(),
            args.api.clone(),
            "--ttl".into(),
            args.ttl.to_string(),
        ],
        exec,
        etcd,
        nodes: Vec::new(),
        links,
        retired: Vec::new(),
        journals: Vec::new(),
        ticks: Vec::new(),
        deaths: Default::default(),
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
    let until = Instant::now() + duration;
    let outage_log = Arc::new(Mutex::new(Outages::default()));
    let sampler = tokio::spawn(watch_etcd(soak.etcd.endpoints(), outage_log.clone()));
    let mut kinds: Vec<Kind> = vec![
        Kind::KillRestart,
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
    // Every kind twice but the wipe, which costs a leaderless spell until
    // the revision is raised past the nodes' floor: half as often.
    kinds = kinds.iter().flat_map(|&k| [k, k]).collect();
    kinds.push(Kind::EtcdWipe);
    let mut counts: BTreeMap<Kind, u32> = BTreeMap::new();
    // The schedule as it ran, for reading a kept run's logs against.
    let mut fault_log = std::fs::File::create(dir.path().join("faults.log"))?;
    while Instant::now() < until {
        let kind = kinds[rng.random_range(0..kinds.len())];
        let target_leader = rng.random_bool(0.6);
        let hold = ttl.mul_f64(rng.random_range(0.1..2.0));
        let settle = ttl.mul_f64(rng.random_range(0.0..0.5));
        let member = rng.random_range(0..members);
        let delay = ttl.mul_f64(rng.random_range(0.05..0.4));
        let jitter = ttl.mul_f64(rng.random_range(0.0..0.1));
        let random_node = rng.random_range(0..args.nodes);
        let node = match target_leader {
            true => soak.leader().await.unwrap_or(random_node),
            false => random_node,
        };
        *counts.entry(kind).or_default() += 1;
        writeln!(
            fault_log,
            "{:.3} s: {} (node n{node}, etcd member {member}, hold {hold:?})",
            now_ns().saturating_sub(started) as f64 / 1e9,
            kind.name()
        )?;
        inject(
            &mut soak, &args.api, kind, node, member, hold, delay, jitter,
        )
        .await;
        sleep(settle.min(until.saturating_duration_since(Instant::now()))).await;
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

#[allow(clippy::too_many_arguments)]
async fn inject(
    soak: &mut Soak,
    api: &str,
    kind: Kind,
    node: usize,
    member: usize,
    hold: Duration,
    delay: Duration,
    jitter: Duration,
) {
    match kind {
        Kind::KillRestart => {
            soak.nodes[node].kill9();
            soak.deaths.extend(soak.nodes[node].deaths());
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
