//! Each seed's default genome on the bundled hourly market (BTC, 17,520 bars): targets plus a
//! full backtest, with a warm indicator cache (the evolution case). ML seeds are also timed on
//! one year (8,760 bars), cold: every evaluation refits its models.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use organism::{
    backtest::run,
    execution::EngineConfig,
    market::synthetic::{generate, SyntheticParams},
    seeds::{registry, Prepared},
};

fn seeds(c: &mut Criterion) {
    let u = generate(&SyntheticParams::default());
    let market = u
        .market("BTC")
        .expect("BTC in the synthetic market")
        .clone();
    let n = market.candles.len();
    let prepared = Prepared::new(market.clone());
    let cfg = EngineConfig::default();
    let reg = registry().expect("seed specs load");
    let mut group = c.benchmark_group("seed_default_genome");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    for e in reg {
        let g = e.spec.default_genome();
        // Warm the cache (and the ML feature matrix).
        let _ = e.targets(&g, &prepared);
        group.bench_function(e.spec.name.as_str(), |b| {
            b.iter(|| {
                let tg = e.targets(&g, &prepared);
                run(
                    &prepared.market.candles,
                    &prepared.market.funding_per_bar,
                    &tg,
                    &cfg,
                )
            })
        });
    }
    group.finish();
    let year = generate(&SyntheticParams {
        bars: 8760,
        ..SyntheticParams::default()
    });
    let m = year.market("BTC").expect("BTC").clone();
    let mut group = c.benchmark_group("ml_seed_one_year_cold");
    group.sample_size(10);
    group.throughput(Throughput::Elements(8760));
    for e in reg.iter().filter(|e| e.is_ml()) {
        let g = e.spec.default_genome();
        group.bench_function(e.spec.name.as_str(), |b| {
            b.iter(|| {
                let p = Prepared::new(m.clone());
                let tg = e.targets(&g, &p);
                run(&p.market.candles, &p.market.funding_per_bar, &tg, &cfg)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, seeds);
criterion_main!(benches);
