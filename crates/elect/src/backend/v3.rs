//! The v3 API: a lease per campaign, one key per candidate, a queue by
//! `create_revision`.
//!
//! * claim: grant a lease with the TTL, then put `<prefix><lease-id hex>` with
//!   the lease in a transaction that requires `create_revision == 0`; the
//!   leader is the key with the lowest `create_revision`, which is its term;
//! * renew: a keep-alive on the lease's stream; an answer without a positive
//!   TTL means the lease is gone. Keep-alives are not raft proposals;
//! * follow: each candidate watches only its own key, the key just ahead of it
//!   and the leader's key, and re-reads (three `limit 1` ranges in one
//!   read-only transaction) when any of them changes. A hand-over therefore
//!   costs the leader's delete and revoke, whatever the number of candidates;
//!   followers learn the new leader from the leader key's delete event;
//! * release: revoke the lease, which deletes our key in the same raft entry,
//!   then delete the key with a compare on its `create_revision` (which only
//!   finds something when the key was re-put without our lease);
//! * succession: a candidate that finds itself first does not lead until the
//!   leases of the keys it saw ahead of it (the leader and the key just
//!   ahead, remembered across its own campaigns) are gone. A resign or an
//!   expiry removes key and lease together, so this costs one read; but when
//!   someone else deletes a leader's key, that leader believes it leads until
//!   it notices and then lets its lease expire rather than revoke it (its
//!   `--exec` command or library caller may still be winding down until the
//!   deadline): the successor waits for exactly that expiry.
//!
//! Trade-off: if the next in line died too, its key leads the queue until its
//! lease expires, so a double failure can leave the election leaderless for up
//! to about two TTLs.
//!
//! One client talks to one endpoint at a time, with etcd's `hasleader`
//! metadata so a member cut off from the majority fails requests and cancels
//! watches instead of hanging; a request that times out or cannot connect
//! moves to the next endpoint on a fresh connection (a silently dropped TCP
//! connection is never reused).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KeyValue, LeaseKeepAliveStream,
    LeaseKeeper, PutOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, interval, sleep, timeout};

use super::retry::Backoff;
use super::{Backend, Campaign, Change, RenewError, Renewal, View};
use crate::config::Config;
use crate::error::{ConfigError, EtcdError, chain};
use crate::health::HealthCells;
use crate::status::Leader;
use crate::telemetry::{RequestOutcome, Telemetry};
use crate::tls::{self, Tls};

/// The connection: one client for one endpoint, replaced (and moved to the
/// next endpoint) when it fails.
struct Conn {
    endpoints: Vec<String>,
    options: ConnectOptions,
    /// The same options without the user: etcd refuses to authenticate
    /// anyone while its authentication is off, and etcd's own client then
    /// carries on without a token. So can we, which lets users and roles
    /// be set up before `auth enable`.
    anonymous: Option<ConnectOptions>,
    tls: Option<Tls>,
    /// How long asking etcd why a TLS connection broke may take.
    diagnose_within: Duration,
    /// What a permission refusal means: the permission the user lacks.
    denied: String,
    state: std::sync::Mutex<ConnState>,
    generation: watch::Sender<u64>,
}

struct ConnState {
    generation: u64,
    index: usize,
    client: Option<Client>,
}

/// A client, the endpoint it talks to, and the generation to name when it fails.
#[derive(Clone)]
struct Link {
    generation: u64,
    endpoint: String,
    client: Client,
}

impl Conn {
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

    async fn connect(&self, endpoint: &str) -> Result<Client, etcd_client::Error> {
        match Client::connect([endpoint], Some(self.options.clone())).await {
            Err(etcd_client::Error::GRpcStatus(status))
                if status.message().contains(AUTH_NOT_ENABLED)
                    && let Some(anonymous) = &self.anonymous =>
            {
                tracing::debug!(%endpoint, "etcd authentication is off: connecting without a user");
                Client::connect([endpoint], Some(anonymous.clone())).await
            }
            result => result,
        }
    }

