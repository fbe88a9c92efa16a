//! Prometheus metrics of real nodes: a failover as the series show it,
//! the health and candidacy series, and the book's metrics page against
//! what nodes export.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use harness::app::HealthSwitch;
use harness::eventually;
use harness::node::{Node, NodeArgs};

use crate::common::{Run, metric};
use crate::operations::admin_post;

const SLACK: Duration = Duration::from_secs(10);
const TOKEN: &str = "t0ken-for-tests";

async fn metrics_follow_a_failover(api: &'static str) {
    let run = Run::new(api, 2, 2).await;
    let leader = run.sole_leader(SLACK).await;
    let other = 1 - leader;
    let scrape = |i: usize| {
        let node = &run.nodes[i];
        async move {
            let answer = node.get("/metrics").await.unwrap();
            assert_eq!(answer.status, 200);
            answer.body
        }
    };
    let text = scrape(leader).await;
    for line in text.lines() {
        assert!(
            line.starts_with('#')
                || line
                    .rsplit_once(' ')
                    .is_some_and(|(_, v)| v.parse::<f64>().is_ok()),
            "unparsable line {line:?}"
        );
    }
    assert!(text.trim_end().ends_with("# EOF"));
    assert_eq!(metric(&text, "electd_is_leader"), Some(1.0));
    let term = run.term(leader).await as f64;
    assert_eq!(metric(&text, "electd_term"), Some(term));
    assert_eq!(
        metric(
            &text,
            "electd_leadership_changes_total{reason=\"acquired\"}"
        ),
        Some(1.0)
    );
    assert!(metric(&text, "electd_lease_remaining_seconds").unwrap() > 0.0);
    assert!(text.contains("electd_build_info{version="));
    assert!(text.contains("electd_etcd_request_duration_seconds_bucket{"));
    assert!(text.contains("electd_etcd_requests_total{op="));
    assert!(text.contains("electd_exec_restarts_total 0"));
    let renewed = "electd_renewals_total{outcome=\"renewed\"}";
    let before = metric(&text, renewed).unwrap_or(0.0);
    eventually(SLACK, "renewals to be counted", || async {
        (metric(&scrape(leader).await, renewed)? > before).then_some(())
    })
    .await;
    let text = scrape(other).await;
    assert_eq!(metric(&text, "electd_is_leader"), Some(0.0));
    assert_eq!(metric(&text, "electd_term"), Some(term));

    run.nodes[leader].terminate();
    run.sole_leader_among(&[other], SLACK).await;
    let text = scrape(other).await;
    assert_eq!(metric(&text, "electd_is_leader"), Some(1.0));
    assert!(metric(&text, "electd_term").unwrap() > term);
    assert_eq!(
        metric(
            &text,
            "electd_leadership_changes_total{reason=\"acquired\"}"
        ),
        Some(1.0)
    );
    run.assert_safe();
}

/// `/metrics` of `node`.
async fn scrape(node: &Node) -> String {
    let answer = node.get("/metrics").await.expect("the node answers");
    assert_eq!(answer.status, 200);
    answer.body
}

/// Waits until every one of `series` of `node` has its value.
async fn metrics_say(node: &Node, what: &str, series: &[(&str, f64)]) {
    let what = format!("{}'s metrics to say {what}", node.name);
    eventually(SLACK, &what, || async {
        let text = scrape(node).await;
        series
            .iter()
            .all(|(name, value)| metric(&text, name) == Some(*value))
            .then_some(())
    })
    .await;
}

/// The series now, asserted without waiting.
async fn metrics_are(node: &Node, series: &[(&str, f64)]) {
    let text = scrape(node).await;
    for (name, value) in series {
        assert_eq!(metric(&text, name), Some(*value), "{name} of {}", node.name);
    }
}

