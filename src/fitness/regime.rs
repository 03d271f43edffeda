//! A strategy's figures per market regime (validation analytics over the regimes of
//! [`crate::strategy::regime`]): the Sharpe of the bars each regime decided, and the default
//! policy that stays flat where the strategy lost.

use serde::{Deserialize, Serialize};

use crate::strategy::regime::{Action, Policy, Regimes, Sentiment, Volatility};

/// What a strategy did in one regime.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RegimeFigure {
    pub regime: &'static str,
    /// Bars whose return that regime decided.
    pub bars: usize,
    /// Annualized Sharpe (ddof 1) of those returns.
    pub sharpe: f64,
}

/// A [`RegimeFigure`] as written (the registry keeps them): its regime by name.
#[derive(Deserialize)]
struct StoredRegimeFigure {
    regime: String,
    bars: usize,
    #[serde(deserialize_with = "crate::store::real")]
    sharpe: f64,
}

impl<'de> Deserialize<'de> for RegimeFigure {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = StoredRegimeFigure::deserialize(d)?;
        let regime = Volatility::ALL
            .map(Volatility::as_str)
            .into_iter()
            .chain(Sentiment::ALL.map(Sentiment::as_str))
            .find(|n| *n == f.regime)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown regime `{}`", f.regime)))?;
        Ok(Self {
            regime,
            bars: f.bars,
            sharpe: f.sharpe,
        })
    }
}

/// Sharpe (annualized, ddof 1) of the returns of the bars that follow each regime's bars: the
/// return of bar `t + 1` is what the position decided in bar `t`'s regime earned. Volatility
/// regimes then sentiment regimes, those with bars only.
pub fn figures_by_regime(
    regimes: &Regimes,
    returns: &[f64],
    bars_per_year: f64,
) -> Vec<RegimeFigure> {
    pooled_figures(&[(regimes, returns)], bars_per_year)
}

/// [`figures_by_regime`] over several series (the coins of a strategy), each regime's returns
/// pooled across them.
pub fn pooled_figures(parts: &[(&Regimes, &[f64])], bars_per_year: f64) -> Vec<RegimeFigure> {
    let collect = |pick: &dyn Fn(&Regimes, usize) -> bool| -> Vec<f64> {
        let mut r = Vec::new();
        for (regimes, returns) in parts {
            let n = returns.len().min(regimes.volatility.len());
            r.extend((1..n).filter(|&t| pick(regimes, t - 1)).map(|t| returns[t]));
        }
        r
    };
    let mut out = Vec::new();
    let mut push = |regime: &'static str, r: Vec<f64>| {
        if !r.is_empty() {
            out.push(RegimeFigure {
                regime,
                bars: r.len(),
                sharpe: super::sharpe(&r, bars_per_year),
            });
        }
    };
    for v in Volatility::ALL {
        push(v.as_str(), collect(&|g, t| g.volatility[t] == Some(v)));
    }
    for s in Sentiment::ALL {
        push(s.as_str(), collect(&|g, t| g.sentiment[t] == Some(s)));
    }
    out
}

/// The default policy of a strategy from its validation figures per regime: flat in each
/// regime where it lost (Sharpe below 0 over at least `min_bars` bars), trading elsewhere.
pub fn policy_from_figures(figures: &[RegimeFigure], min_bars: usize) -> Policy {
    let mut p = Policy::TRADE;
    for f in figures {
        if f.bars < min_bars || f.sharpe >= 0.0 {
            continue;
        }
        if let Some(v) = Volatility::ALL.iter().find(|v| v.as_str() == f.regime) {
            p.volatility[*v as usize] = Action::Flat;
        }
        if let Some(x) = Sentiment::ALL.iter().find(|x| x.as_str() == f.regime) {
            p.sentiment[*x as usize] = Action::Flat;
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_flattens_losing_regimes() {
        let f = |regime, bars, sharpe| RegimeFigure {
            regime,
            bars,
            sharpe,
        };
        let figures = [
            f("low_volatility", 500, 1.2),
            f("high_volatility", 500, -0.4),
            f("fear", 40, -3.0), // too few bars to judge
            f("extreme_greed", 300, -0.1),
        ];
        let p = policy_from_figures(&figures, 100);
        assert_eq!(p.volatility, [Action::Trade, Action::Trade, Action::Flat]);
        assert_eq!(
            p.sentiment,
            [Action::Trade, Action::Trade, Action::Trade, Action::Flat]
        );
    }

    #[test]
    fn figures_follow_the_deciding_bar() {
        // Bars 0 and 2 are high volatility, 1 and 3 low; returns 0, 0.01, 0.02, 0.03, 0.04.
        // High decides bars 1 and 3 (returns 0.01, 0.03); low decides bars 2 and 4.
        let regimes = Regimes {
            volatility: vec![
                Some(Volatility::High),
                Some(Volatility::Low),
                Some(Volatility::High),
                Some(Volatility::Low),
                None,
            ],
            sentiment: vec![None; 5],
        };
        let f = figures_by_regime(&regimes, &[0.0, 0.01, 0.02, 0.03, 0.04], 1.0);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].regime, "low_volatility");
        assert_eq!(f[0].bars, 2);
        // Low: 0.02, 0.04: mean 0.03, std 0.014142 → 2.1213.
        assert!((f[0].sharpe - 2.121_320).abs() < 1e-5);
        assert_eq!(f[1].regime, "high_volatility");
        assert!((f[1].sharpe - 2.0 / 2f64.sqrt()).abs() < 1e-5);
        // Pooled over two coins: the same series twice gives twice the bars.
        let r: &[f64] = &[0.0, 0.01, 0.02, 0.03, 0.04];
        let p = pooled_figures(&[(&regimes, r), (&regimes, r)], 1.0);
        assert_eq!(p[0].bars, 4);
        // 0.02, 0.04, 0.02, 0.04: mean 0.03, std (ddof 1) 0.011547 → 2.5981.
        assert!((p[0].sharpe - 2.598_076).abs() < 1e-5);
    }
}
