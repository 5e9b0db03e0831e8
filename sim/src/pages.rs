//! What `report.html` needs from the simulator: the fault windows of the schedule a seed
//! actually ran (`SeedMetrics.faults`), and the pages of `run`, `replay --out` and `explore`
//! (the drawing itself is `reports::html`'s).

use crate::explore::Exploration;
use crate::sweep::{merged_timeline, phases};
use reports::html::{self, FaultShading, FaultWindow, HtmlError, Page};
use reports::{human, Report, SeedMetrics};
use scenario::{Fault, Scenario};
use serde_json::Value;
use std::collections::BTreeMap;

/// The window of simulated time that one fault of a recorded schedule covers, with its kind's
/// label (`kill conductor-3`): from `at` for as long as it lasts (a kill: until
/// `restart_after`, or until the heal at the end of the load phase when it has none), cut at
/// `load_end_s`, where everything heals. `None` for an entry that is not a fault (it is not
/// drawn).
pub fn fault_window(f: &Value, load_end_s: f64) -> Option<FaultWindow> {
    let fault = Fault::from_recorded(f)?;
    let at = fault.at.as_secs_f64();
    let lasts = fault
        .kind
        .lasts()
        .map_or(f64::INFINITY, |d| d.as_secs_f64());
    let end = (at + lasts).min(load_end_s.max(at));
    Some((at, end, fault.kind.label()))
}

/// A recorded schedule's windows in start order, and how many entries could not be read.
pub fn fault_windows(faults: &[Value], load_end_s: f64) -> (Vec<FaultWindow>, usize) {
    let mut out: Vec<FaultWindow> = faults
        .iter()
        .filter_map(|f| fault_window(f, load_end_s))
        .collect();
    let unread = faults.len() - out.len();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    (out, unread)
}

/// What the time plots of `seeds` (pooled) shade: the first seed's schedule, and a note saying
/// so — and whether the other seeds ran the same faults (scheduled `[[faults]]` only) or
/// schedules of their own (a `[nemesis]` draws per seed).
pub fn shading(scn: &Scenario, seeds: &[SeedMetrics]) -> FaultShading {
    let Some(first) = seeds.first() else {
        return FaultShading::default();
    };
    let (windows, unread) = fault_windows(&first.faults, scn.duration.as_secs_f64());
    if first.faults.is_empty() && seeds.iter().all(|s| s.faults.is_empty()) {
        return FaultShading::default();
    }
    let n = human::count(windows.len() as u64);
    let mut note = if seeds.len() == 1 {
        format!("Shaded: the {n} fault(s) seed {} ran.", first.seed)
    } else if seeds.iter().all(|s| s.faults == first.faults) {
        format!(
            "Shaded: the {n} fault(s) every seed ran (the same schedule in each of the {} seeds).",
            seeds.len()
        )
    } else {
        format!(
            "Shaded: the {n} fault(s) of seed {}, the first of {}; each seed ran a schedule of \
             its own (the nemesis draws per seed), and the curves pool them all.",
            first.seed,
            seeds.len()
        )
    };
    if windows.len() > html::MAX_FAULT_WINDOWS {
        note.push_str(&format!(
            " Only the first {} are drawn.",
            html::MAX_FAULT_WINDOWS
        ));
    }
    if unread > 0 {
        note.push_str(&format!(
            " {unread} entr{} of the schedule could not be read and {} not shown.",
            if unread == 1 { "y" } else { "ies" },
            if unread == 1 { "is" } else { "are" }
        ));
    }
    FaultShading { windows, note }
}

/// The fault windows of each seed of `seeds`, by seed (for the violations' timelines).
fn windows_by_seed(scn: &Scenario, seeds: &[SeedMetrics]) -> BTreeMap<u64, Vec<FaultWindow>> {
    seeds
        .iter()
        .map(|s| {
            (
                s.seed,
                fault_windows(&s.faults, scn.duration.as_secs_f64()).0,
            )
        })
        .collect()
}

