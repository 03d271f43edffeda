//! Metrics of a backtest — one definition each, stated on the function that computes it.
//!
//! Returns are per-bar equity returns, the first against the initial cash:
//! `r[0] = V[0]/cash − 1`, `r[t] = V[t]/V[t−1] − 1` (0 once equity has reached zero). No metric
//! returns `NaN`: degenerate cases (no trades, flat equity, one bar) have stated values.

pub mod luck;
pub mod pbo;
pub mod portfolio;
pub mod regime;
pub mod trades;
pub mod trials;

use serde::Serialize;

use crate::backtest::BacktestReport;

/// Length of a consistency window: 30 days in milliseconds.
pub const WINDOW_MS: i64 = 30 * 24 * 3_600_000;

/// Per-bar equity returns as defined in the module documentation.
pub fn returns(equity: &[f64], cash: f64) -> Vec<f64> {
    let mut prev = cash;
    equity
        .iter()
        .map(|&v| {
            let r = if prev > 0.0 { v / prev - 1.0 } else { 0.0 };
            prev = v;
            r
        })
        .collect()
}

/// The equal-weight portfolio of several return series: at each timestamp that any series has,
/// the mean of the returns of the series that have it (timestamps ascending).
pub fn mean_by_time(series: &[(Vec<i64>, Vec<f64>)]) -> (Vec<i64>, Vec<f64>) {
    let mut acc: std::collections::BTreeMap<i64, (f64, usize)> = std::collections::BTreeMap::new();
    for (ts, r) in series {
        for (t, x) in ts.iter().zip(r) {
            let e = acc.entry(*t).or_insert((0.0, 0));
            e.0 += x;
            e.1 += 1;
        }
    }
    acc.into_iter().map(|(t, (s, n))| (t, s / n as f64)).unzip()
}

/// Per-bar returns compounded into UTC calendar days: `∏(1 + r) − 1` over the bars whose
/// timestamp falls on each day, days ascending (`(day number since 1970-01-01, return)`).
pub fn daily_returns(ts: &[i64], r: &[f64]) -> Vec<(i64, f64)> {
    const DAY_MS: i64 = 86_400_000;
    let mut out: Vec<(i64, f64)> = Vec::new();
    for (&t, &x) in ts.iter().zip(r) {
        let day = t.div_euclid(DAY_MS);
        match out.last_mut() {
            Some((d, g)) if *d == day => *g = (1.0 + *g) * (1.0 + x) - 1.0,
            _ => out.push((day, x)),
        }
    }
    out
}

/// Pearson correlation of two equally long series; 0 when either has no variance or there are
/// fewer than two values.
pub fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let ma = a[..n].iter().sum::<f64>() / n as f64;
    let mb = b[..n].iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a[..n].iter().zip(&b[..n]) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa > 0.0 && sbb > 0.0 {
        sab / (saa * sbb).sqrt()
    } else {
        0.0
    }
}

/// Sums of a return series for its moments: the count, the mean, and the sums of squared,
/// cubed and fourth-power deviations from the mean (two passes, in order). [`sharpe`],
/// [`psr_zero`] and [`luck::moments`] all read it, so a backtest's metrics take it once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    pub n: usize,
    pub mean: f64,
    pub sum2: f64,
    pub sum3: f64,
    pub sum4: f64,
}

/// The mean of `x` (0 for none), summed in order.
fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        0.0
    } else {
        x.iter().sum::<f64>() / x.len() as f64
    }
}

impl Moments {
    pub fn of(x: &[f64]) -> Self {
        Self::with_downside(x).0
    }

    /// The moments and, from the same pass, `Σ min(x, 0)²` (the Sortino ratio's downside
    /// sum). Each sum is accumulated in order, as separate passes would: the same values.
    fn with_downside(x: &[f64]) -> (Self, f64) {
        let n = x.len();
        let mean = mean(x);
        let (mut sum2, mut sum3, mut sum4) = (0.0, 0.0, 0.0);
        let mut down = -0.0_f64;
        for v in x {
            let d = v - mean;
            sum2 += d.powi(2);
            sum3 += d.powi(3);
            sum4 += d.powi(4);
            down += v.min(0.0).powi(2);
        }
        let m = Self {
            n,
            mean,
            sum2,
            sum3,
            sum4,
        };
        (m, down)
    }

