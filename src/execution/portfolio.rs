//! The portfolio book: one account over many coins — one cash balance, one signed position per
//! coin — trading target weights (signed fractions of equity) with the engine's own rules:
//! fills at a reference price with adverse slippage and the taker fee on the traded notional
//! ([`simulated_fill`]), the one ledger rule ([`book_fill`]) and funding per coin from its own
//! series ([`funding_amount`]). Nothing here is a second copy of fills, fees or funding.
//!
//! A rebalance ([`PortfolioBook::rebalance`]) works in two passes, so that one coin's book is
//! what the single-coin engine books:
//!
//! 1. every coin held whose target is flat or on the other side is closed (a whole market
//!    order at the reference price);
//! 2. equity is marked (cash plus every position at its latest price), and each coin with a
//!    target is traded to `sign(w) · |w|·equity / (1 + fee) / fill` coins — the engine's
//!    all-in entry size — when the trade is at least `min_trade` of equity (a side change or an
//!    entry from flat is always traded).
//!
//! Weights pass through [`Limits::apply`] first: a per-coin cap, then the net and gross caps
//! (no leverage beyond `max_gross`). A coin with no price at a rebalance (not listed yet,
//! delisted, no bar at that time) is not traded and keeps its position.
//!
//! The book never reads a clock, and per coin it keeps the figures reports need: P&L, fees,
//! slippage, funding and traded notional.

use serde::{Deserialize, Serialize};

use super::{
    book_fill, funding_amount, simulated_fill, Costs, EngineConfig, Fill, Order, OrderSide,
};

/// Caps on target weights and the smallest trade (config `[book]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest |weight| of one coin, as a fraction of equity.
    pub max_weight: f64,
    /// Largest gross exposure `Σ|w|` (1 = no leverage).
    pub max_gross: f64,
    /// Largest net exposure `|Σw|`.
    pub max_net: f64,
    /// Smallest resize traded, as a fraction of equity (a side change or an entry from flat is
    /// always traded; 0 trades every difference).
    pub min_trade: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_weight: 1.0,
            max_gross: 1.0,
            max_net: 1.0,
            min_trade: 0.0,
        }
    }
}

impl Limits {
    /// Checks every field is finite and in range; the error names the field.
    ///
    /// # Errors
    /// A message naming the first bad field.
    pub fn validate(&self) -> Result<(), crate::settings::Invalid> {
        use crate::settings::range;
        range("book.max_weight", self.max_weight, 0.0, 10.0)?;
        range("book.max_gross", self.max_gross, 0.0, 10.0)?;
        range("book.max_net", self.max_net, 0.0, 10.0)?;
        range("book.min_trade", self.min_trade, 0.0, 1.0)
    }

    /// The weights the book trades: non-finite weights are flat; each |w| is cut to
    /// `max_weight`; when the net `Σw` is beyond ±`max_net`, the dominant side is scaled down
    /// until the net is `±max_net`; when the gross `Σ|w|` is above `max_gross`, every weight is
    /// scaled by `max_gross / gross`.
    pub fn apply(&self, weights: &[f64]) -> Vec<f64> {
        let mut w: Vec<f64> = weights
            .iter()
            .map(|&x| {
                if x.is_finite() {
                    x.clamp(-self.max_weight, self.max_weight)
                } else {
                    0.0
                }
            })
            .collect();
        let long: f64 = w.iter().filter(|x| **x > 0.0).sum();
        let short: f64 = -w.iter().filter(|x| **x < 0.0).sum::<f64>();
        let net = long - short;
        if net > self.max_net {
            // long·f − short = max_net
            let f = (self.max_net + short) / long;
            w.iter_mut().filter(|x| **x > 0.0).for_each(|x| *x *= f);
        } else if net < -self.max_net {
            let f = (self.max_net + long) / short;
            w.iter_mut().filter(|x| **x < 0.0).for_each(|x| *x *= f);
        }
        let gross: f64 = w.iter().map(|x| x.abs()).sum();
        if gross > self.max_gross {
            let f = self.max_gross / gross;
            w.iter_mut().for_each(|x| *x *= f);
        }
        w
    }
}

/// One coin's part of the book.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CoinBook {
    /// Signed position in coins.
    pub qty: f64,
    /// The latest price it was marked at (0 before its first bar). The portfolio backtest marks
    /// a coin while it holds a position and when a rebalance prices it.
    pub mark: f64,
    /// Cash it has moved: trades (a buy pays notional and fee, a sell receives notional less
    /// fee) and funding.
    pub flow: f64,
    /// Fees paid.
    pub fees: f64,
    /// Slippage paid: `|fill − reference| · qty` over its fills.
    pub slippage: f64,
    /// Funding received (negative when paid).
    pub funding: f64,
    /// Notional traded, at fill prices.
    pub traded: f64,
    /// Fills.
    pub fills: usize,
}

