//! The design matrix: explore every combination of a few scenario keys (ordering × routing, say)
//! over several base scenarios (fault mixes), and tabulate which invariants each combination
//! holds and which it breaks, on how many seeds. The README's answer to the thread is its output.

use crate::run::run_seeds;
use crate::world::RunError;
use checker::Invariant;
use scenario::{self, ScenarioError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One axis of the matrix: a dotted scenario key and the values it takes, in order. A value may
/// bring other keys along after `+` (`state-check+cluster.fencing=true`): a variant that only
/// makes sense with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    /// The key, e.g. `cluster.ordering`.
    pub key: String,
    /// Its values, as `--set` would take them.
    pub values: Vec<String>,
}

impl Axis {
    /// Parses `KEY=V1,V2,…`.
    pub fn parse(spec: &str) -> Result<Axis, String> {
        let (key, vals) = spec
            .split_once('=')
            .ok_or_else(|| format!("--vary `{spec}`: expected KEY=V1,V2,…"))?;
        let key = key.trim();
        let values: Vec<String> = split_values(vals)
            .into_iter()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if key.is_empty() || values.is_empty() {
            return Err(format!(
                "--vary `{spec}`: expected a key and at least one value (KEY=V1,V2,…)"
            ));
        }
        Ok(Axis {
            key: key.to_string(),
            values,
        })
    }

    /// The `--set`s that give this axis `value`: `KEY=head`, then every key the value brings
    /// along after `+` (`state-check+cluster.fencing=true` → `cluster.ordering=state-check`,
    /// `cluster.fencing=true`).
    pub fn sets(&self, value: &str) -> Vec<String> {
        let mut parts = value.split('+');
        let mut out = vec![format!("{}={}", self.key, parts.next().unwrap_or_default())];
        out.extend(parts.map(str::to_string));
        out
    }
}

/// Splits `V1,V2,…` at the commas outside brackets, braces and quotes, so that a value may be
/// a TOML array or inline table (`client.retry.budget={ ttl = "10s", percent = 0.1 }`).
fn split_values(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth <= 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Every combination of the axes' values, as `(axis index, value)` picks: the cartesian
/// product in the order given, the last axis varying fastest.
pub fn combinations(axes: &[Axis]) -> Vec<Vec<(usize, String)>> {
    let mut combos: Vec<Vec<(usize, String)>> = vec![Vec::new()];
    for (i, axis) in axes.iter().enumerate() {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                axis.values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((i, v.clone()));
                    c
                })
            })
            .collect();
    }
    combos
}

/// One cell of the matrix: a base scenario with one value per axis.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The base scenario's name (its fault mix).
    pub scenario: String,
    /// The value of each axis.
    pub params: BTreeMap<String, String>,
    /// Seeds run.
    pub seeds: u64,
    /// The invariants judged.
    pub checked: Vec<Invariant>,
    /// For each invariant broken, the number of seeds that broke it.
    pub broken: BTreeMap<String, u64>,
    /// The first seed breaking each invariant, to replay it.
    pub first_seed: BTreeMap<String, u64>,
}

/// Why the matrix could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// A base scenario, or a combination of axis values, is not a valid scenario.
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// A run aborted.
    #[error("{0}")]
    Run(#[from] RunError),
}

/// Runs seeds `first .. first + seeds` of every combination of `axes` over every base scenario
/// (in the order given; the last axis varies fastest) with `sets` applied first.
pub fn explore_matrix(
    bases: &[PathBuf],
    sets: &[String],
    axes: &[Axis],
    first: u64,
    seeds: u64,
    jobs: usize,
    progress: &(dyn Fn(&Row) + Sync),
) -> Result<Vec<Row>, MatrixError> {
    let combos = combinations(axes);
    let mut rows = Vec::new();
    for base in bases {
        for combo in &combos {
            let mut all = sets.to_vec();
            for (i, v) in combo {
                all.extend(axes[*i].sets(v));
            }
            let scn = scenario::load(base, &all)?;
            let metrics = run_seeds(&scn, first, seeds, jobs)?;
            let mut broken = BTreeMap::new();
            let mut first_seed = BTreeMap::new();
            for m in &metrics {
                let names: std::collections::BTreeSet<&str> = m
                    .violations
                    .iter()
                    .filter_map(|v| v.get("invariant").and_then(|i| i.as_str()))
                    .collect();
                for n in names {
                    *broken.entry(n.to_string()).or_insert(0) += 1;
                    first_seed.entry(n.to_string()).or_insert(m.seed);
                }
            }
            let row = Row {
                scenario: scn.name.clone(),
                params: combo
                    .iter()
                    .map(|(i, v)| (axes[*i].key.clone(), label(v)))
                    .collect(),
                seeds,
                checked: scn.checks.invariants.clone(),
                broken,
                first_seed,
            };
            progress(&row);
            rows.push(row);
        }
    }
    Ok(rows)
}

