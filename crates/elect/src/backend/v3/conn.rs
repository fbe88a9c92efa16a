//! Talking to etcd: one client for one endpoint at a time, replaced (and
//! moved to the next endpoint) when it fails; every request bounded, timed,
//! and, when etcd answers it linearizably, checked against the history seen.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client as EtcdClient, ConnectOptions, WatchResponse};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, timeout};

use super::classify::{self, AUTH_NOT_ENABLED, USER_EMPTY};
use super::txn::{self, Conditional};
use crate::backend::Change;
use crate::error::EtcdError;
use crate::history::Revisions;
use crate::telemetry::{RequestOutcome, Telemetry};
use crate::timing::Timing;
use crate::tls::{self, Tls};
use crate::vitals::Vitals;

/// The connection: one client for one endpoint, replaced when it fails.
pub(super) struct Conn {
    pub endpoints: Vec<String>,
    pub options: ConnectOptions,
    /// The same options without the user: etcd refuses to authenticate
    /// anyone while its authentication is off, and etcd's own client then
    /// carries on without a token. So can we, which lets users and roles
    /// be set up before `auth enable`.
    pub anonymous: Option<ConnectOptions>,
    pub tls: Option<Tls>,
    /// How long asking etcd why a TLS connection broke may take.
    pub diagnose_within: Duration,
    /// What a permission refusal means: the permission the user lacks.
    pub denied: String,
    /// Where the etcd user is set, for the message that none is.
    pub user_setting: String,
    state: std::sync::Mutex<ConnState>,
    generation: watch::Sender<u64>,
}

struct ConnState {
    generation: u64,
    index: usize,
    client: Option<EtcdClient>,
}

/// A client, the endpoint it talks to, and the generation to name when it fails.
#[derive(Clone)]
pub(super) struct Link {
    pub generation: u64,
    pub endpoint: String,
    pub client: EtcdClient,
}