/// The `report.html` of `run` and `replay --out`: `rep` is the report of `seeds`.
///
/// # Errors
/// A plot that could not be drawn.
pub fn run_html(scn: &Scenario, rep: &Report, seeds: &[SeedMetrics]) -> Result<String, HtmlError> {
    let samples = merged_timeline(seeds).samples();
    let by_seed = windows_by_seed(scn, seeds);
    let figures = html::violation_figures(&rep.invariants.violations, &|seed| {
        by_seed.get(&seed).cloned().unwrap_or_default()
    });
    html::run_page(
        rep,
        &html::Spectra::of(seeds),
        &samples,
        &shading(scn, seeds),
        phases(scn),
        &figures,
    )
}

/// Failing seeds detailed on the explore page at most (the table of failing seeds shows more).
const MAX_SEEDS_DETAILED: usize = 1;

/// Failing seeds in the explore page's table at most.
const MAX_FAILING_ROWS: usize = 200;

/// The fault schedule of a seed as table rows: start, end, what (the window's label), and the
/// entry in `[[faults]]` form.
fn schedule_rows(faults: &[Value], load_end_s: f64) -> Vec<Vec<String>> {
    faults
        .iter()
        .map(|f| match fault_window(f, load_end_s) {
            Some((a, b, label)) => vec![
                human::secs(a),
                human::secs(b),
                label,
                serde_json::to_string(f).unwrap_or_default(),
            ],
            None => vec![
                String::new(),
                String::new(),
                "(not readable)".into(),
                serde_json::to_string(f).unwrap_or_default(),
            ],
        })
        .collect()
}

