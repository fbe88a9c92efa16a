//! Real etcd and electd processes for electctl to talk to, and electctl
//! run against them.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::etcd::Etcd;
use harness::eventually;
use harness::node::{Node, NodeArgs};
use harness::process::Owned;
use serde_json::Value;
use tempfile::TempDir;

pub const SLACK: Duration = Duration::from_secs(20);
pub const TOKEN: &str = "t0ken-for-electctl";

/// An election of real electd nodes on one etcd, each with the admin
/// token, and a token file for electctl.
pub struct Cluster {
    /// v2 lists the leader only; v3 every candidate.
    lists_all: bool,
    pub dir: TempDir,
    pub etcd: Etcd,
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// `names` campaign; with `admin_port`, each serves its admin endpoints
    /// on a port of its own (`--admin-listen`).
    pub async fn start(api: &str, names: &[&str], admin_port: bool) -> Cluster {
        Cluster::start_with(api, names, admin_port, NodeArgs::new()).await
    }

    /// As [`Cluster::start`], each node with `own` arguments besides.
    pub async fn start_with(api: &str, names: &[&str], admin_port: bool, own: NodeArgs) -> Cluster {
        let etcd = Etcd::single().await;
        let dir = tempfile::Builder::new()
            .prefix("electctl-")
            .tempdir()
            .expect("a temporary directory");
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).expect("the token file");
        std::fs::write(dir.path().join("wrong"), "not-the-token").expect("a wrong token file");
        let electd = harness::workspace_binary("electd", "electd");
        let nodes: Vec<Node> = names
            .iter()
            .map(|name| {
                let mut args = own.clone().api(api).ttl(2).etcd(etcd.endpoints());
                if admin_port {
                    args = args.admin_listen(format!("127.0.0.1:{}", harness::free_port()));
                }
                Node::spawn_with_env(
                    &electd,
                    dir.path(),
                    name,
                    &args,
                    &[("ELECTD_ADMIN_TOKEN", TOKEN)],
                )
            })
            .collect();
        for node in &nodes {
            node.wait_serving().await;
        }
        let cluster = Cluster {
            lists_all: api == "v3",
            dir,
            etcd,
            nodes,
        };
        cluster.settled().await;
        cluster
    }

    /// Waits until one node leads and every node names it (and on v3
    /// lists every campaigning node); the leader's name.
    pub async fn settled(&self) -> String {
        eventually(SLACK, "one leader, every candidate listed", || async {
            let mut leader = None;
            for node in &self.nodes {
                let status = node.status().await?;
                let listed = status["candidates"].as_array()?.len();
                (!self.lists_all || listed == self.nodes.len()).then_some(())?;
                let named = status["leader"]["id"].as_str()?.to_owned();
                if leader.get_or_insert_with(|| named.clone()) != &named {
                    return None;
                }
            }
            leader
        })
        .await
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .expect("a node of this cluster")
    }

    pub fn token_file(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    /// electctl with `--node` the node named `node` and the token file.
    pub async fn ctl(&self, node: &str, args: &[&str]) -> Outcome {
        let token = self.token_file();
        let mut argv: Vec<String> = vec![
            "--node".into(),
            self.node(node).url(),
            "--token-file".into(),
            token.display().to_string(),
        ];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        electctl(&argv).await
    }

    /// Waits until `viewer` lists candidate `id` as drained, or not.
    pub async fn lists_drained(&self, viewer: &str, id: &str, drained: bool) {
        eventually(SLACK, "the drain in the list", || async {
            let status = self.node(viewer).status().await?;
            let listed = status["candidates"].as_array()?;
            listed
                .iter()
                .any(|c| c["id"] == id && c["drained"] == drained)
                .then_some(())
        })
        .await;
    }

    /// The last in line of `node`'s list.
    pub async fn last_in_line(&self, node: &str) -> String {
        let status = self.node(node).status().await.expect("a status");
        let candidates = status["candidates"].as_array().expect("candidates");
        candidates.last().expect("a candidate")["id"]
            .as_str()
            .expect("an id")
            .to_owned()
    }

    /// A long-running electctl (`watch`, `list -w`), its output in a file.
    pub fn follow(&self, name: &str, node: &str, args: &[&str]) -> Following {
        let out = self.dir.path().join(format!("{name}.out"));
        let file = std::fs::File::create(&out).expect("an output file");
        let child = base_command()
            .args(["--node", &self.node(node).url()])
            .args(args)
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("electctl starts");
        Following {
            _process: Owned::new(child),
            out,
        }
    }
}

pub struct Following {
    _process: Owned,
    out: PathBuf,
}

impl Following {
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

/// What an electctl run did.
#[derive(Debug)]
pub struct Outcome {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// Exit status `status`, and `words` in what it said on stderr.
    pub fn refused(&self, status: i32, words: &str) {
        assert_eq!(self.status, Some(status), "{self:?}");
        assert!(self.stderr.contains(words), "{words:?} not in {self:?}");
    }
}

/// electctl with nothing from this process's environment that it reads.
pub fn base_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_electctl"));
    command
        .env_remove("ELECTCTL_NODE")
        .env_remove("ELECTD_ADMIN_TOKEN")
        .env_remove("ELECTD_ADMIN_TOKEN_FILE")
        .stdin(Stdio::null());
    command
}

pub async fn electctl(args: &[String]) -> Outcome {
    let mut command = base_command();
    command.args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the runner")
        .expect("electctl runs");
    Outcome {
        status: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