/// The book's metrics page names every series nodes export, with its type
/// and its labels, and no series they do not: the rows of its table,
/// ``| `electd_…` | TYPE | `label`, … | …``, against the expositions' `#
/// TYPE` lines (whose counter and info families drop the `_total` and
/// `_info` their samples carry; a family without samples has none) and the
/// label names of their samples (a histogram's `le` aside). Without
/// `sharded`, the shards' series are left out.
fn the_metrics_reference_names_every_series(exposition: &str, sharded: bool) {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/src/reference/metrics.md");
    let page = std::fs::read_to_string(&page)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", page.display()));
    type Row = (String, String, BTreeSet<String>);
    let documented: BTreeSet<Row> = page
        .lines()
        .filter_map(|row| {
            let mut cells = row.split('|').map(str::trim).skip(1);
            let series = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            let kind = cells.next()?;
            let labels = cells
                .next()?
                .split(',')
                .map(|label| label.trim().trim_matches('`').to_owned())
                .filter(|label| !label.is_empty())
                .collect();
            // The shards' series exist only with --shards (v3).
            let exported =
                series.starts_with("electd_") && (sharded || !series.starts_with("electd_shard"));
            exported.then(|| (series.to_owned(), kind.to_owned(), labels))
        })
        .collect();
    let exported: BTreeSet<Row> = exposition
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("# TYPE ")?.split_whitespace();
            let (family, kind) = (words.next()?, words.next()?);
            let series = match kind {
                "counter" => format!("{family}_total"),
                "info" => format!("{family}_info"),
                _ => family.to_owned(),
            };
            let samples: Vec<String> = match kind {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .map(|suffix| format!("{family}{suffix}"))
                    .into(),
                _ => vec![series.clone()],
            };
            let labels = exposition
                .lines()
                .filter_map(|line| {
                    let (name, rest) = line.split_once('{')?;
                    samples.contains(&name.to_owned()).then_some(rest)
                })
                .flat_map(label_names)
                .filter(|label| label != "le")
                .collect();
            Some((series, kind.to_owned(), labels))
        })
        .collect();
    assert!(!exported.is_empty(), "no # TYPE lines in:\n{exposition}");
    assert_eq!(
        documented, exported,
        "docs/src/reference/metrics.md (left) and the nodes' /metrics (right) differ"
    );
}

/// The label names of a sample, from what follows its name's `{`:
/// `a="x",b="y\"z"} 1`.
fn label_names(labels: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = labels;
    while let Some((name, value)) = rest.split_once("=\"") {
        names.push(name.trim_start_matches(',').to_owned());
        // The value ends at the first quote that no backslash escapes.
        let mut escaped = false;
        let end = value
            .char_indices()
            .find(|&(_, c)| {
                let closes = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                closes
            })
            .map_or(value.len(), |(i, _)| i + 1);
        rest = &value[end..];
    }
    names
}

