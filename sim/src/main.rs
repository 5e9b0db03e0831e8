//! `conductor-sim`: the command line. Exit status: 0 every judged invariant and SLO holds,
//! 1 a violation or a failed SLO, 2 bad input, 3 the run could not be completed.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sim::run::{default_jobs, report, run_seeds, run_seeds_with};
use sim::scenario::{self, Scenario};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// A deterministic simulator and load-testing framework for services that run container
/// operations on a bounded worker pool.
#[derive(Parser)]
#[command(name = "conductor-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a scenario over one or more seeds and writes report.json.
    Run(RunArgs),
    /// Validates a scenario without running it.
    Check(ScenarioArgs),
    /// Runs many seeds looking for invariant violations.
    Explore {
        #[command(flatten)]
        s: ScenarioArgs,
        /// Number of seeds.
        #[arg(long)]
        seeds: Option<u64>,
    },
    /// Replays one seed with an event trace.
    Replay {
        #[command(flatten)]
        s: ScenarioArgs,
        /// The seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Sweeps a grid of scenario keys.
    Sweep {
        #[command(flatten)]
        s: ScenarioArgs,
        /// KEY=A..B[:STEP]
        #[arg(long)]
        grid: Vec<String>,
    },
}

#[derive(Args)]
struct ScenarioArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Overrides a scenario key by its dotted path, e.g. `--set cluster.pool_workers=12`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    s: ScenarioArgs,
    /// First seed (default: the scenario's `seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Number of seeds: seed … seed+N−1, pooled.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    seeds: u64,
    /// Seeds run at once (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Output directory (default: reports/out/<scenario name>/).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Bad input: reported with exit status 2.
#[derive(Debug)]
struct BadInput(String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BadInput {}

fn load(args: &ScenarioArgs) -> anyhow::Result<Scenario> {
    let origin = args.scenario.display().to_string();
    let scn = scenario::load(&args.scenario, &args.sets).map_err(|e| BadInput(e.to_string()))?;
    scenario::check_supported(&scn, &origin).map_err(|e| BadInput(e.to_string()))?;
    Ok(scn)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // 3, not 1: a run that could not finish (an aborted simulation, a report that could
            // not be written) must not read as a failed SLO.
            if e.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(3)
            }
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Check(s) => {
            let scn = load(&s)?;
            println!(
                "{}: ok — {} ({} conductor(s), {} pool workers each, about {:.0} ops over {})",
                s.scenario.display(),
                scn.name,
                scn.cluster.conductors,
                scn.cluster.pool_workers,
                scn.expected_ops(),
                humantime::format_duration(scn.duration),
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Explore { .. } | Cmd::Replay { .. } | Cmd::Sweep { .. } => Err(BadInput(
            "this command is not built yet (explore and replay come with the invariant checker, \
             sweep with capacity planning); use `run`"
                .into(),
        )
        .into()),
    }
}

fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let scn = load(&a.s)?;
    let first = a.seed.unwrap_or(scn.seed);
    let jobs = a.jobs.unwrap_or_else(default_jobs).max(1);
    let out = a
        .out
        .unwrap_or_else(|| Path::new("reports/out").join(&scn.name));
    // Made before the run: an output directory that cannot be made is bad input, found at once.
    std::fs::create_dir_all(&out)
        .map_err(|e| BadInput(format!("--out {}: cannot create it: {e}", out.display())))?;
    let wall = Instant::now();
    let seeds = if a.seeds > 1 && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(a.seeds).with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} seeds, {elapsed} (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(scn.name.clone());
        let seeds = run_seeds_with(&scn, first, a.seeds, jobs, &|| bar.inc(1));
        bar.finish_and_clear();
        seeds?
    } else {
        run_seeds(&scn, first, a.seeds, jobs)?
    };
    let rep = report(&scn, first, &seeds, wall.elapsed().as_secs_f64());
    let path = out.join("report.json");
    std::fs::write(&path, rep.to_json()).with_context(|| format!("writing {}", path.display()))?;
    print!("{}", rep.summary());
    println!("report     {}", path.display());
    Ok(if rep.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
