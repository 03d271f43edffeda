//! The portfolio side of risk: how capital is split across strategies.
//!
//! [`allocate`] gives each strategy a share of capital, equal or inversely proportional to the
//! volatility of its returns, then caps every share at `max_weight` (at most [`HARD_CAP`]):
//! what a capped strategy gives up goes to the uncapped ones in proportion to their raw
//! shares, until none is over the cap. When there are too few strategies for the caps to
//! place all the capital (fewer than `1 / max_weight`), the rest stays in cash.

use serde::{Deserialize, Serialize};

use crate::settings::{range, Invalid};

/// `[portfolio]`: how capital is split across strategies.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortfolioConfig {
    #[serde(deserialize_with = "crate::settings::named")]
    pub allocation: Allocation,
    pub max_weight: f64,
}

impl PortfolioConfig {
    /// The allocation method.
    pub fn method(&self) -> Allocation {
        self.allocation
    }

    /// Checks every key of the section.
    ///
    /// # Errors
    /// [`Invalid`] naming the first key refused.
    pub fn validate(&self) -> Result<(), Invalid> {
        range("portfolio.max_weight", self.max_weight, 0.01, HARD_CAP)
    }
}

/// No strategy ever gets more than this share of capital, whatever the config says.
pub const HARD_CAP: f64 = 0.40;

/// How capital is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Allocation {
    Equal,
    InverseVolatility,
}

impl std::str::FromStr for Allocation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "equal" => Ok(Self::Equal),
            "inverse-volatility" => Ok(Self::InverseVolatility),
            other => Err(format!(
                "`{other}` is not an allocation: equal or inverse-volatility"
            )),
        }
    }
}

/// Shares of capital for strategies whose returns have standard deviations `vols` (any
/// common unit), capped at `min(max_weight, HARD_CAP)`; they sum to at most 1. Inverse
/// volatility falls back to equal shares when a volatility is not positive and finite (a
/// strategy that never traded).
pub fn allocate(vols: &[f64], method: Allocation, max_weight: f64) -> Vec<f64> {
    let n = vols.len();
    if n == 0 {
        return Vec::new();
    }
    let cap = max_weight.clamp(0.0, HARD_CAP);
    let usable = vols.iter().all(|v| v.is_finite() && *v > 0.0);
    let raw: Vec<f64> = match method {
        Allocation::InverseVolatility if usable => vols.iter().map(|v| 1.0 / v).collect(),
        _ => vec![1.0; n],
    };
    let mut w = vec![0.0; n];
    let mut capped = vec![false; n];
    let mut left = 1.0;
    loop {
        let free: f64 = (0..n).filter(|&i| !capped[i]).map(|i| raw[i]).sum();
        if free <= 0.0 || left <= 1e-15 {
            break;
        }
        for i in (0..n).filter(|&i| !capped[i]) {
            w[i] = left * raw[i] / free;
        }
        let over: Vec<usize> = (0..n).filter(|&i| !capped[i] && w[i] > cap).collect();
        if over.is_empty() {
            break;
        }
        for i in over {
            w[i] = cap;
            capped[i] = true;
        }
        left = 1.0 - (0..n).filter(|&i| capped[i]).map(|i| w[i]).sum::<f64>();
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn equal_shares_under_the_cap() {
        assert!(close(
            &allocate(&[1.0; 5], Allocation::Equal, 0.25),
            &[0.2; 5]
        ));
        // Two strategies at 25 % each: half the capital stays in cash.
        assert!(close(
            &allocate(&[1.0, 9.0], Allocation::Equal, 0.25),
            &[0.25, 0.25]
        ));
        // The config cannot lift a share above the hard cap.
        assert!(close(
            &allocate(&[1.0, 1.0], Allocation::Equal, 0.9),
            &[0.4, 0.4]
        ));
        assert!(allocate(&[], Allocation::Equal, 0.25).is_empty());
    }

    #[test]
    fn inverse_volatility_by_hand() {
        // Vols 1, 2, 4, 4, 4: raw 1, .5, .25, .25, .25 (sum 2.25) → .444, .222, .111 ×3.
        // Capped at .25, the first gives up .194 to the others in proportion (.5 : .25 ×3):
        // .25, .3, .15 ×3; the second is now over and gives .05 to the last three:
        // .25, .25, .1667 ×3.
        let w = allocate(
            &[1.0, 2.0, 4.0, 4.0, 4.0],
            Allocation::InverseVolatility,
            0.25,
        );
        let third = 0.5 / 3.0;
        assert!(close(&w, &[0.25, 0.25, third, third, third]), "{w:?}");
        // Vols 1 and 3: raw .75, .25; the first is capped at .4 and gives .35 to the second,
        // which is then capped too: .4, .4, and .2 in cash.
        let w = allocate(&[1.0, 3.0], Allocation::InverseVolatility, 0.4);
        assert!(close(&w, &[0.4, 0.4]), "{w:?}");
        let w = allocate(
            &[1.0, 3.0, 3.0, 3.0, 3.0, 3.0],
            Allocation::InverseVolatility,
            0.4,
        );
        // raw 1, 1/3 ×5 (sum 8/3): .375, .125 ×5, all under .4.
        assert!(
            close(&w, &[0.375, 0.125, 0.125, 0.125, 0.125, 0.125]),
            "{w:?}"
        );
        // A strategy with no volatility makes the split equal.
        let w = allocate(&[0.0, 1.0, 2.0, 4.0], Allocation::InverseVolatility, 0.25);
        assert!(close(&w, &[0.25; 4]), "{w:?}");
    }

    #[test]
    fn names_parse() {
        assert_eq!("equal".parse(), Ok(Allocation::Equal));
        assert_eq!(
            "inverse-volatility".parse(),
            Ok(Allocation::InverseVolatility)
        );
        assert!("vol".parse::<Allocation>().is_err());
    }
}