/// The `report.html` of `explore`, next to `explore.json`: the summary, the seeds in which each
/// invariant broke (bars and a table), the failing seeds (a table: what broke, the first
/// violation, the faults), and for the first failing seed the timelines of its violations,
/// their list and its fault schedule. `load_end_s` is the end of the load phase (where faults heal);
/// `summary` the text the command prints. The same exploration gives the same bytes.
///
/// # Errors
/// A plot that could not be drawn.
pub fn explore_html(ex: &Exploration, load_end_s: f64, summary: &str) -> Result<String, HtmlError> {
    let mut page = Page::new(&format!("conductor-sim explore: {}", ex.scenario));
    page.pre(summary);

    page.heading("Invariants broken");
    // Every invariant judged or broken, in the checker's table order.
    let names: Vec<&str> = checker::Invariant::ALL
        .iter()
        .filter(|i| ex.checked.contains(i) || ex.by_invariant.contains_key(i.name()))
        .map(|i| i.name())
        .collect();
    let bars: Vec<(String, u64, bool)> = names
        .iter()
        .map(|n| {
            let expected = ex.expected.iter().any(|e| e.name() == *n);
            let label = if expected {
                format!("{n} (expected)")
            } else {
                (*n).to_string()
            };
            (
                label,
                ex.by_invariant.get(*n).copied().unwrap_or(0),
                !expected,
            )
        })
        .collect();
    if bars.is_empty() {
        page.text("No invariant was judged.");
    } else {
        page.text(&format!(
            "Seeds (of {}) in which each invariant broke; an invariant the scenario expects to \
             break is drawn in blue, any other in orange.",
            human::count(ex.seeds)
        ));
        page.svg(&html::bars_svg(
            "Seeds in which each invariant broke",
            "seeds",
            &bars,
            ex.seeds,
        )?);
        let rows: Vec<Vec<String>> = names
            .iter()
            .map(|n| {
                let seeds = ex.by_invariant.get(*n).copied().unwrap_or(0);
                vec![
                    (*n).to_string(),
                    human::count(seeds),
                    human::ratio(seeds as f64 / ex.seeds.max(1) as f64),
                    if ex.expected.iter().any(|e| e.name() == *n) {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                    ex.first_by_invariant
                        .get(*n)
                        .map_or_else(|| "-".into(), |s| s.to_string()),
                ]
            })
            .collect();
        page.text_table(
            &[
                "invariant",
                "seeds broken",
                "share",
                "expected to break",
                "first seed (replay and shrink commands in the summary above)",
            ]
            .map(String::from),
            &rows,
        );
    }

    page.heading("Failing seeds");
    if ex.failing.is_empty() {
        page.text("No seed broke an invariant the scenario does not expect.");
    } else {
        if ex.failing.len() > MAX_FAILING_ROWS {
            page.text(&format!(
                "{} failing seeds; the table shows the first {MAX_FAILING_ROWS}.",
                human::count(ex.failing.len() as u64)
            ));
        }
        let rows: Vec<Vec<String>> = ex
            .failing
            .iter()
            .take(MAX_FAILING_ROWS)
            .map(|f| {
                let broke: Vec<String> = f
                    .counts
                    .iter()
                    .map(|(k, n)| format!("{k} {}", human::count(*n)))
                    .collect();
                let first = f.violations.first().map_or_else(String::new, |v| {
                    format!(
                        "{} {}",
                        v.get("time").and_then(Value::as_str).unwrap_or(""),
                        v.get("detail").and_then(Value::as_str).unwrap_or("")
                    )
                });
                let (windows, _) = fault_windows(&f.faults, load_end_s);
                let mut faults: Vec<String> = windows
                    .iter()
                    .take(4)
                    .map(|(a, _, label)| format!("{label} at {}", human::secs(*a)))
                    .collect();
                if f.faults.len() > faults.len() {
                    faults.push(format!("… {} in all", f.faults.len()));
                }
                vec![
                    f.seed.to_string(),
                    broke.join(", "),
                    first,
                    faults.join("; "),
                ]
            })
            .collect();
        page.text_table(
            &["seed", "broke (violations)", "first violation", "faults"].map(String::from),
            &rows,
        );
    }
    for f in ex.failing.iter().take(MAX_SEEDS_DETAILED) {
        let windows = fault_windows(&f.faults, load_end_s).0;
        let figures = html::violation_figures(&f.violations, &|_| windows.clone());
        html::violation_sections(&mut page, &figures)?;
        page.heading(&format!("Seed {}: violations", f.seed));
        page.text_table(
            &html::violation_head(),
            &html::violation_rows(&f.violations, html::MAX_VIOLATION_ROWS),
        );
        page.heading(&format!("Seed {}: fault schedule", f.seed));
        if f.faults.is_empty() {
            page.text("No fault ran in this seed.");
        } else {
            page.text(
                "What this seed actually ran, in [[faults]] form: pasted into the scenario \
                 (without [nemesis]) it replays the same run.",
            );
            page.text_table(
                &["from", "until", "fault", "[[faults]] entry"].map(String::from),
                &schedule_rows(&f.faults, load_end_s),
            );
        }
    }
    if !ex.aborted.is_empty() {
        page.heading("Aborted seeds");
        let rows: Vec<Vec<String>> = ex
            .aborted
            .iter()
            .map(|a| vec![a.seed.to_string(), a.message.clone()])
            .collect();
        page.text_table(&["seed", "what went wrong"].map(String::from), &rows);
    }
    Ok(page.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn windows_follow_the_recorded_schedule() {
        let faults = vec![
            json!({"at": "1m 2s 856ms", "kind": "kill", "node": "conductor-3", "restart_after": "32s 96ms"}),
            json!({"at": "10s", "kind": "partition", "groups": [["conductor-1"], ["api", "bus", "store", "host-1"]], "oneway": false, "duration": "5s"}),
            json!({"at": "50m", "kind": "kill", "node": "conductor-1"}),
            json!({"at": "58m", "kind": "pause", "node": "store", "duration": "10m"}),
            json!({"at": "never", "kind": "pause", "node": "store", "duration": "1s"}),
            json!("not a fault"),
        ];
        let (w, unread) = fault_windows(&faults, 3600.0);
        assert_eq!(unread, 2);
        assert_eq!(w.len(), 4);
        assert_eq!(w[0].0, 10.0);
        assert_eq!(w[0].2, "partition conductor-1 | api,bus +2 more");
        let kill = &w[1];
        assert!((kill.0 - 62.856).abs() < 1e-9 && (kill.1 - 94.952).abs() < 1e-9);
        assert_eq!(kill.2, "kill conductor-3");
        // A kill without restart lasts until the heal; everything is cut there.
        assert_eq!(
            (w[2].1, w[2].2.as_str()),
            (3600.0, "kill conductor-1 (no restart)")
        );
        assert_eq!(w[3].1, 3600.0);
    }
}
