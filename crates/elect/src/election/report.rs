//! What the loop tells its readers: the one shared status, the claim the
//! shards lead under, and the log lines for what changed (a problem with etcd, an obstacle, a new leader),
//! each said once, not per attempt.

use tokio::time::Instant;

use super::Machine;
use crate::backend::Backend;
use crate::claim::HeldClaim;
use crate::clock::instant_to_ns;
use crate::error::EtcdError;
use crate::history::Regression;
use crate::journal::{EndReason, Event};
use crate::status::{Obstacle, Problem};

impl<B: Backend> Machine<B> {
    /// Tells what leads under our claim (the shards) of the claim as it is
    /// now: a claim given up ends all of it first, for `reason`, and a
    /// renewal is journaled before anyone leads on it.
    pub(super) fn publish_claim(&mut self, reason: EndReason) {
        let held = self.claim.map(|c| HeldClaim {
            id: c.id,
            deadline: c.deadline,
        });
        if let Some(shards) = &self.shards {
            let was = *self.claims.borrow();
            if let Some(was) = was.filter(|w| held.is_none_or(|h| h.id != w.id)) {
                shards.give_up(was.id, reason);
                self.shards_renewed_until = None;
            }
            if let Some(held) = held
                && self.tenure.is_none()
                && was.is_some_and(|w| w.id == held.id)
                && self.shards_renewed_until.is_none_or(|d| held.deadline > d)
            {
                // Term 0: this node leads no term of the election itself;
                // the line applies to every shard it leads.
                self.journal.write(
                    0,
                    instant_to_ns(Instant::now()),
                    Event::Renewed {
                        deadline_ns: instant_to_ns(held.deadline),
                    },
                );
                self.shards_renewed_until = Some(held.deadline);
            }
        }
        self.claims.send_if_modified(|was| {
            let changed = *was != held;
            *was = held;
            changed
        });
    }

    pub(super) fn publish(&mut self) {
        let tenure = self.tenure;
        let ours =
            self.claim_leads().is_some() || self.view.as_ref().is_some_and(|v| v.mine.is_some());
        let (leader, synced) = match &self.view {
            Some(view) => (view.leader.clone(), true),
            None => (None, false),
        };
        let obstacle = match self.regressed {
            Some(Regression { from, to, .. }) => Some(Obstacle::Regressed {
                from,
                to,
                state_file: self.config.state_file.clone(),
                api: self.config.api,
                program: self.config.names.program.clone(),
            }),
            None => self.view.as_ref().and_then(|v| v.obstacle.clone()),
        };
        if obstacle.as_ref().map(Obstacle::identity)
            != self.obstacle.as_ref().map(Obstacle::identity)
        {
            match &obstacle {
                Some(o) => tracing::warn!(id = %self.config.id, "{}: {o}", o.summary()),
                None => {
                    if let Some(was) = &self.obstacle {
                        tracing::info!(id = %self.config.id, was = was.summary(), "the election is clear again");
                    }
                }
            }
            self.obstacle = obstacle.clone();
        }
        let problem = self.problem.clone();
        let floor = self.revisions.floor();
        let revision = self.revisions.high();
        let candidacy = self.candidacy;
        // Asked to hand over only means something while we lead.
        let asked = self
            .tenure
            .and(self.view.as_ref().and_then(|v| v.asked.clone()));
        let id = &self.config.id;
        self.status.send_if_modified(|status| {
            let leader_changed = status.leader != leader || status.synced != synced;
            if leader_changed && !ours {
                match &leader {
                    Some(l) if l.term < floor => {}
                    Some(l) if l.is_foreign() => {
                        tracing::info!(%id, term = l.term, "the leader key holds a value this node cannot trust: leader unknown")
                    }
                    Some(l) => tracing::info!(
                        %id,
                        term = l.term,
                        leader = l.id.as_deref().unwrap_or_default(),
                        advertise = l.advertise.as_deref().unwrap_or_default(),
                        "following leader"
                    ),
                    None if synced => tracing::info!(%id, "no leader elected"),
                    None => {}
                }
            }
            let changed = leader_changed
                || status.tenure != tenure
                || status.leader_is_self != ours
                || status.problem != problem
                || status.obstacle != obstacle
                || status.floor != floor
                || status.revision != revision
                || status.candidacy != candidacy
                || status.asked != asked;
            if changed {
                status.tenure = tenure;
                status.leader = leader;
                status.leader_is_self = ours;
                status.synced = synced;
                status.problem = problem;
                status.obstacle = obstacle;
                status.floor = floor;
                status.revision = revision;
                status.candidacy = candidacy;
                status.asked = asked;
            }
            changed
        });
        // After the status: a campaign woken by this reads the status.
        self.tenures.send_if_modified(|t| {
            let changed = *t != tenure;
            *t = tenure;
            changed
        });
    }

    pub(super) fn set_problem(&mut self, err: &EtcdError) {
        let summary = err.summary();
        if self.problem.as_ref().map(|p| p.summary) != Some(summary) {
            tracing::warn!(id = %self.config.id, error = %err, "{summary}");
        }
        self.problem = Some(Problem {
            summary,
            detail: err.to_string(),
        });
    }

    pub(super) fn clear_problem(&mut self) {
        if let Some(problem) = self.problem.take() {
            tracing::info!(id = %self.config.id, was = problem.summary, "etcd is answering again");
        }
    }
}
