//! What a portfolio strategy produces: at each rebalance, one signed target weight per coin of a
//! panel (fractions of the account's equity), built from per-coin scores by the shared
//! construction genes. Pure functions of the bars up to the rebalance; the book decides what
//! trading them costs.

use crate::market::{membership::median_sorted, panel::Panel};

/// One rebalance: the grid bar whose close decided it and the signed target weight of every
/// coin of the panel (fractions of equity).
#[derive(Debug, Clone, PartialEq)]
pub struct Rebalance {
    pub t: usize,
    pub weights: Vec<f64>,
    /// The score of every member at `t` (`NaN` for coins that were not members), for the rank
    /// IC; empty when not kept.
    pub scores: Vec<f64>,
}

/// Which sides a portfolio holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Long the top, short the bottom, each side half the gross (dollar-neutral).
    LongShort,
    /// Long the top only.
    LongOnly,
    /// Short the bottom only.
    ShortOnly,
}

/// How many coins a side holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Selection {
    /// This fraction of the ranked members per side (at least one).
    Quantile(f64),
    /// This many coins per side.
    Count(usize),
}

/// How a side's weight is split among its coins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weighting {
    Equal,
    /// In proportion to 1 / volatility.
    InverseVolatility,
    /// In proportion to the score's distance from the members' median score.
    Score,
}

/// The shared construction genes, read from a genome (`seeds/construction.toml`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Construction {
    pub direction: Direction,
    pub selection: Selection,
    pub weighting: Weighting,
    /// Rebalance every this many bars, on bars whose close falls on a multiple of that many
    /// bar lengths since the UTC epoch (every 6 bars of 4h: each day's last bar).
    pub rebalance: usize,
    /// Gross exposure, as a fraction of equity.
    pub gross: f64,
    /// Annualized volatility to scale the book to (ex ante, from the last `vol_lookback` bars
    /// of the chosen weights); 0 does not scale.
    pub vol_target: f64,
    /// Bars of returns behind inverse-volatility weights and the volatility target.
    pub vol_lookback: usize,
}

impl Construction {
    /// Whether grid bar `t` (opening at `ts`, lasting `interval` ms) is a rebalance bar.
    pub fn is_rebalance(&self, ts: i64, interval: i64) -> bool {
        let every = interval * self.rebalance.max(1) as i64;
        (ts + interval).rem_euclid(every) == 0
    }
}

/// Each coin's simple return at every grid bar from the previous grid bar's close (0 where it
/// has no bar at either), from bars up to that bar only.
pub fn grid_returns(panel: &Panel) -> Vec<Vec<f64>> {
    panel
        .coins
        .iter()
        .map(|c| {
            let close = &c.market.candles.close;
            (0..panel.len())
                .map(
                    |t| match (t.checked_sub(1).and_then(|u| c.bar(u)), c.bar(t)) {
                        (Some(a), Some(b)) => close[b] / close[a] - 1.0,
                        _ => 0.0,
                    },
                )
                .collect()
        })
        .collect()
}

