//! Seeds per wall-second of `explore` on scenarios/reference.toml (3 conductors, state-check
//! with fencing, random partitions and kills, every invariant judged), one job: the figure of
//! `conductor-sim explore scenarios/reference.toml --seeds N --jobs 1`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sim::explore::explore;

/// Seeds per iteration: a reference seed takes a few tenths of a second.
const SEEDS: u64 = 2;

fn reference(c: &mut Criterion) {
    let scn = common::scenario("reference.toml", &[]).unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("explore");
    g.sample_size(10);
    g.throughput(Throughput::Elements(SEEDS));
    g.bench_function("reference_2_seeds", |b| {
        b.iter(|| {
            let found = explore(&scn, 1, SEEDS, 1, &|| {});
            assert!(found.passed(), "reference.toml broke an invariant");
            found
        })
    });
    g.finish();
}

criterion_group!(benches, reference);
criterion_main!(benches);
