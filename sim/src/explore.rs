//! `explore`: many seeds of one scenario, looking for invariant violations; `explore.json`
//! lists the failing seeds with what broke and the faults they ran, so that each can be
//! replayed (`conductor-sim replay … --seed S`) or turned into a plain scenario.

use crate::run::map_seeds_until;
use checker::Invariant;
use reports::human;
use scenario::Scenario;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One part of an exploration split over several machines: `--shard I/N` runs the I-th of N
/// contiguous blocks of the seeds (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which block, 1..=`of`.
    pub index: u64,
    /// How many blocks.
    pub of: u64,
}

/// A `--shard` value that is not `I/N` with 1 ≤ I ≤ N.
#[derive(Debug, thiserror::Error)]
#[error("--shard {0}: expected I/N with 1 <= I <= N, e.g. 2/4")]
pub struct BadShard(pub String);

impl std::str::FromStr for Shard {
    type Err = BadShard;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadShard(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, of) = (
            i.trim().parse::<u64>().map_err(|_| bad())?,
            n.trim().parse::<u64>().map_err(|_| bad())?,
        );
        if index == 0 || index > of {
            return Err(bad());
        }
        Ok(Shard { index, of })
    }
}

impl Shard {
    /// The block of seeds `first .. first + n` this shard runs: `(first seed, count)`. The
    /// blocks of `1/N … N/N` cover the seeds exactly once, in order.
    pub fn seeds(self, first: u64, n: u64) -> (u64, u64) {
        let cut = |k: u64| (u128::from(n) * u128::from(k) / u128::from(self.of)) as u64;
        let (lo, hi) = (cut(self.index - 1), cut(self.index));
        (first.wrapping_add(lo), hi - lo)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

/// A seed with a violation the scenario does not expect (`explore.json`, docs/outputs.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failing {
    /// The seed.
    pub seed: u64,
    /// Its violations, as in `report.json` (the first few of each invariant).
    pub violations: Vec<serde_json::Value>,
    /// The faults it ran, in `[[faults]]` form.
    pub faults: Vec<serde_json::Value>,
    /// Added: violations found per invariant, listed or not.
    pub counts: BTreeMap<String, u64>,
}

/// A seed whose simulation aborted (a panic in the simulator or the deployment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Aborted {
    /// The seed.
    pub seed: u64,
    /// What went wrong.
    pub message: String,
}

/// `explore.json`: the contract's keys first (`seeds`, `failing`, `by_invariant`), then added
/// ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exploration {
    /// Seeds run.
    pub seeds: u64,
    /// The failing seeds, in seed order.
    pub failing: Vec<Failing>,
    /// For each invariant that broke, the number of **seeds** (not violations) in which it
    /// broke, over every seed run, expected or not.
    pub by_invariant: BTreeMap<String, u64>,
    /// Added: the scenario's name.
    pub scenario: String,
    /// Added: the first seed; the seeds run are `first_seed .. first_seed + seeds - 1`.
    pub first_seed: u64,
    /// Added: the invariants judged.
    pub checked: Vec<Invariant>,
    /// Added: the invariants the scenario is meant to break (`[checks] expect`): a seed that
    /// breaks only those does not fail.
    pub expected: Vec<Invariant>,
    /// Added: seeds whose simulation aborted.
    pub aborted: Vec<Aborted>,
    /// Added with `--shard I/N`: which part of the seeds this file covers (`seeds` and
    /// `first_seed` describe that part).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Added: for each invariant that broke, the first seed in which it broke (expected or
    /// not), in the checker's order.
    pub first_by_invariant: BTreeMap<String, u64>,
    /// Added when `--stop-after` or `--for` stopped the exploration before its last seed: the
    /// seeds asked for (`seeds` says how many ran: always `first_seed ..` a contiguous prefix,
    /// so that `--seeds <seeds>` runs exactly them again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
}

/// Why an exploration ran fewer seeds than asked (`explore.json`'s `stopped`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stopped {
    /// The seeds asked for.
    pub requested: u64,
    /// What stopped it: `"stop-after"` (enough failing seeds) or `"time budget"` (`--for`).
    pub by: String,
}

/// When an exploration may stop before its last seed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Stop after this many failing seeds (the first ones in seed order).
    pub stop_after: Option<u64>,
    /// Stop starting seeds after this wall-clock instant (every seed started finishes).
    pub deadline: Option<std::time::Instant>,
}

/// What one seed left, kept while the others run.
#[derive(Debug)]
enum Outcome {
    Ran {
        violations: Vec<serde_json::Value>,
        faults: Vec<serde_json::Value>,
        counts: BTreeMap<String, u64>,
    },
    Aborted(String),
}

/// Runs seeds `first .. first + n` of `scn`, `jobs` at a time (calling `done` after each),
/// and gathers what broke.
pub fn explore(
    scn: &Scenario,
    first: u64,
    n: u64,
    jobs: usize,
    done: &(dyn Fn() + Sync),
) -> Exploration {
    explore_with(scn, first, n, jobs, Limits::default(), done)
}