impl CoinBook {
    /// Its P&L so far: the cash it moved plus its position at the mark.
    pub fn pnl(&self) -> f64 {
        self.flow + self.qty * self.mark
    }
}

/// The book after a bar: equity, gross and net exposure as fractions of equity, coins held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub equity: f64,
    pub gross: f64,
    pub net: f64,
    pub held: usize,
}

/// One account over many coins; see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortfolioBook {
    costs: Costs,
    /// Whether funding is charged.
    charge_funding: bool,
    cash: f64,
    coins: Vec<CoinBook>,
    /// Equity reached zero: everything was closed and nothing more is traded.
    ruined: bool,
}

impl PortfolioBook {
    /// An empty book of `coins` coins with the config's cash, costs and funding switch.
    pub fn new(cfg: &EngineConfig, coins: usize) -> Self {
        Self {
            costs: cfg.costs(),
            charge_funding: cfg.funding,
            cash: cfg.cash,
            coins: vec![CoinBook::default(); coins],
            ruined: false,
        }
    }

    /// Cash balance.
    pub fn cash(&self) -> f64 {
        self.cash
    }

    /// Every coin's part, in the order the book was made with.
    pub fn coins(&self) -> &[CoinBook] {
        &self.coins
    }

    /// Whether equity reached zero (everything was closed then).
    pub fn ruined(&self) -> bool {
        self.ruined
    }

    /// Cash plus every position at its mark.
    pub fn equity(&self) -> f64 {
        let mut e = self.cash;
        for c in &self.coins {
            e += c.qty * c.mark;
        }
        e
    }

    /// Gross and net exposure at the marks, as fractions of equity (0 when equity is not
    /// positive).
    pub fn exposure(&self) -> (f64, f64) {
        let s = self.snapshot();
        (s.gross, s.net)
    }

    /// Equity, gross and net exposure and the coins held, in one pass over the coins (what a
    /// backtest records after every bar).
    pub fn snapshot(&self) -> Snapshot {
        let (mut e, mut gross, mut net, mut held) = (self.cash, 0.0, 0.0, 0);
        for c in &self.coins {
            let v = c.qty * c.mark;
            e += v;
            gross += v.abs();
            net += v;
            held += usize::from(c.qty != 0.0);
        }
        let (gross, net) = if e <= 0.0 {
            (0.0, 0.0)
        } else {
            (gross / e, net / e)
        };
        Snapshot {
            equity: e,
            gross,
            net,
            held,
        }
    }

    /// Coins with a position.
    pub fn held(&self) -> usize {
        self.coins.iter().filter(|c| c.qty != 0.0).count()
    }

    /// Marks coin `i` at `price`.
    pub fn mark(&mut self, i: usize, price: f64) {
        self.coins[i].mark = price;
    }

    /// Books the funding of coin `i`'s position at reference price `price` for `rate`.
    pub fn fund(&mut self, i: usize, price: f64, rate: f64) {
        let c = &mut self.coins[i];
        if !self.charge_funding || rate == 0.0 || c.qty == 0.0 {
            return;
        }
        let amount = funding_amount(c.qty, price, rate);
        self.cash += amount;
        c.flow += amount;
        c.funding += amount;
    }

    /// Sends a market order for coin `i` and books its fill.
    pub fn trade(&mut self, i: usize, side: OrderSide, qty: f64, price: f64) -> Fill {
        let fill = simulated_fill(&self.costs, &Order { side, qty, price });
        let c = &mut self.coins[i];
        book_fill(&mut self.cash, &mut c.qty, &fill);
        let mut moved = 0.0;
        book_fill(&mut c.flow, &mut moved, &fill);
        c.fees += fill.fee;
        c.slippage += (fill.price - price).abs() * fill.qty;
        c.traded += fill.qty * fill.price;
        c.fills += 1;
        fill
    }

    /// Closes coin `i`'s position at `price`, if it has one.
    pub fn close(&mut self, i: usize, price: f64) -> Option<Fill> {
        let q = self.coins[i].qty;
        if q == 0.0 {
            return None;
        }
        let side = if q > 0.0 {
            OrderSide::Sell
        } else {
            OrderSide::Buy
        };
        Some(self.trade(i, side, q.abs(), price))
    }

