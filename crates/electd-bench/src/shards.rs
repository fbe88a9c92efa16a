//! A leader per shard (`--shards N`, v3): N shards over k nodes on one
//! etcd. How long until every shard is led and the map settles, how even
//! it is, what an idle fleet costs etcd and how much memory a node holds;
//! then, round after round, how fast a node's shards are led again after
//! SIGTERM, kill -9 of its electd (its guardian revokes) and kill -9 of
//! the whole node (its lease expires), and what a node joining moves.
//!
//! Every time comes from the nodes' journals, read through the journal
//! checker (which also proves, per shard, that no two nodes ever led one
//! shard at once). A shard's gap is the time from the end of one leader's
//! interval to the `acquired` of the next. `/v1/shards?mine` is polled
//! only to know when to read the journals, and to check that every node
//! shows the same settled map.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use elect::journal::EndReason;
use harness::checker::{Interval, Report};
use harness::etcd::Etcd;
use harness::node::{Node, NodeArgs};
use harness::now_ns;
use serde::Serialize;
use tokio::time::{Instant, sleep};

use crate::cluster::{Cluster, node_args};
use crate::host::{cpu, rss_kb};
use crate::stats::{Summary, ms};

/// How often `/v1/shards?mine` is asked while waiting: rarely enough that
/// the asking takes little of the two cores the nodes measured share.
const POLL: Duration = Duration::from_millis(50);

/// The sizes of one run.
pub struct Plan {
    pub shards: u32,
    pub nodes: usize,
    pub ttl_s: u64,
    pub idle: Duration,
    pub rounds: usize,
}

#[derive(Serialize)]
pub struct Shards {
    pub shards: u32,
    pub nodes: usize,
    pub ttl_s: u64,
    /// ⌊0.95 N/k⌋ and ⌈1.05 N/k⌉.
    pub lower: usize,
    pub upper: usize,
    /// The last node's start → the first instant every shard has a leader
    /// (journals; ms).
    pub all_led_ms: f64,
    /// The last node's start → the last `acquired` before the map settled
    /// (journals; ms): when the last move landed.
    pub last_move_ms: f64,
    /// The last node's start → every node's `/v1/shards` shows the same
    /// map, each node within the bounds (polled every 50 ms; ms).
    pub settled_seen_ms: f64,
    /// CPU the nodes' electd processes used from their start until the map
    /// settled, all together, and etcd's meanwhile (ms): beside
    /// `settled_seen_ms` × 2 cores, how busy the host was.
    pub start_cpu_ms: f64,
    pub start_etcd_cpu_ms: f64,
    /// Shards per node once settled: the fewest and the most.
    pub min_per_node: usize,
    pub max_per_node: usize,
    /// Raft proposals etcd committed during the idle window
    /// (`etcd_server_proposals_committed_total`).
    pub idle_seconds: f64,
    pub idle_proposals: f64,
    /// Leaderships begun or ended during the idle window (journals).
    pub idle_moves: usize,
    /// RSS of each node's electd at the end of the idle window (kB).
    pub idle_rss_kb: Option<Summary>,
    /// The same, of each node's guardian (kB).
    pub idle_guardian_rss_kb: Option<Summary>,
    pub sigterm: Leave,
    pub kill_electd: Leave,
    pub kill_node: Leave,
    pub join: Join,
    /// Violations the journal checker found over the whole run (none
    /// expected).
    pub violations: Vec<String>,
}

/// A node leaving (SIGTERM, kill -9 of electd, kill -9 of the node), over
/// the rounds.
#[derive(Default, Serialize)]
pub struct Leave {
    /// Shards the node led when it left, per round.
    pub shards_per_round: Vec<usize>,
    /// Whether it led the election itself too, per round.
    pub led_election: Vec<bool>,
    /// The signal → the last of its shards led again (ms), one per round.
    pub all_led_again_ms: Option<Summary>,
    /// Each of its shards: its interval's end → the next `acquired` (ms),
    /// every round's shards together.
    pub gap_ms: Option<Summary>,
    /// Each of its shards: the signal → the next `acquired` (ms).
    pub signal_to_acquired_ms: Option<Summary>,
    /// Raft proposals from just before the signal until its shards were
    /// led again, per round.
    pub proposals: Option<Summary>,
    /// CPU the other nodes' electd used meanwhile, all together (ms), per
    /// round.
    pub survivors_cpu_ms: Option<Summary>,
}

