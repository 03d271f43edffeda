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
