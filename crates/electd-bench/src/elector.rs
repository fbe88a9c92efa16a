//! One `etcdctl elect` process (etcd's own election client) and what it
//! printed, shared by the sections that measure it.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use harness::etcd::Etcd;
use harness::now_ns;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

/// One `etcdctl elect` process and the lines it printed.
pub struct Candidate {
    pub child: Child,
    proposal: String,
    lines: mpsc::UnboundedReceiver<(String, u64)>,
}

impl Candidate {
    pub fn spawn_in(endpoint: &str, election: &str, proposal: &str) -> anyhow::Result<Candidate> {
        let mut child = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", endpoint, "elect", election, proposal])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("etcdctl starts")?;
        let stdout = child.stdout.take().context("etcdctl's stdout")?;
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send((line, now_ns())).is_err() {
                    return;
                }
            }
        });
        Ok(Candidate {
            child,
            proposal: proposal.to_owned(),
            lines,
        })
    }

    /// When it printed its proposal: etcdctl's word that it was elected.
    pub async fn elected(&mut self, limit: Duration) -> Option<u64> {
        timeout(limit, async {
            while let Some((line, at)) = self.lines.recv().await {
                if line == self.proposal {
                    return Some(at);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }

    pub fn signal(&self, signal: rustix::process::Signal) {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }
}

/// Waits until `count` keys of `election` are in etcd: its candidates queued.
pub async fn queued_in(etcd: &Etcd, election: &str, count: usize) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(10);
    while etcd.v3_keys(&format!("{election}/")).await.len() < count {
        anyhow::ensure!(Instant::now() < until, "etcdctl never joined the election");
        sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
