//! Steered hand-overs: `POST /v1/resign?to=ID` to the last in line,
//! `POST /v1/drain` of the leader, the leader's health check failing, and
//! preemption by a candidate of higher priority; among n candidates. Timed
//! like the graceful hand-over ([`crate::handover`]): from the nodes'
//! journals, on the clock every process of the host shares; and counted by
//! etcd ([`crate::writes`]) from before the trigger until the old leader is
//! queued again.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use harness::app::HealthSwitch;
use harness::etcd::Etcd;
use harness::now_ns;
use reqwest::Method;
use serde::Serialize;

use crate::cluster::{Cluster, Events};
use crate::cluster::{TOKEN, node_args};
use crate::stats::Summary;
use crate::stats::ms;
use crate::writes::{CostSummary, Costs, Counter};

/// How leadership is steered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steer {
    /// `POST /v1/resign?to=ID` on the leader, `ID` the last in line.
    To,
    /// `POST /v1/drain` on the leader.
    Drain,
    /// The leader's `--health-url` answers 500.
    Unhealthy,
    /// A drained node of higher priority with `--preempt` is undrained and
    /// asks for leadership after `--preempt-after`.
    Preempt,
}

/// How long the preempting node waits as a candidate before it asks.
pub const PREEMPT_AFTER: Duration = Duration::from_millis(500);

/// How often each node checks its health endpoint (one failure is a
/// verdict): often enough for a short run, seldom enough that 100 nodes
/// checking do not load the host.
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);

impl Steer {
    fn election(self, n: usize) -> String {
        let kind = match self {
            Steer::To => "to",
            Steer::Drain => "drain",
            Steer::Unhealthy => "unhealthy",
            Steer::Preempt => "preempt",
        };
        format!("steer-{kind}-{n}")
    }

    /// How the rows and plots name it.
    pub fn name(self) -> &'static str {
        match self {
            Steer::To => "?to= last in line",
            Steer::Drain => "drain",
            Steer::Unhealthy => "unhealthy",
            Steer::Preempt => "preemption",
        }
    }

    /// The `ended` reason the old leader journals.
    fn reason(self) -> &'static str {
        match self {
            Steer::To => "transfer",
            Steer::Drain => "drain",
            Steer::Unhealthy => "unhealthy",
            Steer::Preempt => "preempted",
        }
    }
}

/// One steered hand-over's samples (ms).
#[derive(Serialize)]
pub struct Steered {
    /// [`Steer::name`].
    pub kind: &'static str,
    pub candidates: usize,
    /// The request → the next `acquired`: `?to=` and drain, the request to
    /// the leader; unhealthy, the health endpoint switched (so a check
    /// interval is in it); preemption, `POST /v1/undrain` to the preempting
    /// node (so `--preempt-after` is in it).
    pub request_to_acquired_ms: Option<Summary>,
    /// The old leader's `ended` → the next leader's `acquired`: the hand-over itself.
    pub ended_to_acquired_ms: Option<Summary>,
    /// etcd's account, from before the trigger until the old leader is
    /// queued again (its lease grant and key included). For preemption,
    /// `writes_to_term` counts from the request to lead (`~preempt`), the
    /// leader's trigger.
    pub cost: Option<CostSummary>,
}

