//! The HTTP surface: the seed's plain-text answer, JSON status, health.
//!
//! Every answer is computed from the election's shared [`elect::Status`] at
//! the instant of the request, so a leader paused past its deadline says
//! "follower" on its first request after waking.
//!
//! [`serve`] takes an already-bound listener and a shutdown future (the shape
//! of mini-redis's server), caps concurrent connections so a flood cannot use
//! up the file descriptors etcd needs, and closes connections whose headers
//! arrive too slowly.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use elect::{Election, Leader, Role};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub election: Arc<Election>,
}

/// The main port's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(seed_answer))
        .route("/v1/status", get(status))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(state)
}

fn text(code: StatusCode, body: impl Into<String>) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// The seed's words, exactly, with no trailing newline.
pub fn seed_words(role: Role, leader: Option<&Leader>) -> String {
    let who = match role {
        Role::Leader => return "I am the leader".to_owned(),
        Role::Observer => "I am an observer",
        Role::Follower | Role::Candidate => "I am a follower",
    };
    match leader {
        None => format!("{who} and no leader is elected yet"),
        Some(leader) => match leader.port() {
            Some(port) if !leader.is_foreign() => format!("{who} and the leader is on port {port}"),
            _ => format!("{who} and the leader is unknown"),
        },
    }
}

async fn seed_answer(State(state): State<AppState>) -> Response {
    let now = Instant::now();
    let status = state.election.status();
    let words = seed_words(status.role_at(now), status.leader_at(now).as_ref());
    text(StatusCode::OK, words)
}

#[derive(Serialize)]
struct StatusBody {
    id: String,
    role: Role,
    term: Option<u64>,
    election: String,
    api: elect::Api,
    leader: Option<Leader>,
    /// Succession order, leader first; `null` when etcd could not be read.
    candidates: Option<Vec<Leader>>,
}

async fn status(State(state): State<AppState>) -> Response {
    let candidates = state.election.candidates().await.ok();
    let now = Instant::now();
    let status = state.election.status();
    let leader = status.leader_at(now);
    let body = StatusBody {
        id: status.id.clone(),
        role: status.role_at(now),
        term: leader.as_ref().map(|l| l.term),
        election: status.election.clone(),
        api: status.api,
        leader,
        candidates,
    };
    axum::Json(body).into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.election.health() {
        Ok(()) => text(StatusCode::OK, "ok"),
        Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, reason),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(advertise: Option<&str>) -> Leader {
        Leader {
            id: advertise.map(|_| "b".to_owned()),
            advertise: advertise.map(str::to_owned),
            term: 3,
        }
    }

    #[test]
    fn the_seed_words_exactly() {
        assert_eq!(seed_words(Role::Leader, None), "I am the leader");
        assert_eq!(
            seed_words(Role::Follower, Some(&leader(Some("http://127.0.0.1:8080")))),
            "I am a follower and the leader is on port 8080"
        );
        assert_eq!(
            seed_words(Role::Candidate, None),
            "I am a follower and no leader is elected yet"
        );
        assert_eq!(
            seed_words(Role::Follower, Some(&leader(None))),
            "I am a follower and the leader is unknown"
        );
        assert_eq!(
            seed_words(Role::Observer, Some(&leader(Some("http://h:9000")))),
            "I am an observer and the leader is on port 9000"
        );
    }
}