async fn metrics_show_health_and_candidacy(api: &'static str) {
    let switch = HealthSwitch::start(false);
    let mut run = Run::new(api, 2, 0).await;
    let env = [("ELECTD_ADMIN_TOKEN", TOKEN)];
    let mut args = NodeArgs::new()
        .health_url(switch.url())
        .health_interval(Duration::from_millis(100))
        .health_failures(1);
    // Priorities need v3.
    let priority = if api == "v3" { 7.0 } else { 0.0 };
    if api == "v3" {
        args = args.priority(7);
    }
    let checked = run.spawn_with_env("checked", args, &env);
    // On v3 the plain node has shards, so that the two export every series.
    let plain_args = if api == "v3" {
        NodeArgs::new().shards(4)
    } else {
        NodeArgs::new()
    };
    let plain = run.spawn_with_env("plain", plain_args, &env);
    let observer = run.spawn("observer", NodeArgs::new().observe());
    for node in &run.nodes {
        node.wait_serving().await;
    }
    let (checked_node, plain_node) = (&run.nodes[checked], &run.nodes[plain]);

    // Without --health-url there is no verdict to export: no series at all.
    let text = scrape(plain_node).await;
    assert!(!text.contains("electd_healthy"), "{text}");
    assert!(!text.contains("electd_health_changes"), "{text}");
    metrics_are(
        plain_node,
        &[
            ("electd_candidate", 1.0),
            ("electd_drained", 0.0),
            ("electd_priority", 0.0),
        ],
    )
    .await;
    metrics_are(
        &run.nodes[observer],
        &[("electd_candidate", 0.0), ("electd_drained", 0.0)],
    )
    .await;

    // Unhealthy from the start, and confirmed by failed checks: that is
    // no change of verdict.
    switch.wait_for_requests(3, SLACK).await;
    metrics_are(
        checked_node,
        &[
            ("electd_healthy", 0.0),
            ("electd_health_changes_total", 0.0),
            ("electd_candidate", 0.0),
            ("electd_drained", 0.0),
            ("electd_priority", priority),
        ],
    )
    .await;

    switch.set_healthy(true);
    let healthy = [
        ("electd_healthy", 1.0),
        ("electd_health_changes_total", 1.0),
        ("electd_candidate", 1.0),
    ];
    metrics_say(checked_node, "healthy", &healthy).await;
    // Between them, the two export every series there is: the checked node
    // the health check's; each node every other one, those of its etcd
    // requests once it made one.
    eventually(
        SLACK,
        "the etcd requests in the plain node's metrics",
        || async {
            scrape(plain_node)
                .await
                .contains("electd_etcd_request_duration_seconds_bucket{")
                .then_some(())
        },
    )
    .await;
    let both = scrape(plain_node).await + &scrape(checked_node).await;
    the_metrics_reference_names_every_series(&both, api == "v3");
    switch.set_healthy(false);
    let unhealthy = [
        ("electd_healthy", 0.0),
        ("electd_health_changes_total", 2.0),
        ("electd_candidate", 0.0),
    ];
    metrics_say(checked_node, "unhealthy", &unhealthy).await;
    assert!(!checked_node.is_leader().await, "an unhealthy node leads");
    switch.set_healthy(true);
    let healthy = [
        ("electd_healthy", 1.0),
        ("electd_health_changes_total", 3.0),
        ("electd_candidate", 1.0),
    ];
    metrics_say(checked_node, "healthy again", &healthy).await;

    // A drain is answered once in effect (a leader has handed over): the
    // gauges say so at once. Health is a separate matter.
    let bearer = format!("Bearer {TOKEN}");
    let drained = admin_post(checked_node, "/v1/drain", Some(&bearer)).await;
    assert_eq!(drained.status, 200, "{}", drained.body);
    assert_eq!(drained.body["drained"], true, "{}", drained.body);
    metrics_are(
        checked_node,
        &[
            ("electd_drained", 1.0),
            ("electd_candidate", 0.0),
            ("electd_healthy", 1.0),
            ("electd_is_leader", 0.0),
        ],
    )
    .await;
    // Drained and unhealthy; undrained, still unhealthy: no candidate.
    switch.set_healthy(false);
    let unhealthy = [
        ("electd_healthy", 0.0),
        ("electd_health_changes_total", 4.0),
        ("electd_drained", 1.0),
    ];
    metrics_say(checked_node, "drained and unhealthy", &unhealthy).await;
    let undrained = admin_post(checked_node, "/v1/undrain", Some(&bearer)).await;
    assert_eq!(undrained.status, 200, "{}", undrained.body);
    metrics_are(
        checked_node,
        &[("electd_drained", 0.0), ("electd_candidate", 0.0)],
    )
    .await;
    switch.set_healthy(true);
    let healthy = [
        ("electd_healthy", 1.0),
        ("electd_health_changes_total", 5.0),
        ("electd_drained", 0.0),
        ("electd_candidate", 1.0),
    ];
    metrics_say(checked_node, "undrained and healthy", &healthy).await;

    // The leader's own drain: it hands over, then answers.
    let leader = run.sole_leader_among(&[checked, plain], SLACK).await;
    let drained = admin_post(&run.nodes[leader], "/v1/drain", Some(&bearer)).await;
    assert_eq!(drained.status, 200, "{}", drained.body);
    metrics_are(
        &run.nodes[leader],
        &[
            ("electd_drained", 1.0),
            ("electd_candidate", 0.0),
            ("electd_is_leader", 0.0),
        ],
    )
    .await;
    let other = if leader == checked { plain } else { checked };
    run.sole_leader_among(&[other], SLACK).await;
    metrics_are(&run.nodes[other], &[("electd_candidate", 1.0)]).await;
    run.assert_safe();
}

both_apis!(metrics_follow_a_failover, metrics_show_health_and_candidacy);
