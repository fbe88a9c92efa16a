//! A shards trace in words: each step, then every shard's record and who
//! believes it leads it.

use std::fmt::Write as _;

use crate::check::Trace;
use crate::etcd::Owner;
use crate::shards::model::ShardAction;
use crate::shards::state::{MAX_SHARDS, ShardState, Shards, shard_bit};
use crate::shards::steps::ShardElection;

/// A process's name: `n1` for node 1's first electd, `n1'` for its second.
fn name(owner: Owner) -> String {
    match owner {
        Owner::Process { node, inc } => format!("n{node}{}", "'".repeat(usize::from(inc))),
        Owner::OldRule => "etcdctl".to_owned(),
    }
}

/// A trace, step by step: each action, then the state it led to.
pub fn render(model: &ShardElection, trace: &Trace<ShardElection>) -> String {
    let mut out = String::new();
    for (i, (state, action)) in trace.clone().into_vec().into_iter().enumerate() {
        let _ = writeln!(out, "  {}", describe(model, &state));
        if let Some(action) = action {
            let _ = writeln!(out, "{:>2}. {}", i + 1, act(&state, action));
        }
    }
    out
}

/// A state in one line: etcd's revision, and per shard its record's holder
/// and term and who believes it leads it.
pub fn describe(model: &ShardElection, s: &ShardState) -> String {
    let mut out = format!("rev {}", s.etcd.etcd.revision);
    if !s.etcd.etcd.up() {
        out.push_str(" (down)");
    }
    for k in model.shards() {
        let record = s.etcd.records[k].map_or("absent".to_owned(), |r| {
            let holder = s.etcd.etcd.owner(r.lease).map_or("?".to_owned(), name);
            format!("{holder}'s, term {}", r.modr)
        });
        let leaders: Vec<String> = (0..s.nodes.len())
            .filter(|&n| s.nodes[n].proc.is_some_and(|p| p.believes(k)))
            .map(|n| name(s.owner(n)))
            .collect();
        let _ = write!(out, "; shard {k}: {record}, led by {leaders:?}");
    }
    out
}

/// A set of shards as a list: `[0, 1]`.
fn list(shards: Shards) -> String {
    let members: Vec<usize> = (0..MAX_SHARDS)
        .filter(|&k| shards & shard_bit(k) != 0)
        .collect();
    format!("{members:?}")
}

/// An action in words, naming parties as the state before it does.
fn act(before: &ShardState, action: ShardAction) -> String {
    let who = |n: u8| name(before.owner(usize::from(n)));
    let lease = |id| {
        before
            .etcd
            .etcd
            .owner(id)
            .map_or("a lease gone".to_owned(), |o| {
                format!("{}'s lease", name(o))
            })
    };
    match action {
        ShardAction::Tick => "time passes".to_owned(),
        ShardAction::Expire(id) => format!("etcd expires {}", lease(id)),
        ShardAction::Campaign(n) => format!("{} campaigns (lease and key)", who(n)),
        ShardAction::Renew(n) => format!("{} renews its lease", who(n)),
        ShardAction::Observe(n) => format!("{} reads the shards", who(n)),
        ShardAction::Take { node, shard } => {
            format!("{} reads, and takes shard {shard} if absent", who(node))
        }
        ShardAction::Send(n) => format!("{}'s request lands", who(n)),
        ShardAction::Land(n) => format!("dead {}'s request lands", who(n)),
        ShardAction::Move { node, shards, to } => {
            format!(
                "{} moves shards {} to {}",
                who(node),
                list(shards),
                lease(to)
            )
        }
        ShardAction::Named { node, shard } => {
            format!("the placement names {} for shard {shard}", who(node))
        }
        ShardAction::Crash {
            node,
            guardian: true,
        } => format!("{}'s electd is killed", who(node)),
        ShardAction::Crash {
            node,
            guardian: false,
        } => format!("{}'s electd and guardian are killed", who(node)),
        ShardAction::GuardianRead { node, shards, to } => format!(
            "{}'s guardian reads shards {}, to move them to {}",
            who(node),
            list(shards),
            lease(to)
        ),
        ShardAction::GuardianSend(n) => format!("{}'s guardian moves and revokes", who(n)),
        ShardAction::GuardianRelease(n) => format!("{}'s guardian revokes the dead leases", who(n)),
        ShardAction::Restart(n) => format!("node {n} starts again"),
        ShardAction::Wipe => "etcd's data is wiped".to_owned(),
        ShardAction::Bump { to } => {
            format!("someone writes elsewhere in etcd, up to revision {to}")
        }
    }
}
