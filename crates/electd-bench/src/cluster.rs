//! Real electd processes for the latency scenarios, and what their journals
//! and etcd's own events say about when things happened.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::checker;
use harness::node::{Node, NodeArgs};
use harness::now_ns;
use tokio::time::{Instant, sleep};

/// The admin token (`ELECTD_ADMIN_TOKEN`) of the nodes that are asked to
/// resign, drain or undrain.
pub const TOKEN: &str = "bench-token";

/// The flags of every node of a measurement: one etcd endpoint, an
/// election of its own.
pub fn node_args(api: &str, ttl: u64, etcd: &str, election: &str) -> NodeArgs {
    NodeArgs::new()
        .api(api)
        .ttl(ttl)
        .etcd([etcd])
        .election(election)
}

/// How long after the moment of interest the journals are left unread:
/// the times come from the journals, and parsing them while a hand-over
/// runs would take CPU from the processes measured (two cores here).
const UNREAD: Duration = Duration::from_millis(50);

/// A node's `acquired`, as journalled.
#[derive(Clone, Copy, Debug)]
pub struct Acquired {
    /// Which node (its index).
    pub node: usize,
    /// When (`CLOCK_MONOTONIC` ns).
    pub t_ns: u64,
    /// Its term: etcd's revision of the write that made the leadership.
    pub term: u64,
}

/// `electd` nodes of one election on one etcd.
pub struct Cluster {
    dir: tempfile::TempDir,
    binary: PathBuf,
    env: Vec<(String, String)>,
    /// Each node's flags.
    args: Vec<NodeArgs>,
    pub nodes: Vec<Node>,
    retired: Vec<Node>,
    /// When the last of the first nodes was spawned (`CLOCK_MONOTONIC` ns).
    pub started_ns: u64,
}

impl Cluster {
    /// Starts `n` nodes with `args` (plus `--listen`, `--id`, `--journal`).
    pub async fn start(binary: &Path, args: &NodeArgs, env: &[(&str, &str)], n: usize) -> Cluster {
        Cluster::start_each(binary, env, &vec![args.clone(); n]).await
    }

    /// Starts one node per entry of `args`, each with its own flags (say,
    /// a `--priority`); node `i` is `n<i>`.
    pub async fn start_each(binary: &Path, env: &[(&str, &str)], args: &[NodeArgs]) -> Cluster {
        let mut cluster = Cluster {
            dir: tempfile::Builder::new()
                .prefix("electd-bench-")
                .tempdir()
                .expect("a temporary directory"),
            binary: binary.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            args: args.to_vec(),
            nodes: Vec::new(),
            retired: Vec::new(),
            started_ns: 0,
        };
        for i in 0..args.len() {
            let node = cluster.spawn(i);
            cluster.started_ns = now_ns();
            cluster.nodes.push(node);
        }
        for node in &cluster.nodes {
            node.wait_serving().await;
        }
        cluster
    }

    fn spawn(&self, i: usize) -> Node {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let name = format!("n{i}");
        Node::spawn_with_env(&self.binary, self.dir.path(), &name, &self.args[i], &env)
    }

