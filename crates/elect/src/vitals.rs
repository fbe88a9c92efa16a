//! Liveness of the election: is the loop making progress, and has etcd
//! answered recently? Kept in atomics, apart from [`Status`](crate::Status),
//! so that recording progress never wakes the readers of the status.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::status::{Obstacle, Problem};
use crate::timing::Timing;

/// Why the election is not working; its `Display` is what `/healthz` says.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unhealthy {
    /// Requests to etcd fail.
    Etcd(Problem),
    /// Something in etcd keeps every node from leading.
    Blocked(Obstacle),
    /// The election loop has not gone round for this long.
    Stalled(Duration),
    /// etcd has not answered for this long (`None`: not yet at all).
    Silent(Option<Duration>),
}

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unhealthy::Etcd(problem) => write!(f, "{}: {}", problem.summary, problem.detail),
            Unhealthy::Blocked(obstacle) => write!(f, "{obstacle}"),
            Unhealthy::Stalled(age) => write!(
                f,
                "election loop stalled: no progress for {:.1}s",
                age.as_secs_f64()
            ),
            Unhealthy::Silent(None) => f.write_str("no answer from etcd yet"),
            Unhealthy::Silent(Some(age)) => {
                write!(f, "no answer from etcd for {:.1}s", age.as_secs_f64())
            }
        }
    }
}

/// Timestamps of the last loop iteration and the last good answer from etcd.
#[derive(Debug)]
pub(crate) struct Vitals {
    origin: Instant,
    loop_tick: AtomicU64,
    etcd_ok: AtomicU64,
}

impl Vitals {
    pub(crate) fn new() -> Vitals {
        Vitals {
            origin: Instant::now(),
            loop_tick: AtomicU64::new(0),
            etcd_ok: AtomicU64::new(0),
        }
    }

    fn stamp(&self, cell: &AtomicU64) {
        // +1 so that 0 keeps meaning "never".
        let ns = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1;
        cell.store(ns, Ordering::Relaxed);
    }

    fn age(&self, cell: &AtomicU64) -> Option<Duration> {
        match cell.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(
                self.origin
                    .elapsed()
                    .saturating_sub(Duration::from_nanos(ns - 1)),
            ),
        }
    }

    /// The election loop went round once.
    pub(crate) fn loop_tick(&self) {
        self.stamp(&self.loop_tick);
    }

    /// etcd answered a request as expected.
    pub(crate) fn etcd_ok(&self) {
        self.stamp(&self.etcd_ok);
    }

    /// Whether the loop went round within the TTL.
    pub(crate) fn check_loop(&self, timing: &Timing) -> Result<(), Unhealthy> {
        match self.age(&self.loop_tick) {
            Some(age) if age > timing.loop_stall() => Err(Unhealthy::Stalled(age)),
            _ => Ok(()),
        }
    }

    /// Checks both against the TTL: the loop must have run within one TTL,
    /// and etcd must have answered within one and a half (a v2 follower reads
    /// once per TTL, and the read itself takes a moment).
    pub(crate) fn check(&self, timing: &Timing) -> Result<(), Unhealthy> {
        self.check_loop(timing)?;
        match self.age(&self.etcd_ok) {
            None => Err(Unhealthy::Silent(None)),
            Some(age) if age > timing.etcd_silence() => Err(Unhealthy::Silent(Some(age))),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_only_after_etcd_answered() {
        let cells = Vitals::new();
        let timing = Timing::new(crate::api::Api::V2, Duration::from_secs(2), None).unwrap();
        cells.loop_tick();
        assert_eq!(cells.check(&timing), Err(Unhealthy::Silent(None)));
        assert_eq!(
            Unhealthy::Silent(None).to_string(),
            "no answer from etcd yet"
        );
        cells.etcd_ok();
        assert!(cells.check(&timing).is_ok());
        std::thread::sleep(Duration::from_millis(5));
        let short = Timing::new(crate::api::Api::V2, Duration::from_secs(1), None).unwrap();
        assert!(cells.check(&short).is_ok());
    }
}
