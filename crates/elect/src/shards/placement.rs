//! The placement rule: which node should lead each shard, computed from who
//! leads it now and which nodes may lead. Pure and deterministic: the same
//! inputs give the same output on every node, whatever the order the nodes
//! are listed in (no randomness, no clock, no hash map iterated).

use std::cmp::Reverse;
use std::collections::HashMap;

/// The share each node must end up with, for `shards` shards over `nodes`
/// eligible nodes: between ⌊0.95 × N/k⌋ and ⌈1.05 × N/k⌉.
///
/// Every node has the same share: the rule takes no weight (see the
/// [module documentation](super) for why priority does not weight it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The fewest shards a node may lead once settled: ⌊0.95 × N/k⌋.
    pub lower: usize,
    /// The most shards a node may lead once settled: ⌈1.05 × N/k⌉.
    pub upper: usize,
}

impl Bounds {
    /// The bounds for `shards` shards over `nodes` nodes; `None` without
    /// nodes (no share to speak of).
    pub fn new(shards: usize, nodes: usize) -> Option<Bounds> {
        if nodes == 0 {
            return None;
        }
        // In integers (u128: 105 × N cannot overflow), so that every node
        // computes exactly the same bounds: no floating-point rounding.
        let (n, k) = (shards as u128, nodes as u128);
        let lower = (95 * n) / (100 * k);
        let upper = (105 * n).div_ceil(100 * k);
        Some(Bounds {
            lower: usize::try_from(lower).unwrap_or(usize::MAX),
            upper: usize::try_from(upper).unwrap_or(usize::MAX),
        })
    }

    /// Whether a node leading `count` shards is within the bounds.
    pub fn holds(&self, count: usize) -> bool {
        (self.lower..=self.upper).contains(&count)
    }
}

/// A shard taken from one eligible node and given to another, to restore
/// the bounds: a hand-over (its holder gives it up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move<'a> {
    /// The shard's number, 0..N-1.
    pub shard: usize,
    /// The node that leads it now (an eligible node).
    pub from: &'a str,
    /// The node that should lead it.
    pub to: &'a str,
}

/// A shard with no eligible holder (none at all, or a node that may not
/// lead now: gone, unhealthy or drained), and the node that should take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Orphan<'a> {
    /// The shard's number, 0..N-1.
    pub shard: usize,
    /// The node that should lead it: the least loaded when it was placed.
    pub to: &'a str,
}

/// What the rule decided: the target holder of every shard, and how to get
/// there from the holders it was given (the fewest moves, and the orphans'
/// placements).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement<'a> {
    nodes: Vec<&'a str>,
    targets: Vec<Option<usize>>,
    moves: Vec<Move<'a>>,
    orphans: Vec<Orphan<'a>>,
    bounds: Option<Bounds>,
}

impl<'a> Placement<'a> {
    /// The node that should lead `shard`: `None` when no node is eligible,
    /// or when `shard` is not below the number of shards.
    pub fn target(&self, shard: usize) -> Option<&'a str> {
        let node = (*self.targets.get(shard)?)?;
        Some(self.nodes[node])
    }

    /// The target holder of every shard, in shard order: what the holders
    /// will be once every move and orphan placement is done. Feed it back
    /// to [`place`] and nothing moves.
    pub fn targets(&self) -> Vec<Option<&'a str>> {
        self.targets
            .iter()
            .map(|node| node.map(|node| self.nodes[node]))
            .collect()
    }

    /// The shards that change holder between two eligible nodes, in the
    /// order the rule chose them; each shard at most once.
    pub fn moves(&self) -> &[Move<'a>] {
        &self.moves
    }

    /// The shards that had no eligible holder, with where they go, in
    /// shard order.
    pub fn orphans(&self) -> &[Orphan<'a>] {
        &self.orphans
    }

    /// The bounds every node is within once the placement is done; `None`
    /// without eligible nodes.
    pub fn bounds(&self) -> Option<Bounds> {
        self.bounds
    }

    /// How many shards each eligible node leads once the placement is
    /// done, by node id in byte order.
    pub fn loads(&self) -> Vec<(&'a str, usize)> {
        let mut counts = vec![0; self.nodes.len()];
        for node in self.targets.iter().flatten() {
            counts[*node] += 1;
        }
        self.nodes.iter().copied().zip(counts).collect()
    }
}

