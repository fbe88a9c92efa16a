//! The monitoring operators paste in, deploy/monitoring/: the alert rules
//! pass promtool's check and their unit tests (tests/*.yml), which make
//! every alert fire and stay silent; each of the Grafana dashboard's
//! expressions, its variables substituted, parses as PromQL; and a real
//! Prometheus, scraping a real electd, loads the rules and the dashboard's
//! expressions: a key electd did not write makes ElectdForeignKey and
//! ElectdNoLeader pending; once it is removed, every rule and query
//! evaluates without error, no alert is pending or firing, and every
//! `electd_…` series that the rules, their tests and the dashboard name is
//! one Prometheus stored.
//!
//! promtool and prometheus come from Debian's package prometheus
//! (scripts/setup.sh installs it): without them these tests fail, saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::app::HealthSwitch;
use harness::etcd::Etcd;
use harness::eventually;
use harness::node::NodeArgs;
use harness::prometheus::Prometheus;
use serde_json::{Value, json};

use crate::common::{Run, SLACK};

/// The scrape job of the live test: an election is a job whose name
/// contains "electd", as the rules file asks.
const JOB: &str = "electd-test";

/// Prometheus's first scrape waits for its service discovery's first
/// update (about 5 s), then every rule must have been evaluated once.
const PROMETHEUS_SLACK: Duration = Duration::from_secs(60);

/// Where the book serves the runbooks, as the rules file says it.
const RUNBOOKS: &str = "https://electd.invalid/book/monitoring.html#";

/// A key in the default election's prefix that electd did not write.
const FOREIGN_KEY: &str = "/electd/leader/zzz";

fn source(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn rules_file() -> PathBuf {
    source("deploy/monitoring/electd.rules.yml")
}

/// deploy/monitoring/tests/*.yml, in order.
fn rule_tests() -> Vec<PathBuf> {
    let dir = source("deploy/monitoring/tests");
    let mut tests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension() == Some(OsStr::new("yml")))
        .collect();
    tests.sort();
    assert!(!tests.is_empty(), "no rule tests in {}", dir.display());
    tests
}

/// Runs promtool, which must succeed; its standard output.
fn promtool(args: &[&OsStr]) -> String {
    let output = Command::new("promtool")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install Debian's package prometheus \
                 (scripts/setup.sh does)"
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The alerts of the rules file, by the `- alert: NAME` lines.
fn alert_names(rules: &str) -> BTreeSet<String> {
    rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .map(|name| name.trim().to_owned())
        .collect()
}

/// Every metric name in `text`: a word that starts with `electd_` (not one
/// inside a longer name, such as a recording rule's `job:electd_…`).
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("electd_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_rules_pass_promtool_check_and_their_unit_tests() {
    let rules = rules_file();
    let checked = promtool(&["check".as_ref(), "rules".as_ref(), rules.as_os_str()]);
    let alerts = alert_names(&read(&rules));
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", alerts.len())),
        "promtool found other rules than the {} alerts {alerts:?}:\n{checked}",
        alerts.len()
    );

    let tests = rule_tests();
    let mut args: Vec<&OsStr> = vec!["test".as_ref(), "rules".as_ref()];
    args.extend(tests.iter().map(|t| t.as_os_str()));
    promtool(&args);

    // Each alert is tested firing (`exp_alerts:` followed by the alerts)
    // and silent (`exp_alerts: []`).
    let mut seen: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for test in &tests {
        let text = read(test);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if let Some(name) = pair[0].strip_prefix("alertname: ") {
                let how = match pair[1] {
                    "exp_alerts: []" => "silent",
                    "exp_alerts:" => "firing",
                    other => panic!("{}: after alertname {name}: {other}", test.display()),
                };
                seen.entry(name.to_owned()).or_default().insert(how);
            }
        }
    }
    for alert in &alerts {
        let how = seen.remove(alert).unwrap_or_default();
        assert_eq!(
            how,
            BTreeSet::from(["firing", "silent"]),
            "{alert} is not tested both firing and silent in deploy/monitoring/tests"
        );
    }
    assert!(
        seen.is_empty(),
        "tests of alerts the rules do not have: {seen:?}"
    );
}

/// The dashboard's panels, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut found = Vec::new();
    let mut pending: Vec<&Value> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    while let Some(panel) = pending.pop() {
        pending.extend(panel["panels"].as_array().into_iter().flatten());
        found.push(panel);
    }
    found
}

fn dashboard() -> (Value, String) {
    let path = source("deploy/monitoring/electd-dashboard.json");
    let text = read(&path);
    let dashboard = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    (dashboard, text)
}

