//! The fleet: electd nodes started and restarted with the flags the soak
//! draws for them (priority, preemption, `--drained`), each reaching etcd
//! through fault proxies of its own, with a health endpoint of its own.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use harness::app::{HealthSwitch, Mode};
use harness::etcd::Etcd;
use harness::node::{Node, NodeArgs};
use harness::now_ns;
use harness::procs;
use harness::proxy::FaultProxy;
use rand::RngExt;
use rand::rngs::StdRng;

/// The admin token of every node (`ELECTD_ADMIN_TOKEN`; loopback only).
pub const ADMIN_TOKEN: &str = "electd-chaos-admin-token";

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
pub const PREEMPT_AFTER: Duration = Duration::from_secs(1);

/// The priorities a v3 node draws from at each start: ties, and ranks apart.
pub const PRIORITIES: [i64; 5] = [0, 0, 1, 5, 10];

/// The shards once the faults are over ([`Soak::shards_settle`]).
pub struct ShardsAtEnd {
    /// How many shards some node led at the last look.
    pub led: usize,
    /// How long after the faults every shard was led, if it was.
    pub all_within: Option<Duration>,
}

pub struct Soak {
    pub dir: PathBuf,
    pub binary: PathBuf,
    /// Every node's `--api` and `--ttl`.
    pub node_args: NodeArgs,
    pub exec: Option<Vec<String>>,
    pub etcd: Etcd,
    pub nodes: Vec<Node>,
    pub links: Vec<Vec<FaultProxy>>,
    pub retired: Vec<Node>,
    pub journals: Vec<PathBuf>,
    pub ticks: Vec<(String, PathBuf)>,
    pub deaths: std::collections::HashMap<u32, u64>,
    /// Whether the nodes speak v3 (priorities, preemption, `?to=`).
    pub v3: bool,
    /// `--shards N` of every node (in `node_args` too).
    pub shards: Option<u32>,
    /// The nodes' lease TTL.
    pub ttl: Duration,
    /// Each node's health endpoint, kept across its restarts (the app
    /// beside it is as broken after electd restarts as before), and what
    /// it answers now.
    pub health: Vec<HealthSwitch>,
    pub health_mode: Vec<Mode>,
    /// Whether each node is drained (a restart undrains, unless it starts
    /// with `--drained`).
    pub drained: Vec<bool>,
    /// Each node's priority and whether it preempts, as of its last start.
    pub priority: Vec<i64>,
    pub preempt: Vec<bool>,
    /// Draws each start's priority, preemption and `--drained`: a stream
    /// apart from the schedule's, from the same seed.
    pub config_rng: StdRng,
    /// For the admin endpoints (a long timeout: a drained leader answers
    /// once its command has stopped and it has handed over).
    pub admin: reqwest::Client,
    /// Each admin answer (`what -> status error`) and sub-outcome, counted.
    pub outcomes: BTreeMap<String, u32>,
    /// Admin answers the issue does not allow.
    pub unexpected: Vec<String>,
    /// The schedule as it ran, for reading a kept run's logs against.
    pub fault_log: std::fs::File,
    pub started: u64,
}

