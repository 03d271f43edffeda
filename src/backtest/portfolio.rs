//! The whole-history portfolio backtest: a loop over a [`Panel`]'s grid that feeds the
//! [portfolio book](crate::execution::portfolio) the target weights of each rebalance and every
//! coin's prices and funding. Pure and synchronous, like the single-coin loop.
//!
//! One grid bar, in order:
//!
//! 1. every coin with a bar is marked at its open; in next-open mode the weights of the
//!    previous rebalance are traded at these opens (a coin without a bar now is not traded and
//!    keeps its position);
//! 2. funding: each position pays or receives its own coin's funding of the bar at the open;
//! 3. every coin with a bar is marked at its close; in close mode the weights of a rebalance at
//!    this bar are traded at these closes;
//! 4. a coin whose data ends here while the grid goes on (delisted, or its file ends) is
//!    closed at this close, with costs;
//! 5. when equity is zero or below, everything is closed and trading stops;
//! 6. equity, gross and net exposure and the coins held are recorded.
//!
//! A position still open at the grid's last bar is not closed; it is marked at its last close.

use crate::{
    execution::{
        portfolio::{CoinBook, Limits, PortfolioBook},
        EngineConfig, FillMode,
    },
    market::panel::Panel,
    strategy::portfolio::Rebalance,
};

/// What one portfolio backtest booked.
#[derive(Debug, Clone, PartialEq)]
pub struct PortfolioReport {
    /// Equity after each grid bar.
    pub equity: Vec<f64>,
    /// Gross exposure after each grid bar, as a fraction of equity.
    pub gross: Vec<f64>,
    /// Net exposure after each grid bar, as a fraction of equity.
    pub net: Vec<f64>,
    /// Coins held after each grid bar.
    pub held: Vec<u32>,
    /// Each coin's part at the end: P&L, fees, slippage, funding, traded notional, fills.
    pub coins: Vec<CoinBook>,
    /// Initial cash.
    pub cash: f64,
    /// Rebalances traded.
    pub rebalances: usize,
    /// Coins closed because their data ended before the grid: (coin, grid bar).
    pub delisted: Vec<(usize, usize)>,
    /// Per rebalance fill: its notional as a share of the coin's notional volume on the fill's
    /// bar (`close · volume`), per unit of equity before the rebalance. Times an equity, the
    /// share of the bar's volume the fill would take at that equity (infinite on a bar without
    /// volume).
    pub participation: Vec<f64>,
}

impl PortfolioReport {
    /// The report of grid bars `start..` alone, for a run that held nothing before `start`
    /// (warm-up bars): the per-bar series cut, everything booked kept.
    ///
    /// # Panics
    /// When `start` is past the grid.
    pub fn since(mut self, start: usize) -> Self {
        assert!(start <= self.equity.len(), "start past the grid");
        if start > 0 {
            self.cash = self.equity[start - 1];
        }
        self.equity.drain(..start);
        self.gross.drain(..start);
        self.net.drain(..start);
        self.held.drain(..start);
        self.delisted.retain(|d| d.1 >= start);
        for d in &mut self.delisted {
            d.1 -= start;
        }
        self
    }

    /// Fees and slippage paid, over all coins.
    pub fn costs(&self) -> f64 {
        self.coins.iter().map(|c| c.fees + c.slippage).sum()
    }

    /// Funding received (negative when paid), over all coins.
    pub fn funding(&self) -> f64 {
        self.coins.iter().map(|c| c.funding).sum()
    }

    /// The coins that traded, with their P&L, largest first (ties in panel order).
    pub fn by_pnl(&self) -> Vec<(usize, f64)> {
        let mut rows: Vec<(usize, f64)> = self
            .coins
            .iter()
            .enumerate()
            .filter(|(_, c)| c.fills > 0)
            .map(|(i, c)| (i, c.pnl()))
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        rows
    }

    /// Notional traded, over all coins.
    pub fn traded(&self) -> f64 {
        self.coins.iter().map(|c| c.traded).sum()
    }
}

