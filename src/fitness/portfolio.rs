//! Figures of a portfolio backtest: the metrics of its equity curve (the same definitions as a
//! single coin's), the Sharpe ratio's standard error, turnover, cost drag and funding as
//! fractions of average equity per year, exposure and coins held, and the rank information
//! coefficient of the scores against the next period's returns.

use serde::{Deserialize, Serialize};

use super::{
    cagr, consistency, fold_sharpe, max_drawdown, monthly_returns, psr_zero, returns, sharpe,
    MonthlyReturn, SHARPE_FOLDS,
};
use crate::{
    backtest::portfolio::PortfolioReport, market::panel::Panel, strategy::portfolio::Rebalance,
};

/// The standard error of an annualized Sharpe ratio `sharpe` measured on `bars` returns (Lo,
/// 2002, for independent returns): `√((1 + SR²/2) / bars)` with `SR` the per-bar Sharpe,
/// annualized by `√bars_per_year`. Infinite for fewer than two bars.
pub fn sharpe_standard_error(sharpe: f64, bars: usize, bars_per_year: f64) -> f64 {
    if bars < 2 || bars_per_year <= 0.0 {
        return f64::INFINITY;
    }
    let per_bar = sharpe / bars_per_year.sqrt();
    ((1.0 + 0.5 * per_bar * per_bar) / bars as f64).sqrt() * bars_per_year.sqrt()
}

/// What a portfolio backtest amounts to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortfolioFigures {
    pub bars: usize,
    pub years: f64,
    pub final_equity: f64,
    pub total_return: f64,
    pub cagr: f64,
    /// Annualized Sharpe of the per-bar equity returns, and its standard error.
    pub sharpe: f64,
    pub sharpe_se: f64,
    /// Probability that the true Sharpe is above 0 (skew and kurtosis counted).
    pub psr: f64,
    /// The lower bound of the Sharpe over folds, as the single-coin objective (see
    /// [`super::fold_sharpe`]).
    pub fold_sharpe: f64,
    /// Share of 30-day windows with a gain, as the single-coin objective.
    pub consistency: f64,
    pub max_drawdown: f64,
    /// Notional traded per year, as a multiple of average equity.
    pub turnover: f64,
    /// Fees and slippage per year, as a fraction of average equity.
    pub cost_drag: f64,
    /// Funding received per year (negative when paid), as a fraction of average equity.
    pub funding: f64,
    /// Averages over the bars: coins held, gross and net exposure.
    pub avg_held: f64,
    pub avg_gross: f64,
    pub avg_net: f64,
    pub rebalances: usize,
    pub fills: usize,
    /// Coins closed because their data ended (delisted) while the grid went on.
    pub delisted: usize,
    pub monthly: Vec<MonthlyReturn>,
}

impl PortfolioFigures {
    /// The figures of `report` over grid times `ts`.
    pub fn of(report: &PortfolioReport, ts: &[i64], bars_per_year: f64) -> Self {
        let n = report.equity.len();
        let r = returns(&report.equity, report.cash);
        let years = n as f64 / bars_per_year;
        let avg = |total: f64| if n == 0 { 0.0 } else { total / n as f64 };
        let mean_equity = if n == 0 {
            report.cash
        } else {
            avg(report.equity.iter().sum())
        };
        let per_year = |x: f64| {
            if years > 0.0 && mean_equity > 0.0 {
                x / mean_equity / years
            } else {
                0.0
            }
        };
        let final_equity = report.equity.last().copied().unwrap_or(report.cash);
        let s = sharpe(&r, bars_per_year);
        Self {
            bars: n,
            years,
            final_equity,
            total_return: final_equity / report.cash - 1.0,
            cagr: cagr(final_equity, report.cash, n, bars_per_year),
            sharpe: s,
            sharpe_se: sharpe_standard_error(s, n, bars_per_year),
            psr: psr_zero(&r),
            fold_sharpe: fold_sharpe(&r, bars_per_year, SHARPE_FOLDS),
            consistency: consistency(&report.equity, ts, report.cash),
            max_drawdown: max_drawdown(&report.equity),
            turnover: per_year(report.traded()),
            cost_drag: per_year(report.costs()),
            funding: per_year(report.funding()),
            avg_held: avg(report.held.iter().map(|&h| f64::from(h)).sum()),
            avg_gross: avg(report.gross.iter().sum()),
            avg_net: avg(report.net.iter().sum()),
            rebalances: report.rebalances,
            fills: report.coins.iter().map(|c| c.fills).sum(),
            delisted: report.delisted.len(),
            monthly: monthly_returns(&report.equity, ts, report.cash),
        }
    }
}

