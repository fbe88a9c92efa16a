//! Talking to etcd's v2 API: the endpoints (a connection failure moves on
//! to the next), one bounded request, a long poll, and what a key says.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use super::wire::{INDEX_CLEARED, KEY_NOT_FOUND, Node, Reply, Words, encode_form, etcd_index};
use crate::api::Api;
use crate::backend::{Change, View};
use crate::claim::ClaimHook;
use crate::error::EtcdError;
use crate::history::Revisions;
use crate::status::{Expiry, Foreign, Leader, Obstacle};
use crate::telemetry::{RequestOutcome, Telemetry};
use crate::timing::Timing;
use crate::tls::{self, Tls};
use crate::vitals::Vitals;

/// The endpoints, and which one we use now. A connection failure moves on to the next.
pub(super) struct Endpoints {
    pub(super) list: Vec<String>,
    pub(super) current: AtomicUsize,
}

impl Endpoints {
    pub(super) fn current(&self) -> (usize, &str) {
        let i = self.current.load(Ordering::Relaxed) % self.list.len();
        (i, &self.list[i])
    }

    pub(super) fn failed(&self, i: usize) {
        let next = (i + 1) % self.list.len();
        let _ = self
            .current
            .compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Everything needed to talk to etcd, shared by the loop and the follow task.
pub(super) struct Client {
    pub(super) http: reqwest::Client,
    pub(super) endpoints: Endpoints,
    pub(super) key_path: String,
    pub(super) timing: Timing,
    /// The key as etcd names it (`/<election>`), for messages.
    pub(super) key: String,
    pub(super) value: String,
    pub(super) id: String,
    pub(super) revisions: Arc<Revisions>,
    pub(super) changes: mpsc::UnboundedSender<Change>,
    /// HTTP basic authentication: user and password.
    pub(super) credentials: Option<(String, String)>,
    pub(super) words: Arc<Words>,
    pub(super) tls: Option<Tls>,
    pub(super) health: Arc<Vitals>,
    pub(super) telemetry: Arc<dyn Telemetry>,
    /// Told of the value before each request that writes it.
    pub(super) on_claim: Option<ClaimHook>,
}

impl Client {
    /// Bounds every request but a watch: long enough for a slow etcd, short
    /// enough that a renewal retried after it still lands before the deadline.
    pub(super) fn attempt_timeout(&self) -> Duration {
        self.timing.request_timeout()
    }

    /// Sends one request, moving to the next endpoint on a connection failure.
    pub(super) async fn request(
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
                        .transport_error(endpoint, err, self.attempt_timeout())
                        .await;
                    if matches!(err, EtcdError::Timeout { .. }) {
                        return Err(err);
                    }
                    last = Some(err);
                }
            }
        }
        Err(last.unwrap_or_else(|| EtcdError::unreachable("", "no endpoint")))
    }

    /// Adds the credentials, if any. reqwest marks the header sensitive, so
    /// it is never logged.
    pub(super) fn authenticate(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credentials {
            Some((user, password)) => req.basic_auth(user, Some(password)),
            None => req,
        }
    }

    pub(super) async fn transport_error(
        &self,
        endpoint: &str,
        err: reqwest::Error,
        limit: Duration,
    ) -> EtcdError {
        if let (Some(tls), Some(cause)) = (&self.tls, tls::rustls_error(&err)) {
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
        let err = EtcdError::unreachable_by(endpoint, err);
        tls::diagnosed(self.tls.as_ref(), err, self.attempt_timeout() / 2).await
    }

    pub(super) fn view_of(&self, node: &Node) -> View {
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
            asked: None,
        }
    }

    /// A view with no leader.
    pub(super) fn vacant(&self, revision: u64, claimable_at: Option<Instant>) -> View {
        View {
            revision,
            epoch: self.revisions.epoch(),
            leader: None,
            mine: None,
            claimable_at,
            obstacle: None,
            asked: None,
        }
    }

    /// A quorum read of the key: a member cut off from the majority cannot answer it.
    pub(super) async fn read(&self) -> Result<(View, u64), EtcdError> {
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
    pub(super) async fn watch(
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
                    .transport_error(endpoint, err, self.attempt_timeout())
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
                return Err(self.transport_error(endpoint, err, patience).await);
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
