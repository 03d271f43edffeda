//! The ten rule-based seeds. Each is a small state machine over cached indicator series: the
//! state after bar `t` is the side wanted (`+1` long, `−1` short, `0` flat), decided from data
//! up to `t`. Undefined indicator values (`NaN`) never change the state.
//!
//! Each seed writes its machine once, as a `rule`: `step(t, state) -> new state`. Run over
//! every bar it gives the seed's signals; one step from the state after the bar before gives
//! the runner's newest bar ([`Seed::next`]) at a cost that does not grow with the history.

use super::{Key, Prepared, RawBar, Seed};
use crate::{
    genome::Genes,
    indicators::{cloud_at, Line},
    strategy::{crossed_above, crossed_below, Targets},
};

/// Runs a state machine over the bars: `step(t, state) -> new state`, written to `out`.
fn run_states(out: &mut Targets, mut step: impl FnMut(usize, f64) -> f64) {
    let mut state = 0.0;
    for t in 0..out.position.len() {
        state = step(t, state);
        out.position[t] = state;
    }
}

/// A rule seed: its name, its signals (the rule over every bar) and its next bar (one step).
macro_rules! rule_seed {
    ($seed:ty, $name:literal) => {
        impl Seed for $seed {
            fn name(&self) -> &'static str {
                $name
            }
            fn signals(&self, g: Genes<'_>, d: &Prepared, out: &mut Targets) {
                run_states(out, <$seed>::rule(g, d));
            }
            fn next(&self, g: Genes<'_>, d: &Prepared, t: usize, state: f64) -> Option<RawBar> {
                Some(RawBar::side(<$seed>::rule(g, d)(t, state)))
            }
        }
    };
}

/// EMA crossover: `+1` after the fast EMA crosses above the slow one, `−1` after it crosses below.
pub struct EmaCrossover;

rule_seed!(EmaCrossover, "ema_crossover");

impl EmaCrossover {
    fn rule<'a>(g: Genes<'_>, d: &'a Prepared) -> impl FnMut(usize, f64) -> f64 + 'a {
        // Both lines in one pass when neither is kept yet (a fresh market: the runner's bar).
        let [f, s] = d.lines([Line::Ema(g.period("fast")), Line::Ema(g.period("slow"))]);
        move |t, st| {
            if t == 0 {
                st
            } else if crossed_above(&f, &s, t) {
                1.0
            } else if crossed_below(&f, &s, t) {
                -1.0
            } else {
                st
            }
        }
    }
}

/// Donchian breakout of the previous `period` bars (current bar excluded) by `threshold`;
/// exits on a break of the `exit_period` channel's opposite side.
pub struct DonchianBreakout;

rule_seed!(DonchianBreakout, "donchian_breakout");

impl DonchianBreakout {
    fn rule<'a>(g: Genes<'_>, d: &'a Prepared) -> impl FnMut(usize, f64) -> f64 + 'a {
        let (p, ep) = (g.period("period"), g.period("exit_period"));
        let thr = g.float("threshold");
        let up = d.get(Key::DonchianUpper(p));
        let lo = d.get(Key::DonchianLower(p));
        let exit_up = d.get(Key::DonchianUpper(ep));
        let exit_lo = d.get(Key::DonchianLower(ep));
        let close = &d.market.candles.close;
        move |t, st| {
            let c = close[t];
            if st <= 0.0 && c > up[t] * (1.0 + thr) {
                1.0
            } else if st >= 0.0 && c < lo[t] * (1.0 - thr) {
                -1.0
            } else if (st > 0.0 && c < exit_lo[t]) || (st < 0.0 && c > exit_up[t]) {
                0.0
            } else {
                st
            }
        }
    }
}

/// RSI mean reversion: long below `oversold`, short above `overbought`, out across `exit_level`.
pub struct RsiFilter;

rule_seed!(RsiFilter, "rsi_filter");

impl RsiFilter {
    fn rule<'a>(g: Genes<'_>, d: &'a Prepared) -> impl FnMut(usize, f64) -> f64 + 'a {
        let rsi = d.get(Key::Rsi(g.period("period")));
        let (os, ob, ex) = (
            g.float("oversold"),
            g.float("overbought"),
            g.float("exit_level"),
        );
        move |t, st| {
            let r = rsi[t];
            if r < os {
                1.0
            } else if r > ob {
                -1.0
            } else if (st > 0.0 && r > ex) || (st < 0.0 && r < ex) {
                0.0
            } else {
                st
            }
        }
    }
}