    /// Trades toward `weights` (one per coin, signed fractions of equity, through
    /// `limits`) at reference prices `prices` (`NaN` where a coin cannot trade now); see the
    /// module documentation. The caller marks every coin with a price first. Returns the fills
    /// with their coin.
    ///
    /// # Panics
    /// When `prices` or `weights` do not have one entry per coin.
    pub fn rebalance(
        &mut self,
        prices: &[f64],
        weights: &[f64],
        limits: &Limits,
    ) -> Vec<(usize, Fill)> {
        let n = self.coins.len();
        assert!(
            prices.len() == n && weights.len() == n,
            "one price and weight per coin"
        );
        let mut fills = Vec::new();
        if self.ruined {
            return fills;
        }
        let w = limits.apply(weights);
        // 1. Closes: flat targets and side changes.
        for i in 0..n {
            let (p, q) = (prices[i], self.coins[i].qty);
            if p.is_finite() && q != 0.0 && (w[i] == 0.0 || (w[i] > 0.0) != (q > 0.0)) {
                if let Some(f) = self.close(i, p) {
                    fills.push((i, f));
                }
            }
        }
        // 2. Entries and resizes against the equity after the closes.
        let equity = self.equity();
        if equity <= 0.0 {
            return fills;
        }
        for i in 0..n {
            let (p, q, wi) = (prices[i], self.coins[i].qty, w[i]);
            if !p.is_finite() || wi == 0.0 {
                continue;
            }
            let estimate = wi * equity / (1.0 + self.costs.fee) / p;
            let side = if estimate > q {
                OrderSide::Buy
            } else {
                OrderSide::Sell
            };
            let fill = self.costs.fill_price(side, p);
            let target = wi.signum() * self.costs.entry_size(wi.abs(), equity, fill);
            let delta = target - q;
            if delta * side.sign() <= 0.0 {
                continue;
            }
            if q != 0.0 && delta.abs() * p < limits.min_trade * equity {
                continue;
            }
            let f = self.trade(i, side, delta.abs(), p);
            fills.push((i, f));
        }
        fills
    }

