//! electd's container image (scripts/image.sh) run by podman: containers on
//! the host's network, so that they reach the harness's etcd on loopback
//! and one another, each with its journal in a file of the host's. A
//! container is removed when its guard is dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::checker::Apart;
use crate::node::{Answer, LEADER, NodeArgs, client, get};
use crate::process::Owned;
use crate::{eventually, free_port, now_ns};

/// Explicit limits, for hosts where podman's defaults (1048576 open files)
/// are above what root may set and every container fails to start with
/// "setrlimit RLIMIT_NOFILE: Operation not permitted". electd needs few of
/// either.
pub const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=16384:16384",
    "--ulimit",
    "nproc=4096:4096",
];

/// The journal's path inside a container.
const JOURNAL: &str = "/journal.jsonl";

/// An image and an OCI runtime that runs it here.
pub struct Podman {
    image: String,
    runtime: Vec<&'static str>,
}

impl Podman {
    /// `image`, run with podman's default OCI runtime where that can run a
    /// container, else with runc: crun (Debian's default) refuses a host
    /// whose cgroups are in hybrid mode (v1 with a cgroup2 mount), where
    /// runc runs. Each is tried with `electd --version`; panics with what
    /// both said when neither runs it.
    pub fn new(image: &str) -> Podman {
        let mut refusals = Vec::new();
        for runtime in [vec![], vec!["--runtime", "runc"]] {
            let output = Command::new("podman")
                .args(["run", "--rm"])
                .args(&runtime)
                .args(ULIMITS)
                .args([image, "--version"])
                .stdin(Stdio::null())
                .output()
                .expect("podman runs");
            if output.status.success() && output.stdout.starts_with(b"electd ") {
                return Podman {
                    image: image.to_owned(),
                    runtime,
                };
            }
            refusals.push(format!(
                "{}: {}{}",
                runtime.last().unwrap_or(&"the default runtime"),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        panic!(
            "podman cannot run {image} (scripts/image.sh builds it):\n{}",
            refusals.join("\n")
        );
    }

    /// The OCI runtime chosen: `runc`, or podman's default.
    pub fn runtime(&self) -> &str {
        self.runtime.last().unwrap_or(&"podman's default")
    }

    /// Runs another program of the image (`/usr/bin/electctl`, say) with
    /// `args` in a container of its own on the host's network, to its end.
    pub fn run_program(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("podman")
            .args(["run", "--rm", "--network", "host"])
            .args(&self.runtime)
            .args(ULIMITS)
            .args(["--entrypoint", program, &self.image])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("podman runs")
    }

    /// Starts container `name` (its node id) in the foreground: electd with
    /// `args` and `--listen 127.0.0.1:<free port>`, `--id name` (unless
    /// `args` give an id), `--journal` in `dir/name.jsonl` (a file of the
    /// host's, writable by the image's user); its output in `dir/name.log`.
    pub fn run(&self, dir: &Path, name: &str, args: &NodeArgs) -> Container {
        let port = free_port();
        let journal = dir.join(format!("{name}.jsonl"));
        let log = dir.join(format!("{name}.log"));
        std::fs::File::create(&journal).expect("a journal file");
        // The image's user is not ours: anyone may append.
        let mut permissions = std::fs::metadata(&journal)
            .expect("the journal")
            .permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o666);
        std::fs::set_permissions(&journal, permissions).expect("a journal anyone may write");
        let out = std::fs::File::create(&log).expect("a log file");
        let container = format!("electd-test-{}-{name}", std::process::id());
        let child = Command::new("podman")
            .args(["run", "--rm", "--name", &container, "--network", "host"])
            .args(&self.runtime)
            .args(ULIMITS)
            .args(["--env", "RUST_LOG=info", "--env", "NO_COLOR=1"])
            .arg("--volume")
            .arg(format!("{}:{JOURNAL}", journal.display()))
            .arg(&self.image)
            .args(
                args.clone()
                    .for_node(name, format!("127.0.0.1:{port}"), Path::new(JOURNAL))
                    .argv(),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("a log handle"))
            .stderr(out)
            .spawn()
            .expect("podman run starts");
        Container {
            client: Owned::new(child),
            name: container,
            port,
            journal,
            log,
            killed_at: None,
            http: client(),
        }
    }
}

/// A container of the image, run by the `podman run` it owns, whose exit
/// status is the container's.
pub struct Container {
    client: Owned,
    /// The container's name.
    pub name: String,
    /// electd's HTTP port on 127.0.0.1.
    pub port: u16,
    /// Its journal, on the host.
    pub journal: PathBuf,
    /// What `podman run` printed: electd's output and podman's.
    pub log: PathBuf,
    /// When `podman kill` returned (`CLOCK_MONOTONIC` ns).
    pub killed_at: Option<u64>,
    http: reqwest::Client,
}

impl Container {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// GETs `path`; `None` when electd does not answer.
    pub async fn get(&self, path: &str) -> Option<Answer> {
        get(&self.http, &format!("{}{path}", self.url())).await
    }

    /// The seed's answer at `/`.
    pub async fn answer(&self) -> Option<String> {
        self.get("/").await.map(|a| a.body)
    }

    /// Whether electd says it leads.
    pub async fn is_leader(&self) -> bool {
        self.answer().await.as_deref() == Some(LEADER)
    }

    /// Waits until electd answers HTTP.
    pub async fn wait_serving(&self) {
        let what = format!("{} to serve HTTP", self.name);
        eventually(Duration::from_secs(30), &what, || async {
            self.get("/").await.map(|_| ())
        })
        .await;
    }

    /// `podman stop --time grace`: SIGTERM to the container's PID 1, and
    /// SIGKILL if it has not exited within `grace`. Returns once it has.
    pub async fn stop(&self, grace: Duration) {
        let seconds = grace.as_secs().to_string();
        self.podman(&["stop", "--time", &seconds, &self.name]).await;
    }

    /// `podman kill`: SIGKILL to the container's PID 1, which takes every
    /// process of the container with it, as when a host dies. Records and
    /// returns when it returned.
    pub async fn kill(&mut self) -> u64 {
        self.podman(&["kill", &self.name]).await;
        let at = now_ns();
        self.killed_at = Some(at);
        at
    }

    /// The container's processes, as `(pid, arguments)` in its PID namespace.
    pub async fn processes(&self) -> Vec<(u32, String)> {
        let top = self.podman(&["top", &self.name, "pid", "args"]).await;
        top.lines()
            .skip(1)
            .filter_map(|line| {
                let (pid, args) = line.trim().split_once(char::is_whitespace)?;
                Some((pid.parse().ok()?, args.trim().to_owned()))
            })
            .collect()
    }

    async fn podman(&self, args: &[&str]) -> String {
        let output = tokio::process::Command::new("podman")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("podman runs");
        assert!(
            output.status.success(),
            "podman {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits up to `limit` for the container to exit: its exit status.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.client.wait_exit(limit).await
    }

    /// What it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its journal for [`crate::checker::check_apart`].
    pub fn apart(&self) -> Apart {
        Apart {
            path: self.journal.clone(),
            killed_at: self.killed_at,
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "--force", "--ignore", "--time", "0", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
