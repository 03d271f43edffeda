//! Technical indicators as pure functions over slices.
//!
//! Every function returns one `Vec<f64>` per output line, the same length as its input, with
//! `NaN` where the indicator is not yet defined (the warm-up). Value `t` depends only on inputs
//! `0..=t` — no indicator looks ahead, and each has a test that proves it. Each allocates its
//! outputs (and at most a window buffer) once; nothing is allocated per bar.
//!
//! Definitions follow the design contract: EMA is pandas `ewm(span=p, adjust=False)` seeded with
//! the first value; RSI and ATR use Wilder smoothing seeded with a simple mean.

use std::collections::VecDeque;

const NAN: f64 = f64::NAN;

/// Exponential moving average, pandas `ewm(span=p, adjust=False)`: `a = 2/(p+1)`,
/// `e[0] = x[0]`, `e[t] = ((1-a)·e[t-1] + a·x[t]) / ((1-a) + a)` (unchanged when `x[t] == e[t-1]`),
/// undefined (`NaN`) before bar `p-1`. The division by `(1-a)+a` matches pandas/vectorbt bit for bit.
/// `p = 0` is treated as 1.
pub fn ema(src: &[f64], period: usize) -> Vec<f64> {
    let mut out = vec![NAN; src.len()];
    ema_into(src, period, &mut out);
    out
}

/// [`ema`] written into `out` (same length as `src`); used where callers reuse buffers.
///
/// The divisor `(1-a)+a` rounds to exactly 1 for every period tried (1..=100,000, a test
/// checks), and `x / 1.0 == x` exactly, so the usual path leaves the division out of the
/// recurrence's dependency chain (a third of its latency); any period whose divisor is not 1
/// takes the path with the division. Both give the same bits as the formula above.
pub fn ema_into(src: &[f64], period: usize, out: &mut [f64]) {
    debug_assert_eq!(src.len(), out.len());
    let start = defined_from(src);
    out[..start].fill(NAN);
    let (p, a, b) = ema_weights(period);
    let d = b + a;
    if d == 1.0 {
        run(src, start, out, Ema::new(start, p, |e, x| b * e + a * x));
    } else {
        run(
            src,
            start,
            out,
            Ema::new(start, p, |e, x| (b * e + a * x) / d),
        );
    }
}

/// The period (at least 1) and the weights `a = 2/(p+1)` and `1 − a` of an EMA.
fn ema_weights(period: usize) -> (usize, f64, f64) {
    let p = period.max(1);
    let a = 1.0 / (1.0 + (p as f64 - 1.0) / 2.0);
    (p, a, 1.0 - a)
}

/// An indicator computed bar by bar from its input's first defined value on: the value at
/// bar `t` from its state and `src[..=t]`, the state moved on to `t`. Written once, it gives
/// both a line alone ([`run`]) and two lines of one input in one pass ([`ema_sma_pair`]).
trait Recurrence {
    fn at(&mut self, src: &[f64], t: usize) -> f64;
}

/// [`ema`]'s recurrence (`step` with or without the divisor).
struct Ema<F> {
    e: f64,
    start: usize,
    defined_from: usize,
    step: F,
}

impl<F: Fn(f64, f64) -> f64> Ema<F> {
    fn new(start: usize, p: usize, step: F) -> Self {
        Ema {
            e: NAN,
            start,
            defined_from: start + p - 1,
            step,
        }
    }
}

impl<F: Fn(f64, f64) -> f64> Recurrence for Ema<F> {
    #[inline(always)]
    fn at(&mut self, src: &[f64], t: usize) -> f64 {
        let x = src[t];
        if t == self.start {
            self.e = x;
        } else if self.e != x {
            self.e = (self.step)(self.e, x);
        }
        if t >= self.defined_from {
            self.e
        } else {
            NAN
        }
    }
}

/// [`sma`]'s compensated running sum over the last `p` values.
struct Sma {
    sum: CompensatedSum,
    start: usize,
    p: usize,
}

impl Sma {
    fn new(start: usize, period: usize) -> Self {
        Sma {
            sum: CompensatedSum::default(),
            start,
            p: period.max(1),
        }
    }
}

