//! Technical indicators as pure functions over slices.
//!
//! Every function returns one `Vec<f64>` per output line, the same length as its input, with
//! `NaN` where the indicator is not yet defined (the warm-up). Value `t` depends only on inputs
//! `0..=t` — no indicator looks ahead, and each has a test that proves it. Each allocates its
//! outputs (and at most a window buffer) once; nothing is allocated per bar.
//!
//! Definitions follow the design contract: EMA is pandas `ewm(span=p, adjust=False)` seeded with
//! the first value; RSI and ATR use Wilder smoothing seeded with a simple mean.
//!
//! **Bar by bar.** Each indicator is written once, as a [`Recurrence`]: a state that takes the
//! next bar (value `t` from the state and inputs `..=t`) and moves on. The functions here run
//! it over a whole input; a caller that keeps the state after the last bar (the runner's
//! prepared market, [`crate::seeds::Prepared`]) continues it over new bars alone, with the
//! same bits as a run over the longer input.

use std::collections::VecDeque;

const NAN: f64 = f64::NAN;

/// A start not found yet: the input has had no defined value so far.
const WAITING: usize = usize::MAX;

/// Whether a recurrence that starts at its input's first defined value has begun by bar `t`,
/// whose input is `x`: `start` becomes `t` at the first defined value.
#[inline(always)]
fn begun(start: &mut usize, x: f64, t: usize) -> bool {
    if *start == WAITING {
        if x.is_nan() {
            return false;
        }
        *start = t;
    }
    true
}

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
    match EmaLine::new(period) {
        EmaLine::Plain(mut r) => run(src, 0, out, &mut r),
        EmaLine::Divided(mut r) => run(src, 0, out, &mut r),
    }
}

/// An indicator computed bar by bar: the value at bar `t` from its state and the input up to
/// `t`, the state moved on to `t`. Stepped over `0..n` it gives the whole line; kept, it gives
/// the next bars' values alone (see the module documentation).
pub trait Recurrence<I: ?Sized> {
    fn at(&mut self, src: &I, t: usize) -> f64;
}

/// An input read bar by bar: a slice, or a line derived from slices at each bar.
pub trait Input {
    fn value(&self, t: usize) -> f64;
}

impl Input for [f64] {
    #[inline(always)]
    fn value(&self, t: usize) -> f64 {
        self[t]
    }
}

/// The log returns of a close, `ln(c[t] / c[t−1])`, undefined (`NaN`) at bar 0.
pub struct LogReturns<'a>(pub &'a [f64]);

impl Input for LogReturns<'_> {
    #[inline(always)]
    fn value(&self, t: usize) -> f64 {
        if t == 0 {
            NAN
        } else {
            (self.0[t] / self.0[t - 1]).ln()
        }
    }
}

/// The difference of two lines, `a[t] − b[t]`.
pub struct Diff<'a>(pub &'a [f64], pub &'a [f64]);

impl Input for Diff<'_> {
    #[inline(always)]
    fn value(&self, t: usize) -> f64 {
        self.0[t] - self.1[t]
    }
}

/// A market's bars as the inputs of the indicators that read more than the close.
#[derive(Clone, Copy)]
pub struct Bars<'a> {
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    pub volume: &'a [f64],
}

/// One step of an EMA, `e` to the next value given the input `x`.
pub trait EmaStep: Copy {
    fn step(self, e: f64, x: f64) -> f64;
}

/// `(1−a)·e + a·x`: the EMA's step when its divisor `(1−a)+a` is exactly 1.
#[derive(Debug, Clone, Copy)]
pub struct Plain {
    a: f64,
    b: f64,
}

impl EmaStep for Plain {
    #[inline(always)]
    fn step(self, e: f64, x: f64) -> f64 {
        self.b * e + self.a * x
    }
}

/// `((1−a)·e + a·x) / ((1−a)+a)`: the EMA's step as its formula writes it.
#[derive(Debug, Clone, Copy)]
pub struct Divided {
    a: f64,
    b: f64,
}

impl EmaStep for Divided {
    #[inline(always)]
    fn step(self, e: f64, x: f64) -> f64 {
        (self.b * e + self.a * x) / (self.b + self.a)
    }
}

