//! The market-regime filter: what kind of market each bar is in, from data up to that bar only,
//! and a policy that trades, scales or stays flat per regime.
//!
//! * **Volatility regime.** Realized volatility at bar `t` is the standard deviation (ddof 1) of
//!   the last `vol_window` log returns of the close, ending at `t`. Its percentile rank
//!   `(#below + #equal / 2) / n` among the realized volatilities of the trailing `lookback` bars
//!   (bar `t` included) puts the bar in `low` (rank < `low_quantile`), `high` (rank >
//!   `high_quantile`) or `normal`. Undefined until `vol_window + lookback` bars exist.
//! * **Sentiment.** The Fear & Greed index as [`crate::market::Market::fear_greed`] aligns it: a
//!   day's value is known from the next day's first bar. 0–24 extreme fear, 25–49 fear, 50–74
//!   greed, 75–100 extreme greed. Undefined without the index.
//!
//! A [`Policy`] maps each regime to an [`Action`]; a bar's position is multiplied by the factor
//! of its volatility regime and that of its sentiment (an undefined regime trades). The filter
//! acts on the target after bar `t` closes, with bar `t`'s regime: no look-ahead.

use serde::{Deserialize, Serialize};

/// Volatility regime of a bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Volatility {
    Low,
    Normal,
    High,
}

/// `[regime]`: the market-regime filter (`--regime` on `backtest` and `evolve`); each action is
/// `trade`, `flat` or a scale in (0, 1], read when the config loads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeConfig {
    pub enabled: bool,
    pub vol_window: usize,
    pub lookback: usize,
    pub low_quantile: f64,
    pub high_quantile: f64,
    #[serde(deserialize_with = "crate::settings::named")]
    pub low_volatility: Action,
    #[serde(deserialize_with = "crate::settings::named")]
    pub normal_volatility: Action,
    #[serde(deserialize_with = "crate::settings::named")]
    pub high_volatility: Action,
    #[serde(deserialize_with = "crate::settings::named")]
    pub extreme_fear: Action,
    #[serde(deserialize_with = "crate::settings::named")]
    pub fear: Action,
    #[serde(deserialize_with = "crate::settings::named")]
    pub greed: Action,
    #[serde(deserialize_with = "crate::settings::named")]
    pub extreme_greed: Action,
}

impl RegimeConfig {
    /// How the volatility regime is measured.
    pub fn params(&self) -> VolatilityParams {
        VolatilityParams {
            vol_window: self.vol_window,
            lookback: self.lookback,
            low_quantile: self.low_quantile,
            high_quantile: self.high_quantile,
        }
    }

    /// The policy of the section's actions.
    pub fn policy(&self) -> Policy {
        Policy {
            volatility: [
                self.low_volatility,
                self.normal_volatility,
                self.high_volatility,
            ],
            sentiment: [self.extreme_fear, self.fear, self.greed, self.extreme_greed],
        }
    }

    /// The filter when `enabled` (`--regime`), else `None`.
    pub fn filter(&self) -> Option<RegimeFilter> {
        self.enabled.then(|| RegimeFilter {
            volatility: self.params(),
            policy: self.policy(),
        })
    }

    /// Checks the windows and the quantiles.
    ///
    /// # Errors
    /// [`crate::settings::Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), crate::settings::Invalid> {
        use crate::settings::{count, range};
        count("regime.vol_window", self.vol_window, 2, 100_000, "")?;
        count("regime.lookback", self.lookback, 1, 1_000_000, "")?;
        range("regime.low_quantile", self.low_quantile, 0.0, 1.0)?;
        range(
            "regime.high_quantile",
            self.high_quantile,
            self.low_quantile,
            1.0,
        )
    }
}

/// Sentiment regime of a bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sentiment {
    ExtremeFear,
    Fear,
    Greed,
    ExtremeGreed,
}

impl Volatility {
    pub const ALL: [Volatility; 3] = [Self::Low, Self::Normal, Self::High];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low_volatility",
            Self::Normal => "normal_volatility",
            Self::High => "high_volatility",
        }
    }
}

impl Sentiment {
    pub const ALL: [Sentiment; 4] = [
        Self::ExtremeFear,
        Self::Fear,
        Self::Greed,
        Self::ExtremeGreed,
    ];

    /// The regime of an index value (0–100); `None` for `NaN`.
    pub fn of(value: f64) -> Option<Self> {
        if value.is_nan() {
            None
        } else if value < 25.0 {
            Some(Self::ExtremeFear)
        } else if value < 50.0 {
            Some(Self::Fear)
        } else if value < 75.0 {
            Some(Self::Greed)
        } else {
            Some(Self::ExtremeGreed)
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExtremeFear => "extreme_fear",
            Self::Fear => "fear",
            Self::Greed => "greed",
            Self::ExtremeGreed => "extreme_greed",
        }
    }
}

