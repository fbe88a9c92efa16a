//! `electd-demo`: a live local cluster. Starts etcd (v2 enabled, free
//! ports, a temporary data dir) and three `electd` nodes, shows what each
//! answers, then kills the leader's electd (its guardian releases at once),
//! the leader's whole node (the TTL), and hands over with SIGTERM, showing
//! who took over and how long each took. Stops everything on Ctrl-C,
//! SIGTERM, once nobody reads its output, or after `--duration`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use harness::etcd::Etcd;
use harness::node::{Node, NodeArgs};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(name = "electd-demo", about)]
struct Args {
    /// The electd binary [default: next to this program].
    #[arg(long)]
    electd: Option<PathBuf>,
    /// etcd API for the nodes.
    #[arg(long, default_value = "v3", value_parser = ["v2", "v3"])]
    api: String,
    /// Lease TTL in seconds.
    #[arg(long, default_value_t = 2)]
    ttl: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 60)]
    duration: u64,
}

/// `println!` that ends the demo, its nodes and etcd stopped by their
/// guards, when nobody reads its output any more (`| head`), instead of
/// panicking, which in a release build (`panic = "abort"`) would leave
/// them running.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*).context("nobody reads the demo's output")?
    }};
}

struct Cluster {
    dir: tempfile::TempDir,
    binary: PathBuf,
    args: NodeArgs,
    nodes: Vec<Node>,
    _etcd: Etcd,
}

impl Cluster {
    fn start_node(&mut self, i: usize) {
        let (binary, dir, name) = (&self.binary, self.dir.path(), format!("node{i}"));
        if i < self.nodes.len() {
            // On its old port, so that a browser's open page finds it again.
            let port = self.nodes[i].port;
            self.nodes[i] = Node::spawn_on(binary, dir, &name, &self.args, &[], port);
        } else {
            self.nodes.push(Node::spawn(binary, dir, &name, &self.args));
        }
    }

    async fn show(&self) -> anyhow::Result<()> {
        for node in &self.nodes {
            let answer = node
                .answer()
                .await
                .unwrap_or_else(|| "(not answering)".into());
            say!("  {} {:<22} {}", node.name, node.url(), answer);
        }
        Ok(())
    }

    async fn leader(&self, except: Option<usize>) -> Option<usize> {
        for (i, node) in self.nodes.iter().enumerate() {
            if Some(i) != except && node.is_leader().await {
                return Some(i);
            }
        }
        None
    }

