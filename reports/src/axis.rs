//! Tick choice of the plots' axes, in one place: round steps of time (1 s, 2 s, 5 s, 10 s,
//! 15 s, 30 s, 1m, 2m, 5m, …) for every time axis, and decades for the logarithmic ratio axis.
//!
//! plotters picks decimal steps on its own (500 s ticks read as "8m 20s"); the time plots bind
//! these ticks to their axis instead (`with_key_points`), so every page labels time alike.

/// Time steps a time axis may use, in seconds: 1-2-5 below a second, then the steps a clock
/// reads naturally.
const TIME_STEPS_S: [f64; 28] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 900.0, 1_800.0, 3_600.0, 7_200.0, 10_800.0, 21_600.0, 43_200.0, 86_400.0,
    172_800.0,
];

/// Ticks on a time axis from 0 to `t_end_s` seconds: multiples of the smallest round step
/// (see [`TIME_STEPS_S`]) that gives at most `max_ticks` ticks, from 0 up to `t_end_s`.
/// Past the largest step, whole multiples of days.
pub fn time_ticks(t_end_s: f64, max_ticks: usize) -> Vec<f64> {
    let end = if t_end_s.is_finite() && t_end_s > 0.0 {
        t_end_s
    } else {
        1.0
    };
    let max_ticks = max_ticks.max(2) as f64;
    let step = TIME_STEPS_S
        .iter()
        .copied()
        .find(|s| end / s + 1.0 <= max_ticks)
        .unwrap_or_else(|| (end / 86_400.0 / (max_ticks - 1.0)).ceil() * 86_400.0);
    let n = (end / step + 1e-9).floor() as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

/// A time tick's label: `0`, `500 ms`, `10 s`, `1m`, `1m 30s`, `2h`.
pub fn time_label(s: f64) -> String {
    if s == 0.0 {
        "0".to_string()
    } else if s < 1.0 {
        format!("{} ms", trim(s * 1000.0))
    } else if s < 60.0 {
        format!("{} s", trim(s))
    } else {
        crate::human::secs(s)
    }
}

/// A number without trailing zeros (ticks are round: at most 3 decimals matter).
fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The range and ticks of a logarithmic ratio axis holding `values` (ratios in `0..=1`; zeros
/// and non-finite values ignored): from the decade at or below the smallest positive value
/// (at most six decades under the top, `1e-4` when no value is positive) to the decade at or
/// above the largest (at most 1). Returns `(floor, top, ticks)`: over two decades or fewer the
/// ticks are 1-2-5 of each decade, else the decades alone.
pub fn log_ratio_axis(values: impl IntoIterator<Item = f64>) -> (f64, f64, Vec<f64>) {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values {
        if v.is_finite() && v > 0.0 {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        (lo, hi) = (1e-4, 1e-3);
    }
    let top = 10f64.powf(hi.log10().ceil()).min(1.0);
    let floor = 10f64.powf(lo.log10().floor()).max(top * 1e-6);
    let floor = if floor >= top { top / 10.0 } else { floor };
    let decades = (top / floor).log10().round() as i32;
    let first = floor.log10().round() as i32;
    let mut ticks = Vec::new();
    for k in first..=first + decades {
        let d = 10f64.powi(k);
        let steps: &[f64] = if decades <= 2 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        for m in steps {
            let t = m * d;
            if t <= top * (1.0 + 1e-9) {
                ticks.push(t);
            }
        }
    }
    (floor, top, ticks)
}

/// A ratio tick's label as a percentage: `100%`, `5%`, `0.1%`, `0.0001%`.
pub fn ratio_label(r: f64) -> String {
    let p = r * 100.0;
    let s = format!("{p:.6}");
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ticks_are_round() {
        // 30 minutes: 5-minute steps (plotters' own choice was 3m 20s).
        let t = time_ticks(1_800.0, 10);
        assert_eq!(t.len(), 7);
        assert_eq!(t[1], 300.0);
        let labels: Vec<String> = t.iter().map(|&s| time_label(s)).collect();
        assert_eq!(labels[..3], ["0", "5m", "10m"]);
        assert_eq!(labels[6], "30m");
        // 8 minutes: 1-minute steps; 7 hours: 1 hour; 42 s: 5 s; 0.8 s: 100 ms.
        assert_eq!(time_ticks(480.0, 10)[1], 60.0);
        assert_eq!(time_ticks(7.0 * 3_600.0, 10)[1], 3_600.0);
        assert_eq!(time_ticks(42.0, 10)[1], 5.0);
        assert_eq!(time_label(time_ticks(0.8, 10)[1]), "100 ms");
        assert_eq!(time_label(90.0), "1m 30s");
        assert_eq!(time_label(15.0), "15 s");
        // Every step is one of the round steps, whatever the length.
        for end in [1.0, 59.0, 61.0, 599.0, 1_000.0, 5_000.0, 25_200.0, 90_000.0] {
            let t = time_ticks(end, 10);
            assert!(t.len() <= 10 && t.len() >= 2, "{end}: {t:?}");
            assert!(TIME_STEPS_S.contains(&t[1]), "{end}: step {}", t[1]);
            assert!(*t.last().unwrap() <= end);
        }
        assert_eq!(time_ticks(f64::NAN, 10), time_ticks(1.0, 10));
    }

    #[test]
    fn log_axis_spans_the_values_and_the_slo() {
        // A 1% SLO and measurements from 0.2% to 13%: 0.1% .. 100%, decades only.
        let (floor, top, ticks) = log_ratio_axis([0.002, 0.13, 0.01, 0.0]);
        assert_eq!((floor, top), (1e-3, 1.0));
        let labels: Vec<String> = ticks.iter().map(|&t| ratio_label(t)).collect();
        assert_eq!(labels, ["0.1%", "1%", "10%", "100%"]);
        // Two decades or fewer: 1-2-5 ticks.
        let (_, _, ticks) = log_ratio_axis([0.03, 0.05]);
        let labels: Vec<String> = ticks.iter().map(|&t| ratio_label(t)).collect();
        assert_eq!(labels, ["1%", "2%", "5%", "10%"]);
        // Nothing positive: a default decade; a tiny value is cut at six decades.
        assert_eq!(log_ratio_axis([0.0]).0, 1e-4);
        assert!((log_ratio_axis([1e-12, 0.5]).0 - 1e-6).abs() < 1e-18);
    }
}