/// A node joining k settled nodes, over the rounds.
#[derive(Default, Serialize)]
pub struct Join {
    /// ⌊0.95 N/(k+1)⌋ and 1.1 N/(k+1).
    pub target: usize,
    pub move_budget: f64,
    /// The joiner's spawn → it leads `target` shards (ms), per round.
    pub reach_target_ms: Option<Summary>,
    /// The joiner's spawn → its last `acquired` of the join (ms).
    pub last_move_ms: Option<Summary>,
    /// Shards the joiner led once settled, per round.
    pub joiner_leads: Vec<usize>,
    /// Shards moved (any `acquired` after the spawn), per round.
    pub moved: Vec<usize>,
    /// Shards acquired more than once after the spawn, per round.
    pub moved_twice: Vec<usize>,
    /// Moved shards not given to the joiner, per round.
    pub moved_elsewhere: Vec<usize>,
    /// Each moved shard: the old leader's `ended` → the joiner's
    /// `acquired` (ms), every round's together.
    pub gap_ms: Option<Summary>,
    /// Raft proposals from before the spawn until settled, per moved
    /// shard, per round.
    pub proposals_per_moved_shard: Option<Summary>,
    /// CPU every node's electd used from the spawn until settled, all
    /// together, and the joiner's share (ms), per round.
    pub cpu_ms: Option<Summary>,
    pub joiner_cpu_ms: Option<Summary>,
}

/// How a node leaves in a [`Leave`] round.
#[derive(Clone, Copy, Debug)]
enum How {
    Sigterm,
    KillElectd,
    KillNode,
}

/// ⌊0.95 n/k⌋ and ⌈1.05 n/k⌉, in integers.
pub fn bounds(n: u32, k: usize) -> (usize, usize) {
    let (n, k) = (n as usize, k.max(1));
    (95 * n / (100 * k), (105 * n).div_ceil(100 * k))
}

/// What node `node` answers at `/v1/shards?mine`.
async fn mine(node: &Node) -> Option<serde_json::Value> {
    let answer = node.get("/v1/shards?mine").await?;
    (answer.status == 200).then(|| serde_json::from_str(&answer.body).ok())?
}

/// Shards per node id, as one answer shows them.
fn loads(body: &serde_json::Value) -> Option<BTreeMap<String, usize>> {
    body["nodes"]
        .as_array()?
        .iter()
        .map(|n| Some((n["id"].as_str()?.to_owned(), n["leads"].as_u64()? as usize)))
        .collect()
}

/// Waits until every node of the cluster shows the same map (one etcd
/// revision), every shard led, each node leading between the bounds and
/// saying it leads what the map gives it. Returns the shards per node.
async fn settled(cluster: &Cluster, n: u32, limit: Duration) -> Option<BTreeMap<String, usize>> {
    let (lower, upper) = bounds(n, cluster.nodes.len());
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Some(map) = agree(cluster, lower, upper).await {
            return Some(map);
        }
        sleep(POLL).await;
    }
    None
}

async fn agree(cluster: &Cluster, lower: usize, upper: usize) -> Option<BTreeMap<String, usize>> {
    let mut seen: Option<(u64, BTreeMap<String, usize>)> = None;
    for node in &cluster.nodes {
        let body = mine(node).await?;
        let revision = body["revision"].as_u64()?;
        let map = loads(&body)?;
        let own = body["leads"].as_array()?.len();
        let ok = body["leaderless"] == 0
            && map.len() == cluster.nodes.len()
            && cluster.nodes.iter().all(|n| {
                map.get(&n.name)
                    .is_some_and(|&c| (lower..=upper).contains(&c))
            })
            && map.get(&node.name) == Some(&own);
        if !ok || seen.as_ref().is_some_and(|(r, _)| *r != revision) {
            return None;
        }
        seen = Some((revision, map));
    }
    seen.map(|(_, map)| map)
}

