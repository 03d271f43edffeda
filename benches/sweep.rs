//! Workload A of BENCHMARKS.md: 890 EMA-crossover combos on 35,040 hourly candles, on one and
//! on two threads. Reads `../shared/data/bench/synth_1h_4y_seed42.csv`; where that file is
//! absent it says so and uses 35,040 bars of the built-in synthetic market instead.

mod common;

use common::{bench_candles, pool};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use organism::bench::{benchmark_config, sweep, workload_a_grid, FastData};

fn workload_a(c: &mut Criterion) {
    let candles = bench_candles();
    let cfg = benchmark_config();
    let data = FastData::new(&candles, &cfg);
    let grid = workload_a_grid();
    let mut group = c.benchmark_group("workload_a_sweep");
    group.sample_size(20);
    group.throughput(Throughput::Elements((grid.len() * candles.len()) as u64));
    for threads in [1usize, 2] {
        let pool = pool(threads);
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter(|| pool.install(|| sweep(&data, &grid)))
        });
    }
    group.finish();
}

criterion_group!(benches, workload_a);
criterion_main!(benches);
