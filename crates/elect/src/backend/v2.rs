//! The v2 keys API: one key with a TTL, the seed's protocol.
//!
//! * claim: `PUT /v2/keys/<election>?prevExist=false` with our value and TTL;
//!   the term is the key's `createdIndex`;
//! * renew: `refresh=true&prevExist=true&prevValue=<our value>`, so a node never
//!   renews a key it did not create in this process (the value holds a nonce);
//! * follow: a quorum read, then `wait=true&waitIndex=` long polls, re-read
//!   when etcd cleared the index and at least once per TTL;
//! * release: `DELETE …?prevValue=<our value>`: the condition must be in the
//!   query string (in a form body etcd ignores it and deletes unconditionally).
//!
//! Across etcd members v2 stamps expiry with the receiving member's wall
//! clock; clock skew between members can expire a key early. Multi-host
//! deployments should use v3.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

use super::retry::Backoff;
use super::{Backend, Campaign, Change, RenewError, Renewal, View};
use crate::config::{Api, Config};
use crate::error::{ConfigError, EtcdError, chain};
use crate::health::HealthCells;
use crate::history::Revisions;
use crate::status::{Expiry, Foreign, Leader, Obstacle};
use crate::telemetry::{RequestOutcome, Telemetry};
use crate::timing::Timing;
use crate::tls::{self, Tls};

/// etcd's answer to a v2 keys request.
#[derive(Debug, Deserialize)]
pub(crate) struct KeysResponse {
    pub action: String,
    pub node: Option<Node>,
}

/// A v2 node. Only the fields electd reads; etcd sends more.
#[derive(Debug, Deserialize)]
pub(crate) struct Node {
    pub value: Option<String>,
    /// Seconds left (absent when under a second, as etcd omits zero).
    #[serde(default)]
    pub ttl: Option<i64>,
    /// When the key expires; absent on a key without a TTL.
    #[serde(default)]
    pub expiration: Option<String>,
    #[serde(rename = "createdIndex")]
    pub created_index: u64,
    #[serde(rename = "modifiedIndex")]
    pub modified_index: u64,
}

/// etcd's v2 error body.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(rename = "errorCode")]
    pub error_code: u64,
    pub message: String,
    #[serde(default)]
    pub cause: Option<String>,
    #[serde(default)]
    pub index: Option<u64>,
}

const KEY_NOT_FOUND: u64 = 100;
const COMPARE_FAILED: u64 = 101;
const NODE_EXISTS: u64 = 105;
const INDEX_CLEARED: u64 = 401;
const ACCESS_DENIED: u64 = 110;

/// One HTTP answer from etcd.
struct Reply {
    endpoint: String,
    status: StatusCode,
    /// `X-Etcd-Index`: the store's index when the request was served.
    index: Option<u64>,
    body: Vec<u8>,
    /// What this client's errors say beyond etcd's words.
    words: Arc<Words>,
}

/// What a v2 client says about etcd's refusals, in its configuration's terms.
#[derive(Debug)]
struct Words {
    /// What a refusal (errorCode 110) means: etcd's v2 API answers a wrong
    /// password and a missing permission alike, so say both.
    denied: String,
    /// How to choose the v3 API, for "v2 disabled".
    use_v3: String,
}

impl Reply {
    fn keys(&self, what: &'static str) -> Result<KeysResponse, EtcdError> {
        serde_json::from_slice(&self.body).map_err(|e| self.malformed(what, e.to_string()))
    }

    /// The etcd error in the body, or the right error when there is none.
    fn error(&self, what: &'static str) -> Result<ErrorBody, EtcdError> {
        if let Ok(body) = serde_json::from_slice::<ErrorBody>(&self.body) {
            return Ok(body);
        }
        if self.status == StatusCode::NOT_FOUND && self.index.is_none() {
            // etcd 3.4+ without --enable-v2: a plain "404 page not found".
            return Err(EtcdError::V2Disabled {
                endpoint: self.endpoint.clone(),
                use_v3: self.words.use_v3.clone(),
            });
        }
        Err(self.unexpected(what))
    }

