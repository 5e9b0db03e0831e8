//! Simulated ops per wall-second on the bundled baseline (one seed, one core). The same figure is
//! printed by `conductor-sim run` as `host.sim_ops_per_wall_s`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sim::world::run_seed;
use std::path::Path;

fn baseline(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/baseline.toml");
    // Half an hour of simulated load keeps an iteration near a tenth of a second.
    let scn =
        scenario::load(&path, &["duration=\"30m\"".to_string()]).unwrap_or_else(|e| panic!("{e}"));
    let probe = std::thread::scope(|s| s.spawn(|| run_seed(&scn, 1)).join())
        .expect("seed thread")
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "baseline (30 min simulated): {} ops, {} messages, {:.2} messages per op",
        probe.submitted,
        probe.messages,
        probe.messages as f64 / probe.sent_total.max(1) as f64
    );
    let mut g = c.benchmark_group("simulate");
    g.throughput(Throughput::Elements(probe.submitted));
    g.sample_size(20);
    g.bench_function("baseline_30m", |b| {
        b.iter(|| {
            // A fresh thread per run, as the CLI does: madsim keeps per-thread state.
            std::thread::scope(|s| s.spawn(|| run_seed(&scn, 1)).join())
                .expect("seed thread")
                .expect("run")
        })
    });
    g.finish();
}

criterion_group!(benches, baseline);
criterion_main!(benches);
