//! The three nodes are interchangeable: a state and the same state with
//! the nodes renamed behave alike, so a reduced check stores one of them
//! (symmetry reduction, done by the model itself after every step: the
//! breadth-first checker has none of its own).

use crate::etcd::Owner;
use crate::state::{NODES, State};

/// The state with its nodes in a canonical order (sorted), every reference
/// to a node renamed to match.
pub fn representative(s: &State) -> State {
    let mut r = *s;
    let rename = sort_nodes(&mut r.nodes);
    for lease in r.etcd.leases.iter_mut().flatten() {
        lease.owner = rename(lease.owner);
    }
    r.ghost.max_term = r.ghost.max_term.map(|(term, owner)| (term, rename(owner)));
    r
}

/// Sorts `nodes` (any model's), and returns how an owner is renamed to
/// match.
pub(crate) fn sort_nodes<N: Ord + Copy>(
    nodes: &mut [N; NODES],
) -> impl Fn(Owner) -> Owner + use<N> {
    let mut order: [usize; NODES] = std::array::from_fn(|i| i);
    order.sort_by(|&a, &b| nodes[a].cmp(&nodes[b]));
    let mut renamed = [0u8; NODES];
    let before = *nodes;
    for (new, &old) in order.iter().enumerate() {
        renamed[old] = u8::try_from(new).unwrap_or(u8::MAX);
        nodes[new] = before[old];
    }
    move |owner: Owner| match owner {
        Owner::Process { node, inc } => Owner::Process {
            node: renamed.get(usize::from(node)).copied().unwrap_or(node),
            inc,
        },
        Owner::OldRule => Owner::OldRule,
    }
}
