//! `conductor-sim`: the command line. Exit status: 0 every judged invariant and SLO holds,
//! 1 a violation or a failed SLO, 2 bad input, 3 the run could not be completed.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use scenario::{self, Scenario};
use sim::run::{default_jobs, on_fresh_thread, report, run_seeds, run_seeds_with};
use sim::shard::Shard;
use sim::sweep::{self, Finish, Plan, ProbeEvent, ShardFile, Source, SweepError};
use sim::trace::Trace;
use sim::world::{run_seed_with, RunOptions};
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
    /// Runs many seeds looking for invariant violations; writes explore.json.
    Explore(ExploreArgs),
    /// Runs one seed again, exactly as run and explore did, optionally with an event trace.
    Replay(ReplayArgs),
    /// Explores every combination of some scenario keys over base scenarios (fault mixes) and
    /// tabulates which invariants each combination holds and which it breaks.
    Matrix(MatrixArgs),
    /// Sweeps a grid of scenario keys with paired seeds and recommends the cheapest size
    /// that meets the scenario's [slo].
    Sweep(SweepArgs),
    /// Combines the outputs of `sweep --shard I/N` into what one unsharded sweep writes.
    Merge(MergeArgs),
    /// Runs every combination of some scenario keys (retry policies, budgets, breakers) on the
    /// same seeds and compares goodput, amplification, latency and recovery, with paired
    /// differences per seed against the first row.
    Compare(CompareArgs),
    /// Reduces a failing seed to a small standalone scenario that breaks the same invariant
    /// (exit 0: written and checked; 1: nothing to shrink; 2: bad input).
    Shrink(ShrinkArgs),
}

#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    s: ScenarioArgs,
    /// An axis: a key and the values it takes, e.g. `--vary client.retry.policy=none,full-jitter`;
    /// a value may bring keys along after `+` (`full-jitter+client.retry.budget.ratio=0.1`);
    /// several --vary make every combination, the last fastest.
    #[arg(long = "vary", value_name = "KEY=V1,V2,…")]
    vary: Vec<String>,
    /// Seeds per row (the same seeds, hence the same arrivals, on every row).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    seeds: u64,
    /// First seed (default: the scenario's `seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Runs at once (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Output directory (default: reports/out/<scenario name>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write compare.csv.
    #[arg(long)]
    csv: bool,
}

#[derive(Args)]
struct ShrinkArgs {
    #[command(flatten)]
    s: ScenarioArgs,
    /// The failing seed (e.g. one of explore.json's failing seeds).
    #[arg(long)]
    seed: Option<u64>,
    /// The invariant to keep broken (default: the first the seed breaks that the scenario does
    /// not expect).
    #[arg(long, value_name = "NAME")]
    invariant: Option<String>,
    /// Where to write the reproduction (default:
    /// reports/out/<scenario name>/shrunk-<invariant>-seed-<N>.toml).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The most simulation runs to spend.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_runs: u64,
    /// Other schedule seeds tried before a reduction is rejected.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=16))]
    schedule_tries: u64,
    /// Runs at once (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// The commit recorded as the reproduction's origin (default: the one this binary was
    /// built from).
    #[arg(long)]
    commit: Option<String>,
}

#[derive(Args)]
struct SweepArgs {
    #[command(flatten)]
    s: ScenarioArgs,
    /// KEY=A..B[:STEP]: a scenario key by dotted path, A..B inclusive, STEP default 1;
    /// several --grid make a cartesian product, the first outermost.
    #[arg(long, value_name = "KEY=A..B[:STEP]")]
    grid: Vec<String>,
    /// Seeds per row (the same seeds on every row).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    seeds: u64,
    /// First seed (default: the scenario's `seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Runs at once (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Output directory (default: reports/out/<scenario name>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only shard I of N (the (row, seed) jobs whose index % N == I-1) and write
    /// shard.json for `merge`.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Also write sweep.csv and timeseries.csv.
    #[arg(long)]
    csv: bool,
    /// Skip the headroom search (the arrival rate at which the recommended size stops
    /// meeting its SLO).
    #[arg(long)]
    no_headroom: bool,
    /// Recommend the cheapest size that also meets every [slo] at F × the load (every
    /// arrival rate scaled: schedule phases and a trace's `scale` too), e.g. 1.2.
    #[arg(long, value_name = "F")]
    load_factor: Option<f64>,
}

