//! A state's hash, from its bytes packed in one buffer: the checker hashes
//! every state it generates (millions), and one write of a buffer is
//! several times faster than a derived `Hash` writing each small field
//! (and each `Option`'s discriminant) on its own.

use std::hash::{Hash, Hasher};

use crate::etcd::{Candidate, Etcd, Key, Lease, Owner};
use crate::state::{Budget, Claim, Ghost, Guardian, Node, Plan, Proc, Request, State};

/// Bytes packed so far (fixed widths: equal states pack equally, and
/// different ones differently).
struct Packer {
    buf: [u8; 256],
    len: usize,
}

impl Packer {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(slot) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            slot.copy_from_slice(bytes);
        }
        self.len += bytes.len();
    }
}

trait Pack {
    /// The number of bytes `pack` writes.
    const WIDTH: usize;
    fn pack(&self, out: &mut Packer);
}

impl Pack for u8 {
    const WIDTH: usize = 1;
    fn pack(&self, out: &mut Packer) {
        out.put(&[*self]);
    }
}

impl Pack for bool {
    const WIDTH: usize = 1;
    fn pack(&self, out: &mut Packer) {
        out.put(&[u8::from(*self)]);
    }
}

impl Pack for u16 {
    const WIDTH: usize = 2;
    fn pack(&self, out: &mut Packer) {
        out.put(&self.to_le_bytes());
    }
}

impl<T: Pack> Pack for Option<T> {
    const WIDTH: usize = 1 + T::WIDTH;
    fn pack(&self, out: &mut Packer) {
        match self {
            Some(value) => {
                out.put(&[1]);
                value.pack(out);
            }
            None => out.put(&[0; 16][..Self::WIDTH.min(16)]),
        }
    }
}

impl Pack for Owner {
    const WIDTH: usize = 2;
    fn pack(&self, out: &mut Packer) {
        match *self {
            Owner::Process { node, inc } => out.put(&[node.wrapping_add(1), inc]),
            Owner::OldRule => out.put(&[0, 0]),
        }
    }
}

impl Pack for Key {
    const WIDTH: usize = 3;
    fn pack(&self, out: &mut Packer) {
        out.put(&[self.lease, self.create, self.modr]);
    }
}

impl Pack for Candidate {
    const WIDTH: usize = 3;
    fn pack(&self, out: &mut Packer) {
        out.put(&[self.create, self.modr, u8::from(self.eligible)]);
    }
}

impl Pack for Lease {
    const WIDTH: usize = Owner::WIDTH + 1 + Option::<Candidate>::WIDTH;
    fn pack(&self, out: &mut Packer) {
        self.owner.pack(out);
        self.expires_in.pack(out);
        self.candidate.pack(out);
    }
}

impl Pack for Etcd {
    const WIDTH: usize = 0;
    fn pack(&self, out: &mut Packer) {
        out.put(&[self.revision, self.down_for]);
        for lease in &self.leases {
            lease.pack(out);
        }
        self.record.pack(out);
        self.anchor.pack(out);
        self.transfer.pack(out);
        self.old_rule.pack(out);
    }
}

impl Pack for Request {
    const WIDTH: usize = 6;
    fn pack(&self, out: &mut Packer) {
        let o = |r: Option<u8>| r.map_or(0, |r| r.wrapping_add(1));
        let bytes = match *self {
            Request::TakeRecord {
                lease,
                create,
                anchor,
                transfer,
            } => [1, lease, create, o(anchor), o(transfer), 0],
            Request::LayAnchor => [2, 0, 0, 0, 0, 0],
            Request::Decline { modr } => [3, modr, 0, 0, 0, 0],
            Request::Revoke { lease } => [4, lease, 0, 0, 0, 0],
            Request::HandOver {
                from,
                record,
                to,
                to_modr,
                anchor,
            } => [5, from, record, to, to_modr, o(anchor)],
            Request::PutTransfer {
                from,
                to,
                to_create,
            } => [6, from, to, to_create, 0, 0],
        };
        out.put(&bytes);
    }
}

impl Pack for Claim {
    const WIDTH: usize = 3;
    fn pack(&self, out: &mut Packer) {
        out.put(&[self.lease, self.create, self.deadline_in]);
    }
}

impl Pack for Proc {
    const WIDTH: usize = 0;
    fn pack(&self, out: &mut Packer) {
        self.eligible.pack(out);
        self.claim.pack(out);
        self.led.pack(out);
        self.tenure.pack(out);
        self.last_term.pack(out);
        out.put(&[self.floor, self.high, u8::from(self.regressed)]);
        self.seen.pack(out);
        self.request.pack(out);
        self.transfer.pack(out);
    }
}

