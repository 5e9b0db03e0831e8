//! A scenario's clock compressed `x` times (`conductor calibrate --time-scale X`): every
//! duration of the model divided by `x` (the phases, the service times, the timeouts, the
//! backoffs, the network latency, the latency objectives) and every rate multiplied by `x`
//! (arrivals per second, retries per second), so that a one-hour scenario runs in a minute with
//! the same offered load in erlangs, the same queueing and the same ratios. Done on the file's
//! tree after the `--set` overrides, then validated as any scenario: the simulator and the real
//! hosts read the same scaled file.
//!
//! What a number alone cannot say is refused rather than guessed: recorded traces and
//! empirical service times (samples and histograms hold times in files or bare numbers), and
//! `[target]`, whose durations are the load generator's own (its lateness threshold), is kept.

use crate::error::ScenarioError;
use crate::parse;
use std::path::Path;
use std::time::Duration;
use toml::{Table, Value};

/// Keys whose numbers are per second, in the tables where they are rates.
const RATE_KEYS: &[&str] = &["rate", "burst_rate", "from", "to", "min_per_s"];

/// Tables whose `rate`-named keys are rates (elsewhere `rate` is a probability: `faults.rate`).
const RATE_TABLES: &[&str] = &[
    "workload.arrival",
    "workload.ops_arrival",
    "workload.arrival.phases",
    "workload.ops_arrival.phases",
    "retry.budget",
    "client.retry.budget",
];

/// Tables left alone: the load generator's own settings, and the simulator's.
const KEPT: &[&str] = &["target", "simulation"];

/// The largest compression: beyond it a scenario's milliseconds become sub-microsecond.
pub const MAX_TIME_SCALE: f64 = 10_000.0;

/// `x` as a time scale, or why not: finite, > 0 and at most [`MAX_TIME_SCALE`].
///
/// # Errors
/// A message naming what was expected.
pub fn check_time_scale(x: f64) -> Result<f64, String> {
    if x.is_finite() && x > 0.0 && x <= MAX_TIME_SCALE {
        Ok(x)
    } else {
        Err(format!(
            "the time scale must be a finite number above 0 and at most {MAX_TIME_SCALE}, got {x}"
        ))
    }
}

/// The scenario at `path` with the overrides `sets` applied, its clock compressed `x` times,
/// as TOML text that validates (checked here).
///
/// # Errors
/// As [`crate::load`]; [`ScenarioError::Invalid`] for a bad `x` or a key that cannot be
/// scaled (a trace, empirical service times).
pub fn time_scaled(path: &Path, sets: &[String], x: f64) -> Result<String, ScenarioError> {
    let origin = path.display().to_string();
    let invalid = |key: &str, message: String| ScenarioError::Invalid {
        origin: origin.clone(),
        key: key.to_string(),
        message,
    };
    check_time_scale(x).map_err(|m| invalid("--time-scale", m))?;
    // Validated first, so that every message about the file is the parser's own; then the
    // whole scenario echoed back with every default filled in, so that the defaults' durations
    // (leases, reconcile intervals, timeouts, the network) are scaled as the file's are.
    let scn = crate::load(path, sets)?;
    let echoed = toml::to_string(&scn).map_err(|e| invalid("", format!("cannot echo: {e}")))?;
    let mut root = parse::toml_table(&echoed, &origin)?;
    scale_table(&mut root, "", x).map_err(|(key, m)| invalid(&key, m))?;
    let text = toml::to_string(&root).map_err(|e| invalid("", format!("cannot write: {e}")))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::parse_supported(&text, &origin, &[], Some(base))?;
    Ok(text)
}