/// Waits until `survivor` shows every shard led by a node other than `gone`.
async fn led_without(survivor: &Node, gone: &str, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Some(body) = mine(survivor).await
            && body["leaderless"] == 0
            && loads(&body).is_some_and(|m| !m.contains_key(gone))
        {
            return true;
        }
        sleep(POLL).await;
    }
    false
}

/// The shards' intervals, each shard's by start.
fn by_shard(report: &Report) -> BTreeMap<u32, Vec<&Interval>> {
    let mut shards: BTreeMap<u32, Vec<&Interval>> = BTreeMap::new();
    for interval in &report.intervals {
        if let Some(shard) = interval.shard {
            shards.entry(shard).or_default().push(interval);
        }
    }
    for intervals in shards.values_mut() {
        intervals.sort_by_key(|i| i.start_ns);
    }
    shards
}

/// The first instant at or after `from` when all `n` shards have a
/// leader, by the journals.
fn all_led_from(report: &Report, n: u32, from: u64) -> Option<u64> {
    // (time, −1 for a start or +1 for an end, shard): a start sorts
    // before an end at the same instant, so a hand-over in one nanosecond
    // leaves no hole.
    let mut steps: Vec<(u64, i8, u32)> = Vec::new();
    for interval in &report.intervals {
        if let Some(shard) = interval.shard {
            steps.push((interval.start_ns, -1, shard));
            steps.push((interval.end_ns, 1, shard));
        }
    }
    steps.sort_unstable();
    let mut holders = vec![0u32; n as usize];
    let mut led = 0;
    let mut full_since = 0;
    for (t, step, shard) in steps {
        // Every shard led since `full_since`, and still so after `from`.
        if t > from && led == n {
            return Some(full_since.max(from));
        }
        let holder = holders.get_mut(shard as usize)?;
        if step < 0 {
            *holder += 1;
            if *holder == 1 {
                led += 1;
                full_since = t;
            }
        } else {
            *holder = holder.saturating_sub(1);
            if *holder == 0 {
                led -= 1;
            }
        }
    }
    None
}

