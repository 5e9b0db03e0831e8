//! Confidence intervals across seeds.

/// Two-sided 95% quantiles of Student's t for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706_205, 4.302_653, 3.182_446, 2.776_445, 2.570_582, 2.446_912, 2.364_624, 2.306_004,
    2.262_157, 2.228_139, 2.200_985, 2.178_813, 2.160_369, 2.144_787, 2.131_450, 2.119_905,
    2.109_816, 2.100_922, 2.093_024, 2.085_963, 2.079_614, 2.073_873, 2.068_658, 2.063_899,
    2.059_539, 2.055_529, 2.051_831, 2.048_407, 2.045_230, 2.042_272,
];

/// The normal quantile for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The two-sided 95% quantile of Student's t with `df` degrees of freedom (`df >= 1`):
/// a table up to 30, then the Cornish–Fisher expansion around the normal quantile (error
/// below 1e-5), tending to 1.96.
pub fn t95(df: usize) -> f64 {
    student_t(&T95, Z95, df)
}

/// Student's t quantile from `table` (1..=30 degrees of freedom), then the Cornish–Fisher
/// expansion around the normal quantile `z` (error below 1e-5), tending to `z`.
fn student_t(table: &[f64; 30], z: f64, df: usize) -> f64 {
    match df {
        0 => f64::INFINITY,
        1..=30 => table[df - 1],
        _ => {
            let n = df as f64;
            let g1 = (z.powi(3) + z) / 4.0;
            let g2 = (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / 96.0;
            let g3 = (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / 384.0;
            z + g1 / n + g2 / (n * n) + g3 / (n * n * n)
        }
    }
}

/// Two-sided 99% quantiles of Student's t for 1..=30 degrees of freedom.
const T99: [f64; 30] = [
    63.656_741, 9.924_843, 5.840_909, 4.604_095, 4.032_143, 3.707_428, 3.499_483, 3.355_387,
    3.249_836, 3.169_273, 3.105_807, 3.054_540, 3.012_276, 2.976_843, 2.946_713, 2.920_782,
    2.898_231, 2.878_440, 2.860_935, 2.845_340, 2.831_360, 2.818_756, 2.807_336, 2.796_940,
    2.787_436, 2.778_715, 2.770_683, 2.763_262, 2.756_386, 2.749_996,
];

/// The normal quantile for a two-sided 99% interval.
pub const Z99: f64 = 2.575_829_303_548_901;

/// The two-sided 99% quantile of Student's t with `df` degrees of freedom, as [`t95`] is
/// computed (`calibrate`'s intervals).
pub fn t99(df: usize) -> f64 {
    student_t(&T99, Z99, df)
}

/// The mean of `xs` and its Student-t 95% confidence interval: `(mean, lo, hi)`.
///
/// Uses the sample standard deviation (n − 1). One value gives `(x, x, x)`; no values give
/// `(0, 0, 0)`. Sums run in slice order, so the result is deterministic.
pub fn mean_ci95(xs: &[f64]) -> (f64, f64, f64) {
    let n = xs.len();
    match n {
        0 => return (0.0, 0.0, 0.0),
        1 => return (xs[0], xs[0], xs[0]),
        _ => {}
    }
    let nf = n as f64;
    let mean = xs.iter().sum::<f64>() / nf;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (nf - 1.0);
    let half = t95(n - 1) * (var / nf).sqrt();
    (mean, mean - half, mean + half)
}

/// The normal-approximation 95% interval of a binomial proportion `successes / trials`,
/// `p ± 1.96·√(p(1−p)/n)`, clipped to [0, 1]: `(p, lo, hi)`. No trials give `(0, 0, 0)`.
///
/// Used for the exhaustion ratio of a single seed, where there is no spread across seeds to
/// measure (it is narrower than the run-to-run spread; see docs/queueing.md).
pub fn binomial_ci95(successes: u64, trials: u64) -> (f64, f64, f64) {
    if trials == 0 {
        return (0.0, 0.0, 0.0);
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let half = Z95 * (p * (1.0 - p) / n).sqrt();
    (p, (p - half).max(0.0), (p + half).min(1.0))
}

/// Wilson's 95% score interval of a proportion `successes / trials`: `(p, lo, hi)`, inside
/// [0, 1] and not degenerate at 0 or `trials` of `trials` (for a fraction of a few seeds, where
/// the normal approximation collapses). No trials give `(0, 0, 1)`.
pub fn wilson_ci95(successes: u64, trials: u64) -> (f64, f64, f64) {
    if trials == 0 {
        return (0.0, 0.0, 1.0);
    }
    let n = trials as f64;
    let p = successes.min(trials) as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    (p, (centre - half).max(0.0), (centre + half).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_of_known_data() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sample variance 32/7, t(7) = 2.364624.
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let (m, lo, hi) = mean_ci95(&xs);
        let half = 2.364_624 * (32.0f64 / 7.0 / 8.0).sqrt(); // = 1.78748…
        assert!((m - 5.0).abs() < 1e-12);
        assert!((lo - (5.0 - half)).abs() < 1e-9, "{lo}");
        assert!((hi - (5.0 + half)).abs() < 1e-9, "{hi}");
        assert!((half - 1.787_485).abs() < 1e-5, "{half}");
    }

    #[test]
    fn ci_of_two_values() {
        // 1 and 3: mean 2, s = √2, half = 12.706205 · √2 / √2 = 12.706205.
        let (m, lo, hi) = mean_ci95(&[1.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((hi - m - 12.706_205).abs() < 1e-9);
        assert!((m - lo - 12.706_205).abs() < 1e-9);
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(mean_ci95(&[]), (0.0, 0.0, 0.0));
        assert_eq!(mean_ci95(&[0.25]), (0.25, 0.25, 0.25));
        assert_eq!(mean_ci95(&[0.5, 0.5, 0.5]), (0.5, 0.5, 0.5));
    }

    #[test]
    fn t_quantiles() {
        assert!((t95(30) - 2.042_272).abs() < 1e-6);
        // Published values: t(40) = 2.021075, t(60) = 2.000298, t(120) = 1.979930.
        assert!((t95(31) - 2.039_513).abs() < 2e-5, "{}", t95(31));
        assert!((t95(40) - 2.021_075).abs() < 1e-5, "{}", t95(40));
        assert!((t95(60) - 2.000_298).abs() < 1e-5, "{}", t95(60));
        assert!((t95(120) - 1.979_930).abs() < 1e-5, "{}", t95(120));
        assert!((t95(1_000_000) - Z95).abs() < 1e-5);
        for df in 1..200 {
            assert!(t95(df) > t95(df + 1), "t95 must decrease at {df}");
        }
    }

    #[test]
    fn wilson_interval() {
        // 0 of 5: [0, 0.4345]; 5 of 5: [0.5655, 1]; 2 of 10: [0.0567, 0.5098] (published).
        let (p, lo, hi) = wilson_ci95(0, 5);
        assert_eq!((p, lo), (0.0, 0.0));
        assert!((hi - 0.434_5).abs() < 1e-4, "{hi}");
        let (_, lo, hi) = wilson_ci95(5, 5);
        assert!(
            (lo - 0.565_5).abs() < 1e-4 && (hi - 1.0).abs() < 1e-12,
            "{lo} {hi}"
        );
        let (_, lo, hi) = wilson_ci95(2, 10);
        assert!(
            (lo - 0.056_7).abs() < 1e-4 && (hi - 0.509_8).abs() < 1e-4,
            "{lo} {hi}"
        );
        assert_eq!(wilson_ci95(0, 0), (0.0, 0.0, 1.0));
    }

    #[test]
    fn binomial_interval() {
        // p = 0.1, n = 10_000: half = 1.96 · 0.003 = 0.00588.
        let (p, lo, hi) = binomial_ci95(1_000, 10_000);
        assert!((p - 0.1).abs() < 1e-12);
        assert!((lo - (0.1 - Z95 * 0.003)).abs() < 1e-12);
        assert!((hi - (0.1 + Z95 * 0.003)).abs() < 1e-12);
        assert_eq!(binomial_ci95(0, 100), (0.0, 0.0, 0.0));
        assert_eq!(binomial_ci95(100, 100), (1.0, 1.0, 1.0));
        assert_eq!(binomial_ci95(0, 0), (0.0, 0.0, 0.0));
        let (_, lo, _) = binomial_ci95(1, 10);
        assert!(lo >= 0.0);
    }
}
