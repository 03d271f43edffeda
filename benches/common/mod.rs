//! Shared set-up of the benchmarks: the benchmark series and thread pools.

use std::path::Path;

use organism::market::{
    csv::load_candles,
    synthetic::{generate, SyntheticParams},
    Candles,
};

/// `../shared/data/bench/synth_1h_4y_seed42.csv`; where it is absent, says so and returns
/// 35,040 bars of the built-in synthetic market instead.
pub fn bench_candles() -> Candles {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/bench/synth_1h_4y_seed42.csv");
    load_candles(&file).unwrap_or_else(|e| {
        eprintln!("benchmark file unavailable ({e}); using 35,040 synthetic bars instead");
        generate(&SyntheticParams {
            bars: 35_040,
            ..SyntheticParams::default()
        })
        .markets[0]
            .candles
            .clone()
    })
}

/// A rayon pool of `threads` workers.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}