    /// Waits (bounded) until every node names `leader`, so the first display is settled.
    async fn wait_named(&self, leader: usize, limit: Duration) {
        let named = format!("port {}", self.nodes[leader].port);
        let started = Instant::now();
        while started.elapsed() < limit {
            let mut all = true;
            for (i, node) in self.nodes.iter().enumerate() {
                let answer = node.answer().await.unwrap_or_default();
                all &= i == leader || answer.ends_with(&named);
            }
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn wait_leader(
        &self,
        except: Option<usize>,
        limit: Duration,
    ) -> Option<(usize, Duration)> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(i) = self.leader(except).await {
                return Some((i, started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }
}

/// Fails the leader with `fault` (which says when, in `CLOCK_MONOTONIC`
/// ns), shows who took over and how long after, and starts the old leader
/// again as a follower; returns the new leader.
async fn fail(
    cluster: &mut Cluster,
    leader: usize,
    limit: Duration,
    after: &str,
    fault: impl FnOnce(&mut Node) -> u64,
) -> anyhow::Result<usize> {
    let at = fault(&mut cluster.nodes[leader]);
    let (next, took) = cluster
        .wait_leader(Some(leader), limit)
        .await
        .context("nobody took over")?;
    let took = acquired_since(&cluster.nodes[next], at).unwrap_or(took);
    let took = if took < Duration::from_secs(1) {
        format!("{:.1} ms", took.as_secs_f64() * 1e3)
    } else {
        format!("{:.3} s", took.as_secs_f64())
    };
    say!(
        "{} took over {took} after {after}:",
        cluster.nodes[next].name
    );
    cluster.show().await?;
    cluster.nodes[leader]
        .wait_exit(Duration::from_secs(5))
        .await;
    cluster.start_node(leader);
    say!(
        "restarted {} as a follower, on its port again",
        cluster.nodes[leader].name
    );
    Ok(next)
}

/// From `since` (`CLOCK_MONOTONIC` ns) to `node`'s last `acquired`, as its
/// journal says: what polling HTTP would blur by its own round trips.
fn acquired_since(node: &Node, since: u64) -> Option<Duration> {
    let text = std::fs::read_to_string(&node.journal).ok()?;
    let at = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["event"] == "acquired")
        .filter_map(|r| r["t_ns"].as_u64())
        .max()?;
    Some(Duration::from_nanos(at.checked_sub(since)?))
}

fn electd_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(path) => path,
        None => std::env::current_exe()
            .context("cannot find this program's path")?
            .with_file_name("electd"),
    };
    if !path.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p electd) or pass --electd",
            path.display()
        );
    }
    Ok(path)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = electd_binary(args.electd)?;
    // Before anything is started: a signal that came while etcd or a node
    // was starting would otherwise kill the demo by default, leaving them.
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    say!("starting etcd (v2 enabled) on a free loopback port...");
    let etcd = Etcd::single().await;
    say!("etcd at {}", etcd.endpoint(0));
    let node_args = NodeArgs::new()
        .api(&args.api)
        .ttl(args.ttl)
        .etcd([etcd.endpoint(0)]);
    let mut cluster = Cluster {
        dir: tempfile::tempdir()?,
        binary,
        args: node_args,
        nodes: Vec::new(),
        _etcd: etcd,
    };
    for i in 0..3 {
        cluster.start_node(i);
    }
    say!(
        "three electd nodes, --api {} --ttl {}; logs and journals in {}",
        args.api,
        args.ttl,
        cluster.dir.path().display()
    );
    let run = demo(&mut cluster, args.ttl);
    let limit = tokio::time::sleep(Duration::from_secs(args.duration));
    tokio::select! {
        result = run => result?,
        _ = interrupt.recv() => say!("\nCtrl-C"),
        _ = terminate.recv() => say!("\nSIGTERM"),
        _ = limit => say!("\n{} s are up", args.duration),
    }
    say!("stopping every node and etcd...");
    drop(cluster);
    say!("stopped.");
    Ok(())
}

async fn demo(cluster: &mut Cluster, ttl: u64) -> anyhow::Result<()> {
    let limit = Duration::from_secs(ttl + 10);
    let (mut leader, took) = cluster
        .wait_leader(None, limit)
        .await
        .context("no leader was elected")?;
    say!(
        "\n{} leads after {:.0} ms. What each node says (GET /):",
        cluster.nodes[leader].name,
        took.as_secs_f64() * 1e3
    );
    cluster.wait_named(leader, limit).await;
    cluster.show().await?;
    let urls: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("{}/ui", n.url()))
        .collect();
    say!(
        "\nSee it live in a browser: any node's web view ({}), or in a terminal: \
         target/release/electctl --node {} list -w",
        urls.join(", "),
        cluster.nodes[(leader + 1) % cluster.nodes.len()].url()
    );
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        say!(
            "\nkill -9 {} (the leader's electd, pid {}; its host lives on): its guardian \
             (pid {}) learns of the death from the kernel, kills what electd left and releases \
             the lease at once...",
            cluster.nodes[leader].name,
            cluster.nodes[leader].electd_pid(),
            cluster.nodes[leader].pid()
        );
        leader = fail(
            cluster,
            leader,
            limit,
            &format!("the crash (TTL {ttl} s)"),
            |n| n.kill9_electd(),
        )
        .await?;

        tokio::time::sleep(Duration::from_secs(2)).await;
        say!(
            "\nkill -9 {} (the leader's guardian, pid {}, and electd with it: a whole host \
             dies): nobody is left to release, so the others wait for its {ttl} s lease to \
             expire...",
            cluster.nodes[leader].name,
            cluster.nodes[leader].pid()
        );
        leader = fail(
            cluster,
            leader,
            limit,
            &format!("the crash (TTL {ttl} s)"),
            |n| n.kill9(),
        )
        .await?;

        tokio::time::sleep(Duration::from_secs(2)).await;
        say!(
            "\nkill -TERM {} (the leader): it resigns and hands over at once...",
            cluster.nodes[leader].name
        );
        leader = fail(cluster, leader, limit, "SIGTERM", |n| {
            let at = harness::now_ns();
            n.terminate();
            at
        })
        .await?;
    }
}
