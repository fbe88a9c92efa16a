//! A Prometheus server (Debian's `prometheus`, the package that also has
//! `promtool`) on a free loopback port, with its data in a directory of the
//! test's: it scrapes the targets it is given and evaluates the rule files
//! it is given, both every second, so that a test sees what Prometheus
//! stores of electd's exposition and how its rules evaluate on it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::free_port;
use crate::process::Owned;

/// A running Prometheus, killed and reaped on drop.
pub struct Prometheus {
    _process: Owned,
    port: u16,
    log: PathBuf,
    http: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus in `dir` (its configuration, data and log), scraping
    /// `/metrics` of each of `targets` (`host:port`) as the job `job` and
    /// evaluating `rule_files`. Panics, saying what to install, when there
    /// is no `prometheus` to run.
    pub fn start(dir: &Path, job: &str, targets: &[String], rule_files: &[PathBuf]) -> Prometheus {
        let port = free_port();
        // JSON is YAML: Prometheus reads this as its YAML configuration.
        let config = json!({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": rule_files,
            "scrape_configs": [{
                "job_name": job,
                "static_configs": [{"targets": targets}],
            }],
        });
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config.to_string()).expect("prometheus.yml is written");
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).expect("a log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("a log handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run prometheus ({e}): install Debian's package prometheus \
                     (scripts/setup.sh does)"
                )
            });
        Prometheus {
            _process: Owned::new(child),
            port,
            log,
            http: crate::http()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// What Prometheus logged so far, for a failing test to show.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `data` of `GET /api/v1/{path}` with `params`; `None` while
    /// Prometheus does not answer (starting). An answer other than success
    /// (a query that does not parse) panics with the error and the log.
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> Option<Value> {
        let url = format!("http://127.0.0.1:{}/api/v1/{path}", self.port);
        let answer = self.http.get(&url).query(params).send().await.ok()?;
        let body: Value = answer.json().await.ok()?;
        assert_eq!(
            body["status"],
            "success",
            "GET {url} {params:?}: {body}\n{}",
            self.log()
        );
        Some(body["data"].clone())
    }

    /// The instant vector `promql` evaluates to now (empty while Prometheus
    /// starts).
    pub async fn query(&self, promql: &str) -> Vec<Value> {
        let data = self.api("query", &[("query", promql)]).await;
        match data.map(|d| d["result"].clone()) {
            Some(Value::Array(samples)) => samples,
            _ => Vec::new(),
        }
    }
}