/// How an axis value reads in a table: `state-check+cluster.fencing=true` is
/// `state-check + fencing`.
pub fn label(v: &str) -> String {
    let mut parts = v.split('+');
    let mut out = parts.next().unwrap_or_default().to_string();
    for extra in parts {
        let (key, val) = extra.split_once('=').unwrap_or((extra, "true"));
        let key = key.rsplit('.').next().unwrap_or(key);
        if val == "true" {
            out.push_str(&format!(" + {key}"));
        } else {
            out.push_str(&format!(" + {key}={val}"));
        }
    }
    out
}

/// The matrix as a Markdown table: one column per axis, the base scenario, then one column
/// per invariant — `ok` when it held on every seed, `k/N` for the seeds that broke it, `–`
/// when it was not judged.
pub fn markdown(rows: &[Row], axes: &[Axis]) -> String {
    let mut out = String::new();
    let mut head: Vec<String> = axes
        .iter()
        .map(|a| a.key.rsplit('.').next().unwrap_or(&a.key).to_string())
        .collect();
    head.push("faults".into());
    head.extend(Invariant::ALL.iter().map(|i| i.short().to_string()));
    out.push_str(&format!("| {} |\n", head.join(" | ")));
    out.push_str(&format!(
        "|{}|\n",
        head.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    ));
    for r in rows {
        let mut cells: Vec<String> = axes
            .iter()
            .map(|a| r.params.get(&a.key).cloned().unwrap_or_default())
            .collect();
        cells.push(r.scenario.clone());
        for inv in Invariant::ALL {
            cells.push(if !r.checked.contains(&inv) {
                "–".into()
            } else {
                match r.broken.get(inv.name()) {
                    Some(k) => format!("**{k}/{}**", r.seeds),
                    None => "ok".into(),
                }
            });
        }
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse() {
        let a = Axis::parse("cluster.ordering=none, state-check").unwrap();
        assert_eq!(a.key, "cluster.ordering");
        assert_eq!(a.values, vec!["none", "state-check"]);
        assert!(Axis::parse("cluster.ordering").is_err());
        assert!(Axis::parse("=a").is_err());
        assert!(Axis::parse("k=").is_err());
        // Commas inside a TOML array, inline table or string do not split.
        let a = Axis::parse(r#"k=a,b+x.y={ t = "1s", p = 0.1 },[1, 2],"c,d""#).unwrap();
        assert_eq!(
            a.values,
            [
                r#"a"#,
                r#"b+x.y={ t = "1s", p = 0.1 }"#,
                "[1, 2]",
                r#""c,d""#
            ]
        );
    }

    #[test]
    fn values_bring_keys_along_and_combine_last_axis_fastest() {
        let a = Axis::parse("cluster.ordering=none,state-check+cluster.fencing=true").unwrap();
        assert_eq!(a.sets("none"), ["cluster.ordering=none"]);
        assert_eq!(
            a.sets("state-check+cluster.fencing=true"),
            ["cluster.ordering=state-check", "cluster.fencing=true"]
        );
        let b = Axis::parse("cluster.hosts=1,2").unwrap();
        let c = combinations(&[a, b]);
        assert_eq!(c.len(), 4);
        assert_eq!(c[1], [(0, "none".to_string()), (1, "2".to_string())]);
        assert_eq!(combinations(&[]), [Vec::<(usize, String)>::new()]);
    }

    #[test]
    fn variants_read_as_labels() {
        assert_eq!(
            label("state-check+cluster.fencing=true"),
            "state-check + fencing"
        );
        assert_eq!(label("none+cluster.hosts=4"), "none + hosts=4");
        assert_eq!(label("none"), "none");
    }

    #[test]
    fn table_marks_broken_and_unjudged() {
        let axes = vec![Axis::parse("cluster.ordering=none").unwrap()];
        let row = Row {
            scenario: "kills".into(),
            params: [("cluster.ordering".to_string(), "none".to_string())].into(),
            seeds: 20,
            checked: vec![Invariant::Exclusive, Invariant::Converges],
            broken: [("exclusive".to_string(), 7)].into(),
            first_seed: [("exclusive".to_string(), 3)].into(),
        };
        let t = markdown(&[row], &axes);
        assert!(t.starts_with("| ordering | faults | create→use"), "{t}");
        assert!(
            t.contains("| none | kills | – | – | **7/20** | – | – | – | – | ok | – |"),
            "{t}"
        );
    }
}
