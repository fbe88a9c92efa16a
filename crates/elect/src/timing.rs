//! The time model in one place: every interval the election uses, derived
//! from the TTL and the margin, and every rule between them, checked together
//! (as raft-rs's `Config::validate` does for its timings).
//!
//! * A renewal sent at `s` and acknowledged keeps the claim alive until at
//!   least `s + TTL`; the **deadline** is `s + TTL − margin`.
//! * Renewals run every **TTL/3**, so two can fail before the deadline; a
//!   failed one is retried after 100 ms, 200 ms, … at most TTL/6.
//! * Each etcd request is bounded by **TTL/2**, so a renewal that times out
//!   and is retried still lands before the deadline; connecting by TTL/3.
//! * A watch that answers no progress request within **TTL/3** is dead, so a
//!   silently dropped connection is noticed within two thirds of a TTL.
//! * The loop counts as stalled after a TTL without going round, etcd as
//!   silent after **1.5 TTL** without an answer (a quiet v2 follower reads once
//!   per TTL, and the read itself takes a moment).
//! * `margin` must be under TTL/3: a margin that reached the renewal
//!   interval would leave no leadership between renewals.
//! * An `--exec` grace must be under the renewal interval: when a renewal is
//!   sent the deadline is still `2·TTL/3 − margin` ahead, so a command is
//!   never signalled while renewals are answered promptly.

use std::time::Duration;

use tokio::time::Instant;

use crate::api::Api;
use crate::error::{ConfigError, TtlProblem};

/// The longest TTL accepted: a day. Failover takes about a TTL, so a longer
/// one is a mistake, and it keeps every deadline far from `Instant` overflow.
pub const MAX_TTL: Duration = Duration::from_secs(86_400);

/// The default safety margin: 2 % of the TTL, at least 50 ms.
///
/// The deadline is measured from the *send* time of an acknowledged renewal,
/// so network delay is already on the safe side; what remains is the rate
/// difference between our clock and etcd's. NTP slews a clock by at most
/// 500 ppm (0.05 %), so 2 % is forty times that, and the 50 ms floor also
/// covers the time a `SIGKILL` sent at the deadline takes to land.
pub fn default_margin(ttl: Duration) -> Duration {
    (ttl / 50).max(Duration::from_millis(50))
}

/// Every interval of one election, from its TTL and margin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    ttl: Duration,
    margin: Duration,
}

impl Timing {
    /// Checks the TTL for `api` and the margin (default: [`default_margin`])
    /// against each other and against what etcd can do.
    pub fn new(api: Api, ttl: Duration, margin: Option<Duration>) -> Result<Timing, ConfigError> {
        let problem = if ttl.subsec_nanos() != 0 {
            Some(TtlProblem::NotWholeSeconds)
        } else if ttl < api.min_ttl() {
            Some(TtlProblem::TooShort { min: api.min_ttl() })
        } else if ttl > MAX_TTL {
            Some(TtlProblem::TooLong { max: MAX_TTL })
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(ConfigError::InvalidTtl { ttl, api, problem });
        }
        let margin = margin.unwrap_or_else(|| default_margin(ttl));
        let timing = Timing { ttl, margin };
        if margin >= timing.renew_interval() {
            return Err(ConfigError::MarginTooLarge { margin, ttl });
        }
        Ok(timing)
    }

    /// The lease TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How long before the claim could expire at etcd a leader stops
    /// calling itself leader.
    pub fn margin(&self) -> Duration {
        self.margin
    }

    /// How often a claim is renewed: a third of the TTL, so two renewals
    /// can fail before the deadline.
    pub fn renew_interval(&self) -> Duration {
        self.ttl / 3
    }

    /// The longest grace a program may give its work between "stop" and
    /// "kill" at a deadline, exclusive: the renewal interval (see the
    /// module's comment).
    pub fn max_grace(&self) -> Duration {
        self.renew_interval()
    }

    /// A grace that fits: a fifth of the TTL.
    pub fn default_grace(&self) -> Duration {
        self.ttl / 5
    }

    /// `sent_at + min(TTL etcd confirmed, our TTL) − margin`.
    pub(crate) fn deadline_after(&self, sent_at: Instant, confirmed: Duration) -> Instant {
        (sent_at + confirmed.min(self.ttl))
            .checked_sub(self.margin)
            .unwrap_or(sent_at)
    }

    /// When to retry a renewal after `failures` failed in a row: 100 ms,
    /// 200 ms, … at most half a renewal interval.
    pub(crate) fn renew_retry(&self, failures: u32) -> Duration {
        Duration::from_millis(100)
            .saturating_mul(1 << failures.min(10))
            .min(self.renew_interval() / 2)
    }

