//! The scene every containment test plays in: nodes whose command starts
//! a grandchild, an escapee and a daemon, each recording what it does, and
//! what the test saw of their processes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::checker::Report;
use harness::node::NodeArgs;
use harness::{eventually, procs};
use reqwest::Method;
use rustix::process::Signal;

use crate::common::Run;

pub const SLACK: Duration = Duration::from_secs(10);
const TOKEN: &str = "t0ken-for-containment";

/// The command: it ticks once (so its first tick comes before anything it
/// starts), starts a grandchild in its group, an escapee in a session of
/// its own and a daemon (a double fork: its parent exits at once, so it is
/// the watchdog's child while the command runs); both tick too, into `$2`.
/// Then it ticks every 50 ms. On SIGTERM it winds down for about 300 ms,
/// still ticking, then exits 0: a hand-over in flight that faults can hit.
const CHILD: &str = r#"#!/bin/sh
f="$1"
tick() { echo "tick $ELECTD_TERM $$ $(date +%s%N)" >> "$f"; }
on_term() {
    echo "term $$" >> "$f"
    for i in 1 2 3 4 5 6; do tick; sleep 0.05; done
    exit 0
}
trap on_term TERM
echo "env $$ ELECTD_TERM=$ELECTD_TERM" >> "$f"
tick
sleep 1000 &
echo "grandchild $$ $!" >> "$f"
escape='while :; do echo "tick $ELECTD_TERM $$ $(date +%s%N)" >> "$0"; sleep 0.05; done'
setsid sh -c "$escape" "$2" &
echo "escapee $$ $!" >> "$f"
(setsid sh -c "echo \"daemon $$ \$\$\" >> \"$f\"; $escape" "$2" &)
while :; do tick; sleep 0.05; done
"#;

/// The processes of one command, as it recorded them.
#[derive(Clone, Copy, Debug)]
pub struct Cmd {
    pub node: usize,
    pub term: u64,
    pub pid: u32,
    pub grandchild: u32,
    pub escapee: u32,
    pub daemon: u32,
    pub watchdog: u32,
}

impl Cmd {
    pub fn pids(&self) -> [u32; 5] {
        [
            self.pid,
            self.grandchild,
            self.escapee,
            self.daemon,
            self.watchdog,
        ]
    }
}

/// What a command's tick file says besides ticks.
#[derive(Default)]
struct Notes {
    /// `(pid, term)` of each command, in the order they started.
    pub started: Vec<(u32, u64)>,
    pub grandchild: HashMap<u32, u32>,
    pub escapee: HashMap<u32, u32>,
    pub daemon: HashMap<u32, u32>,
    /// Commands that got SIGTERM.
    pub termed: Vec<u32>,
}

fn notes(file: &Path) -> Notes {
    let mut notes = Notes::default();
    let text = std::fs::read_to_string(file).unwrap_or_default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| words.get(i).and_then(|w| w.parse::<u32>().ok());
        match (words.first().copied(), number(1)) {
            (Some("env"), Some(pid)) => {
                if let Some(term) = words
                    .get(2)
                    .and_then(|w| w.strip_prefix("ELECTD_TERM="))
                    .and_then(|t| t.parse().ok())
                {
                    notes.started.push((pid, term));
                }
            }
            (Some("grandchild"), Some(pid)) => {
                notes.grandchild.extend(number(2).map(|g| (pid, g)));
            }
            (Some("escapee"), Some(pid)) => {
                notes.escapee.extend(number(2).map(|e| (pid, e)));
            }
            (Some("daemon"), Some(pid)) => {
                notes.daemon.extend(number(2).map(|d| (pid, d)));
            }
            (Some("term"), Some(pid)) => notes.termed.push(pid),
            _ => {}
        }
    }
    notes
}

/// A run whose nodes all run [`CHILD`], and what it saw of their processes.
pub struct Scene {
    pub run: Run,
    pub script: PathBuf,
    /// Every node's flags but the command and its grace.
    pub own: NodeArgs,
    pub offset: i128,
    /// Every PID any command, grandchild, escapee or watchdog had.
    pub seen: Vec<u32>,
}

impl Scene {
    pub async fn new(api: &'static str, nodes: usize, own: NodeArgs) -> Scene {
        let run = Run::new(api, 2, 0).await;
        let script = run.dir.path().join("child.sh");
        std::fs::write(&script, CHILD).unwrap();
        let mut scene = Scene {
            run,
            script,
            own,
            offset: harness::ticks::realtime_offset(),
            seen: Vec::new(),
        };
        for i in 0..nodes {
            let args = scene.args(&format!("n{i}"));
            scene
                .run
                .spawn_with_env(&format!("n{i}"), args, &[("ELECTD_ADMIN_TOKEN", TOKEN)]);
        }
        for node in &scene.run.nodes {
            node.wait_serving().await;
        }
        scene
    }

