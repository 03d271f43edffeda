//! Benchmark kernels. The fused fast path for the long-only EMA crossover in close-fill mode (with an optional
//! fixed ATR stop): signals, fills, fees, equity and the four objective metrics in one pass,
//! no allocation. It exists for speed (parameter sweeps, evolution of this genome) and gives the
//! same numbers as [`crate::backtest::run`] + [`crate::fitness::Metrics`] on the same targets; a test
//! checks that on many random combos.
//!
//! Rules are those of `BENCHMARKS.md` (vectorbt `Portfolio.from_signals` defaults): entry on a
//! cross above, exit on a cross below or `close < stop`, all-in sizing net of fees, fills at the
//! signal bar's close with adverse slippage, no funding.

use rayon::prelude::*;

use crate::{
    execution::{EngineConfig, FillMode},
    fitness::{sharpe_from, WINDOW_MS},
    indicators::ema,
    market::Candles,
    strategy::{crossed_above, crossed_below},
};

/// The costs of the BENCHMARKS.md workloads (vectorbt `from_signals` settings): close fills,
/// fee 0.045 %, slippage 0.01 %, cash 10,000, no funding.
pub fn benchmark_config() -> EngineConfig {
    EngineConfig {
        fill: FillMode::Close,
        fee: 0.00045,
        slippage: 0.0001,
        cash: 10_000.0,
        funding: false,
        ..EngineConfig::default()
    }
}

/// Data shared by every evaluation on one series: closes, consistency-window ends, costs.
#[derive(Debug, Clone)]
pub struct FastData {
    pub close: Vec<f64>,
    /// 30-day window index of each bar, counted from the first bar.
    window_id: Vec<u32>,
    n_windows: usize,
    pub bars_per_year: f64,
    pub cash: f64,
    pub fee: f64,
    pub slippage: f64,
}

impl FastData {
    /// Prepares `candles` with the costs of `cfg` (its fill mode is ignored: always close).
    pub fn new(candles: &Candles, cfg: &EngineConfig) -> Self {
        let n = candles.len();
        let ts = &candles.ts;
        let window_id: Vec<u32> = ts
            .iter()
            .map(|&t| ((t - ts[0]) / WINDOW_MS) as u32)
            .collect();
        let n_windows =
            (1..n).filter(|&t| window_id[t] != window_id[t - 1]).count() + usize::from(n > 0);
        Self {
            close: candles.close.clone(),
            window_id,
            n_windows,
            bars_per_year: candles.bars_per_year(),
            cash: cfg.cash,
            fee: cfg.fee,
            slippage: cfg.slippage,
        }
    }
}

/// Metrics from the fast path (the same definitions as [`crate::fitness`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FastMetrics {
    pub total_return: f64,
    pub sharpe: f64,
    pub max_drawdown: f64,
    pub consistency: f64,
    pub turnover: f64,
    pub trades: usize,
    pub closed_trades: usize,
    pub final_equity: f64,
}