/// The standard deviation (ddof 1) of `x`; `NaN` for fewer than two values.
fn std(x: &[f64]) -> f64 {
    let n = x.len();
    if n < 2 {
        return f64::NAN;
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
    var.sqrt()
}

/// The weights of one rebalance at grid bar `t`: `members` (panel coin indices) ranked by
/// `score` (higher is better; `NaN` scores are left out; ties go to the coin first in the
/// panel), the sides chosen and weighted by `c`, scaled to the gross and, with a volatility
/// target, to it. `returns` are [`grid_returns`]. One weight per panel coin; non-members are 0.
pub fn construct(
    c: &Construction,
    members: &[usize],
    score: &[f64],
    returns: &[Vec<f64>],
    t: usize,
    bars_per_year: f64,
) -> Vec<f64> {
    let k = score.len();
    let mut w = vec![0.0; k];
    let mut ranked: Vec<usize> = members
        .iter()
        .copied()
        .filter(|&i| score[i].is_finite())
        .collect();
    ranked.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    let m = ranked.len();
    let sides = match c.direction {
        Direction::LongShort => 2,
        _ => 1,
    };
    if m < sides {
        return w;
    }
    let per_side = match c.selection {
        Selection::Quantile(q) => ((q * m as f64).floor() as usize).max(1),
        Selection::Count(n) => n.max(1),
    }
    .min(m / sides);
    let long = &ranked[..per_side];
    let short = &ranked[m - per_side..];
    let median = {
        // `ranked` is in descending score order: reversed, it is sorted.
        let s: Vec<f64> = ranked.iter().rev().map(|&i| score[i]).collect();
        median_sorted(&s)
    };
    let lookback = c.vol_lookback.max(2);
    let from = (t + 1).saturating_sub(lookback);
    let vol = |i: usize| std(&returns[i][from..=t]);
    let split = |coins: &[usize], budget: f64, sign: f64, w: &mut Vec<f64>| {
        let raw: Vec<f64> = coins
            .iter()
            .map(|&i| match c.weighting {
                Weighting::Equal => 1.0,
                Weighting::InverseVolatility => {
                    let v = vol(i);
                    if v.is_finite() && v > 0.0 {
                        1.0 / v
                    } else {
                        0.0
                    }
                }
                Weighting::Score => (score[i] - median).abs(),
            })
            .collect();
        let total: f64 = raw.iter().sum();
        for (j, &i) in coins.iter().enumerate() {
            w[i] = if total > 0.0 && total.is_finite() {
                sign * budget * raw[j] / total
            } else {
                sign * budget / coins.len() as f64
            };
        }
    };
    match c.direction {
        Direction::LongShort => {
            split(long, c.gross / 2.0, 1.0, &mut w);
            split(short, c.gross / 2.0, -1.0, &mut w);
        }
        Direction::LongOnly => split(long, c.gross, 1.0, &mut w),
        Direction::ShortOnly => split(short, c.gross, -1.0, &mut w),
    }
    if c.vol_target > 0.0 {
        // The chosen weights' own return over the last bars, annualized.
        let held: Vec<usize> = (0..k).filter(|&i| w[i] != 0.0).collect();
        let series: Vec<f64> = (from..=t)
            .map(|u| held.iter().map(|&i| w[i] * returns[i][u]).sum::<f64>())
            .collect();
        let v = std(&series) * bars_per_year.sqrt();
        if v.is_finite() && v > 0.0 {
            let s = c.vol_target / v;
            w.iter_mut().for_each(|x| *x *= s);
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(direction: Direction, selection: Selection, weighting: Weighting) -> Construction {
        Construction {
            direction,
            selection,
            weighting,
            rebalance: 1,
            gross: 1.0,
            vol_target: 0.0,
            vol_lookback: 3,
        }
    }

    #[test]
    fn long_short_quantiles_equal_and_score_weights_by_hand() {
        // Scores of six coins; coin 5 is not a member, coin 4 has no score.
        let score = [0.3, -0.1, 0.5, -0.4, f64::NAN, 9.0];
        let members = [0, 1, 2, 3, 4];
        let r = vec![vec![0.0; 4]; 6];
        // Ranked: 2 (0.5), 0 (0.3), 1 (−0.1), 3 (−0.4); quantile 0.5 → 2 per side.
        let w = construct(
            &c(
                Direction::LongShort,
                Selection::Quantile(0.5),
                Weighting::Equal,
            ),
            &members,
            &score,
            &r,
            3,
            8760.0,
        );
        assert_eq!(w, vec![0.25, -0.25, 0.25, -0.25, 0.0, 0.0]);
        // Score weights: median of (0.5, 0.3, −0.1, −0.4) = 0.1; long distances 0.4 (coin 2)
        // and 0.2 (coin 0) → 0.5·2/3, 0.5·1/3; short 0.2 (coin 1), 0.5 (coin 3) → 0.5·2/7, 0.5·5/7.
        let w = construct(
            &c(Direction::LongShort, Selection::Count(2), Weighting::Score),
            &members,
            &score,
            &r,
            3,
            8760.0,
        );
        let want = [0.5 / 3.0, -1.0 / 7.0, 1.0 / 3.0, -2.5 / 7.0, 0.0, 0.0];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-15, "{w:?}");
        }
        // Long only, one coin (quantile 0.1 of 4 rounds down to 0, at least 1).
        let w = construct(
            &c(
                Direction::LongOnly,
                Selection::Quantile(0.1),
                Weighting::Equal,
            ),
            &members,
            &score,
            &r,
            3,
            8760.0,
        );
        assert_eq!(w, vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        // Short only, count 10 is cut to the four ranked members.
        let w = construct(
            &c(Direction::ShortOnly, Selection::Count(10), Weighting::Equal),
            &members,
            &score,
            &r,
            3,
            8760.0,
        );
        assert_eq!(w, vec![-0.25, -0.25, -0.25, -0.25, 0.0, 0.0]);
        // One member cannot be long-short.
        let w = construct(
            &c(Direction::LongShort, Selection::Count(1), Weighting::Equal),
            &[0],
            &score,
            &r,
            3,
            8760.0,
        );
        assert_eq!(w, vec![0.0; 6]);
    }

    #[test]
    fn inverse_volatility_and_the_volatility_target_by_hand() {
        // Two coins; returns over the last 3 bars: A ±1 % (std of 0.01, −0.01, 0.01 =
        // 0.011547), B ±2 % (0.023094). Inverse-vol long-only on both: weights ∝ 1/σ →
        // 2/3 and 1/3.
        let r = vec![vec![0.01, -0.01, 0.01], vec![0.02, -0.02, 0.02]];
        let mut k = c(
            Direction::LongOnly,
            Selection::Count(2),
            Weighting::InverseVolatility,
        );
        let w = construct(&k, &[0, 1], &[1.0, 0.5], &r, 2, 100.0);
        assert!(
            (w[0] - 2.0 / 3.0).abs() < 1e-12 && (w[1] - 1.0 / 3.0).abs() < 1e-12,
            "{w:?}"
        );
        // Target 10 % a year at 100 bars a year: the book's bar returns are 2/3·0.01 +
        // 1/3·0.02 = ±0.013333, std 0.0153960, ×10 = 0.153960 a year → scale 0.1/0.153960.
        k.vol_target = 0.1;
        let w2 = construct(&k, &[0, 1], &[1.0, 0.5], &r, 2, 100.0);
        let v = (0.04f64 / 3.0) * (4.0f64 / 3.0).sqrt() * 10.0;
        let s = 0.1 / v;
        assert!((w2[0] - 2.0 / 3.0 * s).abs() < 1e-12, "{w2:?}");
        assert!((w2[1] - 1.0 / 3.0 * s).abs() < 1e-12, "{w2:?}");
    }

    #[test]
    fn rebalances_fall_on_utc_boundaries() {
        let h = 3_600_000;
        let k = Construction {
            rebalance: 6,
            ..c(Direction::LongOnly, Selection::Count(1), Weighting::Equal)
        };
        // 4h bars: the one opening at 20:00 closes at midnight.
        let day = 86_400_000;
        assert!(k.is_rebalance(day + 20 * h, 4 * h));
        assert!(!k.is_rebalance(day + 16 * h, 4 * h));
        assert!(!k.is_rebalance(day, 4 * h));
    }
}
