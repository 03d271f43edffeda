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
    indicators::emas,
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

/// Data shared by every evaluation on one series: closes, consistency-window ends, the sums of
/// close-to-close returns, costs.
#[derive(Debug, Clone)]
pub struct FastData {
    pub close: Vec<f64>,
    /// The last bar of each 30-day window (counted from the first bar), ascending.
    window_ends: Vec<u32>,
    /// Running sums of the close-to-close returns `close[t]/close[t−1] − 1` (0 at bar 0) and of
    /// their squares, each as a compensated pair (sum, error) so that the sum over any range
    /// keeps the precision of a sum taken over that range alone.
    returns: Vec<[f64; 4]>,
    /// The lowest and highest close of each block of [`BLOCK`] bars (bars `k·BLOCK..`).
    blocks: Vec<[f64; 2]>,
    pub bars_per_year: f64,
    pub cash: f64,
    pub fee: f64,
    pub slippage: f64,
}

/// Bars per block of [`FastData`]'s lowest and highest closes.
const BLOCK: usize = 8;

/// `a + b` and its rounding error (Knuth's two-sum): `s + e == a + b` exactly.
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

impl FastData {
    /// Prepares `candles` with the costs of `cfg` (its fill mode is ignored: always close).
    pub fn new(candles: &Candles, cfg: &EngineConfig) -> Self {
        let n = candles.len();
        let ts = &candles.ts;
        let window = |t: usize| (ts[t] - ts[0]) / WINDOW_MS;
        let window_ends = (0..n)
            .filter(|&t| t + 1 == n || window(t + 1) != window(t))
            .map(|t| t as u32)
            .collect();
        let close = &candles.close;
        let mut acc = [0.0; 4];
        let returns = (0..n)
            .map(|t| {
                if t > 0 {
                    let r = if close[t - 1] > 0.0 {
                        close[t] / close[t - 1] - 1.0
                    } else {
                        0.0
                    };
                    let (s, e) = two_sum(acc[0], r);
                    let (s2, e2) = two_sum(acc[2], r * r);
                    acc = [s, acc[1] + e, s2, acc[3] + e2];
                }
                acc
            })
            .collect();
        let blocks = close
            .chunks_exact(BLOCK)
            .map(|b| {
                b.iter()
                    .fold([f64::INFINITY, f64::NEG_INFINITY], |[lo, hi], &c| {
                        [lo.min(c), hi.max(c)]
                    })
            })
            .collect();
        Self {
            close: close.clone(),
            window_ends,
            returns,
            blocks,
            bars_per_year: candles.bars_per_year(),
            cash: cfg.cash,
            fee: cfg.fee,
            slippage: cfg.slippage,
        }
    }

