//! Real etcd members on loopback: free ports, a temporary data dir, killed
//! and reaped on drop. One member or a cluster; members can be killed and
//! restarted with their data.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tempfile::TempDir;

use crate::free_port;
use crate::process::Owned;
use crate::proxy::FaultProxy;
use crate::tls::Pki;
use crate::wire::{base64, form_escape, prefix_end, unbase64};

/// The etcd binaries the tests run: `ELECTD_TEST_ETCD=/path/to/etcd`, with
/// its `etcdctl` (and `etcdutl`, which etcd 3.5+ has) beside it; by default
/// the `etcd` and `etcdctl` on the `PATH` (Debian's etcd 3.4).
#[derive(Clone, Debug)]
pub struct Binaries {
    /// The server.
    pub etcd: PathBuf,
    /// Its command-line client.
    pub etcdctl: PathBuf,
    /// Its offline tool (snapshot restore in 3.5+), when it has one.
    pub etcdutl: Option<PathBuf>,
    /// `etcd --version`: major, minor, patch.
    pub version: (u32, u32, u32),
}

/// The variable that names the etcd under test.
pub const TEST_ETCD_VAR: &str = "ELECTD_TEST_ETCD";

/// The etcd binaries under test (read once per process).
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let (etcd, etcdctl, etcdutl) = match std::env::var_os(TEST_ETCD_VAR) {
            Some(path) if !path.is_empty() => {
                let etcd = PathBuf::from(path);
                let dir = etcd.parent().map(Path::to_path_buf).unwrap_or_default();
                let etcdctl = dir.join("etcdctl");
                assert!(
                    etcdctl.is_file(),
                    "{TEST_ETCD_VAR}={}: no etcdctl beside it",
                    etcd.display()
                );
                let etcdutl = Some(dir.join("etcdutl")).filter(|p| p.is_file());
                (etcd, etcdctl, etcdutl)
            }
            _ => (PathBuf::from("etcd"), PathBuf::from("etcdctl"), None),
        };
        let out = Command::new(&etcd)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{} does not run ({e}): install the etcd-server package or set {TEST_ETCD_VAR}",
                    etcd.display()
                )
            });
        let text = String::from_utf8_lossy(&out.stdout);
        let version = parse_version(&text)
            .unwrap_or_else(|| panic!("{} --version printed no version: {text}", etcd.display()));
        Binaries {
            etcd,
            etcdctl,
            etcdutl,
            version,
        }
    })
}

/// `etcd Version: 3.5.1` → `(3, 5, 1)`.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("etcd Version: "))?;
    let mut parts = line.trim().split('.').map(|p| p.parse().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

pub(crate) struct Member {
    pub(crate) name: String,
    client_port: u16,
    peer_port: u16,
    pub(crate) data_dir: PathBuf,
    log: PathBuf,
    pub(crate) process: Option<Owned>,
    /// `--initial-cluster-state` at the next start: `new`, or `existing`
    /// for a member added to a running cluster.
    pub(crate) joining: bool,
}

/// How to start etcd.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// Members in the cluster.
    pub members: usize,
    /// Start with `--enable-v2=true`.
    pub v2: bool,
    /// Extra flags for every member.
    pub extra: Vec<String>,
    /// Serve clients over TLS with these certificates, requiring a client
    /// certificate (`https://` client URLs; peers stay on `http://`).
    pub tls: Option<Arc<Pki>>,
    /// Route each member's incoming peer traffic through a fault proxy, so a
    /// member can be cut off from the others while clients still reach it.
    pub peer_proxies: bool,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            members: 1,
            v2: true,
            extra: Vec::new(),
            tls: None,
            peer_proxies: false,
        }
    }
}

/// A v3 key as etcd holds it ([`Etcd::v3_get`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    /// The value, as text.
    pub value: String,
    /// The revision of the write that created it.
    pub create_revision: u64,
    /// The revision of its last write.
    pub mod_revision: u64,
    /// The lease it is bound to; 0 for none.
    pub lease: i64,
}

impl StoredKey {
    /// For a candidate's key (`~c/<lease>`): the leader record a hand-over
    /// to that candidate writes (`txn::hand_record`), its value with its
    /// lease, to be put bound to that lease.
    pub fn as_record(&self) -> String {
        let mut value: serde_json::Value =
            serde_json::from_str(&self.value).expect("a candidate's value");
        value["lease"] = format!("{:x}", self.lease).into();
        value.to_string()
    }
}

