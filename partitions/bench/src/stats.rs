//! Summaries of a measurement's samples (min, median, p99, mean, max) and the result line the
//! guest prints for them. Plain `core` code, host-tested.
//!
//! The line format, which `cargo xtask bench` parses (`xtask/src/bench/guest_output.rs`):
//!
//! ```text
//! bench: <name> unit=<unit> n=<samples> min=<v> median=<v> p99=<v> mean=<v> max=<v>
//! bench: <name> unit=<unit> value=<v>
//! bench: info <key>=<value> ...
//! bench: error <name>: <reason>
//! bench: done
//! ```
//!
//! Values are unsigned integers. `median` is the mean of the two middle samples for an even
//! count (rounded down), `p99` the nearest-rank 99th percentile (the smallest sample at least
//! 99 % of the samples are not above), `mean` rounded down.

use core::fmt;

/// What a set of samples looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub n: usize,
    pub min: u64,
    pub median: u64,
    pub p99: u64,
    pub mean: u64,
    pub max: u64,
}

impl Summary {
    /// Summarises `samples` (sorting them in place); `None` if there are none.
    pub fn of(samples: &mut [u64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            // Overflow-free mean of the two middle samples.
            let (a, b) = (samples[n / 2 - 1], samples[n / 2]);
            a / 2 + b / 2 + (a % 2 + b % 2) / 2
        };
        // Nearest rank: ceil(0.99 n), 1-based.
        let rank = (n * 99).div_ceil(100).max(1);
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        Some(Summary {
            n,
            min: samples[0],
            median,
            p99: samples[rank - 1],
            mean: (sum / n as u128) as u64,
            max: samples[n - 1],
        })
    }
}

/// A measurement's result line: `bench: <name> unit=<unit> n=.. min=.. median=.. p99=.. mean=..
/// max=..`.
pub struct DistributionLine<'a> {
    pub name: &'a str,
    pub unit: &'a str,
    pub summary: Summary,
}

impl fmt::Display for DistributionLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        write!(
            f,
            "bench: {} unit={} n={} min={} median={} p99={} mean={} max={}",
            self.name, self.unit, s.n, s.min, s.median, s.p99, s.mean, s.max
        )
    }
}

/// A single-value result line: `bench: <name> unit=<unit> value=<v>`.
pub struct ValueLine<'a> {
    pub name: &'a str,
    pub unit: &'a str,
    pub value: u64,
}

impl fmt::Display for ValueLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bench: {} unit={} value={}",
            self.name, self.unit, self.value
        )
    }
}

/// Counter ticks to nanoseconds at `frequency` Hz (saturating).
pub fn ticks_to_ns(ticks: u64, frequency: u64) -> u64 {
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(frequency.max(1));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Nanoseconds to counter ticks at `frequency` Hz (rounded down, saturating).
pub fn ns_to_ticks(ns: u64, frequency: u64) -> u64 {
    let ticks = u128::from(ns) * u128::from(frequency) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_and_even_counts() {
        let s = Summary::of(&mut [5, 1, 3]).unwrap();
        assert_eq!((s.n, s.min, s.median, s.max, s.mean), (3, 1, 3, 5, 3));
        let s = Summary::of(&mut [4, 1, 2, 3]).unwrap();
        assert_eq!((s.median, s.mean), (2, 2)); // (2 + 3) / 2 rounded down, 10 / 4
        let s = Summary::of(&mut [u64::MAX, u64::MAX]).unwrap();
        assert_eq!((s.median, s.mean), (u64::MAX, u64::MAX));
        assert_eq!(Summary::of(&mut []), None);
    }

    #[test]
    fn p99_is_the_nearest_rank() {
        // 1..=1000: rank 990.
        let mut samples: Vec<u64> = (1..=1000).rev().collect();
        let s = Summary::of(&mut samples).unwrap();
        assert_eq!((s.min, s.median, s.p99, s.max), (1, 500, 990, 1000));
        // 1..=10: ceil(9.9) = 10, the maximum.
        let mut samples: Vec<u64> = (1..=10).collect();
        assert_eq!(Summary::of(&mut samples).unwrap().p99, 10);
        // A single sample is every percentile.
        assert_eq!(Summary::of(&mut [7]).unwrap().p99, 7);
    }

    #[test]
    fn lines() {
        let summary = Summary::of(&mut [96, 112, 96]).unwrap();
        let line = DistributionLine {
            name: "timer-poll",
            unit: "ns",
            summary,
        };
        assert_eq!(
            line.to_string(),
            "bench: timer-poll unit=ns n=3 min=96 median=96 p99=112 mean=101 max=112"
        );
        let line = ValueLine {
            name: "boot-first-instruction",
            unit: "ns",
            value: 733_488,
        };
        assert_eq!(
            line.to_string(),
            "bench: boot-first-instruction unit=ns value=733488"
        );
    }

    #[test]
    fn conversions() {
        assert_eq!(ticks_to_ns(6, 62_500_000), 96);
        assert_eq!(ns_to_ticks(96, 62_500_000), 6);
        assert_eq!(ticks_to_ns(1, 1_000_000_000), 1);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        assert_eq!(ticks_to_ns(5, 0), 5_000_000_000);
    }
}
