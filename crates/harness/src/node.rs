//! `electd` processes under test: started on a free loopback port with a
//! journal and a log file, signalled by PID, killed and reaped on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::Signal;

use crate::process::Owned;
use crate::{eventually, free_port, now_ns};

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
    /// Starts `binary` as node `name` in `dir`, with `--listen 127.0.0.1:<free port>`,
    /// `--id name` (unless `args` give one), `--journal dir/name.jsonl` and `args`.
    pub fn spawn(binary: &Path, dir: &Path, name: &str, args: &[String]) -> Node {
        Node::spawn_with_env(binary, dir, name, args, &[])
    }

    /// Like [`Node::spawn`], with extra environment variables (which may
    /// override its `RUST_LOG=info`).
    pub fn spawn_with_env(
        binary: &Path,
        dir: &Path,
        name: &str,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Node {
        let port = free_port();
        let journal = dir.join(format!("{name}.jsonl"));
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("a log file");
        let mut command = Command::new(binary);
        command.args(["--listen", &format!("127.0.0.1:{port}")]);
        if !args.iter().any(|a| a == "--id") {
            command.args(["--id", name]);
        }
        let child = command
            .arg("--journal")
            .arg(&journal)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("a log handle"))
            .stderr(out)
            .spawn()
            .expect("electd starts");
        Node {
            process: Owned::new(child),
            name: name.to_owned(),
            port,
            journal,
            log,
            killed_at: None,
            // A fresh connection per request: a pooled one may have been
            // closed by the node's header timeout while it was paused.
            http: crate::http()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(3))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// GETs `path`; `None` when the node does not answer.
    pub async fn get(&self, path: &str) -> Option<Answer> {
        let resp = self
            .http
            .get(format!("{}{path}", self.url()))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        let body = resp.text().await.ok()?;
        Some(Answer { status, body })
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
        self.answer().await.as_deref() == Some("I am the leader")
    }

    /// Waits until the node answers HTTP.
    pub async fn wait_serving(&self) {
        eventually(Duration::from_secs(20), "electd to serve HTTP", || async {
            self.get("/").await.map(|_| ())
        })
        .await;
    }

    /// SIGKILL, reap, and record the time of death.
    pub fn kill9(&mut self) -> u64 {
        self.process.kill();
        let at = now_ns();
        self.killed_at = Some(at);
        at
    }

    /// Sends a signal by PID.
    pub fn signal(&self, signal: Signal) {
        self.process.signal(signal);
    }

    /// SIGSTOP: the process freezes, its sockets stay open.
    pub fn pause(&self) {
        self.signal(Signal::STOP);
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal(Signal::CONT);
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

    /// `(pid, death)` for the checker, if this process was killed.
    pub fn death(&self) -> Option<(u32, u64)> {
        self.killed_at.map(|at| (self.pid(), at))
    }
}
