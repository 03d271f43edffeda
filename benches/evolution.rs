//! Workload B of BENCHMARKS.md: one NSGA-II generation (population 256, the 4-gene EMA
//! crossover + ATR stop genome, four objectives) on one and two threads. Reads
//! `../shared/data/bench/synth_1h_4y_seed42.csv`; where it is absent, 35,040 bars of the
//! built-in synthetic market are used instead (and said so).

mod common;

use common::{bench_candles, pool};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use organism::{
    bench::benchmark_config,
    evolution::{
        problem::{workload_b_settings, WorkloadB},
        Evolver,
    },
    market::{FundingSeries, Market},
};

fn workload_b(c: &mut Criterion) {
    let candles = bench_candles();
    let market = Market::new("bench", candles, FundingSeries::default());
    let cfg = benchmark_config();
    let problem = WorkloadB::new(&market, &cfg).expect("workload B spec");
    let evolver = Evolver::new(&problem, workload_b_settings());
    let start = evolver.init(42, &|| {});
    let mut group = c.benchmark_group("workload_b_generation");
    group.sample_size(30);
    group.throughput(Throughput::Elements(256));
    for threads in [1usize, 2] {
        let pool = pool(threads);
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter_batched(
                || start.clone(),
                |mut s| pool.install(|| evolver.step(&mut s, &|| {})),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, workload_b);
criterion_main!(benches);