    fn unexpected(&self, what: &'static str) -> EtcdError {
        let text = String::from_utf8_lossy(&self.body);
        let text: String = text.trim().chars().take(200).collect();
        match self.status {
            StatusCode::UNAUTHORIZED => EtcdError::AuthFailed {
                endpoint: self.endpoint.clone(),
                detail: text,
            },
            StatusCode::FORBIDDEN => EtcdError::PermissionDenied {
                endpoint: self.endpoint.clone(),
                detail: text,
            },
            status if status.is_success() => {
                self.malformed(what, format!("unexpected status {status}: {text}"))
            }
            status => EtcdError::Rejected {
                endpoint: self.endpoint.clone(),
                detail: format!("{what}: HTTP {status}: {text}"),
            },
        }
    }

    fn etcd_error(&self, what: &'static str, err: &ErrorBody) -> EtcdError {
        match err.error_code {
            ACCESS_DENIED => EtcdError::AuthFailed {
                endpoint: self.endpoint.clone(),
                detail: format!("{}: {}", err.message, self.words.denied),
            },
            _ => EtcdError::Rejected {
                endpoint: self.endpoint.clone(),
                detail: format!(
                    "{what}: error {} {}{}",
                    err.error_code,
                    err.message,
                    err.cause
                        .as_deref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default()
                ),
            },
        }
    }

    fn malformed(&self, what: &'static str, detail: String) -> EtcdError {
        EtcdError::Malformed {
            endpoint: self.endpoint.clone(),
            what,
            detail,
        }
    }
}

/// The endpoints, and which one we use now. A connection failure moves on to the next.
struct Endpoints {
    list: Vec<String>,
    current: AtomicUsize,
}

impl Endpoints {
    fn current(&self) -> (usize, &str) {
        let i = self.current.load(Ordering::Relaxed) % self.list.len();
        (i, &self.list[i])
    }

