//! Indicator lines bar by bar: each cached line's state after its last bar (an
//! [`ind::Recurrence`]), so a line computed over a history continues over the bars that come
//! after it with the same bits as a computation over the longer history.
//!
//! A prepared market computes every line through [`State::run`] (the whole history in one
//! call). The runner's market also keeps the states ([`super::Prepared::resume`]) and hands
//! them on with the lines ([`Carry`]), so a new bar costs each line one step, whatever the
//! history's length.
//!
//! **What a history may revise.** A history grows at its end (see
//! [`crate::runner::history`]): past bars stay, except that the last bar's funding is summed
//! over one interval until the next bar arrives and then to it. So lines of the funding keep
//! their state from before their last bar too and redo that bar; a history whose last carried
//! bar changed (another file, a rewritten bar) starts afresh.

use std::collections::HashMap;

use super::{ml::Features, Key};
use crate::{
    indicators::{self as ind, Recurrence},
    market::Market,
    strategy::regime::{Regimes, VolatilityParams, VolatilityRanks},
};

/// What a line reads at each bar.
pub(crate) struct Ctx<'a> {
    bars: ind::Bars<'a>,
    funding: &'a [f64],
    fear_greed: Option<&'a [f64]>,
    /// The line this one is computed from ([`dependency`]), up to the bars being stepped.
    dep: &'a [f64],
    /// Bars per year (the realized volatility's scale is its square root).
    bars_per_year: f64,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(m: &'a Market, bars_per_year: f64, dep: &'a [f64]) -> Self {
        let c = &m.candles;
        Ctx {
            bars: ind::Bars {
                high: &c.high,
                low: &c.low,
                close: &c.close,
                volume: &c.volume,
            },
            funding: &m.funding_per_bar,
            fear_greed: m.fear_greed.as_deref(),
            dep,
            bars_per_year,
        }
    }
}

/// The line a key is computed from, when it is another cached line.
pub(crate) fn dependency(key: Key) -> Option<Key> {
    match key {
        Key::FundingZ(s, _) => Some(Key::FundingSma(s)),
        Key::VwapZ(w, _) => Some(Key::Vwap(w)),
        _ => None,
    }
}

/// Whether a key reads the funding, whose last bar a longer history revises.
pub(crate) fn revises_last(key: Key) -> bool {
    matches!(key, Key::Funding | Key::FundingSma(_) | Key::FundingZ(..))
}

/// A line's state after its last bar.
#[derive(Debug, Clone)]
pub(crate) enum State {
    Ema(ind::EmaLine),
    Sma(ind::Sma),
    Rsi(ind::Rsi),
    Atr(ind::Atr),
    /// A Donchian side: the extreme of the previous bars' highs or lows.
    Previous(ind::Previous),
    StochK(ind::StochK),
    /// %D: %K's state and values (the SMA reads the value leaving its window) and the SMA.
    StochD {
        k: ind::StochK,
        kline: Vec<f64>,
        d: ind::Sma,
    },
    Midpoint(ind::Midpoint),
    Vwap(ind::Vwap),
    /// The standard deviation of the log returns, annualized by `scale`.
    RealizedVol {
        w: ind::Welford,
        scale: f64,
    },
    /// An SMA of the funding per bar.
    FundingSma(ind::Sma),
    /// A z-score of the close.
    Zscore(ind::Zscore),
    /// A z-score of the line the key depends on (the funding SMA), or of the close's distance
    /// from it (the VWAP).
    ZscoreOf(ind::Zscore),
    /// The MACD lines of the close (the histogram is kept).
    MacdHist(ind::MacdLines),
    /// A value of bar `t` alone (the close, a return, the funding, Fear & Greed).
    Pointwise,
}

