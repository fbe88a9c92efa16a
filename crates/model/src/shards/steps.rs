//! The shards protocol's steps, as one party takes them: a node reading
//! the shards (when it leads which), each request's txn and its compares,
//! a guardian's release, and the checks the properties read as they
//! happen.

use crate::etcd::{Etcd, Key, LeaseId, Leases, MAX_LEASES, Rev, bit};
use crate::protocol::{Writer, holders_write, regressed, term_grows};
use crate::shards::state::{
    MAX_SHARDS, Move, ShardConfig, ShardEtcd, ShardProc, ShardProtocol, ShardRequest, ShardState,
    Shards, shard_bit, shard_event,
};
use crate::state::Guardian;

/// The shards protocol as a model, for one [`ShardConfig`].
#[derive(Clone, Copy, Debug)]
pub struct ShardElection {
    /// What is checked.
    pub config: ShardConfig,
}

impl ShardElection {
    /// The model of `config`.
    pub fn new(config: ShardConfig) -> ShardElection {
        ShardElection { config }
    }

    pub(crate) fn protocol(&self) -> ShardProtocol {
        self.config.protocol
    }

    /// The shards checked.
    pub(crate) fn shards(&self) -> std::ops::Range<usize> {
        0..usize::from(self.config.shards).min(MAX_SHARDS)
    }

    pub(crate) fn deadline(&self) -> u8 {
        self.config.ttl.saturating_sub(self.config.margin)
    }

    /// Whether the model keeps the floor and the highest revision seen (only
    /// a wipe makes them matter).
    pub(crate) fn tracks_history(&self) -> bool {
        self.config.wipes > 0
    }

    /// Notes a linearizable answer at `revision`: below the highest seen,
    /// etcd lost history; the one floor rises past everything seen and
    /// every shard's belief ends.
    pub(crate) fn answered(&self, p: &mut ShardProc, revision: Rev) {
        if self.tracks_history() && regressed(&mut p.high, &mut p.floor, revision) {
            p.tenure = [None; MAX_SHARDS];
        }
    }

    /// Node `n` reads every shard and decides which it leads: each shard
    /// whose record is bound to its claim's lease, with a term above its
    /// floor, from the instant it sees it until its deadline; no other.
    /// Its key gone (its lease with it), the claim is over.
    pub(crate) fn observe(&self, s: &mut ShardState, n: usize) {
        let e = s.etcd;
        let me = s.owner(n);
        let Some(p) = s.nodes[n].proc.as_mut() else {
            return;
        };
        self.answered(p, e.etcd.revision);
        if let Some(c) = p.claim
            && e.etcd
                .candidate(c.lease)
                .is_none_or(|k| k.create != c.create)
        {
            p.claim = None;
        }
        let mut begun = [None; MAX_SHARDS];
        for k in self.shards() {
            let ours = e.records[k]
                .filter(|r| p.claim.is_some_and(|c| c.lease == r.lease))
                .filter(|r| r.modr > p.floor);
            match ours {
                Some(r) if p.tenure[k] != Some(r.modr) => {
                    p.tenure[k] = Some(r.modr);
                    begun[k] = Some(r);
                }
                Some(_) => {}
                None => p.tenure[k] = None,
            }
        }
        for (k, record) in begun.iter().enumerate() {
            let Some(record) = record else {
                continue;
            };
            let ghost = &mut s.ghost;
            ghost.term_went_back |= !term_grows(&mut ghost.max_term[k], me, record.modr);
            if record.create != record.modr {
                ghost.events |= shard_event::LED_ON_A_MOVE;
            }
            if ghost.events & shard_event::WIPED != 0 {
                ghost.events |= shard_event::LED_AFTER_WIPE;
            }
            if self.protocol() == ShardProtocol::GuardianMovesAnyRecord {
                s.nodes[n].told_led |= shard_bit(k);
            }
        }
    }

    /// Runs `request` against etcd as `writer`'s txn; whether it wrote.
    pub(crate) fn execute(
        &self,
        s: &mut ShardState,
        request: ShardRequest,
        writer: Writer,
    ) -> bool {
        let before = s.etcd;
        let e = &mut s.etcd;
        let written = match request {
            ShardRequest::Take {
                shard,
                lease,
                create,
            } => {
                let k = usize::from(shard);
                let guards = e.records.get(k).is_some_and(Option::is_none)
                    && e.etcd.candidate(lease).is_some_and(|c| c.create == create);
                if guards {
                    let revision = e.etcd.write();
                    e.records[k] = Some(Key {
                        lease,
                        create: revision,
                        modr: revision,
                    });
                }
                guards
            }
            ShardRequest::Move(m) => {
                let moved = move_records(e, self.protocol(), &m);
                if moved && m.batch().count_ones() > 1 {
                    s.ghost.events |= shard_event::MOVED_TWO;
                }
                moved
            }
        };
        for k in self.shards() {
            let was = (&before.etcd, before.records[k]);
            let is = (&s.etcd.etcd, s.etcd.records[k]);
            s.ghost.stray_write |= !holders_write(was, is, writer);
        }
        written
    }