/// [`ema`]'s recurrence: it starts at its input's first defined value.
#[derive(Debug, Clone)]
pub struct Ema<F> {
    e: f64,
    p: usize,
    start: usize,
    defined_from: usize,
    step: F,
}

impl<F: EmaStep> Ema<F> {
    fn new(p: usize, step: F) -> Self {
        Ema {
            e: NAN,
            p,
            start: WAITING,
            defined_from: WAITING,
            step,
        }
    }
}

impl<F: EmaStep, I: Input + ?Sized> Recurrence<I> for Ema<F> {
    #[inline(always)]
    fn at(&mut self, src: &I, t: usize) -> f64 {
        let x = src.value(t);
        let first = self.start == WAITING;
        if !begun(&mut self.start, x, t) {
            return NAN;
        }
        if first {
            self.defined_from = t + self.p - 1;
            self.e = x;
        } else if self.e != x {
            self.e = self.step.step(self.e, x);
        }
        if t >= self.defined_from {
            self.e
        } else {
            NAN
        }
    }
}

/// An EMA of a period, with the step its weights call for (see [`ema_into`]).
#[derive(Debug, Clone)]
pub enum EmaLine {
    Plain(Ema<Plain>),
    Divided(Ema<Divided>),
}

impl EmaLine {
    pub fn new(period: usize) -> Self {
        let p = period.max(1);
        let a = 1.0 / (1.0 + (p as f64 - 1.0) / 2.0);
        let b = 1.0 - a;
        if b + a == 1.0 {
            EmaLine::Plain(Ema::new(p, Plain { a, b }))
        } else {
            EmaLine::Divided(Ema::new(p, Divided { a, b }))
        }
    }
}

impl<I: Input + ?Sized> Recurrence<I> for EmaLine {
    fn at(&mut self, src: &I, t: usize) -> f64 {
        match self {
            EmaLine::Plain(r) => r.at(src, t),
            EmaLine::Divided(r) => r.at(src, t),
        }
    }
}

/// [`sma`]'s compensated running sum over the last `p` values, from its input's first defined
/// value on.
#[derive(Debug, Clone)]
pub struct Sma {
    sum: CompensatedSum,
    start: usize,
    p: usize,
}

impl Sma {
    pub fn new(period: usize) -> Self {
        Sma {
            sum: CompensatedSum::default(),
            start: WAITING,
            p: period.max(1),
        }
    }
}

impl<I: Input + ?Sized> Recurrence<I> for Sma {
    #[inline(always)]
    fn at(&mut self, src: &I, t: usize) -> f64 {
        let x = src.value(t);
        if !begun(&mut self.start, x, t) {
            return NAN;
        }
        self.sum.add(x);
        if t >= self.start + self.p {
            self.sum.add(-src.value(t - self.p));
        }
        if t + 1 >= self.start + self.p {
            self.sum.value() / self.p as f64
        } else {
            NAN
        }
    }
}

/// Writes `r`'s values of bars `from..` into `out[from..]` (`out` as long as the input).
#[inline(always)]
pub fn run<I: ?Sized>(src: &I, from: usize, out: &mut [f64], r: &mut impl Recurrence<I>) {
    for (t, o) in out.iter_mut().enumerate().skip(from) {
        *o = r.at(src, t);
    }
}

/// `r`'s values of a whole input of `n` bars.
fn line<I: ?Sized>(src: &I, n: usize, mut r: impl Recurrence<I>) -> Vec<f64> {
    let mut out = vec![NAN; n];
    run(src, 0, &mut out, &mut r);
    out
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
    let (mut x, mut y) = (vec![NAN; n], vec![NAN; n]);
    let ema_one = |p: usize| match EmaLine::new(p) {
        EmaLine::Plain(r) => Some(r),
        EmaLine::Divided(_) => None,
    };
    match lines {
        [Line::Ema(p), Line::Ema(q)] => match (ema_one(p), ema_one(q)) {
            (Some(a), Some(b)) => run2(src, &mut x, &mut y, a, b),
            _ => return [ema(src, p), ema(src, q)],
        },
        [Line::Ema(p), Line::Sma(q)] => match ema_one(p) {
            Some(a) => run2(src, &mut x, &mut y, a, Sma::new(q)),
            None => return [ema(src, p), self::sma(src, q)],
        },
        [Line::Sma(p), Line::Ema(q)] => match ema_one(q) {
            Some(b) => run2(src, &mut y, &mut x, b, Sma::new(p)),
            None => return [self::sma(src, p), ema(src, q)],
        },
        [Line::Sma(p), Line::Sma(q)] => run2(src, &mut x, &mut y, Sma::new(p), Sma::new(q)),
    }
    [x, y]
}

