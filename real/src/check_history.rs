//! `conductor check-history`: judges the JSON-lines logs of a real deployment with the
//! simulator's own checker, printing the violations as `conductor-sim replay` does; exits 0
//! when none broke, 1 when some did, 2 on bad input (a file that cannot be read, a line that is
//! not an event, an unknown invariant).

use crate::command::Command;
use checker::history::check_files;
use checker::InvariantSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Judges the invariants on the JSON-lines logs (`--log FILE`) of a deployment's services.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The logs, one per service, in any order: their events are merged by time.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The invariants to judge: names separated by commas, or `all`. The liveness ones are
    /// judged on the final state the store and the hosts write into their logs when told to
    /// stop; without it they are reported as not judged, with the reason.
    #[arg(long, value_name = "NAMES", default_value = "all", value_parser = invariants)]
    invariants: InvariantSet,
    /// Print what was found as one JSON object.
    #[arg(long)]
    json: bool,
}

/// `a,b,…` or `all`, by the checker's registry of names.
fn invariants(s: &str) -> Result<InvariantSet, String> {
    let names: Vec<&str> = s.split(',').map(str::trim).collect();
    InvariantSet::from_names(&names).map_err(|e| e.to_string())
}

impl Command for Args {
    async fn run(self) -> anyhow::Result<ExitCode> {
        let found = match check_files(&self.files, self.invariants) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        let text = if self.json {
            let mut s = serde_json::to_string_pretty(&found.to_json())?;
            s.push('\n');
            s
        } else {
            found.to_string()
        };
        let mut out = std::io::stdout().lock();
        // A reader that went away (`| head`) is not an error.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        Ok(if found.violations() == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}
