//! The regression corpus: every kept reproduction in `scenarios/regressions/` still breaks what
//! it expects (on at least one of `sim::corpus::SCHEDULE_SEEDS` schedule seeds) and nothing
//! else (on its own schedule seed). A changed verdict fails naming the file, the seed and the
//! difference: *reproduction lost* (with the command that shrinks it again from its origin)
//! apart from *regression* (an invariant that must hold broke).

use sim::corpus::{files, judge_file, Change};
use std::sync::Mutex;
use tests::workspace_root;

#[test]
fn every_kept_reproduction_keeps_its_verdict() {
    let root = workspace_root();
    let dir = root.join("scenarios/regressions");
    let paths = files(&dir).expect("reading scenarios/regressions/");
    assert!(paths.len() >= 4, "the corpus has {} files", paths.len());
    let findings = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    // Two at a time: each file is one to three short runs.
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some(p) = paths.get(i) else { break };
                let name = p.strip_prefix(&root).unwrap_or(p).display().to_string();
                if let Some(f) = judge_file(p, &name) {
                    findings.lock().unwrap().push((i, f));
                }
            });
        }
    });
    let mut findings = findings.into_inner().unwrap();
    findings.sort_by_key(|(i, _)| *i);
    let text: Vec<String> = findings.iter().map(|(_, f)| f.to_string()).collect();
    assert!(text.is_empty(), "{}", text.join("\n"));
}

/// A reproduction edited so that it no longer breaks its invariant is reported as lost, with
/// the command that shrinks it again; one that breaks something it does not expect, as a
/// regression.
#[test]
fn a_changed_verdict_is_named_for_what_it_is() {
    let root = workspace_root();
    let src = std::fs::read_to_string(root.join("scenarios/regressions/unfair-lock.toml"))
        .expect("reading unfair-lock.toml");
    let dir = std::env::temp_dir().join(format!("corpus-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The fair lock keeps order: what the file expects no longer breaks.
    let fixed = dir.join("fixed.toml");
    std::fs::write(
        &fixed,
        src.replace(
            "ordering = \"local-lock\"",
            "ordering = \"local-lock-fair\"",
        ),
    )
    .unwrap();
    let f = judge_file(&fixed, "fixed.toml").expect("the verdict changed");
    assert!(matches!(f.change, Change::Lost { .. }), "{f}");
    let msg = f.to_string();
    assert!(
        msg.starts_with("reproduction lost: fixed.toml seed 1:")
            && msg.contains("conductor-sim shrink"),
        "{msg}"
    );
    // Expecting nothing, what it breaks is a regression.
    let strict = dir.join("strict.toml");
    let mut lines: Vec<&str> = src.lines().filter(|l| !l.starts_with("expect")).collect();
    lines.push("");
    std::fs::write(&strict, lines.join("\n")).unwrap();
    let f = judge_file(&strict, "strict.toml").expect("the verdict changed");
    assert!(matches!(f.change, Change::Regression { .. }), "{f}");
    assert!(
        f.to_string().starts_with("regression: strict.toml seed 1"),
        "{f}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
