//! The HTTP surface: the seed's plain-text answer, JSON status, health
//! checks for load balancers, Prometheus metrics, leader-change events, and
//! the hand-over endpoint.
//!
//! Every answer is computed from the election's shared [`elect::Status`] at
//! the instant of the request, so a leader paused past its deadline says
//! "follower" on its first request after waking.
//!
//! [`serve`] takes an already-bound listener and a shutdown future (the shape
//! of mini-redis's server), caps concurrent connections so a flood cannot use
//! up the file descriptors etcd needs, and closes connections whose headers
//! arrive too slowly.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use elect::{Candidate, Election, Role};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::admin;
use crate::answers::{LeaderBody, StatusBody, seed_words};
use crate::lead::Request;
use crate::metrics::Metrics;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub(crate) election: Arc<Election>,
    metrics: Arc<Metrics>,
    /// The bearer token for admin endpoints; `None` turns them off (403).
    pub(crate) admin_token: Option<Arc<str>>,
    /// Where operators' requests go; `None` on an observer.
    pub(crate) requests: Option<mpsc::Sender<Request>>,
    /// Whether a health check runs (`--health-url`): without one,
    /// `/v1/status` says `healthy: null`.
    pub(crate) health_checked: bool,
    /// The last succession order read from etcd, and when.
    candidates: Arc<tokio::sync::Mutex<Option<CandidatesRead>>>,
    /// Open `/v1/watch` streams; capped apart from other connections so
    /// long-lived streams cannot take every connection slot.
    watchers: Arc<Semaphore>,
}

/// A succession order read from etcd (`None`: the read failed), and when.
type CandidatesRead = (Instant, Option<Vec<Candidate>>);

/// How old a `/v1/status` succession order may be: however many requests
/// come, etcd sees at most a few reads per second from them.
const CANDIDATES_MAX_AGE: Duration = Duration::from_millis(500);

/// Open `/v1/watch` streams at most; more get 503.
const MAX_WATCHERS: usize = 64;

impl AppState {
    pub fn new(
        election: Arc<Election>,
        metrics: Arc<Metrics>,
        admin_token: Option<Arc<str>>,
        requests: Option<mpsc::Sender<Request>>,
        health_checked: bool,
    ) -> Self {
        AppState {
            election,
            metrics,
            admin_token,
            requests,
            health_checked,
            candidates: Arc::default(),
            watchers: Arc::new(Semaphore::new(MAX_WATCHERS)),
        }
    }

    /// The succession order, read from etcd at most every
    /// `CANDIDATES_MAX_AGE`; concurrent requests share one read.
    async fn candidates(&self) -> Option<Vec<Candidate>> {
        let mut cached = self.candidates.lock().await;
        if let Some((read_at, candidates)) = cached.as_ref()
            && read_at.elapsed() < CANDIDATES_MAX_AGE
        {
            return candidates.clone();
        }
        let candidates = self.election.candidates().await.ok();
        *cached = Some((Instant::now(), candidates.clone()));
        candidates
    }
}

/// The main port's routes; with `admin`, also `/metrics` and `/v1/resign`.
pub fn router(state: AppState, admin: bool) -> Router {
    let mut router = Router::new()
        .route("/", get(seed_answer))
        .route("/v1/status", get(status))
        .route("/v1/watch", get(watch))
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
        .route("/health/leader", get(health_leader))
        .route("/health/follower", get(health_follower));
    if admin {
        router = with_admin(router);
    }
    router.fallback(not_found).with_state(state)
}

/// The `--admin-listen` port's routes.
pub fn admin_router(state: AppState) -> Router {
    with_admin(Router::new())
        .fallback(not_found)
        .with_state(state)
}

fn with_admin(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/metrics", get(metrics))
        .route("/v1/resign", post(admin::resign))
        .route("/v1/drain", post(admin::drain))
        .route("/v1/undrain", post(admin::undrain))
}

pub(crate) fn text(code: StatusCode, body: impl Into<String>) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

async fn seed_answer(State(state): State<AppState>) -> Response {
    let now = Instant::now();
    let status = state.election.status();
    let words = seed_words(status.role_at(now), status.leader_at(now).as_ref());
    text(StatusCode::OK, words)
}

pub(crate) async fn status_body(state: &AppState) -> StatusBody {
    let candidates = state.candidates().await;
    StatusBody::new(
        &state.election.status(),
        candidates,
        state.health_checked,
        Instant::now(),
    )
}

async fn status(State(state): State<AppState>) -> Response {
    axum::Json(status_body(&state).await).into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.election.health() {
        Ok(()) => text(StatusCode::OK, "ok"),
        Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, reason.to_string()),
    }
}

/// Liveness: 200 while the election loop runs, whatever etcd does. This is
/// what may restart electd; `/healthz` also reports trouble with etcd, which
/// a restart cannot fix (and which would forget the term floor).
async fn livez(State(state): State<AppState>) -> Response {
    match state.election.liveness() {
        Ok(()) => text(StatusCode::OK, "ok"),
        Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, reason.to_string()),
    }
}

/// 200 with the term only while this node leads (deadline-checked).
async fn health_leader(State(state): State<AppState>) -> Response {
    let now = Instant::now();
    match state.election.status().tenure_at(now) {
        Some(tenure) => text(StatusCode::OK, tenure.term.to_string()),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "not the leader"),
    }
}

/// 200 only on a follower that knows a live leader and hears from etcd.
async fn health_follower(State(state): State<AppState>) -> Response {
    let now = Instant::now();
    let status = state.election.status();
    if status.role_at(now) != Role::Follower {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not a follower of a known leader",
        );
    }
    if let Err(reason) = state.election.health() {
        return text(StatusCode::SERVICE_UNAVAILABLE, reason.to_string());
    }
    match status.leader_at(now) {
        Some(leader) => text(
            StatusCode::OK,
            format!(
                "following {} (term {})",
                leader.id.as_deref().unwrap_or("an unknown leader"),
                leader.term
            ),
        ),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "no leader"),
    }
}

/// Server-sent events: one `leader` event per change, the first on connect.
async fn watch(State(state): State<AppState>) -> Response {
    let Ok(permit) = state.watchers.clone().try_acquire_owned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("too many open watches (at most {MAX_WATCHERS})"),
        );
    };
    // The permit lives as long as the stream.
    let changes = futures_util::stream::unfold(
        (state.election.observe(), permit),
        |(mut watch, permit)| async move {
            let leader = watch.changed().await.ok()?;
            let body = leader.as_ref().map(LeaderBody::new);
            let data = serde_json::to_string(&body).unwrap_or_else(|_| "null".to_owned());
            let event: Result<Event, Infallible> = Ok(Event::default().event("leader").data(data));
            Some((event, (watch, permit)))
        },
    );
    Sse::new(changes)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(&state.election.status()),
    )
        .into_response()
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found")
}

/// Limits that keep hostile clients from hurting the node.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// Largest request head accepted.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            header_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests
/// in flight finish for a moment.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors, typically: wait instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Over the cap: close at once rather than queue.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.max_header_bytes);
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(1), graceful.shutdown()).await;
}
