//! The one shared view of an election that everything else reads.
//!
//! The election loop publishes a [`Status`] through a `tokio::sync::watch`
//! channel; HTTP handlers, metrics, the `--exec` supervisor and library users
//! read it without ever blocking the loop. Whether this node leads is computed
//! when asked, from the deadline: a process that was paused past its deadline
//! answers correctly on its very first request after waking.

use serde::Serialize;
use tokio::time::Instant;

use crate::config::Api;

/// The leader of an election, as etcd names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Leader {
    /// The leader's id; `None` when the stored value is foreign.
    pub id: Option<String>,
    /// How to reach the leader; `None` when the stored value is foreign.
    pub advertise: Option<String>,
    /// The leader's term (fencing token): etcd's `createdIndex` (v2) or
    /// `create_revision` (v3) of the leader key.
    pub term: u64,
}

impl Leader {
    pub(crate) fn from_stored(raw: &[u8], term: u64) -> Leader {
        match crate::value::decode(raw) {
            Some(named) => Leader {
                id: Some(named.id),
                advertise: Some(named.advertise),
                term,
            },
            None => Leader {
                id: None,
                advertise: None,
                term,
            },
        }
    }

    /// Whether the leader key holds a value electd did not write.
    pub fn is_foreign(&self) -> bool {
        self.id.is_none()
    }

    /// The port of the leader's advertise URL (the scheme's default when it names none).
    pub fn port(&self) -> Option<u16> {
        let url = url::Url::parse(self.advertise.as_deref()?).ok()?;
        url.port_or_known_default()
    }
}

/// What this node is, right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
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
    /// This node's leadership, when confirmed. Check [`Status::role`] or
    /// [`Status::is_leader`] rather than this field: it can be stale by up to
    /// the deadline.
    pub tenure: Option<Tenure>,
    /// The leader key as last read from etcd (`None`: no leader).
    pub leader: Option<Leader>,
    /// Whether [`Status::leader`] is this node's own key.
    pub leader_is_self: bool,
    /// Whether etcd has been read at least once.
    pub synced: bool,
    /// What currently keeps the election from working, if anything.
    pub problem: Option<Problem>,
}

impl Status {
    pub(crate) fn new(config: &crate::Config) -> Status {
        Status {
            id: config.id.clone(),
            advertise: config.advertise.clone(),
            election: config.election.clone(),
            api: config.api,
            observer: config.observer,
            tenure: None,
            leader: None,
            leader_is_self: false,
            synced: false,
            problem: None,
        }
    }

    /// Whether this node leads at `now`: confirmed and before its deadline.
    pub fn is_leader_at(&self, now: Instant) -> bool {
        self.tenure.is_some_and(|t| now < t.deadline)
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
        if let Some(tenure) = self.tenure.filter(|t| now < t.deadline) {
            return Some(Leader {
                id: Some(self.id.clone()),
                advertise: Some(self.advertise.clone()),
                term: tenure.term,
            });
        }
        if self.leader_is_self {
            return None;
        }
        self.leader.clone()
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
        let config = crate::Config::builder()
            .id("me")
            .advertise("http://127.0.0.1:8080")
            .build()
            .unwrap();
        Status::new(&config)
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
    fn followers_name_the_leader_and_its_port() {
        let mut s = status();
        s.leader = Some(Leader::from_stored(
            br#"{"id":"b","advertise":"http://10.0.0.2:8081"}"#,
            3,
        ));
        assert_eq!(s.role(), Role::Follower);
        assert_eq!(s.current_leader().unwrap().port(), Some(8081));
        s.leader = Some(Leader::from_stored(b"8081", 3));
        assert!(s.current_leader().unwrap().is_foreign());
        assert_eq!(s.current_leader().unwrap().port(), None);
    }
}
