//! Judging a recorded history: the JSON-lines logs the real services write (one object per
//! event, `{"t_us", "node", "event", …}`, `t_us` in µs of wall-clock time since the UNIX
//! epoch, so the logs of several processes share one time base).
//!
//! [`check_files`] reads every file, merges their events by `(t_us, file order, line order)`,
//! feeds them to the same [`Checker`] the simulator runs, and says what it found. Nothing is
//! skipped silently: a line that is not an event is an error naming the file and the line; only
//! a torn last line (no newline at the end, and not a whole event: a service stopped while
//! writing it) is dropped, with a warning.
//!
//! **What a history can judge.** The safety invariants are judged on the events. The liveness
//! invariants are judged on the final state of the store and the hosts, which the real store
//! and hosts write into their logs when they are told to stop (SIGTERM; see [`final_state`]):
//! when the history holds the store's and every one of its hosts' final states, they are
//! judged as the simulator judges them at the end of the drain (at the time of the last final
//! state); otherwise they are reported as *not judged*, with the reason, never as holding.
//!
//! [`final_state`]: crate::final_state
//!
//! **Containers older than the history.** A log does not say which containers existed before
//! it began (the real store and hosts pre-create theirs). A container whose first op at a host
//! found it there (its `before` is not `Absent`) is taken to have existed there before the
//! history began, as the simulator's pre-created containers do; one whose first op found
//! nothing was never created there, and an op on it breaks `create-before-use`.

use crate::final_state::{FinalLine, FinalStates};
use crate::{Checker, Findings, Invariant, InvariantSet, Kind};
use conductor::op::Truth;
use conductor::recorder::Event;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// What [`check_files`] found in a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryFindings {
    /// The files read, in the order given.
    pub files: Vec<PathBuf>,
    /// Events read (every file, torn last lines left out).
    pub events: u64,
    /// Containers taken to exist at a host before the history began (their first op there
    /// found them).
    pub pre_existing: u64,
    /// Ops cancelled unrun because their client had stopped waiting (`client.cancel`): terminal
    /// (failed), never lost.
    pub cancelled: u64,
    /// The violations: listed (the first ones of each invariant) and counted.
    pub findings: Findings,
    /// The invariants judged.
    pub judged: InvariantSet,
    /// The invariants asked for and not judged: the liveness ones when the history holds no
    /// final state of the store or of one of its hosts.
    pub not_judged: InvariantSet,
    /// Why the liveness invariants asked for were not judged (`None` when they were, or none
    /// was asked for).
    pub not_judged_why: Option<String>,
    /// Whether the history holds the final state of the store and of every host.
    pub final_state: bool,
    /// What was read but dropped (a torn last line), one message each naming file and line.
    pub warnings: Vec<String>,
}

impl HistoryFindings {
    /// The number of violations found, listed or not.
    pub fn violations(&self) -> u64 {
        self.findings.counts.values().sum()
    }

    /// As JSON: `files`, `events`, `pre_existing`, `cancelled`, `judged`, `not_judged`,
    /// `warnings`, `counts` and `violations` (each as `report.json` holds one).
    pub fn to_json(&self) -> serde_json::Value {
        let names = |s: InvariantSet| s.iter().map(Invariant::name).collect::<Vec<_>>();
        serde_json::json!({
            "files": self.files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "events": self.events,
            "pre_existing": self.pre_existing,
            "cancelled": self.cancelled,
            "judged": names(self.judged),
            "not_judged": names(self.not_judged),
            "not_judged_why": self.not_judged_why,
            "final_state": self.final_state,
            "warnings": self.warnings,
            "counts": self.findings.counts,
            "violations": self.findings.violations.iter().map(|v| v.to_json()).collect::<Vec<_>>(),
        })
    }
}

