//! What the loop tells its readers: the one shared status, and the log
//! lines for what changed (a problem with etcd, an obstacle, a new leader),
//! each said once, not per attempt.

use super::Machine;
use crate::backend::Backend;
use crate::error::EtcdError;
use crate::history::Regression;
use crate::status::{Obstacle, Problem};

impl<B: Backend> Machine<B> {
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
