//! The one shared view of an election that everything else reads.
//!
//! The election loop publishes a [`Status`] through a `tokio::sync::watch`
//! channel; HTTP handlers, metrics, the `--exec` supervisor and library users
//! read it without ever blocking the loop. Whether this node leads is computed
//! when asked, from the deadline: a process that was paused past its deadline
//! answers correctly on its very first request after waking.

use std::fmt;
use std::path::PathBuf;

use tokio::time::Instant;

use crate::api::Api;
use crate::value::Candidacy;

/// The leader of an election, as etcd names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leader {
    /// The leader's id; `None` when the stored value is foreign.
    pub id: Option<String>,
    /// How to reach the leader; `None` when the stored value is foreign.
    pub advertise: Option<String>,
    /// The leader's term (fencing token): etcd's `createdIndex` of the key
    /// (v2) or the revision that created the leader record (v3).
    pub term: u64,
    /// Whether etcd shows the leader key bound to the claim it names (v3:
    /// the record is bound to the lease its value names). A value anyone
    /// could have written by hand is shown, but not trusted: its leader is
    /// unknown. v2 keys carry no lease: a value in electd's format with a
    /// TTL cannot be told from a real one there.
    pub verified: bool,
}

impl Leader {
    pub(crate) fn from_stored(raw: &[u8], term: u64) -> Leader {
        match crate::value::decode(raw) {
            Some(named) => Leader {
                id: Some(named.id),
                advertise: Some(named.advertise),
                term,
                verified: true,
            },
            None => Leader {
                id: None,
                advertise: None,
                term,
                verified: false,
            },
        }
    }

    /// Whether the leader is not known for sure: the leader key holds a
    /// value electd did not write, or one that is not bound to the claim it names.
    pub fn is_foreign(&self) -> bool {
        self.id.is_none() || !self.verified
    }
}

/// A candidate of the election, in succession order ([`crate::Election::candidates`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Candidate {
    /// Its id; `None` when the stored value is foreign.
    pub id: Option<String>,
    /// How to reach it; `None` when the stored value is foreign.
    pub advertise: Option<String>,
    /// For the leader, its term; for the others, the revision that queued
    /// them (their place in line among equals).
    pub term: u64,
    /// As [`Leader::verified`].
    pub verified: bool,
    /// What it offers; `None` where etcd does not say (v2 has one key).
    pub candidacy: Option<Candidacy>,
    /// Whether it leads.
    pub leads: bool,
}

impl Candidate {
    pub(crate) fn leader(leader: &Leader, candidacy: Option<Candidacy>) -> Candidate {
        Candidate {
            id: leader.id.clone(),
            advertise: leader.advertise.clone(),
            term: leader.term,
            verified: leader.verified,
            candidacy,
            leads: true,
        }
    }
}

/// What this node is, right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// It holds the election and its deadline has not passed.
    Leader,
    /// It campaigns and knows a leader that is not itself.
    Follower,
    /// It campaigns and knows no leader.
    Candidate,
    /// It never campaigns.
    Observer,
}

/// This node's own leadership, while it lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tenure {
    /// The term (fencing token).
    pub term: u64,
    /// The instant after which this node must not call itself leader.
    pub deadline: Instant,
}

/// Something in etcd, other than a failing request, that keeps the election
/// from electing or that it waits for. Each says what happened and what an
/// operator can do ([`fmt::Display`]); [`Obstacle::is_unhealthy`] ones are
/// reported on `/healthz`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Obstacle {
    /// A key that electd did not write holds the leader's place.
    ForeignKey {
        /// The exact key: `/electd/<election>/…` (v3) or `/<election>` (v2).
        key: String,
        /// What is wrong with it.
        kind: Foreign,
        /// Whether, and when, it goes away on its own.
        expiry: Expiry,
        /// The etcd API, which says how to remove it.
        api: Api,
    },
    /// No leader until the lease of a leader that no longer has its key
    /// expires: someone else deleted the key, and the holder (an etcd
    /// election client, or a node that has not noticed yet) may still act
    /// as leader until its lease is gone.
    Predecessor {
        /// The key it held.
        key: String,
        /// Its lease.
        lease: i64,
        /// When the lease expires at the latest, as etcd last said.
        expires: Option<Instant>,
    },
    /// etcd's history went backwards: a revision (v2: index) lower than one
    /// already seen. electd does not lead until the revision passes the old
    /// one again, so fencing tokens never repeat.
    Regressed {
        /// The highest revision seen before.
        from: u64,
        /// The revision etcd answered with.
        to: u64,
        /// The state file that keeps the floor across restarts, if any.
        state_file: Option<PathBuf>,
        /// The etcd API.
        api: Api,
        /// The program to restart to accept the new history ([`crate::Names::program`]).
        program: String,
    },
}

