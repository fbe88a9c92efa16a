//! Capped exponential backoff with jitter, for the loops that retry etcd
//! after a failure (a campaign, a follow task's read). A renewal retries on
//! its own, faster schedule (`Timing::renew_retry`): it races a deadline.

use std::time::Duration;

/// Delays 100 ms, 200 ms, 400 ms … up to `cap`, each drawn at random from its
/// upper half so that nodes which failed together do not retry together.
#[derive(Debug)]
pub(crate) struct Backoff {
    attempt: u32,
    cap: Duration,
}

const BASE: Duration = Duration::from_millis(100);

impl Backoff {
    pub(crate) fn new(cap: Duration) -> Backoff {
        Backoff {
            attempt: 0,
            cap: cap.max(BASE),
        }
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let exp = BASE.saturating_mul(1 << self.attempt.min(16));
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = exp.min(self.cap);
        let half = ceiling / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let mut b = Backoff::new(Duration::from_secs(1));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(50) && first <= BASE);
        for _ in 0..20 {
            assert!(b.next_delay() <= Duration::from_secs(1));
        }
        let late = b.next_delay();
        assert!(late >= Duration::from_millis(500));
        b.reset();
        assert!(b.next_delay() <= BASE);
    }
}
