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
