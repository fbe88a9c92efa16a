//! A run: one etcd (or cluster), some electd nodes, their journals.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::checker::{Report, check};
use harness::etcd::{Etcd, EtcdOptions};
use harness::eventually;
use harness::node::{Node, NodeArgs};
use harness::proxy::FaultProxy;
use tempfile::TempDir;

/// Held by tests whose measurements (request intervals, renewal gaps) must
/// not share two cores with another test's dozen processes.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

pub fn electd() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_electd"))
}

pub struct Run {
    pub dir: TempDir,
    pub etcd: Etcd,
    pub nodes: Vec<Node>,
    pub api: &'static str,
    pub ttl: u64,
    /// Every journal this run wrote, and every SIGKILL, for the checker.
    journals: Vec<PathBuf>,
    deaths: HashMap<u32, u64>,
    /// Processes replaced by a restart, kept (and so not killed) until the run ends.
    retired: Vec<Node>,
    /// With [`Run::faulty`], each node reaches every etcd member through its own proxies.
    links: Option<HashMap<String, Vec<FaultProxy>>>,
}

impl Run {
    pub async fn new(api: &'static str, ttl: u64, nodes: usize) -> Run {
        Run::with_etcd(Etcd::single().await, api, ttl, nodes).await
    }

    pub async fn cluster(api: &'static str, ttl: u64, nodes: usize) -> Run {
        let etcd = Etcd::start(EtcdOptions {
            members: 3,
            peer_proxies: true,
            ..EtcdOptions::default()
        })
        .await;
        Run::with_etcd(etcd, api, ttl, nodes).await
    }

    pub async fn with_etcd(etcd: Etcd, api: &'static str, ttl: u64, nodes: usize) -> Run {
        let mut run = Run {
            dir: tempfile::Builder::new()
                .prefix("electd-run-")
                .tempdir()
                .expect("a temporary directory"),
            etcd,
            nodes: Vec::new(),
            api,
            ttl,
            journals: Vec::new(),
            deaths: HashMap::new(),
            retired: Vec::new(),
            links: None,
        };
        run.spawn_nodes(nodes).await;
        run
    }

    /// Like [`Run::with_etcd`], with a fault proxy between each node and each etcd member.
    pub async fn faulty(etcd: Etcd, api: &'static str, ttl: u64, nodes: usize) -> Run {
        let mut run = Run::with_etcd(etcd, api, ttl, 0).await;
        run.links = Some(HashMap::new());
        run.spawn_nodes(nodes).await;
        run
    }