    /// A live process's request lands, and the process reads the answer.
    pub(crate) fn send(&self, s: &mut ShardState, n: usize) {
        let me = s.owner(n);
        let Some(request) = s.nodes[n].proc.as_mut().and_then(|p| p.request.take()) else {
            return;
        };
        let written = self.execute(s, request, Writer::Process(me));
        let revision = s.etcd.etcd.revision;
        if let Some(p) = s.nodes[n].proc.as_mut() {
            self.answered(p, revision);
        }
        if written && matches!(request, ShardRequest::Take { .. }) {
            // It applies its own write and reads the shards again.
            self.observe(s, n);
        }
    }

    /// The guardian of node `n` revokes every lease its electd told it of,
    /// newest first, and exits.
    pub(crate) fn guardian_release(&self, s: &mut ShardState, n: usize) {
        let writer = Writer::Guardian(s.owner(n));
        let claims = s.nodes[n].claims;
        for id in (1..=MAX_LEASES)
            .rev()
            .filter_map(|id| u8::try_from(id).ok())
        {
            if claims & bit(id) != 0 {
                let before = s.etcd;
                s.etcd.end_lease(id);
                for k in self.shards() {
                    let was = (&before.etcd, before.records[k]);
                    let is = (&s.etcd.etcd, s.etcd.records[k]);
                    s.ghost.stray_write |= !holders_write(was, is, writer);
                }
            }
        }
        let node = &mut s.nodes[n];
        node.claims = 0;
        node.guardian = Guardian::Gone;
    }

    /// The candidates a record may move to: every live candidate key's
    /// lease but those in `except` (the placement may name any).
    pub(crate) fn successors(etcd: &Etcd, except: Leases) -> Vec<LeaseId> {
        etcd.live()
            .filter(|(id, lease)| lease.candidate.is_some() && bit(*id) & except == 0)
            .map(|(id, _)| id)
            .collect()
    }

    /// The batches of `shards` a move may take in one txn: each shard
    /// alone, and each two together.
    pub(crate) fn batches(&self, shards: Shards) -> Vec<Shards> {
        let mut out = Vec::new();
        for a in self.shards().filter(|&a| shards & shard_bit(a) != 0) {
            out.push(shard_bit(a));
            for b in self
                .shards()
                .filter(|&b| b > a && shards & shard_bit(b) != 0)
            {
                out.push(shard_bit(a) | shard_bit(b));
            }
        }
        out
    }

    /// A move of `batch` to `to`, as read from `e` now.
    pub(crate) fn read_move(&self, e: &ShardEtcd, batch: Shards, to: LeaseId) -> Option<Move> {
        let mut read = [None; MAX_SHARDS];
        for k in self.shards().filter(|&k| batch & shard_bit(k) != 0) {
            let record = e.records[k]?;
            read[k] = Some((record.lease, record.modr));
        }
        Some(Move {
            read,
            to,
            to_modr: e.etcd.candidate(to)?.modr,
        })
    }
}

/// The move txn: if every record of the batch is as read (its lease and
/// `mod_revision`; not compared by [`ShardProtocol::MovesWithoutVersion`])
/// and the successor's candidate key is unchanged since read, every record
/// of the batch is put bound to the successor's lease (each keeps its
/// `create_revision`: the same key), in one write.
pub(crate) fn move_records(e: &mut ShardEtcd, protocol: ShardProtocol, m: &Move) -> bool {
    let compares_version = protocol != ShardProtocol::MovesWithoutVersion;
    let as_read = m
        .read
        .iter()
        .zip(&e.records)
        .all(|(read, record)| match read {
            Some((lease, modr)) => {
                !compares_version || record.is_some_and(|r| r.lease == *lease && r.modr == *modr)
            }
            None => true,
        });
    let successor = e.etcd.candidate(m.to).is_some_and(|k| k.modr == m.to_modr);
    if !(as_read && successor) {
        return false;
    }
    let revision = e.etcd.write();
    for (read, record) in m.read.iter().zip(e.records.iter_mut()) {
        if read.is_some() {
            *record = Some(Key {
                lease: m.to,
                create: record.map_or(revision, |r| r.create),
                modr: revision,
            });
        }
    }
    true
}