/// Runs a portfolio over `panel`: `schedule` holds the rebalances in grid order (one weight per
/// coin each); see the module documentation for the order of events.
///
/// # Panics
/// When a rebalance is out of order, past the grid, or does not have one weight per coin.
pub fn run(
    panel: &Panel,
    schedule: &[Rebalance],
    cfg: &EngineConfig,
    limits: &Limits,
) -> PortfolioReport {
    let n = panel.len();
    assert!(
        schedule.windows(2).all(|w| w[0].t < w[1].t),
        "rebalances must be in grid order"
    );
    assert!(
        schedule.iter().all(|r| r.t < n),
        "a rebalance must be on the grid"
    );
    let mut stepper = Stepper::new(panel, cfg);
    let mut next = schedule.iter().peekable();
    for t in 0..n {
        stepper.bar(panel, t, next.next_if(|r| r.t == t), limits);
    }
    stepper.finish()
}

/// The portfolio book driven one grid bar at a time: what [`run`] loops over and what a
/// bar-by-bar driver (paper replay) calls as each bar closes, so both book exactly the same.
#[derive(Debug, Clone)]
pub struct Stepper {
    book: PortfolioBook,
    report: PortfolioReport,
    fill: FillMode,
    /// The weights decided at the previous bar's close, for next-open fills.
    pending: Option<Vec<f64>>,
    prices: Vec<f64>,
    bars: Vec<Option<usize>>,
    /// The coins with a position, in order.
    held: Vec<usize>,
}

impl Stepper {
    /// A flat book of `cfg.cash` over `panel`'s coins.
    pub fn new(panel: &Panel, cfg: &EngineConfig) -> Self {
        let (n, k) = (panel.len(), panel.coins.len());
        Self {
            book: PortfolioBook::new(cfg, k),
            report: PortfolioReport {
                equity: Vec::with_capacity(n),
                gross: Vec::with_capacity(n),
                net: Vec::with_capacity(n),
                held: Vec::with_capacity(n),
                coins: Vec::new(),
                cash: cfg.cash,
                rebalances: 0,
                delisted: Vec::new(),
                participation: Vec::new(),
            },
            fill: cfg.fill,
            pending: None,
            prices: vec![f64::NAN; k],
            bars: vec![None; k],
            held: Vec::with_capacity(k),
        }
    }

    /// Grid bar `t` of `panel` (bars in order from 0), with the rebalance decided at its close,
    /// if any; returns the equity after it. Of the data after `t` only whether a coin's data
    /// ends at `t` is read (a coin delisted there is closed at its last close).
    ///
    /// # Panics
    /// When the rebalance is not at `t` or does not have one weight per coin.
    pub fn bar(
        &mut self,
        panel: &Panel,
        t: usize,
        rebalance: Option<&Rebalance>,
        limits: &Limits,
    ) -> f64 {
        let n = panel.len();
        let Self {
            book,
            report,
            prices,
            bars,
            ..
        } = self;
        if let Some(r) = rebalance {
            assert!(
                r.t == t && r.weights.len() == panel.coins.len(),
                "a rebalance must be at its bar with one weight per coin"
            );
        }
        // Only positions are marked and funded: a coin without one is priced when a rebalance
        // trades at this bar's open (next-open) or close (close mode), the only time its price
        // is read.
        let trade_open = self.pending.is_some();
        let trade_close = rebalance.is_some() && self.fill == FillMode::Close;
        let held = &mut self.held;
        positions(book, held);
        let k = panel.coins.len();
        if trade_open {
            (0..k).for_each(|i| price_at(panel, t, i, false, book, bars, prices));
        } else {
            for &i in held.iter() {
                price_at(panel, t, i, false, book, bars, prices);
            }
        }
        if let Some(w) = self.pending.take() {
            rebalance_at(book, panel, bars, prices, &w, limits, report);
            positions(book, held);
        }
        for &i in held.iter() {
            if let Some(b) = bars[i] {
                book.fund(i, prices[i], panel.coins[i].market.funding_per_bar[b]);
            }
        }
        if trade_close {
            (0..k).for_each(|i| price_at(panel, t, i, true, book, bars, prices));
        } else {
            for &i in held.iter() {
                price_at(panel, t, i, true, book, bars, prices);
            }
        }
        if let Some(r) = rebalance {
            match self.fill {
                FillMode::NextOpen => self.pending = Some(r.weights.clone()),
                FillMode::Close => {
                    rebalance_at(book, panel, bars, prices, &r.weights, limits, report);
                    positions(book, held);
                }
            }
        }
        if t + 1 < n {
            for &i in held.iter() {
                if panel.coins[i].last == t && book.close(i, prices[i]).is_some() {
                    report.delisted.push((i, t));
                }
            }
        }
        book.liquidate_if_ruined();
        let s = book.snapshot();
        report.equity.push(s.equity);
        report.gross.push(s.gross);
        report.net.push(s.net);
        report.held.push(s.held as u32);
        s.equity
    }

