//! `conductor check`: validates a scenario file with the simulator's own parser, printing what
//! `conductor-sim check` prints and exiting as it does (0 valid, 2 bad input).

use crate::command::{BadInput, Command};
use std::path::PathBuf;
use std::process::ExitCode;

/// Validates a scenario without running it.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Overrides a scenario key by its dotted path, e.g. `--set cluster.pool_workers=12`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

impl Command for Args {
    async fn run(self) -> anyhow::Result<ExitCode> {
        let (line, warnings) = scenario::check_with_warnings(&self.scenario, &self.sets)
            .map_err(|e| BadInput(e.to_string()))?;
        println!("{line}");
        for w in warnings {
            eprintln!("warning: {w}");
        }
        Ok(ExitCode::SUCCESS)
    }
}