    /// What an etcd-client error means for us.
    async fn error(&self, endpoint: &str, err: etcd_client::Error) -> EtcdError {
        let err = match client_error(endpoint, err, self.tls.as_ref()) {
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
    fn reconnect(&self, generation: u64) {
        let mut s = self.lock();
        if s.generation == generation {
            s.generation += 1;
            s.index = (s.index + 1) % self.endpoints.len();
            s.client = None;
            self.generation.send_replace(s.generation);
        }
    }
}

/// What the backend and its follow task share.
struct Shared {
    conn: Conn,
    prefix: String,
    value: String,
    id: String,
    advertise: String,
    ttl: Duration,
    health: Arc<HealthCells>,
    telemetry: Arc<dyn Telemetry>,
    /// Keys this node saw ahead of it (leader or next ahead) whose leases may
    /// still be alive: the predecessors to outlive before it leads (see
    /// `lead_after_predecessors`). Oldest first, at most `MAX_PREDECESSORS`.
    predecessors: std::sync::Mutex<Vec<(Vec<u8>, i64)>>,
}

/// Our claim: the lease and the key put with it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ours {
    lease: i64,
    key: Vec<u8>,
    create_revision: i64,
}

struct Session {
    ours: Ours,
    keepalive: Option<(u64, LeaseKeeper, LeaseKeepAliveStream)>,
}

/// The election at one revision, from our place in the queue.
struct Snapshot {
    revision: i64,
    leader: Option<KeyValue>,
    ahead: Option<KeyValue>,
    own: Option<KeyValue>,
}

impl Shared {
    /// Bounds every request: long enough for a slow etcd, short enough that a
    /// renewal retried after it still lands before the deadline.
    fn attempt_timeout(&self) -> Duration {
        self.ttl / 2
    }