/// The dashboard's queries as a Prometheus rule file (JSON, which is YAML):
/// one recording rule per query of a panel, `dashboard:panel_ID_REFID`,
/// its expression with the dashboard's variables substituted: `$job` by
/// `job`, `$instance` by its "All" value, Grafana's intervals by durations.
/// Also each panel's title and the rules of its queries.
fn dashboard_rules(dashboard: &Value, job: &str) -> (Value, Vec<(String, Vec<String>)>) {
    let instance = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|variable| variable["name"] == "instance")
        .and_then(|variable| variable["allValue"].as_str())
        .expect("the dashboard has an instance variable with an \"All\" value");
    let substitutions = [
        ("$__rate_interval", "1m"),
        ("$__interval", "15s"),
        ("$__range", "1h"),
        ("$job", job),
        ("$instance", instance),
    ];
    let mut rules = Vec::new();
    let mut titles = Vec::new();
    let mut ids = BTreeSet::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or_default();
        if panel["type"] == "row" {
            continue;
        }
        let id = panel["id"].as_u64().expect("every panel has a numeric id");
        assert!(ids.insert(id), "two panels have the id {id}");
        let targets = panel["targets"].as_array().into_iter().flatten();
        let mut names = Vec::new();
        for target in targets {
            let mut expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {title:?} has a query without expr"))
                .to_owned();
            for (variable, value) in substitutions {
                expr = expr.replace(variable, value);
            }
            assert!(
                !expr.contains('$'),
                "panel {title:?} uses a variable this test does not substitute: {expr}"
            );
            let ref_id = target["refId"].as_str().unwrap_or_default();
            let name = format!("dashboard:panel_{id}_{}", ref_id.to_lowercase());
            rules.push(json!({"record": name, "expr": expr}));
            names.push(name);
        }
        assert!(!names.is_empty(), "panel {title:?} has no query");
        titles.push((title.to_owned(), names));
    }
    let file = json!({"groups": [{"name": "dashboard", "rules": rules}]});
    (file, titles)
}

#[test]
fn the_dashboards_expressions_parse_as_promql() {
    let (dashboard, _) = dashboard();
    let (file, panels) = dashboard_rules(&dashboard, "electd-backup");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("dashboard.rules.json");
    std::fs::write(&path, file.to_string()).expect("the generated rules are written");
    let checked = promtool(&["check".as_ref(), "rules".as_ref(), path.as_os_str()]);
    let queries: usize = panels.iter().map(|(_, rules)| rules.len()).sum();
    assert!(
        checked.contains(&format!("SUCCESS: {queries} rules found")),
        "{checked}"
    );
    eprintln!(
        "monitoring: {} panels, {queries} queries parse",
        panels.len()
    );
}

/// Every rule Prometheus loaded, as `/api/v1/rules` gives them, with their
/// state, health and last error.
async fn loaded_rules(prometheus: &Prometheus) -> Option<Vec<Value>> {
    let data = prometheus.api("rules", &[]).await?;
    let rules: Vec<Value> = data["groups"]
        .as_array()?
        .iter()
        .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    (!rules.is_empty()).then_some(rules)
}

