//! What makes equal situations equal states: after every step, leases are
//! renumbered, revisions too (where only their order matters), the nodes
//! put in a canonical order, and what can no longer matter forgotten.

use crate::config::Config;
use crate::etcd::{Etcd, Key, LeaseId, Leases, Rev, bit, remap, remap_set};
use crate::state::{Guardian, Request, State};

/// After every step: leases renumbered, and what can no longer matter
/// forgotten, so that equal situations are equal states.
pub(crate) fn canonical(config: &Config, s: &mut State) {
    if !config.tracks_predecessors() {
        // A lease without keys that no live claim uses can change
        // nothing any more (nobody puts a key with it again; its
        // expiry or revoke deletes nothing): forgotten. Only a wait for
        // predecessors would still look it up.
        let claimed: u16 = s
            .nodes
            .iter()
            .filter_map(|n| n.proc.and_then(|p| p.claim))
            .fold(0, |set, c| set | bit(c.lease));
        let e = &mut s.etcd;
        let bound = bound_leases([e.record, e.transfer, e.old_rule]);
        forget_idle_leases(e, claimed | bound);
    }
    let map = s.etcd.renumber();
    let lease = |id: LeaseId| remap(&map, id);
    let request = |r: Request| match r {
        Request::TakeRecord {
            lease: id,
            create,
            anchor,
            transfer,
        } => Request::TakeRecord {
            lease: lease(id),
            create,
            anchor,
            transfer,
        },
        Request::Revoke { lease: id } => Request::Revoke { lease: lease(id) },
        Request::HandOver {
            from,
            record,
            to,
            to_modr,
            anchor,
        } => Request::HandOver {
            from: lease(from),
            record,
            to: lease(to),
            to_modr,
            anchor,
        },
        Request::PutTransfer {
            from,
            to,
            to_create,
        } => Request::PutTransfer {
            from: lease(from),
            to: lease(to),
            to_create,
        },
        other => other,
    };
    let transfer = s.etcd.transfer;
    // A request whose lease is gone does nothing when it lands: as
    // good as landed (unless its answer could show a wipe).
    let history = config.tracks_history();
    let live = |r: Request| match r {
        Request::Revoke { lease: 0 }
        | Request::TakeRecord { lease: 0, .. }
        | Request::HandOver { from: 0, .. }
        | Request::PutTransfer { from: 0, .. }
            if !history =>
        {
            None
        }
        other => Some(other),
    };
    for node in &mut s.nodes {
        node.claims = remap_set(&map, node.claims);
        node.inflight = node.inflight.map(request).and_then(live);
        if let Guardian::Releasing(Some(plan)) = &mut node.guardian {
            plan.record.lease = lease(plan.record.lease);
            plan.to = lease(plan.to);
        }
        if !config.state_file || !config.tracks_floor() {
            node.saved_floor = 0;
            node.saved_high = 0;
        }
        if let Some(p) = node.proc.as_mut() {
            if let Some(c) = p.claim.as_mut() {
                c.lease = lease(c.lease);
            }
            p.seen = if config.tracks_predecessors() {
                remap_set(&map, p.seen)
            } else {
                0
            };
            if !config.tracks_floor() {
                p.floor = 0;
                p.last_term = None;
            }
            p.request = p.request.map(request).and_then(live);
            if !config.tracks_predecessors() {
                // Only a record deleted by hand leaves a claim's key
                // without its record: then it matters that we led.
                p.led = false;
            }
            // A transfer no longer there cannot be withdrawn.
            if p.transfer.is_some() && transfer.map(|t| t.modr) != p.transfer {
                p.transfer = None;
            }
        }
    }
    s.old_rule_leads &= s.etcd.old_rule.is_some();
    if !config.tracks_history() {
        if config.reduce {
            compress_revisions(s);
        }
    } else if s.budget.wipes == 0 {
        // No wipe to come: a process whose highest revision seen is not
        // above etcd's will never see an answer below it again.
        let revision = s.etcd.revision;
        for node in &mut s.nodes {
            if let Some(p) = node.proc.as_mut()
                && p.high <= revision
            {
                p.high = 0;
            }
        }
    }
    if config.reduce {
        *s = crate::symmetry::representative(s);
    }
}