impl State {
    /// The state before the first bar.
    pub(crate) fn new(key: Key, bars_per_year: f64) -> Self {
        let extreme = ind::Extreme::new;
        match key {
            Key::Ema(p) => State::Ema(ind::EmaLine::new(p)),
            Key::Sma(p) => State::Sma(ind::Sma::new(p)),
            Key::Rsi(p) => State::Rsi(ind::Rsi::new(p)),
            Key::Atr(p) => State::Atr(ind::Atr::new(p)),
            Key::DonchianUpper(p) => State::Previous(ind::Previous(extreme(p, true))),
            Key::DonchianLower(p) => State::Previous(ind::Previous(extreme(p, false))),
            Key::StochK(k, _) => State::StochK(ind::StochK(ind::Range::new(k))),
            Key::StochD(k, d) => State::StochD {
                k: ind::StochK(ind::Range::new(k)),
                kline: Vec::new(),
                d: ind::Sma::new(d),
            },
            Key::Midpoint(p) => State::Midpoint(ind::Midpoint(ind::Range::new(p))),
            Key::Vwap(w) => State::Vwap(ind::Vwap::new(w)),
            Key::RealizedVol(p) => State::RealizedVol {
                w: ind::Welford::new(p),
                scale: bars_per_year.sqrt(),
            },
            Key::FundingSma(p) => State::FundingSma(ind::Sma::new(p)),
            Key::Zscore(p) => State::Zscore(ind::Zscore(ind::Welford::new(p))),
            Key::FundingZ(_, z) | Key::VwapZ(_, z) => {
                State::ZscoreOf(ind::Zscore(ind::Welford::new(z)))
            }
            Key::MacdHist(f, s, g) => State::MacdHist(ind::MacdLines::new(f, s, g)),
            Key::Ret(_) | Key::Close | Key::Funding | Key::FearGreed => State::Pointwise,
        }
    }

    /// Whether the state still holds for a history of `bars_per_year` (a realized volatility's
    /// scale follows the history's interval).
    pub(crate) fn holds(&self, bars_per_year: f64) -> bool {
        match self {
            State::RealizedVol { scale, .. } => *scale == bars_per_year.sqrt(),
            _ => true,
        }
    }

    /// Steps bars `from..to` of `key`'s line, writing their values into `out[from..to]`
    /// (`out` at least `to` long): one match, then one loop of the key's recurrence.
    pub(crate) fn run(&mut self, key: Key, ctx: &Ctx<'_>, from: usize, to: usize, out: &mut [f64]) {
        let out = &mut out[..to];
        let (b, close) = (&ctx.bars, ctx.bars.close);
        match self {
            State::Ema(r) => match r {
                ind::EmaLine::Plain(r) => ind::run(close, from, out, r),
                ind::EmaLine::Divided(r) => ind::run(close, from, out, r),
            },
            State::Sma(r) => ind::run(close, from, out, r),
            State::Rsi(r) => ind::run(close, from, out, r),
            State::Atr(r) => ind::run(b, from, out, r),
            State::Previous(r) => {
                let src = if matches!(key, Key::DonchianUpper(_)) {
                    b.high
                } else {
                    b.low
                };
                ind::run(src, from, out, r);
            }
            State::StochK(r) => ind::run(b, from, out, r),
            State::StochD { k, kline, d } => {
                for t in from..to {
                    kline.push(k.at(b, t));
                    out[t] = d.at(&kline[..], t);
                }
            }
            State::Midpoint(r) => ind::run(b, from, out, r),
            State::Vwap(r) => ind::run(b, from, out, r),
            State::RealizedVol { w, scale } => {
                let r = ind::LogReturns(close);
                for (t, o) in out.iter_mut().enumerate().skip(from) {
                    *o = w.at(&r, t).1 * *scale;
                }
            }
            State::FundingSma(r) => ind::run(ctx.funding, from, out, r),
            State::Zscore(r) => ind::run(close, from, out, r),
            State::ZscoreOf(r) => {
                if matches!(key, Key::VwapZ(..)) {
                    ind::run(&ind::Diff(close, ctx.dep), from, out, r);
                } else {
                    ind::run(ctx.dep, from, out, r);
                }
            }
            State::MacdHist(r) => {
                for (t, o) in out.iter_mut().enumerate().skip(from) {
                    *o = r.at(close, t).2;
                }
            }
            State::Pointwise => {
                for (t, o) in out.iter_mut().enumerate().skip(from) {
                    *o = match key {
                        Key::Ret(p) if t >= p => close[t] / close[t - p] - 1.0,
                        Key::Ret(_) => f64::NAN,
                        Key::Funding => ctx.funding[t],
                        Key::FearGreed => ctx.fear_greed.map_or(f64::NAN, |v| v[t]),
                        _ => close[t],
                    };
                }
            }
        }
    }

