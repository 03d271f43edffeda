//! Strategy programs (issue 10's workload): 64 random programs of depth ≤ 6 (fixed seed), each
//! evaluated on one year of hourly bars for four coins (8,760 bars × BTC, ETH, SOL, DOGE) —
//! targets plus a full backtest per coin, with warm indicator caches (the evolution case) —
//! beside the twelve seeds' default genomes on the same data.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use organism::{
    backtest::run,
    execution::EngineConfig,
    genome::program::Generator,
    market::synthetic::{generate, SyntheticParams},
    seeds::{program, registry, Prepared},
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn programs(c: &mut Criterion) {
    let u = generate(&SyntheticParams {
        bars: 8760,
        ..SyntheticParams::default()
    });
    let markets: Vec<Prepared> = u.markets.iter().cloned().map(Prepared::new).collect();
    let cfg = EngineConfig::default();
    let reg = registry().expect("seed specs load");
    // Seed terminals from the ten rule seeds (the ML seeds' cost is timed in the seeds bench).
    let specs = reg
        .iter()
        .filter(|e| !e.is_ml())
        .map(|e| e.spec.clone())
        .collect();
    let g = Generator::new(specs, 6);
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let progs: Vec<_> = (0..64).map(|_| g.program(&mut rng)).collect();
    let risk = program::risk_spec().expect("risk genes").default_genome();
    let eval = |p| {
        for m in &markets {
            let t = program::targets(p, &risk, m);
            let _ = run(&m.market.candles, &m.market.funding_per_bar, &t, &cfg);
        }
    };
    // Warm the caches.
    for p in &progs {
        eval(p);
    }
    let mut group = c.benchmark_group("programs_one_year_four_coins");
    group.sample_size(10);
    group.throughput(Throughput::Elements(progs.len() as u64));
    group.bench_function("64_random_depth_le_6", |b| {
        b.iter(|| {
            // The programs share their common subtrees within an iteration, as a generation
            // does; the node values kept by earlier iterations are dropped (the indicator
            // series stay).
            for m in &markets {
                m.forget_nodes();
            }
            for p in &progs {
                eval(p);
            }
        })
    });
    group.finish();
    let mut group = c.benchmark_group("seeds_one_year_four_coins");
    group.sample_size(10);
    group.throughput(Throughput::Elements(10));
    group.bench_function("10_rule_seeds_default", |b| {
        b.iter(|| {
            for e in reg.iter().filter(|e| !e.is_ml()) {
                let gnm = e.spec.default_genome();
                for m in &markets {
                    let t = e.targets(&gnm, m);
                    let _ = run(&m.market.candles, &m.market.funding_per_bar, &t, &cfg);
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, programs);
criterion_main!(benches);
