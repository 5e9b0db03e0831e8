//! `conductor client`: an open-loop load generator sending requests to the API at their
//! intended times, and a summary of what was answered and how late.

use conductor::rpc::lock;
use crate::command::Command;
use crate::flags::{addr, duration, op_kind, positive_duration, positive_rate};
use crate::service::reach;
use anyhow::bail;
use clap::ValueEnum;
use conductor::idempotency::KeyReuse;
use conductor::op::OpKind;
use conductor::proto::{Answer, Msg, OpSpec};
use conductor::wire;
use scenario::workload::Arrivals;
use serde::Serialize;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The most ops one `client` run may plan (its intended send times are kept in memory).
const MAX_CLIENT_OPS: u64 = 10_000_000;

/// An open-loop load generator: sends requests to the API at their intended times.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The API's address.
    #[arg(long, value_parser = addr)]
    api: SocketAddr,
    /// Requests per second (mean rate with `--arrival poisson`).
    #[arg(long, value_parser = positive_rate)]
    rate: f64,
    /// How long to send for.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
    duration: Duration,
    /// Containers 0..N the requests go to, round-robin.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    containers: u64,
    /// The op every request asks for.
    #[arg(long, default_value = "start", value_parser = op_kind)]
    op: OpKind,
    /// Arrival process.
    #[arg(long, value_enum, default_value_t = Arrival::Constant)]
    arrival: Arrival,
    /// Seed of the Poisson arrivals (drawn as a scenario's `workload.arrival` with this seed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First op id (ids must be unique across clients of one deployment).
    #[arg(long, default_value_t = 1)]
    first_id: u64,
    /// After the last send, how long to wait for outstanding answers.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    drain: Duration,
    /// How long to keep trying to reach the API.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    wait: Duration,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Arrival {
    Constant,
    Poisson,
}

impl Command for Args {
    fn flag_problem(&self) -> Option<String> {
        let planned = self.rate * self.duration.as_secs_f64();
        (planned > MAX_CLIENT_OPS as f64).then(|| {
            format!(
                "--rate {} for --duration {} plans {planned:.0} requests; at most \
                 {MAX_CLIENT_OPS} per run",
                self.rate,
                humantime::format_duration(self.duration)
            )
        })
    }

    async fn run(self) -> anyhow::Result<ExitCode> {
        client(self).await
    }
}

/// The intended send times (µs from the start), in order: the simulator's own arrival
/// generator, so a seed gives the same Poisson arrivals as a scenario's.
fn plan(a: &Args) -> Vec<u64> {
    let arrival = match a.arrival {
        Arrival::Constant => scenario::Arrival::Constant { rate: a.rate },
        Arrival::Poisson => scenario::Arrival::Poisson { rate: a.rate },
    };
    Arrivals::new(&arrival, a.seed, a.duration).collect()
}

#[derive(Default, Serialize)]
struct Answers {
    accepted: u64,
    done: u64,
    conflict: u64,
    error: u64,
    timeout: u64,
    /// Refused by the op id's idempotency key: still in flight (409).
    key_in_flight: u64,
    /// Refused by the op id's idempotency key: it named another op (422).
    key_mismatch: u64,
}

#[derive(Default)]
struct Tally {
    answers: Answers,
    answered: u64,
    duplicate: u64,
    /// Accept latencies (µs from the intended send time) of accepted and done ops.
    latencies: Vec<u64>,
    seen: Vec<bool>,
}

#[derive(Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

#[derive(Serialize)]
struct Summary {
    op: &'static str,
    sent: u64,
    answered: u64,
    unanswered: u64,
    answers: Answers,
    /// Accept latency in ms from the intended send time (accepted and done ops only).
    accept_ms: Latency,
    intended_rate: f64,
    achieved_rate: f64,
    max_send_lag_ms: f64,
    /// Time spent sending.
    send_s: f64,
    /// Time until the last answer (or the end of the drain).
    wall_s: f64,
}

fn latency(mut v: Vec<u64>) -> Latency {
    v.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    let q = |p: f64| {
        if v.is_empty() {
            return 0.0;
        }
        // Nearest rank.
        let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
        ms(v[rank - 1])
    };
    Latency {
        p50: q(0.50),
        p90: q(0.90),
        p99: q(0.99),
        max: v.last().map_or(0.0, |&x| ms(x)),
        mean: if v.is_empty() {
            0.0
        } else {
            ms(v.iter().sum::<u64>()) / v.len() as f64
        },
    }
}