/// The state of the alert `name`: inactive, pending or firing.
fn alert_state<'a>(rules: &'a [Value], name: &str) -> &'a str {
    rules
        .iter()
        .find(|rule| rule["name"] == name)
        .and_then(|rule| rule["state"].as_str())
        .unwrap_or_else(|| panic!("Prometheus has no alert {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_evaluates_the_rules_and_the_dashboard_on_a_live_node() {
    // A key electd did not write holds the leader's place from the start.
    let etcd = Etcd::single().await;
    assert!(etcd.v3_put(FOREIGN_KEY, "garbage").await);
    // With --health-url, so that the node exports every series there is;
    // with the default TTL, so that a loaded machine does not make a
    // renewal fail (which ElectdRenewalsFailing would rightly report).
    let switch = HealthSwitch::start(true);
    let mut run = Run::with_etcd(etcd, "v3", 10, 0).await;
    let node = run.spawn(
        "n0",
        NodeArgs::new()
            .health_url(switch.url())
            .health_interval(Duration::from_millis(100))
            .health_failures(1),
    );
    run.nodes[node].wait_serving().await;
    let target = format!("127.0.0.1:{}", run.nodes[node].port);

    let (dashboard, dashboard_text) = dashboard();
    let (generated, panels) = dashboard_rules(&dashboard, JOB);
    let generated_file = run.dir.path().join("dashboard.rules.json");
    std::fs::write(&generated_file, generated.to_string())
        .expect("the generated rules are written");
    let prometheus = Prometheus::start(
        run.dir.path(),
        JOB,
        std::slice::from_ref(&target),
        &[rules_file(), generated_file],
    );

    // The election is blocked: its alerts are pending (their `for:` has
    // not passed yet), from the node's series through Prometheus.
    for alert in ["ElectdForeignKey", "ElectdNoLeader"] {
        let what = format!("{alert} to be pending or firing");
        eventually(PROMETHEUS_SLACK, &what, || async {
            let rules = loaded_rules(&prometheus).await?;
            (alert_state(&rules, alert) != "inactive").then_some(())
        })
        .await;
    }

    // The key removed, the node leads, and both alerts go quiet; the
    // dashboard's "Leader" panel names the leader.
    assert!(run.etcd.v3_delete(FOREIGN_KEY, false).await);
    run.sole_leader(SLACK).await;
    let leader_rule = &panels
        .iter()
        .find(|(title, _)| title == "Leader")
        .expect("the dashboard has a panel \"Leader\"")
        .1[0];
    eventually(
        PROMETHEUS_SLACK,
        "the alerts to go quiet and the Leader panel to name the node",
        || async {
            let rules = loaded_rules(&prometheus).await?;
            let quiet = ["ElectdForeignKey", "ElectdNoLeader"]
                .iter()
                .all(|alert| alert_state(&rules, alert) == "inactive");
            let leader = prometheus.query(leader_rule).await;
            let named = leader
                .iter()
                .map(|sample| &sample["metric"]["instance"])
                .eq([&json!(target)]);
            (quiet && named).then_some(())
        },
    )
    .await;
    let rules = loaded_rules(&prometheus)
        .await
        .expect("Prometheus answers with its rules");

    // Every rule evaluates without error on real data (a many-to-many
    // match, say, fails only there).
    let failing: Vec<String> = rules
        .iter()
        .filter(|rule| rule["health"] != "ok")
        .map(|rule| {
            format!(
                "{}: {} ({})",
                rule["name"], rule["lastError"], rule["query"]
            )
        })
        .collect();
    assert!(
        failing.is_empty(),
        "rules failing in Prometheus: {failing:#?}"
    );

    // Prometheus loaded every alert, and none is pending or firing: the
    // election is healthy.
    let alerts: Vec<&Value> = rules
        .iter()
        .filter(|rule| rule["type"] == "alerting")
        .collect();
    let loaded: BTreeSet<String> = alerts
        .iter()
        .filter_map(|alert| alert["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(loaded, alert_names(&read(&rules_file())));
    let active: Vec<String> = alerts
        .iter()
        .filter(|alert| alert["state"] != "inactive")
        .map(|alert| format!("{} {}: {}", alert["name"], alert["state"], alert["alerts"]))
        .collect();
    assert!(
        active.is_empty(),
        "alerts on a healthy election: {active:#?}"
    );

    // Each alert tells the operator what happened and what to do, and its
    // runbook is a section of the Monitoring page.
    let page = read(&source("docs/src/monitoring.md"));
    for alert in &alerts {
        let name = alert["name"].as_str().unwrap_or_default();
        let annotations = &alert["annotations"];
        for key in ["summary", "description"] {
            assert!(
                annotations[key]
                    .as_str()
                    .is_some_and(|text| !text.is_empty()),
                "{name} has no {key}"
            );
        }
        assert_eq!(
            annotations["runbook_url"],
            format!("{RUNBOOKS}{}", name.to_lowercase()),
            "{name}'s runbook"
        );
        assert!(
            page.lines().any(|line| line == format!("### {name}")),
            "docs/src/monitoring.md has no section \"### {name}\""
        );
    }

    // Each kind of obstacle the node exports has an alert.
    let kinds = prometheus.query("electd_obstacle").await;
    assert!(!kinds.is_empty(), "no electd_obstacle series");
    for sample in kinds {
        let kind = sample["metric"]["kind"].as_str().unwrap_or_default();
        assert!(
            alerts.iter().any(|alert| alert["query"]
                .as_str()
                .is_some_and(|query| query.contains(&format!("kind=\"{kind}\"")))),
            "no alert for electd_obstacle{{kind=\"{kind}\"}}"
        );
    }

    // Every electd_… name in the rules, their tests and the dashboard is a
    // series Prometheus stored from the node: the names as PromQL sees
    // them, counters with _total, histograms with _bucket, _sum, _count.
    let stored: BTreeSet<String> = prometheus
        .api("label/__name__/values", &[])
        .await
        .and_then(|names| names.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|name| name.as_str().map(str::to_owned))
        .collect();
    let exported: Vec<&String> = stored.iter().filter(|n| n.starts_with("electd_")).collect();
    let mut sources = vec![
        ("electd.rules.yml".to_owned(), read(&rules_file())),
        ("electd-dashboard.json".to_owned(), dashboard_text),
    ];
    for test in rule_tests() {
        sources.push((test.display().to_string(), read(&test)));
    }
    for (name, text) in &sources {
        let named = metric_names(text);
        assert!(!named.is_empty(), "{name} names no electd_ series");
        let unknown: Vec<&String> = named.difference(&stored).collect();
        assert!(
            unknown.is_empty(),
            "{name} names series that electd does not export: {unknown:?}\nexported: {exported:?}"
        );
    }
    let used: BTreeSet<String> = sources
        .iter()
        .flat_map(|(_, text)| metric_names(text))
        .collect();
    eprintln!(
        "monitoring: Prometheus stored {} electd series names; the rules and the dashboard \
         use {}",
        exported.len(),
        used.len()
    );
}
