//! EMA crossover: long on a cross of the fast EMA above the slow EMA, out (or short) on a cross
//! below, with an optional fixed stop `close ∓ mult·ATR(period)` set at the entry bar.
//!
//! Signals are vectorbt's `crossed_above`/`crossed_below` (see [`crate::backtest::fast`]); the
//! position is held from one cross to the next, so nothing is entered before the first cross.

use crate::{
    backtest::{
        fast::{crossed_above, crossed_below},
        Targets,
    },
    indicators::{atr, ema},
    market::Candles,
};

/// Parameters of the crossover.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmaCrossover {
    pub fast: usize,
    pub slow: usize,
    /// Go flat instead of short on a cross below.
    pub long_only: bool,
    /// Fixed stop at entry: `(atr multiple, atr period)`.
    pub atr_stop: Option<(f64, usize)>,
}

impl EmaCrossover {
    /// Per-bar targets: fraction 1 long after a cross above; after a cross below 0 (long only)
    /// or −1 (short); stop levels on every bar where the ATR is defined.
    pub fn targets(&self, c: &Candles) -> Targets {
        let n = c.len();
        let f = ema(&c.close, self.fast);
        let s = ema(&c.close, self.slow);
        let mut tg = Targets::flat(n);
        let down = if self.long_only { 0.0 } else { -1.0 };
        let mut state = 0.0;
        for t in 1..n {
            if crossed_above(&f, &s, t) {
                state = 1.0;
            } else if crossed_below(&f, &s, t) {
                state = down;
            }
            tg.position[t] = state;
        }
        if let Some((mult, period)) = self.atr_stop {
            let a = atr(&c.high, &c.low, &c.close, period);
            for t in 0..n {
                // Long stop below, short stop above; NaN while the ATR is undefined.
                tg.stop[t] = c.close[t] - tg.position[t].signum() * mult * a[t];
                if tg.position[t] == 0.0 {
                    tg.stop[t] = f64::NAN;
                }
            }
        }
        tg
    }
}
