//! Bar by bar equals whole history: every seed fed one closed bar at a time through the candle
//! store, the runner and the engine gives exactly the targets, trades and equity of the
//! whole-history backtest. Also: the store survives a restart and a torn last line.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use organism::{
    backtest::run,
    execution::{EngineConfig, FillMode, SimulatedVenue},
    market::{
        synthetic::{generate, SyntheticParams},
        types::{Coin, Interval},
        FundingSeries, Market,
    },
    runner::{CandleStore, StoreError, StrategyRunner},
    seeds::{apply_regime, registry, Genome, Prepared, SeedEntry},
    strategy::regime::{Action, Policy, RegimeFilter, VolatilityParams},
};

mod common;

const BARS: usize = 2_200;

fn scratch(name: &str) -> PathBuf {
    common::scratch("runner", name)
}

fn market() -> Market {
    let u = generate(&SyntheticParams {
        bars: BARS,
        ..SyntheticParams::default()
    });
    u.markets[1].clone()
}

fn genome(entry: &SeedEntry, sets: &[(&str, &str)]) -> Vec<f64> {
    let mut g = entry.spec.default_genome();
    for (k, v) in sets {
        entry.spec.set(&mut g, k, v).unwrap();
    }
    g
}

/// Feeds `m` bar by bar (funding events of a bar are stored before the bar closes) and checks
/// every target, every equity value and the trades against the whole-history backtest.
fn check(entry: &'static SeedEntry, genome: &[f64], m: &Market, cfg: &EngineConfig, dir: &Path) {
    let whole_targets = entry.targets(genome, &Prepared::new(m.clone()));
    let whole = run(&m.candles, &m.funding_per_bar, &whole_targets, cfg);
    let coin = Coin::new(&m.coin).unwrap();
    let mut store = CandleStore::open(dir, &coin, Interval::H1).unwrap();
    assert!(store.is_empty());
    let mut runner = StrategyRunner::new(
        Genome::seed(entry, genome.to_vec()),
        cfg,
        SimulatedVenue::new(cfg.costs(), cfg.cash),
    );
    let c = &m.candles;
    let mut next_event = 0;
    let ctx = |t: usize| format!("{} bar {t}", entry.spec.name);
    for t in 0..c.len() {
        if t == BARS / 2 {
            // A restart: the store is read back from disk and continues from the same first bar.
            let before = store.candles().clone();
            drop(store);
            store = CandleStore::open(dir, &coin, Interval::H1).unwrap();
            assert_eq!(store.candles(), &before);
        }
        let bar_end = c.ts[t] + Interval::H1.ms();
        while next_event < m.funding.ts.len() && m.funding.ts[next_event] < bar_end {
            if m.funding.ts[next_event] >= c.ts[0] {
                store
                    .append_funding(m.funding.ts[next_event], m.funding.rate[next_event])
                    .unwrap();
            }
            next_event += 1;
        }
        let missing = store
            .append_bar(
                c.ts[t],
                c.open[t],
                c.high[t],
                c.low[t],
                c.close[t],
                c.volume[t],
            )
            .unwrap();
        assert_eq!(missing, 0);
        let history = std::sync::Arc::new(store.market());
        let step = runner.on_bar(&history).unwrap();
        assert!(runner.on_bar(&history).is_none(), "stepped twice");
        let want = whole_targets.at(t);
        assert_eq!(
            step.target.position.to_bits(),
            want.position.to_bits(),
            "{}",
            ctx(t)
        );
        assert_eq!(
            step.target.stop.map(f64::to_bits),
            want.stop.map(f64::to_bits),
            "{}",
            ctx(t)
        );
        assert_eq!(
            step.target.take.map(f64::to_bits),
            want.take.map(f64::to_bits),
            "{}",
            ctx(t)
        );
        assert_eq!(
            step.equity.to_bits(),
            whole.equity[t].to_bits(),
            "{}",
            ctx(t)
        );
    }
    let (trades, in_market) = runner.finish(store.candles());
    assert_eq!(trades, whole.trades, "{}", entry.spec.name);
    assert_eq!(in_market, whole.bars_in_market, "{}", entry.spec.name);
    assert!(
        whole.trades.len() >= 2,
        "{}: only {} trades; the check needs a strategy that trades",
        entry.spec.name,
        whole.trades.len()
    );
}

#[test]
fn every_seed_bar_by_bar_equals_the_whole_history() {
    let m = market();
    let cfg = EngineConfig::default();
    for (i, entry) in registry().unwrap().iter().enumerate() {
        let dir = scratch(&format!("seed{i}"));
        check(entry, &genome(entry, &[]), &m, &cfg, &dir);
    }
}