/// Reads the journals until `done` finds what it needs (the journal
/// line of a take can trail the map by a moment), up to `limit`.
async fn journals_until<T>(
    cluster: &Cluster,
    limit: Duration,
    done: impl Fn(&Report) -> Option<T>,
) -> anyhow::Result<T> {
    let until = Instant::now() + limit;
    loop {
        let report = cluster.check().context("the journals")?;
        if let Some(found) = done(&report) {
            return Ok(found);
        }
        if Instant::now() >= until {
            bail!("the journals never showed it within {limit:?}");
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// One leave, as the journals show it.
struct Left {
    shards: usize,
    all_led_again_ms: f64,
    gaps: Vec<f64>,
    signal_to_acquired: Vec<f64>,
}

/// The shards node `id` led at `at`, and each one's next leader's start.
fn left(report: &Report, id: &str, at: u64) -> Option<Left> {
    let mut out = Left {
        shards: 0,
        all_led_again_ms: 0.0,
        gaps: Vec::new(),
        signal_to_acquired: Vec::new(),
    };
    for intervals in by_shard(report).values() {
        let Some(gone) = intervals
            .iter()
            .find(|i| i.id == id && i.start_ns <= at && i.end_ns >= at)
        else {
            continue;
        };
        let next = intervals
            .iter()
            .find(|i| i.start_ns >= gone.start_ns && i.id != id)?;
        out.shards += 1;
        out.gaps.push(ms(next.start_ns.saturating_sub(gone.end_ns)));
        let since = ms(next.start_ns.saturating_sub(at));
        out.signal_to_acquired.push(since);
        out.all_led_again_ms = out.all_led_again_ms.max(since);
    }
    Some(out)
}

/// Measures a run: start, idle, then `plan.rounds` rounds of a SIGTERM, a
/// kill -9 of electd, a kill -9 of a node and a join.
pub async fn measure(binary: &Path, etcd: &Etcd, plan: &Plan) -> anyhow::Result<Shards> {
    let endpoint = etcd.endpoint(0);
    let args = node_args("v3", plan.ttl_s, &endpoint, "shards").shards(plan.shards);
    let k = plan.nodes;
    let (lower, upper) = bounds(plan.shards, k);
    // Generous: a 2-core host shared by k nodes and etcd.
    let limit = Duration::from_secs(120) + Duration::from_secs(plan.ttl_s);
    let etcd_cpu = || etcd.pid(0).and_then(cpu).map_or(0, |c| c.ns);
    let etcd_before = etcd_cpu();
    let mut cluster = Cluster::start(binary, &args, &[], k).await;
    let started = cluster.started_ns;
    let map = settled(&cluster, plan.shards, limit)
        .await
        .context("the shards never settled within the bounds")?;
    let settled_seen_ms = ms(now_ns() - started);
    // Every electd's CPU since it started, and etcd's since just before.
    let start_cpu_ms = ms(cluster
        .nodes
        .iter()
        .filter_map(|n| cpu(n.electd_pid()))
        .map(|c| c.ns)
        .sum());
    let start_etcd_cpu_ms = ms(etcd_cpu().saturating_sub(etcd_before));
    let report = cluster.check().context("the journals")?;
    let all_led = all_led_from(&report, plan.shards, started).context("never all led")?;
    let last_move = report
        .intervals
        .iter()
        .filter(|i| i.shard.is_some())
        .map(|i| i.start_ns)
        .max()
        .unwrap_or(started);

    // Idle.
    let idle_from = now_ns();
    let proposals_before = proposals(etcd).await?;
    sleep(plan.idle).await;
    let proposals_after = proposals(etcd).await?;
    let idle_to = now_ns();
    let rss: Vec<f64> = cluster
        .nodes
        .iter()
        .map(|n| rss_kb(n.electd_pid()) as f64)
        .collect();
    let guardian_rss: Vec<f64> = cluster
        .nodes
        .iter()
        .map(|n| rss_kb(n.pid()) as f64)
        .collect();
    let report = cluster.check().context("the journals")?;
    let idle_moves = report
        .intervals
        .iter()
        .filter(|i| i.shard.is_some())
        .filter(|i| {
            (idle_from..idle_to).contains(&i.start_ns)
                || (i.reason.is_some() && (idle_from..idle_to).contains(&i.end_ns))
        })
        .count();

    let mut sigterm = Rounds::default();
    let mut kill_electd = Rounds::default();
    let mut kill_node = Rounds::default();
    let mut join = JoinRounds::default();
    for round in 0..plan.rounds {
        for (offset, how, into) in [
            (0, How::Sigterm, &mut sigterm),
            (1, How::KillElectd, &mut kill_electd),
            (2, How::KillNode, &mut kill_node),
        ] {
            let victim = (3 * round + offset) % k;
            eprintln!("    round {}: {how:?} of n{victim}", round + 1);
            into.push(leave(&mut cluster, etcd, plan, victim, how, limit).await?);
        }
        eprintln!("    round {}: a node joins", round + 1);
        join.push(join_one(&mut cluster, etcd, plan, &args, limit).await?);
    }
    let violations = cluster.check().context("the journals")?.violations;
    cluster.shut_down().await;

    let (joined_lower, _) = bounds(plan.shards, k + 1);
    Ok(Shards {
        shards: plan.shards,
        nodes: k,
        ttl_s: plan.ttl_s,
        lower,
        upper,
        all_led_ms: signed_ms(all_led, started),
        last_move_ms: signed_ms(last_move, started),
        settled_seen_ms,
        start_cpu_ms,
        start_etcd_cpu_ms,
        min_per_node: map.values().copied().min().unwrap_or(0),
        max_per_node: map.values().copied().max().unwrap_or(0),
        idle_seconds: ms(idle_to - idle_from) / 1e3,
        idle_proposals: proposals_after - proposals_before,
        idle_moves,
        idle_rss_kb: Summary::of(&rss),
        idle_guardian_rss_kb: Summary::of(&guardian_rss),
        sigterm: sigterm.summary(),
        kill_electd: kill_electd.summary(),
        kill_node: kill_node.summary(),
        join: join.summary(joined_lower, 1.1 * plan.shards as f64 / (k + 1) as f64),
        violations,
    })
}

/// CPU each node's electd has used so far (ns), by node index; 0 for a
/// node gone.
fn cpu_of(cluster: &Cluster) -> Vec<u64> {
    cluster
        .nodes
        .iter()
        .map(|n| cpu(n.electd_pid()).map_or(0, |c| c.ns))
        .collect()
}

/// The CPU the nodes used between two [`cpu_of`] (ms), all together; a
/// node only in `after` (a joiner) counts from its start.
fn cpu_between(before: &[u64], after: &[u64]) -> f64 {
    let used = after
        .iter()
        .enumerate()
        .map(|(i, &a)| a.saturating_sub(before.get(i).copied().unwrap_or(0)))
        .sum();
    ms(used)
}

/// `t − from` in ms, negative when `t` came first.
fn signed_ms(t: u64, from: u64) -> f64 {
    (t as f64 - from as f64) / 1e6
}

async fn proposals(etcd: &Etcd) -> anyhow::Result<f64> {
    etcd.proposals_committed(0)
        .await
        .context("etcd_server_proposals_committed_total")
}

/// The leaves of one kind, round by round.
#[derive(Default)]
struct Rounds {
    shards: Vec<usize>,
    all_led_again: Vec<f64>,
    gaps: Vec<f64>,
    signal_to_acquired: Vec<f64>,
    proposals: Vec<f64>,
    cpu_ms: Vec<f64>,
    led_election: Vec<bool>,
}

impl Rounds {
    fn push(&mut self, round: Round) {
        let Round {
            left,
            proposals,
            cpu_ms,
            led_election,
        } = round;
        self.cpu_ms.push(cpu_ms);
        self.led_election.push(led_election);
        self.shards.push(left.shards);
        self.all_led_again.push(left.all_led_again_ms);
        self.gaps.extend(left.gaps);
        self.signal_to_acquired.extend(left.signal_to_acquired);
        self.proposals.push(proposals);
    }

    fn summary(self) -> Leave {
        Leave {
            shards_per_round: self.shards,
            led_election: self.led_election,
            all_led_again_ms: Summary::of(&self.all_led_again),
            gap_ms: Summary::of(&self.gaps),
            signal_to_acquired_ms: Summary::of(&self.signal_to_acquired),
            proposals: Summary::of(&self.proposals),
            survivors_cpu_ms: Summary::of(&self.cpu_ms),
        }
    }
}

/// Node `victim` leaves the settled cluster `how`; once its shards are led
/// again, it is started again and the map settles.
async fn leave(
    cluster: &mut Cluster,
    etcd: &Etcd,
    plan: &Plan,
    victim: usize,
    how: How,
    limit: Duration,
) -> anyhow::Result<Round> {
    let id = cluster.nodes[victim].name.clone();
    // Looked up before the clock starts.
    cluster.nodes[victim].electd_pid();
    let survivor = (victim + 1) % cluster.nodes.len();
    // The election's own leader leaving writes a new leader record, which
    // every node hears; a follower leaving, only a deletion.
    let led_election = cluster.nodes[victim].is_leader().await;
    let before = proposals(etcd).await?;
    let cpu_before = cpu_of(cluster);
    let at = match how {
        How::Sigterm => {
            let at = now_ns();
            cluster.nodes[victim].terminate();
            at
        }
        How::KillElectd => cluster.nodes[victim].kill9_electd(),
        How::KillNode => cluster.nodes[victim].kill9(),
    };
    if !led_without(&cluster.nodes[survivor], &id, limit).await {
        bail!("{how:?} of {id}: its shards were not all led again within {limit:?}");
    }
    let after = proposals(etcd).await?;
    let mut cpu_after = cpu_of(cluster);
    // The victim's own CPU is not the survivors' work.
    cpu_after[victim] = cpu_before[victim];
    let cpu_ms = cpu_between(&cpu_before, &cpu_after);
    let left = journals_until(cluster, Duration::from_secs(10), |report| {
        left(report, &id, at)
    })
    .await
    .with_context(|| format!("{how:?} of {id}: a shard's next leader in the journals"))?;
    cluster.nodes[victim].wait_exit(limit).await;
    cluster.restart(victim).await;
    settled(cluster, plan.shards, limit)
        .await
        .with_context(|| format!("the shards never settled after {id} came back"))?;
    Ok(Round {
        left,
        proposals: after - before,
        cpu_ms,
        led_election,
    })
}

/// One leave's figures.
struct Round {
    left: Left,
    proposals: f64,
    cpu_ms: f64,
    led_election: bool,
}

/// The joins, round by round.
#[derive(Default)]
struct JoinRounds {
    reach: Vec<f64>,
    last_move: Vec<f64>,
    joiner_leads: Vec<usize>,
    moved: Vec<usize>,
    twice: Vec<usize>,
    elsewhere: Vec<usize>,
    gaps: Vec<f64>,
    proposals_per_moved: Vec<f64>,
    cpu_ms: Vec<f64>,
    joiner_cpu_ms: Vec<f64>,
}

/// One join, as the journals and etcd show it.
struct Joined {
    reach_ms: Option<f64>,
    last_move_ms: f64,
    joiner_leads: usize,
    moved: usize,
    twice: usize,
    elsewhere: usize,
    gaps: Vec<f64>,
    proposals: f64,
    cpu_ms: f64,
    joiner_cpu_ms: f64,
}

impl JoinRounds {
    fn push(&mut self, joined: Joined) {
        self.reach.extend(joined.reach_ms);
        self.last_move.push(joined.last_move_ms);
        self.joiner_leads.push(joined.joiner_leads);
        self.moved.push(joined.moved);
        self.twice.push(joined.twice);
        self.elsewhere.push(joined.elsewhere);
        self.gaps.extend(joined.gaps);
        self.cpu_ms.push(joined.cpu_ms);
        self.joiner_cpu_ms.push(joined.joiner_cpu_ms);
        if joined.moved > 0 {
            self.proposals_per_moved
                .push(joined.proposals / joined.moved as f64);
        }
    }

    fn summary(self, target: usize, move_budget: f64) -> Join {
        Join {
            target,
            move_budget,
            reach_target_ms: Summary::of(&self.reach),
            last_move_ms: Summary::of(&self.last_move),
            joiner_leads: self.joiner_leads,
            moved: self.moved,
            moved_twice: self.twice,
            moved_elsewhere: self.elsewhere,
            gap_ms: Summary::of(&self.gaps),
            proposals_per_moved_shard: Summary::of(&self.proposals_per_moved),
            cpu_ms: Summary::of(&self.cpu_ms),
            joiner_cpu_ms: Summary::of(&self.joiner_cpu_ms),
        }
    }
}

/// A (k+1)th node joins the settled cluster; once the map settles it
/// leaves again (SIGTERM) and the map settles over k.
async fn join_one(
    cluster: &mut Cluster,
    etcd: &Etcd,
    plan: &Plan,
    args: &NodeArgs,
    limit: Duration,
) -> anyhow::Result<Joined> {
    let (target, _) = bounds(plan.shards, cluster.nodes.len() + 1);
    let before = proposals(etcd).await?;
    let cpu_before = cpu_of(cluster);
    let (joiner, spawned) = cluster.add(args.clone());
    cluster.nodes[joiner].wait_serving().await;
    let map = settled(cluster, plan.shards, limit)
        .await
        .context("the shards never settled after a join")?;
    let after = proposals(etcd).await?;
    let cpu_after = cpu_of(cluster);
    let cpu_ms = cpu_between(&cpu_before, &cpu_after);
    let joiner_cpu_ms = ms(cpu_after[joiner]);
    let id = cluster.nodes[joiner].name.clone();
    let joiner_leads = map.get(&id).copied().unwrap_or(0);
    let joined = journals_until(cluster, Duration::from_secs(10), |report| {
        let mut taken: Vec<u64> = Vec::new();
        let (mut moved, mut twice, mut elsewhere) = (0, 0, 0);
        let mut gaps = Vec::new();
        for intervals in by_shard(report).values() {
            let after_spawn: Vec<&&Interval> =
                intervals.iter().filter(|i| i.start_ns > spawned).collect();
            if after_spawn.is_empty() {
                continue;
            }
            moved += 1;
            twice += usize::from(after_spawn.len() > 1);
            for new in after_spawn {
                if new.id == id {
                    taken.push(new.start_ns);
                } else {
                    elsewhere += 1;
                }
                if let Some(old) = intervals
                    .iter()
                    .filter(|i| i.start_ns < new.start_ns)
                    .max_by_key(|i| i.start_ns)
                    && old.reason == Some(EndReason::Transfer)
                {
                    gaps.push(ms(new.start_ns.saturating_sub(old.end_ns)));
                }
            }
        }
        // The joiner's journal can trail the map by a moment.
        if taken.len() < joiner_leads {
            return None;
        }
        taken.sort_unstable();
        Some(Joined {
            reach_ms: target
                .checked_sub(1)
                .and_then(|i| taken.get(i))
                .map(|&t| ms(t - spawned)),
            last_move_ms: taken.last().map_or(0.0, |&t| ms(t - spawned)),
            joiner_leads,
            moved,
            twice,
            elsewhere,
            gaps,
            proposals: after - before,
            cpu_ms,
            joiner_cpu_ms,
        })
    })
    .await
    .context("the joiner's acquisitions in the journals")?;
    cluster.remove_last(limit).await;
    settled(cluster, plan.shards, limit)
        .await
        .context("the shards never settled after the joiner left")?;
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issues_bounds() {
        assert_eq!(bounds(10_000, 20), (475, 525));
        assert_eq!(bounds(10_000, 21), (452, 500));
        assert_eq!(bounds(1_000, 5), (190, 210));
        assert_eq!(bounds(7, 3), (2, 3));
    }

    fn interval(id: &str, shard: u32, start_ns: u64, end_ns: u64) -> Interval {
        Interval {
            id: id.to_owned(),
            pid: 1,
            journal: None,
            term: start_ns,
            start_ns,
            end_ns,
            reason: None,
            shard: Some(shard),
        }
    }

    #[test]
    fn all_led_is_the_first_instant_every_shard_has_a_leader() {
        let report = Report {
            intervals: vec![
                interval("a", 0, 10, 50),
                interval("a", 1, 20, 30),
                // Shard 1 is leaderless from 30 to 40.
                interval("b", 1, 40, 100),
                interval("b", 0, 50, 100),
            ],
            violations: Vec::new(),
        };
        assert_eq!(all_led_from(&report, 2, 0), Some(20));
        assert_eq!(all_led_from(&report, 2, 25), Some(25));
        assert_eq!(all_led_from(&report, 2, 35), Some(40));
        assert_eq!(all_led_from(&report, 3, 0), None);
    }

    #[test]
    fn a_leave_gives_each_shard_its_gap() {
        let report = Report {
            intervals: vec![
                interval("a", 0, 10, 100),
                interval("b", 0, 103, 200),
                interval("a", 1, 10, 100),
                interval("c", 1, 110, 200),
                interval("b", 2, 10, 200),
            ],
            violations: Vec::new(),
        };
        let left = left(&report, "a", 100).expect("every shard led again");
        assert_eq!(left.shards, 2);
        assert_eq!(left.gaps, vec![3e-6, 10e-6]);
        assert_eq!(left.all_led_again_ms, 10e-6);
        let unled = Report {
            intervals: vec![interval("a", 0, 10, 100)],
            violations: Vec::new(),
        };
        assert!(super::left(&unled, "a", 100).is_none());
    }
}
