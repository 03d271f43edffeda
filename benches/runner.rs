//! The bar-by-bar runner's cost per new closed bar for each seed with one year of hourly
//! history (8,760 bars): the newest target of a history one bar longer than the last one the
//! runner decided (indicator states carried, fitted ML models reused, as in a live runner);
//! and the cost of appending one bar to the candle store (written and synced to disk).

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, Criterion};
use organism::{
    execution::{EngineConfig, SimulatedVenue},
    market::{
        csv::{candles_to_csv, funding_to_csv},
        synthetic::{generate, SyntheticParams},
        types::{Coin, Interval},
        Market,
    },
    runner::{CandleStore, StrategyRunner},
    seeds::{registry, Genome},
};

fn runner(c: &mut Criterion) {
    let u = generate(&SyntheticParams {
        bars: 8_760,
        ..SyntheticParams::default()
    });
    let m = u.market("BTC").expect("BTC").clone();
    let dir = std::env::temp_dir().join(format!("organism-bench-runner-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("candles")).expect("bench folder");
    std::fs::create_dir_all(dir.join("funding")).expect("bench folder");
    std::fs::write(
        dir.join("candles/store_BTC_1h.csv"),
        candles_to_csv(&m.candles),
    )
    .expect("write store");
    std::fs::write(
        dir.join("funding/store_BTC.csv"),
        funding_to_csv(&m.funding),
    )
    .expect("write store");
    let coin = Coin::new("BTC").expect("coin");
    let store = CandleStore::open(&dir, &coin, Interval::H1).expect("open store");
    assert_eq!(store.len(), 8_760);
    let cfg = EngineConfig::default();
    let mut group = c.benchmark_group("runner_new_bar_one_year");
    group.sample_size(10);
    // The last `GROWN` bars of the year arrive one at a time: each timed call decides the next
    // bar, as a running session does. (Reaching the end, the runner starts again from the
    // first of them, outside the timing.)
    const GROWN: usize = 100;
    let full = store.market();
    let n = full.candles.len();
    let histories: Vec<Arc<Market>> = (n - GROWN..=n)
        .map(|k| Arc::new(full.slice(0..k)))
        .collect();
    for e in registry().expect("seed specs") {
        let fresh = || {
            let mut r = StrategyRunner::new(
                Genome::seed(e, e.spec.default_genome()),
                &cfg,
                SimulatedVenue::new(cfg.costs(), cfg.cash),
            );
            // The models of the history are fitted once, as a running runner has them.
            let _ = r.newest(&histories[0]);
            r
        };
        let mut r = fresh();
        let mut next = 1;
        group.bench_function(e.spec.name.as_str(), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    if next == histories.len() {
                        r = fresh();
                        next = 1;
                    }
                    #[allow(clippy::disallowed_methods)] // a benchmark times things
                    let start = Instant::now();
                    black_box(r.newest(&histories[next]).target);
                    spent += start.elapsed();
                    next += 1;
                }
                spent
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("candle_store");
    group.sample_size(10);
    let append_dir = dir.join("append");
    let mut s = CandleStore::open(&append_dir, &coin, Interval::H1).expect("open store");
    let mut ts = 0i64;
    group.bench_function("append_bar_synced", |b| {
        b.iter(|| {
            ts += Interval::H1.ms();
            s.append_bar(ts, 100.0, 101.0, 99.0, 100.5, 1.0)
                .expect("append")
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, runner);
criterion_main!(benches);