impl Pack for Plan {
    const WIDTH: usize = Key::WIDTH + 2 + Option::<u8>::WIDTH;
    fn pack(&self, out: &mut Packer) {
        self.record.pack(out);
        out.put(&[self.to, self.to_modr]);
        self.anchor.pack(out);
    }
}

impl Pack for Node {
    const WIDTH: usize = 0;
    fn pack(&self, out: &mut Packer) {
        self.inc.pack(out);
        match &self.proc {
            Some(p) => {
                out.put(&[1]);
                p.pack(out);
            }
            None => out.put(&[0]),
        }
        match self.guardian {
            Guardian::Watching => out.put(&[1]),
            Guardian::Releasing(plan) => {
                out.put(&[2]);
                plan.pack(out);
            }
            Guardian::Gone => out.put(&[3]),
        }
        self.claims.pack(out);
        self.inflight.pack(out);
        out.put(&[self.saved_floor, self.saved_high, u8::from(self.told_led)]);
    }
}

impl Pack for Budget {
    const WIDTH: usize = 8;
    fn pack(&self, out: &mut Packer) {
        out.put(&[
            self.crashes,
            self.restarts,
            self.verdicts,
            self.transfers,
            self.hand_deletes,
            self.wipes,
            self.old_rule_joins,
            self.campaigns,
        ]);
    }
}

impl Pack for Ghost {
    const WIDTH: usize = 0;
    fn pack(&self, out: &mut Packer) {
        match self.max_term {
            Some((term, owner)) => {
                out.put(&[1, term]);
                owner.pack(out);
            }
            None => out.put(&[0; 4]),
        }
        out.put(&[
            u8::from(self.term_went_back),
            u8::from(self.stray_write),
            u8::from(self.stray_entry),
        ]);
        self.events.pack(out);
    }
}

impl Hash for State {
    fn hash<H: Hasher>(&self, hasher: &mut H) {
        let mut out = Packer {
            buf: [0; 256],
            len: 0,
        };
        self.etcd.pack(&mut out);
        for node in &self.nodes {
            node.pack(&mut out);
        }
        self.old_rule_leads.pack(&mut out);
        self.budget.pack(&mut out);
        self.ghost.pack(&mut out);
        hasher.write(out.buf.get(..out.len).unwrap_or(&out.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::MAX_LEASES;
    use crate::state::NODES;

    #[test]
    fn the_fullest_state_fits_the_buffer_and_packs_apart() {
        let key = Key {
            lease: 1,
            create: 2,
            modr: 3,
        };
        let request = Request::HandOver {
            from: 1,
            record: 2,
            to: 3,
            to_modr: 4,
            anchor: Some(5),
        };
        let proc = Proc {
            claim: Some(Claim {
                lease: 1,
                create: 2,
                deadline_in: 1,
            }),
            tenure: Some(3),
            last_term: Some(3),
            request: Some(request),
            transfer: Some(4),
            ..Proc::new(3, 4)
        };
        let lease = Lease {
            owner: Owner::Process { node: 2, inc: 1 },
            expires_in: 2,
            candidate: Some(Candidate {
                create: 2,
                modr: 3,
                eligible: true,
            }),
        };
        let node = Node {
            proc: Some(proc),
            guardian: Guardian::Releasing(Some(Plan {
                record: key,
                to: 2,
                to_modr: 3,
                anchor: Some(4),
            })),
            inflight: Some(request),
            ..Node::new()
        };
        let state = State {
            etcd: Etcd {
                leases: [Some(lease); MAX_LEASES],
                record: Some(key),
                anchor: Some(1),
                transfer: Some(key),
                old_rule: Some(key),
                ..Etcd::new()
            },
            nodes: [node; NODES],
            old_rule_leads: true,
            budget: Budget {
                crashes: 1,
                restarts: 1,
                verdicts: 1,
                transfers: 1,
                hand_deletes: 1,
                wipes: 1,
                old_rule_joins: 1,
                campaigns: 1,
            },
            ghost: Ghost {
                max_term: Some((3, Owner::OldRule)),
                term_went_back: true,
                stray_write: true,
                stray_entry: true,
                events: u16::MAX,
            },
        };
        let mut out = Packer {
            buf: [0; 256],
            len: 0,
        };
        state.etcd.pack(&mut out);
        for node in &state.nodes {
            node.pack(&mut out);
        }
        assert!(out.len <= out.buf.len(), "{} bytes", out.len);
        // One field apart, a different packing.
        let fingerprint = |s: &State| {
            let mut h = std::hash::DefaultHasher::new();
            s.hash(&mut h);
            h.finish()
        };
        let mut other = state;
        other.nodes[1].told_led = true;
        assert_ne!(fingerprint(&state), fingerprint(&other));
    }
}
