//! The ten rule-based seeds. Each is a small state machine over cached indicator series: the
//! state after bar `t` is the side wanted (`+1` long, `−1` short, `0` flat), decided from data
//! up to `t`. Undefined indicator values (`NaN`) never change the state.

use super::{Key, Prepared, Seed};
use crate::{
    genome::Genes,
    indicators::{ichimoku_cloud, zscore, Line},
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

/// EMA crossover: `+1` after the fast EMA crosses above the slow one, `−1` after it crosses below.
pub struct EmaCrossover;

impl Seed for EmaCrossover {
    fn name(&self) -> &'static str {
        "ema_crossover"
    }
    fn signals(&self, g: Genes<'_>, d: &Prepared, out: &mut Targets) {
        // Both lines in one pass when neither is kept yet (a fresh market: the runner's bar).
        let [f, s] = d.lines([Line::Ema(g.period("fast")), Line::Ema(g.period("slow"))]);
        run_states(out, |t, st| {
            if t == 0 {
                st
            } else if crossed_above(&f, &s, t) {
                1.0
            } else if crossed_below(&f, &s, t) {
                -1.0
            } else {
                st
            }
        });
    }
}

/// Donchian breakout of the previous `period` bars (current bar excluded) by `threshold`;
/// exits on a break of the `exit_period` channel's opposite side.
pub struct DonchianBreakout;

impl Seed for DonchianBreakout {
    fn name(&self) -> &'static str {
        "donchian_breakout"
    }
    fn signals(&self, g: Genes<'_>, d: &Prepared, out: &mut Targets) {
        let (p, ep) = (g.period("period"), g.period("exit_period"));
        let thr = g.float("threshold");
        let up = d.get(Key::DonchianUpper(p));
        let lo = d.get(Key::DonchianLower(p));
        let exit_up = d.get(Key::DonchianUpper(ep));
        let exit_lo = d.get(Key::DonchianLower(ep));
        let close = &d.market.candles.close;
        run_states(out, |t, st| {
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
        });
    }
}

/// RSI mean reversion: long below `oversold`, short above `overbought`, out across `exit_level`.
pub struct RsiFilter;

impl Seed for RsiFilter {
    fn name(&self) -> &'static str {
        "rsi_filter"
    }
    fn signals(&self, g: Genes<'_>, d: &Prepared, out: &mut Targets) {
        let rsi = d.get(Key::Rsi(g.period("period")));
        let (os, ob, ex) = (
            g.float("oversold"),
            g.float("overbought"),
            g.float("exit_level"),
        );
        run_states(out, |t, st| {
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
        });
    }
}

/// Stochastic: long on a %K cross above %D from below `oversold`, short on a cross below from
/// above `overbought`; a long exits on any cross below, a short on any cross above.
pub struct StochasticOscillator;

impl Seed for StochasticOscillator {
    fn name(&self) -> &'static str {
        "stochastic_oscillator"
    }
    fn signals(&self, g: Genes<'_>, d: &Prepared, out: &mut Targets) {
        let (kp, dp) = (g.period("k_period"), g.period("d_period"));
        let k = d.get(Key::StochK(kp, dp));
        let dl = d.get(Key::StochD(kp, dp));
        let (os, ob) = (g.float("oversold"), g.float("overbought"));
        run_states(out, |t, st| {
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
        });
    }
}

/// Trend filter: long above `SMA·(1+band)`, short below `SMA·(1−band)`, hold in between.
pub struct SmaTrendFilter;

impl Seed for SmaTrendFilter {
    fn name(&self) -> &'static str {
        "sma_trend_filter"
    }
    fn signals(&self, g: Genes<'_>, d: &Prepared, out: &mut Targets) {
        let sma = d.get(Key::Sma(g.period("period")));
        let band = g.float("band");
        let close = &d.market.candles.close;
        run_states(out, |t, st| {
            if close[t] > sma[t] * (1.0 + band) {
                1.0
            } else if close[t] < sma[t] * (1.0 - band) {
                -1.0
            } else {
                st
            }
        });
    }
}

/// Trend entry on a close crossing the trend EMA, with its own ATR stop and take-profit.
pub struct AtrStopLoss;