impl Soak {
    pub fn spawn(&mut self, i: usize) {
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
        // electd refuses --preempt with --shards: a preemption would give
        // up the lease every shard of the node is bound to. (Drawn all the
        // same, so that a seed's other draws stay as they were.)
        if self.shards.is_some() {
            preempt = false;
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
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill9();
        self.deaths.extend(self.nodes[i].deaths());
    }

    /// kill -9 of node `i`'s electd alone: its guardian releases, then
    /// exits with it (kill -9 of the node if it has not within 10 s).
    pub async fn kill_electd(&mut self, i: usize) {
        self.nodes[i].kill9_electd();
        self.deaths.extend(self.nodes[i].deaths());
        if self.nodes[i]
            .wait_exit(Duration::from_secs(10))
            .await
            .is_none()
        {
            self.kill(i);
        }
    }

    /// SIGTERM to node `i`, then waits for it to exit (kill -9 if it has
    /// not within 10 s).
    pub async fn terminate(&mut self, i: usize) {
        self.nodes[i].terminate();
        self.wait_gone(i).await;
    }

    /// Waits for node `i`, signalled already, to exit (kill -9 if it has
    /// not within 10 s).
    pub async fn wait_gone(&mut self, i: usize) {
        if self.nodes[i]
            .wait_exit(Duration::from_secs(10))
            .await
            .is_none()
        {
            self.kill(i);
        }
    }

    /// Waits up to `limit` for node `i` to answer HTTP; whether it did.
    pub async fn answering(&self, i: usize, limit: Duration) -> bool {
        let until = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < until {
            if self.nodes[i].get("/").await.is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// With `--shards`: the shards node `i` says it leads now (`leads` of
    /// `/v1/shards?mine`); `None` when it does not answer.
    pub async fn shards_led_by(&self, i: usize) -> Option<Vec<u32>> {
        let answer = self.nodes[i].get("/v1/shards?mine").await?;
        let body: serde_json::Value = serde_json::from_str(&answer.body).ok()?;
        body["leads"].as_array().map(|leads| {
            leads
                .iter()
                .filter_map(|k| k.as_u64().and_then(|k| u32::try_from(k).ok()))
                .collect()
        })
    }

    /// With `--shards`, once the faults are over: waits up to `limit` until
    /// every one of `count` shards is led by some node (as the nodes say,
    /// each asked in turn); how many were, and how soon all were.
    pub async fn shards_settle(&self, count: u32, limit: Duration) -> ShardsAtEnd {
        let asked = tokio::time::Instant::now();
        loop {
            let mut led = std::collections::BTreeSet::new();
            for i in 0..self.nodes.len() {
                led.extend(self.shards_led_by(i).await.unwrap_or_default());
            }
            let all = led.len() == count as usize;
            if all || asked.elapsed() >= limit {
                return ShardsAtEnd {
                    led: led.len(),
                    all_within: all.then(|| asked.elapsed()),
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// With `--shards`: the node that says it leads the most shards, and
    /// how many; `None` when none leads any.
    pub async fn busiest(&self) -> Option<(usize, usize)> {
        let mut busiest = None;
        for i in 0..self.nodes.len() {
            let led = self.shards_led_by(i).await.map_or(0, |l| l.len());
            if led > 0 && busiest.is_none_or(|(_, most)| led > most) {
                busiest = Some((i, led));
            }
        }
        busiest
    }

    /// A line of the fault log, stamped with the time into the faults.
    pub fn note(&mut self, line: &str) {
        let at = now_ns().saturating_sub(self.started) as f64 / 1e9;
        let _ = writeln!(self.fault_log, "{at:.3} s: {line}");
    }

    pub fn count(&mut self, what: &str) {
        *self.outcomes.entry(what.to_owned()).or_default() += 1;
    }

    pub async fn leader(&self) -> Option<usize> {
        for (i, node) in self.nodes.iter().enumerate() {
            if node.is_leader().await {
                return Some(i);
            }
        }
        None
    }

    /// The `--exec` watchdog of node `i` (its live child), if it runs one.
    pub fn watchdog(&self, i: usize) -> Option<u32> {
        procs::children(self.nodes[i].electd_pid())
            .into_iter()
            .find(|p| !p.zombie())
            .map(|p| p.pid)
    }

    /// The highest term floor any node holds: what etcd's revision must
    /// pass for the election to go on after etcd lost its history.
    pub async fn highest_floor(&self) -> u64 {
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

    pub fn link(&self, i: usize, apply: impl Fn(&FaultProxy)) {
        for proxy in &self.links[i] {
            apply(proxy);
        }
    }

    /// The node `offset` picks other than `n`.
    pub fn other(&self, n: usize, offset: usize) -> usize {
        (n + 1 + offset) % self.nodes.len()
    }

    /// Stops every node in order (healed, woken, SIGTERM; kill -9 past
    /// `ttl` + 10 s), every death recorded for the checker.
    pub async fn stop(&mut self, ttl: Duration) {
        for i in 0..self.nodes.len() {
            self.link(i, FaultProxy::heal);
            self.nodes[i].resume();
            self.nodes[i].terminate();
        }
        for node in &mut self.nodes {
            if node
                .wait_exit(ttl + Duration::from_secs(10))
                .await
                .is_none()
            {
                node.kill9();
                self.deaths.extend(node.deaths());
            }
        }
        for node in self.nodes.iter().chain(&self.retired) {
            self.deaths.extend(node.deaths());
        }
    }
}