impl Recurrence for Sma {
    #[inline(always)]
    fn at(&mut self, src: &[f64], t: usize) -> f64 {
        self.sum.add(src[t]);
        if t >= self.start + self.p {
            self.sum.add(-src[t - self.p]);
        }
        if t + 1 >= self.start + self.p {
            self.sum.value() / self.p as f64
        } else {
            NAN
        }
    }
}

/// Writes `r`'s values from bar `start` on into `out`.
#[inline(always)]
fn run(src: &[f64], start: usize, out: &mut [f64], mut r: impl Recurrence) {
    for (t, o) in out.iter_mut().enumerate().skip(start) {
        *o = r.at(src, t);
    }
}

/// A line [`ema_sma_pair`] computes: an [`ema`] or an [`sma`] of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    Ema(usize),
    Sma(usize),
}

/// Two lines of one input, the same bits as computing each alone ([`ema`], [`sma`]), in one
/// pass: their recurrences are independent, so the processor runs the two dependency chains
/// side by side (each bar of either waits on that line's previous bar, not on the other).
pub fn ema_sma_pair(src: &[f64], lines: [Line; 2]) -> [Vec<f64>; 2] {
    let n = src.len();
    let start = defined_from(src);
    let (mut x, mut y) = (vec![NAN; n], vec![NAN; n]);
    let sma = |p: usize| Sma::new(start, p);
    let ema_one = |p: usize| {
        let (p, a, b) = ema_weights(p);
        (b + a == 1.0).then(|| Ema::new(start, p, move |e, x| b * e + a * x))
    };
    match lines {
        [Line::Ema(p), Line::Ema(q)] => match (ema_one(p), ema_one(q)) {
            (Some(a), Some(b)) => run2(src, start, &mut x, &mut y, a, b),
            _ => return [ema(src, p), ema(src, q)],
        },
        [Line::Ema(p), Line::Sma(q)] => match ema_one(p) {
            Some(a) => run2(src, start, &mut x, &mut y, a, sma(q)),
            None => return [ema(src, p), self::sma(src, q)],
        },
        [Line::Sma(p), Line::Ema(q)] => match ema_one(q) {
            Some(b) => run2(src, start, &mut y, &mut x, b, sma(p)),
            None => return [self::sma(src, p), ema(src, q)],
        },
        [Line::Sma(p), Line::Sma(q)] => run2(src, start, &mut x, &mut y, sma(p), sma(q)),
    }
    [x, y]
}

/// Writes `a`'s and `b`'s values from bar `start` on into `x` and `y`, one bar of each in turn.
#[inline(always)]
fn run2(
    src: &[f64],
    start: usize,
    x: &mut [f64],
    y: &mut [f64],
    mut a: impl Recurrence,
    mut b: impl Recurrence,
) {
    for t in start..src.len() {
        x[t] = a.at(src, t);
        y[t] = b.at(src, t);
    }
}

/// Index of the first non-`NaN` value: the end of an input's own warm-up. Rolling windows
/// start there, so an indicator of an indicator is defined once its input is.
fn defined_from(src: &[f64]) -> usize {
    src.iter().position(|v| !v.is_nan()).unwrap_or(src.len())
}

/// Running sum with Neumaier compensation, so adding and removing values leaves no drift
/// (an SMA of 0, 50, 100, 100 over two bars is exactly 100, as it must be for crossings).
#[derive(Default)]
struct CompensatedSum {
    sum: f64,
    comp: f64,
}

impl CompensatedSum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }
    fn value(&self) -> f64 {
        self.sum + self.comp
    }
}

/// Simple moving average over the last `p` values (including the current), defined from `p-1`
/// (counted from the input's first defined value). The running sum is compensated.
pub fn sma(src: &[f64], period: usize) -> Vec<f64> {
    let mut out = vec![NAN; src.len()];
    let start = defined_from(src);
    run(src, start, &mut out, Sma::new(start, period));
    out
}

