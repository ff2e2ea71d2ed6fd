//! Statistics over a figure's rounds: each round of a benchmark gives one value per figure (the
//! guest already summarised its thousands of samples into min/median/p99 for that round); the
//! figure reported is the median over the rounds, and the run-to-run spread is their range.

/// The median of `values` (the mean of the middle two for an even count); `None` if empty or if
/// any value is not a number.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// The smallest and largest of `values`; `None` if empty.
pub fn range(values: &[f64]) -> Option<(f64, f64)> {
    let min = values.iter().copied().reduce(f64::min)?;
    let max = values.iter().copied().reduce(f64::max)?;
    Some((min, max))
}

/// The spread of `values` around their median, as a fraction of it: (max − min) / median.
/// `None` if empty or the median is 0.
pub fn relative_spread(values: &[f64]) -> Option<f64> {
    let median = median(values)?;
    let (min, max) = range(values)?;
    (median != 0.0).then(|| (max - min) / median.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn ranges_and_spreads() {
        assert_eq!(range(&[2.0, 5.0, 1.0]), Some((1.0, 5.0)));
        assert_eq!(range(&[]), None);
        assert_eq!(relative_spread(&[90.0, 100.0, 110.0]), Some(0.2));
        assert_eq!(relative_spread(&[0.0, 0.0]), None);
        assert_eq!(relative_spread(&[4.0]), Some(0.0));
    }
}
