//! What the handlers share: the election, the metrics, the admin token,
//! the channel to the leadership loop, and short-lived copies of the
//! succession order and of the election's history, so that HTTP traffic
//! never becomes etcd traffic.

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
    /// The last succession order read from etcd, and when.
    candidates: Arc<tokio::sync::Mutex<Option<CandidatesRead>>>,
    /// The last history read from etcd (all of it the size keeps), and when.
    history: Arc<tokio::sync::Mutex<Option<HistoryRead>>>,
    /// Open `/v1/watch` streams; capped apart from other connections so
    /// long-lived streams cannot take every connection slot.
    pub(super) watchers: Arc<Semaphore>,
}

/// A succession order read from etcd (`None`: the read failed), and when.
type CandidatesRead = (Instant, Option<Vec<Candidate>>);

/// A history read from etcd (or why it could not be), and when.
type HistoryRead = (Instant, Result<Arc<History>, String>);

/// How old a `/v1/status` succession order (or a `/v1/history`) may be:
/// however many requests come, etcd sees at most a few reads per second
/// from them.
const CANDIDATES_MAX_AGE: Duration = Duration::from_millis(500);

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

    /// The succession order, read from etcd at most every
    /// `CANDIDATES_MAX_AGE`; concurrent requests share one read.
    async fn candidates(&self) -> Option<Vec<Candidate>> {
        let mut cached = self.candidates.lock().await;
        if let Some((read_at, candidates)) = cached.as_ref()
            && read_at.elapsed() < CANDIDATES_MAX_AGE
        {
            return candidates.clone();
        }
        let candidates = self.election.candidates().await.ok();
        *cached = Some((Instant::now(), candidates.clone()));
        candidates
    }
}

impl AppState {
    /// The election's history, as much as its size keeps, read from etcd
    /// at most every `CANDIDATES_MAX_AGE`; concurrent requests share one
    /// read. The error says why it could not be read.
    pub(super) async fn history(&self) -> Result<Arc<History>, String> {
        let mut cached = self.history.lock().await;
        if let Some((read_at, history)) = cached.as_ref()
            && read_at.elapsed() < CANDIDATES_MAX_AGE
        {
            return history.clone();
        }
        let size = self.election.config().history_size();
        let history = match self.election.history(size).await {
            Ok(history) => Ok(Arc::new(history)),
            Err(err) => Err(err.to_string()),
        };
        *cached = Some((Instant::now(), history.clone()));
        history
    }
}

/// `/v1/status`'s body, now.
pub(super) async fn status_body(state: &AppState) -> StatusBody {
    let candidates = state.candidates().await;
    StatusBody::new(
        &state.election.status(),
        candidates,
        state.health_checked,
        &state.admin_url,
        Instant::now(),
    )
}
