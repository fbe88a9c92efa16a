//! `--health-url` in a real electd, seen from outside through its log: one
//! line per change of verdict, with the reason, in bounded time. (The
//! verdict steering the election is `steering.rs`'s; these read the log.)

use std::time::Duration;

use harness::app::HealthSwitch;
use harness::eventually;
use harness::node::{Node, NodeArgs};

use crate::common;

/// How long a change of verdict may take to show: a few checks of 100 ms
/// (and a timeout of 300 ms), with room for a loaded machine.
const LIMIT: Duration = Duration::from_secs(5);

/// A verdict line of the log: whether it says healthy, and the line.
type Line = (bool, String);

/// The log's verdict lines so far, in order.
fn verdicts(node: &Node) -> Vec<Line> {
    node.output()
        .lines()
        .filter_map(|line| {
            let (_, message) = line.split_once("electd::app_check: ")?;
            let healthy = if message.starts_with("healthy:") {
                true
            } else if message.starts_with("unhealthy:") {
                false
            } else {
                return None;
            };
            Some((healthy, line.to_owned()))
        })
        .collect()
}

/// Waits until the log has `n` verdict lines; returns them.
async fn changes(node: &Node, n: usize) -> Vec<Line> {
    let what = format!("{n} verdict lines in {}'s log", node.name);
    eventually(LIMIT, &what, || async {
        let lines = verdicts(node);
        (lines.len() >= n).then_some(lines)
    })
    .await
}

fn assert_line(line: &Line, healthy: bool, level: &str, words: &[&str]) {
    assert_eq!(line.0, healthy, "{}", line.1);
    assert!(line.1.contains(level), "not {level}: {}", line.1);
    for word in words {
        assert!(line.1.contains(word), "lacks {word:?}: {}", line.1);
    }
}

/// A node checking `switch` every 100 ms with the thresholds given.
async fn checking(run: &mut common::Run, switch: &HealthSwitch, thresholds: NodeArgs) -> usize {
    let own = thresholds
        .health_url(switch.url())
        .health_interval(Duration::from_millis(100));
    let i = run.spawn("n0", own);
    run.nodes[i].wait_serving().await;
    i
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_log_line_per_change_of_verdict_with_its_reason() {
    let switch = HealthSwitch::start(false);
    let mut run = common::Run::new("v3", 2, 0).await;
    let thresholds = NodeArgs::new()
        .health_timeout(Duration::from_millis(500))
        .health_failures(2)
        .health_successes(1);
    let i = checking(&mut run, &switch, thresholds).await;
    let node = &run.nodes[i];
    let url = switch.url();

    // 500 from the start: the node starts unhealthy; two failures in a row
    // confirm it once, with the reason, and more change nothing.
    let lines = changes(node, 1).await;
    assert_line(
        &lines[0],
        false,
        "WARN",
        &[
            &format!("GET {url} answered 500"),
            "failed 2 times in a row",
        ],
    );
    let seen = switch.requests();
    switch.wait_for_requests(seen + 3, LIMIT).await;
    assert_eq!(verdicts(node).len(), 1, "{:?}", verdicts(node));
    assert!(
        node.output()
            .lines()
            .any(|l| l.contains("checking health") && l.contains(&url)),
        "no start line:\n{}",
        node.output()
    );

    // 200: healthy after one check.
    switch.set_healthy(true);
    let lines = changes(node, 2).await;
    assert_line(
        &lines[1],
        true,
        "INFO",
        &[&format!("GET {url} answered 200")],
    );

    // 500 again: unhealthy after two in a row, with the second one's reason.
    switch.set_healthy(false);
    let lines = changes(node, 3).await;
    assert_line(
        &lines[2],
        false,
        "WARN",
        &[
            &format!("GET {url} answered 500"),
            "failed 2 times in a row",
        ],
    );

    // Settled: more failed checks, no more lines.
    let seen = switch.requests();
    switch.wait_for_requests(seen + 3, LIMIT).await;
    assert_eq!(verdicts(node).len(), 3, "{:?}", verdicts(node));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reason_says_what_failed() {
    let switch = HealthSwitch::start(true);
    let mut run = common::Run::new("v3", 2, 0).await;
    let thresholds = NodeArgs::new()
        .health_timeout(Duration::from_millis(300))
        .health_failures(1);
    let i = checking(&mut run, &switch, thresholds).await;
    let node = &run.nodes[i];
    let url = switch.url();

    let lines = changes(node, 1).await;
    assert_line(&lines[0], true, "INFO", &["answered 200"]);

    // The app is down: nothing listens.
    switch.refuse();
    let lines = changes(node, 2).await;
    assert_line(
        &lines[1],
        false,
        "WARN",
        &[&format!("GET {url} failed: connection refused")],
    );

    switch.set_healthy(true);
    let lines = changes(node, 3).await;
    assert_line(&lines[2], true, "INFO", &["answered 200"]);

    // The app hangs: the check gives up at its timeout.
    switch.stall();
    let lines = changes(node, 4).await;
    assert_line(
        &lines[3],
        false,
        "WARN",
        &[&format!("GET {url} timed out after 300ms")],
    );
    assert_eq!(verdicts(node).len(), 4, "{:?}", verdicts(node));
}
