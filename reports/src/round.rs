//! Rounding of floats before they reach JSON.
//!
//! Every float in `report.json` goes through one of these, so that tiny floating-point noise
//! cannot change the bytes, and so that the output stays readable. Rounding is done through
//! Rust's exact decimal formatting, which is deterministic on every platform.

/// Rounds `x` to `decimals` digits after the point; non-finite values become `0.0`.
pub fn decimals(x: f64, decimals: usize) -> f64 {
    if !x.is_finite() {
        return 0.0;
    }
    let r: f64 = format!("{x:.decimals$}").parse().unwrap_or(0.0);
    // Normalise -0.0 so that it prints as 0.0.
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// Rounds `x` to `digits` significant digits (at least 1); non-finite values become `0.0`.
///
/// Used for ratios and probabilities, whose interesting values can be very small.
pub fn significant(x: f64, digits: usize) -> f64 {
    if !x.is_finite() {
        return 0.0;
    }
    let prec = digits.max(1) - 1;
    let r: f64 = format!("{x:.prec$e}").parse().unwrap_or(0.0);
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// A duration in milliseconds, rounded to 3 decimals (microsecond resolution).
pub fn ms(x: f64) -> f64 {
    decimals(x, 3)
}

/// A ratio, probability or mean level, rounded to 6 significant digits.
pub fn ratio(x: f64) -> f64 {
    significant(x, 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_decimals() {
        assert_eq!(decimals(12.34567, 3), 12.346);
        assert_eq!(decimals(-0.0001, 3), 0.0);
        assert!(decimals(-0.0001, 3).is_sign_positive());
        assert_eq!(decimals(f64::NAN, 3), 0.0);
        assert_eq!(decimals(f64::INFINITY, 3), 0.0);
        assert_eq!(ms(1.0005), 1.0); // 1.0005 is stored as 1.000499999…
    }

    #[test]
    fn rounds_to_significant_digits() {
        assert_eq!(significant(0.123456789, 6), 0.123457);
        assert_eq!(significant(1.234567e-7, 3), 1.23e-7);
        assert_eq!(significant(98765.4321, 2), 99000.0);
        assert_eq!(significant(0.0, 6), 0.0);
        assert_eq!(ratio(1.0 / 3.0), 0.333333);
    }
}