    /// Standard deviation (ddof 1); 0 for fewer than two values.
    pub fn std(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        (self.sum2 / (self.n - 1) as f64).sqrt()
    }

    /// Annualized Sharpe (see [`sharpe`]).
    pub fn sharpe(&self, bars_per_year: f64) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        sharpe_from(self.mean, self.sum2 / (self.n - 1) as f64, bars_per_year)
    }

    /// Skewness and non-excess kurtosis (population moments); `(0, 3)` for fewer than two
    /// values or no variance.
    pub fn shape(&self) -> (f64, f64) {
        let n = self.n as f64;
        let m2 = self.sum2 / n;
        if self.n < 2 || m2 <= 0.0 {
            return (0.0, 3.0);
        }
        (self.sum3 / n / m2.powf(1.5), self.sum4 / n / (m2 * m2))
    }

    /// The probabilistic Sharpe ratio against zero (see [`psr_zero`]).
    pub fn psr_zero(&self) -> f64 {
        if self.n < 2 {
            return 0.5;
        }
        let var = self.sum2 / (self.n - 1) as f64;
        if var <= 0.0 {
            return 0.5;
        }
        let (skew, kurt) = self.shape();
        let p = luck::psr(self.mean / var.sqrt(), self.n, skew, kurt, 0.0);
        if p.is_nan() {
            0.5
        } else {
            p
        }
    }
}

/// The `q` quantile of `x` with linear interpolation between order statistics (numpy's
/// default): position `q·(n − 1)` in the sorted values. `NaN` for no values.
pub fn quantile(x: &[f64], q: f64) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Annualized Sharpe ratio: `mean(r) / std(r, ddof 1) · √bars_per_year`, risk-free 0; 0 when
/// there are fewer than two returns or the standard deviation is 0.
pub fn sharpe(returns: &[f64], bars_per_year: f64) -> f64 {
    // Moments::sharpe reads only the mean and the squared deviations: the same sums, without
    // the higher powers.
    let n = returns.len();
    if n < 2 {
        return 0.0;
    }
    let mean = mean(returns);
    let mut sum2 = 0.0;
    for v in returns {
        sum2 += (v - mean).powi(2);
    }
    sharpe_from(mean, sum2 / (n - 1) as f64, bars_per_year)
}

/// Sharpe from the mean and sample variance of per-bar returns (0 when the variance is not
/// positive); shared by [`sharpe`] and the streaming fast path.
pub fn sharpe_from(mean: f64, var: f64, bars_per_year: f64) -> f64 {
    if var > 0.0 {
        mean / var.sqrt() * bars_per_year.sqrt()
    } else {
        0.0
    }
}

/// The probabilistic Sharpe ratio against zero ([`luck::psr`]) of per-bar returns: the
/// probability that the true per-bar Sharpe is above 0, given the estimate, the number of bars,
/// and the returns' skewness and kurtosis. 0.5 when there is no variance (no trades).
pub fn psr_zero(returns: &[f64]) -> f64 {
    Moments::of(returns).psr_zero()
}

/// Folds of [`fold_sharpe`].
pub const SHARPE_FOLDS: usize = 4;

/// A Sharpe ratio that discounts luck: the training span's per-bar returns cut into `k`
/// contiguous folds of equal length, the annualized [`sharpe`] of each, and their mean less one
/// standard error, `mean − sd(ddof 1) / √k`. A strategy whose result rests on a few trades or one
/// lucky stretch has folds near zero beside one large fold: the spread pulls it down. A strategy
/// that earns in every fold keeps nearly its mean. Fewer than `2·k` returns: the plain
/// [`sharpe`].
pub fn fold_sharpe(returns: &[f64], bars_per_year: f64, k: usize) -> f64 {
    let n = returns.len();
    if k < 2 || n < 2 * k {
        return sharpe(returns, bars_per_year);
    }
    let folds: Vec<f64> = (0..k)
        .map(|i| sharpe(&returns[i * n / k..(i + 1) * n / k], bars_per_year))
        .collect();
    let mean = folds.iter().sum::<f64>() / k as f64;
    let var = folds.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / (k - 1) as f64;
    mean - (var / k as f64).sqrt()
}