/// How a foreign key differs from electd's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Foreign {
    /// Its value is not in electd's format.
    Value,
    /// It is an etcd election client's key (`etcdctl elect`, Go's
    /// `concurrency.Election`): bound to its own lease, with a value not in
    /// electd's format.
    ElectionClient,
    /// It names a candidate but is not bound to that candidate's lease, or
    /// has no lease or TTL at all, as electd's keys always do.
    Unbound,
    /// It names this node, which does not hold it.
    NamesThisNode,
}

/// When a foreign key goes away on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expiry {
    /// Never: no lease (v3) or no TTL (v2).
    Never,
    /// When this lease expires, which its holder can put off for ever.
    Lease(i64),
    /// After this many seconds, unless someone refreshes it (v2).
    Ttl(u64),
}

impl Obstacle {
    /// Whether it keeps every node from leading until someone acts, and so
    /// belongs on `/healthz` (503). Waiting for a predecessor's lease is
    /// part of a safe succession, not a fault.
    pub fn is_unhealthy(&self) -> bool {
        !matches!(self, Obstacle::Predecessor { .. })
    }

    /// What makes it the same obstacle for logging (said once, not again
    /// for each detail that changes): its kind and the key involved.
    pub(crate) fn identity(&self) -> (&'static str, Option<&str>) {
        match self {
            Obstacle::ForeignKey { key, .. } | Obstacle::Predecessor { key, .. } => {
                (self.summary(), Some(key))
            }
            Obstacle::Regressed { .. } => (self.summary(), None),
        }
    }

    /// Every [`Obstacle::kind`], so that a metric can export each one
    /// (0 while absent) rather than only those seen.
    pub const KINDS: [&'static str; 3] = ["foreign_key", "waiting", "regressed"];

    /// A stable name of its kind, for programs and metric labels (the
    /// `kind` of `/v1/status`'s obstacle, `electd_obstacle{kind}`): one of
    /// [`Obstacle::KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            Obstacle::ForeignKey { .. } => "foreign_key",
            Obstacle::Predecessor { .. } => "waiting",
            Obstacle::Regressed { .. } => "regressed",
        }
    }

    /// A short, stable phrase, for logs.
    pub fn summary(&self) -> &'static str {
        match self {
            Obstacle::ForeignKey { .. } => "a key electd did not write blocks the election",
            Obstacle::Predecessor { .. } => "waiting for a deleted leader's lease to expire",
            Obstacle::Regressed { .. } => "etcd's revision went backwards",
        }
    }
}