/// How the volatility regime is measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VolatilityParams {
    /// Log returns in each realized-volatility estimate (≥ 2).
    pub vol_window: usize,
    /// Bars of realized volatility the percentile is taken over (≥ 1).
    pub lookback: usize,
    pub low_quantile: f64,
    pub high_quantile: f64,
}

/// Realized volatility of each bar (see the module documentation); `NaN` for the first
/// `vol_window` bars.
pub fn realized_volatility(close: &[f64], vol_window: usize) -> Vec<f64> {
    let n = close.len();
    let mut out = vec![f64::NAN; n];
    if vol_window < 2 {
        return out;
    }
    let r: Vec<f64> = (1..n).map(|t| (close[t] / close[t - 1]).ln()).collect();
    for (t, o) in out.iter_mut().enumerate().skip(vol_window) {
        *o = realized_volatility_at(|i| r[i], vol_window, t);
    }
    out
}

/// Bar `t`'s realized volatility ([`realized_volatility`]) alone.
pub fn realized_volatility_of(close: &[f64], vol_window: usize, t: usize) -> f64 {
    if vol_window < 2 || t < vol_window {
        return f64::NAN;
    }
    realized_volatility_at(|i| (close[i + 1] / close[i]).ln(), vol_window, t)
}

/// The realized volatility at bar `t ≥ vol_window ≥ 2` from the log returns `r(i)`, the move
/// into bar `i + 1`: `r(t − vol_window) .. r(t − 1)` are the moves into bars
/// `t − vol_window + 1 ..= t`.
#[inline(always)]
fn realized_volatility_at(r: impl Fn(usize) -> f64, vol_window: usize, t: usize) -> f64 {
    let w = t - vol_window..t;
    let m = w.clone().map(&r).sum::<f64>() / vol_window as f64;
    let v = w
        .map(|i| {
            let x = r(i);
            (x - m) * (x - m)
        })
        .sum::<f64>()
        / (vol_window - 1) as f64;
    v.sqrt()
}

/// The volatility regime of each bar; `None` until `vol_window + lookback − 1` bars have passed.
pub fn volatility_regimes(close: &[f64], p: &VolatilityParams) -> Vec<Option<Volatility>> {
    volatility_regimes_ranked(close, p).0
}

/// [`volatility_regimes`] and the ranking's state after the last bar.
fn volatility_regimes_ranked(
    close: &[f64],
    p: &VolatilityParams,
) -> (Vec<Option<Volatility>>, VolatilityRanks) {
    let mut ranks = VolatilityRanks::new(*p);
    let regimes = realized_volatility(close, p.vol_window)
        .into_iter()
        .map(|x| ranks.push(x))
        .collect();
    (regimes, ranks)
}

/// The volatility regimes bar by bar: each bar's realized volatility ranked in the trailing
/// window, a sorted copy of which is kept by insertion and removal.
#[derive(Debug, Clone)]
pub struct VolatilityRanks {
    p: VolatilityParams,
    /// Every bar's realized volatility so far (the window's leaving value is read back).
    rv: Vec<f64>,
    window: Vec<f64>,
}

impl VolatilityRanks {
    pub fn new(p: VolatilityParams) -> Self {
        VolatilityRanks {
            p,
            rv: Vec::new(),
            window: Vec::with_capacity(p.lookback),
        }
    }

    /// The regime of the next bar, whose realized volatility is `x`.
    pub fn push(&mut self, x: f64) -> Option<Volatility> {
        let t = self.rv.len();
        self.rv.push(x);
        let p = &self.p;
        if p.lookback == 0 || x.is_nan() {
            return None;
        }
        let at = self.window.partition_point(|&v| v < x);
        self.window.insert(at, x);
        if t >= p.vol_window + p.lookback {
            let old = self.rv[t - p.lookback];
            if !old.is_nan() {
                let i = self.window.partition_point(|&v| v < old);
                self.window.remove(i);
            }
        }
        if self.window.len() < p.lookback {
            return None;
        }
        let below = self.window.partition_point(|&v| v < x);
        let equal = self.window.partition_point(|&v| v <= x) - below;
        let rank = (below as f64 + equal as f64 / 2.0) / self.window.len() as f64;
        Some(if rank < p.low_quantile {
            Volatility::Low
        } else if rank > p.high_quantile {
            Volatility::High
        } else {
            Volatility::Normal
        })
    }
}

