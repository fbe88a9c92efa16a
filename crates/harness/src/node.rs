//! `electd` processes under test: started on a free loopback port with a
//! journal and a log file, signalled by PID, killed and reaped on drop.
//!
//! A node that may lead is two processes: the one started (the guardian)
//! and its child, electd itself (the worker), which leads, journals and
//! answers HTTP. Signals meant for the process group's leader (SIGTERM,
//! SIGINT, `kill -9`) go to the guardian, as systemd's would; SIGSTOP goes
//! to electd itself, which a stopped guardian would leave running.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::Signal;

use crate::process::Owned;
use crate::{eventually, free_port, now_ns};

mod args;

pub use args::NodeArgs;

/// The seed's answer at `/` of a node that leads.
pub const LEADER: &str = "I am the leader";

/// An HTTP client for a node under test: a fresh connection per request (a
/// pooled one may have been closed by the node's header timeout while it
/// was paused), and a bound on each.
pub(crate) fn client() -> reqwest::Client {
    crate::http()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(3))
        .build()
        .expect("an HTTP client")
}

/// GETs `url`; `None` when nothing answers.
pub(crate) async fn get(http: &reqwest::Client, url: &str) -> Option<Answer> {
    let resp = http.get(url).send().await.ok()?;
    let status = resp.status().as_u16();
    let body = resp.text().await.ok()?;
    Some(Answer { status, body })
}

/// One `electd` process.
pub struct Node {
    process: Owned,
    /// The node's id (also the stem of its journal and log).
    pub name: String,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    /// Its journal.
    pub journal: PathBuf,
    /// Its stdout and stderr.
    pub log: PathBuf,
    /// When it was killed with SIGKILL (`CLOCK_MONOTONIC` ns), for the checker.
    pub killed_at: Option<u64>,
    /// Whether electd runs under a guardian (not with `--observe` or
    /// `--no-guardian`).
    guarded: bool,
    /// electd itself, once looked up.
    worker: std::sync::OnceLock<u32>,
    /// When electd itself (not its guardian) was killed with SIGKILL.
    worker_killed_at: Option<u64>,
    http: reqwest::Client,
}

/// An HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
}

impl Node {
    /// Starts `binary` as node `name` in `dir` with `args` and
    /// `--listen 127.0.0.1:<free port>`, `--journal dir/name.jsonl` and
    /// `--id name` (unless `args` give an id).
    pub fn spawn(binary: &Path, dir: &Path, name: &str, args: &NodeArgs) -> Node {
        Node::spawn_with_env(binary, dir, name, args, &[])
    }

    /// Like [`Node::spawn`], with extra environment variables (which may
    /// override its `RUST_LOG=info`).
    pub fn spawn_with_env(
        binary: &Path,
        dir: &Path,
        name: &str,
        args: &NodeArgs,
        env: &[(&str, &str)],
    ) -> Node {
        Node::spawn_on(binary, dir, name, args, env, free_port())
    }