    fn failed(&self, i: usize) {
        let next = (i + 1) % self.list.len();
        let _ = self
            .current
            .compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Everything needed to talk to etcd, shared by the loop and the follow task.
struct Client {
    http: reqwest::Client,
    endpoints: Endpoints,
    key_path: String,
    timing: Timing,
    /// The key as etcd names it (`/<election>`), for messages.
    key: String,
    value: String,
    id: String,
    revisions: Arc<Revisions>,
    changes: mpsc::UnboundedSender<Change>,
    /// HTTP basic authentication: user and password.
    credentials: Option<(String, String)>,
    words: Arc<Words>,
    tls: Option<Tls>,
    health: Arc<HealthCells>,
    telemetry: Arc<dyn Telemetry>,
}

impl Client {
    /// Bounds every request but a watch: long enough for a slow etcd, short
    /// enough that a renewal retried after it still lands before the deadline.
    fn attempt_timeout(&self) -> Duration {
        self.timing.request_timeout()
    }

    /// Sends one request, moving to the next endpoint on a connection failure.
    async fn request(
        &self,
        op: &'static str,
        method: Method,
        query: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> Result<Reply, EtcdError> {
        // Every request here is a write or a quorum read: linearizable.
        let before = self.revisions.before_request();
        let mut last = None;
        for _ in 0..self.endpoints.list.len() {
            let (i, endpoint) = self.endpoints.current();
            let started = Instant::now();
            let mut req = self
                .http
                .request(method.clone(), format!("{endpoint}{}", self.key_path))
                .query(query)
                .timeout(self.attempt_timeout());
            req = self.authenticate(req);
            if !form.is_empty() {
                req = req
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(encode_form(form));
            }
            let result = async {
                let resp = req.send().await?;
                let status = resp.status();
                let index = etcd_index(&resp);
                let body = resp.bytes().await?.to_vec();
                Ok::<_, reqwest::Error>((status, index, body))
            }
            .await;
            match result {
                Ok((status, index, body)) => {
                    let outcome = match status.as_u16() {
                        200..=299 => RequestOutcome::Ok,
                        404 | 412 => RequestOutcome::Conflict,
                        _ => RequestOutcome::Error,
                    };
                    self.telemetry.etcd_request(op, outcome, started.elapsed());
                    if outcome != RequestOutcome::Error {
                        self.health.etcd_ok();
                    }
                    // Only the store's own answers carry its index after the
                    // request applied; an error from raft (a timeout, a member
                    // still catching up) may carry a member's stale one.
                    if outcome != RequestOutcome::Error
                        && let Some(index) = index
                        && let Some(regression) = self.revisions.answered(before, index)
                    {
                        let _ = self.changes.send(Change::Regressed(regression));
                    }
                    return Ok(Reply {
                        endpoint: endpoint.to_owned(),
                        status,
                        index,
                        body,
                        words: self.words.clone(),
                    });
                }
                Err(err) => {
                    self.telemetry
                        .etcd_request(op, RequestOutcome::Error, started.elapsed());
                    self.endpoints.failed(i);
                    let err = self
                        .transport_error(endpoint, &err, self.attempt_timeout())
                        .await;
                    if matches!(err, EtcdError::Timeout { .. }) {
                        return Err(err);
                    }
                    last = Some(err);
                }
            }
        }
        Err(last.unwrap_or_else(|| EtcdError::Unreachable {
            endpoint: String::new(),
            detail: "no endpoint".to_owned(),
        }))
    }

    /// Adds the credentials, if any. reqwest marks the header sensitive, so
    /// it is never logged.
    fn authenticate(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credentials {
            Some((user, password)) => req.basic_auth(user, Some(password)),
            None => req,
        }
    }

    async fn transport_error(
        &self,
        endpoint: &str,
        err: &reqwest::Error,
        limit: Duration,
    ) -> EtcdError {
        if let (Some(tls), Some(cause)) = (&self.tls, tls::rustls_error(err)) {
            return EtcdError::Tls {
                endpoint: endpoint.to_owned(),
                detail: tls.explain(&cause),
            };
        }
        if err.is_timeout() {
            return EtcdError::Timeout {
                endpoint: endpoint.to_owned(),
                timeout: limit,
            };
        }
        let err = EtcdError::Unreachable {
            endpoint: endpoint.to_owned(),
            detail: chain(err),
        };
        tls::diagnosed(self.tls.as_ref(), err, self.attempt_timeout() / 2).await
    }

    fn view_of(&self, node: &Node) -> View {
        let raw = node.value.as_deref().unwrap_or_default();
        let mut leader = Leader::from_stored(raw.as_bytes(), node.created_index);
        let mine = raw == self.value;
        let mut obstacle = None;
        let has_ttl = node.expiration.is_some();
        let expiry = if has_ttl {
            Expiry::Ttl(node.ttl.and_then(|t| u64::try_from(t).ok()).unwrap_or(0))
        } else {
            Expiry::Never
        };
        if !mine {
            // electd always sets a TTL; a value it did not write, one with
            // no TTL, or one naming this node (which did not write it) is
            // not a leader anyone can trust. A value in our format with a
            // TTL cannot be told from a real one.
            let kind = match &leader.id {
                None => Some(Foreign::Value),
                Some(_) if !has_ttl => Some(Foreign::Unbound),
                Some(id) if *id == self.id => Some(Foreign::NamesThisNode),
                _ => None,
            };
            if let Some(kind) = kind {
                leader.verified = false;
                obstacle = Some(Obstacle::ForeignKey {
                    key: self.key.clone(),
                    kind,
                    expiry,
                    api: Api::V2,
                });
            }
        }
        View {
            revision: node.modified_index,
            epoch: self.revisions.epoch(),
            leader: Some(leader),
            mine: mine.then_some(node.created_index),
            claimable_at: None,
            obstacle,
        }
    }

    /// A view with no leader.
    fn vacant(&self, revision: u64, claimable_at: Option<Instant>) -> View {
        View {
            revision,
            epoch: self.revisions.epoch(),
            leader: None,
            mine: None,
            claimable_at,
            obstacle: None,
        }
    }

    /// A quorum read of the key: a member cut off from the majority cannot answer it.
    async fn read(&self) -> Result<(View, u64), EtcdError> {
        let reply = self
            .request("get", Method::GET, &[("quorum", "true")], &[])
            .await?;
        match reply.status {
            StatusCode::OK => {
                let keys = reply.keys("read")?;
                let node = keys
                    .node
                    .ok_or_else(|| reply.malformed("read", "no node".to_owned()))?;
                let index = reply.index.unwrap_or(node.modified_index);
                let mut view = self.view_of(&node);
                view.revision = index;
                Ok((view, index))
            }
            _ => {
                let err = reply.error("read")?;
                if err.error_code == KEY_NOT_FOUND {
                    let index = reply.index.or(err.index).unwrap_or(0);
                    Ok((self.vacant(index, None), index))
                } else {
                    Err(reply.etcd_error("read", &err))
                }
            }
        }
    }

    /// One long poll from `wait_index`, for at most `patience`. `Ok(None)`
    /// means nothing happened (or etcd cleared the index): read again.
    async fn watch(
        &self,
        wait_index: u64,
        patience: Duration,
    ) -> Result<Option<(View, u64)>, EtcdError> {
        let (i, endpoint) = self.endpoints.current();
        let started = Instant::now();
        let index = wait_index.to_string();
        let send = self
            .authenticate(
                self.http
                    .get(format!("{endpoint}{}", self.key_path))
                    .query(&[("wait", "true"), ("waitIndex", index.as_str())]),
            )
            .send();
        // The headers come at once; the body only when the key changes.
        let resp = match timeout(self.attempt_timeout(), send).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(err)) => {
                self.endpoints.failed(i);
                return Err(self
                    .transport_error(endpoint, &err, self.attempt_timeout())
                    .await);
            }
            Err(_) => {
                self.endpoints.failed(i);
                return Err(EtcdError::Timeout {
                    endpoint: endpoint.to_owned(),
                    timeout: self.attempt_timeout(),
                });
            }
        };
        let status = resp.status();
        let header_index = etcd_index(&resp);
        if status == StatusCode::OK {
            self.health.etcd_ok();
        }
        let body = match timeout(patience, resp.bytes()).await {
            Err(_) => return Ok(None),
            Ok(Err(err)) => {
                self.endpoints.failed(i);
                return Err(self.transport_error(endpoint, &err, patience).await);
            }
            Ok(Ok(body)) => body.to_vec(),
        };
        self.telemetry
            .etcd_request("watch", RequestOutcome::Ok, started.elapsed());
        let reply = Reply {
            endpoint: endpoint.to_owned(),
            status,
            index: header_index,
            body,
            words: self.words.clone(),
        };
        if status != StatusCode::OK {
            let err = reply.error("watch")?;
            if err.error_code == INDEX_CLEARED {
                return Ok(None);
            }
            return Err(reply.etcd_error("watch", &err));
        }
        self.health.etcd_ok();
        let event = reply.keys("watch event")?;
        let node = event
            .node
            .ok_or_else(|| reply.malformed("watch event", "no node".to_owned()))?;
        let next = node.modified_index.saturating_add(1);
        self.revisions.observed(node.modified_index);
        let view = match event.action.as_str() {
            // A resign (compare-and-delete) or an expiry ends the holder's
            // leadership first; a plain delete is someone else's, and the
            // holder leads until it notices or its deadline passes.
            "expire" | "compareAndDelete" => self.vacant(node.modified_index, None),
            "delete" => self.vacant(
                node.modified_index,
                Some(Instant::now() + self.timing.after_foreign_delete()),
            ),
            _ => self.view_of(&node),
        };
        Ok(Some((view, next)))
    }
}

/// Follows the key for as long as the backend runs: read, then watch; read
/// again after a cleared index, a broken connection, or a quiet TTL.
async fn follow(client: Arc<Client>) {
    let tx = client.changes.clone();
    let mut backoff = Backoff::new(client.timing.backoff_cap());
    'read: loop {
        let mut wait_index = match client.read().await {
            Ok((view, index)) => {
                backoff.reset();
                if tx.send(Change::View(view)).is_err() {
                    return;
                }
                index.saturating_add(1)
            }
            Err(err) => {
                if tx.send(Change::Problem(err)).is_err() {
                    return;
                }
                sleep(backoff.next_delay()).await;
                continue 'read;
            }
        };
        loop {
            match client
                .watch(wait_index, client.timing.poll_patience())
                .await
            {
                Ok(Some((view, next))) => {
                    wait_index = next;
                    if tx.send(Change::View(view)).is_err() {
                        return;
                    }
                }
                Ok(None) => continue 'read,
                Err(err) => {
                    if tx.send(Change::Problem(err)).is_err() {
                        return;
                    }
                    sleep(backoff.next_delay()).await;
                    continue 'read;
                }
            }
        }
    }
}