    /// The state of %K inside a %D state, for the %K line computed beside it.
    pub(crate) fn stoch_k(&self) -> Option<(State, &[f64])> {
        match self {
            State::StochD { k, kline, .. } => Some((State::StochK(k.clone()), kline)),
            _ => None,
        }
    }
}

/// A line with its state: what the runner carries from one bar to the next.
#[derive(Debug, Clone)]
pub(crate) struct Carried {
    pub(crate) values: Vec<f64>,
    pub(crate) state: State,
    /// For a line of the funding ([`revises_last`]): the state before its last bar.
    pub(crate) before_last: Option<State>,
}

impl Carried {
    /// `key`'s line over `n` bars from the first, stepped from scratch.
    pub(crate) fn compute(key: Key, ctx: &Ctx<'_>, n: usize) -> Self {
        let mut line = Carried {
            values: Vec::new(),
            state: State::new(key, ctx.bars_per_year),
            before_last: None,
        };
        line.extend(key, ctx, 0, n);
        line
    }

    /// Steps the line over bars `from..n` (it holds `from` values and the state after them).
    fn extend(&mut self, key: Key, ctx: &Ctx<'_>, from: usize, n: usize) {
        self.values.resize(n, f64::NAN);
        if revises_last(key) && n > from {
            self.state.run(key, ctx, from, n - 1, &mut self.values);
            self.before_last = Some(self.state.clone());
            self.state.run(key, ctx, n - 1, n, &mut self.values);
        } else {
            self.state.run(key, ctx, from, n, &mut self.values);
        }
    }
}

/// The bar a carry ends with, as its bits: a history that still holds it (at the same place)
/// extends the carried one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    bars: usize,
    first_ts: i64,
    last: [u64; 6],
    /// The funding of the bar before the last (final once a bar follows it).
    funding_before_last: u64,
    fear_greed: bool,
}

impl Stamp {
    /// The stamp of `m`'s bar `bars − 1` (`None` for no bars).
    fn of(m: &Market, bars: usize) -> Option<Stamp> {
        let c = &m.candles;
        let t = bars.checked_sub(1)?;
        Some(Stamp {
            bars,
            first_ts: c.ts[0],
            last: [
                c.ts[t] as u64,
                c.open[t].to_bits(),
                c.high[t].to_bits(),
                c.low[t].to_bits(),
                c.close[t].to_bits(),
                c.volume[t].to_bits(),
            ],
            funding_before_last: t
                .checked_sub(1)
                .map_or(0, |u| m.funding_per_bar[u].to_bits()),
            fear_greed: m.fear_greed.is_some(),
        })
    }
}

/// A prepared market's lines and their states, without the market: the runner keeps it
/// between bars and resumes it on the next, longer history ([`super::Prepared::resume`]).
#[derive(Debug, Clone, Default)]
pub struct Carry {
    stamp: Option<Stamp>,
    /// The smallest step between consecutive bars so far (the history's interval).
    min_step: Option<i64>,
    pub(crate) lines: HashMap<Key, Carried>,
    /// The regimes computed so far, with their volatility ranking's state.
    pub(crate) regimes: CarriedRegimes,
    /// The ML seeds' feature rows, when computed.
    pub(crate) features: Option<Features>,
}