impl fmt::Display for Obstacle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Obstacle::ForeignKey {
                key,
                kind,
                expiry,
                api,
            } => {
                let what = match kind {
                    Foreign::Value => "holds a value electd did not write",
                    Foreign::ElectionClient => {
                        "belongs to an etcd election client (etcdctl elect, Go's \
                         concurrency.Election), which leads this election: electd never \
                         leads beside it"
                    }
                    Foreign::Unbound => {
                        "is not bound to the lease of the candidate it names, as electd's \
                         keys are: anyone could have written it"
                    }
                    Foreign::NamesThisNode => "names this node, which does not hold it",
                };
                write!(f, "the key {key} {what}; ")?;
                match expiry {
                    Expiry::Never => write!(
                        f,
                        "it has no {}, so it never expires",
                        if *api == Api::V2 { "TTL" } else { "lease" }
                    )?,
                    Expiry::Lease(lease) => write!(
                        f,
                        "it goes when its lease {lease:x} expires, if its holder stops \
                         renewing it (etcdctl lease timetolive {lease:x})"
                    )?,
                    Expiry::Ttl(ttl) => {
                        write!(f, "it expires within {ttl} s unless someone refreshes it")?
                    }
                }
                match api {
                    Api::V3 => write!(f, "; to remove it: etcdctl del {key}"),
                    Api::V2 => write!(
                        f,
                        "; to remove it: ETCDCTL_API=2 etcdctl rm {key} (or curl -X DELETE \
                         <etcd>/v2/keys{key})"
                    ),
                }
            }
            Obstacle::Predecessor {
                key,
                lease,
                expires,
            } => {
                write!(
                    f,
                    "no leader until the lease {lease:x} of the deleted key {key} expires"
                )?;
                if let Some(at) = expires {
                    let left = at.saturating_duration_since(Instant::now());
                    write!(f, " (in at most {:.1} s)", left.as_secs_f64())?;
                }
                write!(
                    f,
                    ": someone else deleted that key, and its holder may act as leader until \
                     its lease is gone"
                )
            }
            Obstacle::Regressed {
                from,
                to,
                state_file,
                api,
                program,
            } => {
                let what = if *api == Api::V2 { "index" } else { "revision" };
                write!(
                    f,
                    "etcd's {what} went backwards (from {from} to {to}): was it restored from \
                     a snapshot or its data wiped? {program} will not lead until the {what} \
                     passes {from} again, so that fencing tokens never repeat or go backwards. "
                )?;
                match api {
                    Api::V3 => write!(
                        f,
                        "Restore with `--bump-revision` (larger than the revisions lost) and \
                         `--mark-compacted` (etcdutl snapshot restore, etcd 3.5.10+; etcdctl \
                         snapshot restore, etcd 3.4.27+), or write to etcd until its revision \
                         passes {from}; "
                    )?,
                    Api::V2 => write!(
                        f,
                        "No restore keeps v2 indexes growing (a v3 snapshot holds no v2 keys); "
                    )?,
                }
                match state_file {
                    Some(path) => write!(
                        f,
                        "or, to accept the new history and its smaller fencing tokens, remove \
                         {} and restart {program}",
                        path.display()
                    ),
                    None => write!(
                        f,
                        "or, to accept the new history and its smaller fencing tokens, restart \
                         {program}"
                    ),
                }
            }
        }
    }
}

/// Something outside the process that keeps the election from working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// A short phrase, e.g. `etcd unreachable`.
    pub summary: &'static str,
    /// The full message, with the endpoint.
    pub detail: String,
}

/// A snapshot of an election as this node sees it.
#[derive(Clone, Debug)]
pub struct Status {
    /// This node's id.
    pub id: String,
    /// This node's advertise URL.
    pub advertise: String,
    /// The election name.
    pub election: String,
    /// The etcd API in use.
    pub api: Api,
    /// Whether this node only observes.
    pub observer: bool,
    /// This node's leadership, when confirmed. Ask [`Status::tenure_at`]
    /// (or [`Status::role`], [`Status::is_leader`]) rather than read this
    /// field: it can be stale by up to the deadline.
    pub tenure: Option<Tenure>,
    /// The leader key as last read from etcd (`None`: no leader).
    pub leader: Option<Leader>,
    /// Whether [`Status::leader`] is this node's own key.
    pub leader_is_self: bool,
    /// Whether etcd has been read at least once.
    pub synced: bool,
    /// What currently keeps etcd requests from working, if anything.
    pub problem: Option<Problem>,
    /// What in etcd keeps the election from electing, or what it waits for.
    pub obstacle: Option<Obstacle>,
    /// The lowest term this node may still call current: the highest term
    /// it has seen (or, after etcd's history went backwards, one more than
    /// the highest revision it had seen). A leader below it is never
    /// reported, and this node never leads below it.
    pub floor: u64,
    /// The highest etcd revision (v2: index) this node has seen: what a
    /// later answer from etcd must not fall below.
    pub revision: u64,
    /// What this node offers as a candidate now (health, drain, priority).
    pub candidacy: Candidacy,
    /// While this node leads: the id of a candidate of higher priority
    /// asking it to hand over (v3's preemption; see [`crate::Leadership::preempted`]).
    pub asked: Option<String>,
}

impl Status {
    /// This node's leadership at `now`: confirmed and before its deadline.
    /// Every reader asks this, not [`Status::tenure`].
    pub fn tenure_at(&self, now: Instant) -> Option<Tenure> {
        self.tenure.filter(|t| now < t.deadline)
    }