/// The [`ema`]s of several periods, the same bits as computing each alone: four at a time in
/// one pass (as in [`ema_sma_pair`], their dependency chains then run side by side).
pub fn emas(src: &[f64], periods: &[usize]) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(periods.len());
    for four in periods.chunks(4) {
        let plain: Vec<Ema<Plain>> = four
            .iter()
            .filter_map(|&p| match EmaLine::new(p) {
                EmaLine::Plain(r) => Some(r),
                EmaLine::Divided(_) => None,
            })
            .collect();
        match <[Ema<Plain>; 4]>::try_from(plain) {
            Ok(mut rs) => {
                let mut lines = [(); 4].map(|_| vec![NAN; src.len()]);
                for t in 0..src.len() {
                    for (r, line) in rs.iter_mut().zip(&mut lines) {
                        line[t] = r.at(src, t);
                    }
                }
                out.extend(lines);
            }
            Err(_) => out.extend(four.iter().map(|&p| ema(src, p))),
        }
    }
    out
}

/// Writes `a`'s and `b`'s values into `x` and `y`, one bar of each in turn.
#[inline(always)]
fn run2(
    src: &[f64],
    x: &mut [f64],
    y: &mut [f64],
    mut a: impl Recurrence<[f64]>,
    mut b: impl Recurrence<[f64]>,
) {
    for t in 0..src.len() {
        x[t] = a.at(src, t);
        y[t] = b.at(src, t);
    }
}

/// Running sum with Neumaier compensation, so adding and removing values leaves no drift
/// (an SMA of 0, 50, 100, 100 over two bars is exactly 100, as it must be for crossings).
#[derive(Debug, Clone, Default)]
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
    line(src, src.len(), Sma::new(period))
}

/// Relative strength index with Wilder smoothing. `d[t] = c[t] - c[t-1]`; the first average
/// gain/loss is the simple mean of `d[1..=p]` (so RSI is defined from bar `p`), then
/// `avg[t] = (avg[t-1]·(p-1) + x[t]) / p`. `RSI = 100 − 100/(1 + gain/loss)`; 100 when there
/// were no losses, 50 when there was no movement at all.
pub fn rsi(close: &[f64], period: usize) -> Vec<f64> {
    line(close, close.len(), Rsi::new(period))
}

/// [`rsi`]'s recurrence over the close.
#[derive(Debug, Clone)]
pub struct Rsi {
    p: usize,
    gain: f64,
    loss: f64,
}

impl Rsi {
    pub fn new(period: usize) -> Self {
        Rsi {
            p: period.max(1),
            gain: 0.0,
            loss: 0.0,
        }
    }
}

impl Recurrence<[f64]> for Rsi {
    #[inline(always)]
    fn at(&mut self, close: &[f64], t: usize) -> f64 {
        if t == 0 {
            return NAN;
        }
        let d = close[t] - close[t - 1];
        let pf = self.p as f64;
        if t <= self.p {
            self.gain += d.max(0.0);
            self.loss += (-d).max(0.0);
            if t < self.p {
                return NAN;
            }
            self.gain /= pf;
            self.loss /= pf;
        } else {
            self.gain = (self.gain * (pf - 1.0) + d.max(0.0)) / pf;
            self.loss = (self.loss * (pf - 1.0) + (-d).max(0.0)) / pf;
        }
        rsi_value(self.gain, self.loss)
    }
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
    (0..close.len())
        .map(|t| true_range_at(high, low, close, t))
        .collect()
}

#[inline(always)]
fn true_range_at(high: &[f64], low: &[f64], close: &[f64], t: usize) -> f64 {
    if t == 0 {
        high[0] - low[0]
    } else {
        let pc = close[t - 1];
        (high[t] - low[t])
            .max((high[t] - pc).abs())
            .max((low[t] - pc).abs())
    }
}