/// Relative strength index with Wilder smoothing. `d[t] = c[t] - c[t-1]`; the first average
/// gain/loss is the simple mean of `d[1..=p]` (so RSI is defined from bar `p`), then
/// `avg[t] = (avg[t-1]·(p-1) + x[t]) / p`. `RSI = 100 − 100/(1 + gain/loss)`; 100 when there
/// were no losses, 50 when there was no movement at all.
pub fn rsi(close: &[f64], period: usize) -> Vec<f64> {
    let n = close.len();
    let p = period.max(1);
    let mut out = vec![NAN; n];
    if n <= p {
        return out;
    }
    let (mut gain, mut loss) = (0.0, 0.0);
    for t in 1..=p {
        let d = close[t] - close[t - 1];
        gain += d.max(0.0);
        loss += (-d).max(0.0);
    }
    gain /= p as f64;
    loss /= p as f64;
    let pf = p as f64;
    out[p] = rsi_value(gain, loss);
    for t in p + 1..n {
        let d = close[t] - close[t - 1];
        gain = (gain * (pf - 1.0) + d.max(0.0)) / pf;
        loss = (loss * (pf - 1.0) + (-d).max(0.0)) / pf;
        out[t] = rsi_value(gain, loss);
    }
    out
}

fn rsi_value(gain: f64, loss: f64) -> f64 {
    if loss == 0.0 {
        if gain == 0.0 {
            50.0
        } else {
            100.0
        }
    } else {
        100.0 - 100.0 / (1.0 + gain / loss)
    }
}

/// True range: `TR[0] = high[0] − low[0]`,
/// `TR[t] = max(high−low, |high − close[t-1]|, |low − close[t-1]|)`.
pub fn true_range(high: &[f64], low: &[f64], close: &[f64]) -> Vec<f64> {
    let n = close.len();
    let mut tr = vec![NAN; n];
    for t in 0..n {
        tr[t] = if t == 0 {
            high[0] - low[0]
        } else {
            let pc = close[t - 1];
            (high[t] - low[t])
                .max((high[t] - pc).abs())
                .max((low[t] - pc).abs())
        };
    }
    tr
}

/// Average true range with Wilder smoothing: `ATR[p-1] = mean(TR[0..p])`,
/// `ATR[t] = (ATR[t-1]·(p-1) + TR[t]) / p`; undefined before `p-1`.
pub fn atr(high: &[f64], low: &[f64], close: &[f64], period: usize) -> Vec<f64> {
    let n = close.len();
    let p = period.max(1);
    let mut out = true_range(high, low, close);
    if n < p {
        out.iter_mut().for_each(|v| *v = NAN);
        return out;
    }
    let pf = p as f64;
    let mut a = out[..p].iter().sum::<f64>() / pf;
    out[..p - 1].iter_mut().for_each(|v| *v = NAN);
    out[p - 1] = a;
    for t in p..n {
        a = (a * (pf - 1.0) + out[t]) / pf;
        out[t] = a;
    }
    out
}

/// Rolling maximum (`is_max`) or minimum over the last `p` values including the current,
/// defined from `p-1`. Monotonic deque: O(n), one buffer of `p` indices.
fn rolling_extreme(src: &[f64], period: usize, is_max: bool) -> Vec<f64> {
    let n = src.len();
    let p = period.max(1);
    let mut out = vec![NAN; n];
    let mut dq: VecDeque<usize> = VecDeque::with_capacity(p + 1);
    for t in 0..n {
        while let Some(&back) = dq.back() {
            let worse = if is_max {
                src[back] <= src[t]
            } else {
                src[back] >= src[t]
            };
            if !worse {
                break;
            }
            dq.pop_back();
        }
        dq.push_back(t);
        if let Some(&front) = dq.front() {
            if front + p <= t {
                dq.pop_front();
            }
        }
        if t + 1 >= p {
            out[t] = src[dq[0]];
        }
    }
    out
}

/// Highest value of the last `p` bars including the current one.
pub fn rolling_max(src: &[f64], period: usize) -> Vec<f64> {
    rolling_extreme(src, period, true)
}

/// Lowest value of the last `p` bars including the current one.
pub fn rolling_min(src: &[f64], period: usize) -> Vec<f64> {
    rolling_extreme(src, period, false)
}

/// Donchian channel over the **previous** `p` bars, excluding the current bar:
/// `upper[t] = max(high[t-p..t])`, `lower[t] = min(low[t-p..t])`, defined from bar `p`.
pub fn donchian(high: &[f64], low: &[f64], period: usize) -> (Vec<f64>, Vec<f64>) {
    let shift = |v: Vec<f64>| {
        let mut out = vec![NAN; v.len()];
        if v.len() > 1 {
            out[1..].copy_from_slice(&v[..v.len() - 1]);
        }
        out
    };
    (
        shift(rolling_max(high, period)),
        shift(rolling_min(low, period)),
    )
}

