//! The read-only answers: the seed's plain text, the status, the health
//! checks, the leader-change events and the metrics. Each is computed from
//! the election's status at the instant of the request.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use elect::Role;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::answers::{HistoryBody, LeaderBody, error, seed_words, text};
use super::shards::shard_events;
use super::state::{AppState, MAX_WATCHERS, status_body};

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

/// Which events a `/v1/watch` stream sends (`?events=leader,status,shards`;
/// leader and status by default).
#[derive(Deserialize)]
pub(super) struct WatchQuery {
    events: Option<String>,
}

/// The events a stream asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wanted {
    leader: bool,
    status: bool,
    shards: bool,
}

impl Wanted {
    fn parse(query: Option<&str>) -> Result<Wanted, String> {
        let Some(query) = query else {
            return Ok(Wanted {
                leader: true,
                status: true,
                shards: false,
            });
        };
        let mut wanted = Wanted {
            leader: false,
            status: false,
            shards: false,
        };
        for name in query.split(',') {
            match name {
                "leader" => wanted.leader = true,
                "status" => wanted.status = true,
                "shards" => wanted.shards = true,
                other => {
                    return Err(format!(
                        "unknown event {other:?}: events= takes leader, status and shards, \
                         comma-separated"
                    ));
                }
            }
        }
        Ok(wanted)
    }
}

/// How often a stream that sends `status` events looks for a change the
/// election's own signal does not carry (the succession order: a drain, a
/// health verdict, a priority, a candidate joining or leaving). It looks
/// at the node's own copy of the election (v3: its mirror; v2: a read
/// shared by every request, at most every 0.5 s): no etcd traffic per stream.
const STATUS_LOOK_EVERY: Duration = Duration::from_millis(200);

