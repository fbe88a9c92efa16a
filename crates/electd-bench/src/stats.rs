//! Summaries of measured samples.

use serde::Serialize;

/// Nanoseconds as milliseconds, the unit of every latency series.
pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Order statistics of one series, in its own unit.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    /// Every sample, for plots and for anyone who wants to redo the numbers.
    pub samples: Vec<f64>,
}

impl Summary {
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Summary {
            n: sorted.len(),
            min: sorted[0],
            median: quantile(&sorted, 0.5),
            p90: quantile(&sorted, 0.9),
            p99: quantile(&sorted, 0.99),
            max: sorted[sorted.len() - 1],
            samples: samples.to_vec(),
        })
    }
}

/// Nearest-rank quantile of sorted samples.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_statistics() {
        let s = Summary::of(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 3.0, 5.0));
        assert_eq!(s.p99, 5.0);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&hundred).unwrap();
        assert_eq!((s.median, s.p99), (50.0, 99.0));
        assert!(Summary::of(&[]).is_none());
    }
}