    /// Runs one request on `link`, timing it, and replaces the connection
    /// when the failure says the connection is the problem.
    async fn call<T>(
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

    fn leader_of(&self, kv: &KeyValue) -> Leader {
        Leader::from_stored(kv.value(), revision_u64(kv.create_revision()))
    }

    fn view_of(&self, snapshot: &Snapshot, ours: Option<&Ours>) -> View {
        View {
            revision: revision_u64(snapshot.revision),
            leader: snapshot.leader.as_ref().map(|kv| self.leader_of(kv)),
            ours: match (&snapshot.leader, ours) {
                (Some(kv), Some(o)) => kv.key() == o.key.as_slice() && kv.lease() == o.lease,
                _ => false,
            },
            // Succession waits on leases instead (`lead_after_predecessors`).
            claimable_at: None,
        }
    }

    /// Reads the leader, the key just ahead of ours and our own key, in one
    /// read-only (and so linearizable, proposal-free) transaction.
    async fn read(&self, ours: Option<&Ours>) -> Result<Snapshot, EtcdError> {
        let link = self.conn.link(self.attempt_timeout()).await?;
        let prefix = self.prefix.as_bytes().to_vec();
        let mut ops = vec![TxnOp::get(
            prefix.clone(),
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Create, SortOrder::Ascend)
                    .with_limit(1),
            ),
        )];
        if let Some(o) = ours {
            ops.push(TxnOp::get(
                prefix,
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_sort(SortTarget::Create, SortOrder::Descend)
                        .with_max_create_revision(o.create_revision - 1)
                        .with_limit(1),
                ),
            ));
            ops.push(TxnOp::get(o.key.clone(), None));
        }
        let mut kv = link.client.kv_client();
        let resp = self
            .call("range", &link, kv.txn(Txn::new().and_then(ops)))
            .await?;
        let revision = header_revision(resp.header(), &link.endpoint)?;
        let mut ranges = resp.op_responses().into_iter().map(|op| match op {
            TxnOpResponse::Get(mut get) => Ok(get.take_kvs().into_iter().next()),
            _ => Err(malformed(&link.endpoint, "range", "not a range answer")),
        });
        let mut next = || {
            ranges
                .next()
                .unwrap_or_else(|| Err(malformed(&link.endpoint, "range", "answer missing")))
        };
        let leader = next()?;
        let (ahead, own) = if ours.is_some() {
            (next()?, next()?)
        } else {
            (None, None)
        };
        // Keys can only be in the queue with a positive create_revision.
        let sane = |kv: &Option<KeyValue>| kv.as_ref().is_none_or(|kv| kv.create_revision() > 0);
        if !(sane(&leader) && sane(&ahead) && sane(&own)) {
            return Err(malformed(
                &link.endpoint,
                "range",
                "non-positive create_revision",
            ));
        }
        Ok(Snapshot {
            revision,
            leader,
            ahead,
            own,
        })
    }

    /// The whole queue, leader first.
    async fn queue(&self) -> Result<(i64, Vec<KeyValue>), EtcdError> {
        let link = self.conn.link(self.attempt_timeout()).await?;
        let mut kv = link.client.kv_client();
        let options = GetOptions::new()
            .with_prefix()
            .with_sort(SortTarget::Create, SortOrder::Ascend);
        let mut resp = self
            .call(
                "range",
                &link,
                kv.get(self.prefix.as_bytes(), Some(options)),
            )
            .await?;
        let revision = header_revision(resp.header(), &link.endpoint)?;
        Ok((revision, resp.take_kvs()))
    }

    fn predecessor_list(&self) -> std::sync::MutexGuard<'_, Vec<(Vec<u8>, i64)>> {
        self.predecessors.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers the keys ahead of ours in `snapshot`.
    fn note_predecessors(&self, snapshot: &Snapshot, ours: Option<&Ours>) {
        let mut list = self.predecessor_list();
        for kv in [&snapshot.leader, &snapshot.ahead].into_iter().flatten() {
            let entry = (kv.key().to_vec(), kv.lease());
            if entry.1 == 0 || ours.is_some_and(|o| o.key == entry.0) || list.contains(&entry) {
                continue;
            }
            if list.len() == MAX_PREDECESSORS {
                list.remove(0);
            }
            list.push(entry);
        }
    }

    /// The remembered predecessors' leases, ours excepted: the observer that
    /// ran while we campaigned may have seen our own key lead.
    fn predecessor_leases(&self, ours: &Ours) -> Vec<i64> {
        self.predecessor_list()
            .iter()
            .map(|(_, lease)| *lease)
            .filter(|lease| *lease != ours.lease)
            .collect()
    }

    fn forget_predecessors(&self, gone: &[i64]) {
        self.predecessor_list()
            .retain(|(_, lease)| !gone.contains(lease));
    }

    /// Records the keys ahead of us in `snapshot`; when it shows us first,
    /// waits until every predecessor's lease is gone. Returns whether it
    /// waited (the snapshot is then stale).
    async fn lead_after_predecessors(
        &self,
        snapshot: &Snapshot,
        ours: Option<&Ours>,
    ) -> Result<bool, EtcdError> {
        self.note_predecessors(snapshot, ours);
        let leases = match ours {
            Some(o) if self.view_of(snapshot, ours).ours => self.predecessor_leases(o),
            _ => return Ok(false),
        };
        if leases.is_empty() {
            return Ok(false);
        }
        for lease in leases {
            // On an error the rest stay remembered, to be waited for next time.
            self.lease_gone(lease).await?;
            self.forget_predecessors(&[lease]);
        }
        Ok(true)
    }

    /// Reads the snapshot and, when we are next in line, at the same time
    /// which predecessors' leases are already gone (the common case of a
    /// resign or an expiry), so that moving up to first costs no extra round
    /// trip. Others only read: they cannot move up to first without a check
    /// of their own, so a hand-over costs one lease check, not one per
    /// candidate.
    async fn read_and_check(
        &self,
        ours: Option<&Ours>,
        next_in_line: bool,
    ) -> Result<Snapshot, EtcdError> {
        let leases = match ours {
            Some(o) if next_in_line => self.predecessor_leases(o),
            _ => Vec::new(),
        };
        if leases.is_empty() {
            return self.read(ours).await;
        }
        let checks = futures_util::future::join_all(leases.iter().map(|l| self.lease_alive(*l)));
        let (snapshot, alive) = tokio::join!(self.read(ours), checks);
        let gone: Vec<i64> = leases
            .iter()
            .zip(alive)
            .filter(|(_, alive)| matches!(alive, Ok(false)))
            .map(|(lease, _)| *lease)
            .collect();
        self.forget_predecessors(&gone);
        snapshot
    }

    /// Whether `lease` still exists.
    async fn lease_alive(&self, lease: i64) -> Result<bool, EtcdError> {
        let link = self.conn.link(self.attempt_timeout()).await?;
        let mut client = link.client.lease_client();
        let resp = self
            .call("lease_ttl", &link, client.time_to_live(lease, None))
            .await?;
        Ok(resp.ttl() > 0)
    }

    /// Waits until `lease` (a predecessor's) is gone.
    async fn lease_gone(&self, lease: i64) -> Result<(), EtcdError> {
        let mut pause = Duration::from_millis(5);
        while self.lease_alive(lease).await? {
            sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
        Ok(())
    }

    async fn revoke(&self, lease: i64) -> Result<(), EtcdError> {
        let link = self.conn.link(self.attempt_timeout()).await?;
        let mut client = link.client.lease_client();
        match self.call("revoke", &link, client.revoke(lease)).await {
            Ok(_) => Ok(()),
            Err(EtcdError::Rejected { detail, .. }) if detail.contains("lease not found") => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// Follows the election: read, watch the few keys that matter, read again
/// when one changes. Runs as an observer when `ours` is `None` (or becomes
/// so when our key disappears).
async fn follow(
    shared: Arc<Shared>,
    mut ours: Option<(Ours, u64)>,
    mut start: Option<Snapshot>,
    tx: mpsc::UnboundedSender<Change>,
) {
    let mut backoff = Backoff::new(shared.ttl.min(Duration::from_secs(5)));
    let mut generations = shared.conn.generation.subscribe();
    // Whether the key just ahead of ours is the leader's: then we move up next.
    let mut next_in_line = false;
    loop {
        let snapshot = match start.take() {
            Some(snapshot) => snapshot,
            None => match shared
                .read_and_check(ours.as_ref().map(|(o, _)| o), next_in_line)
                .await
            {
                Ok(read) => read,
                Err(err) => {
                    if tx.send(Change::Problem(err)).is_err() {
                        return;
                    }
                    sleep(backoff.next_delay()).await;
                    continue;
                }
            },
        };
        if let Some((o, term)) = &ours {
            let alive = snapshot.own.as_ref().is_some_and(|kv| {
                kv.lease() == o.lease && kv.create_revision() == o.create_revision
            });
            if !alive {
                // Deleted, expired or overwritten: the claim is over; follow as an observer.
                let term = *term;
                ours = None;
                if tx.send(Change::ClaimLost { term }).is_err() {
                    return;
                }
                continue;
            }
        }
        // If we moved up to first, lead only once the predecessors' leases
        // are gone: one whose key someone else deleted may still believe it
        // leads until its deadline.
        match shared
            .lead_after_predecessors(&snapshot, ours.as_ref().map(|(o, _)| o))
            .await
        {
            Ok(false) => {}
            // Read again: the queue may have changed while we waited.
            Ok(true) => continue,
            Err(err) => {
                if tx.send(Change::Problem(err)).is_err() {
                    return;
                }
                sleep(backoff.next_delay()).await;
                continue;
            }
        }
        next_in_line = match (&snapshot.ahead, &snapshot.leader) {
            (Some(ahead), Some(leader)) => ahead.key() == leader.key(),
            _ => false,
        };
        let view = shared.view_of(&snapshot, ours.as_ref().map(|(o, _)| o));
        if tx.send(Change::View(view)).is_err() {
            return;
        }
        generations.borrow_and_update();
        match watch_until_change(
            &shared,
            &snapshot,
            ours.as_ref().map(|(o, _)| o),
            &mut generations,
        )
        .await
        {
            Ok(()) => backoff.reset(),
            Err(err) => {
                if tx.send(Change::Problem(err)).is_err() {
                    return;
                }
                sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// Watches the keys that matter from `snapshot` on, and returns when one of
/// them changed (or the watch was cancelled, e.g. compacted), so the caller
/// reads again. Fails when the stream breaks or stops answering progress
/// requests: a silently dead connection is noticed within two thirds of a TTL.
async fn watch_until_change(
    shared: &Shared,
    snapshot: &Snapshot,
    ours: Option<&Ours>,
    generations: &mut watch::Receiver<u64>,
) -> Result<(), EtcdError> {
    let from = snapshot.revision + 1;
    let mut keys: Vec<Vec<u8>> = Vec::with_capacity(3);
    for key in [
        ours.map(|o| o.key.clone()),
        snapshot.ahead.as_ref().map(|kv| kv.key().to_vec()),
        snapshot.leader.as_ref().map(|kv| kv.key().to_vec()),
    ]
    .into_iter()
    .flatten()
    {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let link = shared.conn.link(shared.attempt_timeout()).await?;
    let mut client = link.client.watch_client();
    let mut stream = if keys.is_empty() {
        // No leader yet: the first candidate's put is the event we wait for.
        let options = WatchOptions::new().with_prefix().with_start_revision(from);
        shared
            .call(
                "watch",
                &link,
                client.watch(shared.prefix.as_bytes(), Some(options)),
            )
            .await?
    } else {
        let options = WatchOptions::new().with_start_revision(from);
        let mut stream = shared
            .call(
                "watch",
                &link,
                client.watch(keys[0].clone(), Some(options.clone())),
            )
            .await?;
        for key in &keys[1..] {
            if let Err(err) = stream.watch(key.clone(), Some(options.clone())).await {
                return Err(shared.conn.error(&link.endpoint, err).await);
            }
        }
        stream
    };
    let mut ticks = interval(shared.ttl / 3);
    ticks.tick().await;
    let mut awaiting_progress = false;
    loop {
        tokio::select! {
            message = stream.message() => {
                let response = match message {
                    Ok(Some(response)) => response,
                    Ok(None) => {
                        shared.conn.reconnect(link.generation);
                        return Err(EtcdError::Unreachable {
                            endpoint: link.endpoint.clone(),
                            detail: "watch stream closed".to_owned(),
                        });
                    }
                    Err(err) => {
                        let err = shared.conn.error(&link.endpoint, err).await;
                        if err.is_connection_problem() {
                            shared.conn.reconnect(link.generation);
                        }
                        return Err(err);
                    }
                };
                awaiting_progress = false;
                shared.health.etcd_ok();
                if response.canceled() {
                    if response.compact_revision() > 0 {
                        // Our revision was compacted away: read again from now.
                        return Ok(());
                    }
                    let reason = response.cancel_reason();
                    let err = if reason.contains("no leader") {
                        EtcdError::NoLeader { endpoint: link.endpoint.clone() }
                    } else if reason.contains(PERMISSION_DENIED) {
                        EtcdError::PermissionDenied {
                            endpoint: link.endpoint.clone(),
                            detail: format!("watch cancelled: {reason}: {}", shared.conn.denied),
                        }
                    } else {
                        EtcdError::Rejected {
                            endpoint: link.endpoint.clone(),
                            detail: format!("watch cancelled: {reason}"),
                        }
                    };
                    shared.conn.reconnect(link.generation);
                    return Err(err);
                }
                if !response.events().is_empty() {
                    return Ok(());
                }
            }
            _ = ticks.tick() => {
                if awaiting_progress {
                    shared.conn.reconnect(link.generation);
                    return Err(EtcdError::Timeout {
                        endpoint: link.endpoint.clone(),
                        timeout: shared.ttl / 3,
                    });
                }
                if let Err(err) = stream.request_progress().await {
                    return Err(shared.conn.error(&link.endpoint, err).await);
                }
                awaiting_progress = true;
            }
            changed = generations.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                // The connection was replaced (a request failed): this stream
                // may be on a dead connection. Start over on the new one.
                return Ok(());
            }
        }
    }
}

/// The v3 backend.
pub(crate) struct V3 {
    shared: Arc<Shared>,
    session: Mutex<Option<Session>>,
    tx: mpsc::UnboundedSender<Change>,
    rx: Mutex<mpsc::UnboundedReceiver<Change>>,
    follower: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl V3 {
    pub(crate) fn new(config: &Config, health: Arc<HealthCells>) -> Result<V3, ConfigError> {
        let mut options = ConnectOptions::new()
            .with_require_leader(true)
            .with_connect_timeout(config.ttl / 3)
            .with_tcp_keepalive(config.ttl);
        if let Some(tls) = &config.tls {
            options = options.with_tls(tls.tonic_config());
        }
        let anonymous = config.credentials.as_ref().map(|_| options.clone());
        if let Some(c) = &config.credentials {
            // etcd-client authenticates when it connects, and again (once)
            // when etcd says the token expired.
            options = options
                .with_user(c.user.clone(), c.password.clone())
                .with_auto_token_refresh(true);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let nonce = crate::value::new_nonce();
        let prefix = format!("/electd/{}/", config.election);
        let denied = match &config.credentials {
            Some(c) => format!(
                "user {:?} needs a role with readwrite on the prefix {prefix}",
                c.user
            ),
            // etcd takes the client certificate's common name as the user.
            None => format!(
                "the user named by the client certificate needs a role with readwrite on the \
                 prefix {prefix}"
            ),
        };
        Ok(V3 {
            shared: Arc::new(Shared {
                conn: Conn {
                    endpoints: config.endpoints.clone(),
                    options,
                    anonymous,
                    tls: config.tls.clone(),
                    diagnose_within: config.ttl / 4,
                    denied,
                    state: std::sync::Mutex::new(ConnState {
                        generation: 0,
                        index: 0,
                        client: None,
                    }),
                    generation: watch::channel(0).0,
                },
                prefix,
                value: crate::value::encode(&config.id, &config.advertise, &nonce),
                id: config.id.clone(),
                advertise: config.advertise.clone(),
                ttl: config.ttl,
                health,
                telemetry: config.telemetry.clone(),
                predecessors: std::sync::Mutex::new(Vec::new()),
            }),
            session: Mutex::new(None),
            tx,
            rx: Mutex::new(rx),
            follower: std::sync::Mutex::new(None),
        })
    }

    fn follow_with(&self, ours: Option<(Ours, u64)>, start: Option<Snapshot>) {
        let task = tokio::spawn(follow(self.shared.clone(), ours, start, self.tx.clone()));
        let mut follower = self.follower.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = follower.replace(task) {
            old.abort();
        }
    }

    /// Warns about other live candidates with our id: a misconfiguration.
    fn warn_duplicates(&self, queue: &[KeyValue], ours: &Ours) {
        for kv in queue {
            if kv.key() == ours.key.as_slice() {
                continue;
            }
            if let Some(named) = crate::value::decode(kv.value())
                && named.id == self.shared.id
            {
                tracing::warn!(
                    id = %self.shared.id,
                    ours = %self.shared.advertise,
                    other = %named.advertise,
                    "another live candidate uses the same id: give every node its own --id"
                );
            }
        }
    }

    /// Revokes a lease we no longer use, in the background.
    fn abandon(&self, lease: i64) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let _ = shared.revoke(lease).await;
        });
    }

    async fn join_queue(&self, link: &Link, sent_at: Instant) -> Result<Campaign, EtcdError> {
        let shared = &self.shared;
        let ttl_secs = i64::try_from(shared.ttl.as_secs()).unwrap_or(i64::MAX);
        let mut leases = link.client.lease_client();
        let grant = shared
            .call("grant", link, leases.grant(ttl_secs, None))
            .await?;
        if grant.ttl() <= 0 || grant.id() <= 0 {
            return Err(malformed(&link.endpoint, "lease grant", "no lease or TTL"));
        }
        let lease = grant.id();
        let granted = Duration::from_secs(u64::try_from(grant.ttl()).unwrap_or(0));
        let key = format!("{}{:x}", shared.prefix, lease).into_bytes();
        // Known before the put, so a release can revoke the lease even if the
        // rest of the campaign fails.
        *self.session.lock().await = Some(Session {
            ours: Ours {
                lease,
                key: key.clone(),
                create_revision: 0,
            },
            keepalive: None,
        });
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.clone(),
                shared.value.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )]);
        let mut kv = link.client.kv_client();
        let put = shared.call("txn", link, kv.txn(txn)).await?;
        if !put.succeeded() {
            return Err(EtcdError::Rejected {
                endpoint: link.endpoint.clone(),
                detail: format!(
                    "candidate key {} already exists",
                    String::from_utf8_lossy(&key)
                ),
            });
        }
        let create_revision = header_revision(put.header(), &link.endpoint)?;
        let ours = Ours {
            lease,
            key,
            create_revision,
        };
        if let Some(session) = self.session.lock().await.as_mut() {
            session.ours = ours.clone();
        }
        let (_, queue) = shared.queue().await?;
        self.warn_duplicates(&queue, &ours);
        let mut snapshot = shared.read(Some(&ours)).await?;
        if shared
            .lead_after_predecessors(&snapshot, Some(&ours))
            .await?
        {
            snapshot = shared.read(Some(&ours)).await?;
            shared
                .lead_after_predecessors(&snapshot, Some(&ours))
                .await?;
        }
        let view = shared.view_of(&snapshot, Some(&ours));
        let term = revision_u64(create_revision);
        self.follow_with(Some((ours, term)), Some(snapshot));
        Ok(Campaign::Claimed {
            term,
            view,
            renewal: Renewal {
                sent_at,
                ttl: granted,
            },
        })
    }
}

impl Backend for V3 {
    const QUEUES: bool = true;

    fn start(&self) {
        self.follow_with(None, None);
    }

    async fn campaign(&self) -> Result<Campaign, EtcdError> {
        // A claim lost while its lease lives (our key deleted by someone
        // else) is left to expire, not revoked: whoever acted on it may stay
        // busy until its deadline, and successors wait for that lease.
        if let Some(old) = self.session.lock().await.take() {
            // Our own tenure under it is over: nothing to wait for.
            self.shared.forget_predecessors(&[old.ours.lease]);
        }
        let link = self.shared.conn.link(self.shared.attempt_timeout()).await?;
        // The lease lives at least TTL from when the grant left.
        let sent_at = Instant::now();
        let result = self.join_queue(&link, sent_at).await;
        if result.is_err()
            && let Some(session) = self.session.lock().await.take()
        {
            self.abandon(session.ours.lease);
        }
        result
    }

    async fn renew(&self) -> Result<Renewal, RenewError> {
        let mut guard = self.session.lock().await;
        let Some(session) = guard.as_mut() else {
            return Err(RenewError::Lost);
        };
        let shared = &self.shared;
        let link = shared
            .conn
            .link(shared.attempt_timeout())
            .await
            .map_err(RenewError::Failed)?;
        if session
            .keepalive
            .as_ref()
            .is_none_or(|(generation, _, _)| *generation != link.generation)
        {
            // Opening the stream sends the first keep-alive and waits for its
            // answer; etcd-client fails it when the lease is gone.
            let sent_at = Instant::now();
            let mut leases = link.client.lease_client();
            return match shared
                .call("keepalive", &link, leases.keep_alive(session.ours.lease))
                .await
            {
                Ok((keeper, stream)) => {
                    session.keepalive = Some((link.generation, keeper, stream));
                    Ok(Renewal {
                        sent_at,
                        ttl: shared.ttl,
                    })
                }
                Err(err) if lease_gone(&err) => Err(RenewError::Lost),
                Err(err) => Err(RenewError::Failed(err)),
            };
        }
        let Some((_, keeper, stream)) = session.keepalive.as_mut() else {
            return Err(RenewError::Failed(malformed(
                &link.endpoint,
                "keep-alive",
                "no stream",
            )));
        };
        let sent_at = Instant::now();
        let answer = shared
            .call("keepalive", &link, async {
                keeper.keep_alive().await?;
                stream.message().await
            })
            .await;
        match answer {
            Ok(Some(resp)) if resp.id() == session.ours.lease && resp.ttl() > 0 => Ok(Renewal {
                sent_at,
                ttl: Duration::from_secs(u64::try_from(resp.ttl()).unwrap_or(0)),
            }),
            Ok(Some(resp)) if resp.ttl() <= 0 => Err(RenewError::Lost),
            Ok(Some(_)) => {
                session.keepalive = None;
                Err(RenewError::Failed(malformed(
                    &link.endpoint,
                    "keep-alive",
                    "answer for another lease",
                )))
            }
            Ok(None) => {
                session.keepalive = None;
                Err(RenewError::Failed(EtcdError::Unreachable {
                    endpoint: link.endpoint.clone(),
                    detail: "keep-alive stream closed".to_owned(),
                }))
            }
            Err(err) => {
                session.keepalive = None;
                Err(RenewError::Failed(err))
            }
        }
    }

    async fn release(&self) -> Result<(), EtcdError> {
        let Some(session) = self.session.lock().await.take() else {
            return Ok(());
        };
        let ours = session.ours;
        self.follow_with(None, None);
        let shared = &self.shared;
        // Revoke first: key and lease vanish in one raft entry, which is what
        // a successor checks before it leads.
        let revoked = shared.revoke(ours.lease).await;
        if ours.create_revision > 0 {
            let link = shared.conn.link(shared.attempt_timeout()).await?;
            let txn = Txn::new()
                .when([Compare::create_revision(
                    ours.key.clone(),
                    CompareOp::Equal,
                    ours.create_revision,
                )])
                .and_then([TxnOp::delete(ours.key.clone(), None)]);
            let mut kv = link.client.kv_client();
            shared.call("delete", &link, kv.txn(txn)).await?;
        }
        revoked
    }

    async fn next_change(&self) -> Change {
        match self.rx.lock().await.recv().await {
            Some(change) => change,
            None => std::future::pending().await,
        }
    }

    async fn candidates(&self) -> Result<Vec<Leader>, EtcdError> {
        let (_, queue) = self.shared.queue().await?;
        Ok(queue.iter().map(|kv| self.shared.leader_of(kv)).collect())
    }

    fn stop(&self) {
        let mut follower = self.follower.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = follower.take() {
            task.abort();
        }
    }
}

fn revision_u64(revision: i64) -> u64 {
    u64::try_from(revision).unwrap_or(0)
}

fn header_revision(
    header: Option<&etcd_client::ResponseHeader>,
    endpoint: &str,
) -> Result<i64, EtcdError> {
    match header.map(|h| h.revision()) {
        Some(revision) if revision > 0 => Ok(revision),
        _ => Err(malformed(endpoint, "response header", "no revision")),
    }
}

fn malformed(endpoint: &str, what: &'static str, detail: &str) -> EtcdError {
    EtcdError::Malformed {
        endpoint: endpoint.to_owned(),
        what,
        detail: detail.to_owned(),
    }
}

fn lease_gone(err: &EtcdError) -> bool {
    matches!(err, EtcdError::Rejected { detail, .. } if detail.contains("lease not found"))
}

// etcd's messages (api/v3rpc/rpctypes): the codes alone are ambiguous, e.g.
// a wrong password is InvalidArgument.
/// Bounds the predecessors remembered; more than a couple only accumulate
/// on a follower far back in the queue, and the oldest are long gone.
const MAX_PREDECESSORS: usize = 8;

const AUTH_NOT_ENABLED: &str = "authentication is not enabled";
const WRONG_PASSWORD: &str = "authentication failed, invalid user ID or password";
const USER_EMPTY: &str = "user name is empty";
const OLD_AUTH_REVISION: &str = "revision of auth store is old";
const PERMISSION_DENIED: &str = "permission denied";

/// Sorts an etcd-client error into what it means for us. `tls` names the
/// files when the handshake failed.
fn client_error(endpoint: &str, err: etcd_client::Error, tls: Option<&Tls>) -> EtcdError {
    use etcd_client::Error as E;
    use tonic::Code;
    let endpoint = endpoint.to_owned();
    let handshake = match &err {
        E::GRpcStatus(status) => tls::rustls_error(status),
        E::TransportError(e) => tls::rustls_error(e),
        E::IoError(e) => tls::rustls_error(e),
        _ => None,
    };
    if let (Some(tls), Some(cause)) = (tls, handshake) {
        return EtcdError::Tls {
            endpoint,
            detail: tls.explain(&cause),
        };
    }
    match err {
        E::GRpcStatus(status) => {
            let message = status.message().to_owned();
            match status.code() {
                _ if message.contains("no leader") => EtcdError::NoLeader { endpoint },
                _ if message.contains(WRONG_PASSWORD) => EtcdError::AuthFailed {
                    endpoint,
                    detail: format!("{message} (wrong user name or password)"),
                },
                _ if message.contains(USER_EMPTY) => EtcdError::AuthFailed {
                    endpoint,
                    detail: format!(
                        "{message}: etcd has authentication enabled and no user is configured \
                         (--etcd-user)"
                    ),
                },
                // Tokens issued before a change to etcd's users and roles.
                _ if message.contains(OLD_AUTH_REVISION) => EtcdError::AuthFailed {
                    endpoint,
                    detail: message,
                },
                Code::Unavailable | Code::Cancelled | Code::Unknown
                    if !message.contains("lease not found") =>
                {
                    EtcdError::Unreachable {
                        endpoint,
                        detail: chain(&status),
                    }
                }
                Code::DeadlineExceeded => EtcdError::Timeout {
                    endpoint,
                    timeout: Duration::ZERO,
                },
                Code::Unauthenticated => EtcdError::AuthFailed {
                    endpoint,
                    detail: message,
                },
                Code::PermissionDenied => EtcdError::PermissionDenied {
                    endpoint,
                    detail: message,
                },
                code => EtcdError::Rejected {
                    endpoint,
                    detail: format!("{code:?}: {message}"),
                },
            }
        }
        E::TransportError(err) => EtcdError::Unreachable {
            endpoint,
            detail: chain(&err),
        },
        E::IoError(err) => EtcdError::Unreachable {
            endpoint,
            detail: chain(&err),
        },
        E::LeaseKeepAliveError(detail) => EtcdError::Rejected { endpoint, detail },
        other => EtcdError::Rejected {
            endpoint,
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcd_client::proto::PbKeyValue;
    use proptest::prelude::*;

    fn shared() -> Arc<Shared> {
        let config = Config::builder()
            .id("me")
            .advertise("http://127.0.0.1:1")
            .ttl(Duration::from_secs(2))
            .build()
            .unwrap();
        V3::new(&config, Arc::new(HealthCells::new()))
            .unwrap()
            .shared
    }

    proptest! {
        /// Whatever etcd (or someone writing to the prefix) sends, only our
        /// own key with our own lease is ever taken as ours.
        #[test]
        fn arbitrary_key_values_never_make_a_false_leader(
            key in proptest::collection::vec(any::<u8>(), 0..48),
            value in proptest::collection::vec(any::<u8>(), 0..256),
            create_revision in any::<i64>(),
            lease in any::<i64>(),
            our_lease in 1i64..,
        ) {
            let shared = shared();
            let pb = PbKeyValue { key, value, create_revision, lease, ..PbKeyValue::default() };
            let kv: &KeyValue = (&pb).into();
            let ours = Ours {
                lease: our_lease,
                key: format!("{}{our_lease:x}", shared.prefix).into_bytes(),
                create_revision: 5,
            };
            let snapshot = Snapshot { revision: 9, leader: Some(kv.clone()), ahead: None, own: None };
            let view = shared.view_of(&snapshot, Some(&ours));
            prop_assert!(!view.ours || (kv.key() == ours.key.as_slice() && kv.lease() == ours.lease));
            let leader = view.leader.expect("a leader");
            prop_assert_eq!(leader.term, u64::try_from(create_revision).unwrap_or(0));
        }
    }
}
