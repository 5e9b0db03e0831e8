//! Records the commit the binary is built from (`CONDUCTOR_SIM_COMMIT`), which reproductions
//! name as their origin. Outside a git checkout (a source tarball) it is `unknown`; an
//! environment variable of that name, when set, wins (a build from a tarball of a known commit).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=CONDUCTOR_SIM_COMMIT");
    let commit = std::env::var("CONDUCTOR_SIM_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    // Rebuilt when HEAD moves: HEAD itself (a checkout) and the branch it names (a commit).
    for path in [
        Some("HEAD".to_string()),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(p) = git(&["rev-parse", "--git-path", &path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rustc-env=CONDUCTOR_SIM_COMMIT={commit}");
}