/// A regime filter: how volatility is measured and what to do in each regime.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegimeFilter {
    pub volatility: VolatilityParams,
    pub policy: Policy,
}

/// What a strategy does in a regime.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Action {
    Trade,
    /// Trade at this fraction of the position, in (0, 1).
    Scale(f64),
    Flat,
}

impl Action {
    /// The position factor: 1, the scale, or 0.
    pub fn factor(self) -> f64 {
        match self {
            Self::Trade => 1.0,
            Self::Scale(f) => f,
            Self::Flat => 0.0,
        }
    }
}

impl std::str::FromStr for Action {
    type Err = String;
    /// `trade`, `flat`, or a number in (0, 1] (a scale; 1 is `trade`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "trade" => Ok(Self::Trade),
            "flat" => Ok(Self::Flat),
            other => match other.parse::<f64>() {
                Ok(f) if f > 0.0 && f < 1.0 => Ok(Self::Scale(f)),
                Ok(1.0) => Ok(Self::Trade),
                _ => Err(format!(
                    "`{other}` is not an action: trade, flat, or a scale in (0, 1]"
                )),
            },
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Trade => f.write_str("trade"),
            Self::Flat => f.write_str("flat"),
            Self::Scale(x) => write!(f, "{x}"),
        }
    }
}

/// The action per regime.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Low, normal, high volatility.
    pub volatility: [Action; 3],
    /// Extreme fear, fear, greed, extreme greed.
    pub sentiment: [Action; 4],
}

impl Policy {
    /// Trade in every regime.
    pub const TRADE: Policy = Policy {
        volatility: [Action::Trade; 3],
        sentiment: [Action::Trade; 4],
    };

    /// The position factor of a bar in these regimes (an undefined regime trades).
    pub fn factor(&self, v: Option<Volatility>, s: Option<Sentiment>) -> f64 {
        let fv = v.map_or(1.0, |v| self.volatility[v as usize].factor());
        let fs = s.map_or(1.0, |s| self.sentiment[s as usize].factor());
        fv * fs
    }
}

/// Bar `t`'s sentiment (none without the index).
fn sentiment_at(market: &crate::market::Market, t: usize) -> Option<Sentiment> {
    market.fear_greed.as_ref().and_then(|v| Sentiment::of(v[t]))
}

/// Each bar's regimes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Regimes {
    pub volatility: Vec<Option<Volatility>>,
    pub sentiment: Vec<Option<Sentiment>>,
}

impl Regimes {
    /// The regimes of a market's bars.
    pub fn of(market: &crate::market::Market, p: &VolatilityParams) -> Self {
        Self::ranked(market, p).0
    }

    /// [`Regimes::of`] and the volatility ranking's state after the last bar, to continue
    /// over later bars ([`Regimes::extend`]).
    pub fn ranked(market: &crate::market::Market, p: &VolatilityParams) -> (Self, VolatilityRanks) {
        let (volatility, ranks) = volatility_regimes_ranked(&market.candles.close, p);
        let r = Self {
            volatility,
            sentiment: (0..market.candles.len())
                .map(|t| sentiment_at(market, t))
                .collect(),
        };
        (r, ranks)
    }

    /// The regimes of `market`'s bars after those held: `market` extends the one these were
    /// computed over, and `ranks` is the ranking's state after its last bar.
    pub fn extend(&mut self, market: &crate::market::Market, ranks: &mut VolatilityRanks) {
        let close = &market.candles.close;
        for t in self.volatility.len()..close.len() {
            let x = realized_volatility_of(close, ranks.p.vol_window, t);
            self.volatility.push(ranks.push(x));
            self.sentiment.push(sentiment_at(market, t));
        }
    }

    /// Applies `policy` to `targets` (one entry per bar): each position times its bar's factor.
    ///
    /// # Panics
    /// When the lengths differ.
    pub fn apply(&self, policy: &Policy, targets: &mut super::Targets) {
        assert_eq!(targets.len(), self.volatility.len(), "one regime per bar");
        for (t, p) in targets.position.iter_mut().enumerate() {
            *p = self.apply_at(policy, t, *p);
        }
    }

