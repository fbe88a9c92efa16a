//! What makes equal situations of the shards equal states: the election's
//! reductions (`crate::reduce`, `crate::symmetry`) applied to the shards'
//! state.

use crate::etcd::{LeaseId, Rev, remap, remap_set};
use crate::reduce::{bound_leases, compress, forget_idle_leases};
use crate::shards::state::{MAX_SHARDS, Move, ShardRequest, ShardState, shard_bit};
use crate::shards::steps::ShardElection;
use crate::state::Guardian;
use crate::symmetry::sort_nodes;

/// After every step: idle leases forgotten, leases renumbered, revisions
/// too (without a wipe), and the nodes sorted.
pub(crate) fn canonical(model: &ShardElection, s: &mut ShardState) {
    let history = model.tracks_history();
    let claimed = s
        .nodes
        .iter()
        .filter_map(|n| n.proc.and_then(|p| p.claim))
        .fold(0, |set, c| set | crate::etcd::bit(c.lease));
    let bound = bound_leases(s.etcd.records);
    forget_idle_leases(&mut s.etcd.etcd, claimed | bound);
    let map = s.etcd.renumber();
    let lease = |id: LeaseId| remap(&map, id);
    let moved = |m: Move| Move {
        read: m.read.map(|r| r.map(|(id, modr)| (lease(id), modr))),
        to: lease(m.to),
        ..m
    };
    // A request whose lease is gone does nothing when it lands: as good as
    // landed (unless its answer could show a wipe).
    let request = |r: ShardRequest| match r {
        ShardRequest::Take { lease: id, .. } | ShardRequest::Move(Move { to: id, .. })
            if lease(id) == 0 && !history =>
        {
            None
        }
        ShardRequest::Take {
            shard,
            lease: id,
            create,
        } => Some(ShardRequest::Take {
            shard,
            lease: lease(id),
            create,
        }),
        ShardRequest::Move(m) => Some(ShardRequest::Move(moved(m))),
    };
    for node in &mut s.nodes {
        node.claims = remap_set(&map, node.claims);
        node.inflight = node.inflight.and_then(request);
        if let Guardian::Releasing(Some(m)) = &mut node.guardian {
            *m = moved(*m);
        }
        if !history {
            node.saved = (0, 0);
        }
        if let Some(p) = node.proc.as_mut() {
            if let Some(c) = p.claim.as_mut() {
                c.lease = lease(c.lease);
            }
            p.request = p.request.and_then(request);
        }
    }
    if !history {
        if model.config.reduce {
            compress(s, |s, mut f| each_revision(s, &mut f));
        }
    } else if s.budget.wipes == 0 {
        // No wipe to come: a process whose highest revision seen is not
        // above etcd's will never see an answer below it again.
        let revision = s.etcd.etcd.revision;
        for p in s.nodes.iter_mut().filter_map(|n| n.proc.as_mut()) {
            if p.high <= revision {
                p.high = 0;
            }
        }
    }
    if model.config.reduce {
        // The shards are interchangeable too: of every order of them, the
        // least state with its nodes sorted.
        let shards = model.shards().len();
        *s = orders(shards)
            .into_iter()
            .map(|order| {
                let mut r = renumber_shards(s, &order);
                sort(&mut r);
                r
            })
            .min()
            .unwrap_or(*s);
    }
}

/// The state with its nodes sorted, every owner renamed to match.
fn sort(s: &mut ShardState) {
    let rename = sort_nodes(&mut s.nodes);
    for lease in s.etcd.etcd.leases.iter_mut().flatten() {
        lease.owner = rename(lease.owner);
    }
    for max in s.ghost.max_term.iter_mut().flatten() {
        max.1 = rename(max.1);
    }
}

/// Every order of the first `shards` shards: `order[k]` is shard `k`'s new
/// number.
fn orders(shards: usize) -> Vec<[usize; MAX_SHARDS]> {
    let identity: [usize; MAX_SHARDS] = std::array::from_fn(|k| k);
    let mut out = vec![identity];
    for a in 0..shards {
        for b in a + 1..shards {
            let mut swapped = identity;
            swapped.swap(a, b);
            out.push(swapped);
        }
    }
    if shards == 3 {
        out.push([1, 2, 0]);
        out.push([2, 0, 1]);
    }
    out
}

/// The state with shard `k` renumbered `order[k]` everywhere.
fn renumber_shards(s: &ShardState, order: &[usize; MAX_SHARDS]) -> ShardState {
    fn place<T: Copy>(items: [T; MAX_SHARDS], order: &[usize; MAX_SHARDS]) -> [T; MAX_SHARDS] {
        let mut out = items;
        for (k, item) in items.into_iter().enumerate() {
            out[order[k]] = item;
        }
        out
    }
    let moved = |m: Move| Move {
        read: place(m.read, order),
        ..m
    };
    let request = |r: ShardRequest| match r {
        ShardRequest::Take {
            shard,
            lease,
            create,
        } => ShardRequest::Take {
            shard: u8::try_from(order[usize::from(shard)]).unwrap_or(shard),
            lease,
            create,
        },
        ShardRequest::Move(m) => ShardRequest::Move(moved(m)),
    };
    let mut r = *s;
    r.etcd.records = place(s.etcd.records, order);
    r.ghost.max_term = place(s.ghost.max_term, order);
    for node in &mut r.nodes {
        node.told_led = (0..MAX_SHARDS)
            .filter(|&k| node.told_led & shard_bit(k) != 0)
            .fold(0, |set, k| set | shard_bit(order[k]));
        node.inflight = node.inflight.map(request);
        if let Guardian::Releasing(Some(m)) = &mut node.guardian {
            *m = moved(*m);
        }
        if let Some(p) = node.proc.as_mut() {
            p.tenure = place(p.tenure, order);
            p.request = p.request.map(request);
        }
    }
    r
}

/// Calls `f` on every revision the state holds.
fn each_revision(s: &mut ShardState, f: &mut impl FnMut(&mut Rev)) {
    fn request(r: &mut ShardRequest, f: &mut impl FnMut(&mut Rev)) {
        match r {
            ShardRequest::Take { create, .. } => f(create),
            ShardRequest::Move(m) => moved(m, f),
        }
    }
    fn moved(m: &mut Move, f: &mut impl FnMut(&mut Rev)) {
        for (_, modr) in m.read.iter_mut().flatten() {
            f(modr);
        }
        f(&mut m.to_modr);
    }
    let e = &mut s.etcd;
    f(&mut e.etcd.revision);
    for c in e
        .etcd
        .leases
        .iter_mut()
        .flatten()
        .filter_map(|l| l.candidate.as_mut())
    {
        f(&mut c.create);
        f(&mut c.modr);
    }
    for r in e.records.iter_mut().flatten() {
        f(&mut r.create);
        f(&mut r.modr);
    }
    for node in &mut s.nodes {
        f(&mut node.saved.0);
        f(&mut node.saved.1);
        if let Some(r) = node.inflight.as_mut() {
            request(r, f);
        }
        if let Guardian::Releasing(Some(m)) = &mut node.guardian {
            moved(m, f);
        }
        if let Some(p) = node.proc.as_mut() {
            if let Some(c) = p.claim.as_mut() {
                f(&mut c.create);
            }
            p.tenure.iter_mut().flatten().for_each(&mut *f);
            f(&mut p.floor);
            f(&mut p.high);
            if let Some(r) = p.request.as_mut() {
                request(r, f);
            }
        }
    }
    for (term, _) in s.ghost.max_term.iter_mut().flatten() {
        f(term);
    }
}
