//! What the steering tests share: a run whose nodes may run the ticker
//! under `--exec` and carry the admin token, and what they ask and read of
//! its nodes.

use std::path::PathBuf;
use std::time::Duration;

use harness::app::HealthSwitch;
use harness::eventually;
use harness::node::NodeArgs;
use reqwest::Method;
use serde_json::Value;

use crate::common::{Run, SLACK};

pub const TOKEN: &str = "t0ken-for-steering";

/// What a node of these tests runs with, beyond the run's own flags.
#[derive(Default)]
pub struct Opts<'a> {
    /// Its app's health endpoint, checked every 100 ms.
    pub health: Option<&'a HealthSwitch>,
    /// Whether it runs the ticker under `--exec`.
    pub exec: bool,
    /// Its other flags.
    pub own: NodeArgs,
    /// Its environment beyond the admin token (`RUST_LOG`, say).
    pub env: Vec<(&'a str, &'a str)>,
}

/// A run whose nodes may run the ticker: where each one's ticks go.
pub struct Steered {
    pub run: Run,
    pub ticks: Vec<(String, PathBuf)>,
    pub script: PathBuf,
}

impl Steered {
    pub async fn new(api: &'static str, ttl: u64) -> Steered {
        Steered::with_run(Run::new(api, ttl, 0).await)
    }

    /// On a run of its own making (one behind fault proxies), without nodes.
    pub fn with_run(run: Run) -> Steered {
        let script = harness::ticks::write_ticker(run.dir.path());
        Steered {
            run,
            ticks: Vec::new(),
            script,
        }
    }

    /// Starts node `name` with the admin token; waits until it serves.
    pub async fn spawn(&mut self, name: &str, opts: Opts<'_>) -> usize {
        let mut args = opts.own;
        if let Some(health) = opts.health {
            args = args
                .health_url(health.url())
                .health_interval(Duration::from_millis(100))
                .health_timeout(Duration::from_millis(500))
                .health_failures(2);
        }
        if opts.exec {
            let file = self.run.dir.path().join(format!("{name}.ticks"));
            let script = self.script.display().to_string();
            args = args.exec(["sh".to_owned(), script, file.display().to_string()]);
            self.ticks.push((name.to_owned(), file));
        }
        let mut env = vec![("ELECTD_ADMIN_TOKEN", TOKEN)];
        env.extend(opts.env);
        let i = self.run.spawn_with_env(name, args, &env);
        self.run.nodes[i].wait_serving().await;
        i
    }

    /// Starts a node `n<index>` for each of `nodes`, each queued before the
    /// next starts: the succession order is theirs. Their indexes.
    pub async fn line_up<'a>(&mut self, nodes: impl IntoIterator<Item = Opts<'a>>) -> Vec<usize> {
        let mut started = Vec::new();
        for opts in nodes {
            let name = format!("n{}", self.run.nodes.len());
            let at = self.spawn(&name, opts).await;
            self.queued(at).await;
            started.push(at);
        }
        started
    }

    /// Waits until node `i` is queued, as every node's status lists it.
    pub async fn queued(&self, i: usize) {
        let name = self.run.nodes[i].name.clone();
        let what = format!("{name} to be listed as a candidate");
        eventually(SLACK, &what, || async {
            let status = self.run.nodes[i].status().await?;
            candidate(&status, &name).map(|_| ())
        })
        .await;
    }

    /// The journal checker, and no two commands at once.
    pub fn assert_safe(&self) {
        self.run.assert_safe();
        let ticks = harness::ticks::read(&self.ticks, harness::ticks::realtime_offset());
        assert!(
            ticks.overlaps().is_empty(),
            "commands ran at once: {:?}",
            ticks.overlaps()
        );
    }

    /// Waits until node `i`'s command ticks in its current term.
    pub async fn ticking(&self, i: usize) {
        let term = self.run.term(i).await;
        let (_, file) = self
            .ticks
            .iter()
            .find(|(name, _)| *name == self.run.nodes[i].name)
            .expect("a node with --exec");
        let what = format!(
            "{}'s command to tick in term {term}",
            self.run.nodes[i].name
        );
        eventually(SLACK, &what, || async {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            text.contains(&format!("tick {term} ")).then_some(())
        })
        .await;
    }
}

/// POSTs to an admin endpoint with the token; the status and the JSON body.
pub async fn admin(run: &Run, i: usize, path: &str) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let answer = run.nodes[i]
        .request(Method::POST, path, &[("Authorization", &auth)])
        .await
        .unwrap_or_else(|| panic!("{} answers {path}", run.nodes[i].name));
    let body = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", answer.body));
    (answer.status, body)
}

pub async fn status(run: &Run, i: usize) -> Value {
    run.nodes[i].status().await.expect("a status")
}

/// The entry of `candidates` with this id.
pub fn candidate<'a>(status: &'a Value, id: &str) -> Option<&'a Value> {
    status["candidates"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == id)
}

/// The `reason` of node `i`'s last `ended`.
pub fn last_end(run: &Run, i: usize) -> Option<(String, u64)> {
    run.journal(i)
        .into_iter()
        .rfind(|r| r["event"] == "ended")
        .map(|r| {
            (
                r["reason"].as_str().unwrap_or_default().to_owned(),
                r["t_ns"].as_u64().unwrap_or_default(),
            )
        })
}

/// Waits until node `i` journals an end with `reason`; when it was.
pub async fn ended_for(run: &Run, i: usize, reason: &str) -> u64 {
    let what = format!("{} to journal its end, {reason}", run.nodes[i].name);
    eventually(SLACK, &what, || async {
        last_end(run, i).and_then(|(why, at)| (why == reason).then_some(at))
    })
    .await
}

/// The gap from node `from`'s last end to node `to`'s last acquisition.
pub fn gap(run: &Run, from: usize, to: usize) -> Duration {
    let (_, ended) = last_end(run, from).expect("an end");
    let (_, acquired) = run.last_acquired(to).expect("an acquisition");
    Duration::from_nanos(acquired.saturating_sub(ended))
}

/// Holds for `span` (polled every 100 ms) that none of `among` says it
/// leads and each answers 503 at `/health/leader`; `/healthz` stays 200.
pub async fn nobody_leads_for(run: &Run, among: &[usize], span: Duration) {
    let until = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < until {
        for &i in among {
            let node = &run.nodes[i];
            let leader = node.get("/health/leader").await.expect("an answer");
            assert_eq!(leader.status, 503, "{} leads: {}", node.name, leader.body);
            let healthz = node.get("/healthz").await.expect("an answer");
            assert_eq!(healthz.status, 200, "{}: {}", node.name, healthz.body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Holds for `span` that node `i` leads at `term`, without a change.
pub async fn keeps_leading_for(run: &Run, i: usize, term_then: u64, span: Duration) {
    let until = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < until {
        assert!(
            run.nodes[i].is_leader().await,
            "{} stopped leading",
            run.nodes[i].name
        );
        assert_eq!(run.term(i).await, term_then, "the term changed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until node `i` leads and every other node names it.
pub async fn comes_to_lead(run: &Run, i: usize) {
    run.sole_leader_among(&[i], SLACK).await;
    assert_eq!(run.sole_leader(SLACK).await, i);
}

/// A hand-over, not an expiry: well under the TTL.
pub fn assert_handed_over(run: &Run, from: usize, to: usize) {
    let gap = gap(run, from, to);
    assert!(
        gap < run.ttl() / 2,
        "{} took over {gap:?} after {} ended: not a hand-over",
        run.nodes[to].name,
        run.nodes[from].name
    );
}
