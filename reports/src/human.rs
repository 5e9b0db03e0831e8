//! Human-readable numbers and durations for the text summary.

/// An integer with thousands separators: `115234` → `"115,234"`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A large quantity: thousands separators below a million, then `"3.2 M"`, `"1.25 G"`.
pub fn compact(x: f64) -> String {
    if !x.is_finite() || x < 0.0 {
        return format!("{x}");
    }
    if x < 999_950.0 {
        return count(x.round() as u64);
    }
    let (v, unit) = if x < 999_950_000.0 {
        (x / 1e6, "M")
    } else if x < 999_950_000_000.0 {
        (x / 1e9, "G")
    } else {
        (x / 1e12, "T")
    };
    format!("{} {unit}", three_digits(v))
}

/// A duration given in milliseconds, with about three significant digits and a unit that
/// fits: `"0.412 ms"`, `"11.0 ms"`, `"712 ms"`, `"2.30 s"`, `"45.1 s"`, `"2m 05s"`, `"1h 10m"`.
pub fn ms(ms: f64) -> String {
    if !ms.is_finite() {
        return format!("{ms}");
    }
    if ms <= 0.0 {
        return "0 ms".to_string();
    }
    if ms < 999.5 {
        return format!("{} ms", three_digits(ms));
    }
    let s = ms / 1000.0;
    if s < 59.95 {
        return format!("{} s", three_digits(s));
    }
    clock(s)
}

/// A duration given in seconds: below a minute as [`ms`] does, above it as the two largest
/// units, `"1h"`, `"1h 10m"`, `"2m 05s"`, `"3d 4h"`.
pub fn secs(s: f64) -> String {
    if !s.is_finite() || s < 59.95 {
        return ms(s * 1000.0);
    }
    clock(s)
}

/// A percentage of a fraction: `0.1213` → `"12.1%"`.
pub fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// A probability or ratio: `"0"`, `"0.1207"`, or `"3.40e-5"` when small.
pub fn ratio(x: f64) -> String {
    if x == 0.0 {
        "0".to_string()
    } else if x.abs() < 0.000_1 {
        format!("{x:.2e}")
    } else {
        format!("{x:.4}")
    }
}

/// About three significant digits for a value in [0, 1000): 0.412, 4.25, 11.0, 712.
fn three_digits(v: f64) -> String {
    if v < 0.999_5 {
        format!("{v:.3}")
    } else if v < 9.995 {
        format!("{v:.2}")
    } else if v < 99.95 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// Whole seconds as the two largest non-zero units among d, h, m, s.
fn clock(s: f64) -> String {
    let total = s.round() as u64;
    let parts = [
        (total / 86_400, "d"),
        (total % 86_400 / 3_600, "h"),
        (total % 3_600 / 60, "m"),
        (total % 60, "s"),
    ];
    let first = parts.iter().position(|(v, _)| *v > 0).unwrap_or(3);
    let mut out = format!("{}{}", parts[first].0, parts[first].1);
    if let Some((v, unit)) = parts.get(first + 1) {
        if *v > 0 {
            if *unit == "s" || *unit == "m" && parts[first].1 == "h" {
                out.push_str(&format!(" {v:02}{unit}"));
            } else {
                out.push_str(&format!(" {v}{unit}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(115_234), "115,234");
        assert_eq!(count(12_345_678), "12,345,678");
        assert_eq!(compact(245_000.0), "245,000");
        assert_eq!(compact(3_200_000.0), "3.20 M");
        assert_eq!(compact(12_500_000.0), "12.5 M");
        assert_eq!(compact(1_250_000_000.0), "1.25 G");
    }

    #[test]
    fn durations() {
        assert_eq!(ms(0.0), "0 ms");
        assert_eq!(ms(0.412), "0.412 ms");
        assert_eq!(ms(11.0), "11.0 ms");
        assert_eq!(ms(712.4), "712 ms");
        assert_eq!(ms(999.7), "1.00 s");
        assert_eq!(ms(2_300.0), "2.30 s");
        assert_eq!(ms(11_234.0), "11.2 s");
        assert_eq!(ms(125_000.0), "2m 05s");
        assert_eq!(secs(3_600.0), "1h");
        assert_eq!(secs(4_200.0), "1h 10m");
        assert_eq!(secs(3_605.0), "1h");
        assert_eq!(secs(93_600.0), "1d 2h");
        assert_eq!(secs(30.0), "30.0 s");
        assert_eq!(percent(0.1213), "12.1%");
        assert_eq!(ratio(0.120_734), "0.1207");
        assert_eq!(ratio(0.000_034), "3.40e-5");
        assert_eq!(ratio(0.0), "0");
    }
}