/// Spearman's rank correlation of `a` and `b` over the pairs where both are finite (average
/// ranks for ties); `None` for fewer than three pairs or no spread.
pub fn rank_correlation(a: &[f64], b: &[f64]) -> Option<f64> {
    let pairs: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| (*x, *y))
        .collect();
    if pairs.len() < 3 {
        return None;
    }
    let ranks = |v: Vec<f64>| -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        let mut k = 0;
        while k < idx.len() {
            let mut e = k;
            while e + 1 < idx.len() && v[idx[e + 1]] == v[idx[k]] {
                e += 1;
            }
            let mean = (k + e) as f64 / 2.0 + 1.0;
            for &i in &idx[k..=e] {
                r[i] = mean;
            }
            k = e + 1;
        }
        r
    };
    let ra = ranks(pairs.iter().map(|p| p.0).collect());
    let rb = ranks(pairs.iter().map(|p| p.1).collect());
    let flat = |r: &[f64]| r.iter().all(|x| *x == r[0]);
    if flat(&ra) || flat(&rb) {
        return None;
    }
    let c = super::correlation(&ra, &rb);
    c.is_finite().then_some(c)
}

/// The rank IC of one calendar month (UTC): the mean over its rebalances of the rank
/// correlation between the members' scores and their returns to the next rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MonthlyIc {
    pub year: i64,
    pub month: u32,
    pub ic: f64,
    pub rebalances: usize,
}

/// The rank IC of each rebalance that kept its scores, in order, with its grid bar: the rank
/// correlation between the members' scores and their returns to the next rebalance. A coin's
/// forward return runs from its latest close at the rebalance to its latest close at the next
/// rebalance (or the grid's end); the periods do not overlap.
pub fn rebalance_ics(panel: &Panel, schedule: &[Rebalance]) -> Vec<(usize, f64)> {
    let mut out = Vec::new();
    for (k, r) in schedule.iter().enumerate() {
        if r.scores.is_empty() {
            continue;
        }
        let end = schedule.get(k + 1).map_or(panel.len() - 1, |x| x.t);
        if end <= r.t {
            continue;
        }
        let forward: Vec<f64> = panel
            .coins
            .iter()
            .map(|c| {
                let close = &c.market.candles.close;
                match (c.bar_at_or_before(r.t), c.bar_at_or_before(end)) {
                    (Some(a), Some(b)) if b > a => close[b] / close[a] - 1.0,
                    _ => f64::NAN,
                }
            })
            .collect();
        if let Some(ic) = rank_correlation(&r.scores, &forward) {
            out.push((r.t, ic));
        }
    }
    out
}

/// The rank IC of [`rebalance_ics`] by calendar month (UTC), and the mean over all rebalances.
pub fn monthly_rank_ic(panel: &Panel, schedule: &[Rebalance]) -> (Vec<MonthlyIc>, Option<f64>) {
    let ics = rebalance_ics(panel, schedule);
    let mut months: Vec<MonthlyIc> = Vec::new();
    for &(t, ic) in &ics {
        let (year, month, ..) = crate::market::civil(panel.ts[t]);
        match months.last_mut() {
            Some(m) if m.year == year && m.month == month => {
                m.ic += (ic - m.ic) / (m.rebalances + 1) as f64;
                m.rebalances += 1;
            }
            _ => months.push(MonthlyIc {
                year,
                month,
                ic,
                rebalances: 1,
            }),
        }
    }
    let mean = RankIc::of(&ics.iter().map(|x| x.1).collect::<Vec<_>>());
    (months, (mean.count > 0).then_some(mean.mean))
}

