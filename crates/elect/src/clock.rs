//! One clock for every process of a host.
//!
//! Deadlines are kept as [`tokio::time::Instant`] so the state machine can be
//! tested with paused time; journals and the `--exec` watchdog need a number
//! another process can compare, so they use `CLOCK_MONOTONIC` nanoseconds.
//! On Linux both read the same clock, which is what makes the conversion exact.

use std::sync::OnceLock;

use rustix::time::{ClockId, clock_gettime};
use tokio::time::Instant;

/// `CLOCK_MONOTONIC` now, in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let ts = clock_gettime(ClockId::Monotonic);
    // The monotonic clock counts from boot: never negative, and u64 nanoseconds last 584 years.
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// The `CLOCK_MONOTONIC` reading (ns) that corresponds to `at`.
///
/// Every conversion uses one base pair read once, so two conversions of the
/// same instant agree to the nanosecond (a deadline journalled at acquisition
/// and again at step-down must compare equal).
pub fn instant_to_ns(at: Instant) -> u64 {
    static BASE: OnceLock<(std::time::Instant, u64)> = OnceLock::new();
    let &(base, base_ns) = BASE.get_or_init(|| {
        // Bracket the Instant between two readings and take the midpoint.
        let before = monotonic_ns();
        let instant = std::time::Instant::now();
        let after = monotonic_ns();
        (instant, before + (after - before) / 2)
    });
    let at = at.into_std();
    if at >= base {
        base_ns.saturating_add(duration_ns(at - base))
    } else {
        base_ns.saturating_sub(duration_ns(base - at))
    }
}

fn duration_ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn instants_map_onto_the_monotonic_clock() {
        let before = monotonic_ns();
        let mapped = instant_to_ns(Instant::now());
        let after = monotonic_ns();
        assert!(
            before <= mapped && mapped <= after,
            "{before} <= {mapped} <= {after}"
        );
        let later = instant_to_ns(Instant::now() + Duration::from_secs(5));
        assert!(later >= after + 4_900_000_000);
    }
}
