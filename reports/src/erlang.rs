//! Erlang's formulas for a pool of `c` workers offered `a` erlangs (docs/queueing.md).

/// Erlang B: the probability that an arrival finds all `c` workers busy in an M/G/c/c loss
/// system offered `a = λ·E[S]` erlangs (insensitive to the service-time distribution).
///
/// Computed by the stable recursion B₀ = 1, B_k = a·B_{k−1} / (k + a·B_{k−1}), O(c).
/// `c = 0` gives 1 (every arrival is blocked); `a <= 0` with `c >= 1` gives 0.
pub fn erlang_b(c: u32, a: f64) -> f64 {
    if c == 0 {
        return 1.0;
    }
    if a <= 0.0 {
        return 0.0;
    }
    let mut b = 1.0;
    for k in 1..=c {
        let ab = a * b;
        b = ab / (f64::from(k) + ab);
    }
    b
}

/// The measured arrival rate Erlang B is computed at: `arrivals` over `seeds` seeds of a
/// measured load phase of `load_s` simulated seconds, per second (0 without either). Measured,
/// not configured: a sweep's rows share their seeds, so a configured rate would carry the same
/// luck of the arrival counts into every row and flag them together; `run` uses it too.
pub fn measured_rate(arrivals: u64, seeds: usize, load_s: f64) -> f64 {
    if seeds == 0 || load_s <= 0.0 {
        return 0.0;
    }
    arrivals as f64 / seeds as f64 / load_s
}

/// Erlang C: the probability that an arrival has to wait in an M/M/c queue offered `a`
/// erlangs, `C = B / (1 − ρ + ρ·B)` with `ρ = a / c`. An unstable queue (`a >= c`) gives 1.
pub fn erlang_c(c: u32, a: f64) -> f64 {
    if c == 0 || a >= f64::from(c) {
        return 1.0;
    }
    if a <= 0.0 {
        return 0.0;
    }
    let rho = a / f64::from(c);
    let b = erlang_b(c, a);
    b / (1.0 - rho + rho * b)
}

/// The mean wait in queue (seconds) of an M/M/c queue offered `a` erlangs with mean service
/// time `mean_service_s`: `Wq = E[S]·C / (c·(1 − ρ))`. An unstable queue gives infinity.
pub fn erlang_c_wait(c: u32, a: f64, mean_service_s: f64) -> f64 {
    if c == 0 || a >= f64::from(c) {
        return f64::INFINITY;
    }
    let rho = a / f64::from(c);
    mean_service_s * erlang_c(c, a) / (f64::from(c) * (1.0 - rho))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// E_B by the textbook sum (A^c/c!) / Σ A^k/k!, for small c.
    fn erlang_b_direct(c: u32, a: f64) -> f64 {
        let mut term = 1.0; // a^k / k!
        let mut sum = 1.0;
        for k in 1..=c {
            term *= a / f64::from(k);
            sum += term;
        }
        term / sum
    }

    #[test]
    fn erlang_b_published_values() {
        assert!(
            (erlang_b(5, 5.0) - 0.284_868).abs() < 5e-7,
            "{}",
            erlang_b(5, 5.0)
        );
        assert!(
            (erlang_b(6, 5.0) - 0.191_847).abs() < 5e-7,
            "{}",
            erlang_b(6, 5.0)
        );
        // 15 workers carry 8.108 erlangs at 1% blocking.
        assert!(
            (erlang_b(15, 8.108) - 0.01).abs() < 5e-5,
            "{}",
            erlang_b(15, 8.108)
        );
        assert!(erlang_b(15, 8.2) > 0.01 && erlang_b(15, 8.0) < 0.01);
    }

    #[test]
    fn erlang_b_matches_direct_sum_and_edges() {
        for c in [1, 2, 3, 7, 10, 20] {
            for a in [0.1, 1.0, 4.5, 10.0, 30.0] {
                let (r, d) = (erlang_b(c, a), erlang_b_direct(c, a));
                assert!(
                    (r - d).abs() < 1e-12 * d.max(1.0),
                    "c={c} a={a}: {r} vs {d}"
                );
            }
        }
        assert_eq!(erlang_b(1, 1.0), 0.5); // a / (1 + a)
        assert_eq!(erlang_b(0, 3.0), 1.0);
        assert_eq!(erlang_b(4, 0.0), 0.0);
        // Large pools stay finite and sensible.
        let big = erlang_b(10_000, 9_000.0);
        assert!(big > 0.0 && big < 0.2, "{big}");
    }

    #[test]
    fn erlang_c_identities() {
        for c in [1u32, 2, 5, 10, 15] {
            for frac in [0.1, 0.5, 0.8, 0.95] {
                let a = frac * f64::from(c);
                let cf = f64::from(c);
                let b = erlang_b(c, a);
                let ec = erlang_c(c, a);
                // The same quantity written as c·B / (c − a·(1 − B)).
                let alt = cf * b / (cf - a * (1.0 - b));
                assert!((ec - alt).abs() < 1e-12, "c={c} a={a}: {ec} vs {alt}");
                // And by its definition: (A^c/c!)·c/(c−A) / (Σ_{k<c} A^k/k! + (A^c/c!)·c/(c−A)).
                let mut term = 1.0;
                let mut below = 0.0;
                for k in 0..c {
                    if k > 0 {
                        term *= a / f64::from(k);
                    }
                    below += term;
                }
                let top = term * a / cf * cf / (cf - a);
                let def = top / (below + top);
                assert!((ec - def).abs() < 1e-12, "c={c} a={a}: {ec} vs {def}");
                // Waiting is more likely than blocking.
                assert!(ec >= b);
            }
        }
        // M/M/1: C = ρ, Wq = ρ·E[S]/(1−ρ).
        assert!((erlang_c(1, 0.6) - 0.6).abs() < 1e-12);
        assert!((erlang_c_wait(1, 0.6, 2.0) - 0.6 * 2.0 / 0.4).abs() < 1e-12);
        assert_eq!(erlang_c(3, 3.0), 1.0);
        assert_eq!(erlang_c_wait(3, 3.5, 1.0), f64::INFINITY);
        assert_eq!(erlang_c(3, 0.0), 0.0);
        assert_eq!(erlang_c_wait(3, 0.0, 1.0), 0.0);
    }
}
