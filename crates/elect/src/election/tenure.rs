//! Deciding, after every event, whether this node leads, and recording it:
//! the view applied in order, the floor kept, the journal written before
//! anyone acts on it.

use std::time::Duration;

use tokio::time::{Instant, timeout};

use super::Machine;
use crate::backend::{Backend, View};
use crate::clock::instant_to_ns;
use crate::error::EtcdError;
use crate::history::Saved;
use crate::journal::{EndReason, Event};
use crate::status::Tenure;

impl<B: Backend> Machine<B> {
    pub(super) fn apply_view(&mut self, view: View) {
        if view.epoch < self.epoch
            || self
                .view
                .as_ref()
                .is_some_and(|current| view.revision < current.revision)
        {
            return;
        }
        // Others' terms raise the floor; ours does when our tenure begins.
        if let Some(leader) = &view.leader
            && view.mine.is_none()
        {
            self.raise_floor(leader.term);
        }
        // Clear once the next revision (a term) would be above the floor.
        if self.regressed.is_some() && view.revision.saturating_add(1) >= self.revisions.floor() {
            tracing::info!(id = %self.config.id, revision = view.revision, "etcd's revision has passed the old history's: terms can grow again");
            self.regressed = None;
        }
        if let Some(at) = view.claimable_at
            && at > Instant::now()
        {
            // Campaign when the timer fires, not before.
            self.retry_at = Some(self.retry_at.map_or(at, |r| r.max(at)));
        }
        self.view = Some(view);
    }

    /// The term the leader key etcd shows gives the claim we hold, if it
    /// does. Deciding here, not in the backend, keeps a view read before the
    /// claim was known (v3's observer watch) from hiding our own leadership.
    pub(super) fn claim_leads(&self) -> Option<u64> {
        match (&self.claim, &self.view) {
            (Some(claim), Some(view)) if view.mine == Some(claim.id) => {
                view.leader.as_ref().map(|l| l.term)
            }
            _ => None,
        }
    }

    /// Brings the tenure (and the journal) in line with the claim and the view.
    pub(super) fn reconcile(&mut self) {
        let now = Instant::now();
        let leading_term = self.claim_leads();
        let want = match (&self.claim, leading_term) {
            (Some(claim), Some(term))
                if now < claim.deadline && self.may_lead_with(term) && self.regressed.is_none() =>
            {
                Some(Tenure {
                    term,
                    deadline: claim.deadline,
                })
            }
            _ => None,
        };
        match (self.tenure, want) {
            (None, Some(next)) => self.begin(next),
            (Some(current), Some(next)) if current.term == next.term => {
                if next.deadline > current.deadline {
                    self.journal.write(
                        next.term,
                        instant_to_ns(Instant::now()),
                        Event::Renewed {
                            deadline_ns: instant_to_ns(next.deadline),
                        },
                    );
                    self.tenure = Some(next);
                }
            }
            (Some(current), Some(next)) => {
                self.end(current, EndReason::Lost);
                self.begin(next);
            }
            (Some(current), None) => {
                let reason = if now >= current.deadline {
                    EndReason::Deadline
                } else {
                    EndReason::Lost
                };
                self.end(current, reason);
            }
            (None, None) => {}
        }
        self.publish();
        let saved = self.saved();
        if let Some(keeper) = &mut self.keeper {
            keeper.note(saved, Duration::from_secs(1));
        }
    }

    pub(super) fn saved(&self) -> Saved {
        Saved {
            floor: self.revisions.floor(),
            revision: self.revisions.high(),
        }
    }

    /// Whether this node may lead with `term`: it is eligible (healthy, not
    /// drained), and the term keeps fencing tokens growing: above the floor,
    /// or at it when it is this process's own term resuming.
    pub(super) fn may_lead_with(&self, term: u64) -> bool {
        let floor = self.revisions.floor();
        self.candidacy.eligible()
            && (term > floor || (term == floor && self.last_term == Some(term)))
    }

    /// A claim of ours leads at a term it may not lead with (this candidate
    /// is not eligible, or the term is at or below the floor: an older
    /// history restored, or a term this node saw before it restarted): it
    /// must never lead, and it keeps everyone else from leading, so give it
    /// up, saying why.
    pub(super) async fn release_stale_claim(&mut self) {
        let Some(term) = self.claim_leads() else {
            return;
        };
        if self.may_lead_with(term) || self.tenure.is_some() {
            return;
        }
        let why = if self.candidacy.eligible() {
            "its term is at or below the floor"
        } else {
            "this candidate is not eligible (drained or unhealthy)"
        };
        tracing::warn!(id = %self.config.id, term, floor = self.revisions.floor(), "the leader record is ours but {why}: giving it up");
        self.claim = None;
        self.publish_claim(EndReason::Lost);
        let limit = self.config.timing.release_bound();
        if let Err(err) = timeout(limit, self.backend.give_up())
            .await
            .unwrap_or_else(|_| {
                Err(EtcdError::Timeout {
                    endpoint: "etcd".to_owned(),
                    timeout: limit,
                })
            })
        {
            self.set_problem(&err);
        }
    }

    pub(super) fn begin(&mut self, tenure: Tenure) {
        self.asked_again = false;
        if let Some(claim) = self.claim.as_mut() {
            claim.led = true;
        }
        self.raise_floor(tenure.term);
        self.last_term = Some(tenure.term);
        self.journal.write(
            tenure.term,
            instant_to_ns(Instant::now()),
            Event::Acquired {
                deadline_ns: instant_to_ns(tenure.deadline),
            },
        );
        self.tenure = Some(tenure);
        self.config.telemetry.acquired(tenure.term);
        tracing::info!(id = %self.config.id, term = tenure.term, "became leader");
        self.publish();
    }

    /// Stops calling ourselves leader, then journals when that happened: the
    /// deadline if it came first, else now. A leadership that ended by
    /// itself (lost, or lapsed at the deadline) also ends the campaign until
    /// asked again (unless asked already): whoever acted on it (an `--exec`
    /// command) must be done before this node may lead anew. A lapsed term
    /// whose claim lives on may still resume.
    pub(super) fn end(&mut self, tenure: Tenure, reason: EndReason) {
        if matches!(reason, EndReason::Lost | EndReason::Deadline) && !self.asked_again {
            self.campaigning = false;
        }
        self.tenure = None;
        self.publish();
        let now = Instant::now();
        let t_ns = instant_to_ns(now.min(tenure.deadline));
        self.journal
            .write(tenure.term, t_ns, Event::Ended { reason });
        self.config.telemetry.ended(tenure.term, reason);
        tracing::info!(id = %self.config.id, term = tenure.term, reason = reason.as_str(), "stopped leading");
    }
}