    /// The sum of the close-to-close returns of bars `a+1..=b` and the sum of their squares.
    #[inline]
    fn returns_between(&self, a: usize, b: usize) -> (f64, f64) {
        let (x, y) = (&self.returns[a], &self.returns[b]);
        ((y[0] - x[0]) + (y[1] - x[1]), (y[2] - x[2]) + (y[3] - x[3]))
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

/// A series the crossing search reads: its values, and a single-precision copy that the
/// search compares first (twice the bars per vector compare, half the memory read).
#[derive(Debug, Clone)]
pub struct Series {
    pub exact: Vec<f64>,
    coarse: Vec<f32>,
}

impl Series {
    pub fn new(exact: Vec<f64>) -> Self {
        let coarse = exact.iter().map(|&x| x as f32).collect();
        Self { exact, coarse }
    }
}

/// The bars where one series crosses another, ascending: `up` where
/// [`crossed_above`] holds, `down` where [`crossed_below`] holds. Reused between evaluations.
#[derive(Debug, Default, Clone)]
pub struct Crossings {
    pub up: Vec<u32>,
    pub down: Vec<u32>,
}

/// `1 << i` at `i`: a comparison's all-ones mask ANDed with it sets bit `i` (a shape that
/// compiles to vector compares without per-lane shifts).
const BIT: [u32; 32] = {
    let mut b = [0; 32];
    let mut i = 0;
    while i < 32 {
        b[i] = 1 << i;
        i += 1;
    }
    b
};

/// [`crossed_above`] or [`crossed_below`].
type CrossingTest = fn(&[f64], &[f64], usize) -> bool;

/// Bit `i` of each mask: `f[i] ≥ s[i]`, `f[i] ≤ s[i]` (up to 32 bars).
#[inline(always)]
fn masks32(f: &[f32], s: &[f32]) -> (u64, u64) {
    let (mut ge, mut le) = (0u32, 0u32);
    if let (Ok(f), Ok(s)) = (<&[f32; 32]>::try_from(f), <&[f32; 32]>::try_from(s)) {
        for i in 0..32 {
            ge |= BIT[i] & 0u32.wrapping_sub(u32::from(f[i] >= s[i]));
            le |= BIT[i] & 0u32.wrapping_sub(u32::from(f[i] <= s[i]));
        }
    } else {
        for i in 0..f.len().min(32) {
            ge |= BIT[i] & 0u32.wrapping_sub(u32::from(f[i] >= s[i]));
            le |= BIT[i] & 0u32.wrapping_sub(u32::from(f[i] <= s[i]));
        }
    }
    (u64::from(ge), u64::from(le))
}

impl Crossings {
    /// Finds every crossing of `fast` over / under `slow` (same length).
    pub fn find(&mut self, fast: &Series, slow: &Series) {
        self.up.clear();
        self.down.clear();
        self.extend(fast, slow, 0..fast.exact.len());
    }

    /// Adds the crossings at `bars` to those found before it; `bars` starts where the last
    /// call's ended, at a multiple of 64.
    ///
    /// Bars are compared 64 at a time, in single precision, into bit masks of `fast ≥ slow`
    /// and `fast ≤ slow`. Rounding to single precision keeps order (`x > y` gives
    /// `x' ≥ y'`, and `x' > y'` gives `x > y`), so every crossing above is a bar of `≥` after
    /// a bar of `≤` there, and every crossing below the reverse: those bars are the
    /// candidates. A candidate without a tie in single precision at it or the bar before is a
    /// crossing; one with a tie is checked with [`crossed_above`] / [`crossed_below`] on the
    /// exact values (undefined values compare false in both precisions).
    pub fn extend(&mut self, fast: &Series, slow: &Series, bars: std::ops::Range<usize>) {
        debug_assert_eq!(bars.start % 64, 0);
        let (f_all, s_all) = (&fast.exact[..bars.end], &slow.exact[..bars.end]);
        let (f_bars, s_bars) = (&fast.coarse[bars.clone()], &slow.coarse[bars.clone()]);
        // The masks' bits of the bar before (none before bar 0).
        let (mut ge_before, mut le_before) = match bars.start {
            0 => (0, 0),
            t => (
                u64::from(fast.coarse[t - 1] >= slow.coarse[t - 1]),
                u64::from(fast.coarse[t - 1] <= slow.coarse[t - 1]),
            ),
        };
        for (block, (f, s)) in f_bars.chunks(64).zip(s_bars.chunks(64)).enumerate() {
            let (ge_lo, le_lo) = masks32(&f[..f.len().min(32)], &s[..s.len().min(32)]);
            let (ge_hi, le_hi) = if f.len() > 32 {
                masks32(&f[32..], &s[32..])
            } else {
                (0, 0)
            };
            let (ge, le) = (ge_lo | ge_hi << 32, le_lo | le_hi << 32);
            let base = bars.start + block * 64;
            // Where neither the bar nor the one before ties in single precision, the rounded
            // values order as the exact ones do and a candidate is a crossing.
            let tie = ge & le;
            let unsure = tie | (tie << 1) | (ge_before & le_before);
            let searches: [(u64, CrossingTest, &mut Vec<u32>); 2] = [
                (ge & ((le << 1) | le_before), crossed_above, &mut self.up),
                (le & ((ge << 1) | ge_before), crossed_below, &mut self.down),
            ];
            for (mut candidates, crossed, found) in searches {
                while candidates != 0 {
                    let i = candidates.trailing_zeros();
                    let t = base + i as usize;
                    if unsure >> i & 1 == 0 || crossed(f_all, s_all, t) {
                        found.push(t as u32);
                    }
                    candidates &= candidates - 1;
                }
            }
            ge_before = ge >> 63;
            le_before = le >> 63;
        }
    }
}

/// Evaluates the long-only crossover of `fast` over `slow` (EMA series at least as long as the
/// data). `stop`: ATR series and multiple for a fixed stop `close[e] − mult·ATR[e]` set at entry
/// (no stop when the ATR is undefined at entry).
pub fn ema_cross_long(
    d: &FastData,
    fast: &[f64],
    slow: &[f64],
    stop: Option<(&[f64], f64)>,
) -> FastMetrics {
    let n = d.close.len();
    let series = |x: &[f64]| Series::new(x[..n].to_vec());
    ema_cross_long_of(d, &series(fast), &series(slow), stop)
}

/// [`ema_cross_long`] of two [`Series`] as long as the data.
pub fn ema_cross_long_of(
    d: &FastData,
    fast: &Series,
    slow: &Series,
    stop: Option<(&[f64], f64)>,
) -> FastMetrics {
    let mut crossings = Crossings::default();
    crossings.find(fast, slow);
    cross_long(d, &crossings, stop)
}

/// The simulation of [`ema_cross_long`] from the crossings found over all of `d`'s bars.
///
/// The simulation moves from one crossing to the next. While flat, equity is constant: every
/// flat bar has return exactly 0 and changes neither the peak nor the drawdown, so a flat
/// stretch books only its consistency windows. In a position the bars between entry and exit
/// are visited for the drawdown and the stop alone: their returns, `V[t]/V[t−1] − 1` with
/// `V = cash + size·close` and the cash left after an all-in entry a rounding error of the
/// position's value, are the close-to-close returns, summed from [`FastData`]'s running sums
/// (the Sharpe ratio agrees with the bar-by-bar sum to about 10⁻¹¹ relative). Everything else —
/// fills, equity, drawdown, windows, counts — is computed bar for bar as the definition states.
pub fn cross_long(d: &FastData, crossings: &Crossings, stop: Option<(&[f64], f64)>) -> FastMetrics {
    let close = &d.close[..];
    let n = close.len();
    let (ups, downs) = (&crossings.up[..], &crossings.down[..]);
    let ends = &d.window_ends[..];
    let buy_mult = 1.0 + d.slippage;
    let sell_mult = 1.0 - d.slippage;
    let fee = d.fee;
    let mut cash = d.cash;
    // Streaming versions of the metrics of `crate::fitness`: per-bar returns (sum and sum of
    // squares for Sharpe), running peak and drawdown, 30-day windows. Plain locals, booked by
    // one macro.
    let (mut prev_v, mut sum, mut sumsq) = (d.cash, 0.0_f64, 0.0_f64);
    let mut peak = f64::NEG_INFINITY;
    let mut dd = 0.0_f64;
    let (mut prev_end, mut up_windows) = (d.cash, 0usize);
    let mut next_end = 0; // index in `ends` of the first window end not yet booked
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
    // Whether bar `t` ends a window (windows ending before it already booked).
    macro_rules! ends_at {
        ($t:expr) => {{
            let at = next_end < ends.len() && ends[next_end] as usize == $t;
            next_end += usize::from(at);
            at
        }};
    }
    let (mut entries, mut exits) = (0usize, 0usize);
    // The stop of an entry at each crossing above, read before the simulation: the ATR lines
    // are large and read at few bars, so these reads miss the cache, and made here, apart from
    // the simulation's dependent steps, they overlap.
    let stops: Vec<f64> = match stop {
        Some((atr, mult)) => ups
            .iter()
            .map(|&u| {
                let (c, a) = (close[u as usize], atr[u as usize]);
                if a.is_nan() {
                    f64::NEG_INFINITY
                } else {
                    c - mult * a
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let (mut next_up, mut next_down) = (0, 0);
    let mut t = 0;
    loop {
        // Flat from bar t: the next entry signal.
        next_up = first_from(ups, next_up, t);
        let e = ups.get(next_up).map_or(n, |&u| u as usize);
        if e > t {
            // Bars t..e are flat at equity `cash` (return 0 after the first); the stretch books
            // once whether a window ends inside it.
            let after = first_from(ends, next_end, e);
            let window_end = after > next_end;
            next_end = after;
            book!(cash, window_end);
        }
        if e >= n {
            break;
        }
        // Entry at bar e's close.
        let c = close[e];
        let fill = c * buy_mult;
        let size = (cash / (1.0 + fee)) / fill;
        let value = size * fill;
        cash -= value + value * fee;
        entries += 1;
        let stop_px = stops.get(next_up).copied().unwrap_or(f64::NEG_INFINITY);
        book!(cash + size * c, ends_at!(e));
        // The exit: the next cross below, or an earlier bar closing under the stop.
        next_down = first_from(downs, next_down, e + 1);
        let cross = downs.get(next_down).map_or(n, |&u| u as usize);
        let mut x = cross;
        // Bars e+1..x hold the position: the drawdown's peak follows their equity; a bar under
        // the stop, or under `peak·(1 − dd)` (a deeper drawdown), leaves the tight loop.
        let held = &close[..cross];
        let mut keep = 1.0 - dd;
        let mut b = e + 1;
        loop {
            while b < cross {
                // A whole block with no close under the stop, whose lowest equity is above
                // `peak·(1 − dd)` for the highest peak the block can reach, needs no bar of
                // its own: the peak becomes the block's highest equity (equity is monotone in
                // the close, rounding included).
                if b % BLOCK == 0 && b + BLOCK <= cross {
                    let [low, high] = d.blocks[b / BLOCK];
                    let top = cash + size * high;
                    let top = if top > peak { top } else { peak };
                    if low >= stop_px && cash + size * low >= top * keep {
                        peak = top;
                        b += BLOCK;
                        continue;
                    }
                }
                let c = held[b];
                if c < stop_px {
                    break;
                }
                let v = cash + size * c;
                peak = if v > peak { v } else { peak };
                if v < peak * keep {
                    break;
                }
                b += 1;
            }
            if b >= cross {
                break;
            }
            if held[b] < stop_px {
                x = b;
                break;
            }
            dd = 1.0 - (cash + size * held[b]) / peak;
            keep = 1.0 - dd;
            b += 1;
        }
        let after = first_from(ends, next_end, x);
        for &w in &ends[next_end..after] {
            let v = cash + size * close[w as usize];
            up_windows += usize::from(v > prev_end);
            prev_end = v;
        }
        next_end = after;
        if x > e + 1 {
            let (r, r2) = d.returns_between(e, x - 1);
            sum += r;
            sumsq += r2;
            prev_v = cash + size * close[x - 1];
        }
        if x >= n {
            break;
        }
        // Exit at bar x's close.
        let proceeds = size * (close[x] * sell_mult);
        cash += proceeds - proceeds * fee;
        exits += 1;
        book!(cash, ends_at!(x));
        t = x + 1;
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
        consistency: if ends.is_empty() {
            0.0
        } else {
            up_windows as f64 / ends.len() as f64
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

/// The first index from `i` on whose bar in `bars` (ascending) is `t` or later.
fn first_from(bars: &[u32], mut i: usize, t: usize) -> usize {
    while i < bars.len() && (bars[i] as usize) < t {
        i += 1;
    }
    i
}

/// Bars per block of [`cross_long_many`]'s crossing search (a multiple of 64): 8 KiB of each series.
const SWEEP_BLOCK: usize = 1024;

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
    let series: Vec<Series> = periods
        .par_chunks(4)
        .flat_map_iter(|four| emas(&d.close, four).into_iter().map(Series::new))
        .collect();
    let mut index = vec![usize::MAX; max_p + 1];
    for (i, &p) in periods.iter().enumerate() {
        index[p] = i;
    }
    let pairs: Vec<CrossPair> = grid
        .iter()
        .map(|&(f, s)| (&series[index[f]], &series[index[s]], None))
        .collect();
    cross_long_many(d, &pairs, &|| ())
}

/// One evaluation of [`cross_long_many`]: the fast and slow series (as long as the data) and
/// the stop, as [`ema_cross_long`] takes them.
pub type CrossPair<'a> = (&'a Series, &'a Series, Option<(&'a [f64], f64)>);

/// [`ema_cross_long`] of every pair, in order; `done` is called after each. Runs on the current
/// rayon pool.
///
/// The crossings are found a block of bars at a time for every pair, so that the block of
/// every series stays in cache while the pairs read it (one pair after another over whole
/// series would stream each series from memory once per pair); the blocks are the unit of
/// parallel work. Then each pair's crossings, gathered in bar order, are simulated.
pub fn cross_long_many(
    d: &FastData,
    pairs: &[CrossPair],
    done: &(dyn Fn() + Sync),
) -> Vec<FastMetrics> {
    let n = d.close.len();
    let starts: Vec<usize> = (0..n).step_by(SWEEP_BLOCK).collect();
    let blocks: Vec<(Crossings, Vec<[usize; 2]>)> = starts
        .par_iter()
        .map(|&start| {
            let bars = start..(start + SWEEP_BLOCK).min(n);
            let mut found = Crossings::default();
            let mut ends = Vec::with_capacity(pairs.len());
            for (fast, slow, _) in pairs {
                found.extend(fast, slow, bars.clone());
                ends.push([found.up.len(), found.down.len()]);
            }
            (found, ends)
        })
        .collect();
    (0..pairs.len())
        .into_par_iter()
        .map_init(Crossings::default, |crossings, k| {
            crossings.up.clear();
            crossings.down.clear();
            for (found, ends) in &blocks {
                let [up, down] = if k == 0 { [0, 0] } else { ends[k - 1] };
                crossings.up.extend_from_slice(&found.up[up..ends[k][0]]);
                crossings
                    .down
                    .extend_from_slice(&found.down[down..ends[k][1]]);
            }
            let metrics = cross_long(d, crossings, pairs[k].2);
            done();
            metrics
        })
        .collect()
}