/// Stochastic oscillator: `%K[t] = 100·(close − LL_k)/(HH_k − LL_k)` over the last `k` bars
/// including the current (50 when the range is zero), `%D = SMA(%K, d)`.
pub fn stochastic(
    high: &[f64],
    low: &[f64],
    close: &[f64],
    k: usize,
    d: usize,
) -> (Vec<f64>, Vec<f64>) {
    let hh = rolling_max(high, k);
    let ll = rolling_min(low, k);
    let kline: Vec<f64> = (0..close.len())
        .map(|t| {
            let range = hh[t] - ll[t];
            if range.is_nan() {
                NAN
            } else if range == 0.0 {
                50.0
            } else {
                100.0 * (close[t] - ll[t]) / range
            }
        })
        .collect();
    let dline = sma(&kline, d);
    (kline, dline)
}

/// Ichimoku lines (no chikou span: it is the close shifted 26 bars back, which can only be
/// compared with the past by looking ahead).
#[derive(Debug, Clone, PartialEq)]
pub struct Ichimoku {
    /// (HH + LL)/2 over `tenkan` bars.
    pub tenkan: Vec<f64>,
    /// (HH + LL)/2 over `kijun` bars.
    pub kijun: Vec<f64>,
    /// Cloud edge A as it stands at bar t: `(tenkan + kijun)/2` computed `displacement` bars ago.
    pub span_a: Vec<f64>,
    /// Cloud edge B as it stands at bar t: `(HH + LL)/2` over `senkou` bars, computed
    /// `displacement` bars ago.
    pub span_b: Vec<f64>,
}

/// `(highest high + lowest low) / 2` over the last `p` bars including the current one.
pub fn midpoint(high: &[f64], low: &[f64], period: usize) -> Vec<f64> {
    let hh = rolling_max(high, period);
    let ll = rolling_min(low, period);
    hh.iter().zip(&ll).map(|(h, l)| (h + l) / 2.0).collect()
}

/// The cloud edges at each bar from the tenkan, kijun and senkou-B midpoint lines, displaced
/// `displacement` bars: `span_a[t] = (tenkan[t−d] + kijun[t−d])/2`, `span_b[t] = senkou[t−d]`.
pub fn ichimoku_cloud(
    tenkan: &[f64],
    kijun: &[f64],
    senkou: &[f64],
    displacement: usize,
) -> (Vec<f64>, Vec<f64>) {
    let n = tenkan.len();
    let d = displacement.max(1);
    let mut span_a = vec![NAN; n];
    let mut span_b = vec![NAN; n];
    for t in d..n {
        span_a[t] = (tenkan[t - d] + kijun[t - d]) / 2.0;
        span_b[t] = senkou[t - d];
    }
    (span_a, span_b)
}

/// Ichimoku with the usual (9, 26, 52) periods as parameters and displacement = `kijun`.
pub fn ichimoku(high: &[f64], low: &[f64], tenkan: usize, kijun: usize, senkou: usize) -> Ichimoku {
    let tenkan_line = midpoint(high, low, tenkan);
    let kijun_line = midpoint(high, low, kijun);
    let (span_a, span_b) = ichimoku_cloud(
        &tenkan_line,
        &kijun_line,
        &midpoint(high, low, senkou),
        kijun,
    );
    Ichimoku {
        tenkan: tenkan_line,
        kijun: kijun_line,
        span_a,
        span_b,
    }
}

/// Rolling VWAP over the last `window` bars: `Σ typical·volume / Σ volume` with
/// `typical = (high + low + close)/3`; when the window's volume is zero, the mean typical price.
pub fn vwap(high: &[f64], low: &[f64], close: &[f64], volume: &[f64], window: usize) -> Vec<f64> {
    let n = close.len();
    let w = window.max(1);
    let mut out = vec![NAN; n];
    let (mut pv, mut v, mut tp_sum) = (0.0, 0.0, 0.0);
    let typical = |t: usize| (high[t] + low[t] + close[t]) / 3.0;
    for t in 0..n {
        let tp = typical(t);
        pv += tp * volume[t];
        v += volume[t];
        tp_sum += tp;
        if t >= w {
            let old = typical(t - w);
            pv -= old * volume[t - w];
            v -= volume[t - w];
            tp_sum -= old;
        }
        if t + 1 >= w {
            out[t] = if v > 0.0 { pv / v } else { tp_sum / w as f64 };
        }
    }
    out
}

