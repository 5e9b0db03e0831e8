//! A reproduction: a standalone scenario file (no nemesis, the faults as `[[faults]]`) that
//! breaks an invariant on its own seed, with where it came from — what `shrink` writes and
//! `explore --save-failures` keeps, and what the regression corpus (`scenarios/regressions/`)
//! holds.

use crate::shrink::Shrunk;
use checker::Invariant;
use scenario::Scenario;

/// Where a reproduction came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The scenario file, as given on the command line.
    pub scenario: String,
    /// The failing seed.
    pub seed: u64,
    /// The commit of the binary that found it (`--commit`, else the one it was built from).
    pub commit: String,
    /// The command that re-makes it (shrink from the origin).
    pub command: String,
}

/// The commit the binary was built from (`git rev-parse --short HEAD` at build time), or
/// `unknown` outside a git checkout.
pub fn build_commit() -> &'static str {
    option_env!("CONDUCTOR_SIM_COMMIT").unwrap_or("unknown")
}

/// A scenario name from its parts: `[A-Za-z0-9._-]`, at most 128 characters.
fn name_of(parts: &str) -> String {
    let mut s: String = parts
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(128);
    s
}

/// What `shrink` did, in words, for a reproduction's description.
pub fn shrunk_how(shrunk: &Shrunk) -> String {
    let (b, a) = (shrunk.before, shrunk.after);
    format!(
        "shrunk by `conductor-sim shrink`: {} → {} faults, {} → {} ops, load phase {} → {}, \
         {} → {} conductor(s), in {} runs",
        b.faults,
        a.faults,
        b.ops,
        a.ops,
        humantime::format_duration(b.load),
        humantime::format_duration(a.load),
        b.conductors,
        a.conductors,
        shrunk.runs
    )
}

/// `scn` made standalone: named for its origin, described by it (`how` it was made), its
/// `[checks] expect` the invariants its run breaks (`invariant` first), its seed the failing
/// seed, no nemesis (its faults are `[[faults]]`).
pub fn standalone(
    scn: &Scenario,
    invariant: Invariant,
    broken: &[Invariant],
    origin: &Origin,
    how: &str,
) -> Scenario {
    let mut s = scn.clone();
    let from = s.name.clone();
    s.name = name_of(&format!("{from}-{}-seed-{}", invariant.name(), origin.seed));
    s.seed = origin.seed;
    s.nemesis = None;
    let mut expect: Vec<Invariant> = vec![invariant];
    expect.extend(broken.iter().copied().filter(|i| *i != invariant));
    // Among the judged ones: they broke.
    s.checks.expect = expect;
    s.description = format!(
        "A reproduction of `{}` from {} seed {} (commit {}), {how}. Re-shrink from its origin \
         with: {}",
        invariant.name(),
        origin.scenario,
        origin.seed,
        origin.commit,
        origin.command,
    );
    s
}

/// The file's text: a header saying what it is, then the scenario as TOML.
///
/// # Errors
/// When the scenario does not serialise (it always does: it was read back from TOML).
pub fn to_toml(s: &Scenario, origin: &Origin) -> Result<String, toml::ser::Error> {
    let body = toml::to_string(s)?;
    Ok(format!(
        "# A reproduction kept by conductor-sim (docs/exploration.md): it must break\n\
         # {expect} on seed {seed}.\n\
         # origin: {scn} --seed {seed} (commit {commit})\n\
         {reshrink}{cmd}\n\n{body}",
        expect = s
            .checks
            .expect
            .iter()
            .map(|i| i.name())
            .collect::<Vec<_>>()
            .join(", "),
        seed = origin.seed,
        scn = origin.scenario,
        commit = origin.commit,
        cmd = origin.command,
        reshrink = crate::corpus::RESHRINK,
    ))
}