/// Annualized Sortino ratio: `mean(r) / sqrt(mean(min(r, 0)²)) · √bars_per_year` (downside
/// deviation against 0 over all bars); 0 when there are no negative returns or no returns.
pub fn sortino(returns: &[f64], bars_per_year: f64) -> f64 {
    let down = returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>();
    sortino_from(mean(returns), down, returns.len(), bars_per_year)
}

/// [`sortino`] from the mean, the downside sum `Σ min(r, 0)²` and the count.
fn sortino_from(mean: f64, down_sum: f64, n: usize, bars_per_year: f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let down = down_sum / n as f64;
    if down <= 0.0 {
        return 0.0;
    }
    mean / down.sqrt() * bars_per_year.sqrt()
}

/// Maximum drawdown: `max_t (1 − V[t] / max_{u≤t} V[u])`, a fraction in `[0, 1]` (more than 1
/// only if equity went below zero); 0 for no bars. The initial cash is not a peak (as vectorbt).
///
/// Between two new peaks `1 − v / peak` is largest at the lowest `v` (a rounded quotient is
/// monotone in its numerator), so one division per peak gives exactly the per-bar maximum;
/// NaN equity is skipped, as `f64::max` would.
pub fn max_drawdown(equity: &[f64]) -> f64 {
    let mut peak = f64::NEG_INFINITY;
    // The lowest equity since the current peak (NaN before the first value).
    let mut low = f64::NAN;
    let mut dd = 0.0_f64;
    for &v in equity {
        if v > peak {
            if peak > 0.0 {
                dd = dd.max(1.0 - low / peak);
            }
            peak = v;
            low = v;
        } else {
            // Branch-free: a NaN `v` leaves `low`. (Before the first peak `low` is NaN and
            // may take a −∞ here; it is reset at that peak before anything reads it.)
            low = low.min(v);
        }
    }
    if peak > 0.0 {
        dd = dd.max(1.0 - low / peak);
    }
    dd
}

/// Consistency: the share of 30-day windows whose equity rose. Window index
/// `w = (ts − ts[0]) div 30 days`; a window's return is its last bar's equity against the
/// previous (non-empty) window's last equity (the initial cash for the first); the trailing
/// partial window counts; windows without bars are skipped. 0 for no bars.
pub fn consistency(equity: &[f64], ts: &[i64], cash: f64) -> f64 {
    let n = equity.len().min(ts.len());
    if n == 0 {
        return 0.0;
    }
    let (mut windows, mut up) = (0usize, 0usize);
    let mut prev_end = cash;
    let window = |t: usize| (ts[t] - ts[0]) / WINDOW_MS;
    let mut this = window(0);
    for t in 0..n {
        let next = if t + 1 < n { window(t + 1) } else { this };
        let last_of_window = t + 1 == n || next != this;
        this = next;
        if last_of_window {
            windows += 1;
            if equity[t] > prev_end {
                up += 1;
            }
            prev_end = equity[t];
        }
    }
    up as f64 / windows as f64
}

/// Turnover: entries per year, `entries / (bars / bars_per_year)` (a position still open at
/// the end counts as an entry); 0 for no bars.
pub fn turnover(entries: usize, bars: usize, bars_per_year: f64) -> f64 {
    if bars == 0 {
        0.0
    } else {
        entries as f64 / (bars as f64 / bars_per_year)
    }
}

/// Buy & hold of a coin over the same bars as a backtest — the market's own move, the yardstick
/// a strategy's figures are read against: bought at the first bar's close and held to the last
/// close, with no costs and no funding.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BuyHold {
    /// `close[n−1] / close[0] − 1`.
    pub total_return: f64,
    pub cagr: f64,
    /// Annualized, of the per-bar close-to-close returns.
    pub sharpe: f64,
    /// Of the closes.
    pub max_drawdown: f64,
}

impl BuyHold {
    /// Buy & hold over `close` (one close per bar).
    pub fn of(close: &[f64], bars_per_year: f64) -> Self {
        let (Some(&first), Some(&last)) = (close.first(), close.last()) else {
            return Self {
                total_return: 0.0,
                cagr: 0.0,
                sharpe: 0.0,
                max_drawdown: 0.0,
            };
        };
        let r = returns(&close[1..], first);
        Self {
            total_return: last / first - 1.0,
            cagr: cagr(last, first, close.len(), bars_per_year),
            sharpe: sharpe(&r, bars_per_year),
            max_drawdown: max_drawdown(close),
        }
    }
}