/// Regimes with their volatility ranking's state, by how volatility is measured.
pub(crate) type CarriedRegimes = Vec<(VolatilityParams, Regimes, VolatilityRanks)>;

impl Carry {
    /// A carry of `lines` over `m`'s bars, whose smallest step is `min_step`.
    pub(crate) fn new(
        m: &Market,
        min_step: Option<i64>,
        lines: HashMap<Key, Carried>,
        regimes: CarriedRegimes,
        features: Option<Features>,
    ) -> Self {
        Carry {
            stamp: Stamp::of(m, m.candles.len()),
            min_step,
            lines,
            regimes,
            features,
        }
    }

    /// Bars the lines cover.
    pub fn bars(&self) -> usize {
        self.stamp.map_or(0, |s| s.bars)
    }

    /// The smallest step between consecutive bars of `m`, from the carried one when `m`
    /// extends it (the new bars' steps alone), otherwise over all of `m`.
    pub(crate) fn min_step(&self, m: &Market, extends: bool) -> Option<i64> {
        let ts = &m.candles.ts;
        if !extends {
            return m.candles.interval_ms();
        }
        let from = self.bars().max(1);
        ts[from - 1..]
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(self.min_step, |m, s| Some(m.map_or(s, |m: i64| m.min(s))))
    }

    /// Whether `m` holds the carried bars as they were (the last one's funding aside).
    pub(crate) fn extends(&self, m: &Market) -> bool {
        let Some(s) = self.stamp else {
            return false;
        };
        m.candles.len() >= s.bars && Stamp::of(m, s.bars) == Some(s)
    }

