//! What electd's answers say, as far as electctl reads them (the book's
//! HTTP reference has every field). Fields electctl does not use are
//! ignored, so a newer electd's additions change nothing here.

use serde::{Deserialize, Serialize};

/// `GET /v1/status`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Status {
    pub id: String,
    pub role: String,
    pub election: String,
    pub api: String,
    pub leader: Option<Leader>,
    /// Succession order, leader first; `None` when the node could not read etcd.
    pub candidates: Option<Vec<Candidate>>,
    pub obstacle: Option<Obstacle>,
    /// Where the node's admin endpoints listen. Absent before electd 0.3.0,
    /// which served them on the advertise URL unless `--admin-listen` moved
    /// them (and then said nowhere where).
    pub admin: Option<String>,
}

/// The leader object of `/v1/status` and `/v1/watch`'s `leader` events.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Leader {
    pub id: Option<String>,
    pub advertise: Option<String>,
    pub term: u64,
    pub verified: bool,
}

/// A candidate of `/v1/status`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Candidate {
    pub id: Option<String>,
    pub advertise: Option<String>,
    pub term: u64,
    pub verified: bool,
    pub leads: bool,
    pub priority: i64,
    pub healthy: Option<bool>,
    pub drained: Option<bool>,
}

impl Candidate {
    /// Whether the succession may choose it: trusted, healthy and not
    /// drained (v2 says neither: `None` counts as yes).
    pub fn eligible(&self) -> bool {
        self.verified && self.healthy != Some(false) && self.drained != Some(true)
    }
}

/// What keeps the election from electing, or what it waits for.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Obstacle {
    pub kind: String,
    pub message: String,
    pub blocking: bool,
}

/// `GET /v1/history`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct History {
    pub history: Vec<Leadership>,
}

/// One leadership of the history, newest first.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Leadership {
    pub term: u64,
    pub id: Option<String>,
    pub advertise: Option<String>,
    /// RFC 3339, from the writing node's wall clock; `None` where unknown.
    pub acquired_at: Option<String>,
    pub ended_at: Option<String>,
    pub reason: Option<String>,
    pub to: Option<String>,
}

/// `GET /v1/shards`, and the `shards` event of `/v1/watch?events=shards`
/// (which has `count` and `shards` only).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Shards {
    pub count: u32,
    /// The id of the node that answered; absent from the event.
    #[serde(default)]
    pub id: Option<String>,
    pub shards: Vec<Shard>,
}

/// One shard of `/v1/shards`, and a `shard` event.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Shard {
    pub shard: u32,
    /// `None` while the shard has no leader.
    pub leader: Option<ShardLeader>,
    pub term: Option<u64>,
}

/// A shard's leader.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ShardLeader {
    pub id: String,
    pub advertise: String,
}

/// An error answer of the admin endpoints (and of `/v1/history` on v2).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Refusal {
    pub error: String,
    pub message: String,
    /// With `transfer_timed_out` and `transfer_failed`: who leads now.
    #[serde(default)]
    pub leader: Option<Leader>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of the book's HTTP reference, with `admin`.
    const STATUS: &str = r#"{
      "id": "web-1", "role": "follower", "term": 4, "election": "leader", "api": "v3",
      "leader": {"id": "web-2", "advertise": "http://10.0.1.6:8080", "term": 4, "verified": true},
      "candidates": [
        {"id": "web-2", "advertise": "http://10.0.1.6:8080", "term": 4, "verified": true,
         "leads": true, "priority": 0, "healthy": true, "drained": false},
        {"id": "web-1", "advertise": "http://10.0.1.5:8080", "term": 6, "verified": true,
         "leads": false, "priority": 0, "healthy": true, "drained": false}
      ],
      "healthy": null, "drained": false, "priority": 0, "obstacle": null,
      "floor": 4, "revision": 6, "admin": "http://10.0.1.5:9090"
    }"#;

    #[test]
    fn reads_the_status_of_the_reference() {
        let status: Status = serde_json::from_str(STATUS).unwrap();
        assert_eq!(status.leader.as_ref().unwrap().id.as_deref(), Some("web-2"));
        let candidates = status.candidates.unwrap();
        assert_eq!(candidates.len(), 2);
        assert!(candidates[0].leads && candidates.iter().all(Candidate::eligible));
        assert_eq!(status.admin.as_deref(), Some("http://10.0.1.5:9090"));
    }

    #[test]
    fn reads_the_shards_of_the_reference() {
        let shards: Shards = serde_json::from_str(
            r#"{"count": 60, "revision": 118, "id": "n1", "leads": [0, 3, 5],
                "nodes": [{"id": "n1", "leads": 20}], "leaderless": 0,
                "shards": [
                  {"shard": 0, "leader": {"id": "n1", "advertise": "http://10.0.0.1:8080"},
                   "term": 97, "self": true},
                  {"shard": 1, "leader": null, "term": null, "self": false}]}"#,
        )
        .unwrap();
        assert_eq!((shards.count, shards.id.as_deref()), (60, Some("n1")));
        assert_eq!(shards.shards[0].leader.as_ref().unwrap().id, "n1");
        assert_eq!(shards.shards[1].leader, None);
    }

    #[test]
    fn reads_a_refusal_with_and_without_a_leader() {
        let plain: Refusal =
            serde_json::from_str(r#"{"error": "no_such_candidate", "message": "no"}"#).unwrap();
        assert_eq!(plain.leader, None);
        let timed_out: Refusal = serde_json::from_str(
            r#"{"error": "transfer_timed_out", "message": "late",
                "leader": {"id": "a", "advertise": "http://a", "term": 9, "verified": true}}"#,
        )
        .unwrap();
        assert_eq!(timed_out.leader.unwrap().term, 9);
    }
}