/// Rolling mean and sample standard deviation (ddof 1) over the last `p` values, by Welford's
/// add/remove update (numerically stable at price scale). Defined from `p-1` (counted from the
/// input's first defined value); `p < 2` gives std 0.
pub fn rolling_mean_std(src: &[f64], period: usize) -> (Vec<f64>, Vec<f64>) {
    let n = src.len();
    let p = period.max(1);
    let mut mean_out = vec![NAN; n];
    let mut std_out = vec![NAN; n];
    let s = defined_from(src);
    let (mut mean, mut m2) = (0.0_f64, 0.0_f64);
    for t in s..n {
        let x = src[t];
        if t < s + p {
            let k = (t + 1 - s) as f64;
            let d = x - mean;
            mean += d / k;
            m2 += d * (x - mean);
        } else {
            let old = src[t - p];
            let new_mean = mean + (x - old) / p as f64;
            m2 += (x - old) * (x - new_mean + old - mean);
            mean = new_mean;
        }
        if t + 1 >= s + p {
            mean_out[t] = mean;
            std_out[t] = if p < 2 {
                0.0
            } else {
                (m2.max(0.0) / (p - 1) as f64).sqrt()
            };
        }
    }
    (mean_out, std_out)
}

/// Rolling sample standard deviation (ddof 1); see [`rolling_mean_std`].
pub fn rolling_std(src: &[f64], period: usize) -> Vec<f64> {
    rolling_mean_std(src, period).1
}

/// Rolling z-score `(x − mean)/std` over the last `p` values (0 when std is 0).
pub fn zscore(src: &[f64], period: usize) -> Vec<f64> {
    let (mean, std) = rolling_mean_std(src, period);
    src.iter()
        .zip(mean.iter().zip(&std))
        .map(|(x, (m, s))| {
            if s.is_nan() {
                NAN
            } else if *s <= 1e-12 * m.abs().max(1e-300) {
                0.0
            } else {
                (x - m) / s
            }
        })
        .collect()
}

/// MACD lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Macd {
    /// EMA(fast) − EMA(slow).
    pub line: Vec<f64>,
    /// EMA(signal) of the line, seeded at the line's first defined value.
    pub signal: Vec<f64>,
    /// line − signal.
    pub hist: Vec<f64>,
}

