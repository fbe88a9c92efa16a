//! What the HTTP answers say, in the daemon's words: the seed's plain
//! text, the JSON bodies of `/v1/status`, `/v1/watch` and `/v1/history`,
//! and the JSON of every refusal, made from the library's types (which
//! carry no wire format of their own).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use elect::{Candidate, History, HistoryEntry, Leader, Obstacle, Role, Status};
use serde::Serialize;
use tokio::time::Instant;

use crate::wallclock::rfc3339;

/// A refusal or failure: a machine-readable `error` code and a sentence.
#[derive(Serialize)]
pub struct ErrorBody {
    pub error: &'static str,
    pub message: String,
    /// Who leads, where it matters (a hand-over that timed out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<Option<LeaderBody>>,
}

/// A plain-text answer.
pub fn text(code: StatusCode, body: impl Into<String>) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// An [`ErrorBody`] answer with `code`.
pub fn error(code: StatusCode, error: &'static str, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error,
        message: message.into(),
        leader: None,
    };
    (code, axum::Json(body)).into_response()
}

/// A leader as `/v1/status` and `/v1/watch` show it.
#[derive(Serialize)]
pub struct LeaderBody {
    id: Option<String>,
    advertise: Option<String>,
    term: u64,
    verified: bool,
}

impl LeaderBody {
    pub fn new(leader: &Leader) -> LeaderBody {
        LeaderBody {
            id: leader.id.clone(),
            advertise: leader.advertise.clone(),
            term: leader.term,
            verified: leader.verified,
        }
    }
}

/// A candidate as `/v1/status` lists it.
#[derive(Serialize)]
pub struct CandidateBody {
    id: Option<String>,
    advertise: Option<String>,
    /// The leader's term; for the others, the revision that queued them.
    term: u64,
    verified: bool,
    leads: bool,
    priority: i64,
    /// `null` where etcd does not say (v2).
    healthy: Option<bool>,
    drained: Option<bool>,
}

