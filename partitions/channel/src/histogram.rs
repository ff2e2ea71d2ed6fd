//! A latency histogram without allocation: log-linear buckets (16 per power of two, exact below
//! 32), so quantiles are within about 3% of the true value, in 4 KiB.

/// Sub-buckets per power of two (as a shift).
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Buckets: exact values 0..16, then 16 per power of two up to 2^63.
const BUCKETS: usize = SUB + (64 - SUB_BITS as usize) * SUB;

/// Counts of recorded values.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: [u32; BUCKETS],
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let mantissa = ((v >> shift) as usize) & (SUB - 1);
    SUB + shift as usize * SUB + mantissa
}

/// The middle of bucket `i`'s range.
fn value(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let shift = ((i - SUB) / SUB) as u32;
    let mantissa = ((i - SUB) % SUB) as u64;
    ((SUB as u64 + mantissa) << shift) + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// An empty histogram.
    pub const fn new() -> Self {
        Self {
            counts: [0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    /// Records one value.
    pub fn record(&mut self, v: u64) {
        let b = &mut self.counts[bucket(v)];
        *b = b.saturating_add(1);
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded (exact).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The `q`-quantile (0.5: median, 0.99: p99), or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64) as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(value(i).min(self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_a_few_percent() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let close = |got: u64, want: u64| (got as f64 - want as f64).abs() / want as f64 <= 0.035;
        assert!(
            close(h.quantile(0.5).unwrap(), 5000),
            "{:?}",
            h.quantile(0.5)
        );
        assert!(
            close(h.quantile(0.99).unwrap(), 9900),
            "{:?}",
            h.quantile(0.99)
        );
        assert_eq!(h.max(), 10_000);
        assert_eq!(h.count(), 10_000);
        let mut small = Histogram::new();
        for v in [3, 3, 3, 7] {
            small.record(v);
        }
        assert_eq!(small.quantile(0.5), Some(3));
        assert_eq!(small.quantile(1.0), Some(7));
        let mut huge = Histogram::new();
        huge.record(u64::MAX);
        assert!(huge.quantile(0.5).unwrap() >= u64::MAX / 32 * 31);
        for v in [0u64, 1, 15, 16, 17, 31, 32, 33, 1 << 20, u64::MAX] {
            assert!(bucket(v) < BUCKETS);
            assert!(value(bucket(v)) <= v.saturating_add(v / 16), "{v}");
        }
    }
}
