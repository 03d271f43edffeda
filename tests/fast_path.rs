//! The fused fast path must give the same numbers as the general simulator + metrics on the
//! same inputs (close fills, long only, with and without the fixed ATR stop).

use organism::{
    backtest::run,
    bench::{ema_cross_long, sweep, workload_a_grid, FastData},
    execution::{EngineConfig, FillMode},
    fitness::Metrics,
    indicators::{atr, ema},
    market::synthetic::{generate, SyntheticParams},
    seeds::{find, Prepared},
};

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

#[test]
fn fast_path_equals_general_simulator() {
    let u = generate(&SyntheticParams {
        bars: 6000,
        ..SyntheticParams::default()
    });
    let cfg = EngineConfig {
        fill: FillMode::Close,
        funding: false,
        ..EngineConfig::default()
    };
    let seed = find("ema_crossover").unwrap();
    let mut checked = 0;
    for m in &u.markets {
        let c = &m.candles;
        let d = FastData::new(c, &cfg);
        let prepared = Prepared::new(m.clone());
        for &(fast, slow, stop) in &[
            (3, 10, None),
            (12, 26, None),
            (12, 26, Some((2.0, 14))),
            (30, 10, Some((1.0, 5))),
            (100, 400, None),
            (5, 50, Some((3.5, 30))),
            (2, 100, None),
            (49, 50, Some((0.5, 50))),
        ] {
            let mut genome = seed.spec.default_genome();
            let mut set = |k: &str, v: String| seed.spec.set(&mut genome, k, &v).unwrap();
            set("fast", fast.to_string());
            set("slow", slow.to_string());
            set("direction", "long".into());
            if let Some((mult, period)) = stop {
                set("stop_kind", "atr".into());
                set("stop_value", mult.to_string());
                set("risk_atr_period", period.to_string());
            }
            let report = run(c, &[], &seed.targets(&genome, &prepared), &cfg);
            let general = Metrics::compute(&report, &c.ts, c.bars_per_year());
            let atr_series = stop.map(|(_, p)| atr(&c.high, &c.low, &c.close, p));
            let fm = ema_cross_long(
                &d,
                &ema(&c.close, fast),
                &ema(&c.close, slow),
                atr_series.as_deref().zip(stop.map(|s| s.0)),
            );
            let ctx = format!("{} fast {fast} slow {slow} stop {stop:?}", m.coin);
            assert_eq!(fm.trades, general.trades, "{ctx}");
            assert_eq!(fm.closed_trades, general.closed_trades, "{ctx}");
            assert!(general.trades > 0, "{ctx}: no trades");
            assert!(rel(fm.final_equity, general.final_equity) < 1e-12, "{ctx}");
            assert!(rel(fm.total_return, general.total_return) < 1e-9, "{ctx}");
            assert!(
                rel(fm.sharpe, general.sharpe) < 1e-9,
                "{ctx}: {} {}",
                fm.sharpe,
                general.sharpe
            );
            assert!(rel(fm.max_drawdown, general.max_drawdown) < 1e-12, "{ctx}");
            assert_eq!(fm.consistency, general.consistency, "{ctx}");
            assert!(rel(fm.turnover, general.turnover) < 1e-12, "{ctx}");
            checked += 1;
        }
    }
    assert_eq!(checked, 32);
}

#[test]
fn sweep_matches_single_evaluations_in_grid_order() {
    let grid = workload_a_grid();
    assert_eq!(grid.len(), 890);
    assert_eq!(grid[0], (2, 10));
    assert_eq!(grid[889], (51, 200));
    let u = generate(&SyntheticParams {
        bars: 3000,
        ..SyntheticParams::default()
    });
    let c = &u.markets[0].candles;
    let d = FastData::new(c, &EngineConfig::default());
    let all = sweep(&d, &grid);
    for i in [0, 100, 500, 889] {
        let (f, s) = grid[i];
        let one = ema_cross_long(&d, &ema(&c.close, f), &ema(&c.close, s), None);
        assert_eq!(all[i], one);
    }
}

/// Two series with many exact ties and undefined stretches: the values are drawn from a few
/// small integers, and some bars (at the start and in the middle) are `NaN`. With an odd
/// `seed` each value is also raised by 0, 1 or 2 · 10⁻⁹: distinct values that single precision
/// rounds to one (ties there, not in the exact values).
fn tied_series(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let fine = if seed % 2 == 1 { 1e-9 } else { 0.0 };
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut draw = |t: usize| {
        if t < 5 || (t % 389 > 380) || rng.gen_bool(0.01) {
            f64::NAN
        } else {
            1000.0 + f64::from(rng.gen_range(0..4u8)) + fine * f64::from(rng.gen_range(0..3u8))
        }
    };
    let fast = (0..n).map(&mut draw).collect();
    let slow = (0..n).map(&mut draw).collect();
    (fast, slow)
}

