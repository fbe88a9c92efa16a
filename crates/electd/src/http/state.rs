//! What the handlers share: the election, the metrics, the admin token,
//! the channel to the leadership loop, and short-lived copies of the
//! succession order and of the election's history, so that HTTP traffic
//! never becomes etcd traffic.
//!
//! A copy is kept only while the node has seen nothing newer: a status
//! answer's candidates never disagree with its leader because the copy was
//! read before the change the leader field already shows.

use std::sync::Arc;
use std::time::Duration;

use elect::{Candidate, Election, History};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use super::answers::StatusBody;
use crate::lead::Request;
use crate::metrics::Metrics;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub(super) election: Arc<Election>,
    pub(super) metrics: Arc<Metrics>,
    /// The bearer token for admin endpoints; `None` turns them off (403).
    pub(super) admin_token: Option<Arc<str>>,
    /// Where operators' requests go; `None` on an observer.
    pub(super) requests: Option<mpsc::Sender<Request>>,
    /// Whether a health check runs (`--health-url`): without one,
    /// `/v1/status` says `healthy: null`.
    pub(super) health_checked: bool,
    /// Where the admin endpoints listen, as `/v1/status` tells clients.
    admin_url: Arc<str>,
    /// The last succession order read from etcd (`None`: the read failed).
    candidates: Arc<Recent<Option<Vec<Candidate>>>>,
    /// The last history read from etcd (all of it the size keeps), or why
    /// it could not be read.
    history: Arc<Recent<Result<Arc<History>, String>>>,
    /// Open `/v1/watch` streams; capped apart from other connections so
    /// long-lived streams cannot take every connection slot.
    pub(super) watchers: Arc<Semaphore>,
}

/// How old a `/v1/status` succession order (or a `/v1/history`) may be:
/// however many requests come, etcd sees at most a few reads per second
/// from them.
const CANDIDATES_MAX_AGE: Duration = Duration::from_millis(500);

/// The last answer of a read, when it was read, and the highest revision
/// the node had seen then; concurrent requests share one read.
struct Recent<T>(tokio::sync::Mutex<Option<(Instant, u64, T)>>);

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Recent(tokio::sync::Mutex::new(None))
    }
}

impl<T: Clone> Recent<T> {
    /// The copy, if it is younger than `CANDIDATES_MAX_AGE` and the node
    /// has seen no revision past `revision` since; else `read`'s answer.
    async fn get_or_read(&self, revision: u64, read: impl Future<Output = T>) -> T {
        let mut cached = self.0.lock().await;
        if let Some((read_at, read_revision, answer)) = cached.as_ref()
            && read_at.elapsed() < CANDIDATES_MAX_AGE
            && *read_revision == revision
        {
            return answer.clone();
        }
        let answer = read.await;
        *cached = Some((Instant::now(), revision, answer.clone()));
        answer
    }
}

/// Open `/v1/watch` streams at most; more get 503.
pub(super) const MAX_WATCHERS: usize = 64;

impl AppState {
    pub fn new(
        election: Arc<Election>,
        metrics: Arc<Metrics>,
        admin_token: Option<Arc<str>>,
        requests: Option<mpsc::Sender<Request>>,
        health_checked: bool,
        admin_url: &str,
    ) -> Self {
        AppState {
            election,
            metrics,
            admin_token,
            requests,
            health_checked,
            admin_url: Arc::from(admin_url),
            candidates: Arc::default(),
            history: Arc::default(),
            watchers: Arc::new(Semaphore::new(MAX_WATCHERS)),
        }
    }

    /// The succession order as of `revision` (the status's).
    async fn candidates(&self, revision: u64) -> Option<Vec<Candidate>> {
        self.candidates
            .get_or_read(revision, async { self.election.candidates().await.ok() })
            .await
    }

    /// The election's history, as much as its size keeps, as of the
    /// highest revision the node has seen. The error says why it could not
    /// be read.
    pub(super) async fn history(&self) -> Result<Arc<History>, String> {
        let revision = self.election.status().revision;
        let size = self.election.config().history_size();
        self.history
            .get_or_read(revision, async {
                self.election
                    .history(size)
                    .await
                    .map(Arc::new)
                    .map_err(|err| err.to_string())
            })
            .await
    }
}

/// `/v1/status`'s body, now.
pub(super) async fn status_body(state: &AppState) -> StatusBody {
    let status = state.election.status();
    let candidates = state.candidates(status.revision).await;
    StatusBody::new(
        &status,
        candidates,
        state.health_checked,
        &state.admin_url,
        Instant::now(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::Recent;

    #[tokio::test]
    async fn a_copy_is_served_only_until_the_node_sees_a_newer_revision() {
        let reads = AtomicU32::new(0);
        let recent = Recent::default();
        let read = || async { reads.fetch_add(1, Ordering::SeqCst) + 1 };
        assert_eq!(recent.get_or_read(7, read()).await, 1);
        assert_eq!(recent.get_or_read(7, read()).await, 1, "same revision");
        assert_eq!(recent.get_or_read(8, read()).await, 2, "a newer one");
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_copy_is_read_again_once_it_is_too_old() {
        let recent = Recent::default();
        assert_eq!(recent.get_or_read(7, async { "first" }).await, "first");
        tokio::time::advance(super::CANDIDATES_MAX_AGE).await;
        assert_eq!(recent.get_or_read(7, async { "second" }).await, "second");
    }
}