impl CandidateBody {
    fn new(candidate: &Candidate) -> CandidateBody {
        let offer = candidate.candidacy;
        CandidateBody {
            id: candidate.id.clone(),
            advertise: candidate.advertise.clone(),
            term: candidate.term,
            verified: candidate.verified,
            leads: candidate.leads,
            priority: offer.map_or(0, |o| o.priority),
            healthy: offer.map(|o| o.healthy),
            drained: offer.map(|o| o.drained),
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::Observer => "observer",
        _ => "unknown",
    }
}

/// The port of the leader's advertise URL (the scheme's default when it
/// names none): the seed's way of naming the leader.
fn port(leader: &Leader) -> Option<u16> {
    let url = url::Url::parse(leader.advertise.as_deref()?).ok()?;
    url.port_or_known_default()
}

/// The seed's words, exactly, with no trailing newline.
pub fn seed_words(role: Role, leader: Option<&Leader>) -> String {
    let who = match role {
        Role::Leader => return "I am the leader".to_owned(),
        Role::Observer => "I am an observer",
        _ => "I am a follower",
    };
    match leader {
        None => format!("{who} and no leader is elected yet"),
        Some(leader) => match port(leader) {
            Some(port) if !leader.is_foreign() => format!("{who} and the leader is on port {port}"),
            _ => format!("{who} and the leader is unknown"),
        },
    }
}

/// `/v1/status`.
#[derive(Serialize)]
pub struct StatusBody {
    id: String,
    role: &'static str,
    term: Option<u64>,
    election: String,
    api: String,
    leader: Option<LeaderBody>,
    /// Succession order, leader first; `null` when etcd could not be read.
    candidates: Option<Vec<CandidateBody>>,
    /// This node's health verdict; `null` without `--health-url`.
    healthy: Option<bool>,
    /// Whether this node is drained.
    drained: bool,
    /// This node's priority.
    priority: i64,
    /// What in etcd keeps the election from electing, or what it waits for.
    obstacle: Option<ObstacleBody>,
    /// The lowest term this node may still call current.
    floor: u64,
    /// The highest etcd revision (v2: index) this node has seen.
    revision: u64,
    /// Where this node's admin endpoints listen: its advertise URL, or the
    /// `--admin-listen` address.
    admin: String,
}

/// An obstacle for operators and programs: a stable kind, the words, and
/// the facts behind them.
#[derive(Serialize)]
struct ObstacleBody {
    kind: &'static str,
    message: String,
    /// Whether it keeps every node from leading until someone acts (`/healthz` is 503).
    blocking: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease: Option<String>,
    /// Seconds until the lease waited for expires at the latest.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<u64>,
}

impl ObstacleBody {
    fn new(obstacle: &Obstacle, now: Instant) -> ObstacleBody {
        let mut body = ObstacleBody {
            kind: obstacle.kind(),
            message: obstacle.to_string(),
            blocking: obstacle.is_unhealthy(),
            key: None,
            lease: None,
            expires_in_s: None,
            from: None,
            to: None,
        };
        match obstacle {
            Obstacle::ForeignKey { key, expiry, .. } => {
                body.key = Some(key.clone());
                if let elect::Expiry::Lease(lease) = expiry {
                    body.lease = Some(format!("{lease:x}"));
                }
            }
            Obstacle::Predecessor {
                key,
                lease,
                expires,
            } => {
                body.key = Some(key.clone());
                body.lease = Some(format!("{lease:x}"));
                body.expires_in_s =
                    expires.map(|at| at.saturating_duration_since(now).as_secs_f64());
            }
            Obstacle::Regressed { from, to, .. } => {
                body.from = Some(*from);
                body.to = Some(*to);
            }
            _ => {}
        }
        body
    }
}

/// `/v1/history`: the leaderships newest first, and the keys skipped.
/// Made only of what etcd held (times as their writers' clocks said), so
/// every node answers the same bytes for the same history.
#[derive(Serialize)]
pub struct HistoryBody {
    history: Vec<EntryBody>,
    skipped: Vec<SkippedBody>,
}

/// One leadership: `ended_at`, `reason` and `to` are `null` for the
/// current one; times RFC 3339 in UTC, `null` where unknown.
#[derive(Serialize)]
struct EntryBody {
    term: u64,
    id: String,
    advertise: String,
    acquired_at: Option<String>,
    ended_at: Option<String>,
    reason: Option<&'static str>,
    to: Option<String>,
}

/// A key in the history's range that is not an entry of electd's.
#[derive(Serialize)]
struct SkippedBody {
    key: String,
    why: &'static str,
}

impl EntryBody {
    fn new(entry: &HistoryEntry) -> EntryBody {
        let ended = entry.ended.as_ref();
        EntryBody {
            term: entry.term,
            id: entry.id.clone(),
            advertise: entry.advertise.clone(),
            acquired_at: entry.acquired_at.map(rfc3339),
            ended_at: ended.and_then(|e| e.at).map(rfc3339),
            reason: ended.map(|e| e.ending.as_str()),
            to: ended.and_then(|e| e.to.clone()),
        }
    }
}

impl HistoryBody {
    /// The first `limit` leaderships of `history`, and every key skipped.
    pub fn new(history: &History, limit: usize) -> HistoryBody {
        HistoryBody {
            history: history
                .entries
                .iter()
                .take(limit)
                .map(EntryBody::new)
                .collect(),
            skipped: history
                .skipped
                .iter()
                .map(|s| SkippedBody {
                    key: s.key.clone(),
                    why: s.why,
                })
                .collect(),
        }
    }
}

impl StatusBody {
    /// The answer at `now`, with the succession order as read; `checked`
    /// says whether a health check runs.
    pub fn new(
        status: &Status,
        candidates: Option<Vec<Candidate>>,
        checked: bool,
        admin: &str,
        now: Instant,
    ) -> StatusBody {
        let leader = status.leader_at(now);
        StatusBody {
            healthy: checked.then_some(status.candidacy.healthy),
            drained: status.candidacy.drained,
            priority: status.candidacy.priority,
            id: status.id.clone(),
            role: role_name(status.role_at(now)),
            term: leader.as_ref().map(|l| l.term),
            election: status.election.clone(),
            api: status.api.to_string(),
            leader: leader.as_ref().map(LeaderBody::new),
            candidates: candidates.map(|c| c.iter().map(CandidateBody::new).collect()),
            obstacle: status.obstacle.as_ref().map(|o| ObstacleBody::new(o, now)),
            floor: status.floor,
            revision: status.revision,
            admin: admin.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader(advertise: Option<&str>) -> Leader {
        Leader {
            id: advertise.map(|_| "b".to_owned()),
            advertise: advertise.map(str::to_owned),
            term: 3,
            verified: advertise.is_some(),
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
    #[test]
    fn a_leader_names_its_port() {
        assert_eq!(port(&leader(Some("http://10.0.0.2:8081"))), Some(8081));
        assert_eq!(port(&leader(Some("https://h"))), Some(443));
        assert_eq!(port(&leader(None)), None);
    }
}
