//! The shards' answers (`--shards N`): who leads each shard, and whether
//! this node leads one, deadline-checked at the instant of the request.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use elect::shards::{ShardLeader, ShardMap};
use serde::Serialize;
use tokio::time::Instant;

use super::answers::{error, text};
use super::state::AppState;

/// One shard as `/v1/shards` lists it.
#[derive(Serialize)]
struct ShardBody {
    shard: u32,
    /// `null` while the shard has no leader.
    leader: Option<ShardLeaderBody>,
    /// The shard's term (fencing token); `null` while it has no leader.
    term: Option<u64>,
    /// Whether this node leads it now.
    #[serde(rename = "self")]
    is_self: bool,
}

#[derive(Serialize)]
struct ShardLeaderBody {
    id: String,
    advertise: String,
}

impl ShardBody {
    fn new(shard: u32, leader: Option<&ShardLeader>, is_self: bool) -> ShardBody {
        ShardBody {
            shard,
            leader: leader.map(|l| ShardLeaderBody {
                id: l.id.clone(),
                advertise: l.advertise.clone(),
            }),
            term: leader.map(|l| l.term),
            is_self,
        }
    }
}

/// How many shards one node leads, as etcd shows it.
#[derive(Serialize)]
struct NodeLoad {
    id: String,
    leads: usize,
}

/// `GET /v1/shards`.
#[derive(Serialize)]
struct ShardsBody {
    count: u32,
    /// The etcd revision the answer reflects.
    revision: u64,
    /// This node's id, and the shards it leads now.
    id: String,
    leads: Vec<u32>,
    /// Each node that leads a shard, by id, with how many; then how many
    /// shards have no leader now.
    nodes: Vec<NodeLoad>,
    leaderless: usize,
    shards: Vec<ShardBody>,
}

/// The shards as this node sees them, or the refusal of an election
/// without shards.
fn shard_map(state: &AppState) -> Result<ShardMap, Box<Response>> {
    match state.election.shards() {
        Some(map) => Ok(map),
        None => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "no_shards",
            "this election has no shards: start every node with --shards N",
        ))),
    }
}

/// The shards, and the shard a path names; or the refusal.
fn shard_named(state: &AppState, raw: &str) -> Result<(ShardMap, u32), Box<Response>> {
    let map = shard_map(state)?;
    match raw.parse::<u32>() {
        Ok(shard) if shard < map.count() => Ok((map, shard)),
        _ => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "no_such_shard",
            format!(
                "no shard {raw:?}: this election's shards are numbered 0 to {}",
                map.count().saturating_sub(1)
            ),
        ))),
    }
}

/// `GET /v1/shards[?mine]`: every shard's leader and term (with `mine`,
/// only those this node leads), and the load per node.
pub(super) async fn shards(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let map = match shard_map(&state) {
        Ok(map) => map,
        Err(refusal) => return *refusal,
    };
    let mine = match only_mine(query.as_deref()) {
        Ok(mine) => mine,
        Err(sentence) => return error(StatusCode::BAD_REQUEST, "bad_query", sentence),
    };
    let now = Instant::now();
    let leads = map.led_at(now).to_vec();
    let mut loads: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for leader in map.leaders.iter().flatten() {
        *loads.entry(leader.id.as_str()).or_default() += 1;
    }
    let shards = (0..map.count())
        .filter(|&k| !mine || leads.binary_search(&k).is_ok())
        .map(|k| ShardBody::new(k, map.leaders[k as usize].as_ref(), map.leads_at(k, now)))
        .collect();
    let body = ShardsBody {
        count: map.count(),
        revision: map.revision,
        id: state.election.config().id().to_owned(),
        leads,
        nodes: loads
            .into_iter()
            .map(|(id, leads)| NodeLoad {
                id: id.to_owned(),
                leads,
            })
            .collect(),
        leaderless: map.leaders.iter().filter(|l| l.is_none()).count(),
        shards,
    };
    axum::Json(body).into_response()
}

/// The shards events of a `/v1/watch` stream since `last` (the leaders it
/// sent last; `None` before the first): a `shards` event with every
/// shard's leader the first time, then a `shard` event per shard whose
/// leader or term changed.
pub(super) fn shard_events(
    state: &AppState,
    last: &mut Option<Vec<Option<ShardLeader>>>,
) -> Vec<Event> {
    let Some(map) = state.election.shards() else {
        return Vec::new();
    };
    let now = Instant::now();
    let body = |k: u32| ShardBody::new(k, map.leaders[k as usize].as_ref(), map.leads_at(k, now));
    let events = match last.as_ref() {
        None => {
            let shards: Vec<ShardBody> = (0..map.count()).map(body).collect();
            let data = serde_json::json!({"count": map.count(), "shards": shards});
            vec![Event::default().event("shards").data(data.to_string())]
        }
        Some(before) => (0..map.count())
            .filter(|&k| before.get(k as usize) != Some(&map.leaders[k as usize]))
            .filter_map(|k| serde_json::to_string(&body(k)).ok())
            .map(|data| Event::default().event("shard").data(data))
            .collect(),
    };
    *last = Some(map.leaders);
    events
}

/// `GET /v1/shards/K`: shard K's leader and term.
pub(super) async fn shard(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    let (map, shard) = match shard_named(&state, &raw) {
        Ok(named) => named,
        Err(refusal) => return *refusal,
    };
    let leader = map.leaders[shard as usize].as_ref();
    let body = ShardBody::new(shard, leader, map.leads_at(shard, Instant::now()));
    axum::Json(body).into_response()
}

/// `GET /health/shard/K`: 200 with the shard's term only while this node
/// leads shard K (deadline-checked); 503 otherwise.
pub(super) async fn health_shard(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Response {
    let (map, shard) = match shard_named(&state, &raw) {
        Ok(named) => named,
        Err(refusal) => return *refusal,
    };
    match &map.leaders[shard as usize] {
        Some(leader) if map.leads_at(shard, Instant::now()) => {
            text(StatusCode::OK, leader.term.to_string())
        }
        _ => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not the leader of shard {shard}"),
        ),
    }
}

/// Whether a `/v1/shards` query asks for this node's shards only
/// (`?mine`, or `mine=true`/`mine=false`); the sentence for anything else.
fn only_mine(query: Option<&str>) -> Result<bool, String> {
    let mut mine = false;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match (name.as_ref(), value.as_ref()) {
            ("mine", "" | "true" | "1") => mine = true,
            ("mine", "false" | "0") => mine = false,
            ("mine", other) => return Err(format!("mine is true or false; got {other:?}")),
            (other, _) => {
                return Err(format!("/v1/shards takes only ?mine; got {other:?}"));
            }
        }
    }
    Ok(mine)
}

#[cfg(test)]
mod tests {
    use super::only_mine;

    #[test]
    fn only_mine_is_asked_with_a_bare_flag_or_true() {
        assert_eq!(only_mine(None), Ok(false));
        assert_eq!(only_mine(Some("mine")), Ok(true));
        assert_eq!(only_mine(Some("mine=true")), Ok(true));
        assert_eq!(only_mine(Some("mine=false")), Ok(false));
        assert!(only_mine(Some("mine=maybe")).is_err());
        assert!(only_mine(Some("limit=3")).is_err());
    }
}