#[derive(Args)]
struct MergeArgs {
    /// Directories written by `sweep --shard I/N`, one per shard.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Output directory (default: reports/out/<scenario name>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runs at once for the headroom search (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Also write sweep.csv and timeseries.csv.
    #[arg(long)]
    csv: bool,
    /// Skip the headroom search.
    #[arg(long)]
    no_headroom: bool,
    /// As `sweep --load-factor F`.
    #[arg(long, value_name = "F")]
    load_factor: Option<f64>,
}

#[derive(Args)]
struct ScenarioArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Overrides a scenario key by its dotted path, e.g. `--set cluster.pool_workers=12`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Reseeds only the scheduler's choices (`[simulation] schedule_seed`), keeping the
    /// workload's and the faults' random streams.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=(i64::MAX as u64)))]
    schedule_seed: Option<u64>,
}

impl ScenarioArgs {
    /// The overrides as a command line repeats them (`--set …`, `--schedule-seed …`).
    fn flags(&self) -> String {
        let mut s: String = self
            .sets
            .iter()
            .map(|x| format!(" --set {}", shell_word(x)))
            .collect();
        if let Some(k) = self.schedule_seed {
            s.push_str(&format!(" --schedule-seed {k}"));
        }
        s
    }
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
    /// Also write timeseries.csv (occupancy over time, seeds merged).
    #[arg(long)]
    csv: bool,
}

#[derive(Args)]
struct MatrixArgs {
    /// The base scenarios (one row group each: a fault mix, say).
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Overrides a key in every base scenario, before the axes.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// An axis: a key and the values it takes, e.g. `--vary cluster.ordering=none,state-check`.
    #[arg(long = "vary", value_name = "KEY=V1,V2,…", required = true)]
    vary: Vec<String>,
    /// Seeds per combination: seed … seed+N−1.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seeds run at once (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Output directory for matrix.json and matrix.md (default: reports/out/matrix/).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct ExploreArgs {
    #[command(flatten)]
    s: ScenarioArgs,
    /// Number of seeds: seed … seed+N−1.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    seeds: Option<u64>,
    /// First seed (default: the scenario's `seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Seeds run at once (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Runs only the I-th of N contiguous blocks of the seeds (for splitting an exploration
    /// over machines), e.g. `--shard 2/4`.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Output directory (default: reports/out/<scenario name>/).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Stops after this many failing seeds (the first ones in seed order; explore.json's
    /// `seeds` says how many ran).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    stop_after: Option<u64>,
    /// A wall-clock budget (e.g. `30s`, `8h`): stops starting seeds when it is spent, finishes
    /// those started, and keeps the contiguous prefix of the seeds that ran.
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    budget: Option<std::time::Duration>,
    /// Writes one standalone scenario per failing seed into DIR, one per (invariant, design):
    /// a file already there is kept.
    #[arg(long, value_name = "DIR")]
    save_failures: Option<PathBuf>,
    /// With --save-failures: shrinks each one first.
    #[arg(long, requires = "save_failures")]
    shrink: bool,
    /// With --save-failures: the commit recorded as each file's origin (default: the one this
    /// binary was built from).
    #[arg(long, requires = "save_failures")]
    commit: Option<String>,
}

