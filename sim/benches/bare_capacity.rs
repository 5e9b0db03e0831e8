//! Simulated arrivals per wall-second on issue 15's bare-capacity scenario
//! (scenarios/bench/bare-capacity.toml: one conductor, 10 workers, Poisson 5/s, exp 1 s, 20,000
//! containers), with the reconciler at its default interval and off. The whole-process figure
//! against SimPy's bare pool is `scripts/bench`'s; this one is the simulation alone.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bare_capacity(c: &mut Criterion) {
    let mut g = c.benchmark_group("bare_capacity");
    g.sample_size(10);
    for (name, extra) in [
        ("reconciler_on_1h", None),
        (
            "reconciler_off_1h",
            Some("cluster.reconcile_interval=\"0s\""),
        ),
    ] {
        // One simulated hour of the scenario's 11 (18,000 arrivals) keeps an iteration within
        // a few tenths of a second; the reconciler's share is the same per simulated hour.
        let mut sets = vec!["duration=\"1h\"".to_string()];
        sets.extend(extra.map(str::to_string));
        let scn =
            common::scenario("bench/bare-capacity.toml", &sets).unwrap_or_else(|e| panic!("{e}"));
        let probe = common::run(&scn);
        println!(
            "bare_capacity/{name}: {} arrivals per iteration",
            probe.submitted
        );
        g.throughput(Throughput::Elements(probe.submitted));
        g.bench_function(name, |b| b.iter(|| common::run(&scn)));
    }
    g.finish();
}

criterion_group!(benches, bare_capacity);
criterion_main!(benches);