/// Server-sent events: a `leader` event on connect and per change of
/// leader; a `status` event (the `/v1/status` body) on connect and on any
/// change a list of the election would show.
pub(super) async fn watch(
    State(state): State<AppState>,
    Query(query): Query<WatchQuery>,
) -> Response {
    let wanted = match Wanted::parse(query.events.as_deref()) {
        Ok(wanted) => wanted,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let mut shard_changes = state.election.watch_shards();
    if wanted.shards && shard_changes.is_none() {
        return text(
            StatusCode::BAD_REQUEST,
            "events=shards: this election has no shards (start every node with --shards N)",
        );
    }
    let Ok(permit) = state.watchers.clone().try_acquire_owned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("too many open watches (at most {MAX_WATCHERS})"),
        );
    };
    let (events, mut sink) = mpsc::channel::<Event>(16);
    tokio::spawn(async move {
        // The permit lives as long as the stream.
        let _permit = permit;
        let mut leaders = state.election.observe();
        let mut statuses = state.election.subscribe();
        let mut look = tokio::time::interval(STATUS_LOOK_EVERY);
        look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_status: Option<serde_json::Value> = None;
        let mut last_shards = None;
        if wanted.shards {
            for event in shard_events(&state, &mut last_shards) {
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
        loop {
            let event = tokio::select! {
                changed = changed_or_never(shard_changes.as_mut()), if wanted.shards => {
                    if changed.is_err() {
                        return;
                    }
                    for event in shard_events(&state, &mut last_shards) {
                        if events.send(event).await.is_err() {
                            return;
                        }
                    }
                    None
                }
                leader = leaders.changed(), if wanted.leader => {
                    let Ok(leader) = leader else { return };
                    Some(leader_event(leader.as_ref()))
                }
                changed = statuses.changed(), if wanted.status => {
                    if changed.is_err() {
                        return;
                    }
                    status_event(&state, &mut last_status).await
                }
                _ = look.tick(), if wanted.status => status_event(&state, &mut last_status).await,
                () = events.closed() => return,
            };
            if let Some(event) = event
                && events.send(event).await.is_err()
            {
                return;
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        sink.poll_recv(cx)
            .map(|event| event.map(Ok::<Event, Infallible>))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// A change of `receiver`, or never when there is none.
async fn changed_or_never<T>(
    receiver: Option<&mut tokio::sync::watch::Receiver<T>>,
) -> Result<(), tokio::sync::watch::error::RecvError> {
    match receiver {
        Some(receiver) => receiver.changed().await,
        None => std::future::pending().await,
    }
}

fn leader_event(leader: Option<&elect::Leader>) -> Event {
    let body = leader.map(LeaderBody::new);
    let data = serde_json::to_string(&body).unwrap_or_else(|_| "null".to_owned());
    Event::default().event("leader").data(data)
}

/// A `status` event if what a list shows changed since `last`.
async fn status_event(state: &AppState, last: &mut Option<serde_json::Value>) -> Option<Event> {
    let body = serde_json::to_value(status_body(state).await).ok()?;
    let shown = listed(&body);
    if last.as_ref() == Some(&shown) {
        return None;
    }
    *last = Some(shown);
    Some(Event::default().event("status").data(body.to_string()))
}

/// What a list of the election shows: the status without what moves on
/// its own (the revision, a waited-for lease's countdown), so that a stream
/// sends only changes someone would see.
fn listed(body: &serde_json::Value) -> serde_json::Value {
    let mut shown = body.clone();
    if let Some(fields) = shown.as_object_mut() {
        fields.remove("revision");
        if let Some(obstacle) = fields.get_mut("obstacle").and_then(|o| o.as_object_mut()) {
            obstacle.remove("expires_in_s");
        }
    }
    shown
}

/// `GET /v1/history[?limit=N]`: who led, newest first, as etcd holds it
/// (v3). Every node reads the same keys, so every node answers the same.
pub(super) async fn history(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let config = state.election.config();
    if config.api() == elect::Api::V2 {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "needs_v3",
            "the election's history needs --api v3: v2's one key keeps none",
        );
    }
    let size = config.history_size();
    let limit = match history_limit(query.as_deref(), size) {
        Ok(limit) => limit,
        Err(sentence) => return error(StatusCode::BAD_REQUEST, "bad_limit", sentence),
    };
    match state.history().await {
        Ok(history) => axum::Json(HistoryBody::new(&history, limit)).into_response(),
        Err(reason) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "etcd_unavailable",
            format!("cannot read the election's history from etcd: {reason}"),
        ),
    }
}

/// The `limit` of a `/v1/history` query: a whole number from 1, capped by
/// the history's `size` (its default); the sentence for a bad one.
fn history_limit(query: Option<&str>, size: usize) -> Result<usize, String> {
    let given: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name == "limit")
        .map(|(_, value)| value.into_owned())
        .collect();
    match given.as_slice() {
        [] => Ok(size),
        [one] => match one.trim().parse::<usize>() {
            Ok(limit) if limit > 0 => Ok(limit.min(size)),
            _ => Err(format!(
                "limit must be a whole number of leaderships from 1 (at most {size} are kept); \
                 got {one:?}"
            )),
        },
        _ => Err("give limit once".to_owned()),
    }
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state
            .metrics
            .render(&state.election.status(), state.election.shards().as_ref()),
    )
        .into_response()
}

pub(super) async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_sends_leader_and_status_unless_told() {
        let both = Wanted {
            leader: true,
            status: true,
            shards: false,
        };
        assert_eq!(Wanted::parse(None), Ok(both));
        assert_eq!(Wanted::parse(Some("status,leader")), Ok(both));
        let leader = Wanted::parse(Some("leader")).unwrap();
        assert!(leader.leader && !leader.status && !leader.shards);
        let shards = Wanted::parse(Some("shards")).unwrap();
        assert!(shards.shards && !shards.leader && !shards.status);
        assert!(Wanted::parse(Some("")).is_err());
        assert!(Wanted::parse(Some("leader,bogus")).is_err());
    }

    #[test]
    fn what_moves_on_its_own_is_no_change() {
        let a = serde_json::json!({"role": "follower", "revision": 7,
            "obstacle": {"kind": "waiting", "expires_in_s": 1.5}});
        let b = serde_json::json!({"role": "follower", "revision": 9,
            "obstacle": {"kind": "waiting", "expires_in_s": 0.2}});
        assert_eq!(listed(&a), listed(&b));
        let c = serde_json::json!({"role": "leader", "revision": 9, "obstacle": null});
        assert_ne!(listed(&a), listed(&c));
    }

    #[test]
    fn a_limit_is_a_whole_number_from_one_capped_by_the_size() {
        assert_eq!(history_limit(None, 100), Ok(100));
        assert_eq!(history_limit(Some(""), 100), Ok(100));
        assert_eq!(history_limit(Some("limit=3"), 100), Ok(3));
        assert_eq!(history_limit(Some("x=1&limit=%203"), 100), Ok(3));
        assert_eq!(history_limit(Some("limit=1000"), 100), Ok(100));
        for bad in ["limit=0", "limit=-1", "limit=abc", "limit=", "limit=1.5"] {
            let sentence = history_limit(Some(bad), 100).expect_err(bad);
            assert!(
                sentence.starts_with("limit must be a whole number of leaderships from 1"),
                "{bad}: {sentence}"
            );
        }
        assert_eq!(
            history_limit(Some("limit=1&limit=2"), 100),
            Err("give limit once".to_owned())
        );
    }
}