impl Conn {
    pub(super) fn new(
        endpoints: Vec<String>,
        options: ConnectOptions,
        anonymous: Option<ConnectOptions>,
        tls: Option<Tls>,
        diagnose_within: Duration,
        denied: String,
        user_setting: String,
    ) -> Conn {
        Conn {
            endpoints,
            options,
            anonymous,
            tls,
            diagnose_within,
            denied,
            user_setting,
            state: std::sync::Mutex::new(ConnState {
                generation: 0,
                index: 0,
                client: None,
            }),
            generation: watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnState> {
        // The state is plain data; a panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn link(&self, limit: Duration) -> Result<Link, EtcdError> {
        let (generation, endpoint, existing) = {
            let s = self.lock();
            (
                s.generation,
                self.endpoints[s.index].clone(),
                s.client.clone(),
            )
        };
        if let Some(client) = existing {
            return Ok(Link {
                generation,
                endpoint,
                client,
            });
        }
        let client = match timeout(limit, self.connect(&endpoint)).await {
            Ok(Ok(client)) => client,
            Ok(Err(err)) => {
                self.reconnect(generation);
                return Err(self.error(&endpoint, err).await);
            }
            Err(_) => {
                self.reconnect(generation);
                return Err(EtcdError::Timeout {
                    endpoint,
                    timeout: limit,
                });
            }
        };
        let mut s = self.lock();
        if s.generation == generation && s.client.is_none() {
            s.client = Some(client.clone());
        }
        Ok(Link {
            generation,
            endpoint,
            client,
        })
    }

    async fn connect(&self, endpoint: &str) -> Result<EtcdClient, etcd_client::Error> {
        match EtcdClient::connect([endpoint], Some(self.options.clone())).await {
            Err(etcd_client::Error::GRpcStatus(status))
                if status.message().contains(AUTH_NOT_ENABLED)
                    && let Some(anonymous) = &self.anonymous =>
            {
                tracing::debug!(%endpoint, "etcd authentication is off: connecting without a user");
                EtcdClient::connect([endpoint], Some(anonymous.clone())).await
            }
            result => result,
        }
    }

    /// What an etcd-client error means for us.
    pub(super) async fn error(&self, endpoint: &str, err: etcd_client::Error) -> EtcdError {
        let err = match classify::client_error(endpoint, err, self.tls.as_ref(), &self.user_setting)
        {
            // With a user configured, only a connection made while etcd's
            // authentication was off lacks a token; the next one will not.
            EtcdError::AuthFailed { endpoint, detail }
                if detail.contains(USER_EMPTY) && self.anonymous.is_some() =>
            {
                EtcdError::AuthFailed {
                    endpoint,
                    detail: "etcd enabled authentication after this node connected without \
                             a user; connecting again as the user"
                        .to_owned(),
                }
            }
            EtcdError::PermissionDenied { endpoint, detail } => EtcdError::PermissionDenied {
                endpoint,
                detail: format!("{detail}: {}", self.denied),
            },
            err => err,
        };
        tls::diagnosed(self.tls.as_ref(), err, self.diagnose_within).await
    }

    /// Drops the client of `generation` (if it is still the current one) and
    /// moves to the next endpoint.
    pub(super) fn reconnect(&self, generation: u64) {
        let mut s = self.lock();
        if s.generation == generation {
            s.generation += 1;
            s.index = (s.index + 1) % self.endpoints.len();
            s.client = None;
            self.generation.send_replace(s.generation);
        }
    }
}

/// An answer etcd gives linearizably (a write, or a read through the raft
/// leader's read index): its revision reflects every write acknowledged
/// before the request left.
pub(super) trait Linearizable {
    fn revision(&self) -> Option<i64>;
}

macro_rules! linearizable {
    ($($response:ty),*) => {$(
        impl Linearizable for $response {
            fn revision(&self) -> Option<i64> {
                self.header().map(|h| h.revision())
            }
        }
    )*};
}

linearizable!(
    etcd_client::GetResponse,
    etcd_client::TxnResponse,
    etcd_client::LeaseGrantResponse,
    etcd_client::LeaseRevokeResponse
);

/// The connection and what every request reports to.
pub(super) struct Client {
    pub conn: Conn,
    timing: Timing,
    health: Arc<Vitals>,
    telemetry: Arc<dyn Telemetry>,
    revisions: Arc<Revisions>,
    changes: mpsc::UnboundedSender<Change>,
    /// Woken when etcd's history went backwards: whoever follows reads afresh.
    pub resync: Notify,
}

impl Client {
    pub(super) fn new(
        conn: Conn,
        timing: Timing,
        health: Arc<Vitals>,
        telemetry: Arc<dyn Telemetry>,
        revisions: Arc<Revisions>,
        changes: mpsc::UnboundedSender<Change>,
    ) -> Client {
        Client {
            conn,
            timing,
            health,
            telemetry,
            revisions,
            changes,
            resync: Notify::new(),
        }
    }

    pub(super) fn revisions(&self) -> &Revisions {
        &self.revisions
    }

    pub(super) fn changes(&self) -> &mpsc::UnboundedSender<Change> {
        &self.changes
    }

    /// Bounds every request: long enough for a slow etcd, short enough that a
    /// renewal retried after it still lands before the deadline.
    pub(super) fn attempt_timeout(&self) -> Duration {
        self.timing.request_timeout()
    }

    pub(super) fn timing(&self) -> &Timing {
        &self.timing
    }

    pub(super) async fn link(&self) -> Result<Link, EtcdError> {
        self.conn.link(self.attempt_timeout()).await
    }

    /// Notified when the connection is replaced.
    pub(super) fn generations(&self) -> watch::Receiver<u64> {
        self.conn.generation.subscribe()
    }

    /// Runs one request on `link`, timing it, and replaces the connection
    /// when the failure says the connection is the problem.
    pub(super) async fn call<T>(
        &self,
        op: &'static str,
        link: &Link,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, EtcdError> {
        let started = Instant::now();
        let limit = self.attempt_timeout();
        let result = match timeout(limit, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.conn.error(&link.endpoint, err).await),
            Err(_) => Err(EtcdError::Timeout {
                endpoint: link.endpoint.clone(),
                timeout: limit,
            }),
        };
        let outcome = if result.is_ok() {
            self.health.etcd_ok();
            RequestOutcome::Ok
        } else {
            RequestOutcome::Error
        };
        self.telemetry.etcd_request(op, outcome, started.elapsed());
        if let Err(err) = &result
            && err.is_connection_problem()
        {
            self.conn.reconnect(link.generation);
        }
        result
    }

    /// Like [`Client::call`], for an answer etcd gives linearizably: its
    /// revision is checked against the highest seen before it was sent.
    /// Returns the answer and its revision.
    pub(super) async fn call_linearizable<T: Linearizable>(
        &self,
        op: &'static str,
        link: &Link,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<(T, i64), EtcdError> {
        let before = self.revisions.before_request();
        let answer = self.call(op, link, request).await?;
        let revision = match answer.revision() {
            Some(revision) if revision > 0 => revision,
            _ => {
                return Err(malformed(&link.endpoint, "response header", "no revision"));
            }
        };
        if let Some(regression) = self
            .revisions
            .answered(before, u64::try_from(revision).unwrap_or(0))
        {
            let _ = self.changes.send(Change::Regressed(regression));
            self.resync.notify_waiters();
        }
        Ok((answer, revision))
    }

    /// Runs a conditional write: its revision when its guards held (and it
    /// wrote), `None` when they did not (and nothing changed).
    pub(super) async fn transact(
        &self,
        op: &'static str,
        conditional: &Conditional,
    ) -> Result<Option<i64>, EtcdError> {
        let link = self.link().await?;
        let mut kv = link.client.kv_client();
        let (answer, revision) = self
            .call_linearizable(op, &link, kv.txn(conditional.txn()))
            .await?;
        Ok(answer.succeeded().then_some(revision))
    }

    /// Deletes `key` only if nobody wrote it since `mod_revision`
    /// (`txn::delete_unchanged`); whether it did.
    pub(super) async fn delete_unchanged(
        &self,
        key: Vec<u8>,
        mod_revision: i64,
    ) -> Result<bool, EtcdError> {
        let delete = txn::delete_unchanged(key, mod_revision);
        Ok(self.transact("txn", &delete).await?.is_some())
    }

    /// A watch stream's next message as an answer: a stream that ended
    /// or broke is an error, and the connection is replaced when it is
    /// the problem.
    pub(super) async fn watch_answer(
        &self,
        link: &Link,
        message: Result<Option<WatchResponse>, etcd_client::Error>,
    ) -> Result<WatchResponse, EtcdError> {
        match message {
            Ok(Some(response)) => Ok(response),
            Ok(None) => {
                self.conn.reconnect(link.generation);
                Err(EtcdError::unreachable(
                    link.endpoint.clone(),
                    "watch stream closed",
                ))
            }
            Err(err) => {
                let err = self.conn.error(&link.endpoint, err).await;
                if err.is_connection_problem() {
                    self.conn.reconnect(link.generation);
                }
                Err(err)
            }
        }
    }

    /// Revokes `lease`: its keys go in the same raft entry.
    pub(super) async fn revoke(&self, lease: i64) -> Result<(), EtcdError> {
        let link = self.link().await?;
        let mut client = link.client.lease_client();
        match self
            .call_linearizable("revoke", &link, client.revoke(lease))
            .await
        {
            Ok(_) => Ok(()),
            Err(EtcdError::LeaseNotFound { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// How long `lease` has left at most, `None` when it is gone. etcd
    /// answers whole seconds, rounded down, and -1 for a lease it does not
    /// have: 0 is a lease with less than a second left (or just expired and
    /// not yet revoked by etcd's expiry tick), which is still there.
    pub(super) async fn lease_left(&self, lease: i64) -> Result<Option<Duration>, EtcdError> {
        let link = self.link().await?;
        let mut client = link.client.lease_client();
        let resp = self
            .call("lease_ttl", &link, client.time_to_live(lease, None))
            .await?;
        Ok(u64::try_from(resp.ttl())
            .ok()
            .map(|seconds| Duration::from_secs(seconds + 1)))
    }
}

pub(super) fn malformed(endpoint: &str, what: &'static str, detail: &str) -> EtcdError {
    EtcdError::Malformed {
        endpoint: endpoint.to_owned(),
        what,
        detail: detail.to_owned(),
    }
}