/// Average true range with Wilder smoothing: `ATR[p-1] = mean(TR[0..p])`,
/// `ATR[t] = (ATR[t-1]·(p-1) + TR[t]) / p`; undefined before `p-1`.
pub fn atr(high: &[f64], low: &[f64], close: &[f64], period: usize) -> Vec<f64> {
    let bars = Bars {
        high,
        low,
        close,
        volume: close,
    };
    line(&bars, close.len(), Atr::new(period))
}

/// [`atr`]'s recurrence over high, low and close.
#[derive(Debug, Clone)]
pub struct Atr {
    p: usize,
    a: f64,
}

impl Atr {
    pub fn new(period: usize) -> Self {
        Atr {
            p: period.max(1),
            a: 0.0,
        }
    }
}

impl Recurrence<Bars<'_>> for Atr {
    #[inline(always)]
    fn at(&mut self, b: &Bars<'_>, t: usize) -> f64 {
        let tr = true_range_at(b.high, b.low, b.close, t);
        let pf = self.p as f64;
        if t + 1 < self.p {
            // The first `p` true ranges summed in order, then their mean.
            self.a += tr;
            NAN
        } else {
            self.a = if t + 1 == self.p {
                (self.a + tr) / pf
            } else {
                (self.a * (pf - 1.0) + tr) / pf
            };
            self.a
        }
    }
}

/// The maximum (`is_max`) or minimum over the last `p` values including the current, defined
/// from `p-1`: a monotonic deque of at most `p` indices, O(1) a bar on average.
#[derive(Debug, Clone)]
pub struct Extreme {
    p: usize,
    is_max: bool,
    dq: VecDeque<usize>,
}

impl Extreme {
    pub fn new(period: usize, is_max: bool) -> Self {
        let p = period.max(1);
        Extreme {
            p,
            is_max,
            dq: VecDeque::with_capacity(p + 1),
        }
    }
}

impl Recurrence<[f64]> for Extreme {
    #[inline(always)]
    fn at(&mut self, src: &[f64], t: usize) -> f64 {
        while let Some(&back) = self.dq.back() {
            let worse = if self.is_max {
                src[back] <= src[t]
            } else {
                src[back] >= src[t]
            };
            if !worse {
                break;
            }
            self.dq.pop_back();
        }
        self.dq.push_back(t);
        if let Some(&front) = self.dq.front() {
            if front + self.p <= t {
                self.dq.pop_front();
            }
        }
        if t + 1 >= self.p {
            src[self.dq[0]]
        } else {
            NAN
        }
    }
}

/// Highest value of the last `p` bars including the current one.
pub fn rolling_max(src: &[f64], period: usize) -> Vec<f64> {
    line(src, src.len(), Extreme::new(period, true))
}

/// Lowest value of the last `p` bars including the current one.
pub fn rolling_min(src: &[f64], period: usize) -> Vec<f64> {
    line(src, src.len(), Extreme::new(period, false))
}

/// An [`Extreme`] of the **previous** `p` bars: its value at `t − 1` (`NaN` at bar 0), the
/// Donchian channel's sides.
#[derive(Debug, Clone)]
pub struct Previous(pub Extreme);

impl Recurrence<[f64]> for Previous {
    #[inline(always)]
    fn at(&mut self, src: &[f64], t: usize) -> f64 {
        if t == 0 {
            NAN
        } else {
            self.0.at(src, t - 1)
        }
    }
}

/// Donchian channel over the **previous** `p` bars, excluding the current bar:
/// `upper[t] = max(high[t-p..t])`, `lower[t] = min(low[t-p..t])`, defined from bar `p`.
pub fn donchian(high: &[f64], low: &[f64], period: usize) -> (Vec<f64>, Vec<f64>) {
    (
        line(high, high.len(), Previous(Extreme::new(period, true))),
        line(low, low.len(), Previous(Extreme::new(period, false))),
    )
}

/// The highest high and the lowest low of the last `p` bars, together.
#[derive(Debug, Clone)]
pub struct Range {
    hh: Extreme,
    ll: Extreme,
}

impl Range {
    pub fn new(period: usize) -> Self {
        Range {
            hh: Extreme::new(period, true),
            ll: Extreme::new(period, false),
        }
    }

    #[inline(always)]
    fn at(&mut self, b: &Bars<'_>, t: usize) -> (f64, f64) {
        (self.hh.at(b.high, t), self.ll.at(b.low, t))
    }
}