#[test]
fn crossings_are_every_bar_where_the_crossing_tests_hold() {
    use organism::{
        bench::{Crossings, Series},
        strategy::{crossed_above, crossed_below},
    };
    for (n, seed) in [
        (1, 1),
        (64, 2),
        (65, 3),
        (1000, 4),
        (2999, 5),
        (2000, 6),
        (1500, 7),
    ] {
        let (f, s) = tied_series(n, seed);
        let (fs, ss) = (Series::new(f.clone()), Series::new(s.clone()));
        let up: Vec<u32> = (1..n)
            .filter(|&t| crossed_above(&f, &s, t))
            .map(|t| t as u32)
            .collect();
        let down: Vec<u32> = (1..n)
            .filter(|&t| crossed_below(&f, &s, t))
            .map(|t| t as u32)
            .collect();
        let mut whole = Crossings::default();
        whole.find(&fs, &ss);
        assert_eq!((&whole.up, &whole.down), (&up, &down), "n {n}");
        if n > 100 {
            // Crossings of both kinds, some from a tie (which the masks alone do not show as a
            // change of side for a crossing below).
            assert!(up.len() > n / 20 && down.len() > n / 20, "n {n}");
            let tie = |t: &u32| f[*t as usize - 1] == s[*t as usize - 1];
            assert!(up.iter().any(tie) && down.iter().any(tie), "n {n}");
        }
        // In blocks of 64 · k bars, continuing the search, the same.
        let mut blocks = Crossings::default();
        let mut start = 0;
        for k in [1, 3, 2, 5].iter().cycle() {
            if start >= n {
                break;
            }
            let end = (start + 64 * k).min(n);
            blocks.extend(&fs, &ss, start..end);
            start = end;
        }
        assert_eq!((&blocks.up, &blocks.down), (&up, &down), "n {n}");
    }
}

/// The crossover of two arbitrary series (ties, undefined stretches) on the fast path, against
/// the general engine fed the positions of the crossing rule itself.
#[test]
fn fast_path_with_ties_equals_the_engine_on_the_crossing_rule() {
    use organism::strategy::{crossed_above, crossed_below, Targets};
    let u = generate(&SyntheticParams {
        bars: 3000,
        ..SyntheticParams::default()
    });
    let cfg = EngineConfig {
        fill: FillMode::Close,
        funding: false,
        ..EngineConfig::default()
    };
    let mut long_trades = 0;
    for m in &u.markets {
        let c = &m.candles;
        let d = FastData::new(c, &cfg);
        let n = c.len();
        // Six pairs with ties; then long trades whose deepest drawdowns fall inside the trade,
        // not at an exit: one position held from bar `k` to the end, and one out for a bar
        // every `k + 1` bars.
        let mut cases: Vec<(Vec<f64>, Vec<f64>)> =
            (0..6).map(|i| tied_series(n, 100 + i)).collect();
        for k in [1, 700, 150, 400] {
            let from = (0..n).map(|t| f64::from(u8::from(t >= k))).collect();
            let gaps = (0..n)
                .map(|t| if t % (k + 1) == 0 { -1.0 } else { 1.0 })
                .collect();
            cases.push((from, vec![0.0; n]));
            cases.push((gaps, vec![0.0; n]));
        }
        for (case, (f, s)) in cases.iter().enumerate() {
            let mut targets = Targets::flat(n);
            let mut long = false;
            for t in 1..n {
                if !long && crossed_above(f, s, t) {
                    long = true;
                } else if long && crossed_below(f, s, t) {
                    long = false;
                }
                targets.position[t] = if long { 1.0 } else { 0.0 };
            }
            let report = run(c, &[], &targets, &cfg);
            let general = Metrics::compute(&report, &c.ts, c.bars_per_year());
            let fm = ema_cross_long(&d, f, s, None);
            let ctx = format!("{} case {case}", m.coin);
            assert!(general.trades > 0, "{ctx}");
            long_trades += usize::from(case >= 6);
            assert_eq!(fm.trades, general.trades, "{ctx}");
            assert_eq!(fm.closed_trades, general.closed_trades, "{ctx}");
            assert!(rel(fm.final_equity, general.final_equity) < 1e-12, "{ctx}");
            assert!(rel(fm.sharpe, general.sharpe) < 1e-9, "{ctx}");
            assert!(rel(fm.max_drawdown, general.max_drawdown) < 1e-12, "{ctx}");
            assert_eq!(fm.consistency, general.consistency, "{ctx}");
        }
    }
    assert!(long_trades >= 16);
}

#[test]
fn emas_four_at_a_time_are_each_ema_s_bits() {
    use organism::indicators::emas;
    let u = generate(&SyntheticParams {
        bars: 2000,
        ..SyntheticParams::default()
    });
    let close = &u.markets[0].candles.close;
    let periods: Vec<usize> = (1..=30).chain([50, 200, 1999, 2500]).collect();
    let lines = emas(close, &periods);
    assert_eq!(lines.len(), periods.len());
    for (p, line) in periods.iter().zip(&lines) {
        let one = ema(close, *p);
        assert!(
            line.iter()
                .zip(&one)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "period {p}"
        );
    }
}