    pub fn file(&self, name: &str, kind: &str) -> PathBuf {
        self.run.dir.path().join(format!("{name}.{kind}"))
    }

    pub fn args(&self, name: &str) -> NodeArgs {
        let mut command = vec!["sh".to_owned()];
        for path in [
            &self.script,
            &self.file(name, "ticks"),
            &self.file(name, "escapee"),
        ] {
            command.push(path.to_str().unwrap().to_owned());
        }
        self.own
            .clone()
            .exec_grace(Duration::from_millis(600))
            .exec(command)
    }

    /// Starts node `i` again after it exited or was killed.
    pub async fn restart(&mut self, i: usize) {
        let args = self.args(&self.run.nodes[i].name.clone());
        self.run.restart(i, args, &[("ELECTD_ADMIN_TOKEN", TOKEN)]);
        self.run.nodes[i].wait_serving().await;
    }

    /// Waits for a command of node `i`'s current term that was not seen yet,
    /// with its grandchild and escapee up and ticking.
    pub async fn command(&mut self, i: usize) -> Cmd {
        let node = &self.run.nodes[i];
        let term = node.status().await.unwrap()["term"].as_u64().unwrap();
        let (ticks, escapees) = (
            self.file(&node.name, "ticks"),
            self.file(&node.name, "escapee"),
        );
        let seen = &self.seen;
        let cmd = eventually(
            SLACK,
            "the leader's command, grandchild and escapee",
            || async {
                let notes = notes(&ticks);
                let &(pid, _) = notes
                    .started
                    .iter()
                    .rev()
                    .find(|&&(pid, t)| t == term && !seen.contains(&pid))?;
                let grandchild = *notes.grandchild.get(&pid)?;
                let escapee = *notes.escapee.get(&pid)?;
                let daemon = *notes.daemon.get(&pid)?;
                let escapee_ticks = std::fs::read_to_string(&escapees).unwrap_or_default();
                for pid in [escapee, daemon] {
                    if !escapee_ticks.contains(&format!("tick {term} {pid} ")) {
                        return None;
                    }
                }
                let watchdog = procs::stat(pid)?.ppid;
                // Orphaned as soon as its parent subshell exits.
                if procs::stat(daemon)?.ppid != watchdog {
                    return None;
                }
                Some(Cmd {
                    node: i,
                    term,
                    pid,
                    grandchild,
                    escapee,
                    daemon,
                    watchdog,
                })
            },
        )
        .await;
        assert_eq!(
            procs::stat(cmd.watchdog).map(|p| p.ppid),
            Some(node.electd_pid())
        );
        assert_eq!(procs::stat(cmd.grandchild).map(|p| p.pgrp), Some(cmd.pid));
        assert_eq!(procs::stat(cmd.escapee).map(|p| p.pgrp), Some(cmd.escapee));
        assert_eq!(procs::stat(cmd.daemon).map(|p| p.pgrp), Some(cmd.daemon));
        self.seen.extend(cmd.pids());
        cmd
    }

    pub async fn leader(&mut self) -> Cmd {
        let leader = self.run.sole_leader(SLACK).await;
        self.command(leader).await
    }

    /// Waits for a leader other than `old`'s node and its command; by then
    /// nothing of `old` may run.
    pub async fn next(&mut self, old: &Cmd) -> Cmd {
        let others: Vec<usize> = self
            .run
            .alive()
            .into_iter()
            .filter(|&i| i != old.node)
            .collect();
        let leader = self
            .run
            .sole_leader_among(&others, self.run.ttl() + SLACK)
            .await;
        let cmd = self.command(leader).await;
        assert_gone(old);
        cmd
    }

    /// Waits until node `i` has led on for a TTL since `since`.
    pub async fn outlive_ttl(&self, i: usize, since: u64) {
        let until = since + self.run.ttl().as_nanos() as u64;
        eventually(
            self.run.ttl() + SLACK,
            "the leadership to go on for a TTL",
            || async {
                self.run
                    .journal(i)
                    .iter()
                    .any(|r| r["event"] == "renewed" && r["t_ns"].as_u64() > Some(until))
                    .then_some(())
            },
        )
        .await;
    }

    /// Waits until `cmd` got SIGTERM and winds down.
    pub async fn winding_down(&self, cmd: &Cmd) {
        let ticks = self.file(&self.run.nodes[cmd.node].name, "ticks");
        eventually(SLACK, "the command to wind down", || async {
            notes(&ticks).termed.contains(&cmd.pid).then_some(())
        })
        .await;
    }

