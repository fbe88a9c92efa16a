//! The shards' answers (`--shards N`): who leads each shard, and whether
//! this node leads one, deadline-checked at the instant of the request.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use elect::shards::{ShardLeader, ShardMap};
use serde::Serialize;
use tokio::time::Instant;

use super::answers::error;
use super::read::text;
use super::state::AppState;

/// One shard as `/v1/shards` lists it.
#[derive(Serialize)]
struct ShardBody {
    shard: u32,
    /// The leader's id; `null` while the shard has none.
    leader: Option<String>,
    advertise: Option<String>,
    /// The shard's term (fencing token); `null` while it has no leader.
    term: Option<u64>,
    /// Whether this node leads it now.
    #[serde(rename = "self")]
    is_self: bool,
}

impl ShardBody {
    fn new(shard: u32, leader: Option<&ShardLeader>, is_self: bool) -> ShardBody {
        ShardBody {
            shard,
            leader: leader.map(|l| l.id.clone()),
            advertise: leader.map(|l| l.advertise.clone()),
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

/// `GET /v1/shards`: every shard's leader and term, and the load per node.
pub(super) async fn shards(State(state): State<AppState>) -> Response {
    let map = match shard_map(&state) {
        Ok(map) => map,
        Err(refusal) => return *refusal,
    };
    let now = Instant::now();
    let leads = map.led_at(now).to_vec();
    let mut loads: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for leader in map.leaders.iter().flatten() {
        *loads.entry(leader.id.as_str()).or_default() += 1;
    }
    let shards = (0..map.count())
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