/// Compound annual growth rate: `(V[n−1]/cash)^(1/years) − 1` with `years = bars /
/// bars_per_year`; −1 when equity ended at or below zero; 0 for no bars.
pub fn cagr(final_equity: f64, cash: f64, bars: usize, bars_per_year: f64) -> f64 {
    if bars == 0 || cash <= 0.0 || bars_per_year <= 0.0 {
        return 0.0;
    }
    if final_equity <= 0.0 {
        return -1.0;
    }
    (final_equity / cash).powf(bars_per_year / bars as f64) - 1.0
}

/// Calmar ratio: `CAGR / max drawdown`; 0 when the drawdown is 0.
pub fn calmar(cagr: f64, max_drawdown: f64) -> f64 {
    if max_drawdown > 0.0 {
        cagr / max_drawdown
    } else {
        0.0
    }
}

/// One calendar month's return (UTC): its last bar's equity against the previous month's last
/// equity (the initial cash for the first month).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MonthlyReturn {
    pub year: i64,
    pub month: u32,
    pub r#return: f64,
}

/// The return of every calendar month (UTC) that has bars, in order; see [`MonthlyReturn`].
pub fn monthly_returns(equity: &[f64], ts: &[i64], cash: f64) -> Vec<MonthlyReturn> {
    let n = equity.len().min(ts.len());
    let mut out = Vec::new();
    let mut prev_end = cash;
    let ym = |t: i64| {
        let (y, m, _, _, _) = crate::market::civil(t);
        (y, m)
    };
    for t in 0..n {
        let (y, m) = ym(ts[t]);
        if t + 1 == n || ym(ts[t + 1]) != (y, m) {
            let r = if prev_end > 0.0 {
                equity[t] / prev_end - 1.0
            } else {
                0.0
            };
            out.push(MonthlyReturn {
                year: y,
                month: m,
                r#return: r,
            });
            prev_end = equity[t];
        }
    }
    out
}

/// How trades ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ExitCounts {
    pub signal: usize,
    pub stop_loss: usize,
    pub take_profit: usize,
    pub liquidation: usize,
    /// Closed by the risk manager or the kill switch (paper and live; never in a backtest).
    #[serde(skip_serializing_if = "is_zero")]
    pub risk: usize,
    /// Still open at the end of the data.
    pub open: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ExitCounts {
    /// `signal 3, stop-loss 1, take-profit 0, liquidation 0, open 1`.
    pub fn describe(&self) -> String {
        format!(
            "signal {}, stop-loss {}, take-profit {}, liquidation {}, {}open {}",
            self.signal,
            self.stop_loss,
            self.take_profit,
            self.liquidation,
            if self.risk > 0 {
                format!("risk {}, ", self.risk)
            } else {
                String::new()
            },
            self.open
        )
    }
}

/// The metrics of one backtest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    /// `V[n−1]/cash − 1`.
    pub total_return: f64,
    /// See [`sharpe`].
    pub sharpe: f64,
    /// See [`fold_sharpe`] ([`SHARPE_FOLDS`] folds).
    pub fold_sharpe: f64,
    /// See [`psr_zero`].
    pub psr: f64,
    /// See [`sortino`].
    pub sortino: f64,
    /// See [`max_drawdown`].
    pub max_drawdown: f64,
    /// See [`consistency`].
    pub consistency: f64,
    /// See [`turnover`].
    pub turnover: f64,
    /// Entries, including a position still open at the end.
    pub trades: usize,
    /// Completed round trips.
    pub closed_trades: usize,
    /// `V[n−1]` (the initial cash for no bars).
    pub final_equity: f64,
    /// Share of closed trades with PnL > 0; 0 without closed trades.
    pub win_rate: f64,
    /// Gross profit / gross loss of closed trades; 0 without closed trades or without profit,
    /// `+inf` (JSON `null`) when some trades won and none lost.
    pub profit_factor: f64,
    /// Share of bars at whose close a position was open.
    pub exposure: f64,
    /// See [`cagr`].
    pub cagr: f64,
    /// See [`calmar`].
    pub calmar: f64,
    /// Mean net PnL of closed trades in quote currency; 0 without closed trades.
    pub avg_trade: f64,
    /// How the trades ended.
    pub exits: ExitCounts,
}