#[test]
fn stops_take_profits_and_close_fills_bar_by_bar() {
    let m = market();
    let sets = [
        ("stop_kind", "atr"),
        ("stop_value", "1.5"),
        ("take_kind", "pct"),
        ("take_value", "2"),
    ];
    for (fill, name) in [(FillMode::NextOpen, "open"), (FillMode::Close, "close")] {
        let cfg = EngineConfig {
            fill,
            ..EngineConfig::default()
        };
        for entry in registry().unwrap().iter().filter(|e| {
            ["ema_crossover", "atr_stop_loss", "rsi_filter"].contains(&e.spec.name.as_str())
        }) {
            let dir = scratch(&format!("{name}-{}", entry.spec.name));
            check(entry, &genome(entry, &sets), &m, &cfg, &dir);
        }
    }
}

#[test]
fn store_rejects_bad_bars_and_repairs_a_torn_line() {
    let dir = scratch("store");
    let coin = Coin::new("BTC").unwrap();
    let h = Interval::H1.ms();
    // 2024-01-01 00:00 UTC.
    let t0 = 1_704_067_200_000;
    let mut s = CandleStore::open(&dir, &coin, Interval::H1).unwrap();
    s.append_bar(t0, 100.0, 101.0, 99.0, 100.5, 3.0).unwrap();
    s.append_bar(t0 + h, 100.5, 102.0, 100.0, 101.0, 2.0)
        .unwrap();
    // A gap of two bars is reported, not refused.
    assert_eq!(
        s.append_bar(t0 + 4 * h, 101.0, 101.0, 101.0, 101.0, 0.0)
            .unwrap(),
        2
    );
    let err = |r: Result<usize, StoreError>| r.unwrap_err().to_string();
    assert!(err(s.append_bar(t0 + 4 * h, 1.0, 1.0, 1.0, 1.0, 0.0))
        .contains("is not after the last stored bar"));
    assert!(
        err(s.append_bar(t0 + 5 * h + 60_000, 1.0, 1.0, 1.0, 1.0, 0.0)).contains("off the 1h grid")
    );
    // Nothing the loader would refuse when the store is read back.
    assert!(err(s.append_bar(t0 + 5 * h + 1, 1.0, 1.0, 1.0, 1.0, 0.0))
        .contains("is 1 ms past a whole minute"));
    assert!(s
        .append_funding(1000, 0.0001)
        .unwrap_err()
        .to_string()
        .contains("timestamp_ms 1000 is before 2009"));
    assert!(err(s.append_bar(t0 + 5 * h, 10.0, 9.0, 9.5, 9.7, 1.0)).contains("high"));
    assert!(s
        .append_funding(t0, 2.0)
        .unwrap_err()
        .to_string()
        .contains("not a fraction"));
    assert_eq!(s.len(), 3);
    let file = s.file().to_path_buf();
    drop(s);
    // A crash in the middle of an append leaves a torn line: cut off at the next open.
    let mut text = std::fs::read_to_string(&file).unwrap();
    let good = text.clone();
    text.push_str(&format!("{},101.0,10", t0 + 5 * h));
    std::fs::write(&file, &text).unwrap();
    let s = CandleStore::open(&dir, &coin, Interval::H1).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s.notes.len(), 1, "{:?}", s.notes);
    assert!(s.notes[0].contains("torn last line"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), good);
    // A crash before a new file's first line leaves it empty, or with a torn header: the store
    // opens empty and its first append writes the header.
    let eth = Coin::new("ETH").unwrap();
    let eth_file = dir.join("candles/store_ETH_1h.csv");
    for left in ["", "timestamp_ms,op"] {
        std::fs::write(&eth_file, left).unwrap();
        let mut e = CandleStore::open(&dir, &eth, Interval::H1).unwrap();
        assert!(e.is_empty());
        e.append_bar(t0, 100.0, 101.0, 99.0, 100.5, 3.0).unwrap();
        assert_eq!(
            std::fs::read_to_string(&eth_file).unwrap(),
            format!("timestamp_ms,open,high,low,close,volume\n{t0},100,101,99,100.5,3\n")
        );
        drop(e);
        assert_eq!(
            CandleStore::open(&dir, &eth, Interval::H1).unwrap().len(),
            1
        );
    }
    // A bad row in the middle is an error naming the file and line, and the file is untouched.
    std::fs::write(&file, good.replace("100.5,102", "100.5,-102")).unwrap();
    let e = CandleStore::open(&dir, &coin, Interval::H1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("store_BTC_1h.csv") && e.contains("line 3"),
        "{e}"
    );
}