#[derive(Args)]
struct ReplayArgs {
    #[command(flatten)]
    s: ScenarioArgs,
    /// The seed to replay (e.g. one of explore.json's failing seeds).
    #[arg(long)]
    seed: Option<u64>,
    /// Prints the event trace, one line per event, as the run goes.
    #[arg(long)]
    trace: bool,
    /// Keeps only the trace lines and violations about this container (fault lines stay).
    #[arg(long, value_name = "ID")]
    container: Option<u64>,
    /// Also writes the seed's report.json here.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `print!` that ends quietly when stdout's reader went away (`| head`): [`emit`].
macro_rules! out {
    ($($t:tt)*) => { emit(&format!($($t)*))? };
}

/// `println!` through [`emit`].
macro_rules! outln {
    ($($t:tt)*) => { emit(&(format!($($t)*) + "\n"))? };
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
    let mut scn =
        scenario::load(&args.scenario, &args.sets).map_err(|e| BadInput(e.to_string()))?;
    if let Some(k) = args.schedule_seed {
        scn.simulation.schedule_seed = Some(k);
    }
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
            let (line, warnings) = scenario::check_with_warnings(&s.scenario, &s.sets)
                .map_err(|e| BadInput(e.to_string()))?;
            outln!("{line}");
            for w in warnings {
                eprintln!("warning: {w}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Explore(a) => explore(a),
        Cmd::Matrix(a) => matrix(a),
        Cmd::Replay(a) => replay(a),
        Cmd::Sweep(a) => sweep(a),
        Cmd::Merge(a) => merge(a),
        Cmd::Compare(a) => compare(a),
        Cmd::Shrink(a) => shrink(a),
    }
}

/// The peak resident memory of this process so far (kB), where the system says (Linux).
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn compare(a: CompareArgs) -> anyhow::Result<ExitCode> {
    use sim::compare::{CompareError, Plan};
    let bad = |e: CompareError| -> anyhow::Error {
        if e.is_bad_input() {
            // A scenario error names its file already.
            let file = a.s.scenario.display().to_string();
            let m = e.to_string();
            BadInput(if m.contains(&file) {
                m
            } else {
                format!("{file}: {m}")
            })
            .into()
        } else {
            anyhow::Error::new(e)
        }
    };
    let scn = load(&a.s)?;
    let source = Source::read(&a.s.scenario, &a.s.sets).map_err(sweep_err)?;
    let first = a.seed.unwrap_or(scn.seed);
    let plan = Plan::new(&source, &a.vary, first, a.seeds).map_err(bad)?;
    let jobs = a.jobs.unwrap_or_else(default_jobs).max(1);
    let out = out_dir(a.out, &scn)?;
    let wall = Instant::now();
    let pb = bar(
        plan.runs(),
        format!("{} ({} rows)", scn.name, plan.rows.len()),
        "runs",
    );
    let outcome = sim::compare::run(&plan, jobs, &|| pb.inc(1));
    pb.finish_and_clear();
    let outcome = outcome.map_err(bad)?;
    let runs_wall = wall.elapsed().as_secs_f64();
    let rss_after_runs = peak_rss_kb();
    let c = &outcome.compare;
    let table = c.table();
    let json = out.join("compare.json");
    write(&json, &c.to_json())?;
    let page = sim::compare::page(&plan, &outcome, &table)?;
    let html_path = out.join("report.html");
    write(&html_path, &page)?;
    out!("{table}");
    outln!("compare    {}", json.display());
    outln!("           {}", html_path.display());
    if a.csv {
        let csv = out.join("compare.csv");
        write(&csv, &c.to_csv())?;
        outln!("           {}", csv.display());
    }
    // Wall time and memory go to stdout only: compare.json stays byte-identical.
    let own = wall.elapsed().as_secs_f64() - runs_wall;
    let mem = match (rss_after_runs, peak_rss_kb()) {
        (Some(r), Some(p)) => format!(
            "; peak memory {:.0} MB ({:.0} MB after the runs)",
            p as f64 / 1024.0,
            r as f64 / 1024.0
        ),
        _ => String::new(),
    };
    outln!(
        "host       {} runs ({} rows x {} seeds, {jobs} at a time) in {runs_wall:.1} s wall; \
         compare's own work (statistics, recovery, files) {own:.2} s{mem}",
        plan.runs(),
        plan.rows.len(),
        plan.seeds
    );
    Ok(if c.any_slo_failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A progress bar over `n` seeds, on a terminal and for more than one seed only.
fn progress(name: &str, n: u64) -> Option<ProgressBar> {
    if n <= 1 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(n).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} seeds, {elapsed} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    Some(bar)
}

/// A progress bar over the simulated time of `n` seeds of `scn` (load phase and drain each),
/// on a terminal only — even for one seed, which can take many seconds.
fn time_progress(scn: &Scenario, n: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let per_seed = (scn.duration + scn.drain).as_secs().max(1);
    let bar = ProgressBar::new(n * per_seed).with_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} s simulated, {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(format!("{} 0/{n} seeds", scn.name));
    Some(bar)
}

/// Runs `work` (handed a callback for each finished seed) while a thread moves `bar` to the
/// simulated time the seeds have covered (`sim::progress`), ten times a second.
fn with_time_progress<T>(
    bar: &ProgressBar,
    name: &str,
    n: u64,
    work: impl FnOnce(&(dyn Fn() + Sync)) -> T,
) -> T {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let start = sim::progress::covered_us();
    let (over, seeds_done) = (AtomicBool::new(false), AtomicU64::new(0));
    std::thread::scope(|s| {
        s.spawn(|| {
            // Bounded by `work`: it ends when the seeds do.
            while !over.load(Ordering::Relaxed) {
                let covered_s = sim::progress::covered_us().saturating_sub(start) / 1_000_000;
                bar.set_position(covered_s.min(bar.length().unwrap_or(u64::MAX)));
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        let done = || {
            let k = seeds_done.fetch_add(1, Ordering::Relaxed) + 1;
            bar.set_message(format!("{name} {k}/{n} seeds"));
        };
        let out = work(&done);
        over.store(true, Ordering::Relaxed);
        out
    })
}

/// Makes the output directory before anything runs: one that cannot be made is bad input.
fn out_dir(out: Option<PathBuf>, scn: &Scenario) -> anyhow::Result<PathBuf> {
    let out = out.unwrap_or_else(|| Path::new("reports/out").join(&scn.name));
    make_out(&out)?;
    Ok(out)
}

/// A word for a shell command line, quoted when it needs to be.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn explore(a: ExploreArgs) -> anyhow::Result<ExitCode> {
    let scn = load(&a.s)?;
    let n = a.seeds.ok_or_else(|| {
        BadInput(format!(
            "{}: explore needs --seeds N (how many seeds to run)",
            a.s.scenario.display()
        ))
    })?;
    let first = a.seed.unwrap_or(scn.seed);
    let shard = a
        .shard
        .as_deref()
        .map(str::parse::<sim::explore::Shard>)
        .transpose()
        .map_err(|e| BadInput(e.to_string()))?;
    let (first, n) = shard.map_or((first, n), |s| s.seeds(first, n));
    let jobs = a.jobs.unwrap_or_else(default_jobs).max(1);
    let out = out_dir(a.out, &scn)?;
    let limits = sim::explore::Limits {
        stop_after: a.stop_after,
        deadline: a.budget.map(|b| Instant::now() + b),
    };
    let mut ex = match progress(&scn.name, n) {
        Some(bar) => {
            let ex = sim::explore::explore_with(&scn, first, n, jobs, limits, &|| bar.inc(1));
            bar.finish_and_clear();
            ex
        }
        None => sim::explore::explore_with(&scn, first, n, jobs, limits, &|| {}),
    };
    ex.shard = shard.map(|s| s.to_string());
    let path = out.join("explore.json");
    std::fs::write(&path, ex.to_json()).with_context(|| format!("writing {}", path.display()))?;
    let sets = a.s.flags();
    let scenario = shell_word(&a.s.scenario.display().to_string());
    let replay = |seed| format!("conductor-sim replay {scenario} --seed {seed} --trace{sets}");
    let shrink_cmd = |seed, inv: &str| {
        format!("conductor-sim shrink {scenario} --seed {seed} --invariant {inv}{sets}")
    };
    let summary = ex.summary(&replay) + &ex.hunt(&replay, &shrink_cmd);
    let page = sim::pages::explore_html(&ex, scn.duration.as_secs_f64(), &summary)?;
    let html_path = out.join("report.html");
    write(&html_path, &page)?;
    emit(&format!(
        "{summary}explore    {}\n           {}\n",
        path.display(),
        html_path.display()
    ))?;
    if let Some(dir) = &a.save_failures {
        let origin = |seed: u64, inv: &str| sim::reproduction::Origin {
            scenario: a.s.scenario.display().to_string(),
            seed,
            commit: a
                .commit
                .clone()
                .unwrap_or_else(|| sim::reproduction::build_commit().to_string()),
            command: shrink_cmd(seed, inv),
        };
        let saved = sim::save::save_failures(
            &scn,
            &ex,
            dir,
            &sim::save::How {
                shrink: a.shrink,
                jobs,
                base_dir: a
                    .s
                    .scenario
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(Path::to_path_buf),
            },
            &origin,
        )
        .map_err(|e| BadInput(format!("--save-failures {}: {e}", dir.display())))?;
        let mut text = String::new();
        for s in saved {
            text.push_str(&format!("saved      {s}\n"));
        }
        emit(&text)?;
    }
    if !ex.aborted.is_empty() {
        // As `run`: a simulation that aborted is a run that could not complete.
        anyhow::bail!(
            "{} seed(s) aborted (first: seed {})",
            ex.aborted.len(),
            ex.aborted[0].seed
        );
    }
    Ok(if ex.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn matrix(a: MatrixArgs) -> anyhow::Result<ExitCode> {
    use sim::matrix::{explore_matrix, markdown, Axis, MatrixError};
    let axes: Vec<Axis> = a
        .vary
        .iter()
        .map(|v| Axis::parse(v))
        .collect::<Result<_, _>>()
        .map_err(BadInput)?;
    let out = a
        .out
        .unwrap_or_else(|| Path::new("reports/out/matrix").to_path_buf());
    make_out(&out)?;
    let jobs = a.jobs.unwrap_or_else(default_jobs).max(1);
    let rows = explore_matrix(
        &a.scenarios,
        &a.sets,
        &axes,
        a.seed,
        a.seeds,
        jobs,
        &|row| {
            let params: Vec<String> = row.params.values().cloned().collect();
            let broken: Vec<String> = row.broken.keys().cloned().collect();
            eprintln!(
                "  {} {}: {}",
                row.scenario,
                params.join(" "),
                if broken.is_empty() {
                    "holds every invariant judged".to_string()
                } else {
                    format!("breaks {}", broken.join(", "))
                }
            );
        },
    )
    .map_err(|e| match e {
        MatrixError::Scenario(e) => anyhow::Error::new(BadInput(e.to_string())),
        MatrixError::Run(e) => anyhow::Error::new(e),
    })?;
    let table = markdown(&rows, &axes);
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "seeds": a.seeds,
        "first_seed": a.seed,
        "rows": rows,
    }))?;
    std::fs::write(out.join("matrix.json"), json + "\n")
        .with_context(|| format!("writing {}", out.join("matrix.json").display()))?;
    std::fs::write(out.join("matrix.md"), &table)
        .with_context(|| format!("writing {}", out.join("matrix.md").display()))?;
    emit(&format!(
        "{table}matrix     {}\n",
        out.join("matrix.md").display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn replay(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let scn = load(&a.s)?;
    let seed = a.seed.ok_or_else(|| {
        BadInput(format!(
            "{}: replay needs --seed N (the seed to run again, e.g. one of explore.json's \
             failing seeds)",
            a.s.scenario.display()
        ))
    })?;
    let out = a.out.map(|o| out_dir(Some(o), &scn)).transpose()?;
    let trace = a.trace.then(|| {
        // Streamed: the trace is written as the run goes, never held whole.
        let w = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
        Trace::new(Box::new(w), a.container)
    });
    let wall = Instant::now();
    // A fresh thread, as `run` gives every seed: madsim keeps per-thread state.
    let m = on_fresh_thread(seed, || run_seed_with(&scn, seed, RunOptions { trace }))?;
    let listed: Vec<&serde_json::Value> = m
        .violations
        .iter()
        .filter(|v| {
            a.container
                .is_none_or(|c| v.get("container").and_then(serde_json::Value::as_u64) == Some(c))
        })
        .collect();
    let counts = m.violations_by_invariant();
    let total: u64 = counts.values().sum();
    let rep = report(
        &scn,
        seed,
        std::slice::from_ref(&m),
        wall.elapsed().as_secs_f64(),
    );
    let about = a
        .container
        .map_or_else(String::new, |c| format!(" (about container {c})"));
    let mut text = format!("violations {total} found, {} listed{about}\n", listed.len());
    for v in listed {
        let field = |k: &str| v.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
        text.push_str(&format!(
            "  {} {} container {}: {}\n",
            field("time"),
            field("invariant"),
            v.get("container")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
            field("detail")
        ));
    }
    text.push_str(&rep.summary());
    emit(&text)?;
    if let Some(out) = out {
        let path = out.join("report.json");
        std::fs::write(&path, rep.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
        let page = sim::pages::run_html(&scn, &rep, std::slice::from_ref(&m))?;
        let html_path = out.join("report.html");
        write(&html_path, &page)?;
        emit(&format!(
            "report     {}\n           {}\n",
            path.display(),
            html_path.display()
        ))?;
    }
    Ok(if rep.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints `text` on stdout; a reader that went away (`| head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout"))
        }
        _ => Ok(()),
    }
}

fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let scn = load(&a.s)?;
    let first = a.seed.unwrap_or(scn.seed);
    let jobs = a.jobs.unwrap_or_else(default_jobs).max(1);
    // Made before the run: an output directory that cannot be made is bad input, found at once.
    let out = out_dir(a.out, &scn)?;
    let wall = Instant::now();
    let seeds = match time_progress(&scn, a.seeds) {
        Some(bar) => {
            let seeds = with_time_progress(&bar, &scn.name, a.seeds, |done| {
                run_seeds_with(&scn, first, a.seeds, jobs, done)
            });
            bar.finish_and_clear();
            seeds?
        }
        None => run_seeds(&scn, first, a.seeds, jobs)?,
    };
    let rep = report(&scn, first, &seeds, wall.elapsed().as_secs_f64());
    let path = out.join("report.json");
    std::fs::write(&path, rep.to_json()).with_context(|| format!("writing {}", path.display()))?;
    let page = sim::pages::run_html(&scn, &rep, &seeds)?;
    let html_path = out.join("report.html");
    write(&html_path, &page)?;
    if a.csv {
        let samples = sweep::merged_timeline(&seeds).samples();
        write(
            &out.join("timeseries.csv"),
            &sweep::timeseries_csv(&[], &[], &samples, true),
        )?;
    }
    out!("{}", rep.summary());
    outln!("report     {}", path.display());
    outln!("           {}", html_path.display());
    let o = &rep.ops;
    let outcome = scenario::guard::Outcome {
        submitted: o.submitted,
        rejected: o.rejected,
        accepted: o.accepted,
        // Cancelled ops count as failed in the report, but the client chose to drop them:
        // they say nothing about the hosts.
        failed: o.failed - o.cancelled.unwrap_or(0),
        lost: o.lost,
    };
    for w in scenario::guard::run_warnings(&scn, &outcome) {
        eprintln!("warning: {w}");
    }
    Ok(if rep.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A sweep error as the CLI reports it: bad input exits 2, the rest 3.
fn sweep_err(e: SweepError) -> anyhow::Error {
    if e.is_bad_input() {
        BadInput(e.to_string()).into()
    } else {
        anyhow::Error::new(e)
    }
}

/// A progress bar on a terminal (stderr), hidden otherwise.
fn bar(len: u64, msg: String, unit: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_style(
        ProgressStyle::with_template(&format!(
            "{{msg}} [{{bar:40}}] {{pos}}/{{len}} {unit}, {{elapsed}} (eta {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(msg);
    bar
}

/// Makes the output directory and proves it writable (a file created and removed) before
/// anything runs: a directory that exists but cannot take files (read-only, not ours) is bad
/// input found at once, not after the whole run.
fn make_out(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)
        .map_err(|e| BadInput(format!("--out {}: cannot create it: {e}", out.display())))?;
    let probe = out.join(format!(".conductor-sim-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| {
            BadInput(format!(
                "--out {}: cannot write in it: {e} (expected a writable directory)",
                out.display()
            ))
        })?;
    // Removing what we just made: a failure leaves an empty file, harmless.
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// `--load-factor F`: finite and above 0.
fn load_factor(f: Option<f64>) -> anyhow::Result<Option<f64>> {
    match f {
        Some(x) if !(x.is_finite() && x > 0.0) => Err(BadInput(format!(
            "--load-factor {x}: expected a finite number > 0 (e.g. 1.2 for 20% over the load)"
        ))
        .into()),
        _ => Ok(f),
    }
}

fn sweep(a: SweepArgs) -> anyhow::Result<ExitCode> {
    let scn = load(&a.s)?;
    let grid = a
        .grid
        .iter()
        .map(|g| sweep::parse_grid(g))
        .collect::<Result<Vec<_>, _>>()
        .map_err(sweep_err)?;
    let shard = match &a.shard {
        Some(s) => Shard::parse(s).map_err(|m| BadInput(format!("--shard `{s}`: {m}")))?,
        None => Shard::ALL,
    };
    let factor = load_factor(a.load_factor)?;
    let source = Source::read(&a.s.scenario, &a.s.sets).map_err(sweep_err)?;
    let first = a.seed.unwrap_or(scn.seed);
    let plan = Plan::new(source, grid, first, a.seeds).map_err(sweep_err)?;
    let jobs = a.jobs.unwrap_or_else(default_jobs).max(1);
    let out = a
        .out
        .unwrap_or_else(|| Path::new("reports/out").join(&scn.name));
    make_out(&out)?;
    let wall = Instant::now();
    let mine = (0..plan.jobs()).filter(|&i| shard.takes(i)).count() as u64;
    let pb = bar(
        mine,
        format!("{} ({} rows)", scn.name, plan.rows.len()),
        "runs",
    );
    let results = sweep::run_jobs(&plan, shard, jobs, &|| pb.inc(1));
    pb.finish_and_clear();
    let results = results.map_err(sweep_err)?;
    if !shard.is_all() {
        let path = out.join(sweep::SHARD_FILE);
        let file = ShardFile::new(&plan, shard, results);
        let text = serde_json::to_string(&file).context("serialising the shard")?;
        write(&path, &text)?;
        outln!(
            "shard {shard}: {mine} of {} runs in {:.1} s wall -> {}",
            plan.jobs(),
            wall.elapsed().as_secs_f64(),
            path.display()
        );
        outln!("combine every shard's directory with: conductor-sim merge DIR... --out DIR");
        return Ok(ExitCode::SUCCESS);
    }
    let grid_wall = wall.elapsed().as_secs_f64();
    let searches = Searches {
        headroom: !a.no_headroom,
        load_factor: factor,
    };
    let ran = finish_sweep(&plan, results, &out, jobs, a.csv, searches)?;
    // Wall times go to stdout only: sweep.json stays byte-identical between runs.
    outln!(
        "host       {} runs ({} rows x {} seeds, {jobs} at a time) in {grid_wall:.1} s wall; \
         {:.1} s with {}",
        plan.jobs(),
        plan.rows.len(),
        plan.seeds,
        wall.elapsed().as_secs_f64(),
        ran.what()
    );
    Ok(ExitCode::SUCCESS)
}

fn merge(a: MergeArgs) -> anyhow::Result<ExitCode> {
    let (plan, results) = sweep::merge(&a.dirs).map_err(sweep_err)?;
    let out = a
        .out
        .unwrap_or_else(|| Path::new("reports/out").join(&plan.rows[0].scn.name));
    make_out(&out)?;
    let jobs = a.jobs.unwrap_or_else(default_jobs).max(1);
    let searches = Searches {
        headroom: !a.no_headroom,
        load_factor: load_factor(a.load_factor)?,
    };
    finish_sweep(&plan, results, &out, jobs, a.csv, searches)?;
    Ok(ExitCode::SUCCESS)
}

/// The searches the end of a sweep runs beyond its rows.
#[derive(Clone, Copy)]
struct Searches {
    /// The headroom of the recommended size (not with `--no-headroom`).
    headroom: bool,
    /// `--load-factor F`.
    load_factor: Option<f64>,
}

impl Searches {
    /// What the time after the grid was spent on, for the `host` line.
    fn what(self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = self.load_factor {
            parts.push(format!("the load-factor search (×{f})"));
        }
        if self.headroom {
            parts.push("the headroom search".to_string());
        }
        parts.push("the report".to_string());
        parts.join(", ")
    }
}

/// The common end of `sweep` and `merge`: recommendation, headroom, files, table.
fn finish_sweep(
    plan: &Plan,
    results: Vec<(u64, reports::SeedMetrics)>,
    out: &Path,
    jobs: usize,
    csv: bool,
    searches: Searches,
) -> anyhow::Result<Searches> {
    let pb = bar(plan.seeds, "headroom".into(), "seeds");
    let progress = |ev: ProbeEvent| match ev {
        ProbeEvent::Start(f) => {
            pb.reset();
            pb.set_message(format!("headroom: load x{f:.3}"));
        }
        ProbeEvent::Row(i) => {
            pb.reset();
            pb.set_message(format!(
                "load factor: row {} at x{}",
                i + 1,
                searches.load_factor.unwrap_or(1.0)
            ));
        }
        ProbeEvent::Seed => pb.inc(1),
    };
    let outputs = sweep::finish(
        plan,
        results,
        &Finish {
            headroom: searches.headroom,
            load_factor: searches.load_factor,
            jobs,
            progress: &progress,
        },
    );
    pb.finish_and_clear();
    let outputs = outputs.map_err(sweep_err)?;
    let json = out.join("sweep.json");
    write(&json, &outputs.sweep.to_json())?;
    let page = out.join("report.html");
    write(&page, &outputs.html)?;
    out!("{}", outputs.sweep.table());
    outln!("sweep      {}", json.display());
    outln!("           {}", page.display());
    if csv {
        let rows = out.join("sweep.csv");
        write(&rows, &outputs.sweep.to_csv())?;
        let ts = out.join("timeseries.csv");
        write(&ts, &outputs.timeseries_csv)?;
        outln!("           {}", rows.display());
        outln!("           {}", ts.display());
    }
    // What ran: the headroom search needs a recommendation, the load-factor search a grid
    // that can recommend.
    Ok(Searches {
        headroom: outputs.sweep.headroom.is_some(),
        load_factor: outputs.sweep.load_factor.as_ref().map(|l| l.factor),
    })
}

fn shrink(a: ShrinkArgs) -> anyhow::Result<ExitCode> {
    use sim::reproduction::{self, Origin};
    use sim::shrink::{Options, ShrinkError};
    let scn = load(&a.s)?;
    let seed = a.seed.ok_or_else(|| {
        BadInput(format!(
            "{}: shrink needs --seed N (the failing seed, e.g. one of explore.json's)",
            a.s.scenario.display()
        ))
    })?;
    let invariant = a
        .invariant
        .as_deref()
        .map(|n| {
            checker::Invariant::from_name(n).ok_or_else(|| {
                BadInput(format!(
                    "--invariant {n}: expected an invariant name, one of {}",
                    checker::Invariant::ALL
                        .iter()
                        .map(|i| i.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        })
        .transpose()?;
    let jobs = a.jobs.unwrap_or_else(default_jobs).max(1);
    let base_dir =
        a.s.scenario
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf);
    let opts = Options {
        seed,
        invariant,
        max_runs: a.max_runs,
        jobs,
        alternatives: a.schedule_tries,
        base_dir,
    };
    let wall = Instant::now();
    let pb = bar(
        a.max_runs,
        format!("shrink {} seed {seed}", scn.name),
        "runs",
    );
    let progress = |stage: &str, runs: u64| {
        if !stage.is_empty() {
            pb.set_message(format!("shrink {} seed {seed}: {stage}", scn.name));
        }
        pb.set_position(runs);
    };
    let res = sim::shrink::shrink(&scn, &opts, &progress);
    pb.finish_and_clear();
    let shrunk = match res {
        Ok(s) => s,
        Err(ShrinkError::Nothing(m)) => {
            emit(&format!("{m}\n"))?;
            return Ok(ExitCode::from(1));
        }
        Err(e @ ShrinkError::Run(_)) => return Err(e.into()),
    };
    let scenario_word = shell_word(&a.s.scenario.display().to_string());
    let origin = Origin {
        scenario: a.s.scenario.display().to_string(),
        seed,
        commit: a
            .commit
            .clone()
            .unwrap_or_else(|| reproduction::build_commit().to_string()),
        command: format!(
            "conductor-sim shrink {scenario_word} --seed {seed} --invariant {}{}",
            shrunk.invariant.name(),
            a.s.flags()
        ),
    };
    let standalone = reproduction::standalone(
        &shrunk.scenario,
        shrunk.invariant,
        &shrunk.broken,
        &origin,
        &reproduction::shrunk_how(&shrunk),
    );
    let out = a.out.clone().unwrap_or_else(|| {
        Path::new("reports/out").join(&scn.name).join(format!(
            "shrunk-{}-seed-{seed}.toml",
            shrunk.invariant.name()
        ))
    });
    if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            BadInput(format!(
                "--out {}: cannot create {}: {e}",
                out.display(),
                dir.display()
            ))
        })?;
    }
    let text = reproduction::to_toml(&standalone, &origin).context("writing the scenario")?;
    write(&out, &text)?;
    // The file as written, loaded as any scenario is, must still break the invariant.
    let written = scenario::load(&out, &[])
        .map_err(|e| anyhow::anyhow!("the written file does not load: {e}"))?;
    let check = sim::shrink::trial(&written, seed, shrunk.invariant);
    let (b, f) = (shrunk.before, shrunk.after);
    let secs = |us: u64| humantime::format_duration(std::time::Duration::from_secs(us / 1_000_000));
    let mut text = format!(
        "shrink     {} seed {seed}: {}\n\
         faults     {} -> {}\n\
         ops        {} -> {}\n\
         load       {} -> {}\n\
         simulated  {} -> {}\n\
         conductors {} -> {}   hosts {} -> {}\n\
         runs       {}{} in {:.1} s wall\n",
        scn.name,
        shrunk.invariant.name(),
        b.faults,
        f.faults,
        b.ops,
        f.ops,
        humantime::format_duration(b.load),
        humantime::format_duration(f.load),
        secs(b.sim_us),
        secs(f.sim_us),
        b.conductors,
        f.conductors,
        b.hosts,
        f.hosts,
        shrunk.runs,
        if shrunk.out_of_budget {
            " (the --max-runs budget ran out)"
        } else {
            ""
        },
        wall.elapsed().as_secs_f64(),
    );
    for r in &shrunk.reseeded {
        text.push_str(&format!("reseeded   {r}\n"));
    }
    if let Some(k) = standalone.simulation.schedule_seed {
        text.push_str(&format!(
            "schedule   seed {k} (another than the seed's own was needed)\n"
        ));
    }
    text.push_str(&format!(
        "breaks     {}\n",
        shrunk
            .broken
            .iter()
            .map(|i| i.name())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    text.push_str(&format!("wrote      {}\n", out.display()));
    match check {
        Some((true, _, _)) => {
            text.push_str(&format!(
                "checked    conductor-sim run {} breaks {}\n",
                shell_word(&out.display().to_string()),
                shrunk.invariant.name()
            ));
            emit(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            emit(&text)?;
            anyhow::bail!(
                "{}: the written reproduction no longer breaks {} when run",
                out.display(),
                shrunk.invariant.name()
            )
        }
    }
}