/// The summary, then the violations as the simulator's `replay` prints them.
impl fmt::Display for HistoryFindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |s: InvariantSet| {
            let n: Vec<&str> = s.iter().map(Invariant::name).collect();
            if n.is_empty() {
                "none".to_string()
            } else {
                n.join(", ")
            }
        };
        writeln!(
            f,
            "history    {} file{}, {} events, {} container{} at a host before it began",
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" },
            self.events,
            self.pre_existing,
            if self.pre_existing == 1 { "" } else { "s" },
        )?;
        if self.cancelled > 0 {
            writeln!(
                f,
                "cancelled  {} op{} unrun, their clients had stopped waiting (terminal, not lost)",
                self.cancelled,
                if self.cancelled == 1 { "" } else { "s" },
            )?;
        }
        writeln!(f, "judged     {}", list(self.judged))?;
        if !self.not_judged.is_empty() {
            writeln!(
                f,
                "not judged {} (liveness: {})",
                list(self.not_judged),
                self.not_judged_why.as_deref().unwrap_or("not asked for")
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "warning    {w}")?;
        }
        writeln!(
            f,
            "violations {} found, {} listed",
            self.violations(),
            self.findings.violations.len()
        )?;
        for v in &self.findings.violations {
            writeln!(f, "  {v}")?;
        }
        Ok(())
    }
}

/// Why a history could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A file could not be read.
    #[error("{}: cannot read it: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not an event of the JSON-lines recorder.
    #[error("{}:{line}: not an event of the JSON-lines recorder: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// One line of the JSON-lines recorder ([`JsonLines`](conductor::recorder::JsonLines)).
#[derive(serde::Deserialize)]
struct Line {
    t_us: u64,
    // Which service wrote it: the checker does not need it, but a line without it is not one
    // of the recorder's.
    #[allow(dead_code)]
    node: String,
    #[serde(flatten)]
    ev: Event,
}

/// One final-state line of the JSON-lines recorder.
#[derive(serde::Deserialize)]
struct FinalEntry {
    t_us: u64,
    #[allow(dead_code)]
    node: String,
    #[serde(flatten)]
    line: FinalLine,
}

/// Whether a line is a final-state line (its `event` tag starts with `final_`), by its text:
/// the recorder writes `"event":"final_…"` without spaces.
fn is_final(l: &[u8]) -> bool {
    const TAG: &[u8] = br#""event":"final_"#;
    l.windows(TAG.len()).any(|w| w == TAG)
}