/// Calls `f` on every revision the state holds (etcd's, and every one a
/// process, guardian or the ghost remembers).
fn each_revision(s: &mut State, f: &mut impl FnMut(&mut Rev)) {
    fn request(r: &mut Request, f: &mut impl FnMut(&mut Rev)) {
        match r {
            Request::TakeRecord {
                create,
                anchor,
                transfer,
                ..
            } => {
                f(create);
                anchor.iter_mut().for_each(&mut *f);
                transfer.iter_mut().for_each(&mut *f);
            }
            Request::LayAnchor | Request::Revoke { .. } => {}
            Request::Decline { modr } => f(modr),
            Request::HandOver {
                record,
                to_modr,
                anchor,
                ..
            } => {
                f(record);
                f(to_modr);
                anchor.iter_mut().for_each(&mut *f);
            }
            Request::PutTransfer { to_create, .. } => f(to_create),
        }
    }
    fn key(k: &mut Key, f: &mut impl FnMut(&mut Rev)) {
        f(&mut k.create);
        f(&mut k.modr);
    }
    let e = &mut s.etcd;
    f(&mut e.revision);
    for c in e
        .leases
        .iter_mut()
        .flatten()
        .filter_map(|l| l.candidate.as_mut())
    {
        f(&mut c.create);
        f(&mut c.modr);
    }
    for k in [&mut e.record, &mut e.transfer, &mut e.old_rule]
        .into_iter()
        .flatten()
    {
        key(k, f);
    }
    e.anchor.iter_mut().for_each(&mut *f);
    for node in &mut s.nodes {
        f(&mut node.saved_floor);
        f(&mut node.saved_high);
        if let Some(r) = node.inflight.as_mut() {
            request(r, f);
        }
        if let Guardian::Releasing(Some(plan)) = &mut node.guardian {
            key(&mut plan.record, f);
            f(&mut plan.to_modr);
            plan.anchor.iter_mut().for_each(&mut *f);
        }
        if let Some(p) = node.proc.as_mut() {
            if let Some(c) = p.claim.as_mut() {
                f(&mut c.create);
            }
            p.tenure.iter_mut().for_each(&mut *f);
            p.last_term.iter_mut().for_each(&mut *f);
            f(&mut p.floor);
            f(&mut p.high);
            if let Some(r) = p.request.as_mut() {
                request(r, f);
            }
            p.transfer.iter_mut().for_each(&mut *f);
        }
    }
    if let Some((term, _)) = s.ghost.max_term.as_mut() {
        f(term);
    }
}

/// The leases the keys in `keys` are bound to.
pub(crate) fn bound_leases(keys: impl IntoIterator<Item = Option<Key>>) -> Leases {
    keys.into_iter()
        .flatten()
        .fold(0, |set, k| set | bit(k.lease))
}

/// Forgets every lease without a candidate key that is not `in_use` (bound
/// to a key, or a live claim's): it can change nothing any more (nobody
/// puts a key with it again; its expiry or revoke deletes nothing).
pub(crate) fn forget_idle_leases(e: &mut Etcd, in_use: Leases) {
    for (i, slot) in e.leases.iter_mut().enumerate() {
        let id = u8::try_from(i + 1).unwrap_or(0);
        if slot.is_some_and(|l| l.candidate.is_none()) && in_use & bit(id) == 0 {
            *slot = None;
        }
    }
}

/// Renumbers the revisions the state holds `1..` in order, `0` staying
/// `0`: only their order and equality matter (compares, ages, terms),
/// and etcd's next write is above them all either way.
pub(crate) fn compress_revisions(s: &mut State) {
    compress(s, |s, mut f| each_revision(s, &mut f));
}

/// As [`compress_revisions`], for any state whose revisions `each` visits.
pub(crate) fn compress<S>(s: &mut S, each: impl Fn(&mut S, &mut dyn FnMut(&mut Rev))) {
    let mut used = [0u64; 4];
    each(s, &mut |r: &mut Rev| {
        used[usize::from(*r >> 6)] |= 1 << (*r & 63);
    });
    // 0 stays 0: it is no revision.
    used[0] &= !1;
    let mut below = [0u8; 4];
    for i in 1..4 {
        below[i] = below[i - 1] + used[i - 1].count_ones() as u8;
    }
    each(s, &mut |r: &mut Rev| {
        if *r != 0 {
            let word = usize::from(*r >> 6);
            let mask = (1u64 << (*r & 63)) - 1;
            *r = below[word] + (used[word] & mask).count_ones() as u8 + 1;
        }
    });
}
