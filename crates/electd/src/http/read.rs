//! The read-only answers: the seed's plain text, the status, the health
//! checks, the leader-change events and the metrics. Each is computed from
//! the election's status at the instant of the request.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use elect::Role;
use tokio::time::Instant;

use super::answers::{LeaderBody, seed_words};
use super::state::{AppState, MAX_WATCHERS, status_body};

/// A plain-text answer.
pub(super) fn text(code: StatusCode, body: impl Into<String>) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

pub(super) async fn seed_answer(State(state): State<AppState>) -> Response {
    let now = Instant::now();
    let status = state.election.status();
    let words = seed_words(status.role_at(now), status.leader_at(now).as_ref());
    text(StatusCode::OK, words)
}

pub(super) async fn status(State(state): State<AppState>) -> Response {
    axum::Json(status_body(&state).await).into_response()
}

pub(super) async fn healthz(State(state): State<AppState>) -> Response {
    match state.election.health() {
        Ok(()) => text(StatusCode::OK, "ok"),
        Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, reason.to_string()),
    }
}

/// Liveness: 200 while the election loop runs, whatever etcd does. This is
/// what may restart electd; `/healthz` also reports trouble with etcd, which
/// a restart cannot fix (and which would forget the term floor).
pub(super) async fn livez(State(state): State<AppState>) -> Response {
    match state.election.liveness() {
        Ok(()) => text(StatusCode::OK, "ok"),
        Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, reason.to_string()),
    }
}

/// 200 with the term only while this node leads (deadline-checked).
pub(super) async fn health_leader(State(state): State<AppState>) -> Response {
    let now = Instant::now();
    match state.election.status().tenure_at(now) {
        Some(tenure) => text(StatusCode::OK, tenure.term.to_string()),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "not the leader"),
    }
}

/// 200 only on a follower that knows a live leader and hears from etcd.
pub(super) async fn health_follower(State(state): State<AppState>) -> Response {
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
pub(super) async fn watch(State(state): State<AppState>) -> Response {
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

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(&state.election.status()),
    )
        .into_response()
}

pub(super) async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found")
}