    pub async fn resign(&self, i: usize) -> u16 {
        let auth = format!("Bearer {TOKEN}");
        let answer = self.run.nodes[i]
            .request(Method::POST, "/v1/resign", &[("Authorization", &auth)])
            .await
            .expect("an answer to the hand-over");
        answer.status
    }

    /// Waits for SIGTERM to make node `i` exit 0.
    pub async fn terminated(&mut self, i: usize) {
        let status = self.run.nodes[i].wait_exit(SLACK).await;
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{}",
            self.run.nodes[i].output()
        );
    }

    /// Waits until no electd holds a zombie, and only a leader has a child
    /// (its watchdog).
    pub async fn settled(&self) {
        eventually(
            SLACK,
            "every electd to have reaped all but its watchdog",
            || async {
                for i in self.run.alive() {
                    let children = procs::children(self.run.nodes[i].electd_pid());
                    if children.iter().any(procs::Proc::zombie) || children.len() > 1 {
                        return None;
                    }
                    if !children.is_empty() && !self.run.nodes[i].is_leader().await {
                        return None;
                    }
                }
                Some(())
            },
        )
        .await;
    }

    /// Stops every node and checks the whole run.
    pub async fn finish(mut self) {
        let mut running = Vec::new();
        for i in self.run.alive() {
            if self.run.nodes[i].wait_exit(Duration::ZERO).await.is_none() {
                running.push(i);
            }
        }
        self.settled().await;
        for &i in &running {
            self.run.nodes[i].terminate();
        }
        for &i in &running {
            self.terminated(i).await;
        }
        let deadline = tokio::time::Instant::now() + SLACK;
        loop {
            let left: Vec<_> = self
                .seen
                .iter()
                .filter(|&&pid| procs::running(pid))
                .map(|&pid| procs::stat(pid))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still running: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let drift = (harness::ticks::realtime_offset() - self.offset).abs();
        assert!(
            drift < 5_000_000,
            "the wall clock moved by {drift} ns during the test"
        );
        let report = self.run.assert_safe();
        self.check_ticks(&report);
    }

    pub fn check_ticks(&self, report: &Report) {
        let mut names: Vec<String> = self.run.nodes.iter().map(|n| n.name.clone()).collect();
        names.dedup();
        let files = |kind: &str| -> Vec<(String, PathBuf)> {
            names
                .iter()
                .map(|n| (n.clone(), self.file(n, kind)))
                .collect()
        };
        let commands = harness::ticks::read(&files("ticks"), self.offset);
        let escapees = harness::ticks::read(&files("escapee"), self.offset);
        assert!(
            commands.overlaps().is_empty(),
            "two commands ran at once: {:#?}",
            commands.overlaps()
        );
        for pair in commands.children.windows(2) {
            assert!(
                pair[1].term >= pair[0].term,
                "terms must not go back: {pair:?}"
            );
        }
        for escapee in &escapees.children {
            for later in commands.children.iter().filter(|c| c.first > escapee.first) {
                assert!(
                    later.first > escapee.last,
                    "an escapee ran beside a later command: {escapee:?} and {later:?}"
                );
            }
        }
        for child in commands.children.iter().chain(&escapees.children) {
            let end = self.leadership_end(report, &child.node, child.term, child.first);
            assert!(
                child.last <= end,
                "{child:?} ran {:.1} ms past its leadership",
                (child.last - end) as f64 / 1e6
            );
        }
    }

    /// When the leadership of `node` in `term` that began before `at` ended:
    /// its `ended`, or (killed, none written) its last deadline.
    pub fn leadership_end(&self, report: &Report, node: &str, term: u64, at: u64) -> u64 {
        let leadership = report
            .intervals
            .iter()
            .filter(|i| i.id == node && i.term == term && i.start_ns <= at)
            .max_by_key(|i| i.start_ns)
            .unwrap_or_else(|| panic!("no leadership of {node} in term {term} before {at}"));
        if leadership.reason.is_some() {
            return leadership.end_ns;
        }
        let journal = std::fs::read_to_string(self.file(node, "jsonl")).unwrap();
        journal
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["term"] == term)
            .filter_map(|r| r["deadline_ns"].as_u64())
            .max()
            .unwrap()
    }
}

pub fn signal(pid: u32, signal: Signal) {
    procs::signal(pid, signal);
}

pub fn assert_gone(cmd: &Cmd) {
    for pid in cmd.pids() {
        assert!(
            !procs::running(pid),
            "{pid} of {cmd:?} still runs: {:?}",
            procs::stat(pid)
        );
    }
}