    async fn spawn_nodes(&mut self, nodes: usize) {
        let run = self;
        for i in 0..nodes {
            run.spawn(&format!("n{i}"), NodeArgs::new());
        }
        for node in &run.nodes {
            node.wait_serving().await;
        }
    }

    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl)
    }

    /// `own` with the run's `--api`, `--ttl` and `--etcd`.
    pub fn args(&self, own: NodeArgs) -> NodeArgs {
        own.api(self.api).ttl(self.ttl).etcd(self.etcd.endpoints())
    }

    /// Starts a node with the run's flags and its `own`; returns its index.
    pub fn spawn(&mut self, name: &str, own: NodeArgs) -> usize {
        self.spawn_with_env(name, own, &[])
    }

    /// Starts a node with extra environment variables; returns its index.
    pub fn spawn_with_env(&mut self, name: &str, own: NodeArgs, env: &[(&str, &str)]) -> usize {
        let mut args = self.args(own);
        if let Some(links) = &mut self.links {
            let proxies = links.entry(name.to_owned()).or_insert_with(|| {
                let targets: Vec<std::net::SocketAddr> = self
                    .etcd
                    .endpoints()
                    .iter()
                    .map(|e| {
                        e.trim_start_matches("http://")
                            .parse()
                            .expect("a loopback endpoint")
                    })
                    .collect();
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(async {
                        let mut proxies = Vec::new();
                        for target in targets {
                            proxies.push(FaultProxy::start(target).await);
                        }
                        proxies
                    })
                })
            });
            args = args.etcd(proxies.iter().map(FaultProxy::url));
        }
        let node = Node::spawn_with_env(electd(), self.dir.path(), name, &args, env);
        if !self.journals.contains(&node.journal) {
            self.journals.push(node.journal.clone());
        }
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Replaces node `i` (killed or exited) with a new process of the same
    /// name, journal and arguments given.
    pub fn restart(&mut self, i: usize, own: NodeArgs, env: &[(&str, &str)]) {
        let name = self.nodes[i].name.clone();
        self.deaths.extend(self.nodes[i].deaths());
        let index = self.spawn_with_env(&name, own, env);
        let node = self.nodes.remove(index);
        let old = std::mem::replace(&mut self.nodes[i], node);
        self.retired.push(old);
    }

    /// The proxies between node `i` and etcd (one per member).
    pub fn link(&self, i: usize) -> &[FaultProxy] {
        let links = self.links.as_ref().expect("a faulty run");
        &links[&self.nodes[i].name]
    }

    /// `kill -9` of node `i`'s guardian, which takes electd with it: the
    /// lease runs out, as when a whole host dies.
    pub fn kill9(&mut self, i: usize) -> u64 {
        let at = self.nodes[i].kill9();
        self.deaths.extend(self.nodes[i].deaths());
        at
    }

    /// `kill -9` of node `i`'s electd only, its host alive: its guardian
    /// releases the election at once.
    pub fn kill9_electd(&mut self, i: usize) -> u64 {
        let at = self.nodes[i].kill9_electd();
        self.deaths.extend(self.nodes[i].deaths());
        at
    }

    /// Node `i`'s term, as its `/v1/status` says.
    pub async fn term(&self, i: usize) -> u64 {
        self.nodes[i].status().await.expect("a status")["term"]
            .as_u64()
            .expect("a term")
    }

    pub fn alive(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].killed_at.is_none())
            .collect()
    }

    /// Indexes of the nodes that say they lead now.
    pub async fn leaders(&self, among: &[usize]) -> Vec<usize> {
        let mut leaders = Vec::new();
        for &i in among {
            if self.nodes[i].is_leader().await {
                leaders.push(i);
            }
        }
        leaders
    }

    /// Waits until exactly one of `among` leads and the others name its port.
    pub async fn sole_leader_among(&self, among: &[usize], limit: Duration) -> usize {
        eventually(limit, "exactly one leader that the others name", || async {
            let mut leader = None;
            let mut answers = Vec::new();
            for &i in among {
                let answer = self.nodes[i].answer().await?;
                if answer == "I am the leader" {
                    if leader.is_some() {
                        return None;
                    }
                    leader = Some(i);
                }
                answers.push((i, answer));
            }
            let leader = leader?;
            let named = format!("the leader is on port {}", self.nodes[leader].port);
            answers
                .iter()
                .all(|(i, a)| *i == leader || a.ends_with(&named))
                .then_some(leader)
        })
        .await
    }

    pub async fn sole_leader(&self, limit: Duration) -> usize {
        let alive = self.alive();
        self.sole_leader_among(&alive, limit).await
    }

    pub fn report(&self) -> Report {
        check(&self.journals, &self.deaths).expect("journals are well-formed")
    }

    /// Every fault test ends here.
    pub fn assert_safe(&self) -> Report {
        let report = self.report();
        report.assert_safe();
        report
    }

    /// `(term, t_ns)` of node `i`'s last `acquired`.
    pub fn last_acquired(&self, i: usize) -> Option<(u64, u64)> {
        self.journal(i)
            .into_iter()
            .rfind(|r| r["event"] == "acquired")
            .and_then(|r| Some((r["term"].as_u64()?, r["t_ns"].as_u64()?)))
    }

    /// The time from `since` to node `i`'s last `acquired`.
    pub fn took(&self, i: usize, since: u64) -> Duration {
        let (_, at) = self.last_acquired(i).expect("an acquisition");
        Duration::from_nanos(at.saturating_sub(since))
    }

    /// The journal lines of node `i`, as JSON.
    pub fn journal(&self, i: usize) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.nodes[i].journal)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// How long a test waits for what it expects, beyond the TTLs it allows for.
pub const SLACK: Duration = Duration::from_secs(8);

/// Waits until `node`'s `/healthz` is 503 and contains every one of `words`.
pub async fn unhealthy(node: &Node, words: &[&str]) -> String {
    let what = format!("{}'s /healthz to say {words:?}", node.name);
    eventually(SLACK, &what, || async {
        let h = node.get("/healthz").await?;
        (h.status == 503 && words.iter().all(|w| h.body.contains(w))).then_some(h.body)
    })
    .await
}

/// The problem was logged as a warning once, however often it was retried:
/// never twice in a row without another warning between (under load a
/// request may also time out, a second problem, and the first is then new
/// again when it comes back).
pub fn warned_once(node: &Node, phrase: &str) {
    let output = node.output();
    let warnings: Vec<bool> = output
        .lines()
        .filter(|l| l.contains("WARN"))
        .map(|l| l.contains(phrase))
        .collect();
    let said = warnings.iter().filter(|&&is| is).count();
    let repeated = warnings.windows(2).any(|w| w[0] && w[1]);
    assert!(
        said >= 1 && !repeated,
        "{}: {phrase:?} warned {said} times, repeated: {repeated}:\n{output}",
        node.name
    );
}

/// `name{labels} value` → value, for the lines of an exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == series).then(|| value.parse().ok()).flatten()
    })
}

/// `electd_etcd_requests_total` of node `i` for `op`, answered or not. A
/// v3 follower's full read of the election is a `range` followed by a new
/// `watch`; a count of the keys (the quiet queue's) is a `range` alone.
pub async fn requests(run: &Run, i: usize, op: &str) -> u64 {
    let metrics = run.nodes[i].get("/metrics").await.expect("metrics").body;
    let label = format!("op=\"{op}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("electd_etcd_requests_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

impl Drop for Run {
    fn drop(&mut self) {
        harness::keep_if_failing(self.dir.path());
    }
}

/// Defines one test per API from a scenario `async fn(api: &'static str)`.
macro_rules! both_apis {
    ($($scenario:ident),* $(,)?) => {
        mod v2 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario("v2").await;
                }
            )*
        }
        mod v3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario("v3").await;
                }
            )*
        }
    };
}
