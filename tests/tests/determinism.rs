//! Determinism (docs/outputs.md, "report.json"): the same scenario, seed and binary give the same
//! report bytes, `host` aside; another seed gives another report.
//!
//! Every bundled scenario (`scenarios/*.toml`), shortened to five simulated minutes, runs seeds
//! 1 and 2 twice — once two seeds at a time, once one at a time — and each seed's report and
//! the pooled report must be byte-identical without `host`. Seed 2's report must differ from
//! seed 1's beyond the seed numbers themselves.

use scenario::{self, Scenario};
use serde_json::Value;
use sim::run::{report, run_seeds};
use tests::bundled_scenarios;

const SETS: [&str; 3] = ["duration=\"5m\"", "warmup=\"30s\"", "drain=\"5m\""];

/// Loads a bundled scenario shortened to five minutes; one that cannot be shortened (say, a
/// fault scheduled later) runs as written if it is small enough.
fn load(path: &std::path::Path) -> Result<Scenario, String> {
    let sets: Vec<String> = SETS.iter().map(|s| s.to_string()).collect();
    let scn = match scenario::load(path, &sets) {
        Ok(s) => s,
        Err(short) => {
            let s = scenario::load(path, &[]).map_err(|e| e.to_string())?;
            if s.expected_ops() > 200_000.0 {
                return Err(format!("cannot be shortened ({short}) and too long to run"));
            }
            s
        }
    };
    scenario::check_supported(&scn, &path.display().to_string()).map_err(|e| e.to_string())?;
    Ok(scn)
}

/// The report JSON without `host` and without the seed numbers (`seed`, `per_seed[].seed`).
fn without_seeds(json: &str) -> Value {
    let mut v: Value = serde_json::from_str(json).expect("reports are JSON");
    let top = v.as_object_mut().expect("an object");
    top.remove("seed");
    if let Some(Value::Array(per)) = top.get_mut("per_seed") {
        for s in per {
            if let Some(o) = s.as_object_mut() {
                o.remove("seed");
            }
        }
    }
    v
}

#[test]
fn every_bundled_scenario_is_reproducible() {
    let paths = bundled_scenarios();
    let mut ran = Vec::new();
    for path in &paths {
        let name = path.display().to_string();
        let scn = match load(path) {
            Ok(s) => s,
            Err(e) if e.contains("not built yet") || e.contains("cannot be shortened") => {
                eprintln!("  {name}: skipped: {e}");
                continue;
            }
            Err(e) => panic!("{name}: refused: {e}"),
        };
        let t = std::time::Instant::now();
        let a = run_seeds(&scn, 1, 2, 2).unwrap_or_else(|e| panic!("{name}: {e}"));
        let b = run_seeds(&scn, 1, 2, 1).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(a[0].submitted > 0, "{name}: no ops in five minutes");

        // Wall-clock times differ, and must not matter.
        let one = |seeds: &[reports::SeedMetrics], first: u64, wall: f64| {
            report(&scn, first, seeds, wall).to_json_without_host()
        };
        for i in 0..2 {
            let (ra, rb) = (
                one(&a[i..=i], 1 + i as u64, 1.0),
                one(&b[i..=i], 1 + i as u64, 2.0),
            );
            assert!(
                ra == rb,
                "{name}: seed {} gave different reports in two runs:\n{ra}\n---\n{rb}",
                i + 1
            );
        }
        let (pa, pb) = (one(&a, 1, 1.0), one(&b, 1, 3.0));
        assert!(
            pa == pb,
            "{name}: the pooled report differs:\n{pa}\n---\n{pb}"
        );
        // `host` is the only part that may differ, and it is left out above.
        let full = report(&scn, 1, &a, 1.0).to_json();
        let mut v: Value = serde_json::from_str(&full).expect("JSON");
        assert!(v.as_object_mut().and_then(|o| o.remove("host")).is_some());
        assert_eq!(
            v,
            serde_json::from_str::<Value>(&pa).expect("JSON"),
            "{name}"
        );

        // Another seed is another run.
        let (s1, s2) = (one(&a[0..1], 1, 1.0), one(&a[1..2], 2, 1.0));
        assert_ne!(
            without_seeds(&s1),
            without_seeds(&s2),
            "{name}: seeds 1 and 2 gave the same report"
        );
        assert_ne!(a[0].complete.mean_us(), a[1].complete.mean_us(), "{name}");
        eprintln!("  {name}: reproducible ({:.2}s)", t.elapsed().as_secs_f64());
        ran.push(name);
    }
    assert!(
        ran.iter().any(|n| n.ends_with("baseline.toml")),
        "the baseline did not run: {ran:?} of {paths:?}"
    );
    assert!(ran.len() >= 4, "only {ran:?} ran");
}