/// Places `holders.len()` shards (shard `s` led now by `holders[s]`, or by
/// nobody) on the `eligible` nodes, the ones that may lead now (live,
/// healthy, undrained; listed in any order, duplicates ignored).
///
/// The sticky rule: a shard stays where it is unless its node is above the
/// upper bound or another node is below the lower bound; the fewest shards
/// that restore both bounds move; orphans (no holder, or a holder not
/// eligible) go to the least loaded node. Ties are broken by a fixed hash
/// of (shard, node), then by node id, so which shards move is spread over
/// the shard numbers and the same on every node.
///
/// Cost: O(N + k log k) when nothing moves; each orphan and each move adds
/// O(k), and each node that gives shards up sorts its own once.
pub fn place<'a>(holders: &[Option<&str>], eligible: &[&'a str]) -> Placement<'a> {
    let mut nodes = eligible.to_vec();
    nodes.sort_unstable();
    nodes.dedup();
    let bounds = Bounds::new(holders.len(), nodes.len());
    let node_hashes: Vec<u64> = nodes.iter().map(|id| fnv1a(id.as_bytes())).collect();

    // Looked up only, never iterated: its order cannot reach the result.
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut targets: Vec<Option<usize>> = holders
        .iter()
        .map(|holder| holder.and_then(|id| index.get(id).copied()))
        .collect();
    let mut counts = vec![0usize; nodes.len()];
    for node in targets.iter().flatten() {
        counts[*node] += 1;
    }

    let Some(bounds) = bounds else {
        return Placement {
            nodes,
            targets,
            moves: Vec::new(),
            orphans: Vec::new(),
            bounds: None,
        };
    };

    // Orphans first, each to the least loaded node: filling the lowest
    // first leaves the least to move afterwards.
    let mut orphans = Vec::new();
    for (shard, target) in targets.iter_mut().enumerate() {
        if target.is_none() {
            let to = least_loaded(&counts, |node| (tie(shard, node_hashes[node]), nodes[node]));
            counts[to] += 1;
            *target = Some(to);
            orphans.push(Orphan {
                shard,
                to: nodes[to],
            });
        }
    }

    let above = |count: usize| count > bounds.upper;
    let below = |count: usize| count < bounds.lower;
    if !counts.iter().any(|&count| above(count) || below(count)) {
        return Placement {
            nodes,
            targets,
            moves: Vec::new(),
            orphans,
            bounds: Some(bounds),
        };
    }

    // Each node's shards, in the order it gives them up: the lowest hash of
    // (shard, holder) first, so the shards that leave a node are spread
    // over the shard numbers and do not depend on who else is there.
    // Sorted when the node first gives one: most nodes give none.
    let mut giving: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (shard, target) in targets.iter().enumerate() {
        if let Some(node) = target {
            giving[*node].push(shard);
        }
    }
    let mut sorted = vec![false; nodes.len()];
    let node_order = |node: usize| (node_hashes[node], nodes[node]);
    let mut moves = Vec::new();
    let mut hand_over = |from: usize, to: usize, counts: &mut [usize]| {
        let shards = &mut giving[from];
        if !sorted[from] {
            // Reversed, so that `pop` gives the lowest first.
            shards.sort_by_cached_key(|&shard| Reverse((tie(shard, node_hashes[from]), shard)));
            sorted[from] = true;
        }
        // A giver is above the upper bound or above the lower bound, and
        // only ever gives shards it led (a receiver never becomes a giver:
        // it was the least loaded); were its list empty, the loops stop.
        let Some(shard) = shards.pop() else {
            return false;
        };
        counts[from] -= 1;
        counts[to] += 1;
        targets[shard] = Some(to);
        moves.push(Move {
            shard,
            from: nodes[from],
            to: nodes[to],
        });
        true
    };

    // Every node above the upper bound gives its excess, each shard to the
    // least loaded node: while a node is below the lower bound, that is
    // the one, so each of these moves also mends a shortfall.
    for from in 0..nodes.len() {
        while above(counts[from]) {
            let to = least_loaded(&counts, node_order);
            if !hand_over(from, to, &mut counts) {
                break;
            }
        }
    }
    // Then every node still below the lower bound takes from the most
    // loaded. While one node leads fewer than N/k, the most loaded leads
    // more than N/k ≥ lower, so giving one keeps it within the bounds (the
    // check on `from` is that argument, not a case that happens). Moves in
    // all: max(excess, shortfall), the fewest that can restore both bounds.
    loop {
        let to = least_loaded(&counts, node_order);
        let from = most_loaded(&counts, node_order);
        if !below(counts[to]) || counts[from] <= bounds.lower || !hand_over(from, to, &mut counts) {
            break;
        }
    }

    Placement {
        nodes,
        targets,
        moves,
        orphans,
        bounds: Some(bounds),
    }
}

/// The node with the fewest shards; among equals, the smallest `order`
/// (computed for those only: it hashes).
fn least_loaded<K: Ord>(counts: &[usize], order: impl Fn(usize) -> K) -> usize {
    let fewest = counts.iter().min().copied().unwrap_or(0);
    (0..counts.len())
        .filter(|&node| counts[node] == fewest)
        .min_by_key(|&node| order(node))
        .unwrap_or(0)
}

/// The node with the most shards; among equals, the smallest `order`.
fn most_loaded<K: Ord>(counts: &[usize], order: impl Fn(usize) -> K) -> usize {
    let most = counts.iter().max().copied().unwrap_or(0);
    (0..counts.len())
        .filter(|&node| counts[node] == most)
        .min_by_key(|&node| order(node))
        .unwrap_or(0)
}

/// The tie-break of (shard, node): fixed, so the same on every node and in
/// every release (not std's hasher, whose keys are random per process).
pub(super) fn tie(shard: usize, node_hash: u64) -> u64 {
    mix(node_hash ^ mix(shard as u64))
}

/// 64-bit FNV-1a of a node id: fixed and portable.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// SplitMix64's finaliser: spreads every input bit over the output.
pub(super) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