/// Reads one file's events in line order, with their times; a torn last line goes to
/// `warnings`.
fn read(
    path: &Path,
    warnings: &mut Vec<String>,
    finals: &mut FinalStates,
) -> Result<Vec<(u64, Event)>, HistoryError> {
    let bytes = std::fs::read(path).map_err(|source| HistoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // What follows the last newline: nothing when the file ends with one, else the last line
    // as far as it was written.
    let unterminated = lines.pop().filter(|l| !l.is_empty());
    let mut out = Vec::with_capacity(lines.len());
    let malformed = |line: usize, e: serde_json::Error| {
        // serde_json counts lines within the one it was given: keep the column only.
        let msg = e.to_string();
        let msg = msg
            .rsplit_once(" at line ")
            .map_or(msg.as_str(), |(m, _)| m);
        HistoryError::Malformed {
            path: path.to_path_buf(),
            line,
            message: format!("{msg} (column {})", e.column()),
        }
    };
    // A final-state line, or an event.
    let mut take = |n: usize, l: &[u8]| -> Result<(), HistoryError> {
        if is_final(l) {
            let line: FinalEntry = serde_json::from_slice(l).map_err(|e| malformed(n, e))?;
            finals
                .line(line.t_us, line.line)
                .map_err(|u| HistoryError::Malformed {
                    path: path.to_path_buf(),
                    line: n,
                    message: format!("`{}` is not the task_state of any op", u.0),
                })
        } else {
            let line: Line = serde_json::from_slice(l).map_err(|e| malformed(n, e))?;
            out.push((line.t_us, line.ev));
            Ok(())
        }
    };
    for (i, l) in lines.iter().enumerate() {
        take(i + 1, l)?;
    }
    if let Some(l) = unterminated {
        let n = lines.len() + 1;
        if take(n, l).is_err() {
            warnings.push(format!(
                "{}:{n}: a torn last line (no newline at the end, not a whole event), dropped",
                path.display()
            ));
        }
    }
    finals.end_file(&path.display().to_string());
    Ok(out)
}

/// Events with their times (µs on the recorder's clock), in time order.
pub type Timed = Vec<(u64, Event)>;

/// The events of the JSON-lines files `paths`, merged by `(t_us, file order, line order)`.
fn merged(
    paths: &[PathBuf],
    warnings: &mut Vec<String>,
    finals: &mut FinalStates,
) -> Result<Vec<(u64, Event)>, HistoryError> {
    let mut events: Vec<(u64, Event)> = Vec::new();
    for p in paths {
        events.extend(read(p, warnings, finals)?);
    }
    warnings.extend(finals.dropped().iter().cloned());
    // Stable: equal times keep file order, then line order.
    events.sort_by_key(|(t, _)| *t);
    Ok(events)
}

/// The events of the JSON-lines files `paths` (one deployment's logs, in any order) with
/// their times, merged by `(t_us, file order, line order)` as [`check_files`] judges them, and
/// the warnings about torn last lines: what `conductor load --recorder` folds into metrics.
///
/// # Errors
/// As [`check_files`].
pub fn read_events(paths: &[PathBuf]) -> Result<(Timed, Vec<String>), HistoryError> {
    let mut warnings = Vec::new();
    let events = merged(paths, &mut warnings, &mut FinalStates::default())?;
    Ok((events, warnings))
}

/// Judges the history in the JSON-lines files `paths` (the logs of one deployment's services,
/// in any order) against the invariants `invariants`: the events of every file merged by
/// `(t_us, file order, line order)` and fed to one [`Checker`]. The liveness invariants among
/// `invariants` are judged on the final states the files hold, if the store's and every
/// host's are there (see the [module](self)).
///
/// # Errors
/// [`HistoryError`] naming the file that cannot be read, or the file and line that is not an
/// event.
pub fn check_files(
    paths: &[PathBuf],
    invariants: InvariantSet,
) -> Result<HistoryFindings, HistoryError> {
    let mut warnings = Vec::new();
    let mut finals = FinalStates::default();
    let events = merged(paths, &mut warnings, &mut finals)?;

    // The liveness invariants are judged on the final state, when the history holds it whole.
    let liveness: InvariantSet = Invariant::ALL
        .into_iter()
        .filter(|i| i.kind() == Kind::Liveness)
        .collect();
    let snapshot = finals.snapshot();
    let (judged, not_judged, not_judged_why) = match &snapshot {
        Ok(_) => (invariants, InvariantSet::default(), None),
        Err(why) => {
            let not = invariants.and(liveness);
            let why = (!not.is_empty()).then(|| why.clone());
            (invariants.without(liveness), not, why)
        }
    };
    let mut checker = Checker::new(0, judged);

    let mut seen: BTreeSet<(u64, u32)> = BTreeSet::new();
    let (mut pre_existing, mut cancelled) = (0, 0);
    for (_, ev) in &events {
        match *ev {
            Event::Applied {
                host, op, before, ..
            } if seen.insert((op.container, host)) && before != Truth::Absent => {
                checker.precreated(op.container, host, before);
                pre_existing += 1;
            }
            Event::Cancelled { .. } => cancelled += 1,
            _ => {}
        }
    }
    for (t, ev) in &events {
        checker.observe(*t, ev);
    }
    if let Ok((end_us, snap)) = &snapshot {
        let last = events.last().map_or(0, |(t, _)| *t);
        checker.finish((*end_us).max(last), snap);
    }
    Ok(HistoryFindings {
        files: paths.to_vec(),
        events: events.len() as u64,
        pre_existing,
        cancelled,
        findings: checker.findings(),
        judged,
        not_judged,
        not_judged_why,
        final_state: snapshot.is_ok(),
        warnings,
    })
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