/// Stochastic: long on a %K cross above %D from below `oversold`, short on a cross below from
/// above `overbought`; a long exits on any cross below, a short on any cross above.
pub struct StochasticOscillator;

rule_seed!(StochasticOscillator, "stochastic_oscillator");

impl StochasticOscillator {
    fn rule<'a>(g: Genes<'_>, d: &'a Prepared) -> impl FnMut(usize, f64) -> f64 + 'a {
        let (kp, dp) = (g.period("k_period"), g.period("d_period"));
        let k = d.get(Key::StochK(kp, dp));
        let dl = d.get(Key::StochD(kp, dp));
        let (os, ob) = (g.float("oversold"), g.float("overbought"));
        move |t, st| {
            if t == 0 {
                return st;
            }
            let up = crossed_above(&k, &dl, t);
            let down = crossed_below(&k, &dl, t);
            if up && k[t - 1] < os {
                1.0
            } else if down && k[t - 1] > ob {
                -1.0
            } else if (st > 0.0 && down) || (st < 0.0 && up) {
                0.0
            } else {
                st
            }
        }
    }
}

/// Trend filter: long above `SMA·(1+band)`, short below `SMA·(1−band)`, hold in between.
pub struct SmaTrendFilter;

rule_seed!(SmaTrendFilter, "sma_trend_filter");

impl SmaTrendFilter {
    fn rule<'a>(g: Genes<'_>, d: &'a Prepared) -> impl FnMut(usize, f64) -> f64 + 'a {
        let sma = d.get(Key::Sma(g.period("period")));
        let band = g.float("band");
        let close = &d.market.candles.close;
        move |t, st| {
            if close[t] > sma[t] * (1.0 + band) {
                1.0
            } else if close[t] < sma[t] * (1.0 - band) {
                -1.0
            } else {
                st
            }
        }
    }
}

/// Trend entry on a close crossing the trend EMA, with its own ATR stop and take-profit.
pub struct AtrStopLoss;

impl Seed for AtrStopLoss {
    fn name(&self) -> &'static str {
        "atr_stop_loss"
    }
    fn signals(&self, g: Genes<'_>, d: &Prepared, out: &mut Targets) {
        run_states(out, Self::rule(g, d));
        let mut levels = Self::levels(g, d);
        for t in 0..out.len() {
            if let Some((stop, take)) = levels(t, out.position[t]) {
                out.stop[t] = stop;
                out.take[t] = take;
            }
        }
    }
    fn next(&self, g: Genes<'_>, d: &Prepared, t: usize, state: f64) -> Option<RawBar> {
        let side = Self::rule(g, d)(t, state);
        let mut bar = RawBar::side(side);
        if let Some((stop, take)) = Self::levels(g, d)(t, side) {
            (bar.stop, bar.take) = (stop, take);
        }
        Some(bar)
    }
}

impl AtrStopLoss {
    fn rule<'a>(g: Genes<'_>, d: &'a Prepared) -> impl FnMut(usize, f64) -> f64 + 'a {
        let e = d.get(Key::Ema(g.period("trend_period")));
        let close = &d.market.candles.close;
        move |t, st| {
            if t == 0 {
                st
            } else if crossed_above(close, &e, t) {
                1.0
            } else if crossed_below(close, &e, t) {
                -1.0
            } else {
                st
            }
        }
    }

    /// The stop and take-profit of a signal `s` at bar `t` (none when flat).
    fn levels<'a>(
        g: Genes<'_>,
        d: &'a Prepared,
    ) -> impl FnMut(usize, f64) -> Option<(f64, f64)> + 'a {
        let atr = d.get(Key::Atr(g.period("atr_period")));
        let (sm, tm) = (g.float("stop_mult"), g.float("take_mult"));
        let close = &d.market.candles.close;
        move |t, s| (s != 0.0).then(|| (close[t] - s * sm * atr[t], close[t] + s * tm * atr[t]))
    }
}

