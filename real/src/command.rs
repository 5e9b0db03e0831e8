//! What a subcommand is: its flags (a clap [`clap::Args`]) and what it does with them. Each
//! command lives in a file of its own and is listed once in `main.rs`'s `commands!` registry.

use std::process::ExitCode;

/// One subcommand of `conductor`.
pub trait Command: clap::Args {
    /// A problem across flags that clap cannot express, reported as a usage error (exit 2).
    fn flag_problem(&self) -> Option<String> {
        None
    }

    /// Does the command on the tokio runtime: its exit status, or why it failed (exit 1; 2 for
    /// a [`BadInput`]).
    async fn run(self) -> anyhow::Result<ExitCode>;
}

/// Bad input found after the flags were parsed (a scenario file that does not validate): the
/// message is printed as `error: …` and the exit status is 2, as the simulator's.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}