/// `n` nodes of `api`; `runs` hand-overs steered `how`, each `settle` after
/// the nodes are queued as expected.
pub async fn measure(
    binary: &Path,
    api: &str,
    etcd: &Etcd,
    n: usize,
    runs: usize,
    how: Steer,
    settle: Duration,
) -> anyhow::Result<Steered> {
    let endpoint = etcd.endpoint(0);
    let election = how.election(n);
    let args = node_args(api, 10, &endpoint, &election).resign_cooldown(Duration::from_secs(1));
    // One health endpoint per node, each switched alone.
    let switches: Vec<HealthSwitch> = match how {
        Steer::Unhealthy => (0..n).map(|_| HealthSwitch::start(true)).collect(),
        _ => Vec::new(),
    };
    let preempting = n - 1;
    let each: Vec<_> = (0..n)
        .map(|i| match how {
            // The last node preempts: it starts drained, so that the others lead first.
            Steer::Preempt if i == preempting => {
                args.clone().priority(10).preempt(PREEMPT_AFTER).drained()
            }
            Steer::Unhealthy => args
                .clone()
                .health_url(switches[i].url())
                .health_interval(HEALTH_INTERVAL)
                .health_failures(1)
                .health_successes(1),
            _ => args.clone(),
        })
        .collect();
    let events = match api {
        "v3" => Some(Events::watch_v3(endpoint.clone(), format!("/electd/{election}/")).await?),
        _ => None,
    };
    let mut counter = match api {
        "v3" => Some(Counter::connect(&endpoint).await?),
        _ => None,
    };
    let env = [("ELECTD_ADMIN_TOKEN", TOKEN)];
    let cluster = Cluster::start_each(binary, &env, &each).await;
    let auth = format!("Bearer {TOKEN}");
    let admin = |node: usize, path: String| {
        let cluster = &cluster;
        let auth = &auth;
        async move {
            let answer = cluster.nodes[node]
                .request(Method::POST, &path, &[("Authorization", auth)])
                .await
                .with_context(|| format!("no answer to {path}"))?;
            ensure!(
                answer.status == 200,
                "{path} on n{node}: {} {}",
                answer.status,
                answer.body
            );
            anyhow::Ok(())
        }
    };
    let limit = Duration::from_secs(60);
    let queued = |leader: usize, drained: Vec<usize>, unhealthy: Vec<usize>| {
        let cluster = &cluster;
        async move {
            cluster
                .queued(leader, n, &drained, &unhealthy, limit)
                .await
                .map_err(|seen| anyhow::anyhow!("the {n} nodes never queued as expected: {seen}"))
        }
    };
    // v2 lists no queue: there the other nodes are enough.
    let lists = api == "v3";
    let (mut requested, mut handed) = (Vec::new(), Vec::new());
    let mut costs = Costs::default();
    for _ in 0..runs {
        let leader = cluster.leader(limit).await.context("no leader")?;
        if !cluster.all_follow(leader, limit).await {
            bail!("the followers never named the leader");
        }
        // The last leader too, queued again (drained nodes queue as drained).
        let order = match how {
            Steer::Preempt => {
                ensure!(
                    leader != preempting,
                    "the preempting node led while drained"
                );
                queued(leader, vec![preempting], vec![]).await?
            }
            _ if lists => queued(leader, vec![], vec![]).await?,
            _ => Vec::new(),
        };
        let before = match counter.as_mut() {
            Some(counter) => Some(counter.mark(etcd).await?),
            None => None,
        };
        tokio::time::sleep(settle).await;
        let asked = now_ns();
        let expected = match how {
            Steer::To => {
                let last = order.last().context("an empty queue")?;
                let target = cluster.index_of(last).context("an unknown candidate")?;
                admin(leader, format!("/v1/resign?to={last}")).await?;
                Some(target)
            }
            Steer::Drain => {
                admin(leader, "/v1/drain".to_owned()).await?;
                None
            }
            Steer::Unhealthy => {
                switches[leader].set_healthy(false);
                None
            }
            Steer::Preempt => {
                admin(preempting, "/v1/undrain".to_owned()).await?;
                Some(preempting)
            }
        };
        let acquired = cluster
            .acquired_after(asked, Some(leader), limit)
            .await
            .context("nobody took over")?;
        if let Some(expected) = expected {
            ensure!(
                acquired.node == expected,
                "{how:?}: n{} took over, not n{expected}",
                acquired.node
            );
        }
        let (ended, reason) = cluster
            .ended_after(leader, asked, limit)
            .await
            .context("the old leader journalled no end")?;
        ensure!(
            reason == how.reason(),
            "{how:?}: the old leader ended with {reason:?}"
        );
        requested.push(ms(acquired.t_ns - asked));
        handed.push(ms(acquired.t_ns.saturating_sub(ended)));
        let next = acquired.node;
        // Every run starts from the same state: the old leader queued again
        // (as drained, or unhealthy) before it is let back (the book's
        // benchmarks page, "Steered hand-over": an undrain while re-queueing
        // was lost before 1e99d59).
        match how {
            Steer::Drain if lists => drop(queued(next, vec![leader], vec![]).await?),
            Steer::Unhealthy if lists => drop(queued(next, vec![], vec![leader]).await?),
            Steer::To | Steer::Preempt => drop(queued(next, vec![], vec![]).await?),
            _ => {}
        }
        if let (Some(counter), Some(mut before)) = (counter.as_mut(), before) {
            let after = counter.mark(etcd).await?;
            if how == Steer::Preempt {
                // The leader's trigger is the request to lead, a write.
                let request = events
                    .as_ref()
                    .and_then(|e| {
                        e.first_event_after(asked, |put, key| put && key.ends_with("~preempt"))
                    })
                    .context("the watcher saw no request to lead")?;
                before.revision = request.revision;
            }
            costs.push(before.cost_until(&after, acquired.term));
        }
        match how {
            Steer::Drain => admin(leader, "/v1/undrain".to_owned()).await?,
            Steer::Unhealthy => switches[leader].set_healthy(true),
            // The preempting node steps aside again (the next in line leads).
            Steer::Preempt => admin(preempting, "/v1/drain".to_owned()).await?,
            Steer::To => {}
        }
    }
    cluster.shut_down().await;
    Ok(Steered {
        kind: how.name(),
        candidates: n,
        request_to_acquired_ms: Summary::of(&requested),
        ended_to_acquired_ms: Summary::of(&handed),
        cost: costs.summary(),
    })
}