    /// After the close marks: when equity is zero or below, closes every position at its mark
    /// and stops trading (the engine's liquidation). Returns whether it did.
    pub fn liquidate_if_ruined(&mut self) -> bool {
        if self.ruined || self.equity() > 0.0 {
            return false;
        }
        for i in 0..self.coins.len() {
            let p = self.coins[i].mark;
            self.close(i, p);
        }
        self.ruined = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(fee: f64, slippage: f64) -> EngineConfig {
        EngineConfig {
            fee,
            slippage,
            cash: 1_000.0,
            ..EngineConfig::default()
        }
    }

    #[test]
    fn limits_cap_each_weight_then_net_then_gross() {
        let l = Limits {
            max_weight: 0.5,
            max_gross: 1.0,
            max_net: 0.2,
            min_trade: 0.0,
        };
        // Capped to [0.5, 0.5, −0.3]: net 0.7 > 0.2, longs scaled by (0.2 + 0.3) / 1.0 = 0.5
        // → [0.25, 0.25, −0.3], gross 0.8 ≤ 1.
        let w = l.apply(&[0.9, 0.5, -0.3]);
        assert_eq!(w, vec![0.25, 0.25, -0.3]);
        // Net within, gross 1.6 → every weight × 1/1.6.
        let w = l.apply(&[0.5, -0.5, 0.3, -0.3]);
        let want = [0.3125, -0.3125, 0.1875, -0.1875];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-15, "{w:?}");
        }
        // NaN is flat; short-dominant net scaled on the short side: shorts −0.5 −0.5 = −1,
        // long 0.1 → f = (0.2 + 0.1) / 1 = 0.3 → −0.15 each.
        let w = l.apply(&[f64::NAN, -0.5, -0.5, 0.1]);
        assert_eq!(w[0], 0.0);
        assert!(
            (w[1] + 0.15).abs() < 1e-15 && (w[2] + 0.15).abs() < 1e-15,
            "{w:?}"
        );
        assert_eq!(w[3], 0.1);
    }

    #[test]
    fn rebalance_sizes_all_in_net_of_fees_and_books_per_coin() {
        // Fee 0.1 %, no slippage, cash 1,000; prices 10 and 20; weights +0.5 and −0.5.
        let mut b = PortfolioBook::new(&cfg(0.001, 0.0), 2);
        b.mark(0, 10.0);
        b.mark(1, 20.0);
        let fills = b.rebalance(&[10.0, 20.0], &[0.5, -0.5], &Limits::default());
        assert_eq!(fills.len(), 2);
        // 500 / 1.001 / 10 = 49.95004995… coins; 500 / 1.001 / 20 = 24.975024975…
        let q0 = 500.0 / 1.001 / 10.0;
        let q1 = 500.0 / 1.001 / 20.0;
        assert!((b.coins()[0].qty - q0).abs() < 1e-12);
        assert!((b.coins()[1].qty + q1).abs() < 1e-12);
        // Each leg: notional 499.5005 + fee 0.4995005 = 500. Cash: 1000 − 500 + (499.5005 −
        // 0.4995005) = 999.0009990…
        let notional = 500.0 / 1.001;
        let cash = 1000.0 - (notional + notional * 0.001) + (notional - notional * 0.001);
        assert!((b.cash() - cash).abs() < 1e-9, "{}", b.cash());
        assert!((b.coins()[0].fees - notional * 0.001).abs() < 1e-12);
        // Equity at these prices: 1000 − 2 fees.
        assert!((b.equity() - (1000.0 - 2.0 * notional * 0.001)).abs() < 1e-9);
        // Coin 0 doubles, coin 1 halves: P&L +499.5005 − fee and +249.75 − fee.
        b.mark(0, 20.0);
        b.mark(1, 10.0);
        assert!((b.coins()[0].pnl() - (notional - notional * 0.001)).abs() < 1e-9);
        assert!((b.coins()[1].pnl() - (notional / 2.0 - notional * 0.001)).abs() < 1e-9);
        let (gross, net) = b.exposure();
        let e = b.equity();
        assert!((gross - (q0 * 20.0 + q1 * 10.0) / e).abs() < 1e-12);
        assert!((net - (q0 * 20.0 - q1 * 10.0) / e).abs() < 1e-12);
    }

    #[test]
    fn a_small_resize_waits_for_min_trade_but_a_side_change_does_not() {
        let mut b = PortfolioBook::new(&cfg(0.0, 0.0), 1);
        b.mark(0, 100.0);
        let limits = Limits {
            min_trade: 0.05,
            ..Limits::default()
        };
        b.rebalance(&[100.0], &[0.5], &limits);
        assert_eq!(b.coins()[0].qty, 5.0);
        // 0.53 of equity 1,000 is 5.3 coins: a 0.3-coin trade = 30 < 50 → not traded.
        assert!(b.rebalance(&[100.0], &[0.53], &limits).is_empty());
        // 0.6: 1 coin = 100 ≥ 50 → traded.
        assert_eq!(b.rebalance(&[100.0], &[0.6], &limits).len(), 1);
        assert!((b.coins()[0].qty - 6.0).abs() < 1e-12);
        // −0.01: close (6 coins) then open 0.1 coin short, below min_trade but from flat.
        let f = b.rebalance(&[100.0], &[-0.01], &limits);
        assert_eq!(f.len(), 2);
        assert!((b.coins()[0].qty + 0.1).abs() < 1e-12);
        // No price: nothing happens.
        assert!(b.rebalance(&[f64::NAN], &[0.0], &limits).is_empty());
    }

    #[test]
    fn funding_is_paid_by_longs_and_received_by_shorts() {
        let mut b = PortfolioBook::new(&cfg(0.0, 0.0), 2);
        b.mark(0, 10.0);
        b.mark(1, 10.0);
        b.rebalance(&[10.0, 10.0], &[0.5, -0.5], &Limits::default());
        // 50 coins each way at 10; rate 0.001: long pays 0.5, short receives 0.5.
        b.fund(0, 10.0, 0.001);
        b.fund(1, 10.0, 0.001);
        assert!((b.coins()[0].funding + 0.5).abs() < 1e-12);
        assert!((b.coins()[1].funding - 0.5).abs() < 1e-12);
        assert!((b.cash() - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn ruin_closes_everything_and_stops_trading() {
        let mut b = PortfolioBook::new(&cfg(0.0, 0.0), 1);
        b.mark(0, 100.0);
        b.rebalance(&[100.0], &[-1.0], &Limits::default());
        b.mark(0, 250.0);
        assert!(b.liquidate_if_ruined());
        assert_eq!(b.coins()[0].qty, 0.0);
        // Sold 10 at 100 (cash 2,000), bought back at 250: cash −500.
        assert!((b.cash() + 500.0).abs() < 1e-9, "{}", b.cash());
        assert!(b.rebalance(&[100.0], &[1.0], &Limits::default()).is_empty());
    }
}