/// Ichimoku: tenkan/kijun cross confirmed by the close outside the cloud; out when the close
/// crosses to the far side of the cloud.
pub struct IchimokuCloud;

rule_seed!(IchimokuCloud, "ichimoku_cloud");

impl IchimokuCloud {
    fn rule<'a>(g: Genes<'_>, d: &'a Prepared) -> impl FnMut(usize, f64) -> f64 + 'a {
        let (tp, kp, sp) = (g.period("tenkan"), g.period("kijun"), g.period("senkou"));
        let tenkan = d.get(Key::Midpoint(tp));
        let kijun = d.get(Key::Midpoint(kp));
        let senkou = d.get(Key::Midpoint(sp));
        let close = &d.market.candles.close;
        move |t, st| {
            let (a, b) = cloud_at(&tenkan, &kijun, &senkou, kp, t);
            if t == 0 || a.is_nan() || b.is_nan() {
                return st;
            }
            let (top, bottom) = (a.max(b), a.min(b));
            let c = close[t];
            if crossed_above(&tenkan, &kijun, t) && c > top {
                1.0
            } else if crossed_below(&tenkan, &kijun, t) && c < bottom {
                -1.0
            } else if (st > 0.0 && c < bottom) || (st < 0.0 && c > top) {
                0.0
            } else {
                st
            }
        }
    }
}

/// VWAP reversion: long when the z-score of `close − VWAP` is below `−entry_z`, short above
/// `entry_z`; out once it is back within `exit_z`.
pub struct VwapReversion;

rule_seed!(VwapReversion, "vwap_reversion");

impl VwapReversion {
    fn rule<'a>(g: Genes<'_>, d: &'a Prepared) -> impl FnMut(usize, f64) -> f64 + 'a {
        let z = d.get(Key::VwapZ(g.period("window"), g.period("z_window")));
        let (entry, exit) = (g.float("entry_z"), g.float("exit_z"));
        move |t, st| {
            let z = z[t];
            if z < -entry {
                1.0
            } else if z > entry {
                -1.0
            } else if (st > 0.0 && z > -exit) || (st < 0.0 && z < exit) {
                0.0
            } else {
                st
            }
        }
    }
}

/// Momentum with volatility targeting: side of the look-back return (beyond `threshold`),
/// fraction `min(1, target_vol / realized_vol)`.
pub struct VolatilityScaling;

rule_seed!(VolatilityScaling, "volatility_scaling");

impl VolatilityScaling {
    fn rule<'a>(g: Genes<'_>, d: &'a Prepared) -> impl FnMut(usize, f64) -> f64 + 'a {
        let lb = g.period("lookback");
        let thr = g.float("threshold");
        let target = g.float("target_vol");
        let rv = d.get(Key::RealizedVol(g.period("vol_window")));
        let close = &d.market.candles.close;
        move |t, _| {
            if t < lb || rv[t].is_nan() || rv[t] <= 0.0 {
                return 0.0;
            }
            let m = close[t] / close[t - lb] - 1.0;
            let scale = (target / rv[t]).min(1.0);
            if m > thr {
                scale
            } else if m < -thr {
                -scale
            } else {
                0.0
            }
        }
    }
}

/// Funding carry: short when the smoothed funding z-score is above `entry_z` (longs pay) and
/// the close is below the trend EMA; long when below `−entry_z` and above the EMA; out when the
/// z-score is back within `exit_z`.
pub struct FundingRateCarry;

rule_seed!(FundingRateCarry, "funding_rate_carry");

impl FundingRateCarry {
    fn rule<'a>(g: Genes<'_>, d: &'a Prepared) -> impl FnMut(usize, f64) -> f64 + 'a {
        let z = d.get(Key::FundingZ(g.period("smooth"), g.period("z_window")));
        let e = d.get(Key::Ema(g.period("trend_period")));
        let (entry, exit) = (g.float("entry_z"), g.float("exit_z"));
        let close = &d.market.candles.close;
        move |t, st| {
            let (z, c) = (z[t], close[t]);
            if z > entry && c < e[t] {
                -1.0
            } else if z < -entry && c > e[t] {
                1.0
            } else if (st < 0.0 && z < exit) || (st > 0.0 && z > -exit) {
                0.0
            } else {
                st
            }
        }
    }
}
