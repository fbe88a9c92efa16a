//! A leader per shard (planned), as a second model beside the election's:
//! S shards (2 in CI, up to [`MAX_SHARDS`]) over three nodes, each node
//! with one lease, one candidate key and one deadline for all its shards,
//! and each shard with its own record key bound to its holder's lease
//! (its `mod_revision` the term). The writes the protocol allows: taking
//! an absent record, the holder's move of a batch to a successor after it
//! stopped believing, a dead electd's guardian's move of records still
//! bound to the dead process's leases, lease expiry, and an etcd wipe
//! against one floor per node. The model is checked against three
//! properties per shard ([`ONE_LEADER_PER_SHARD`], [`SHARD_TERMS_GROW`],
//! [`SHARD_HOLDERS_WRITE`]), and five unsafe variants ([`ShardProtocol`])
//! must each be caught (`MODEL.md`).

mod model;
mod reduce;
mod render;
mod state;
mod steps;

pub use model::{
    ONE_LEADER_PER_SHARD, SHARD_HOLDERS_WRITE, SHARD_SAFETY, SHARD_TERMS_GROW, ShardAction,
};
pub use render::{describe, render};
pub use state::{
    MAX_SHARDS, Move, ShardConfig, ShardEtcd, ShardNode, ShardProc, ShardProtocol, ShardRequest,
    ShardState, Shards,
};
pub use steps::ShardElection;

#[cfg(test)]
mod tests;