/// Scenario text `text` (as [`time_scaled`] writes it) with every `[backend]` service time
/// multiplied by `factor`: `calibrate --real-slowdown`, hosts deliberately unlike the model.
///
/// # Errors
/// A message when `text` is not TOML or `factor` is not a finite number above 0.
pub fn slowed_backend(text: &str, factor: f64) -> Result<String, String> {
    if !(factor.is_finite() && factor > 0.0) {
        return Err(format!(
            "the slowdown must be a finite number above 0, got {factor}"
        ));
    }
    let mut root: Table = text.parse().map_err(|e| format!("{e}"))?;
    if let Some(Value::Table(b)) = root.get_mut("backend") {
        scale_table(b, "backend", 1.0 / factor).map_err(|(k, m)| format!("{k}: {m}"))?;
    }
    toml::to_string(&root).map_err(|e| e.to_string())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn scale_table(t: &mut Table, path: &str, x: f64) -> Result<(), (String, String)> {
    for (k, v) in t.iter_mut() {
        let key = join(path, k);
        if path.is_empty() && KEPT.contains(&k.as_str()) {
            continue;
        }
        if k == "kind" && v.as_str() == Some("trace") {
            return Err((
                key,
                "a recorded trace's arrival times cannot be time-scaled; use a rate process".into(),
            ));
        }
        if k == "dist" && v.as_str() == Some("empirical") {
            return Err((
                key,
                "empirical service times (samples, histograms) cannot be time-scaled; use exp, \
                 constant, uniform or lognormal"
                    .into(),
            ));
        }
        scale_value(v, &key, k, path, x)?;
    }
    Ok(())
}

fn scale_value(
    v: &mut Value,
    key: &str,
    k: &str,
    table: &str,
    x: f64,
) -> Result<(), (String, String)> {
    match v {
        Value::Table(t) => scale_table(t, key, x),
        Value::Array(a) => {
            for item in a.iter_mut() {
                scale_value(item, key, k, table, x)?;
            }
            Ok(())
        }
        Value::String(s) => {
            if let Ok(d) = humantime::parse_duration(s.trim()) {
                *s = format_us(d, x);
            }
            Ok(())
        }
        Value::Float(f) if is_rate(table, k) => {
            *f *= x;
            Ok(())
        }
        Value::Integer(i) if is_rate(table, k) => {
            *v = Value::Float(*i as f64 * x);
            Ok(())
        }
        _ => Ok(()),
    }
}

fn is_rate(table: &str, k: &str) -> bool {
    RATE_KEYS.contains(&k) && RATE_TABLES.contains(&table)
}

/// `d / x` as whole microseconds (at least one for a duration above zero), e.g. `16667us`.
fn format_us(d: Duration, x: f64) -> String {
    let us = (d.as_secs_f64() * 1e6 / x).round() as u64;
    let us = if d.is_zero() { 0 } else { us.max(1) };
    format!("{us}us")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("time-scale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn durations_divide_and_rates_multiply() {
        let p = write(
            "s.toml",
            "name = \"s\"\nduration = \"1h\"\nwarmup = \"1m\"\n\
             [workload]\narrival = { kind = \"poisson\", rate = 8.0 }\n\
             [backend]\ndefault = { dist = \"exp\", mean = \"1s\" }\nfailure_rate = 0.5\n\
             [target]\nlate_after = \"10ms\"\n",
        );
        let text = time_scaled(&p, &["cluster.pool_workers=3".into()], 60.0).unwrap();
        let s = crate::parse_str(&text, "t", &[], None).unwrap();
        assert_eq!(s.duration, Duration::from_secs(60));
        assert_eq!(s.warmup, Duration::from_secs(1));
        assert_eq!(s.cluster.pool_workers, 3);
        assert_eq!(s.backend.failure_rate, 0.5, "a probability is not a rate");
        assert_eq!(
            s.target.late_after,
            Duration::from_millis(10),
            "[target] is kept"
        );
        assert!(text.contains("rate = 480.0"), "{text}");
        assert!(text.contains("mean = \"16667us\""), "{text}");
        // Defaults are scaled too: the lease (10 s) and the network's latency (1–10 ms).
        assert_eq!(s.cluster.lease_ttl, Duration::from_micros(166_667));
        assert_eq!(s.network.latency_max, Duration::from_micros(167));
        assert!((s.expected_ops() - 8.0 * 3600.0).abs() < 1.0);
    }

    #[test]
    fn bad_scales_and_unscalable_keys_are_refused() {
        let p = write("b.toml", "name = \"b\"\n");
        for x in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e9] {
            let e = time_scaled(&p, &[], x).unwrap_err().to_string();
            assert!(e.contains("time scale"), "{x}: {e}");
        }
        let p = write(
            "e.toml",
            "name = \"e\"\n[backend]\ndefault = { dist = \"empirical\", samples = [\"1ms\"] }\n",
        );
        let e = time_scaled(&p, &[], 2.0).unwrap_err().to_string();
        assert!(
            e.contains("backend.default.dist") && e.contains("empirical"),
            "{e}"
        );
    }
}
