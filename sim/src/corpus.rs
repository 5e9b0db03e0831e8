//! The regression corpus (`scenarios/regressions/`): kept reproductions, each a standalone
//! scenario whose `[checks] expect` lists what it must break on its seed. A file is judged over
//! [`SCHEDULE_SEEDS`] schedule seeds (its own, then the next ones), so that a change of timing
//! elsewhere does not flip it:
//!
//! - **reproduction lost**: an expected invariant breaks on none of them — the bug may be fixed,
//!   or the reproduction no longer reaches it; shrink it again from its origin (the file's
//!   `# re-shrink:` line says how);
//! - **regression**: an invariant the file does not expect breaks on its own schedule seed —
//!   something that must hold broke.

use crate::schedule_seed;
use crate::shrink::trial;
use checker::Invariant;
use scenario::Scenario;
use std::path::Path;

/// The schedule seeds a kept reproduction is judged over ("breaks on at least one of K").
pub const SCHEDULE_SEEDS: u64 = 3;

/// The marker of the line of a reproduction's header that says how to shrink it again.
pub const RESHRINK: &str = "# re-shrink: ";

/// A verdict that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An expected invariant broke on none of the schedule seeds.
    Lost {
        /// The invariant.
        invariant: Invariant,
        /// The schedule seeds tried.
        tried: Vec<u64>,
        /// What broke instead, on the file's own schedule seed.
        broke: Vec<Invariant>,
        /// How to make the reproduction again.
        reshrink: String,
    },
    /// An invariant the file does not expect broke.
    Regression {
        /// The invariants.
        invariants: Vec<Invariant>,
        /// The schedule seed it broke on.
        schedule_seed: u64,
    },
    /// The file does not load, or its run aborted.
    Broken(String),
}

/// One file's changed verdict, said in full.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The file.
    pub file: String,
    /// Its seed.
    pub seed: u64,
    /// What changed.
    pub change: Change,
}

fn names(l: &[Invariant]) -> String {
    if l.is_empty() {
        return "nothing".into();
    }
    l.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (file, seed) = (&self.file, self.seed);
        match &self.change {
            Change::Lost {
                invariant,
                tried,
                broke,
                reshrink,
            } => write!(
                f,
                "reproduction lost: {file} seed {seed}: expected {invariant} to break on at \
                 least one of schedule seeds {tried:?}, it broke on none (the file's own \
                 schedule broke: {}); if the bug is not fixed, shrink it again: {reshrink}",
                names(broke)
            ),
            Change::Regression {
                invariants,
                schedule_seed,
            } => write!(
                f,
                "regression: {file} seed {seed} (schedule seed {schedule_seed}): broke {} that \
                 the file does not expect (it must hold); see it with: conductor-sim replay \
                 {file} --seed {seed} --trace",
                names(invariants)
            ),
            Change::Broken(m) => write!(f, "{file}: {m}"),
        }
    }
}

/// How to make the reproduction in `text` again: its `# re-shrink:` line, else a shrink of the
/// file itself.
fn reshrink(text: &str, file: &str, seed: u64, inv: Invariant) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(RESHRINK))
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "conductor-sim shrink {file} --seed {seed} --invariant {} (the file records no \
                 origin)",
                inv.name()
            )
        })
}

/// Judges the reproduction at `path` (named `file` in messages); `None` when its verdict is
/// unchanged.
pub fn judge_file(path: &Path, file: &str) -> Option<Finding> {
    let finding = |seed, change| {
        Some(Finding {
            file: file.to_string(),
            seed,
            change,
        })
    };
    let scn = match scenario::load(path, &[]) {
        Ok(s) => s,
        Err(e) => return finding(0, Change::Broken(e.to_string())),
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match judge(&scn) {
        Ok(None) => None,
        Ok(Some(mut c)) => {
            if let Change::Lost {
                invariant,
                reshrink: r,
                ..
            } = &mut c
            {
                *r = reshrink(&text, file, scn.seed, *invariant);
            }
            finding(scn.seed, c)
        }
        Err(m) => finding(scn.seed, Change::Broken(m)),
    }
}

/// Judges a loaded reproduction (its `reshrink` left empty).
///
/// # Errors
/// A message when a run aborted.
pub fn judge(scn: &Scenario) -> Result<Option<Change>, String> {
    let seed = scn.seed;
    let base = schedule_seed::effective(seed, scn.simulation.schedule_seed);
    let seeds = schedule_seed::judged_over(base, SCHEDULE_SEEDS);
    let expect = &scn.checks.expect;
    let target = expect.first().copied().unwrap_or(Invariant::ALL[0]);
    let run = |k: u64| {
        let mut s = scn.clone();
        s.simulation.schedule_seed = Some(k);
        trial(&s, seed, target)
            .map(|(_, _, broken)| broken)
            .ok_or_else(|| format!("seed {seed} schedule seed {k}: the run aborted"))
    };
    let own = run(seeds[0])?;
    let unexpected: Vec<Invariant> = own
        .iter()
        .copied()
        .filter(|i| !expect.contains(i))
        .collect();
    if !unexpected.is_empty() {
        return Ok(Some(Change::Regression {
            invariants: unexpected,
            schedule_seed: seeds[0],
        }));
    }
    let mut seen: Vec<Vec<Invariant>> = vec![own.clone()];
    for &e in expect {
        let mut k = 0;
        while !seen[k].contains(&e) {
            k += 1;
            if k == seeds.len() {
                return Ok(Some(Change::Lost {
                    invariant: e,
                    tried: seeds.clone(),
                    broke: own,
                    reshrink: String::new(),
                }));
            }
            if seen.len() <= k {
                seen.push(run(seeds[k])?);
            }
        }
    }
    Ok(None)
}

/// Every `*.toml` in `dir`, in name order.
///
/// # Errors
/// When the directory cannot be read.
pub fn files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut v: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    Ok(v)
}