async fn client(a: Args) -> anyhow::Result<ExitCode> {
    let plan = Arc::new(plan(&a));
    let n = plan.len() as u64;
    let stream = reach("the API", a.api, a.wait).await?;
    let (link, mut reader) = wire::attach(stream);
    let start = Instant::now();
    let tally = Arc::new(Mutex::new(Tally {
        seen: vec![false; plan.len()],
        ..Tally::default()
    }));

    let (t, p, first_id) = (tally.clone(), plan.clone(), a.first_id);
    let answers = tokio::spawn(async move {
        loop {
            let msg = match reader.next().await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(anyhow::anyhow!("the API closed the connection")),
                Err(e) => return Err(anyhow::Error::new(e).context("reading from the API")),
            };
            let (id, answer) = match msg {
                Msg::Answer { id, answer } => (id, answer),
                Msg::Refused(why) => return Err(anyhow::anyhow!("the API refused us: {why}")),
                _ => continue,
            };
            let now = start.elapsed().as_micros() as u64;
            let mut t = lock(&t);
            let Some(i) = id
                .checked_sub(first_id)
                .filter(|&i| i < p.len() as u64)
                .map(|i| i as usize)
            else {
                continue;
            };
            if std::mem::replace(&mut t.seen[i], true) {
                t.duplicate += 1;
                continue;
            }
            t.answered += 1;
            match answer {
                Answer::Accepted => {
                    t.answers.accepted += 1;
                    t.latencies.push(now.saturating_sub(p[i]));
                }
                Answer::Done => {
                    t.answers.done += 1;
                    t.latencies.push(now.saturating_sub(p[i]));
                }
                Answer::Conflict(_) => t.answers.conflict += 1,
                Answer::Timeout => t.answers.timeout += 1,
                Answer::Refused(KeyReuse::InFlight) => t.answers.key_in_flight += 1,
                Answer::Refused(KeyReuse::Mismatch) => t.answers.key_mismatch += 1,
                // Failed, or refused because a service was unavailable.
                _ => t.answers.error += 1,
            }
            if t.answered == p.len() as u64 {
                return Ok(());
            }
        }
    });

    let mut max_lag = Duration::ZERO;
    for (i, &at) in plan.iter().enumerate() {
        let intended = start + Duration::from_micros(at);
        tokio::time::sleep_until(intended).await;
        max_lag = max_lag.max(Instant::now().saturating_duration_since(intended));
        let op = OpSpec {
            id: a.first_id.wrapping_add(i as u64),
            container: i as u64 % a.containers,
            kind: a.op,
            intended_us: at,
            deadline: None,
        };
        if !link.send(Msg::Request(op)) {
            bail!("lost the connection to the API after {i} requests");
        }
    }
    let sent_s = start.elapsed().as_secs_f64();

    let mut lost = None;
    if n > 0 {
        match tokio::time::timeout(a.drain, answers).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => lost = Some(e),
            Ok(Err(e)) => lost = Some(anyhow::Error::new(e).context("the answer reader")),
            Err(_) => {}
        }
    }
    let wall_s = start.elapsed().as_secs_f64();
    let t = std::mem::take(&mut *lock(&tally));
    let summary = Summary {
        op: a.op.name(),
        sent: n,
        answered: t.answered,
        unanswered: n - t.answered,
        answers: t.answers,
        accept_ms: latency(t.latencies),
        intended_rate: a.rate,
        achieved_rate: if sent_s > 0.0 { n as f64 / sent_s } else { 0.0 },
        max_send_lag_ms: max_lag.as_secs_f64() * 1000.0,
        send_s: sent_s,
        wall_s,
    };
    print_summary(&summary, a.json)?;
    if let Some(e) = lost {
        eprintln!("error: {e:#}");
    }
    if t.duplicate > 0 {
        eprintln!("error: {} answers came twice", t.duplicate);
    }
    Ok(if summary.unanswered == 0 && t.duplicate == 0 {
        ExitCode::SUCCESS
    } else {
        if summary.unanswered > 0 {
            eprintln!(
                "error: {} of {} requests unanswered after a drain of {}",
                summary.unanswered,
                n,
                humantime::format_duration(a.drain)
            );
        }
        ExitCode::FAILURE
    })
}

fn print_summary(s: &Summary, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(s)?)?;
    } else {
        let l = &s.accept_ms;
        let a = &s.answers;
        writeln!(
            out,
            "sent {} {} requests in {:.2} s ({:.1}/s intended, {:.1}/s achieved, max send \
             lag {:.1} ms); last answer after {:.2} s",
            s.sent,
            s.op,
            s.send_s,
            s.intended_rate,
            s.achieved_rate,
            s.max_send_lag_ms,
            s.wall_s
        )?;
        writeln!(
            out,
            "answered {} (accepted {}, done {}, conflict {}, error {}, timeout {}, op id in \
             flight {}, op id of another op {}), unanswered {}",
            s.answered,
            a.accepted,
            a.done,
            a.conflict,
            a.error,
            a.timeout,
            a.key_in_flight,
            a.key_mismatch,
            s.unanswered
        )?;
        writeln!(
            out,
            "accept latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  mean {:.2}",
            l.p50, l.p90, l.p99, l.max, l.mean
        )?;
    }
    out.flush()?;
    Ok(())
}