/// The v2 backend.
pub(crate) struct V2 {
    client: Arc<Client>,
    follower: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// The key was left to expire (`forget`): a release must not delete it.
    forgotten: AtomicBool,
}

impl V2 {
    pub(crate) fn new(
        config: &Config,
        health: Arc<HealthCells>,
        revisions: Arc<Revisions>,
        changes: mpsc::UnboundedSender<Change>,
    ) -> Result<V2, ConfigError> {
        // reqwest has no crypto provider of its own here: it always gets a
        // configuration, even one it never uses for http:// endpoints.
        let tls_config = match &config.tls {
            Some(tls) => tls.rustls_config(),
            None => tls::unused_config(),
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config)
            .http1_only()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(config.timing.connect_timeout())
            .pool_idle_timeout(config.timing.pool_idle())
            .build()
            .map_err(|e| ConfigError::InvalidEndpoint {
                url: config.endpoints.join(","),
                reason: chain(&e),
            })?;
        let nonce = crate::value::new_nonce();
        let key = format!("/{}", config.election);
        let denied = match &config.credentials {
            Some(c) => format!(
                "wrong user name or password for {:?}, or its roles lack read/write permission \
                 on {key} (etcd's v2 API answers both alike)",
                c.user
            ),
            None => format!(
                "etcd has v2 authentication enabled and its guest role may not read/write {key}: \
                 give a user ({})",
                config.names.user
            ),
        };
        Ok(V2 {
            client: Arc::new(Client {
                http,
                endpoints: Endpoints {
                    list: config.endpoints.clone(),
                    current: AtomicUsize::new(0),
                },
                key_path: format!("/v2/keys/{}", config.election),
                key: key.clone(),
                value: crate::value::encode(&config.id, &config.advertise, &nonce),
                id: config.id.clone(),
                revisions,
                changes,
                timing: config.timing,
                credentials: config
                    .credentials
                    .as_ref()
                    .map(|c| (c.user.clone(), c.password.clone())),
                words: Arc::new(Words {
                    denied,
                    use_v3: config.names.api_v3.clone(),
                }),
                tls: config.tls.clone(),
                health,
                telemetry: config.telemetry.clone(),
            }),
            follower: std::sync::Mutex::new(None),
            forgotten: AtomicBool::new(false),
        })
    }

