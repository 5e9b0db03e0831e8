//! `conductor`: runs one service of the reference deployment for real, over TCP and wall-clock
//! time, or drives a deployment as an open-loop client.
//!
//! ```text
//! conductor store     --listen ADDR --hosts N [--containers N] [--journal FILE [--sync]] [--log FILE]
//! conductor bus       --listen ADDR [--prefetch N]
//! conductor host      --listen ADDR --index I [--hosts N] [--containers N] [--service 1s]
//!                     [--service-dist const|exp] [--failure-rate 0.0] [--seed S]
//!                     [--scenario FILE [--set KEY=VALUE]...] [--fencing] [--journal FILE [--sync]]
//! conductor conductor --index I --bus ADDR --store ADDR --host ADDR... [--rpc-workers 64]
//!                     [--pool-workers 10] [--overflow caller-runs|reject|queue|unbounded]
//! conductor api       --listen ADDR --store ADDR --bus ADDR [--validate-state]
//!                     [--async-rpc call|cast] [--rpc-timeout 60s] [--http ADDR]
//! conductor client    --api ADDR --rate R --duration 10s --containers N [--op start] [--json]
//! conductor check     SCENARIO [--set KEY=VALUE]...
//! conductor check-history FILE... [--invariants a,b|all] [--json]
//! conductor cluster   SCENARIO --out DIR [--set KEY=VALUE]... [--for D] [--drain D] [--seed S]
//! conductor load      SCENARIO --target http://HOST:PORT [--duration D] [--drain D] [--set ...]
//!                     [--out DIR] [--progress] [--recorder DIR]
//! conductor calibrate SCENARIO [--time-scale X] [--seeds N] [--target URL [--recorder DIR]]
//!                     [--set ...] [--out DIR] [--sim-bin FILE] [--real-slowdown F]
//! ```
//!
//! A service that listens prints `listening ADDR` on stdout once it is bound (so `--listen
//! 127.0.0.1:0` works), then records its events as JSON lines on stderr or `--log FILE` (the
//! store and the bus have none to record). The api and the conductor wait up to `--wait 30s` for the
//! services they connect to, so the processes may start in any order. Each runs until SIGINT/SIGTERM
//! (exit 0) or until it fails (exit 1). Bad flags exit 2. The client exits 0 when every request
//! was answered (whatever the answer), 1 otherwise. `check` validates a scenario file with the
//! simulator's parser, printing and exiting as `conductor-sim check` does (0 valid, 2 bad input).
//! `check-history` judges the services' logs with the simulator's checker: 0 when nothing broke,
//! 1 on a violation, 2 on bad input.
//!
//! This is the real build only (`RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo build --release
//! -p real`); under `--cfg madsim` the binary only says so.

#![warn(missing_docs)]

#[cfg(madsim)]
fn main() -> std::process::ExitCode {
    eprintln!(
        "error: the `conductor` binary runs services over real TCP and needs the real build: \
         `RUSTFLAGS= CARGO_TARGET_DIR=target/real cargo build --release -p real`"
    );
    std::process::ExitCode::from(2)
}

/// The commands, one file each: `Variant => module` declares `mod module;` and the subcommand
/// `variant` with flags `module::Args` (a [`command::Command`]; its doc comment is the
/// command's help). Adding a command is its file and one line here.
macro_rules! commands {
    ($($variant:ident => $module:ident,)*) => {
        $(
            #[cfg(not(madsim))]
            mod $module;
        )*

        /// The subcommands.
        #[cfg(not(madsim))]
        #[derive(clap::Subcommand, Debug)]
        enum Cmd {
            $($variant($module::Args),)*
        }

        #[cfg(not(madsim))]
        impl Cmd {
            /// The command's problem across flags, if any.
            fn flag_problem(&self) -> Option<String> {
                match self {
                    $(Cmd::$variant(a) => command::Command::flag_problem(a),)*
                }
            }

            /// Runs the command.
            async fn run(self) -> anyhow::Result<std::process::ExitCode> {
                match self {
                    $(Cmd::$variant(a) => command::Command::run(a).await,)*
                }
            }
        }
    };
}

commands! {
    Api => api,
    Bus => bus,
    Store => store,
    Host => host,
    Conductor => conductor,
    Client => client,
    Check => check,
    CheckHistory => check_history,
    Cluster => cluster,
    Load => load,
    Calibrate => calibrate,
}

#[cfg(not(madsim))]
mod command;
#[cfg(not(madsim))]
mod drive;
#[cfg(all(not(madsim), feature = "etcd"))]
mod etcd;
#[cfg(not(madsim))]
mod flags;
#[cfg(not(madsim))]
mod http_api;
#[cfg(not(madsim))]
mod journal;
#[cfg(not(madsim))]
mod primary;
#[cfg(not(madsim))]
mod procs;
#[cfg(not(madsim))]
mod service;
#[cfg(not(madsim))]
mod zun;

/// The command line.
#[cfg(not(madsim))]
#[derive(clap::Parser, Debug)]
#[command(
    name = "conductor",
    version,
    about = "Runs one service of the conductor-sim reference deployment over real TCP, \
             drives a deployment as an open-loop client, or validates a scenario file"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    use std::process::ExitCode;

    let mut app = Cli::command();
    let matches = app.get_matches_mut();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut app).exit());
    // Cross-flag checks clap cannot express: still usage errors (exit 2), about the subcommand.
    if let Some(msg) = cli.cmd.flag_problem() {
        app.build();
        let sub = matches.subcommand_name().unwrap_or_default();
        match app.find_subcommand_mut(sub) {
            Some(sub) => sub
                .error(clap::error::ErrorKind::ValueValidation, msg)
                .exit(),
            None => app
                .error(clap::error::ErrorKind::ValueValidation, msg)
                .exit(),
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(cli.cmd.run()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<command::BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