    /// Like [`Node::spawn_with_env`], listening on `port`: a node started
    /// again where clients (a browser's open page) look for it.
    pub fn spawn_on(
        binary: &Path,
        dir: &Path,
        name: &str,
        args: &NodeArgs,
        env: &[(&str, &str)],
        port: u16,
    ) -> Node {
        let journal = dir.join(format!("{name}.jsonl"));
        let args = args
            .clone()
            .for_node(name, format!("127.0.0.1:{port}"), &journal);
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("a log file");
        let child = Command::new(binary)
            .args(args.argv())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("a log handle"))
            .stderr(out)
            .spawn()
            .expect("electd starts");
        let guarded = !args.unguarded();
        Node {
            process: Owned::new(child),
            name: name.to_owned(),
            port,
            journal,
            log,
            killed_at: None,
            guarded,
            worker: std::sync::OnceLock::new(),
            worker_killed_at: None,
            http: client(),
        }
    }

    /// The process id of the process started: the guardian, if any.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The process id of electd itself (the one in its journal): the
    /// guardian's child, or the process started when it has no guardian.
    /// Waits up to 10 s for the guardian to start it.
    pub fn electd_pid(&self) -> u32 {
        let pid = self.find_electd(Duration::from_secs(10));
        pid.unwrap_or_else(|| panic!("{}: no electd under its guardian {}", self.name, self.pid()))
    }

    /// electd's process id, looked for up to `within`: `None` when the
    /// guardian has not started it (or is already on its way out).
    fn find_electd(&self, within: Duration) -> Option<u32> {
        if !self.guarded {
            return Some(self.pid());
        }
        if let Some(&pid) = self.worker.get() {
            return Some(pid);
        }
        let guardian = self.pid();
        let deadline = std::time::Instant::now() + within;
        loop {
            let worker = crate::procs::children(guardian).into_iter().find(|p| {
                std::fs::read(format!("/proc/{}/cmdline", p.pid))
                    .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == b"__electd-guarded"))
            });
            if let Some(worker) = worker {
                return Some(*self.worker.get_or_init(|| worker.pid));
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// GETs `path`; `None` when the node does not answer.
    pub async fn get(&self, path: &str) -> Option<Answer> {
        get(&self.http, &format!("{}{path}", self.url())).await
    }

    /// Sends `method` to `path` with optional headers.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Option<Answer> {
        let mut req = self.http.request(method, format!("{}{path}", self.url()));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.ok()?;
        let status = resp.status().as_u16();
        let body = resp.text().await.ok()?;
        Some(Answer { status, body })
    }

    /// The seed's answer at `/`.
    pub async fn answer(&self) -> Option<String> {
        self.get("/").await.map(|a| a.body)
    }

    /// `/v1/status` as JSON.
    pub async fn status(&self) -> Option<serde_json::Value> {
        let answer = self.get("/v1/status").await?;
        serde_json::from_str(&answer.body).ok()
    }

    /// Whether the node says it leads.
    pub async fn is_leader(&self) -> bool {
        self.answer().await.as_deref() == Some(LEADER)
    }

    /// Waits until the node answers HTTP.
    pub async fn wait_serving(&self) {
        eventually(Duration::from_secs(20), "electd to serve HTTP", || async {
            self.get("/").await.map(|_| ())
        })
        .await;
    }

    /// SIGKILL to the process started (a guardian takes electd with it:
    /// the TTL path, as when a whole host dies), reap, and record the time
    /// of death.
    pub fn kill9(&mut self) -> u64 {
        if self.process.try_exit().is_none() {
            // Known before it goes, for the checker. A guardian that has not
            // started electd yet (or is exiting) has no electd to name.
            self.find_electd(Duration::from_secs(1));
        }
        self.process.kill();
        let at = now_ns();
        self.killed_at = Some(at);
        at
    }

    /// SIGKILL to electd itself only, as a crash on a live host: its
    /// guardian releases the election. Records the time of death.
    pub fn kill9_electd(&mut self) -> u64 {
        let pid = self.electd_pid();
        crate::procs::signal(pid, Signal::KILL);
        let at = now_ns();
        self.worker_killed_at = Some(at);
        if !self.guarded {
            self.process.kill();
            self.killed_at = Some(at);
        }
        at
    }

    /// Sends a signal by PID.
    pub fn signal(&self, signal: Signal) {
        self.process.signal(signal);
    }

    /// SIGSTOP to electd itself: it freezes, its sockets stay open.
    pub fn pause(&self) {
        crate::procs::signal(self.electd_pid(), Signal::STOP);
    }

    /// SIGCONT to electd itself.
    pub fn resume(&self) {
        crate::procs::signal(self.electd_pid(), Signal::CONT);
    }

    /// SIGSTOP to every process of the node, as when its whole host or VM
    /// is paused: the guardian, electd, the `--exec` watchdog, the command
    /// and whatever it started. They run again when the result is dropped.
    pub fn freeze(&self) -> crate::procs::Stopped {
        crate::procs::Stopped::tree(self.pid())
    }

    /// SIGTERM.
    pub fn terminate(&self) {
        self.signal(Signal::TERM);
    }

    /// Waits up to `limit` for the process to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.process.wait_exit(limit).await
    }

    /// The process's output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `(pid, death)` of each process of this node that was killed, for
    /// the checker (electd itself dies with its guardian).
    pub fn deaths(&self) -> Vec<(u32, u64)> {
        let mut deaths = Vec::new();
        if let Some(at) = self.killed_at {
            deaths.push((self.pid(), at));
        }
        let worker = self.worker.get().copied();
        if let (Some(pid), Some(at)) = (worker, self.worker_killed_at.or(self.killed_at)) {
            deaths.push((pid, at));
        }
        deaths
    }
}
