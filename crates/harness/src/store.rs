//! What can happen to etcd's store under a running election: its data
//! wiped, a restore from an older snapshot, a member replaced, and writes
//! by someone else (keys, leases, revisions raised by hand).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::etcd::{Etcd, binaries};
use crate::eventually;
use crate::wire::base64;

impl Etcd {
    /// Stops every member, deletes its data, and starts it afresh on the
    /// same ports with the same flags: a store with no history, as after a
    /// disaster recovery without a backup. (etcd derives a first boot's ids
    /// from its flags, so even the cluster id stays the same.)
    pub async fn wipe(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        for i in 0..self.members.len() {
            let dir = self.members[i].data_dir.clone();
            if dir.exists() {
                std::fs::remove_dir_all(&dir).expect("the data dir can be removed");
            }
            self.members[i].joining = false;
            self.launch(i);
        }
        self.wait_healthy().await;
    }

    /// Saves a snapshot of the v3 store from member 0 (`etcdctl snapshot save`).
    pub fn snapshot(&self, path: &Path) {
        let path = path.to_str().expect("a UTF-8 path");
        self.etcdctl("v3", &["snapshot", "save", path]);
    }

    /// Stops every member and restores each from `snapshot` (etcdutl in etcd
    /// 3.5+, etcdctl in 3.4), then starts them: the store goes back to the
    /// snapshot's revision, as an operator's restore without
    /// `--bump-revision` does.
    pub async fn restore(&mut self, snapshot: &Path) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let cluster = self.initial_cluster();
        let token = self.token();
        for i in 0..self.members.len() {
            let dir = self.members[i].data_dir.clone();
            if dir.exists() {
                std::fs::remove_dir_all(&dir).expect("the data dir can be removed");
            }
            let bins = binaries();
            let (tool, api) = match &bins.etcdutl {
                Some(etcdutl) => (etcdutl.clone(), None),
                None => (bins.etcdctl.clone(), Some("3")),
            };
            let mut cmd = Command::new(&tool);
            if let Some(api) = api {
                cmd.env("ETCDCTL_API", api);
            }
            let out = cmd
                .arg("snapshot")
                .arg("restore")
                .arg(snapshot)
                .arg("--data-dir")
                .arg(&dir)
                .args(["--name", &self.members[i].name])
                .args(["--initial-cluster", &cluster])
                .args(["--initial-cluster-token", &token])
                .args(["--initial-advertise-peer-urls", &self.advertised_peer(i)])
                .stdin(Stdio::null())
                .output()
                .expect("the snapshot tool runs");
            assert!(
                out.status.success(),
                "snapshot restore failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            self.members[i].joining = false;
            self.launch(i);
        }
        self.wait_healthy().await;
    }