/// The mean of per-rebalance rank ICs and its t-statistic, `mean / (sd / √n)` (sample sd,
/// ddof 1): how many standard errors the mean IC is from 0, the periods taken as independent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RankIc {
    /// `NaN` without rebalances.
    #[serde(deserialize_with = "crate::store::real")]
    pub mean: f64,
    /// `NaN` for fewer than two rebalances or no spread.
    #[serde(deserialize_with = "crate::store::real")]
    pub t: f64,
    pub count: usize,
}

impl RankIc {
    pub fn of(ics: &[f64]) -> Self {
        let n = ics.len();
        if n == 0 {
            return Self {
                mean: f64::NAN,
                t: f64::NAN,
                count: 0,
            };
        }
        let mean = ics.iter().sum::<f64>() / n as f64;
        let t = if n < 2 {
            f64::NAN
        } else {
            let var = ics.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            if var > 0.0 {
                mean / (var / n as f64).sqrt()
            } else {
                f64::NAN
            }
        };
        Self { mean, t, count: n }
    }
}

/// The equity at which capacity is stated: 1 M USD.
pub const CAPACITY_EQUITY: f64 = 1_000_000.0;

/// What a portfolio member's figures add to the four objectives: the mean rank IC of its
/// scores against the next period's returns with its t-statistic, the coins it held on
/// average, and its capacity — the largest and the median share of a coin's bar volume one
/// rebalance fill would take at [`CAPACITY_EQUITY`] (from [`PortfolioReport::participation`];
/// 0 without fills).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    pub rank_ic: RankIc,
    #[serde(deserialize_with = "crate::store::real")]
    pub avg_held: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub capacity_max: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub capacity_median: f64,
}

impl Diagnostics {
    pub fn of(panel: &Panel, schedule: &[Rebalance], report: &PortfolioReport) -> Self {
        let ics: Vec<f64> = rebalance_ics(panel, schedule)
            .into_iter()
            .map(|x| x.1)
            .collect();
        let n = report.held.len();
        let mut shares: Vec<f64> = report
            .participation
            .iter()
            .map(|p| p * CAPACITY_EQUITY)
            .collect();
        shares.sort_by(f64::total_cmp);
        Self {
            rank_ic: RankIc::of(&ics),
            avg_held: if n == 0 {
                0.0
            } else {
                report.held.iter().map(|&h| f64::from(h)).sum::<f64>() / n as f64
            },
            capacity_max: shares.last().copied().unwrap_or(0.0),
            capacity_median: if shares.is_empty() {
                0.0
            } else {
                crate::market::membership::median_sorted(&shares)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lo_standard_error_by_hand() {
        // Annual Sharpe 1 on 8,760 hourly bars (one year): per-bar SR = 1/√8760; SE =
        // √((1 + 1/(2·8760)) / 8760) · √8760 = √(1 + 1/17520) ≈ 1.0000285.
        let se = sharpe_standard_error(1.0, 8760, 8760.0);
        assert!(
            (se - (1.0f64 + 1.0 / 17_520.0).sqrt()).abs() < 1e-12,
            "{se}"
        );
        // Four years halve it.
        let se4 = sharpe_standard_error(0.0, 4 * 8760, 8760.0);
        assert!((se4 - 0.5).abs() < 1e-12);
        assert!(sharpe_standard_error(1.0, 1, 8760.0).is_infinite());
    }

    #[test]
    fn spearman_by_hand() {
        // Ranks (1,2,3,4) against (2,1,4,3): d² = 1+1+1+1 = 4, ρ = 1 − 6·4/(4·15) = 0.6.
        let r = rank_correlation(&[1.0, 2.0, 3.0, 4.0], &[20.0, 10.0, 40.0, 30.0]).unwrap();
        assert!((r - 0.6).abs() < 1e-12, "{r}");
        // NaN pairs are left out; ties take average ranks: (1, 2.5, 2.5, 4) vs (1,2,3,4):
        // Pearson of the ranks = 0.9486833.
        let r =
            rank_correlation(&[1.0, 2.0, 2.0, 3.0, f64::NAN], &[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert!((r - 0.9486832980505138).abs() < 1e-12, "{r}");
        assert_eq!(rank_correlation(&[1.0, 2.0], &[1.0, 2.0]), None);
    }
}
