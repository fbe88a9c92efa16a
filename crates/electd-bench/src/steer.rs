//! Steered hand-overs: `POST /v1/resign?to=ID` to the last in line,
//! `POST /v1/drain` of the leader, and preemption by a candidate of higher
//! priority. Timed like the graceful hand-over ([`crate::handover`]): from
//! the nodes' journals, on the clock every process of the host shares.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use harness::now_ns;
use reqwest::Method;
use serde::Serialize;

use crate::cluster::Cluster;
use crate::cluster::{TOKEN, node_args};
use crate::stats::Summary;
use crate::stats::ms;

/// How leadership is steered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steer {
    /// `POST /v1/resign?to=ID` on the leader, `ID` the last in line.
    To,
    /// `POST /v1/drain` on the leader.
    Drain,
    /// A drained node of higher priority with `--preempt` is undrained and
    /// asks for leadership after `--preempt-after`.
    Preempt,
}

/// How long the preempting node waits as a candidate before it asks.
pub const PREEMPT_AFTER: Duration = Duration::from_millis(500);

impl Steer {
    fn election(self) -> &'static str {
        match self {
            Steer::To => "steer-to",
            Steer::Drain => "steer-drain",
            Steer::Preempt => "steer-preempt",
        }
    }

    /// The `ended` reason the old leader journals.
    fn reason(self) -> &'static str {
        match self {
            Steer::To => "transfer",
            Steer::Drain => "drain",
            Steer::Preempt => "preempted",
        }
    }
}

/// One steered hand-over's samples (ms).
#[derive(Serialize)]
pub struct Steered {
    /// The request → the next `acquired`: `?to=` and drain, the request to
    /// the leader; preemption, `POST /v1/undrain` to the preempting node (so
    /// `--preempt-after` is in it).
    pub request_to_acquired_ms: Option<Summary>,
    /// The old leader's `ended` → the next leader's `acquired`: the hand-over itself.
    pub ended_to_acquired_ms: Option<Summary>,
}

/// Three nodes of `api`; `runs` hand-overs steered `how`.
pub async fn measure(
    binary: &Path,
    api: &str,
    endpoint: &str,
    runs: usize,
    how: Steer,
) -> anyhow::Result<Steered> {
    let args = node_args(api, 10, endpoint, how.election()).resign_cooldown(Duration::from_secs(1));
    // Node n2 preempts: it starts drained, so that the others lead first.
    let preempting = args.clone().priority(10).preempt(PREEMPT_AFTER).drained();
    let each = match how {
        Steer::Preempt => [args.clone(), args.clone(), preempting],
        Steer::To | Steer::Drain => [args.clone(), args.clone(), args],
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
    let limit = Duration::from_secs(20);
    let (mut requested, mut handed) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let leader = cluster.leader(limit).await.context("no leader")?;
        if !cluster.all_follow(leader, limit).await {
            bail!("the followers never named the leader");
        }
        let (asked, expected) = match how {
            Steer::To => {
                // The last leader too, which queues again behind its successor.
                let order = queued(&cluster, leader, &[]).await?;
                let last = order.last().context("an empty queue")?;
                let target = cluster.index_of(last).context("an unknown candidate")?;
                let asked = now_ns();
                admin(leader, format!("/v1/resign?to={last}")).await?;
                (asked, Some(target))
            }
            Steer::Drain => {
                // The last drained node is a candidate again (v2 lists no
                // queue: there the other node is enough).
                if api == "v3" {
                    queued(&cluster, leader, &[]).await?;
                }
                let asked = now_ns();
                admin(leader, "/v1/drain".to_owned()).await?;
                (asked, None)
            }
            Steer::Preempt => {
                ensure!(leader != 2, "the preempting node led while drained");
                // Queued again as drained first, as for drain below.
                queued(&cluster, leader, &[2]).await?;
                let asked = now_ns();
                admin(2, "/v1/undrain".to_owned()).await?;
                (asked, Some(2))
            }
        };
        let (next, acquired) = cluster
            .acquired_after(asked, Some(leader), limit)
            .await
            .context("nobody took over")?;
        if let Some(expected) = expected {
            ensure!(
                next == expected,
                "{how:?}: n{next} took over, not n{expected}"
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
        requested.push(ms(acquired - asked));
        handed.push(ms(acquired.saturating_sub(ended)));
        match how {
            Steer::Drain => {
                // Undrained only once queued again as drained, so that every
                // run starts from the same state (the book's benchmarks page,
                // "Steered hand-over": an undrain while re-queueing was lost
                // before 1e99d59).
                if api == "v3" {
                    queued(&cluster, next, &[leader]).await?;
                }
                admin(leader, "/v1/undrain".to_owned()).await?;
            }
            // The preempting node steps aside again (the next in line leads).
            Steer::Preempt => admin(2, "/v1/drain".to_owned()).await?,
            Steer::To => {}
        }
    }
    Ok(Steered {
        request_to_acquired_ms: Summary::of(&requested),
        ended_to_acquired_ms: Summary::of(&handed),
    })
}

/// The `leader`'s succession order once all three nodes are queued, those of
/// `drained` drained (so the last change of candidacy is in etcd).
async fn queued(
    cluster: &Cluster,
    leader: usize,
    drained: &[usize],
) -> anyhow::Result<Vec<String>> {
    cluster
        .queued(leader, 3, drained, Duration::from_secs(20))
        .await
        .map_err(|seen| anyhow::anyhow!("the three nodes never queued as expected: {seen}"))
}