/// Stochastic %K: `100·(close − LL_k)/(HH_k − LL_k)` over the last `k` bars including the
/// current (50 when the range is zero).
#[derive(Debug, Clone)]
pub struct StochK(pub Range);

impl Recurrence<Bars<'_>> for StochK {
    #[inline(always)]
    fn at(&mut self, b: &Bars<'_>, t: usize) -> f64 {
        let (hh, ll) = self.0.at(b, t);
        let range = hh - ll;
        if range.is_nan() {
            NAN
        } else if range == 0.0 {
            50.0
        } else {
            100.0 * (b.close[t] - ll) / range
        }
    }
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
    let bars = Bars {
        high,
        low,
        close,
        volume: close,
    };
    let kline = line(&bars, close.len(), StochK(Range::new(k)));
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

/// `(highest high + lowest low) / 2` of the last `p` bars.
#[derive(Debug, Clone)]
pub struct Midpoint(pub Range);

impl Recurrence<Bars<'_>> for Midpoint {
    #[inline(always)]
    fn at(&mut self, b: &Bars<'_>, t: usize) -> f64 {
        let (h, l) = self.0.at(b, t);
        (h + l) / 2.0
    }
}

/// `(highest high + lowest low) / 2` over the last `p` bars including the current one.
pub fn midpoint(high: &[f64], low: &[f64], period: usize) -> Vec<f64> {
    let bars = Bars {
        high,
        low,
        close: high,
        volume: high,
    };
    line(&bars, high.len(), Midpoint(Range::new(period)))
}

/// The cloud edges at bar `t` from the tenkan, kijun and senkou-B midpoint lines, displaced
/// `displacement` bars (`NaN` before it): `((tenkan[t−d] + kijun[t−d])/2, senkou[t−d])`.
#[inline(always)]
pub fn cloud_at(
    tenkan: &[f64],
    kijun: &[f64],
    senkou: &[f64],
    displacement: usize,
    t: usize,
) -> (f64, f64) {
    let d = displacement.max(1);
    if t < d {
        (NAN, NAN)
    } else {
        ((tenkan[t - d] + kijun[t - d]) / 2.0, senkou[t - d])
    }
}

/// The cloud edges at each bar ([`cloud_at`]).
pub fn ichimoku_cloud(
    tenkan: &[f64],
    kijun: &[f64],
    senkou: &[f64],
    displacement: usize,
) -> (Vec<f64>, Vec<f64>) {
    (0..tenkan.len())
        .map(|t| cloud_at(tenkan, kijun, senkou, displacement, t))
        .unzip()
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
    let bars = Bars {
        high,
        low,
        close,
        volume,
    };
    line(&bars, close.len(), Vwap::new(window))
}

/// [`vwap`]'s running sums.
#[derive(Debug, Clone)]
pub struct Vwap {
    w: usize,
    pv: f64,
    v: f64,
    tp_sum: f64,
}

impl Vwap {
    pub fn new(window: usize) -> Self {
        Vwap {
            w: window.max(1),
            pv: 0.0,
            v: 0.0,
            tp_sum: 0.0,
        }
    }
}

impl Recurrence<Bars<'_>> for Vwap {
    #[inline(always)]
    fn at(&mut self, b: &Bars<'_>, t: usize) -> f64 {
        let typical = |t: usize| (b.high[t] + b.low[t] + b.close[t]) / 3.0;
        let w = self.w;
        let tp = typical(t);
        self.pv += tp * b.volume[t];
        self.v += b.volume[t];
        self.tp_sum += tp;
        if t >= w {
            let old = typical(t - w);
            self.pv -= old * b.volume[t - w];
            self.v -= b.volume[t - w];
            self.tp_sum -= old;
        }
        if t + 1 >= w {
            if self.v > 0.0 {
                self.pv / self.v
            } else {
                self.tp_sum / w as f64
            }
        } else {
            NAN
        }
    }
}

/// Rolling mean and sample standard deviation by Welford's add/remove update, from the input's
/// first defined value on (see [`rolling_mean_std`]).
#[derive(Debug, Clone)]
pub struct Welford {
    p: usize,
    start: usize,
    mean: f64,
    m2: f64,
}

