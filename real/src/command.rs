//! What a subcommand is: its flags (a clap [`clap::Args`]) and what it does with them. Each
//! command lives in a file of its own and is listed once in `main.rs`'s `commands!` registry.

use std::process::ExitCode;

/// One subcommand of `conductor`.
pub trait Command: clap::Args {
    /// A problem across flags that clap cannot express, reported as a usage error (exit 2).
    fn flag_problem(&self) -> Option<String> {
        None
    }

    /// Does the command on the tokio runtime: its exit status, or why it failed (exit 1).
    async fn run(self) -> anyhow::Result<ExitCode>;
}