    /// The index of the node whose id is `id` (`n<i>`).
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == id)
    }

    /// Stops every node as an operator would (SIGTERM: each releases its
    /// claim and revokes its lease), so that no lease of this cluster
    /// expires later, inside another measurement (a lease's expiry is a
    /// raft write, and a hundred of them a burst of work for etcd).
    pub async fn shut_down(mut self) {
        for node in &self.nodes {
            node.terminate();
        }
        for node in &mut self.nodes {
            node.wait_exit(Duration::from_secs(20)).await;
        }
    }

    /// Replaces node `i` (killed or exited) with a fresh process.
    pub async fn restart(&mut self, i: usize) {
        let node = self.spawn(i);
        node.wait_serving().await;
        let old = std::mem::replace(&mut self.nodes[i], node);
        self.retired.push(old);
    }

    /// Spawns one more node with `args` (node `n<len>`), without waiting
    /// for it to serve; returns its index and when it was spawned (ns).
    pub fn add(&mut self, args: NodeArgs) -> (usize, u64) {
        let i = self.nodes.len();
        self.args.push(args);
        let node = self.spawn(i);
        let spawned = now_ns();
        self.nodes.push(node);
        (i, spawned)
    }

    /// Stops the last node with SIGTERM, waits up to `limit` for it to
    /// exit, and takes it out of [`Cluster::nodes`] (its journal stays in
    /// [`Cluster::check`]).
    pub async fn remove_last(&mut self, limit: Duration) {
        let Some(mut node) = self.nodes.pop() else {
            return;
        };
        self.args.pop();
        node.terminate();
        node.wait_exit(limit).await;
        self.retired.push(node);
    }

    /// The journal checker over every node this cluster ran, the retired
    /// ones included: the leaderships (per shard with `--shards`), and any
    /// violation of the invariant.
    pub fn check(&self) -> Result<checker::Report, checker::CheckError> {
        let all = || self.nodes.iter().chain(&self.retired);
        // A node started again appends to its predecessor's journal.
        let journals: BTreeSet<&Path> = all().map(|n| n.journal.as_path()).collect();
        let journals: Vec<&Path> = journals.into_iter().collect();
        let deaths: HashMap<u32, u64> = all().flat_map(Node::deaths).collect();
        checker::check(&journals, &deaths)
    }

    /// The node that says it leads, waiting up to `limit`.
    pub async fn leader(&self, limit: Duration) -> Option<usize> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            for (i, node) in self.nodes.iter().enumerate() {
                if node.is_leader().await {
                    return Some(i);
                }
            }
            sleep(Duration::from_millis(5)).await;
        }
        None
    }

    /// Waits until every other node names `leader`, so a successor is queued.
    pub async fn all_follow(&self, leader: usize, limit: Duration) -> bool {
        let named = format!("port {}", self.nodes[leader].port);
        let until = Instant::now() + limit;
        while Instant::now() < until {
            let mut all = true;
            for (i, node) in self.nodes.iter().enumerate() {
                all &= i == leader || node.answer().await.is_some_and(|a| a.ends_with(&named));
            }
            if all {
                return true;
            }
            sleep(Duration::from_millis(5)).await;
        }
        false
    }

    /// The first `acquired` after `since` (ns) by a node other than `except`.
    pub async fn acquired_after(
        &self,
        since: u64,
        except: Option<usize>,
        limit: Duration,
    ) -> Option<Acquired> {
        let (node, record) = self
            .journalled_after(since, limit, |i, record| {
                Some(i) != except && record["event"] == "acquired"
            })
            .await?;
        Some(Acquired {
            node,
            t_ns: record["t_ns"].as_u64()?,
            term: record["term"].as_u64()?,
        })
    }

    /// The first `ended` after `since` (ns) that node `i` journalled: when, and why.
    pub async fn ended_after(
        &self,
        i: usize,
        since: u64,
        limit: Duration,
    ) -> Option<(u64, String)> {
        let (_, record) = self
            .journalled_after(since, limit, |j, record| {
                j == i && record["event"] == "ended"
            })
            .await?;
        Some((
            record["t_ns"].as_u64()?,
            record["reason"].as_str()?.to_owned(),
        ))
    }

    /// The earliest record after `since` (ns) that `matches` (node index,
    /// record), polling the journals for up to `limit` from [`UNREAD`]
    /// after `since`.
    async fn journalled_after(
        &self,
        since: u64,
        limit: Duration,
        matches: impl Fn(usize, &serde_json::Value) -> bool,
    ) -> Option<(usize, serde_json::Value)> {
        let until = Instant::now() + limit;
        let unread_until = since + UNREAD.as_nanos() as u64;
        sleep(Duration::from_nanos(unread_until.saturating_sub(now_ns()))).await;
        while Instant::now() < until {
            let mut first: Option<(usize, u64, serde_json::Value)> = None;
            for (i, node) in self.nodes.iter().enumerate() {
                for record in journal(&node.journal) {
                    if matches(i, &record)
                        && let Some(t) = record["t_ns"].as_u64()
                        && t > since
                        && first.as_ref().is_none_or(|(_, f, _)| t < *f)
                    {
                        first = Some((i, t, record));
                    }
                }
            }
            if let Some((i, _, record)) = first {
                return Some((i, record));
            }
            sleep(Duration::from_millis(2)).await;
        }
        None
    }

    /// Polls the `leader`'s `/v1/status` until its succession order (read
    /// in its current term: itself first) lists `n` candidates, each drained if
    /// and only if `drained` names it, unhealthy if and only if `unhealthy`
    /// names it; returns their ids in that order, or else the last order it
    /// saw.
    pub async fn queued(
        &self,
        leader: usize,
        n: usize,
        drained: &[usize],
        unhealthy: &[usize],
        limit: Duration,
    ) -> Result<Vec<String>, serde_json::Value> {
        let names = |nodes: &[usize]| -> Vec<&str> {
            nodes.iter().map(|&i| self.nodes[i].name.as_str()).collect()
        };
        let (drained, unhealthy) = (names(drained), names(unhealthy));
        let until = Instant::now() + limit;
        let mut seen = serde_json::Value::Null;
        while Instant::now() < until {
            let mut term = serde_json::Value::Null;
            if let Some(status) = self.nodes[leader].status().await {
                seen = status["candidates"].clone();
                term = status["term"].clone();
            }
            // The order is read at most every 0.5 s: one of this term.
            if let Some(candidates) = seen.as_array()
                && candidates.len() == n
                && candidates[0]["id"] == self.nodes[leader].name.as_str()
                && candidates[0]["leads"] == true
                && candidates[0]["term"] == term
                && !term.is_null()
                && candidates.iter().all(|c| {
                    let id = c["id"].as_str().unwrap_or_default();
                    c["drained"] == drained.contains(&id)
                        && (c["healthy"] == false) == unhealthy.contains(&id)
                })
                && let Some(ids) = candidates
                    .iter()
                    .map(|c| c["id"].as_str().map(str::to_owned))
                    .collect()
            {
                return Ok(ids);
            }
            sleep(Duration::from_millis(10)).await;
        }
        Err(seen)
    }

    /// The last deadline node `i` journalled (ns).
    pub fn last_deadline(&self, i: usize) -> Option<u64> {
        journal(&self.nodes[i].journal)
            .iter()
            .filter_map(|r| r["deadline_ns"].as_u64())
            .max()
    }
}

