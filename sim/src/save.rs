//! `explore --save-failures DIR [--shrink]`: one standalone scenario per failing seed, kept
//! once per (invariant, design) — each invariant the scenario does not expect, from the first
//! seed that breaks it, and the design its keys name (ordering, routing, fencing) — so that a night of exploration
//! leaves one reproduction per distinct failure, not thousands of copies of one. A file already
//! in DIR is kept as it is: the corpus is added to, never rewritten.

use crate::explore::Exploration;
use crate::reproduction::{self, Origin};
use crate::shrink::{self, Options};
use checker::Invariant;
use scenario::{Fault, Scenario};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// How the failures are saved.
#[derive(Debug, Clone)]
pub struct How {
    /// Shrink each one first (else: the seed's recorded schedule as `[[faults]]`).
    pub shrink: bool,
    /// Runs at once while shrinking.
    pub jobs: usize,
    /// Where relative `empirical` files resolve.
    pub base_dir: Option<PathBuf>,
}

/// The design a scenario's keys name: `ordering-routing[-fencing]`.
pub fn design(scn: &Scenario) -> String {
    let c = &scn.cluster;
    format!(
        "{}-{}{}",
        c.ordering.name(),
        c.routing.name(),
        if c.fencing { "-fencing" } else { "" }
    )
}

/// Writes the reproductions of `ex`'s failing seeds into `dir`; returns a line per failing
/// (invariant, design): the file written, or why none was.
///
/// # Errors
/// When `dir` cannot be made or a file cannot be written.
pub fn save_failures(
    scn: &Scenario,
    ex: &Exploration,
    dir: &Path,
    how: &How,
    origin: &dyn Fn(u64, &str) -> Origin,
) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let design = design(scn);
    let mut done: BTreeSet<Invariant> = BTreeSet::new();
    let mut lines = Vec::new();
    // Each failing (invariant, design) once: the first seed that breaks it.
    let firsts = ex.failing.iter().flat_map(|f| {
        Invariant::ALL
            .iter()
            .copied()
            .filter(|i| f.counts.contains_key(i.name()) && !scn.checks.expect.contains(i))
            .map(move |i| (f, i))
    });
    for (f, inv) in firsts {
        if !done.insert(inv) {
            continue;
        }
        let path = dir.join(format!("{design}-{}.toml", inv.name()));
        if path.exists() {
            lines.push(format!(
                "{} kept (already there; seed {} breaks {inv} too)",
                path.display(),
                f.seed
            ));
            continue;
        }
        let o = origin(f.seed, inv.name());
        let made = if how.shrink {
            let opts = Options {
                seed: f.seed,
                invariant: Some(inv),
                max_runs: 400,
                jobs: how.jobs,
                alternatives: 2,
                base_dir: how.base_dir.clone(),
            };
            shrink::shrink(scn, &opts, &|_, _| {}).ok().map(|s| {
                (
                    s.scenario.clone(),
                    s.broken.clone(),
                    reproduction::shrunk_how(&s),
                )
            })
        } else {
            let mut s = scn.clone();
            s.nemesis = None;
            s.faults = f.faults.iter().filter_map(Fault::from_recorded).collect();
            shrink::trial(&s, f.seed, inv)
                .filter(|(breaks, _, _)| *breaks)
                .map(|(_, _, broken)| {
                    (
                        s,
                        broken,
                        "its recorded schedule as [[faults]], not shrunk".to_string(),
                    )
                })
        };
        let Some((s, broken, how_made)) = made else {
            lines.push(format!(
                "seed {} ({inv}): not saved, its schedule without the nemesis no longer breaks it",
                f.seed
            ));
            continue;
        };
        let s = reproduction::standalone(&s, inv, &broken, &o, &how_made);
        let text = reproduction::to_toml(&s, &o).map_err(std::io::Error::other)?;
        std::fs::write(&path, text)?;
        lines.push(format!("{} (seed {}, {inv})", path.display(), f.seed));
    }
    Ok(lines)
}
