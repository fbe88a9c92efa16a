//! The admin endpoints: hand-over on demand (`POST /v1/resign`, to the next
//! in line or `?to=ID`), drain and undrain. Each needs the bearer token;
//! every refusal is JSON with a machine-readable `error` code and changes
//! nothing: 403 `admin_off`, 401 `unauthorized`, 409 `not_leader` and the
//! reasons a named hand-over cannot be made, 501 `needs_v3`; 504
//! `transfer_timed_out` when the named node did not take over in time and
//! 503 `transfer_failed` when etcd failed the hand-over after the leader
//! stepped down (the ordinary succession then goes on).

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use elect::TransferError;
use serde::Deserialize;
use tokio::sync::oneshot;

use super::answers::{ErrorBody, LeaderBody, error};
use super::state::{AppState, status_body};
use crate::lead::{Request, ResignReply};

/// Compares every byte whatever the contents, so timing says nothing about
/// how much of a guess was right (only about its length).
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for i in 0..given.len().max(expected.len()) {
        let a = given.get(i).copied().unwrap_or(0);
        let b = expected.get(i).copied().unwrap_or(0);
        diff |= usize::from(a ^ b);
    }
    std::hint::black_box(diff) == 0
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    value
        .strip_prefix(b"Bearer ")
        .or_else(|| value.strip_prefix(b"bearer "))
}

/// The refusal to answer, if the request may not act.
fn refuse(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &state.admin_token else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "admin_off",
            "admin endpoints are off: configure --admin-token-file or ELECTD_ADMIN_TOKEN",
        ));
    };
    if !bearer(headers).is_some_and(|given| same_secret(given, token.as_bytes())) {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return Some(response);
    }
    if state.requests.is_none() {
        return Some(error(
            StatusCode::CONFLICT,
            "not_leader",
            "not the leader: an observer never leads",
        ));
    }
    None
}

fn not_leader() -> Response {
    error(StatusCode::CONFLICT, "not_leader", "not the leader")
}

#[derive(Deserialize)]
pub struct ResignQuery {
    to: Option<String>,
}

/// Hand-over on demand: the leader stops its command and hands over, to the
/// next in line or to the candidate `?to=ID` and no one else.
pub async fn resign(
    State(state): State<AppState>,
    Query(query): Query<ResignQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = refuse(&state, &headers) {
        return refusal;
    }
    if state.election.config().shards().is_some() {
        // Every shard this node leads is bound to the lease a resign
        // gives up: it would end them all, not hand the election on.
        return error(
            StatusCode::CONFLICT,
            "not_with_shards",
            "with --shards a resign would end this node's lease, and every shard it leads with \
             it: drain the node instead (POST /v1/drain), or stop it",
        );
    }
    let Some(requests) = &state.requests else {
        return not_leader();
    };
    let to = query.to.filter(|to| !to.is_empty());
    let (reply, answer) = oneshot::channel();
    let request = Request::Resign {
        to: to.clone(),
        reply,
    };
    if requests.send(request).await.is_err() {
        return not_leader();
    }
    match answer.await {
        Ok(ResignReply::Failed(reason)) if to.is_some() => {
            // Stepped down, but etcd failed it: the named node may not be
            // the one leading, which a 200 would claim.
            tracing::warn!(%reason, "the named hand-over failed; the ordinary succession goes on");
            let body = ErrorBody {
                error: "transfer_failed",
                message: format!(
                    "stepped down, but the hand-over failed ({reason}); the ordinary succession \
                     goes on"
                ),
                leader: Some(
                    state
                        .election
                        .status()
                        .current_leader()
                        .as_ref()
                        .map(LeaderBody::new),
                ),
            };
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
        Ok(reply @ (ResignReply::Resigned | ResignReply::Failed(_))) => {
            if let ResignReply::Failed(reason) = reply {
                tracing::warn!(%reason, "stepped down without releasing the key; it expires on its own");
            }
            // Show who took over, if the successor is known within a moment.
            let own = state.election.status().id;
            let mut updates = state.election.subscribe();
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                updates.wait_for(|s| {
                    s.current_leader()
                        .is_some_and(|l| l.id.as_deref() != Some(&own))
                }),
            )
            .await;
            axum::Json(status_body(&state).await).into_response()
        }
        Ok(ResignReply::Transferred) => axum::Json(status_body(&state).await).into_response(),
        Ok(ResignReply::Refused(err)) => refused(&err),
        Ok(ResignReply::TimedOut(leader)) => {
            let body = ErrorBody {
                error: "transfer_timed_out",
                message: format!(
                    "{} did not take over in time; the hand-over was withdrawn and the ordinary \
                     succession goes on",
                    to.as_deref().unwrap_or("the candidate")
                ),
                leader: Some(leader.as_ref().map(LeaderBody::new)),
            };
            (StatusCode::GATEWAY_TIMEOUT, axum::Json(body)).into_response()
        }
        Ok(ResignReply::NotLeader) | Err(_) => not_leader(),
    }
}

/// A named hand-over that cannot be made: nothing changed.
fn refused(err: &TransferError) -> Response {
    let (code, error_code) = match err {
        TransferError::NotLeader => (StatusCode::CONFLICT, "not_leader"),
        TransferError::NoSuchCandidate { .. } => (StatusCode::CONFLICT, "no_such_candidate"),
        TransferError::Ambiguous { .. } => (StatusCode::CONFLICT, "ambiguous_candidate"),
        TransferError::Ineligible { healthy: false, .. } => {
            (StatusCode::CONFLICT, "candidate_unhealthy")
        }
        TransferError::Ineligible { .. } => (StatusCode::CONFLICT, "candidate_drained"),
        TransferError::ToSelf { .. } => (StatusCode::CONFLICT, "candidate_is_self"),
        TransferError::OldRule => (StatusCode::CONFLICT, "old_releases_present"),
        TransferError::NeedsV3 => {
            return error(
                StatusCode::NOT_IMPLEMENTED,
                "needs_v3",
                "a hand-over to a named node needs --api v3",
            );
        }
        _ => (StatusCode::CONFLICT, "transfer_refused"),
    };
    error(code, error_code, err.to_string())
}

/// `POST /v1/drain`: the node withdraws its candidacy (a leader hands over
/// first) until undrained or restarted.
pub async fn drain(State(state): State<AppState>, headers: HeaderMap) -> Response {
    set_drained(state, headers, true).await
}

/// `POST /v1/undrain`: the node is a candidate again.
pub async fn undrain(State(state): State<AppState>, headers: HeaderMap) -> Response {
    set_drained(state, headers, false).await
}

async fn set_drained(state: AppState, headers: HeaderMap, drained: bool) -> Response {
    if let Some(refusal) = refuse(&state, &headers) {
        return refusal;
    }
    let Some(requests) = &state.requests else {
        return not_leader();
    };
    let (reply, answer) = oneshot::channel();
    if requests
        .send(Request::Drain { drained, reply })
        .await
        .is_err()
        || answer.await.is_err()
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "electd is shutting down",
        );
    }
    axum::Json(status_body(&state).await).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3creT", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some(&b"abc"[..]));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