impl Welford {
    pub fn new(period: usize) -> Self {
        Welford {
            p: period.max(1),
            start: WAITING,
            mean: 0.0,
            m2: 0.0,
        }
    }

    /// The mean and standard deviation at bar `t` (`NaN`s before the window is full).
    #[inline(always)]
    pub fn at<I: Input + ?Sized>(&mut self, src: &I, t: usize) -> (f64, f64) {
        let x = src.value(t);
        if !begun(&mut self.start, x, t) {
            return (NAN, NAN);
        }
        let (s, p) = (self.start, self.p);
        if t < s + p {
            let k = (t + 1 - s) as f64;
            let d = x - self.mean;
            self.mean += d / k;
            self.m2 += d * (x - self.mean);
        } else {
            let old = src.value(t - p);
            let new_mean = self.mean + (x - old) / p as f64;
            self.m2 += (x - old) * (x - new_mean + old - self.mean);
            self.mean = new_mean;
        }
        if t + 1 >= s + p {
            let std = if p < 2 {
                0.0
            } else {
                (self.m2.max(0.0) / (p - 1) as f64).sqrt()
            };
            (self.mean, std)
        } else {
            (NAN, NAN)
        }
    }
}

/// Rolling mean and sample standard deviation (ddof 1) over the last `p` values, by Welford's
/// add/remove update (numerically stable at price scale). Defined from `p-1` (counted from the
/// input's first defined value); `p < 2` gives std 0.
pub fn rolling_mean_std(src: &[f64], period: usize) -> (Vec<f64>, Vec<f64>) {
    let mut w = Welford::new(period);
    (0..src.len()).map(|t| w.at(src, t)).unzip()
}

/// Rolling sample standard deviation (ddof 1); see [`rolling_mean_std`].
pub fn rolling_std(src: &[f64], period: usize) -> Vec<f64> {
    rolling_mean_std(src, period).1
}

/// The z-score of its input over the last `p` values: [`zscore`] bar by bar.
#[derive(Debug, Clone)]
pub struct Zscore(pub Welford);

impl<I: Input + ?Sized> Recurrence<I> for Zscore {
    #[inline(always)]
    fn at(&mut self, src: &I, t: usize) -> f64 {
        let (m, s) = self.0.at(src, t);
        z_value(src.value(t), m, s)
    }
}

/// `(x − m)/s`, 0 when `s` is 0 (relative to `m`), `NaN` while `s` is undefined.
#[inline(always)]
fn z_value(x: f64, m: f64, s: f64) -> f64 {
    if s.is_nan() {
        NAN
    } else if s <= 1e-12 * m.abs().max(1e-300) {
        0.0
    } else {
        (x - m) / s
    }
}

/// Rolling z-score `(x − mean)/std` over the last `p` values (0 when std is 0).
pub fn zscore(src: &[f64], period: usize) -> Vec<f64> {
    line(src, src.len(), Zscore(Welford::new(period)))
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
    let mut r = MacdLines::new(fast, slow, signal);
    let mut out = Macd {
        line: Vec::with_capacity(src.len()),
        signal: Vec::with_capacity(src.len()),
        hist: Vec::with_capacity(src.len()),
    };
    for t in 0..src.len() {
        let (l, s, h) = r.at(src, t);
        out.line.push(l);
        out.signal.push(s);
        out.hist.push(h);
    }
    out
}

/// [`macd`]'s recurrence: the fast and slow EMAs of the input, the signal EMA of their
/// difference.
#[derive(Debug, Clone)]
pub struct MacdLines {
    fast: EmaLine,
    slow: EmaLine,
    signal: EmaLine,
}

/// One value as an input: what an EMA of a line computed bar by bar reads at the bar.
struct Now(f64);

impl Input for Now {
    fn value(&self, _: usize) -> f64 {
        self.0
    }
}

impl MacdLines {
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        MacdLines {
            fast: EmaLine::new(fast),
            slow: EmaLine::new(slow),
            signal: EmaLine::new(signal),
        }
    }

    /// The line, signal and histogram at bar `t`.
    #[inline(always)]
    pub fn at(&mut self, src: &[f64], t: usize) -> (f64, f64, f64) {
        let line = self.fast.at(src, t) - self.slow.at(src, t);
        // The EMA reads its input at the bar alone.
        let signal = self.signal.at(&Now(line), t);
        (line, signal, line - signal)
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