/// An etcd cluster this test owns.
pub struct Etcd {
    dir: TempDir,
    options: EtcdOptions,
    pub(crate) members: Vec<Member>,
    peer_proxies: Vec<FaultProxy>,
    http: reqwest::Client,
}

impl Etcd {
    /// One member with v2 enabled.
    pub async fn single() -> Etcd {
        Etcd::start(EtcdOptions::default()).await
    }

    /// Starts the members and waits until the cluster has a leader. A
    /// port handed out free can be taken before etcd binds it (by any
    /// process's outgoing connection): a cluster that does not come up is
    /// started again on new ports, twice at most.
    pub async fn start(options: EtcdOptions) -> Etcd {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let etcd = Etcd::start_once(options.clone()).await;
            if etcd.healthy_within(Duration::from_secs(30)).await {
                return etcd;
            }
            let logs: Vec<String> = etcd.members.iter().map(|m| tail(&m.log)).collect();
            eprintln!(
                "etcd did not come up (attempt {attempt} of {ATTEMPTS}):\n{}",
                logs.join("\n")
            );
        }
        panic!("etcd did not become healthy in {ATTEMPTS} attempts");
    }

    async fn start_once(options: EtcdOptions) -> Etcd {
        let dir = tempfile::Builder::new()
            .prefix("electd-etcd-")
            .tempdir()
            .expect("a temporary directory");
        let members: Vec<Member> = (0..options.members)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                data_dir: dir.path().join(format!("m{i}")),
                log: dir.path().join(format!("m{i}.log")),
                process: None,
                joining: false,
            })
            .collect();
        let mut peer_proxies = Vec::new();
        if options.peer_proxies {
            for m in &members {
                let target = std::net::SocketAddr::from(([127, 0, 0, 1], m.peer_port));
                peer_proxies.push(FaultProxy::start(target).await);
            }
        }
        let http = match &options.tls {
            Some(pki) => crate::http_with_tls(pki.client_config()),
            None => crate::http(),
        };
        let mut etcd = Etcd {
            dir,
            options,
            members,
            peer_proxies,
            http: http
                .timeout(Duration::from_secs(5))
                .build()
                .expect("an HTTP client"),
        };
        for i in 0..etcd.members.len() {
            etcd.launch(i);
        }
        etcd
    }

    /// The peer URL the other members use for member `i`.
    pub(crate) fn advertised_peer(&self, i: usize) -> String {
        match self.peer_proxies.get(i) {
            Some(proxy) => proxy.url(),
            None => format!("http://127.0.0.1:{}", self.members[i].peer_port),
        }
    }

    pub(crate) fn initial_cluster(&self) -> String {
        (0..self.members.len())
            .map(|i| format!("{}={}", self.members[i].name, self.advertised_peer(i)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The cluster token every member starts with.
    pub(crate) fn token(&self) -> String {
        format!("electd-{}", self.dir.path().display())
    }

    pub(crate) fn launch(&mut self, i: usize) {
        let initial_cluster = self.initial_cluster();
        let token = self.token();
        let scheme = self.scheme();
        let advertised_peer = self.advertised_peer(i);
        let m = &self.members[i];
        let client = format!("{scheme}://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .expect("an etcd log file");
        let mut cmd = Command::new(&binaries().etcd);
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &advertised_peer])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-token", &token])
            .args([
                "--initial-cluster-state",
                if m.joining { "existing" } else { "new" },
            ])
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            // An isolated member must not disrupt the majority with elections it cannot win.
            .arg("--pre-vote=true")
            .args(["--logger", "zap", "--log-level", "warn"])
            .arg(format!("--enable-v2={}", self.options.v2))
            .args(self.options.tls.iter().flat_map(|pki| pki.etcd_flags()))
            .args(&self.options.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log handle"))
            .stderr(log);
        let child = cmd
            .spawn()
            .expect("etcd starts (install the etcd-server package, or set ELECTD_TEST_ETCD)");
        self.members[i].process = Some(Owned::new(child));
    }

    /// The data directory all members live under.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn scheme(&self) -> &'static str {
        if self.options.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!(
            "{}://127.0.0.1:{}",
            self.scheme(),
            self.members[i].client_port
        )
    }

    /// The client port of member `i`.
    pub fn client_port(&self, i: usize) -> u16 {
        self.members[i].client_port
    }

    /// Runs `etcdctl` for `api` (`"v2"` or `"v3"`) against member 0 and
    /// returns what it printed; panics with its complaint when it fails.
    pub fn etcdctl(&self, api: &str, args: &[&str]) -> String {
        self.etcdctl_on(0, api, args)
    }

    /// All client URLs.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// All client URLs, comma-separated (for `--etcd`).
    pub fn endpoints_arg(&self) -> String {
        self.endpoints().join(",")
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The PID of member `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].process.as_ref().map(Owned::pid)
    }

    /// Kills member `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut process) = self.members[i].process.take() {
            process.kill();
        }
    }

    /// Starts member `i` again with its data.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.launch(i);
    }

    /// Cuts member `i` off from the other members (its incoming peer traffic
    /// is dropped); clients still reach it. Needs `peer_proxies`.
    pub fn isolate(&self, i: usize) {
        self.peer_proxies[i].drop_all();
    }

    /// Ends [`Etcd::isolate`].
    pub fn rejoin(&self, i: usize) {
        self.peer_proxies[i].heal();
    }

    /// Whether member `i` answers `/health` as healthy (it has a leader).
    pub async fn is_healthy(&self, i: usize) -> bool {
        let url = format!("{}/health", self.endpoint(i));
        match self.http.get(url).send().await {
            Ok(resp) => resp
                .json::<serde_json::Value>()
                .await
                .is_ok_and(|v| v["health"] == "true"),
            Err(_) => false,
        }
    }

    /// Waits until every running member is healthy.
    pub async fn wait_healthy(&self) {
        assert!(
            self.healthy_within(Duration::from_secs(30)).await,
            "timed out after 30s waiting for etcd to become healthy"
        );
    }

    /// Whether every running member is healthy before `limit` passes.
    async fn healthy_within(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let running: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].process.is_some())
            .collect();
        loop {
            let mut healthy = true;
            for &i in &running {
                if !self.is_healthy(i).await {
                    healthy = false;
                    break;
                }
            }
            if healthy {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The member that is raft leader now, if the cluster has one.
    pub async fn leader(&self) -> Option<usize> {
        for i in 0..self.members.len() {
            if self.members[i].process.is_none() {
                continue;
            }
            let url = format!("{}/v3/maintenance/status", self.endpoint(i));
            let Ok(resp) = self.http.post(url).body("{}").send().await else {
                continue;
            };
            let Ok(status) = resp.json::<serde_json::Value>().await else {
                continue;
            };
            if status["leader"].is_string() && status["leader"] == status["header"]["member_id"] {
                return Some(i);
            }
        }
        None
    }

    /// Member `i`'s `/metrics`, as text.
    async fn metrics_text(&self, i: usize) -> Option<String> {
        let url = format!("{}/metrics", self.endpoint(i));
        self.http.get(url).send().await.ok()?.text().await.ok()
    }

    /// Reads a counter or gauge from member `i`'s `/metrics`.
    pub async fn metric(&self, i: usize, name: &str) -> Option<f64> {
        let text = self.metrics_text(i).await?;
        text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok()).flatten()
        })
    }

    /// The sum of every series of metric `name` on member `i` (e.g. all
    /// methods of `grpc_server_msg_received_total`).
    pub async fn metric_sum(&self, i: usize, name: &str) -> Option<f64> {
        let text = self.metrics_text(i).await?;
        let mut sum = None;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let series = key.split('{').next().unwrap_or(key);
            if series == name
                && let Ok(value) = value.parse::<f64>()
            {
                *sum.get_or_insert(0.0) += value;
            }
        }
        sum
    }

    /// Watch streams opened so far on member `i` (a v3 follower opens one
    /// after each read of the election).
    pub async fn watches_started(&self, i: usize) -> Option<f64> {
        let text = self.metrics_text(i).await?;
        text.lines()
            .filter(|l| l.starts_with("grpc_server_started_total{"))
            .filter(|l| l.contains("grpc_method=\"Watch\""))
            .find_map(|l| l.rsplit_once(' ')?.1.parse().ok())
    }

    /// Raft proposals committed so far: each a replicated, fsynced write.
    pub async fn proposals_committed(&self, i: usize) -> Option<f64> {
        self.metric(i, "etcd_server_proposals_committed_total")
            .await
    }

    /// Events sent to watchers so far, each a wake-up of a watcher.
    pub async fn events_sent(&self, i: usize) -> Option<f64> {
        self.metric(i, "etcd_debugging_mvcc_events_total").await
    }

    /// Sets a v2 key to `value` (a foreign write, as another program would).
    pub async fn v2_put(&self, key: &str, value: &str) -> u16 {
        let url = format!("{}/v2/keys/{key}", self.endpoint(0));
        self.http
            .put(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("value={}", form_escape(value)))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Writes a v3 key through etcd's JSON gateway.
    pub async fn v3_put(&self, key: &str, value: &str) -> bool {
        let body =
            serde_json::json!({"key": base64(key.as_bytes()), "value": base64(value.as_bytes())});
        self.gateway("kv/put", body).await.is_some()
    }

    /// Deletes a v3 key (or, with `prefix`, every key under it) through the gateway.
    pub async fn v3_delete(&self, key: &str, prefix: bool) -> bool {
        let mut body = serde_json::json!({"key": base64(key.as_bytes())});
        if prefix {
            body["range_end"] = base64(&prefix_end(key.as_bytes())).into();
        }
        self.gateway("kv/deleterange", body).await.is_some()
    }

    /// Deletes a v3 key only if its last write is still `mod_revision`, as
    /// a careful operator would (a transaction comparing it); whether it
    /// was deleted.
    pub async fn v3_delete_if_unchanged(&self, key: &str, mod_revision: u64) -> bool {
        let body = serde_json::json!({
            "compare": [{
                "key": base64(key.as_bytes()),
                "target": "MOD",
                "result": "EQUAL",
                "mod_revision": mod_revision.to_string(),
            }],
            "success": [{"request_delete_range": {"key": base64(key.as_bytes())}}],
        });
        self.gateway("kv/txn", body)
            .await
            .is_some_and(|resp| resp["succeeded"].as_bool() == Some(true))
    }

    /// The keys under a v3 prefix, in key order.
    pub async fn v3_keys(&self, prefix: &str) -> Vec<String> {
        let body = serde_json::json!({
            "key": base64(prefix.as_bytes()),
            "range_end": base64(&prefix_end(prefix.as_bytes())),
            "keys_only": true,
        });
        let Some(resp) = self.gateway("kv/range", body).await else {
            return Vec::new();
        };
        resp["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .filter_map(|kv| kv["key"].as_str().and_then(unbase64))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `create_revision` of a v3 key, if it exists.
    pub async fn v3_create_revision(&self, key: &str) -> Option<u64> {
        self.v3_get(key, None).await.map(|k| k.create_revision)
    }

    /// A v3 key as etcd held it at `revision` (from its history, until
    /// compacted), or now with `None`; `None` when it did not exist then.
    /// A linearizable read.
    pub async fn v3_get(&self, key: &str, revision: Option<u64>) -> Option<StoredKey> {
        let mut body = serde_json::json!({"key": base64(key.as_bytes())});
        if let Some(revision) = revision {
            body["revision"] = revision.to_string().into();
        }
        let resp = self.gateway("kv/range", body).await?;
        let kv = &resp["kvs"][0];
        // The gateway answers int64 values as strings, and leaves out zeros.
        let int = |field: &str| kv[field].as_str().map_or(Some(0), |v| v.parse().ok());
        Some(StoredKey {
            value: unbase64(kv["value"].as_str().unwrap_or_default())?,
            create_revision: u64::try_from(int("create_revision")?).ok()?,
            mod_revision: u64::try_from(int("mod_revision")?).ok()?,
            lease: int("lease")?,
        })
        .filter(|k| k.create_revision > 0)
    }

    pub(crate) async fn gateway(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Option<serde_json::Value> {
        for i in 0..self.members.len() {
            if self.members[i].process.is_none() {
                continue;
            }
            let url = format!("{}/v3/{path}", self.endpoint(i));
            if let Ok(resp) = self.http.post(url).json(&body).send().await
                && resp.status().is_success()
            {
                return resp.json().await.ok();
            }
        }
        None
    }
}

/// The last lines of a log, to say why a start failed.
fn tail(log: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(5);
    format!("{}:\n{}", log.display(), lines[from..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read() {
        assert_eq!(
            parse_version("etcd Version: 3.4.23\nGit SHA: Not provided\n"),
            Some((3, 4, 23))
        );
        assert_eq!(parse_version("etcd Version: 3.5.1\n"), Some((3, 5, 1)));
        assert_eq!(parse_version("nothing"), None);
    }
}