    /// Replaces member `i` by a new member: removed from the cluster, its
    /// data deleted, added again and started to join the running cluster,
    /// from which it receives the same history.
    pub async fn replace_member(&mut self, i: usize) {
        let other = self.other(i);
        let list = self.etcdctl_on(other, "v3", &["member", "list", "-w", "json"]);
        let list: serde_json::Value = serde_json::from_str(&list).expect("member list as JSON");
        let name = self.members[i].name.clone();
        let id = list["members"]
            .as_array()
            .and_then(|members| members.iter().find(|m| m["name"] == name.as_str()))
            .and_then(|m| m["ID"].as_u64())
            .expect("the member is listed");
        // Removed while it runs, as an operator would, then stopped and
        // wiped. etcd refuses while a member joined less than 5 s ago.
        let remove = ["member", "remove", &format!("{id:x}")];
        self.etcdctl_until_accepted(other, &remove).await;
        self.kill(i);
        let dir = self.members[i].data_dir.clone();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("the data dir can be removed");
        }
        let peer = self.advertised_peer(i);
        let add = [
            "member",
            "add",
            name.as_str(),
            &format!("--peer-urls={peer}"),
        ];
        self.etcdctl_until_accepted(other, &add).await;
        self.members[i].joining = true;
        self.launch(i);
        self.wait_healthy().await;
    }

    /// Runs a membership change until etcd accepts it: it refuses one while
    /// the cluster has not been healthy for a few seconds.
    async fn etcdctl_until_accepted(&self, i: usize, args: &[&str]) {
        let what = format!("etcd to accept {args:?}");
        eventually(Duration::from_secs(30), &what, || async {
            let out = Command::new(&binaries().etcdctl)
                .env("ETCDCTL_API", "3")
                .arg(format!("--endpoints={}", self.endpoint(i)))
                .args(args)
                .stdin(Stdio::null())
                .output()
                .ok()?;
            out.status.success().then_some(())
        })
        .await;
    }

    fn other(&self, i: usize) -> usize {
        (0..self.len())
            .find(|&j| j != i && self.pid(j).is_some())
            .expect("another running member")
    }

    /// Compacts etcd's v3 history up to now: watches from older revisions
    /// are cancelled from then on.
    pub async fn compact(&self) {
        let revision = self.v3_revision().await;
        let body = serde_json::json!({ "revision": revision.to_string(), "physical": true });
        self.gateway("kv/compaction", body)
            .await
            .expect("a compaction");
    }

    /// Freezes member `i` (SIGSTOP): its sockets stay open, nothing answers.
    pub fn pause(&self, i: usize) {
        if let Some(process) = &self.members[i].process {
            process.signal(rustix::process::Signal::STOP);
        }
    }

    /// Ends [`Etcd::pause`] (SIGCONT).
    pub fn resume(&self, i: usize) {
        if let Some(process) = &self.members[i].process {
            process.signal(rustix::process::Signal::CONT);
        }
    }

    /// Grants a v3 lease of `ttl` seconds, as another client would.
    pub async fn v3_grant(&self, ttl: u64) -> i64 {
        let resp = self
            .gateway("lease/grant", serde_json::json!({ "TTL": ttl.to_string() }))
            .await
            .expect("a lease grant");
        resp["ID"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("a lease id")
    }

    /// Revokes a v3 lease (and so deletes its keys).
    pub async fn v3_revoke(&self, lease: i64) -> bool {
        self.gateway(
            "lease/revoke",
            serde_json::json!({ "ID": lease.to_string() }),
        )
        .await
        .is_some()
    }

    /// Writes a v3 key bound to `lease`.
    pub async fn v3_put_with_lease(&self, key: &str, value: &str, lease: i64) -> bool {
        let body = serde_json::json!({
            "key": base64(key.as_bytes()),
            "value": base64(value.as_bytes()),
            "lease": lease.to_string(),
        });
        self.gateway("kv/put", body).await.is_some()
    }

    /// etcd's current revision (v3).
    pub async fn v3_revision(&self) -> u64 {
        let body = serde_json::json!({ "key": base64(b"\0"), "count_only": true });
        let resp = self
            .gateway("kv/range", body)
            .await
            .expect("a range answer");
        resp["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .expect("a revision")
    }

    /// etcd's current v2 index.
    pub async fn v2_index(&self) -> u64 {
        let url = format!("{}/v2/keys/?quorum=true", self.endpoint(0));
        let resp = crate::http()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client")
            .get(url)
            .send()
            .await
            .expect("a v2 answer");
        resp.headers()["X-Etcd-Index"]
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .expect("an X-Etcd-Index header")
    }

    /// Raises the revision (v3) or index (v2) past `floor` by writing a
    /// key outside the election again and again, as other traffic would.
    pub async fn raise_past(&self, api: &str, floor: u64) {
        eventually(
            Duration::from_secs(60),
            "the revision to pass the floor",
            || async {
                let now = match api {
                    "v2" => self.v2_index().await,
                    _ => self.v3_revision().await,
                };
                if now > floor {
                    return Some(());
                }
                for _ in 0..(floor + 1 - now).min(200) {
                    match api {
                        "v2" => {
                            self.v2_put("traffic", "x").await;
                        }
                        _ => {
                            self.v3_put("/traffic", "x").await;
                        }
                    }
                }
                None
            },
        )
        .await;
    }

    /// Runs `etcdctl` against member `i`; panics with its complaint when it fails.
    pub fn etcdctl_on(&self, i: usize, api: &str, args: &[&str]) -> String {
        let out = Command::new(&binaries().etcdctl)
            .env("ETCDCTL_API", api.trim_start_matches('v'))
            .arg(format!("--endpoints={}", self.endpoint(i)))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("etcdctl runs (install the etcd-client package)");
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