impl Seed for AtrStopLoss {
    fn name(&self) -> &'static str {
        "atr_stop_loss"
    }
    fn signals(&self, g: Genes<'_>, d: &Prepared, out: &mut Targets) {
        let e = d.get(Key::Ema(g.period("trend_period")));
        let atr = d.get(Key::Atr(g.period("atr_period")));
        let (sm, tm) = (g.float("stop_mult"), g.float("take_mult"));
        let close = &d.market.candles.close;
        run_states(out, |t, st| {
            if t == 0 {
                st
            } else if crossed_above(close, &e, t) {
                1.0
            } else if crossed_below(close, &e, t) {
                -1.0
            } else {
                st
            }
        });
        for t in 0..close.len() {
            let s = out.position[t];
            if s != 0.0 {
                out.stop[t] = close[t] - s * sm * atr[t];
                out.take[t] = close[t] + s * tm * atr[t];
            }
        }
    }
}

/// Ichimoku: tenkan/kijun cross confirmed by the close outside the cloud; out when the close
/// crosses to the far side of the cloud.
pub struct IchimokuCloud;

impl Seed for IchimokuCloud {
    fn name(&self) -> &'static str {
        "ichimoku_cloud"
    }
    fn signals(&self, g: Genes<'_>, d: &Prepared, out: &mut Targets) {
        let (tp, kp, sp) = (g.period("tenkan"), g.period("kijun"), g.period("senkou"));
        let tenkan = d.get(Key::Midpoint(tp));
        let kijun = d.get(Key::Midpoint(kp));
        let (a, b) = ichimoku_cloud(&tenkan, &kijun, &d.get(Key::Midpoint(sp)), kp);
        let close = &d.market.candles.close;
        run_states(out, |t, st| {
            if t == 0 || a[t].is_nan() || b[t].is_nan() {
                return st;
            }
            let (top, bottom) = (a[t].max(b[t]), a[t].min(b[t]));
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
        });
    }
}

/// VWAP reversion: long when the z-score of `close − VWAP` is below `−entry_z`, short above
/// `entry_z`; out once it is back within `exit_z`.
pub struct VwapReversion;

impl Seed for VwapReversion {
    fn name(&self) -> &'static str {
        "vwap_reversion"
    }
    fn signals(&self, g: Genes<'_>, d: &Prepared, out: &mut Targets) {
        let vwap = d.get(Key::Vwap(g.period("window")));
        let close = &d.market.candles.close;
        let dev: Vec<f64> = close.iter().zip(vwap.iter()).map(|(c, v)| c - v).collect();
        let z = zscore(&dev, g.period("z_window"));
        let (entry, exit) = (g.float("entry_z"), g.float("exit_z"));
        run_states(out, |t, st| {
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
        });
    }
}

/// Momentum with volatility targeting: side of the look-back return (beyond `threshold`),
/// fraction `min(1, target_vol / realized_vol)`.
pub struct VolatilityScaling;

impl Seed for VolatilityScaling {
    fn name(&self) -> &'static str {
        "volatility_scaling"
    }
    fn signals(&self, g: Genes<'_>, d: &Prepared, out: &mut Targets) {
        let lb = g.period("lookback");
        let thr = g.float("threshold");
        let target = g.float("target_vol");
        let rv = d.get(Key::RealizedVol(g.period("vol_window")));
        let close = &d.market.candles.close;
        run_states(out, |t, _| {
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
        });
    }
}

/// Funding carry: short when the smoothed funding z-score is above `entry_z` (longs pay) and
/// the close is below the trend EMA; long when below `−entry_z` and above the EMA; out when the
/// z-score is back within `exit_z`.
pub struct FundingRateCarry;

impl Seed for FundingRateCarry {
    fn name(&self) -> &'static str {
        "funding_rate_carry"
    }
    fn signals(&self, g: Genes<'_>, d: &Prepared, out: &mut Targets) {
        let z = zscore(
            &d.get(Key::FundingSma(g.period("smooth"))),
            g.period("z_window"),
        );
        let e = d.get(Key::Ema(g.period("trend_period")));
        let (entry, exit) = (g.float("entry_z"), g.float("exit_z"));
        let close = &d.market.candles.close;
        run_states(out, |t, st| {
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
        });
    }
}