    /// What was booked, every bar so far.
    pub fn finish(mut self) -> PortfolioReport {
        self.report.coins = self.book.coins().to_vec();
        self.report
    }
}

/// Coin `i`'s bar at grid bar `t`, its open or close there into `prices` (NaN without a
/// bar), and the book marked at it.
fn price_at(
    panel: &Panel,
    t: usize,
    i: usize,
    at_close: bool,
    book: &mut PortfolioBook,
    bars: &mut [Option<usize>],
    prices: &mut [f64],
) {
    let c = &panel.coins[i];
    bars[i] = c.bar(t);
    prices[i] = match bars[i] {
        Some(b) => {
            let k = &c.market.candles;
            let p = if at_close { k.close[b] } else { k.open[b] };
            book.mark(i, p);
            p
        }
        None => f64::NAN,
    };
}

/// The coins `book` holds a position in, in order, into `held`.
fn positions(book: &PortfolioBook, held: &mut Vec<usize>) {
    held.clear();
    held.extend(
        book.coins()
            .iter()
            .enumerate()
            .filter(|(_, c)| c.qty != 0.0)
            .map(|(i, _)| i),
    );
}

/// One rebalance traded at `prices`, its fills' participation recorded.
fn rebalance_at(
    book: &mut PortfolioBook,
    panel: &Panel,
    bars: &[Option<usize>],
    prices: &[f64],
    weights: &[f64],
    limits: &Limits,
    report: &mut PortfolioReport,
) {
    let equity = book.equity();
    for (i, f) in book.rebalance(prices, weights, limits) {
        let (Some(b), true) = (bars[i], equity > 0.0) else {
            continue;
        };
        let k = &panel.coins[i].market.candles;
        let volume = k.close[b] * k.volume[b];
        report
            .participation
            .push(f.qty * f.price / (equity * volume));
    }
    report.rebalances += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::{Candles, FundingSeries, Market, HOUR_MS};

    /// A coin with bars at `hours` (open, close) and funding events `funding` (hour, rate).
    fn coin(name: &str, hours: &[i64], oc: &[(f64, f64)], funding: &[(i64, f64)]) -> Market {
        let mut c = Candles::default();
        for (&h, &(o, cl)) in hours.iter().zip(oc) {
            c.push(h * HOUR_MS, o, o.max(cl), o.min(cl), cl, 1.0);
        }
        let f = FundingSeries {
            ts: funding.iter().map(|x| x.0 * HOUR_MS).collect(),
            rate: funding.iter().map(|x| x.1).collect(),
        };
        Market::new(name, c, f)
    }

    /// Three coins, ten bars, two rebalances, funding on two coins, one coin delisted mid-way.
    /// No slippage, fee 0.1 %, cash 1,000; every number below is worked by hand.
    #[test]
    fn three_coins_ten_bars_by_hand() {
        let hours: Vec<i64> = (0..10).collect();
        // A: opens 10, 10, 11, 12, 12, 13, 13, 14, 15, 15 (close = next open)
        let a_open = [10.0, 10.0, 11.0, 12.0, 12.0, 13.0, 13.0, 14.0, 15.0, 15.0];
        let b_open = [20.0, 20.0, 19.0, 18.0, 18.0, 17.0, 16.0, 16.0, 15.0, 15.0];
        let c_open = [5.0, 5.0, 5.0, 6.0, 6.0, 6.0];
        let oc = |o: &[f64], last_close: f64| -> Vec<(f64, f64)> {
            (0..o.len())
                .map(|i| (o[i], *o.get(i + 1).unwrap_or(&last_close)))
                .collect()
        };
        let a = coin("A", &hours, &oc(&a_open, 15.0), &[(3, 0.001), (7, 0.001)]);
        let b = coin("B", &hours, &oc(&b_open, 15.0), &[(3, 0.002)]);
        // C ends after hour 5 (delisted), close of its last bar 6.
        let c = coin("C", &hours[..6], &oc(&c_open, 6.0), &[]);
        let panel = Panel::new(vec![a, b, c]);
        let cfg = EngineConfig {
            fee: 0.001,
            slippage: 0.0,
            cash: 1_000.0,
            ..EngineConfig::default()
        };
        // Decided at bar 1's close (traded at bar 2's open): A +0.4, B −0.4, C +0.2.
        // Decided at bar 5's close (traded at bar 6's open): A +0.5, B −0.5, C 0.
        let schedule = vec![
            Rebalance {
                t: 1,
                weights: vec![0.4, -0.4, 0.2],
                scores: Vec::new(),
            },
            Rebalance {
                t: 5,
                weights: vec![0.5, -0.5, 0.0],
                scores: Vec::new(),
            },
        ];
        let r = run(&panel, &schedule, &cfg, &Limits::default());

        // Bar 2 open: equity 1,000. A: 400/1.001/11 coins, B: −400/1.001/19, C: 200/1.001/5.
        let fee = 0.001;
        let qa = 400.0 / 1.001 / 11.0;
        let qb = 400.0 / 1.001 / 19.0;
        let qc = 200.0 / 1.001 / 5.0;
        // Notional of each leg: w·1000/1.001; fee on each.
        let (na, nb, nc) = (400.0 / 1.001, 400.0 / 1.001, 200.0 / 1.001);
        let mut cash = 1000.0 - (na + na * fee) + (nb - nb * fee) - (nc + nc * fee);
        // Bars 0, 1: no position, equity 1,000.
        assert_eq!(r.equity[0], 1000.0);
        assert_eq!(r.equity[1], 1000.0);
        // Bar 2 close: A 12, B 18, C 6 (C's close at bar 2 is its bar 3 open, 6).
        let eq2 = cash + qa * 12.0 - qb * 18.0 + qc * 6.0;
        assert!((r.equity[2] - eq2).abs() < 1e-9, "{} vs {eq2}", r.equity[2]);
        // Bar 3: funding at the open (A 12 × 0.001 paid by the long, B 18 × 0.002 received
        // by the short).
        let fund_a1 = -qa * 12.0 * 0.001;
        let fund_b = qb * 18.0 * 0.002;
        cash += fund_a1 + fund_b;
        let eq3 = cash + qa * 12.0 - qb * 18.0 + qc * 6.0;
        assert!((r.equity[3] - eq3).abs() < 1e-9);
        // Bar 5 is C's last: closed at its close 6 (sell qc at 6 with the fee) since the grid
        // goes on.
        let nc_exit = qc * 6.0;
        cash += nc_exit - nc_exit * fee;
        let eq5 = cash + qa * 13.0 - qb * 16.0;
        assert!((r.equity[5] - eq5).abs() < 1e-9);
        assert_eq!(r.delisted, vec![(2, 5)]);
        // Bar 6 open: equity = cash + qa·13 − qb·16; A to 0.5 of it, B to −0.5 (same sides:
        // resized by the difference).
        let e6 = cash + qa * 13.0 - qb * 16.0;
        let ta = 0.5 * e6 / 1.001 / 13.0;
        let tb = 0.5 * e6 / 1.001 / 16.0;
        let (da, db) = (ta - qa, tb - qb);
        assert!(da > 0.0 && db > 0.0, "both legs grow");
        cash -= da * 13.0 + da * 13.0 * fee; // buy more A
        cash += db * 16.0 - db * 16.0 * fee; // sell more B
                                             // Bar 7: A's second funding, at open 14.
        let fund_a2 = -ta * 14.0 * 0.001;
        cash += fund_a2;
        // Bar 9 (last): A 15, B 15 (closes), still open.
        let eq9 = cash + ta * 15.0 - tb * 15.0;
        assert!((r.equity[9] - eq9).abs() < 1e-9, "{} vs {eq9}", r.equity[9]);
        // Per coin: fees, funding, P&L.
        let fa = na * fee + da * 13.0 * fee;
        let fb = nb * fee + db * 16.0 * fee;
        let fc = nc * fee + nc_exit * fee;
        assert!((r.coins[0].fees - fa).abs() < 1e-12);
        assert!((r.coins[1].fees - fb).abs() < 1e-12);
        assert!((r.coins[2].fees - fc).abs() < 1e-12);
        assert!((r.coins[0].funding - (fund_a1 + fund_a2)).abs() < 1e-12);
        assert!((r.coins[1].funding - fund_b).abs() < 1e-12);
        assert_eq!(r.coins[2].funding, 0.0);
        // C: bought at 5 (notional nc, fee), sold at 6: P&L = qc·(6 − 5) − fees.
        assert!((r.coins[2].pnl() - (qc * 1.0 - fc)).abs() < 1e-9);
        // A: P&L = qa·(15 − 11) + da·(15 − 13) − fees + funding.
        let pa = qa * 4.0 + da * 2.0 - fa + fund_a1 + fund_a2;
        assert!((r.coins[0].pnl() - pa).abs() < 1e-9);
        // The parts add up to the whole.
        let total: f64 = r.coins.iter().map(|c| c.pnl()).sum();
        assert!((total - (r.equity[9] - 1000.0)).abs() < 1e-9);
        assert_eq!(r.held, vec![0, 0, 3, 3, 3, 2, 2, 2, 2, 2]);
        assert_eq!(r.rebalances, 2);
    }

    /// One coin whose weight is the single-coin strategy's side (±1 or 0), rebalanced when the
    /// side changes and with no trade threshold, books what the single-coin engine books, to
    /// the last bit: fills, fees, slippage and funding, in both fill modes.
    #[test]
    fn one_coin_at_plus_or_minus_one_is_the_single_coin_engine_to_the_last_bit() {
        use crate::{
            market::synthetic::{generate, SyntheticParams},
            strategy::Targets,
        };
        let u = generate(&SyntheticParams {
            seed: 7,
            bars: 4000,
            coins: vec!["BTC".into()],
            annual_vol: vec![0.8],
            start_price: vec![30_000.0],
            ..Default::default()
        });
        let m = u.markets[0].clone();
        assert!(m.funding_per_bar.iter().any(|r| *r != 0.0));
        let n = m.candles.len();
        // The side of the 48-bar return, flat within ±1 %.
        let mut side = vec![0.0; n];
        for t in 48..n {
            let r = m.candles.close[t] / m.candles.close[t - 48] - 1.0;
            side[t] = if r > 0.01 {
                1.0
            } else if r < -0.01 {
                -1.0
            } else {
                0.0
            };
        }
        let mut schedule = Vec::new();
        let mut last = 0.0;
        for (t, &s) in side.iter().enumerate() {
            if s != last {
                schedule.push(Rebalance {
                    t,
                    weights: vec![s],
                    scores: Vec::new(),
                });
                last = s;
            }
        }
        assert!(schedule.len() > 50, "{}", schedule.len());
        let mut targets = Targets::flat(n);
        targets.position = side;
        let panel = Panel::new(vec![m.clone()]);
        for fill in [FillMode::NextOpen, FillMode::Close] {
            let cfg = EngineConfig {
                fill,
                ..EngineConfig::default()
            };
            let single = crate::backtest::run(&m.candles, &m.funding_per_bar, &targets, &cfg);
            let book = run(&panel, &schedule, &cfg, &Limits::default());
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&book.equity), bits(&single.equity), "{fill:?}");
            let fees: f64 = single.trades.iter().map(|t| t.fees).sum();
            assert!((book.coins[0].fees - fees).abs() < 1e-9 * fees, "{fill:?}");
            let funding: f64 = single.trades.iter().map(|t| t.funding).sum();
            assert!(
                (book.coins[0].funding - funding).abs() < 1e-9 * funding.abs().max(1.0),
                "{fill:?}"
            );
        }
    }
}
