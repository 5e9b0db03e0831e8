//! `conductor check` validates scenario files exactly as `conductor-sim check` does: the same
//! line on stdout for a valid file, the same `error: …` on stderr and exit 2 for a bad one.
//!
//! The simulator's binary is built only under `--cfg madsim`, so it cannot run here: the
//! expected texts are the simulator's (taken from `conductor-sim check` on the same cases, whose
//! needles sim/tests/cli.rs pins), and every error is also compared with the scenario crate's
//! own message, which is what `conductor-sim check` prints after `error: `.
//!
//! Run with `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo test --release -p real`.
#![cfg(not(madsim))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_conductor");

/// A fresh directory for `test` holding a copy of the bundled baseline scenario as `baseline.toml`, and
/// `typo.toml`, the baseline with `pool_workers` misspelt.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch dir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/baseline.toml");
    let text = std::fs::read_to_string(src).expect("read scenarios/baseline.toml");
    std::fs::write(dir.join("baseline.toml"), &text).expect("write baseline.toml");
    let typo = text.replacen("pool_workers = 10", "pool_wrokers = 10", 1);
    assert_ne!(typo, text, "the baseline has `pool_workers = 10`");
    std::fs::write(dir.join("typo.toml"), typo).expect("write typo.toml");
    dir
}

fn check(dir: &Path, file: &str, sets: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("check").arg(file).current_dir(dir);
    for s in sets {
        cmd.args(["--set", s]);
    }
    cmd.output().expect("run conductor check")
}

#[test]
fn a_valid_scenario_prints_the_simulators_line() {
    let dir = scratch("check-valid");
    let out = check(&dir, "baseline.toml", &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "baseline.toml: ok — baseline (1 conductor(s), 10 pool workers each, about 28800 ops \
         over 1h)\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));

    // An override is applied as the simulator applies it.
    let out = check(&dir, "baseline.toml", &["cluster.pool_workers=12"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("12 pool workers each"),
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(0));
}

/// A bad input: `file` with `sets`, and what `conductor-sim check` prints on stderr for it
/// (`exact`), or, where that text lists keys a new feature may add to or another crate's
/// message, what it must mention.
type Case = (
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
    &'static [&'static str],
);

#[test]
fn bad_scenarios_are_refused_with_the_simulators_message_and_exit_2() {
    let dir = scratch("check-bad");
    let cases: [Case; 7] = [
        (
            "typo.toml",
            &[],
            None,
            &[
                "typo.toml",
                "cluster.pool_wrokers",
                "unknown key",
                "pool_workers",
            ],
        ),
        (
            "baseline.toml",
            &["cluster.pool_workers=x"],
            Some(
                "error: baseline.toml: key `cluster.pool_workers`: expected an integer in \
                 1..=100000, got the string \"x\"\n",
            ),
            &[],
        ),
        (
            "baseline.toml",
            &["faults=[{at=\"1s\",kind=\"kill\",node=\"conductor-9\"}]"],
            Some(
                "error: baseline.toml: key `faults[0].node`: unknown node `conductor-9` (this \
                 scenario has conductor-1..conductor-1, host-1..host-4, api, bus, store)\n",
            ),
            &[],
        ),
        (
            "baseline.toml",
            &["duration=\"1x\""],
            None,
            &[
                "baseline.toml",
                "key `duration`",
                "expected a duration like \"250ms\", \"10s\" or \"1h\", got the string \"1x\"",
            ],
        ),
        (
            "baseline.toml",
            &["cluster.pool_workers"],
            Some("error: baseline.toml: --set `cluster.pool_workers`: expected KEY=VALUE\n"),
            &[],
        ),
        (
            // Valid keys that do not make sense together: the loader's support check.
            "baseline.toml",
            &["cluster.fencing=true"],
            None,
            &[
                "baseline.toml",
                "cluster.fencing",
                "distributed-lock",
                "state-check",
            ],
        ),
        (
            "no-such.toml",
            &[],
            None,
            &["error: no-such.toml: cannot read `no-such.toml`"],
        ),
    ];
    for (file, sets, exact, needles) in cases {
        let out = check(&dir, file, sets);
        let err = String::from_utf8_lossy(&out.stderr);
        let what = format!("check {file} {sets:?}");
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{what}");
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let want = scenario::load(&dir.join(file), &sets)
            .expect_err("a bad case")
            .to_string()
            // The binary ran in `dir` and names the file as given.
            .replace(&format!("{}/", dir.display()), "");
        assert_eq!(err, format!("error: {want}\n"), "{what}");
        if let Some(exact) = exact {
            assert_eq!(err, exact, "{what}");
        }
        for n in needles {
            assert!(
                err.contains(n),
                "{what}: stderr does not mention {n:?}:\n{err}"
            );
        }
    }
}