/// [`explore`] within `limits`: it stops handing out seeds after enough failing ones or at a
/// deadline, and keeps a contiguous prefix of the seeds (for `--stop-after N`, up to the N-th
/// failing seed in seed order, whichever runs finished first).
pub fn explore_with(
    scn: &Scenario,
    first: u64,
    n: u64,
    jobs: usize,
    limits: Limits,
    done: &(dyn Fn() + Sync),
) -> Exploration {
    let expected = &scn.checks.expect;
    let fails = |o: &Outcome| match o {
        Outcome::Ran { counts, .. } => counts
            .keys()
            .any(|k| !expected.iter().any(|e| e.name() == k)),
        Outcome::Aborted(_) => false,
    };
    let failing = std::sync::atomic::AtomicU64::new(0);
    let stop = |o: &Outcome| {
        let f = if fails(o) {
            failing.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
        } else {
            failing.load(std::sync::atomic::Ordering::Relaxed)
        };
        limits.stop_after.is_some_and(|k| f >= k)
            || limits
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d)
    };
    // Each seed's metrics are dropped as soon as its violations are taken: memory follows the
    // failing seeds, not the number run.
    let mut outcomes = map_seeds_until(
        scn,
        first,
        n,
        jobs,
        &|_, r| match r {
            Ok(m) => Outcome::Ran {
                counts: m.violations_by_invariant(),
                violations: m.violations,
                faults: m.faults,
            },
            Err(e) => Outcome::Aborted(e.to_string()),
        },
        &stop,
        done,
    );
    let mut by = "time budget";
    if let Some(k) = limits.stop_after {
        // The first `k` failing seeds in seed order, and nothing after the k-th.
        let mut seen = 0;
        if let Some(cut) = outcomes.iter().position(|o| {
            seen += u64::from(fails(o));
            seen >= k
        }) {
            if cut + 1 < n as usize {
                by = "stop-after";
            }
            outcomes.truncate(cut + 1);
        }
    }
    let ran = outcomes.len() as u64;
    let mut ex = Exploration {
        seeds: ran,
        failing: Vec::new(),
        by_invariant: BTreeMap::new(),
        scenario: scn.name.clone(),
        first_seed: first,
        checked: scn.checks.invariants.clone(),
        expected: expected.clone(),
        aborted: Vec::new(),
        shard: None,
        first_by_invariant: BTreeMap::new(),
        stopped: (ran < n).then(|| Stopped {
            requested: n,
            by: by.to_string(),
        }),
    };
    for (i, o) in outcomes.into_iter().enumerate() {
        let seed = first.wrapping_add(i as u64);
        match o {
            Outcome::Ran {
                violations,
                faults,
                counts,
            } => {
                for name in counts.keys() {
                    *ex.by_invariant.entry(name.clone()).or_insert(0) += 1;
                    ex.first_by_invariant.entry(name.clone()).or_insert(seed);
                }
                if counts
                    .keys()
                    .any(|k| !expected.iter().any(|e| e.name() == k))
                {
                    ex.failing.push(Failing {
                        seed,
                        violations,
                        faults,
                        counts,
                    });
                }
            }
            Outcome::Aborted(message) => ex.aborted.push(Aborted { seed, message }),
        }
    }
    ex
}