    fn ttl_secs(&self) -> String {
        self.client.timing.ttl().as_secs().to_string()
    }
}

impl Backend for V2 {
    const QUEUES: bool = false;

    fn start(&self) {
        let task = tokio::spawn(follow(self.client.clone()));
        let mut follower = self.follower.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = follower.replace(task) {
            old.abort();
        }
    }

    async fn campaign(&self) -> Result<Campaign, EtcdError> {
        self.forgotten.store(false, Ordering::Relaxed);
        let c = &self.client;
        let ttl = self.ttl_secs();
        let sent_at = Instant::now();
        let reply = c
            .request(
                "create",
                Method::PUT,
                &[("prevExist", "false")],
                &[("value", &c.value), ("ttl", &ttl)],
            )
            .await?;
        match reply.status {
            StatusCode::CREATED => {
                let node = reply
                    .keys("create")?
                    .node
                    .ok_or_else(|| reply.malformed("create", "no node".to_owned()))?;
                let view = c.view_of(&node);
                if view.mine.is_none() {
                    return Err(
                        reply.malformed("create", "the created value is not ours".to_owned())
                    );
                }
                Ok(Campaign::Claimed {
                    claim: node.created_index,
                    view: Some(Box::new(view)),
                    renewal: Renewal {
                        sent_at,
                        ttl: c.timing.ttl(),
                    },
                })
            }
            _ => {
                let err = reply.error("create")?;
                if err.error_code == NODE_EXISTS {
                    Ok(Campaign::Taken {
                        revision: err.index.or(reply.index).unwrap_or(0),
                    })
                } else {
                    Err(reply.etcd_error("create", &err))
                }
            }
        }
    }

    async fn renew(&self) -> Result<Renewal, RenewError> {
        let c = &self.client;
        let ttl = self.ttl_secs();
        let sent_at = Instant::now();
        let reply = c
            .request(
                "refresh",
                Method::PUT,
                &[
                    ("refresh", "true"),
                    ("prevExist", "true"),
                    ("prevValue", &c.value),
                ],
                &[("ttl", &ttl)],
            )
            .await
            .map_err(RenewError::Failed)?;
        if reply.status == StatusCode::OK {
            return Ok(Renewal {
                sent_at,
                ttl: c.timing.ttl(),
            });
        }
        let err = reply.error("refresh").map_err(RenewError::Failed)?;
        match err.error_code {
            KEY_NOT_FOUND | COMPARE_FAILED => Err(RenewError::Lost),
            _ => Err(RenewError::Failed(reply.etcd_error("refresh", &err))),
        }
    }

    async fn forget(&self) {
        // One key with a TTL: left alone, it expires.
        self.forgotten.store(true, Ordering::Relaxed);
    }