fn journal(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Records when etcd deletes (or expires) a key of the election, as seen by
/// a watcher of our own: `CLOCK_MONOTONIC` ns of each delete event.
#[derive(Clone, Default)]
pub struct Deletions(Arc<Mutex<Vec<u64>>>);

impl Deletions {
    /// The first deletion after `since`.
    pub fn after(&self, since: u64) -> Option<u64> {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter().copied().filter(|&t| t > since).min()
    }

    fn record(&self) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(now_ns());
    }

    /// Watches the v2 key `/v2/keys/<election>` for deletions and expiries.
    pub fn watch_v2(endpoint: String, election: String) -> Deletions {
        let deletions = Deletions::default();
        let seen = deletions.clone();
        tokio::spawn(async move {
            let http = harness::http().build().expect("an HTTP client");
            let url = format!("{endpoint}/v2/keys/{election}");
            let mut index: Option<u64> = None;
            loop {
                let mut req = http.get(&url).query(&[("wait", "true")]);
                if let Some(i) = index {
                    req = req.query(&[("waitIndex", i.to_string())]);
                }
                let Ok(resp) = req.send().await else {
                    sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(event) = resp.json::<serde_json::Value>().await else {
                    index = None;
                    continue;
                };
                if matches!(
                    event["action"].as_str(),
                    Some("expire" | "delete" | "compareAndDelete")
                ) {
                    seen.record();
                }
                index = event["node"]["modifiedIndex"].as_u64().map(|i| i + 1);
            }
        });
        deletions
    }

    /// Watches every key under the v3 `prefix` for deletions.
    pub fn watch_v3(endpoint: String, prefix: String) -> Deletions {
        let deletions = Deletions::default();
        let seen = deletions.clone();
        tokio::spawn(async move {
            loop {
                let Ok(mut client) = etcd_client::Client::connect([endpoint.as_str()], None).await
                else {
                    sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let options = etcd_client::WatchOptions::new().with_prefix();
                let Ok(mut stream) = client.watch(prefix.as_bytes(), Some(options)).await else {
                    sleep(Duration::from_millis(100)).await;
                    continue;
                };
                while let Ok(Some(response)) = stream.message().await {
                    for event in response.events() {
                        if event.event_type() == etcd_client::EventType::Delete {
                            seen.record();
                        }
                    }
                }
            }
        });
        deletions
    }
}

/// Every event under a v3 prefix as a watcher of the bench's own sees it.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<Event>>>);

/// One event as the bench's watcher saw it.
#[derive(Clone, Debug)]
pub struct Event {
    /// Its arrival (`CLOCK_MONOTONIC` ns).
    pub at: u64,
    /// A put (or else a delete).
    pub put: bool,
    pub key: String,
    /// The revision of the write it comes from.
    pub revision: i64,
}

impl Events {
    /// The arrival of the first event after `since` whose (is a put, key) `matches`.
    pub fn first_after(&self, since: u64, matches: impl Fn(bool, &str) -> bool) -> Option<u64> {
        self.first_event_after(since, matches).map(|e| e.at)
    }

    /// The first event to arrive after `since` whose (is a put, key) `matches`.
    pub fn first_event_after(
        &self,
        since: u64,
        matches: impl Fn(bool, &str) -> bool,
    ) -> Option<Event> {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter()
            .filter(|e| e.at > since && matches(e.put, &e.key))
            .min_by_key(|e| e.at)
            .cloned()
    }

    /// Watches every key under the v3 `prefix`; returns once the watch is
    /// created, so nothing after that is missed.
    pub async fn watch_v3(endpoint: String, prefix: String) -> anyhow::Result<Events> {
        let events = Events::default();
        let seen = events.clone();
        let mut client = etcd_client::Client::connect([endpoint.as_str()], None).await?;
        let options = etcd_client::WatchOptions::new().with_prefix();
        let mut stream = client.watch(prefix.as_bytes(), Some(options)).await?;
        tokio::spawn(async move {
            let _keep = client;
            while let Ok(Some(response)) = stream.message().await {
                let at = now_ns();
                let mut seen = seen.0.lock().unwrap_or_else(|e| e.into_inner());
                for event in response.events() {
                    let put = event.event_type() == etcd_client::EventType::Put;
                    let (key, revision) = event.kv().map_or_else(Default::default, |kv| {
                        (
                            String::from_utf8_lossy(kv.key()).into_owned(),
                            kv.mod_revision(),
                        )
                    });
                    seen.push(Event {
                        at,
                        put,
                        key,
                        revision,
                    });
                }
            }
        });
        Ok(events)
    }
}