/// Live stepping (each bar's target traded at once as the next bar opens, with the bar's close
/// as the reference price) makes the same trades as the backtest: on this market a bar opens at
/// the previous close, so the reference is the backtest's fill price. Stops, take-profits and
/// funding included; trades still open at the end are left out (the live runner's last target
/// is traded after the history ends).
#[test]
fn live_steps_make_the_backtests_trades() {
    let m = market();
    let cfg = EngineConfig::default();
    let c = &m.candles;
    assert!((1..c.len()).all(|t| c.open[t] == c.close[t - 1]));
    let sets = [
        ("stop_kind", "atr"),
        ("stop_value", "1.5"),
        ("take_kind", "pct"),
        ("take_value", "2"),
    ];
    let mut checked = 0;
    for entry in registry().unwrap().iter() {
        for s in [&[][..], &sets[..]] {
            let g = genome(entry, s);
            let whole_targets = entry.targets(&g, &Prepared::new(m.clone()));
            let whole = run(&m.candles, &m.funding_per_bar, &whole_targets, &cfg);
            let mut runner = StrategyRunner::new(
                Genome::seed(entry, g.clone()),
                &cfg,
                SimulatedVenue::new(cfg.costs(), cfg.cash),
            );
            for t in 0..c.len() {
                let history = std::sync::Arc::new(m.slice(0..t + 1));
                let target = runner.newest(&history).target;
                runner.step_live(&history, target, c.ts[t] + Interval::H1.ms());
            }
            let (live, _) = runner.finish(&m.candles);
            let closed = |v: &[organism::execution::Trade]| -> Vec<organism::execution::Trade> {
                v.iter()
                    .filter(|x| {
                        x.exit_bar < c.len() - 1
                            && x.exit_reason != organism::execution::ExitReason::Open
                    })
                    .cloned()
                    .collect()
            };
            let (a, b) = (closed(&live), closed(&whole.trades));
            assert_eq!(a, b, "{} {s:?}", entry.spec.name);
            checked += a.len();
        }
    }
    assert!(checked > 50, "only {checked} trades compared");
}

/// The first `k` bars of `m` as a live history sees them when the funding of the last bar's
/// second half arrives late (events every 20 minutes): with the next bar, the last bar's
/// funding grows.
fn late_funding_history(m: &Market, events: &FundingSeries, k: usize) -> Market {
    let known = m.candles.ts[k - 1] + Interval::H1.ms() / 2;
    let n = events.ts.partition_point(|&t| t < known);
    let funding = FundingSeries {
        ts: events.ts[..n].to_vec(),
        rate: events.rate[..n].to_vec(),
    };
    Market::new(&m.coin, m.candles.slice(0..k), funding)
}

#[test]
fn newest_decisions_step_the_new_bar_alone_and_equal_the_whole_history() {
    let m = market().slice(0..700);
    // Funding events every 20 minutes that switch between paying longs and paying shorts
    // every 50 to 110 hours, the late ones large: a decision that missed the revision of the
    // last bar's funding would differ.
    let mut events = FundingSeries::default();
    for k in 0..(700 * 3) as i64 {
        events.ts.push(m.candles.ts[0] + k * Interval::H1.ms() / 3);
        let level = if (k / 3 / (50 + 20 * (k / 600))) % 2 == 0 {
            3e-4
        } else {
            -2e-4
        };
        // The event that arrives late (the last of each hour) is the largest.
        let late = if k % 3 == 2 {
            2e-2 * (k as f64 * 0.7).sin()
        } else {
            0.0
        };
        events.rate.push(level + late);
    }
    let cfg = EngineConfig::default();
    let regime = RegimeFilter {
        volatility: VolatilityParams {
            vol_window: 24,
            lookback: 100,
            low_quantile: 0.2,
            high_quantile: 0.8,
        },
        policy: Policy {
            volatility: [Action::Scale(0.5), Action::Trade, Action::Flat],
            sentiment: [Action::Trade; 4],
        },
    };
    for entry in registry().unwrap().iter() {
        // The ML seeds' fits, shared by the whole-history computations (a fit reads only its
        // training rows).
        let models = std::sync::Arc::default();
        for filter in [None, Some(regime)] {
            let genome = Genome::seed(entry, entry.spec.default_genome());
            let mut runner = StrategyRunner::new(
                genome.clone(),
                &cfg,
                SimulatedVenue::new(cfg.costs(), cfg.cash),
            )
            .with_regime(filter);
            let mut alone = 0;
            let mut changes = 0;
            let mut last = None;
            for k in 1..=m.candles.len() {
                let h = std::sync::Arc::new(late_funding_history(&m, &events, k));
                let d = runner.newest(&h);
                let data = Prepared::with_models(std::sync::Arc::clone(&h), Arc::clone(&models));
                let mut whole = genome.targets(&data);
                let raw = whole.at(k - 1);
                apply_regime(filter.as_ref(), &data, &mut whole);
                let ctx = format!(
                    "{} regime {}, bar {}",
                    entry.spec.name,
                    filter.is_some(),
                    k - 1
                );
                assert_eq!(d.raw, raw, "{ctx}");
                assert_eq!(d.target, whole.at(k - 1), "{ctx}");
                alone += usize::from(d.stepped_alone);
                changes += usize::from(last.is_some_and(|p| p != d.target.position));
                last = Some(d.target.position);
            }
            // Every bar from the third on is stepped alone; the seed trades.
            assert_eq!(alone, m.candles.len() - 2, "{}", entry.spec.name);
            assert!(
                changes >= 2,
                "{}: {changes} changes of target",
                entry.spec.name
            );
        }
    }
}
