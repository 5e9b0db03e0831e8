//! Simulated ops per wall-second on the bundled baseline (one seed, one core), and on the
//! baseline scaled to N conductors, N hosts, 8·N ops/s and 1,000·N containers with by-host
//! routing (N = 1, 10, 100, 1,000): the per-op cost as the cluster grows. The same figure is
//! printed by `conductor-sim run` as `host.sim_ops_per_wall_s`; `scripts/bench` measures it as
//! whole processes, with the marginal cost that cancels start-up.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn baseline(c: &mut Criterion) {
    // Half an hour of simulated load keeps an iteration near a tenth of a second.
    let scn = common::scenario("baseline.toml", &["duration=\"30m\"".to_string()])
        .unwrap_or_else(|e| panic!("{e}"));
    let probe = common::run(&scn);
    println!(
        "baseline (30 min simulated): {} ops, {} messages, {:.2} messages per op",
        probe.submitted,
        probe.messages,
        probe.messages as f64 / probe.sent_total.max(1) as f64
    );
    let mut g = c.benchmark_group("simulate");
    g.throughput(Throughput::Elements(probe.submitted));
    g.sample_size(20);
    g.bench_function("baseline_30m", |b| b.iter(|| common::run(&scn)));
    g.finish();
}

/// The baseline's overrides at `n` conductors over `seconds` of simulated load (warmup and
/// drain scaled with it, as the baseline's 1 min and 2 min of 1 h).
fn scaled(n: u32, seconds: u64) -> Vec<String> {
    vec![
        format!("cluster.conductors={n}"),
        format!("cluster.hosts={n}"),
        "cluster.routing=\"by-host\"".to_string(),
        format!("workload.arrival.rate={}", 8.0 * f64::from(n)),
        format!("workload.containers={}", 1000 * n),
        format!("duration=\"{}ms\"", seconds * 1000),
        format!("warmup=\"{}ms\"", seconds * 1000 / 60),
        format!("drain=\"{}ms\"", seconds * 1000 / 30),
    ]
}

fn scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("baseline_scaled");
    g.sample_size(10);
    for n in [1u32, 10, 100, 1000] {
        // About 14,400 ops per iteration at every N (8·N ops/s for 1,800/N s); each iteration
        // also creates the 1,000·N containers, so at large N start-up weighs in.
        let seconds = 1800 / u64::from(n);
        let scn = match common::scenario("baseline.toml", &scaled(n, seconds.max(2))) {
            Ok(s) => s,
            Err(e) => {
                println!("baseline_scaled/n{n}: skipped, refused by this build: {e}");
                continue;
            }
        };
        let probe = common::run(&scn);
        println!(
            "baseline_scaled/n{n}: {} ops per iteration",
            probe.submitted
        );
        g.throughput(Throughput::Elements(probe.submitted));
        g.bench_function(format!("n{n}"), |b| b.iter(|| common::run(&scn)));
    }
    g.finish();
}

criterion_group!(benches, baseline, scale);
criterion_main!(benches);