    /// Bounds every etcd request but a long poll: long enough for a slow
    /// etcd, short enough that a renewal retried after it still lands before
    /// the deadline.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.ttl / 2
    }

    /// Bounds a renewal as a whole, whatever the backend does inside.
    pub(crate) fn renewal_bound(&self) -> Duration {
        self.ttl
    }

    /// Bounds connecting to an endpoint.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.ttl / 3
    }

    /// TCP keep-alive on etcd connections.
    pub(crate) fn tcp_keepalive(&self) -> Duration {
        self.ttl
    }

    /// How long an idle v2 connection is kept.
    pub(crate) fn pool_idle(&self) -> Duration {
        self.ttl * 2
    }

    /// How long asking etcd why a TLS connection broke may take.
    pub(crate) fn diagnose_within(&self) -> Duration {
        self.ttl / 4
    }

    /// How often a v3 watch asks for progress; one unanswered by the next
    /// ask means the connection is dead.
    pub(crate) fn progress_interval(&self) -> Duration {
        self.ttl / 3
    }

    /// How long a v2 long poll waits before reading again: a follower hears
    /// from etcd at least once per TTL.
    pub(crate) fn poll_patience(&self) -> Duration {
        self.ttl
    }

    /// After someone else deletes the v2 key, how long its holder may still
    /// lead: until its deadline, at most a TTL.
    pub(crate) fn after_foreign_delete(&self) -> Duration {
        self.ttl
    }

    /// How often a v3 follower that watches puts only counts the keys, to
    /// learn of a deletion it did not see: with the mirror's revision up to
    /// a progress interval old, within a TTL.
    pub(crate) fn quiet_count_interval(&self) -> Duration {
        self.ttl / 2
    }

    /// When to look again at a predecessor's lease etcd says has `left`:
    /// by then, or sooner (a lease can be revoked early, and its holder may
    /// renew it), never in a spin.
    pub(crate) fn lease_recheck(&self, left: Duration) -> Duration {
        left.min(self.ttl / 2).max(Duration::from_millis(50))
    }

    /// How long a leader waits for the target of a hand-over to take it
    /// before withdrawing it: a quarter of the TTL, well under it, so a
    /// target that cannot take over costs less than a crash would.
    pub fn transfer_within(&self) -> Duration {
        self.ttl / 4
    }

    /// The cap of retry backoffs: a TTL, at most 5 s.
    pub(crate) fn backoff_cap(&self) -> Duration {
        self.ttl.min(Duration::from_secs(5))
    }

    /// Bounds a release (and a campaign waited for before it) on shutdown:
    /// a TTL, at most 2 s; the key expires on its own anyway.
    pub(crate) fn release_bound(&self) -> Duration {
        self.ttl.min(Duration::from_secs(2))
    }

    /// How long a new leader waits before writing the history entry of a
    /// predecessor it saw end, where nobody who knew wrote one: its
    /// predecessor's release (the revoke, then its entry) is bounded by
    /// `release_bound`, so by then the holder's own word is in.
    pub(crate) fn history_grace(&self) -> Duration {
        self.release_bound()
    }

    /// The loop is stalled after a TTL without going round.
    pub(crate) fn loop_stall(&self) -> Duration {
        self.ttl
    }

    /// etcd is silent after 1.5 TTL without an answer.
    pub(crate) fn etcd_silence(&self) -> Duration {
        self.ttl + self.ttl / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn every_rule_is_checked_together() {
        assert!(Timing::new(Api::V3, secs(1), None).is_err());
        assert!(Timing::new(Api::V3, Duration::from_millis(2500), None).is_err());
        assert!(Timing::new(Api::V2, Duration::ZERO, None).is_err());
        assert!(Timing::new(Api::V2, secs(1), None).is_ok());
        assert!(Timing::new(Api::V2, MAX_TTL, None).is_ok());
        assert!(Timing::new(Api::V2, MAX_TTL * 2, None).is_err());
        assert!(matches!(
            Timing::new(Api::V2, secs(3), Some(secs(1))),
            Err(ConfigError::MarginTooLarge { .. })
        ));
        let t = Timing::new(Api::V3, secs(2), None).unwrap();
        assert_eq!(t.margin(), Duration::from_millis(50));
    }

    #[test]
    fn the_intervals_keep_their_order() {
        for ttl in [2, 3, 10, 60] {
            let t = Timing::new(Api::V3, secs(ttl), None).unwrap();
            // A renewal retried after a timed-out attempt still lands in time.
            assert!(t.request_timeout() + t.renew_retry(0) < t.ttl() - t.margin());
            assert!(t.renew_retry(20) <= t.renew_interval() / 2);
            assert!(t.margin() < t.renew_interval());
            assert!(t.default_grace() < t.max_grace());
            assert!(t.etcd_silence() > t.poll_patience());
            let sent = Instant::now();
            assert_eq!(t.deadline_after(sent, t.ttl()), sent + t.ttl() - t.margin());
            // etcd may confirm less than asked for: the deadline follows it.
            assert!(t.deadline_after(sent, t.ttl() / 2) < sent + t.ttl() / 2);
        }
    }
}