    /// `policy` applied to a position at bar `t`: times the bar's factor.
    pub fn apply_at(&self, policy: &Policy, t: usize, position: f64) -> f64 {
        let f = policy.factor(self.volatility[t], self.sentiment[t]);
        if f != 1.0 && !position.is_nan() {
            position * f
        } else {
            position
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realized_volatility_by_hand() {
        // Closes 100, 110, 99, 99: log returns ln 1.1 = 0.09531, ln 0.9 = −0.10536, 0.
        // Window 2 at bar 2: std of (0.09531, −0.10536) = |a − b| / √2 = 0.14190.
        let rv = realized_volatility(&[100.0, 110.0, 99.0, 99.0], 2);
        assert!(rv[0].is_nan() && rv[1].is_nan());
        assert!((rv[2] - 0.141_897).abs() < 1e-5, "{}", rv[2]);
        // Bar 3: std of (−0.10536, 0) = 0.07450.
        assert!((rv[3] - 0.074_500).abs() < 1e-5, "{}", rv[3]);
    }

    #[test]
    fn regimes_rank_within_the_trailing_window() {
        // Flat prices (realized volatility exactly 0), then 20 bars of ±2 % moves, then flat.
        let mut close = vec![100.0];
        for i in 0..80 {
            let last: f64 = *close.last().unwrap();
            let loud = (40..60).contains(&i);
            close.push(match (loud, i % 2) {
                (false, _) => last,
                (true, 0) => last * 1.02,
                (true, _) => last * 0.98,
            });
        }
        let p = VolatilityParams {
            vol_window: 4,
            lookback: 20,
            low_quantile: 1.0 / 3.0,
            high_quantile: 2.0 / 3.0,
        };
        let r = volatility_regimes(&close, &p);
        // Undefined until vol_window + lookback − 1 = 23 bars have passed.
        assert!(r[..23].iter().all(Option::is_none));
        assert!(r[23].is_some());
        // In the flat stretch every volatility is 0: all tie at rank 0.5, normal.
        assert_eq!(r[30], Some(Volatility::Normal));
        // Loud bars rank at the top of a window of mostly zeros: high.
        assert_eq!(r[46], Some(Volatility::High));
        // Flat again after a loud window: 0 ranks below the loud values, low.
        assert_eq!(r[70], Some(Volatility::Low));
    }

    #[test]
    fn no_look_ahead() {
        let close: Vec<f64> = (0..300)
            .map(|i| 100.0 * (1.0 + 0.01 * ((i * 7919 % 13) as f64 - 6.0) / 6.0).powi(i % 5))
            .collect();
        let p = VolatilityParams {
            vol_window: 10,
            lookback: 50,
            low_quantile: 0.3,
            high_quantile: 0.7,
        };
        let full = volatility_regimes(&close, &p);
        let mut changed = close.clone();
        for x in &mut changed[200..] {
            *x *= 3.0;
        }
        let cut = volatility_regimes(&changed, &p);
        assert_eq!(full[..200], cut[..200]);
    }

    #[test]
    fn sentiment_bands() {
        assert_eq!(Sentiment::of(0.0), Some(Sentiment::ExtremeFear));
        assert_eq!(Sentiment::of(24.0), Some(Sentiment::ExtremeFear));
        assert_eq!(Sentiment::of(25.0), Some(Sentiment::Fear));
        assert_eq!(Sentiment::of(49.0), Some(Sentiment::Fear));
        assert_eq!(Sentiment::of(50.0), Some(Sentiment::Greed));
        assert_eq!(Sentiment::of(74.0), Some(Sentiment::Greed));
        assert_eq!(Sentiment::of(75.0), Some(Sentiment::ExtremeGreed));
        assert_eq!(Sentiment::of(100.0), Some(Sentiment::ExtremeGreed));
        assert_eq!(Sentiment::of(f64::NAN), None);
    }

    #[test]
    fn policies_scale_and_flatten() {
        assert_eq!("trade".parse::<Action>(), Ok(Action::Trade));
        assert_eq!("flat".parse::<Action>(), Ok(Action::Flat));
        assert_eq!("0.5".parse::<Action>(), Ok(Action::Scale(0.5)));
        assert_eq!("1".parse::<Action>(), Ok(Action::Trade));
        assert!("0".parse::<Action>().is_err());
        assert!("1.5".parse::<Action>().is_err());
        let mut p = Policy::TRADE;
        p.volatility[Volatility::High as usize] = Action::Flat;
        p.sentiment[Sentiment::Greed as usize] = Action::Scale(0.5);
        let regimes = Regimes {
            volatility: vec![
                None,
                Some(Volatility::High),
                Some(Volatility::Low),
                Some(Volatility::Normal),
            ],
            sentiment: vec![Some(Sentiment::Greed), None, Some(Sentiment::Greed), None],
        };
        let mut t = super::super::Targets::flat(4);
        t.position = vec![1.0, -1.0, -0.8, f64::NAN];
        regimes.apply(&p, &mut t);
        assert_eq!(t.position[0], 0.5);
        assert_eq!(t.position[1], 0.0);
        assert_eq!(t.position[2], -0.4);
        assert!(t.position[3].is_nan());
    }
}