impl Metrics {
    /// The metrics as labelled, formatted rows (percentages as `12.34 %`), in the order a
    /// table shows them; exit reasons are [`ExitCounts::describe`].
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let pct = |v: f64| format!("{:.2} %", v * 100.0);
        vec![
            ("total return", pct(self.total_return)),
            ("CAGR", pct(self.cagr)),
            ("final equity", format!("{:.2}", self.final_equity)),
            ("sharpe", format!("{:.3}", self.sharpe)),
            ("sharpe (folds)", format!("{:.3}", self.fold_sharpe)),
            ("P(sharpe > 0)", format!("{:.3}", self.psr)),
            ("sortino", format!("{:.3}", self.sortino)),
            ("calmar", format!("{:.3}", self.calmar)),
            ("max drawdown", pct(self.max_drawdown)),
            ("consistency", pct(self.consistency)),
            ("turnover", format!("{:.1} entries/yr", self.turnover)),
            ("trades", self.trades.to_string()),
            ("closed trades", self.closed_trades.to_string()),
            ("win rate", pct(self.win_rate)),
            ("profit factor", format!("{:.3}", self.profit_factor)),
            ("average trade", format!("{:.2}", self.avg_trade)),
            ("exposure", pct(self.exposure)),
        ]
    }

    /// Computes every metric of `report` on bars with timestamps `ts`.
    pub fn compute(report: &BacktestReport, ts: &[i64], bars_per_year: f64) -> Metrics {
        let eq = &report.equity;
        let n = eq.len();
        let r = returns(eq, report.cash);
        let (moments, down) = Moments::with_downside(&r);
        let final_equity = eq.last().copied().unwrap_or(report.cash);
        let (mut wins, mut closed, mut profit, mut loss) = (0usize, 0usize, 0.0, 0.0);
        let mut exits = ExitCounts::default();
        for t in &report.trades {
            use crate::execution::ExitReason;
            match t.exit_reason {
                ExitReason::Signal => exits.signal += 1,
                ExitReason::StopLoss => exits.stop_loss += 1,
                ExitReason::TakeProfit => exits.take_profit += 1,
                ExitReason::Liquidation => exits.liquidation += 1,
                ExitReason::Risk => exits.risk += 1,
                // Still open: not a closed trade.
                ExitReason::Open => {
                    exits.open += 1;
                    continue;
                }
            }
            closed += 1;
            if t.pnl > 0.0 {
                wins += 1;
                profit += t.pnl;
            } else {
                loss -= t.pnl;
            }
        }
        let profit_factor = if loss > 0.0 {
            profit / loss
        } else if profit > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        let max_dd = max_drawdown(eq);
        let growth = cagr(final_equity, report.cash, n, bars_per_year);
        Metrics {
            cagr: growth,
            calmar: calmar(growth, max_dd),
            avg_trade: if closed > 0 {
                (profit - loss) / closed as f64
            } else {
                0.0
            },
            exits,
            total_return: final_equity / report.cash - 1.0,
            sharpe: moments.sharpe(bars_per_year),
            fold_sharpe: fold_sharpe(&r, bars_per_year, SHARPE_FOLDS),
            psr: moments.psr_zero(),
            sortino: sortino_from(moments.mean, down, r.len(), bars_per_year),
            max_drawdown: max_dd,
            consistency: consistency(eq, ts, report.cash),
            turnover: turnover(report.trades.len(), n, bars_per_year),
            trades: report.trades.len(),
            closed_trades: closed,
            final_equity,
            win_rate: if closed > 0 {
                wins as f64 / closed as f64
            } else {
                0.0
            },
            profit_factor,
            exposure: if n > 0 {
                report.bars_in_market as f64 / n as f64
            } else {
                0.0
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buy_and_hold_by_hand() {
        // Closes 100, 110, 99, 121: return +21 %, drawdown 10 % (110 → 99); returns +10 %,
        // −10 %, +22.2 % (mean 0.074074, sample std 0.162668); 8760 bars a year.
        let b = BuyHold::of(&[100.0, 110.0, 99.0, 121.0], 8760.0);
        assert!((b.total_return - 0.21).abs() < 1e-12);
        assert!((b.max_drawdown - 0.1).abs() < 1e-12);
        let r: [f64; 3] = [0.1, -0.1, 121.0 / 99.0 - 1.0];
        let m = r.iter().sum::<f64>() / 3.0;
        let sd = (r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert!((m - 0.074_074_074).abs() < 1e-8 && (sd - 0.162_668).abs() < 1e-5);
        assert!((b.sharpe - m / sd * 8760f64.sqrt()).abs() < 1e-9);
        assert_eq!(BuyHold::of(&[], 8760.0).total_return, 0.0);
    }

    #[test]
    fn one_pass_sums_equal_separate_passes_bit_for_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for len in [0, 1, 2, 3, 17, 500] {
            let r: Vec<f64> = (0..len).map(|_| rng.gen_range(-0.03..0.03)).collect();
            // The definitions, a pass each.
            let mean = if len == 0 {
                0.0
            } else {
                r.iter().sum::<f64>() / len as f64
            };
            let sum2: f64 = r.iter().map(|v| (v - mean).powi(2)).sum();
            let down: f64 = r.iter().map(|v| v.min(0.0).powi(2)).sum();
            let (m, d) = Moments::with_downside(&r);
            assert_eq!(m.mean.to_bits(), mean.to_bits(), "{len}");
            assert_eq!(m.sum2.to_bits(), (0.0 + sum2).to_bits(), "{len}");
            assert_eq!(d.to_bits(), down.to_bits(), "{len}");
            let want = if len < 2 {
                0.0
            } else {
                sharpe_from(mean, sum2 / (len - 1) as f64, 8760.0)
            };
            assert_eq!(sharpe(&r, 8760.0).to_bits(), want.to_bits(), "{len}");
            assert_eq!(
                sortino_from(m.mean, d, len, 8760.0).to_bits(),
                sortino(&r, 8760.0).to_bits()
            );
        }
    }

    #[test]
    fn max_drawdown_is_the_per_bar_maximum_bit_for_bit() {
        use rand::{Rng, SeedableRng};
        // The definition, bar by bar.
        let by_bar = |eq: &[f64]| {
            let (mut peak, mut dd) = (f64::NEG_INFINITY, 0.0_f64);
            for &v in eq {
                peak = peak.max(v);
                if peak > 0.0 {
                    dd = dd.max(1.0 - v / peak);
                }
            }
            dd
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for case in 0..200 {
            let mut v = if case % 7 == 0 { -5.0 } else { 1000.0 };
            let eq: Vec<f64> = (0..rng.gen_range(0..400))
                .map(|_| {
                    v *= 1.0 + rng.gen_range(-0.05..0.05);
                    v += rng.gen_range(-3.0..3.0);
                    if rng.gen_bool(0.02) {
                        f64::NAN
                    } else {
                        v
                    }
                })
                .collect();
            assert_eq!(
                max_drawdown(&eq).to_bits(),
                by_bar(&eq).to_bits(),
                "case {case}"
            );
        }
        // 100 → 120 → 90 (25 %) → 130 → 65 (50 %) → 70.
        let eq = [100.0, 120.0, 90.0, 130.0, 65.0, 70.0];
        assert_eq!(max_drawdown(&eq), 0.5);
        assert_eq!(max_drawdown(&[]), 0.0);
        assert_eq!(max_drawdown(&[-1.0, -2.0]), 0.0);
    }

    #[test]
    fn psr_against_zero_by_hand() {
        // No edge: 0.5. Alternating +2 % / −1 %, 200 bars: per-bar Sharpe 0.005 / 0.015038 =
        // 0.33250, skew 0, kurtosis 1 (two points): z = 0.3325·√199 = 4.6905, Φ(z) ≈ 0.9999986.
        let flat: Vec<f64> = (0..100).flat_map(|_| [0.01, -0.01]).collect();
        assert!((psr_zero(&flat) - 0.5).abs() < 1e-12);
        let up: Vec<f64> = (0..100).flat_map(|_| [0.02, -0.01]).collect();
        let p = psr_zero(&up);
        assert!((p - 0.999_998_6).abs() < 5e-7, "{p}");
        assert_eq!(psr_zero(&[0.0; 10]), 0.5);
    }

    #[test]
    fn fold_sharpe_is_the_mean_less_one_standard_error() {
        // Four folds of four returns each; bars_per_year 1 so each fold's Sharpe is
        // mean / sd (ddof 1). Folds: [1,3,1,3] -> 2/1.1547 = 1.7321; [0,2,0,2] -> 1/1.1547 =
        // 0.8660; [2,2,2,4] -> 2.5/1 = 2.5; [-1,1,-1,1] -> 0.
        let r = [
            1.0, 3.0, 1.0, 3.0, 0.0, 2.0, 0.0, 2.0, 2.0, 2.0, 2.0, 4.0, -1.0, 1.0, -1.0, 1.0,
        ];
        let folds = [3.0_f64.sqrt(), 3.0_f64.sqrt() / 2.0, 2.5, 0.0];
        let mean = folds.iter().sum::<f64>() / 4.0;
        let var = folds.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / 3.0;
        let want = mean - (var / 4.0).sqrt();
        assert!((fold_sharpe(&r, 1.0, 4) - want).abs() < 1e-12);
        assert!((want - 0.7343).abs() < 1e-4, "{want}");
        // Equal folds: no penalty, each fold's Sharpe (2 / √2). Too few returns: the plain
        // Sharpe.
        let even = [1.0, 3.0, 1.0, 3.0, 1.0, 3.0, 1.0, 3.0];
        assert!((fold_sharpe(&even, 1.0, 4) - 2.0_f64.sqrt()).abs() < 1e-12);
        assert_eq!(
            fold_sharpe(&[1.0, 2.0, 3.0], 1.0, 4),
            sharpe(&[1.0, 2.0, 3.0], 1.0)
        );
    }
    use crate::execution::{ExitReason, Side, Trade};

    fn trade(pnl: f64, reason: ExitReason) -> Trade {
        Trade {
            side: Side::Long,
            entry_bar: 0,
            entry_ts: 0,
            entry_price: 1.0,
            exit_bar: 1,
            exit_ts: 1,
            exit_price: 1.0,
            size: 1.0,
            fees: 0.0,
            funding: 0.0,
            pnl,
            exit_reason: reason,
        }
    }

    #[test]
    fn hand_computed_series() {
        // cash 100, equity 110, 99, 108.9: returns 0.1, -0.1, 0.1.
        let eq = [110.0, 99.0, 108.9];
        let r = returns(&eq, 100.0);
        for (a, b) in r.iter().zip([0.1, -0.1, 0.1]) {
            assert!((a - b).abs() < 1e-12);
        }
        // mean 1/30, sample var = ((2/30)^2*2 + (4/30)^2)/2 = (8/900+16/900)/2 = 12/900.
        let want = (1.0 / 30.0) / (12.0f64 / 900.0).sqrt() * 4.0f64.sqrt();
        assert!((sharpe(&r, 4.0) - want).abs() < 1e-9);
        // downside: mean(min(r,0)^2) = 0.01/3.
        let want = (1.0 / 30.0) / (0.01f64 / 3.0).sqrt() * 2.0;
        assert!((sortino(&r, 4.0) - want).abs() < 1e-9);
        // peak 110 -> 99: 10 %.
        assert!((max_drawdown(&eq) - 0.1).abs() < 1e-12);
        assert_eq!(max_drawdown(&[90.0, 95.0]), 0.0);
        assert_eq!(max_drawdown(&[]), 0.0);
    }

    #[test]
    fn consistency_by_windows() {
        let d = 24 * 3_600_000;
        // Windows: [0,30d) bars at 0 and 29d; [30d,60d) empty except 31d; [90d..) at 95d.
        let ts = [0, 29 * d, 31 * d, 95 * d];
        let eq = [105.0, 101.0, 99.0, 120.0];
        // window 0 ends at 101 > 100 (up); window 1 ends 99 < 101 (down); window 3 120 > 99 (up).
        assert!((consistency(&eq, &ts, 100.0) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(consistency(&[], &[], 100.0), 0.0);
    }

    #[test]
    fn degenerate_cases_have_no_nan() {
        let flat = BacktestReport {
            equity: vec![100.0; 10],
            trades: vec![],
            bars_in_market: 0,
            cash: 100.0,
        };
        let ts: Vec<i64> = (0..10).map(|i| i * 3_600_000).collect();
        let m = Metrics::compute(&flat, &ts, 8760.0);
        assert_eq!(m.sharpe, 0.0);
        assert_eq!(m.sortino, 0.0);
        assert_eq!(m.max_drawdown, 0.0);
        assert_eq!(m.consistency, 0.0);
        assert_eq!(m.total_return, 0.0);
        assert_eq!((m.trades, m.closed_trades), (0, 0));
        assert_eq!((m.win_rate, m.profit_factor, m.exposure), (0.0, 0.0, 0.0));
        let empty = BacktestReport {
            equity: vec![],
            trades: vec![],
            bars_in_market: 0,
            cash: 100.0,
        };
        let m = Metrics::compute(&empty, &[], 8760.0);
        assert_eq!(m.final_equity, 100.0);
        assert_eq!(m.turnover, 0.0);
        assert_eq!(sharpe(&[0.5], 8760.0), 0.0);
    }

    #[test]
    fn trade_statistics() {
        let one = BacktestReport {
            equity: vec![100.0, 110.0],
            trades: vec![trade(10.0, ExitReason::Signal)],
            bars_in_market: 1,
            cash: 100.0,
        };
        let m = Metrics::compute(&one, &[0, 3_600_000], 8760.0);
        assert_eq!((m.trades, m.closed_trades), (1, 1));
        assert_eq!(m.win_rate, 1.0);
        assert_eq!(m.profit_factor, f64::INFINITY);
        assert_eq!(m.exposure, 0.5);
        assert!((m.turnover - 8760.0 / 2.0).abs() < 1e-9);
        assert!(serde_json::to_string(&m)
            .unwrap()
            .contains("\"profit_factor\":null"));
        let mixed = BacktestReport {
            trades: vec![
                trade(10.0, ExitReason::Signal),
                trade(-4.0, ExitReason::StopLoss),
                trade(6.0, ExitReason::TakeProfit),
                trade(-50.0, ExitReason::Open),
            ],
            ..one
        };
        let m = Metrics::compute(&mixed, &[0, 3_600_000], 8760.0);
        assert_eq!((m.trades, m.closed_trades), (4, 3));
        assert!((m.win_rate - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.profit_factor - 4.0).abs() < 1e-12);
        // Closed PnL 10 − 4 + 6 = 12 over 3 trades.
        assert!((m.avg_trade - 4.0).abs() < 1e-12);
        assert_eq!(
            m.exits,
            ExitCounts {
                signal: 1,
                stop_loss: 1,
                take_profit: 1,
                liquidation: 0,
                risk: 0,
                open: 1
            }
        );
    }

    #[test]
    fn growth_and_calmar() {
        // Doubling over half a year: (2)^2 − 1 = 3 per year.
        assert!((cagr(200.0, 100.0, 4380, 8760.0) - 3.0).abs() < 1e-12);
        // Losing 19 % over two years: 0.81^(1/2) − 1 = −0.1.
        assert!((cagr(81.0, 100.0, 17_520, 8760.0) + 0.1).abs() < 1e-12);
        assert_eq!(cagr(-5.0, 100.0, 10, 8760.0), -1.0);
        assert_eq!(cagr(100.0, 100.0, 0, 8760.0), 0.0);
        assert!((calmar(0.3, 0.15) - 2.0).abs() < 1e-12);
        assert_eq!(calmar(0.3, 0.0), 0.0);
    }

    #[test]
    fn months_are_calendar_months() {
        // 2024-01-31 00:00, 2024-01-31 23:00, 2024-02-01 00:00, 2024-03-15 00:00 (UTC).
        let h = 3_600_000;
        let jan31 = 1_706_659_200_000;
        let ts = [jan31, jan31 + 23 * h, jan31 + 24 * h, 1_710_460_800_000];
        let eq = [101.0, 110.0, 99.0, 108.9];
        let m = monthly_returns(&eq, &ts, 100.0);
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].year, m[0].month), (2024, 1));
        assert!((m[0].r#return - 0.1).abs() < 1e-12); // 110 / 100
        assert!((m[1].r#return + 0.1).abs() < 1e-12); // 99 / 110
        assert_eq!((m[2].year, m[2].month), (2024, 3));
        assert!((m[2].r#return - 0.1).abs() < 1e-12); // 108.9 / 99
        assert!(monthly_returns(&[], &[], 100.0).is_empty());
    }
}