    async fn release(&self) -> Result<(), EtcdError> {
        if self.forgotten.load(Ordering::Relaxed) {
            return Ok(());
        }
        let c = &self.client;
        let reply = c
            .request("delete", Method::DELETE, &[("prevValue", &c.value)], &[])
            .await?;
        if reply.status == StatusCode::OK {
            return Ok(());
        }
        let err = reply.error("delete")?;
        match err.error_code {
            // Not ours any more, or already gone: nothing to release.
            KEY_NOT_FOUND | COMPARE_FAILED => Ok(()),
            _ => Err(reply.etcd_error("delete", &err)),
        }
    }

    async fn candidates(&self) -> Result<Vec<Leader>, EtcdError> {
        let (view, _) = self.client.read().await?;
        Ok(view.leader.into_iter().collect())
    }

    fn stop(&self) {
        let mut follower = self.follower.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = follower.take() {
            task.abort();
        }
    }
}

fn etcd_index(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get("X-Etcd-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn encode_form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reply(status: u16, index: Option<u64>, body: &[u8]) -> Reply {
        Reply {
            endpoint: "http://e:1".into(),
            status: StatusCode::from_u16(status).unwrap(),
            index,
            body: body.to_vec(),
            words: Arc::new(Words {
                denied: "no access".into(),
                use_v3: "--api v3".into(),
            }),
        }
    }

    #[test]
    fn v2_disabled_is_recognised() {
        let r = reply(404, None, b"404 page not found\n");
        assert!(matches!(r.error("read"), Err(EtcdError::V2Disabled { .. })));
        let r = reply(
            404,
            Some(7),
            br#"{"errorCode":100,"message":"Key not found","cause":"/leader","index":7}"#,
        );
        assert_eq!(r.error("read").unwrap().error_code, KEY_NOT_FOUND);
    }

    #[test]
    fn index_cleared_comes_as_http_400() {
        let r = reply(
            400,
            Some(1030),
            br#"{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [1030/7]","index":1030}"#,
        );
        assert_eq!(r.error("watch").unwrap().error_code, INDEX_CLEARED);
    }

    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            encode_form(&[("value", r#"{"id":"a b"}"#), ("ttl", "5")]),
            "value=%7B%22id%22%3A%22a+b%22%7D&ttl=5"
        );
    }

    proptest! {
        /// Any node etcd may send: only our exact value is ever ours.
        #[test]
        fn arbitrary_nodes_never_make_a_false_leader(
            value in proptest::option::of(".{0,200}"),
            created_index in any::<u64>(),
            modified_index in any::<u64>(),
        ) {
            let config = crate::Config::builder()
                .api(crate::Api::V2)
                .id("me")
                .advertise("http://127.0.0.1:1")
                .ttl(Duration::from_secs(2))
                .build()
                .unwrap();
            let v2 = V2::new(
                &config,
                Arc::new(HealthCells::new()),
                Arc::new(Revisions::default()),
                mpsc::unbounded_channel().0,
            )
            .unwrap();
            let expiration = Some("2026-12-01T09:43:17Z".to_owned());
            let node = Node { value: value.clone(), ttl: Some(2), expiration: expiration.clone(), created_index, modified_index };
            let view = v2.client.view_of(&node);
            prop_assert_eq!(view.mine.is_some(), value.as_deref() == Some(v2.client.value.as_str()));
            prop_assert_eq!(view.leader.map(|l| l.term), Some(created_index));
            // Our own value reads back as ours.
            let own = Node { value: Some(v2.client.value.clone()), ttl: None, expiration, created_index, modified_index };
            prop_assert_eq!(v2.client.view_of(&own).mine, Some(created_index));
            // Without a TTL, no value in our format is trusted.
            let forged = Node { value: Some(r#"{"id":"b","advertise":"x"}"#.into()), ttl: None, expiration: None, created_index, modified_index };
            let view = v2.client.view_of(&forged);
            prop_assert!(view.leader.is_some_and(|l| l.is_foreign()));
            let never = matches!(view.obstacle, Some(Obstacle::ForeignKey { expiry: Expiry::Never, .. }));
            prop_assert!(never, "{:?}", view.obstacle);
        }

        #[test]
        fn arbitrary_bodies_never_panic(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let r = reply(status, None, &body);
            let _ = r.keys("x");
            let _ = r.error("x");
        }
    }
}
