//! Calibration of the bundled synthetic market against real Hyperliquid hourly data.
//!
//! The real-data targets are stored as constants (computed from
//! `../shared/data/candles/hyperliquid_{BTC,ETH,SOL}_1h.csv`, 2024-09-04 → 2025-07-26); when that
//! folder is present the test recomputes them and checks the constants are still right.
//! Statistics are computed here, independently of the library, on hourly log returns of close.

use std::path::Path;

use organism::market::{
    csv::load_candles,
    synthetic::{generate, SyntheticParams},
};

const COINS: [&str; 3] = ["BTC", "ETH", "SOL"];
/// Annualized volatility (std of hourly log returns × √8760).
const REAL_VOL: [f64; 3] = [0.488, 0.731, 0.895];
/// Excess kurtosis of hourly log returns.
const REAL_KURT: [f64; 3] = [10.28, 19.35, 10.84];
/// Autocorrelation of |r| at lag 1 and lag 24.
const REAL_ACF1: [f64; 3] = [0.251, 0.190, 0.238];
const REAL_ACF24: [f64; 3] = [0.136, 0.112, 0.131];
/// Pairwise correlation of hourly log returns: BTC-ETH, BTC-SOL, ETH-SOL.
const REAL_CORR: [f64; 3] = [0.776, 0.744, 0.752];