/// Evaluates the long-only crossover of `fast` over `slow` (EMA series of the same length as the
/// data). `stop`: ATR series and multiple for a fixed stop `close[e] − mult·ATR[e]` set at entry
/// (no stop when the ATR is undefined at entry).
///
/// While flat, equity is constant: every flat bar has return exactly 0 and changes neither the
/// peak nor the drawdown, so flat stretches are skipped to the next entry signal and only their
/// consistency windows are booked. The results are those of the bar-by-bar definition.
pub fn ema_cross_long(
    d: &FastData,
    fast: &[f64],
    slow: &[f64],
    stop: Option<(&[f64], f64)>,
) -> FastMetrics {
    let close = &d.close[..];
    let n = close.len();
    let (fast, slow) = (&fast[..n], &slow[..n]);
    let window_id = &d.window_id[..n];
    let buy_mult = 1.0 + d.slippage;
    let sell_mult = 1.0 - d.slippage;
    let fee = d.fee;
    let mut cash = d.cash;
    // Streaming versions of the metrics of `crate::fitness`: per-bar returns (sum and sum of
    // squares for Sharpe), running peak and drawdown, 30-day windows. Plain locals (a struct
    // here measured 10 % slower), booked by one macro.
    let (mut prev_v, mut sum, mut sumsq) = (d.cash, 0.0_f64, 0.0_f64);
    let mut peak = f64::NEG_INFINITY;
    let mut dd = 0.0_f64;
    let (mut prev_end, mut up_windows) = (d.cash, 0usize);
    macro_rules! book {
        ($v:expr, $window_end:expr) => {{
            let v = $v;
            let r = if prev_v > 0.0 { v / prev_v - 1.0 } else { 0.0 };
            sum += r;
            sumsq += r * r;
            prev_v = v;
            if v > peak {
                peak = v;
            } else if v < peak * (1.0 - dd) {
                dd = 1.0 - v / peak;
            }
            if $window_end {
                up_windows += usize::from(v > prev_end);
                prev_end = v;
            }
        }};
    }
    let (mut entries, mut exits) = (0usize, 0usize);
    // Both EMAs are defined at t-1 from this bar on; earlier comparisons are NaN and false.
    let first = fast
        .iter()
        .zip(slow)
        .position(|(a, b)| !a.is_nan() && !b.is_nan())
        .map_or(n, |i| i + 1);
    let mut t = 0;
    while t < n {
        // Flat: find the next entry signal.
        let mut e = t.max(first);
        while e < n && !crossed_above(fast, slow, e) {
            e += 1;
        }
        if e > t {
            // Bars t..e are flat at equity `cash` (return 0 after the first).
            // A window ends inside the stretch when the window id changes by bar e (the last
            // bar always ends one).
            book!(cash, e == n || window_id[e] != window_id[t]);
        }
        if e >= n {
            break;
        }
        // Entry at bar e's close.
        let c = close[e];
        let fill = c * buy_mult;
        let mut size = (cash / (1.0 + fee)) / fill;
        let value = size * fill;
        cash -= value + value * fee;
        entries += 1;
        let stop_px = match stop {
            Some((atr, mult)) if !atr[e].is_nan() => c - mult * atr[e],
            _ => f64::NEG_INFINITY,
        };
        // In position from bar e until the exit bar (inclusive).
        t = e;
        let mut in_pos = true;
        while t < n {
            let c = close[t];
            if t > e && (crossed_below(fast, slow, t) || c < stop_px) {
                let proceeds = size * (c * sell_mult);
                cash += proceeds - proceeds * fee;
                size = 0.0;
                in_pos = false;
                exits += 1;
            }
            book!(
                cash + size * c,
                t + 1 == n || window_id[t + 1] != window_id[t]
            );
            t += 1;
            if !in_pos {
                break;
            }
        }
    }
    let nf = n as f64;
    let sharpe = if n < 2 {
        0.0
    } else {
        let mean = sum / nf;
        sharpe_from(
            mean,
            (sumsq - nf * mean * mean) / (nf - 1.0),
            d.bars_per_year,
        )
    };
    let final_equity = if n > 0 { prev_v } else { d.cash };
    FastMetrics {
        total_return: final_equity / d.cash - 1.0,
        sharpe,
        max_drawdown: dd,
        consistency: if d.n_windows > 0 {
            up_windows as f64 / d.n_windows as f64
        } else {
            0.0
        },
        turnover: crate::fitness::turnover(entries, n, d.bars_per_year),
        trades: entries,
        closed_trades: exits,
        final_equity,
    }
}

/// The Workload A grid: fast ∈ 2..=51, slow ∈ {10, 20, …, 200}, fast < slow (890 combos).
pub fn workload_a_grid() -> Vec<(usize, usize)> {
    let mut grid = Vec::with_capacity(890);
    for slow in (10..=200).step_by(10) {
        for fast in 2..=51 {
            if fast < slow {
                grid.push((fast, slow));
            }
        }
    }
    grid
}

/// Evaluates every `(fast, slow)` combo of `grid` on `d`, computing each EMA period once and
/// sharing it across combos. Runs on the current rayon pool; results are in grid order.
pub fn sweep(d: &FastData, grid: &[(usize, usize)]) -> Vec<FastMetrics> {
    let max_p = grid.iter().map(|&(f, s)| f.max(s)).max().unwrap_or(0);
    let mut needed = vec![false; max_p + 1];
    for &(f, s) in grid {
        needed[f] = true;
        needed[s] = true;
    }
    let periods: Vec<usize> = (0..=max_p).filter(|&p| needed[p]).collect();
    let series: Vec<Vec<f64>> = periods.par_iter().map(|&p| ema(&d.close, p)).collect();
    let mut index = vec![usize::MAX; max_p + 1];
    for (i, &p) in periods.iter().enumerate() {
        index[p] = i;
    }
    grid.par_iter()
        .map(|&(f, s)| ema_cross_long(d, &series[index[f]], &series[index[s]], None))
        .collect()
}