    /// Whether this node leads at `now`: confirmed and before its deadline.
    pub fn is_leader_at(&self, now: Instant) -> bool {
        self.tenure_at(now).is_some()
    }

    /// Whether this node leads now.
    pub fn is_leader(&self) -> bool {
        self.is_leader_at(Instant::now())
    }

    /// The role at `now`.
    pub fn role_at(&self, now: Instant) -> Role {
        if self.is_leader_at(now) {
            Role::Leader
        } else if self.observer {
            Role::Observer
        } else if self.leader_at(now).is_some() {
            Role::Follower
        } else {
            Role::Candidate
        }
    }

    /// The role now.
    pub fn role(&self) -> Role {
        self.role_at(Instant::now())
    }

    /// The leader at `now`, as this node knows it. A node never names itself
    /// once its deadline has passed, even while its key still exists.
    pub fn leader_at(&self, now: Instant) -> Option<Leader> {
        if let Some(tenure) = self.tenure_at(now) {
            return Some(Leader {
                id: Some(self.id.clone()),
                advertise: Some(self.advertise.clone()),
                term: tenure.term,
                verified: true,
            });
        }
        if self.leader_is_self {
            return None;
        }
        self.leader.clone().filter(|l| l.term >= self.floor)
    }

    /// The leader now.
    pub fn current_leader(&self) -> Option<Leader> {
        self.leader_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn status() -> Status {
        Status {
            id: "me".to_owned(),
            advertise: "http://127.0.0.1:8080".to_owned(),
            election: "leader".to_owned(),
            api: Api::V3,
            observer: false,
            tenure: None,
            leader: None,
            leader_is_self: false,
            synced: false,
            problem: None,
            obstacle: None,
            floor: 0,
            revision: 0,
            candidacy: Candidacy::default(),
            asked: None,
        }
    }

    /// One obstacle of each kind.
    fn one_of_each_obstacle() -> [Obstacle; 3] {
        [
            Obstacle::ForeignKey {
                key: "/electd/leader/~leader".to_owned(),
                kind: Foreign::Value,
                expiry: Expiry::Never,
                api: Api::V3,
            },
            Obstacle::Predecessor {
                key: "/electd/leader/~leader".to_owned(),
                lease: 7,
                expires: None,
            },
            Obstacle::Regressed {
                from: 9,
                to: 2,
                state_file: None,
                api: Api::V3,
                program: "electd".to_owned(),
            },
        ]
    }

    #[test]
    fn kinds_lists_each_obstacle_kind_once() {
        let kinds: Vec<&str> = one_of_each_obstacle().iter().map(Obstacle::kind).collect();
        assert_eq!(kinds, Obstacle::KINDS);
    }

    #[test]
    fn role_follows_the_deadline_not_a_flag() {
        let now = Instant::now();
        let mut s = status();
        s.tenure = Some(Tenure {
            term: 7,
            deadline: now + Duration::from_secs(1),
        });
        s.leader = Some(Leader::from_stored(
            br#"{"id":"me","advertise":"http://127.0.0.1:8080"}"#,
            7,
        ));
        s.leader_is_self = true;
        assert_eq!(s.role_at(now), Role::Leader);
        assert_eq!(s.leader_at(now).unwrap().term, 7);
        let later = now + Duration::from_secs(2);
        assert_eq!(s.role_at(later), Role::Candidate);
        assert_eq!(
            s.leader_at(later),
            None,
            "never names itself after the deadline"
        );
    }

    #[test]
    fn followers_name_the_leader_above_the_floor() {
        let mut s = status();
        s.leader = Some(Leader::from_stored(
            br#"{"id":"b","advertise":"http://10.0.0.2:8081"}"#,
            3,
        ));
        assert_eq!(s.role(), Role::Follower);
        assert_eq!(s.current_leader().unwrap().id.as_deref(), Some("b"));
        // A leader below the floor (an older history) is never current.
        s.floor = 4;
        assert_eq!(s.current_leader(), None);
        s.floor = 3;
        s.leader = Some(Leader::from_stored(b"8081", 3));
        assert!(s.current_leader().unwrap().is_foreign());
    }
}