fn log_returns(close: &[f64]) -> Vec<f64> {
    close.windows(2).map(|w| (w[1] / w[0]).ln()).collect()
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn std(x: &[f64]) -> f64 {
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

fn kurt(x: &[f64]) -> f64 {
    let m = mean(x);
    let s = std(x);
    x.iter().map(|v| ((v - m) / s).powi(4)).sum::<f64>() / x.len() as f64 - 3.0
}

fn acf_abs(x: &[f64], lag: usize) -> f64 {
    let a: Vec<f64> = x.iter().map(|v| v.abs()).collect();
    let m = mean(&a);
    let var = a.iter().map(|v| (v - m).powi(2)).sum::<f64>() / a.len() as f64;
    let cov = a[lag..]
        .iter()
        .zip(&a[..a.len() - lag])
        .map(|(p, q)| (p - m) * (q - m))
        .sum::<f64>()
        / a.len() as f64;
    cov / var
}

fn corr(x: &[f64], y: &[f64]) -> f64 {
    let (mx, my) = (mean(x), mean(y));
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

struct Stats {
    vol: [f64; 3],
    kurt: [f64; 3],
    acf1: [f64; 3],
    acf24: [f64; 3],
    corr: [f64; 3],
}

fn stats(returns: &[Vec<f64>; 3]) -> Stats {
    let f = |g: &dyn Fn(&[f64]) -> f64| [g(&returns[0]), g(&returns[1]), g(&returns[2])];
    Stats {
        vol: f(&|r| std(r) * 8760f64.sqrt()),
        kurt: f(&kurt),
        acf1: f(&|r| acf_abs(r, 1)),
        acf24: f(&|r| acf_abs(r, 24)),
        corr: [
            corr(&returns[0], &returns[1]),
            corr(&returns[0], &returns[2]),
            corr(&returns[1], &returns[2]),
        ],
    }
}

#[test]
fn synthetic_market_matches_real_stylized_facts() {
    let u = generate(&SyntheticParams::default());
    let returns = COINS.map(|c| log_returns(&u.market(c).unwrap().candles.close));
    let s = stats(&returns);
    for i in 0..3 {
        let c = COINS[i];
        eprintln!(
            "{c}: vol {:.3} (real {:.3}) kurt {:.2} (real {:.2}) acf1 {:.3} (real {:.3}) acf24 {:.3} (real {:.3}) corr {:.3} (real {:.3})",
            s.vol[i], REAL_VOL[i], s.kurt[i], REAL_KURT[i], s.acf1[i], REAL_ACF1[i], s.acf24[i], REAL_ACF24[i], s.corr[i], REAL_CORR[i]
        );
    }
    for i in 0..3 {
        let c = COINS[i];
        // Annualized volatility within 20 % of the real coin's.
        assert!(
            (s.vol[i] / REAL_VOL[i] - 1.0).abs() < 0.20,
            "{c} vol {} vs {}",
            s.vol[i],
            REAL_VOL[i]
        );
        // Fat tails: excess kurtosis between 0.4x and 2x the real value (kurtosis estimates
        // from one year of fat-tailed data are themselves very noisy).
        assert!(
            s.kurt[i] > 0.4 * REAL_KURT[i] && s.kurt[i] < 2.0 * REAL_KURT[i],
            "{c} kurtosis {} vs {}",
            s.kurt[i],
            REAL_KURT[i]
        );
        // Volatility clustering: autocorrelation of |r| within 0.08 at lags 1 and 24.
        assert!(
            (s.acf1[i] - REAL_ACF1[i]).abs() < 0.08,
            "{c} acf1 {} vs {}",
            s.acf1[i],
            REAL_ACF1[i]
        );
        assert!(
            (s.acf24[i] - REAL_ACF24[i]).abs() < 0.08,
            "{c} acf24 {} vs {}",
            s.acf24[i],
            REAL_ACF24[i]
        );
        // Cross-coin correlation within 0.08.
        assert!(
            (s.corr[i] - REAL_CORR[i]).abs() < 0.08,
            "pair {i} corr {} vs {}",
            s.corr[i],
            REAL_CORR[i]
        );
    }
}

#[test]
fn synthetic_funding_leans_with_the_trend() {
    let u = generate(&SyntheticParams::default());
    for m in &u.markets {
        let close = &m.candles.close;
        // Trailing 72-hour return vs the funding rate at that hour.
        let trail: Vec<f64> = (72..close.len())
            .map(|t| (close[t] / close[t - 72]).ln())
            .collect();
        let rate = &m.funding_per_bar[72..];
        let c = corr(&trail, rate);
        assert!(c > 0.3, "{}: corr(trailing return, funding) = {c}", m.coin);
        let mean_rate = mean(&m.funding_per_bar);
        // Real Hyperliquid hourly funding averages about 2e-5 with a 3e-5..5e-5 spread.
        assert!(
            mean_rate > 0.0 && mean_rate < 6e-5,
            "{}: {mean_rate}",
            m.coin
        );
    }
}

#[test]
fn real_data_targets_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/candles");
    if !dir.is_dir() {
        eprintln!(
            "skipping: {} is absent; the stored targets are used",
            dir.display()
        );
        return;
    }
    let closes = COINS.map(|c| {
        load_candles(&dir.join(format!("hyperliquid_{c}_1h.csv")))
            .unwrap()
            .close
    });
    let s = stats(&closes.clone().map(|c| log_returns(&c)));
    for i in 0..3 {
        assert!((s.vol[i] - REAL_VOL[i]).abs() < 1e-3, "vol {}", s.vol[i]);
        assert!(
            (s.kurt[i] - REAL_KURT[i]).abs() < 1e-2,
            "kurt {}",
            s.kurt[i]
        );
        assert!(
            (s.acf1[i] - REAL_ACF1[i]).abs() < 1e-3,
            "acf1 {}",
            s.acf1[i]
        );
        assert!(
            (s.acf24[i] - REAL_ACF24[i]).abs() < 1e-3,
            "acf24 {}",
            s.acf24[i]
        );
        // All three files share the same hourly timestamps, so returns align.
        assert!(
            (s.corr[i] - REAL_CORR[i]).abs() < 2e-3,
            "corr {}",
            s.corr[i]
        );
    }
}

/// The planted edge set by its true Sharpe: a long-or-flat oracle that knows the planted state
/// (long when `d_t > 0`, no costs) reaches the Sharpe `trend_edge_for_sharpe` was asked for,
/// within two standard errors, over ten years of four coins.
#[test]
fn the_planted_edge_has_the_sharpe_it_was_set_to() {
    use organism::{
        backtest::run,
        execution::EngineConfig,
        fitness::{returns, sharpe},
        market::synthetic::{planted_signal, trend_edge_for_sharpe},
        strategy::Targets,
    };
    for (target, seed) in [(1.5, 101u64), (3.0, 202)] {
        let p = SyntheticParams {
            seed,
            bars: 87_600,
            trend_edge: trend_edge_for_sharpe(target),
            ..SyntheticParams::default()
        };
        let u = generate(&p);
        let signal = planted_signal(&p);
        let cfg = EngineConfig {
            fee: 0.0,
            slippage: 0.0,
            funding: false,
            ..EngineConfig::default()
        };
        let mut sharpes = Vec::new();
        for (m, (coin, d)) in u.markets.iter().zip(&signal) {
            assert_eq!(&m.coin, coin);
            let n = m.candles.len();
            let mut t = Targets::flat(n);
            for i in 0..n - 1 {
                t.position[i] = if d[i + 1] > 0.0 { 1.0 } else { 0.0 };
            }
            let r = run(&m.candles, &[], &t, &cfg);
            sharpes.push(sharpe(&returns(&r.equity, r.cash), 8760.0));
        }
        let mean = sharpes.iter().sum::<f64>() / sharpes.len() as f64;
        eprintln!("target {target}: oracle Sharpe per coin {sharpes:?}, mean {mean}");
        // Standard error of the mean of four ten-year Sharpes: about 1/√40.
        let se = 1.0 / 40f64.sqrt();
        assert!(
            (mean - target).abs() < 2.0 * se,
            "target {target}: {sharpes:?}"
        );
    }
}

/// The planted cross-sectional factor: off, the market is what it was (its stream untouched,
/// whatever its mean life); on, the portfolio sorted by the latent score earns it.
#[test]
fn the_planted_cross_sectional_factor_is_off_by_default_and_earned_by_its_sort() {
    use organism::market::synthetic::{planted_factor, xs_oracle_sharpe};
    let base = SyntheticParams {
        bars: 2_000,
        ..SyntheticParams::default()
    };
    let other = SyntheticParams {
        xs_edge_hours: 5.0,
        ..base.clone()
    };
    assert_eq!(generate(&base), generate(&other));
    assert!(planted_factor(&base).iter().all(|(_, c)| c.is_empty()));
    assert_eq!(xs_oracle_sharpe(&base, &generate(&base)), None);
    // 40 coins, one year, xs_edge 0.02: the sort earns a Sharpe far above noise (a year's
    // Sharpe has a standard error near 1).
    let on = SyntheticParams {
        bars: 8_760,
        coins: (1..=40).map(|i| format!("X{i:02}")).collect(),
        annual_vol: vec![0.8; 40],
        start_price: vec![10.0; 40],
        xs_edge: 0.02,
        ..SyntheticParams::default()
    };
    let u = generate(&on);
    let s = xs_oracle_sharpe(&on, &u).unwrap();
    assert!(s > 5.0, "{s}");
    assert_eq!(planted_factor(&on).len(), 40);
}