    /// The lines continued over `m`'s new bars, dependencies first; a line whose state no
    /// longer holds, or whose dependency is gone, is dropped (computed afresh when asked for).
    /// And the regimes continued over them. `m` must extend the carry ([`Carry::extends`]).
    pub(crate) fn resume(
        self,
        m: &Market,
        bars_per_year: f64,
    ) -> (HashMap<Key, Carried>, CarriedRegimes) {
        let (from, n) = (self.bars(), m.candles.len());
        let mut regimes = self.regimes;
        for (_, r, ranks) in &mut regimes {
            r.extend(m, ranks);
        }
        let mut done: HashMap<Key, Carried> = HashMap::with_capacity(self.lines.len());
        let (plain, derived): (Vec<_>, Vec<_>) = self
            .lines
            .into_iter()
            .partition(|(k, _)| dependency(*k).is_none());
        for (key, mut line) in plain.into_iter().chain(derived) {
            if !line.state.holds(bars_per_year) {
                continue;
            }
            let dep = match dependency(key) {
                Some(d) => match done.get(&d) {
                    Some(l) => l.values.as_slice(),
                    None => continue,
                },
                None => &[],
            };
            let start = if revises_last(key) {
                match line.before_last.take() {
                    Some(b) => {
                        line.state = b;
                        from - 1
                    }
                    None => continue,
                }
            } else {
                from
            };
            line.extend(key, &Ctx::new(m, bars_per_year, dep), start, n);
            done.insert(key, line);
        }
        (done, regimes)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::{
        market::{
            synthetic::{generate, SyntheticParams},
            FundingSeries, HOUR_MS,
        },
        seeds::Prepared,
    };

    /// One line of every kind, periods short and long for the history.
    const KEYS: [Key; 22] = [
        Key::Ema(1),
        Key::Ema(20),
        Key::Sma(7),
        Key::Rsi(14),
        Key::Atr(10),
        Key::DonchianUpper(20),
        Key::DonchianLower(5),
        Key::StochK(14, 3),
        Key::StochD(14, 3),
        Key::Midpoint(9),
        Key::Vwap(24),
        Key::RealizedVol(24),
        Key::FundingSma(8),
        Key::Zscore(30),
        Key::FundingZ(8, 50),
        Key::VwapZ(24, 48),
        Key::Ret(5),
        Key::Close,
        Key::Funding,
        Key::FearGreed,
        Key::Sma(500),
        Key::MacdHist(12, 26, 9),
    ];

    /// How the regimes' volatility is measured.
    const VOLATILITY: VolatilityParams = VolatilityParams {
        vol_window: 24,
        lookback: 100,
        low_quantile: 0.25,
        high_quantile: 0.75,
    };

    /// Hourly bars with a funding event every 20 minutes and Fear & Greed values after a
    /// stretch of `NaN`s.
    fn source(bars: usize) -> (crate::market::Candles, FundingSeries, Vec<f64>) {
        let u = generate(&SyntheticParams {
            bars,
            ..SyntheticParams::default()
        });
        let m = u.markets[0].clone();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut f = FundingSeries::default();
        let t0 = m.candles.ts[0];
        for k in 0..bars as i64 * 3 {
            f.ts.push(t0 + k * HOUR_MS / 3);
            f.rate.push(rng.gen_range(-1e-4..3e-4));
        }
        let fg = (0..bars)
            .map(|t| if t < 40 { f64::NAN } else { (t % 97) as f64 })
            .collect();
        (m.candles, f, fg)
    }

    /// The first `k` bars as a history sees them when the funding of the last bar's second
    /// half arrives late: with the next bar, its funding grows (see the module documentation).
    fn history(src: &(crate::market::Candles, FundingSeries, Vec<f64>), k: usize) -> Market {
        let (c, f, fg) = src;
        let known = c.ts[k - 1] + HOUR_MS / 2;
        let n = f.ts.partition_point(|&t| t < known);
        let funding = FundingSeries {
            ts: f.ts[..n].to_vec(),
            rate: f.rate[..n].to_vec(),
        };
        let mut m = Market::new("BTC", c.slice(0..k), funding);
        m.fear_greed = Some(fg[..k].to_vec());
        m
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn lines_carried_bar_by_bar_are_the_whole_history_s_bits() {
        let src = source(700);
        let mut carry: Option<Carry> = None;
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut k = 1;
        let mut resumed = 0;
        let mut defined = 0;
        while k <= 700 {
            let mut m = history(&src, k);
            let rewritten = k == 450;
            if rewritten {
                // The carried last bar rewritten (another file): every line afresh.
                m.candles.close[k - 2] *= 1.01;
            }
            let m = Arc::new(m);
            let extends = carry.as_ref().is_some_and(|c| c.extends(&m));
            let p = Prepared::resume(Arc::clone(&m), Arc::default(), carry.take());
            if extends {
                resumed += 1;
                assert!(KEYS.iter().all(|&key| p.has(key)), "bar {k}: lines carried");
            }
            // A market without states, the EMA and SMA lines two at a time where they pair.
            let fresh = Prepared::new(Arc::clone(&m));
            fresh.prefetch_pair([ind::Line::Ema(20), ind::Line::Sma(7)]);
            for key in KEYS {
                assert_eq!(
                    bits(&p.get(key)),
                    bits(&fresh.get(key)),
                    "{key:?} after {k} bars"
                );
            }
            let r = p.regimes(&VOLATILITY);
            assert_eq!(r, fresh.regimes(&VOLATILITY), "after {k} bars");
            defined += usize::from(r.volatility[k - 1].is_some());
            let c = p.into_carry().expect("a resumed market keeps states");
            assert_eq!((c.bars(), c.lines.len()), (k, KEYS.len()));
            assert_eq!(c.regimes.len(), 1);
            assert_eq!(c.regimes[0].1.volatility.len(), k);
            carry = Some(c);
            k += match rng.gen_range(0..10) {
                0 => 3,
                _ if k == 300 => 0,
                _ => 1,
            };
            if rewritten {
                carry = None;
                k += 1;
            }
        }
        assert!(resumed > 500, "{resumed} histories resumed");
        assert!(defined > 400, "{defined} bars with a volatility regime");
    }
}