/// Moving average convergence/divergence.
pub fn macd(src: &[f64], fast: usize, slow: usize, signal: usize) -> Macd {
    let f = ema(src, fast);
    let s = ema(src, slow);
    let line: Vec<f64> = f.iter().zip(&s).map(|(a, b)| a - b).collect();
    let sig = ema(&line, signal);
    let hist = line.iter().zip(&sig).map(|(a, b)| a - b).collect();
    Macd {
        line,
        signal: sig,
        hist,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn close_to(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                "index {i}: {x} vs {y} (whole: {a:?})"
            );
        }
    }

    #[test]
    fn ema_by_hand() {
        // a = 0.5: 1, 1.5, 2.25, 3.125, 4.0625; defined from bar 2.
        close_to(
            &ema(&[1.0, 2.0, 3.0, 4.0, 5.0], 3),
            &[NAN, NAN, 2.25, 3.125, 4.0625],
        );
        close_to(&ema(&[3.0, 3.0, 6.0], 1), &[3.0, 3.0, 6.0]);
    }

    /// The EMA as its documentation writes it, division included: the oracle for [`ema_into`].
    fn ema_with_division(src: &[f64], period: usize) -> Vec<f64> {
        let mut out = vec![NAN; src.len()];
        let Some(start) = src.iter().position(|v| !v.is_nan()) else {
            return out;
        };
        let p = period.max(1);
        let a = 1.0 / (1.0 + (p as f64 - 1.0) / 2.0);
        let (b, mut e) = (1.0 - a, src[start]);
        for t in start..src.len() {
            if t > start && e != src[t] {
                e = (b * e + a * src[t]) / (b + a);
            }
            if t + 1 >= start + p {
                out[t] = e;
            }
        }
        out
    }

    /// An input of fewer than `max` values around `level` (± `spread`), a fifth of them exactly
    /// `level` (runs of equal values exercise the EMA's unchanged-when-equal rule), led by a
    /// random number of NaNs when `nan_lead`; and that number.
    fn random_input(
        rng: &mut ChaCha8Rng,
        max: usize,
        nan_lead: bool,
        level: f64,
        spread: f64,
    ) -> (Vec<f64>, usize) {
        let n = rng.gen_range(0..max);
        let lead = if nan_lead { rng.gen_range(0..=n) } else { 0 };
        let src = (0..n)
            .map(|t| match t {
                t if t < lead => NAN,
                _ if rng.gen_bool(0.2) => level,
                _ => level + rng.gen_range(-spread..spread),
            })
            .collect();
        (src, lead)
    }

    /// The bits of every value (NaN compares equal to NaN of the same bits).
    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn the_ema_s_divisor_is_one_and_its_values_are_the_formula_s_bits() {
        for p in 1..=100_000_u32 {
            let a = 1.0 / (1.0 + (f64::from(p) - 1.0) / 2.0);
            assert_eq!((1.0 - a) + a, 1.0, "period {p}");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for case in 0..40 {
            let (src, lead) = random_input(&mut rng, 400, case % 4 == 0, 100.0, 5.0);
            let n = src.len();
            for p in [0, 1, 2, 3, 7, 20, 99, 200, 401] {
                let want = ema_with_division(&src, p);
                let mut got = vec![0.5; n];
                ema_into(&src, p, &mut got);
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "case {case}, n {n}, lead {lead}, p {p}"
                );
            }
        }
    }

    /// The SMA as it was written before its recurrence was shared with [`ema_sma_pair`]: the
    /// oracle for [`sma`] and the pair.
    fn sma_by_running_sum(src: &[f64], period: usize) -> Vec<f64> {
        let p = period.max(1);
        let mut out = vec![NAN; src.len()];
        let s = src.iter().position(|v| !v.is_nan()).unwrap_or(src.len());
        let mut sum = CompensatedSum::default();
        for t in s..src.len() {
            sum.add(src[t]);
            if t >= s + p {
                sum.add(-src[t - p]);
            }
            if t + 1 >= s + p {
                out[t] = sum.value() / p as f64;
            }
        }
        out
    }

    #[test]
    fn a_pair_of_lines_is_each_line_alone_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        for case in 0..30 {
            let (src, lead) = random_input(&mut rng, 300, case % 3 == 0, 50.0, 3.0);
            let n = src.len();
            let alone = |l: Line| match l {
                Line::Ema(p) => ema_with_division(&src, p),
                Line::Sma(p) => sma_by_running_sum(&src, p),
            };
            for (p, q) in [(0, 1), (1, 1), (2, 3), (7, 20), (20, 7), (99, 301)] {
                for lines in [
                    [Line::Ema(p), Line::Ema(q)],
                    [Line::Ema(p), Line::Sma(q)],
                    [Line::Sma(p), Line::Ema(q)],
                    [Line::Sma(p), Line::Sma(q)],
                ] {
                    let [x, y] = ema_sma_pair(&src, lines);
                    let what = format!("case {case}, n {n}, lead {lead}, {lines:?}");
                    assert_eq!(bits(&x), bits(&alone(lines[0])), "{what}");
                    assert_eq!(bits(&y), bits(&alone(lines[1])), "{what}");
                }
                assert_eq!(bits(&sma(&src, p)), bits(&sma_by_running_sum(&src, p)));
            }
        }
    }

    #[test]
    fn sma_by_hand() {
        close_to(
            &sma(&[1.0, 2.0, 3.0, 4.0, 5.0], 3),
            &[NAN, NAN, 2.0, 3.0, 4.0],
        );
    }

    #[test]
    fn rsi_by_hand() {
        // deltas +1, -0.5, +1, +0.5, -1. First averages: gain 2/3, loss 1/6 -> RS 4 -> 80.
        // Then gain 11/18, loss 1/9 -> RS 5.5 -> 84.6153..; then 11/27 and 11/27 -> 50.
        close_to(
            &rsi(&[10.0, 11.0, 10.5, 11.5, 12.0, 11.0], 3),
            &[NAN, NAN, NAN, 80.0, 100.0 - 100.0 / 6.5, 50.0],
        );
        close_to(&rsi(&[1.0, 2.0, 3.0, 4.0], 2), &[NAN, NAN, 100.0, 100.0]);
        close_to(&rsi(&[1.0, 1.0, 1.0], 2), &[NAN, NAN, 50.0]);
    }

    #[test]
    fn atr_by_hand() {
        let h = [10.0, 11.0, 12.0, 11.5, 10.5];
        let l = [8.0, 9.0, 10.0, 9.0, 9.5];
        let c = [9.0, 10.0, 11.5, 10.0, 10.0];
        close_to(&true_range(&h, &l, &c), &[2.0, 2.0, 2.0, 2.5, 1.0]);
        close_to(&atr(&h, &l, &c, 3), &[NAN, NAN, 2.0, 6.5 / 3.0, 16.0 / 9.0]);
        assert!(atr(&h[..2], &l[..2], &c[..2], 3).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn donchian_excludes_the_current_bar() {
        let h = [1.0, 3.0, 2.0, 5.0, 4.0, 6.0];
        let l = [0.5, 2.0, 1.0, 4.0, 3.0, 0.1];
        let (up, lo) = donchian(&h, &l, 3);
        close_to(&up, &[NAN, NAN, NAN, 3.0, 5.0, 5.0]);
        close_to(&lo, &[NAN, NAN, NAN, 0.5, 1.0, 1.0]);
    }

    #[test]
    fn rolling_extremes_by_hand() {
        let x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        close_to(
            &rolling_max(&x, 3),
            &[NAN, NAN, 4.0, 4.0, 5.0, 9.0, 9.0, 9.0],
        );
        close_to(
            &rolling_min(&x, 3),
            &[NAN, NAN, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0],
        );
    }

    #[test]
    fn stochastic_by_hand() {
        let h = [10.0, 12.0, 11.0, 13.0, 12.0];
        let l = [8.0, 9.0, 9.0, 10.0, 10.0];
        let c = [9.0, 11.0, 10.0, 12.0, 10.0];
        let (k, d) = stochastic(&h, &l, &c, 3, 2);
        // bar 2: HH 12, LL 8 -> 100*(10-8)/4 = 50; bar 3: HH 13, LL 9 -> 75; bar 4: 13, 9 -> 25.
        close_to(&k, &[NAN, NAN, 50.0, 75.0, 25.0]);
        close_to(&d, &[NAN, NAN, NAN, 62.5, 50.0]);
    }

    #[test]
    fn ichimoku_by_hand() {
        let h = [5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        let l = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let ich = ichimoku(&h, &l, 2, 3, 4);
        close_to(&ich.tenkan, &[NAN, 3.5, 4.5, 5.5, 6.5, 7.5]);
        close_to(&ich.kijun, &[NAN, NAN, 4.0, 5.0, 6.0, 7.0]);
        // span_a[t] = (tenkan + kijun)/2 at t-3: t=5 -> (4.5+4)/2.
        close_to(&ich.span_a, &[NAN, NAN, NAN, NAN, NAN, 4.25]);
        // span_b: mid over 4 bars at t-3: t=6 would be first (mid defined from 3); none here.
        close_to(&ich.span_b, &[NAN; 6]);
    }

    #[test]
    fn vwap_by_hand() {
        let h = [3.0, 6.0, 9.0];
        let l = [3.0, 6.0, 9.0];
        let c = [3.0, 6.0, 9.0];
        let v = [1.0, 3.0, 0.0];
        // window 2: bar1 = (3*1+6*3)/4 = 5.25; bar2 = (6*3 + 9*0)/3 = 6.
        close_to(&vwap(&h, &l, &c, &v, 2), &[NAN, 5.25, 6.0]);
        close_to(&vwap(&h, &l, &c, &[0.0; 3], 2), &[NAN, 4.5, 7.5]);
    }

    #[test]
    fn rolling_std_and_zscore_by_hand() {
        let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        // windows of 4: [2,4,4,4] mean 3.5 var (2.25+.25*3)/3 = 1; [4,4,4,5] mean 4.25 var .75/3
        let (m, s) = rolling_mean_std(&x, 4);
        close_to(&m[3..5], &[3.5, 4.25]);
        close_to(&s[3..5], &[1.0, 0.25f64.sqrt()]);
        let z = zscore(&x, 4);
        close_to(&z[3..4], &[0.5]);
        // At price scale the rolling update matches a two-pass computation.
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let big: Vec<f64> = (0..3000).map(|_| 50_000.0 + rng.gen::<f64>()).collect();
        let s = rolling_std(&big, 50);
        for t in [49, 1000, 2999] {
            let w = &big[t + 1 - 50..=t];
            let mu = w.iter().sum::<f64>() / 50.0;
            let var = w.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / 49.0;
            assert!(
                (s[t] - var.sqrt()).abs() < 1e-7,
                "{t}: {} {}",
                s[t],
                var.sqrt()
            );
        }
        close_to(&zscore(&[1.0, 1.0, 1.0], 2), &[NAN, 0.0, 0.0]);
    }

    #[test]
    fn macd_by_hand() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let m = macd(&x, 2, 3, 2);
        // EMA2 (a=2/3): 1, 5/3, 23/9, 95/27, 365/81; EMA3: -, -, 2.25, 3.125, 4.0625.
        let l2 = 23.0 / 9.0 - 2.25;
        let l3 = 95.0 / 27.0 - 3.125;
        let l4 = 365.0 / 81.0 - 4.0625;
        close_to(&m.line, &[NAN, NAN, l2, l3, l4]);
        let s3 = (l2 / 3.0 + 2.0 * l3 / 3.0) / (1.0 / 3.0 + 2.0 / 3.0);
        let s4 = (s3 / 3.0 + 2.0 * l4 / 3.0) / (1.0 / 3.0 + 2.0 / 3.0);
        close_to(&m.signal, &[NAN, NAN, NAN, s3, s4]);
        close_to(&m.hist, &[NAN, NAN, NAN, l3 - s3, l4 - s4]);
    }

    /// Random OHLCV bars for the look-ahead tests.
    fn bars(rng: &mut ChaCha8Rng, n: usize) -> [Vec<f64>; 4] {
        let mut c = 100.0;
        let (mut h, mut l, mut cl, mut v) = (vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            c *= 1.0 + (rng.gen::<f64>() - 0.5) * 0.04;
            cl.push(c);
            h.push(c * (1.0 + rng.gen::<f64>() * 0.01));
            l.push(c * (1.0 - rng.gen::<f64>() * 0.01));
            v.push(rng.gen::<f64>() * 10.0);
        }
        [h, l, cl, v]
    }

    /// Every indicator output line, flattened, for the look-ahead check.
    fn all_indicators(b: &[Vec<f64>; 4]) -> Vec<Vec<f64>> {
        let [h, l, c, v] = b;
        let (du, dl) = donchian(h, l, 7);
        let (sk, sd) = stochastic(h, l, c, 5, 3);
        let ich = ichimoku(h, l, 4, 9, 18);
        let m = macd(c, 5, 11, 4);
        vec![
            ema(c, 7),
            sma(c, 7),
            rsi(c, 6),
            atr(h, l, c, 6),
            du,
            dl,
            sk,
            sd,
            ich.tenkan,
            ich.kijun,
            ich.span_a,
            ich.span_b,
            vwap(h, l, c, v, 10),
            rolling_std(c, 9),
            zscore(c, 9),
            m.line,
            m.signal,
            m.hist,
        ]
    }

    #[test]
    fn no_indicator_looks_ahead() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        for _ in 0..40 {
            let n = 120;
            let base = bars(&mut rng, n);
            let t = rng.gen_range(0..n - 1);
            let mut changed = base.clone();
            let other = bars(&mut rng, n);
            for (col, oc) in changed.iter_mut().zip(&other) {
                col[t + 1..].copy_from_slice(&oc[t + 1..]);
            }
            let a = all_indicators(&base);
            let b = all_indicators(&changed);
            for (k, (x, y)) in a.iter().zip(&b).enumerate() {
                for i in 0..=t {
                    assert!(
                        x[i].to_bits() == y[i].to_bits(),
                        "indicator {k} changed at bar {i} <= {t} when data after {t} changed"
                    );
                }
            }
        }
    }
}