impl Exploration {
    /// `explore.json`: pretty-printed, with a trailing newline; the same inputs give the same
    /// bytes.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("an exploration always serialises");
        s.push('\n');
        s
    }

    /// True when no seed failed and none aborted.
    pub fn passed(&self) -> bool {
        self.failing.is_empty() && self.aborted.is_empty()
    }

    /// The text summary; `replay(seed)` gives the command that replays a seed.
    pub fn summary(&self, replay: &dyn Fn(u64) -> String) -> String {
        let mut s = String::new();
        let last = self.first_seed.wrapping_add(self.seeds.saturating_sub(1));
        let _ = writeln!(
            s,
            "{}  explored seeds {}..{} ({})  {} invariant(s) judged",
            self.scenario,
            self.first_seed,
            last,
            human::count(self.seeds),
            self.checked.len()
        );
        let mut failing = format!("{} seed(s)", human::count(self.failing.len() as u64));
        if !self.expected.is_empty() {
            let _ = write!(
                failing,
                " with a violation not expected (expected to break: {})",
                self.expected
                    .iter()
                    .map(|e| e.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let _ = writeln!(s, "failing    {failing}");
        let by: Vec<String> = Invariant::ALL
            .iter()
            .filter_map(|i| {
                self.by_invariant
                    .get(i.name())
                    .map(|n| format!("{} {}", i.name(), human::count(*n)))
            })
            .collect();
        let _ = writeln!(
            s,
            "broken     {} (seeds in which each invariant broke)",
            if by.is_empty() {
                "nothing".to_string()
            } else {
                by.join("  ")
            }
        );
        if let Some(f) = self.failing.first() {
            let what: Vec<String> = f
                .counts
                .iter()
                .map(|(k, n)| format!("{k} {}", human::count(*n)))
                .collect();
            let _ = writeln!(s, "first      seed {}: {}", f.seed, what.join(", "));
            if let Some(d) = f.violations.first().and_then(|v| v.get("detail")) {
                let time = f.violations[0]
                    .get("time")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                let _ = writeln!(s, "           {time} {}", d.as_str().unwrap_or(""));
            }
            let _ = writeln!(s, "reproduce  {}", replay(f.seed));
        }
        for a in &self.aborted {
            let _ = writeln!(s, "aborted    seed {}: {}", a.seed, a.message);
        }
        s
    }

    /// The hunt, per invariant that broke (checker order): its first seed, the command that
    /// replays it and the one that shrinks it (`shrink(seed, invariant)`); then, when the
    /// exploration stopped early, how many seeds it ran.
    pub fn hunt(
        &self,
        replay: &dyn Fn(u64) -> String,
        shrink: &dyn Fn(u64, &str) -> String,
    ) -> String {
        let mut s = String::new();
        if let Some(st) = &self.stopped {
            let _ = writeln!(
                s,
                "stopped    by the {} after {} of {} seeds (seeds {}..{}: run them again with \
                 --seeds {})",
                st.by,
                human::count(self.seeds),
                human::count(st.requested),
                self.first_seed,
                self.first_seed.wrapping_add(self.seeds.saturating_sub(1)),
                self.seeds
            );
        }
        for i in Invariant::ALL {
            let Some(seed) = self.first_by_invariant.get(i.name()) else {
                continue;
            };
            let tag = if self.expected.contains(&i) {
                " (expected)"
            } else {
                ""
            };
            let _ = writeln!(s, "hunt       {}{tag}: first seed {seed}", i.name());
            let _ = writeln!(s, "             {}", replay(*seed));
            let _ = writeln!(s, "             {}", shrink(*seed, i.name()));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_json_keep_the_contract() {
        let ex = Exploration {
            seeds: 3,
            failing: vec![Failing {
                seed: 2,
                violations: vec![
                    serde_json::json!({"invariant": "exclusive", "time": "1.000000s", "detail": "overlap"}),
                ],
                faults: vec![],
                counts: [("exclusive".to_string(), 4)].into_iter().collect(),
            }],
            by_invariant: [("exclusive".to_string(), 1)].into_iter().collect(),
            scenario: "x".into(),
            first_seed: 1,
            checked: vec![Invariant::Exclusive],
            expected: vec![],
            aborted: vec![],
            shard: None,
            first_by_invariant: [("exclusive".to_string(), 2)].into_iter().collect(),
            stopped: None,
        };
        let json = ex.to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["seeds"], 3);
        assert_eq!(v["failing"][0]["seed"], 2);
        assert!(v["failing"][0]["faults"].is_array());
        assert_eq!(v["by_invariant"]["exclusive"], 1);
        // The contract's keys come first, in its order.
        let at = |k: &str| json.find(&format!("\"{k}\":")).unwrap();
        assert!(at("seeds") < at("failing") && at("failing") < at("by_invariant"));
        let s = ex.summary(&|seed| format!("replay --seed {seed}"));
        assert!(s.contains("explored seeds 1..3 (3)"), "{s}");
        assert!(s.contains("failing    1 seed(s)"), "{s}");
        assert!(s.contains("broken     exclusive 1 (seeds"), "{s}");
        assert!(s.contains("reproduce  replay --seed 2"), "{s}");
        assert!(!ex.passed());
        let h = ex.hunt(&|seed| format!("replay --seed {seed}"), &|seed, inv| {
            format!("shrink --seed {seed} --invariant {inv}")
        });
        assert!(h.contains("exclusive"), "{h}");
        assert!(
            h.contains("replay --seed 2") && h.contains("shrink --seed 2 --invariant exclusive"),
            "{h}"
        );
        assert_eq!(v["first_by_invariant"]["exclusive"], 2);
        assert!(v.get("stopped").is_none());
    }

    #[test]
    fn shards_cover_the_seeds_once() {
        for n in [1u64, 7, 10, 1000] {
            for of in [1u64, 3, 4, 7] {
                let mut next = 5;
                for index in 1..=of {
                    let (first, count) = Shard { index, of }.seeds(5, n);
                    assert_eq!(first, next, "{index}/{of} of {n}");
                    next = first + count;
                }
                assert_eq!(next, 5 + n);
            }
        }
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { index: 2, of: 4 });
        for bad in ["0/4", "5/4", "2", "a/b", "2/0"] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("I/N"), "{e}");
        }
    }
}
