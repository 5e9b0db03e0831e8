//! What the benches share: loading a bundled scenario with overrides and running one seed as
//! the CLI does (a fresh thread per seed: madsim keeps per-thread state).

use reports::SeedMetrics;
use scenario::Scenario;
use sim::run::on_fresh_thread;
use sim::world::run_seed;
use std::path::Path;

/// Loads `scenarios/REL` with `--set` overrides; the parser's message when it refuses them.
pub fn scenario(rel: &str, sets: &[String]) -> Result<Scenario, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(rel);
    scenario::load(&path, sets).map_err(|e| e.to_string())
}

/// Runs seed 1 of `scn` on a fresh thread; a failed run is a broken bench, so it panics.
// Each bench compiles this module on its own, and the explore bench runs seeds through
// `explore` instead.
#[allow(dead_code)]
pub fn run(scn: &Scenario) -> SeedMetrics {
    on_fresh_thread(1, || run_seed(scn, 1)).unwrap_or_else(|e| panic!("{e}"))
}
