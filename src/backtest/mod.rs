//! The simulator: turns per-bar target positions into fills, fees, funding, stop exits, an
//! equity curve and a trade list.
//!
//! Pure and synchronous: `run(candles, funding, targets, config) -> BacktestReport`, no clock, no
//! I/O. Semantics (the design contract):
//!
//! * **Targets.** `targets.position[t]` is the signed fraction of equity wanted after bar `t`
//!   closes (`> 0` long, `< 0` short, `0`/`NaN` flat). The position follows the target's *side*:
//!   a change of side closes the position and opens the new one; a different fraction on the
//!   same side does not resize an open position (size is set at entry). `stop[t]`/`take[t]` are
//!   absolute price levels (`NaN` for none) attached to an entry signalled at bar `t` and fixed
//!   for the life of that position.
//! * **Fills.** [`FillMode::NextOpen`] (default): the order from bar `t` fills at bar `t+1`'s
//!   open. [`FillMode::Close`]: at bar `t`'s close (the vectorbt-compatible mode). Slippage is
//!   adverse: buys at `price·(1+s)`, sells at `price·(1−s)`. Every fill pays the taker fee on its
//!   notional. Entries size all-in net of fees: `size = (fraction·equity/(1+fee)) / fill`.
//! * **Stops.** Next-open mode checks stop-loss and take-profit inside each bar with its high and
//!   low: a bar that touches both counts as the stop; a gap through a level fills at the open.
//!   Close mode checks them on the close (`close < stop` for a long, `close > stop` for a short;
//!   take-profit `close > take` / `close < take`), from the bar after entry. After a stop or
//!   take-profit exit the same side is not re-entered until the target leaves that side.
//! * **Funding.** The position held at a bar's open time (after any fill at that open) pays
//!   `size · open · rate` for the funding events inside the bar (a long pays a positive rate,
//!   a short receives it).
//! * **Equity** after each bar: `cash + size·close`. If equity falls to zero or below, the
//!   position is closed at that close (a liquidation) and no further trades are made.
//! * A position still open at the last bar is not closed; it is reported with exit reason
//!   `open`, marked at the last close.

pub mod fast;

use serde::{Deserialize, Serialize};

use crate::market::Candles;

/// When orders fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FillMode {
    /// At the next bar's open (default; no look-ahead by construction).
    #[default]
    NextOpen,
    /// At the signal bar's close (vectorbt-compatible; stops checked on the close).
    Close,
}

impl std::str::FromStr for FillMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "next-open" => Ok(Self::NextOpen),
            "close" => Ok(Self::Close),
            other => Err(format!(
                "unknown fill mode `{other}` (expected next-open or close)"
            )),
        }
    }
}

/// Costs and execution settings of one backtest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BacktestConfig {
    pub fill: FillMode,
    /// Taker fee as a fraction of traded notional (0.00045 = 0.045 %).
    pub fee: f64,
    /// Adverse slippage as a fraction of price.
    pub slippage: f64,
    /// Initial cash.
    pub cash: f64,
    /// Whether funding is charged.
    pub funding: bool,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        Self {
            fill: FillMode::NextOpen,
            fee: 0.00045,
            slippage: 0.0001,
            cash: 10_000.0,
            funding: true,
        }
    }
}

/// Per-bar target positions and stop levels (struct of arrays, one entry per bar).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Targets {
    /// Signed fraction of equity wanted after the bar (`NaN` = flat).
    pub position: Vec<f64>,
    /// Stop-loss price for an entry signalled at this bar (`NaN` = none).
    pub stop: Vec<f64>,
    /// Take-profit price for an entry signalled at this bar (`NaN` = none).
    pub take: Vec<f64>,
}

impl Targets {
    /// Flat targets with no stops for `n` bars.
    pub fn flat(n: usize) -> Self {
        Self {
            position: vec![0.0; n],
            stop: vec![f64::NAN; n],
            take: vec![f64::NAN; n],
        }
    }
}

/// Side of a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Long,
    Short,
}

impl Side {
    fn sign(self) -> f64 {
        match self {
            Side::Long => 1.0,
            Side::Short => -1.0,
        }
    }
    fn of(x: f64) -> Option<Side> {
        if x > 0.0 {
            Some(Side::Long)
        } else if x < 0.0 {
            Some(Side::Short)
        } else {
            None // also NaN
        }
    }
    /// `long` or `short`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Long => "long",
            Side::Short => "short",
        }
    }
}

/// Why a trade ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitReason {
    Signal,
    StopLoss,
    TakeProfit,
    Liquidation,
    /// Still open at the end of the data (marked at the last close, not closed).
    Open,
}

impl ExitReason {
    /// The name used in trade files.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Signal => "signal",
            ExitReason::StopLoss => "stop-loss",
            ExitReason::TakeProfit => "take-profit",
            ExitReason::Liquidation => "liquidation",
            ExitReason::Open => "open",
        }
    }
}

/// One round trip (or a position still open at the end).
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    pub side: Side,
    pub entry_bar: usize,
    pub entry_ts: i64,
    /// Fill price including slippage.
    pub entry_price: f64,
    /// Bar of the exit (the last bar for an open trade).
    pub exit_bar: usize,
    pub exit_ts: i64,
    /// Fill price including slippage (the last close for an open trade).
    pub exit_price: f64,
    /// Position size in coins (positive).
    pub size: f64,
    /// Fees paid on entry and exit.
    pub fees: f64,
    /// Net funding received (negative when paid).
    pub funding: f64,
    /// Net PnL: price PnL − fees + funding (unrealized for an open trade, entry fee only).
    pub pnl: f64,
    pub exit_reason: ExitReason,
}

/// The result of one backtest.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestReport {
    /// Equity after each bar.
    pub equity: Vec<f64>,
    /// Trades in entry order; an open position at the end is the last one, with reason `open`.
    pub trades: Vec<Trade>,
    /// Bars at whose close a position was open.
    pub bars_in_market: usize,
    /// Initial cash.
    pub cash: f64,
}

impl BacktestReport {
    /// Completed round trips (not counting a position still open at the end).
    pub fn closed_trades(&self) -> impl Iterator<Item = &Trade> {
        self.trades
            .iter()
            .filter(|t| t.exit_reason != ExitReason::Open)
    }
}

struct Position {
    side: Side,
    entry_bar: usize,
    entry_price: f64,
    size: f64,
    fees: f64,
    funding: f64,
    stop: f64,
    take: f64,
}

struct Sim<'a> {
    c: &'a Candles,
    cfg: &'a BacktestConfig,
    cash: f64,
    pos: Option<Position>,
    blocked: Option<Side>,
    ruined: bool,
    trades: Vec<Trade>,
}

impl Sim<'_> {
    fn signed_size(&self) -> f64 {
        self.pos.as_ref().map_or(0.0, |p| p.side.sign() * p.size)
    }

    fn exit(&mut self, t: usize, price: f64, reason: ExitReason) {
        let Some(p) = self.pos.take() else { return };
        let fill = price * (1.0 - p.side.sign() * self.cfg.slippage);
        let proceeds = p.size * fill;
        let fee = proceeds * self.cfg.fee;
        self.cash += p.side.sign() * proceeds - fee;
        let fees = p.fees + fee;
        let gross = p.side.sign() * p.size * (fill - p.entry_price);
        if matches!(reason, ExitReason::StopLoss | ExitReason::TakeProfit) {
            self.blocked = Some(p.side);
        }
        self.trades.push(Trade {
            side: p.side,
            entry_bar: p.entry_bar,
            entry_ts: self.c.ts[p.entry_bar],
            entry_price: p.entry_price,
            exit_bar: t,
            exit_ts: self.c.ts[t],
            exit_price: fill,
            size: p.size,
            fees,
            funding: p.funding,
            pnl: gross - fees + p.funding,
            exit_reason: reason,
        });
    }

    /// Moves the position to the side of `target` at `price` (signal from `signal_bar`).
    fn act(&mut self, t: usize, price: f64, targets: &Targets, signal_bar: usize) {
        let target = targets.position[signal_bar];
        let want = Side::of(target);
        if self.blocked.is_some() && self.blocked != want {
            self.blocked = None;
        }
        let have = self.pos.as_ref().map(|p| p.side);
        if have.is_some() && have != want {
            self.exit(t, price, ExitReason::Signal);
        }
        let Some(side) = want else { return };
        if self.pos.is_some() || self.blocked == Some(side) || self.ruined {
            return;
        }
        let equity = self.cash;
        if equity <= 0.0 {
            return;
        }
        let fill = price * (1.0 + side.sign() * self.cfg.slippage);
        let size = (target.abs() * equity / (1.0 + self.cfg.fee)) / fill;
        let fee = size * fill * self.cfg.fee;
        self.cash -= side.sign() * size * fill + fee;
        self.pos = Some(Position {
            side,
            entry_bar: t,
            entry_price: fill,
            size,
            fees: fee,
            funding: 0.0,
            stop: targets.stop[signal_bar],
            take: targets.take[signal_bar],
        });
    }

    fn funding(&mut self, t: usize, rate: f64) {
        if rate == 0.0 {
            return;
        }
        let q = self.signed_size();
        if let Some(p) = self.pos.as_mut() {
            let amount = -q * self.c.open[t] * rate;
            self.cash += amount;
            p.funding += amount;
        }
    }

    /// Intrabar stop/take-profit check with the bar's open, high and low.
    fn intrabar_stops(&mut self, t: usize) {
        let Some(p) = self.pos.as_ref() else { return };
        let (o, h, l) = (self.c.open[t], self.c.high[t], self.c.low[t]);
        let (stop, take) = (p.stop, p.take);
        let exit = match p.side {
            Side::Long => {
                if stop >= o {
                    Some((o, ExitReason::StopLoss))
                } else if take <= o {
                    Some((o, ExitReason::TakeProfit))
                } else if l <= stop {
                    Some((stop, ExitReason::StopLoss))
                } else if h >= take {
                    Some((take, ExitReason::TakeProfit))
                } else {
                    None
                }
            }
            Side::Short => {
                if stop <= o {
                    Some((o, ExitReason::StopLoss))
                } else if take >= o {
                    Some((o, ExitReason::TakeProfit))
                } else if h >= stop {
                    Some((stop, ExitReason::StopLoss))
                } else if l <= take {
                    Some((take, ExitReason::TakeProfit))
                } else {
                    None
                }
            }
        };
        if let Some((price, reason)) = exit {
            self.exit(t, price, reason);
        }
    }

    /// Stop/take-profit check on the close (close fill mode), from the bar after entry.
    fn close_stops(&mut self, t: usize) {
        let Some(p) = self.pos.as_ref() else { return };
        if p.entry_bar >= t {
            return;
        }
        let c = self.c.close[t];
        let s = p.side.sign();
        // For a long: close < stop, close > take; mirrored for a short.
        if s * (p.stop - c) > 0.0 {
            self.exit(t, c, ExitReason::StopLoss);
        } else if s * (c - p.take) > 0.0 {
            self.exit(t, c, ExitReason::TakeProfit);
        }
    }
}

/// Runs one backtest. `funding_per_bar` is the funding rate summed per bar (may be empty for no
/// funding); `targets` must have one entry per bar.
///
/// # Panics
/// When `targets` or a non-empty `funding_per_bar` does not have one entry per bar.
pub fn run(
    candles: &Candles,
    funding_per_bar: &[f64],
    targets: &Targets,
    cfg: &BacktestConfig,
) -> BacktestReport {
    let n = candles.len();
    assert_eq!(
        targets.position.len(),
        n,
        "targets must have one entry per bar"
    );
    assert_eq!(targets.stop.len(), n, "stops must have one entry per bar");
    assert_eq!(
        targets.take.len(),
        n,
        "take-profits must have one entry per bar"
    );
    assert!(
        funding_per_bar.is_empty() || funding_per_bar.len() == n,
        "funding must be empty or have one entry per bar"
    );
    let use_funding = cfg.funding && !funding_per_bar.is_empty();
    let mut sim = Sim {
        c: candles,
        cfg,
        cash: cfg.cash,
        pos: None,
        blocked: None,
        ruined: false,
        trades: Vec::new(),
    };
    let mut equity = Vec::with_capacity(n);
    let mut bars_in_market = 0;
    for t in 0..n {
        match cfg.fill {
            FillMode::NextOpen => {
                if t > 0 {
                    sim.act(t, candles.open[t], targets, t - 1);
                }
                if use_funding {
                    sim.funding(t, funding_per_bar[t]);
                }
                sim.intrabar_stops(t);
            }
            FillMode::Close => {
                if use_funding {
                    sim.funding(t, funding_per_bar[t]);
                }
                sim.close_stops(t);
                sim.act(t, candles.close[t], targets, t);
            }
        }
        let mut v = sim.cash + sim.signed_size() * candles.close[t];
        if sim.pos.is_some() && v <= 0.0 {
            sim.exit(t, candles.close[t], ExitReason::Liquidation);
            sim.ruined = true;
            v = sim.cash;
        }
        if sim.pos.is_some() {
            bars_in_market += 1;
        }
        equity.push(v);
    }
    if let Some(p) = sim.pos.take() {
        let last = n - 1;
        let mark = candles.close[last];
        let gross = p.side.sign() * p.size * (mark - p.entry_price);
        sim.trades.push(Trade {
            side: p.side,
            entry_bar: p.entry_bar,
            entry_ts: candles.ts[p.entry_bar],
            entry_price: p.entry_price,
            exit_bar: last,
            exit_ts: candles.ts[last],
            exit_price: mark,
            size: p.size,
            fees: p.fees,
            funding: p.funding,
            pnl: gross - p.fees + p.funding,
            exit_reason: ExitReason::Open,
        });
    }
    BacktestReport {
        equity,
        trades: sim.trades,
        bars_in_market,
        cash: cfg.cash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAN: f64 = f64::NAN;

    /// Bars with given open and close; high/low 1 % outside the body.
    fn bars(open: &[f64], close: &[f64]) -> Candles {
        let mut c = Candles::default();
        for (i, (&o, &cl)) in open.iter().zip(close).enumerate() {
            c.push(
                i as i64 * 3_600_000,
                o,
                o.max(cl) * 1.01,
                o.min(cl) * 0.99,
                cl,
                1.0,
            );
        }
        c
    }

    fn targets(pos: &[f64]) -> Targets {
        Targets {
            position: pos.to_vec(),
            stop: vec![NAN; pos.len()],
            take: vec![NAN; pos.len()],
        }
    }

    fn cfg(fill: FillMode, fee: f64, slippage: f64) -> BacktestConfig {
        BacktestConfig {
            fill,
            fee,
            slippage,
            cash: 1000.0,
            funding: true,
        }
    }

    fn near(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
    }

    #[test]
    fn close_mode_all_in_net_of_fees() {
        let c = bars(&[100.0, 100.0, 110.0, 121.0], &[100.0, 110.0, 121.0, 110.0]);
        let r = run(
            &c,
            &[],
            &targets(&[1.0, 1.0, 0.0, 0.0]),
            &cfg(FillMode::Close, 0.01, 0.0),
        );
        // Buy at 100: size = (1000/1.01)/100, fee = size*100*0.01, cash 0.
        let size = 1000.0 / 1.01 / 100.0;
        near(r.equity[0], size * 100.0);
        near(r.equity[1], size * 110.0);
        // Sell at 121: proceeds less 1 % fee.
        let cash = size * 121.0 * 0.99;
        near(r.equity[2], cash);
        near(r.equity[3], cash);
        assert_eq!(r.trades.len(), 1);
        let t = &r.trades[0];
        assert_eq!(
            (t.entry_bar, t.exit_bar, t.exit_reason),
            (0, 2, ExitReason::Signal)
        );
        near(t.fees, size * 100.0 * 0.01 + size * 121.0 * 0.01);
        near(t.pnl, cash - 1000.0);
        assert_eq!(r.bars_in_market, 2);
    }

    #[test]
    fn next_open_fills_with_adverse_slippage() {
        let c = bars(&[100.0, 102.0, 104.0, 103.0], &[101.0, 103.0, 105.0, 104.0]);
        let r = run(
            &c,
            &[],
            &targets(&[1.0, 1.0, 0.0, 0.0]),
            &cfg(FillMode::NextOpen, 0.0, 0.01),
        );
        // Signal at bar 0 fills at bar 1's open 102 * 1.01; exit signal at bar 2 fills at bar 3's open 103 * 0.99.
        let size = 1000.0 / (102.0 * 1.01);
        near(r.equity[0], 1000.0);
        near(r.equity[1], size * 103.0);
        near(r.equity[2], size * 105.0);
        near(r.equity[3], size * 103.0 * 0.99);
        let t = &r.trades[0];
        near(t.entry_price, 102.0 * 1.01);
        near(t.exit_price, 103.0 * 0.99);
        assert_eq!((t.entry_ts, t.exit_ts), (3_600_000, 3 * 3_600_000));
    }

    #[test]
    fn short_side_profits_when_price_falls() {
        let c = bars(&[100.0, 100.0, 80.0], &[100.0, 90.0, 80.0]);
        let r = run(
            &c,
            &[],
            &targets(&[-0.5, -0.5, 0.0]),
            &cfg(FillMode::Close, 0.0, 0.0),
        );
        // Short 0.5 * 1000 / 100 = 5 coins at 100, cover at 80: +100.
        near(r.equity[1], 1000.0 + 5.0 * 10.0);
        near(r.equity[2], 1100.0);
        assert_eq!(r.trades[0].side, Side::Short);
        near(r.trades[0].pnl, 100.0);
    }

    #[test]
    fn reversal_closes_then_opens() {
        let c = bars(&[100.0; 4], &[100.0, 100.0, 100.0, 100.0]);
        let r = run(
            &c,
            &[],
            &targets(&[1.0, -1.0, -1.0, 0.0]),
            &cfg(FillMode::Close, 0.001, 0.0),
        );
        assert_eq!(r.trades.len(), 2);
        assert_eq!(r.trades[0].side, Side::Long);
        assert_eq!(r.trades[1].side, Side::Short);
        assert_eq!(r.trades[1].entry_bar, 1);
        // Four fills of ~1000 notional at 0.1 %: equity ends near 1000 * (1/1.001 * 0.999)^2.
        let once = 1000.0 / 1.001 * 0.999;
        near(r.equity[3], once / 1.001 * 0.999);
    }

    #[test]
    fn intrabar_stop_wins_when_both_levels_are_touched() {
        let mut c = bars(
            &[100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0],
            &[100.0; 7],
        );
        c.high[2] = 111.0;
        c.low[2] = 94.0;
        let mut tg = targets(&[1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
        tg.stop[0] = 95.0;
        tg.take[0] = 110.0;
        tg.stop[5] = 50.0;
        let r = run(&c, &[], &tg, &cfg(FillMode::NextOpen, 0.0, 0.0));
        let t = &r.trades[0];
        assert_eq!(
            (t.entry_bar, t.exit_bar, t.exit_reason),
            (1, 2, ExitReason::StopLoss)
        );
        near(t.exit_price, 95.0);
        // Still long at bars 2-3 but blocked; target flat at 4, long at 5 -> entry at bar 6.
        assert_eq!(r.trades.len(), 2);
        assert_eq!(r.trades[1].entry_bar, 6);
        assert_eq!(r.trades[1].exit_reason, ExitReason::Open);
        near(r.equity[3], 950.0);
    }

    #[test]
    fn gap_through_stop_fills_at_open_and_take_profit_fills_at_level() {
        let mut c = bars(&[100.0, 100.0, 90.0], &[100.0, 100.0, 91.0]);
        let mut tg = targets(&[1.0, 1.0, 1.0]);
        tg.stop[0] = 95.0;
        let r = run(&c, &[], &tg, &cfg(FillMode::NextOpen, 0.0, 0.0));
        near(r.trades[0].exit_price, 90.0);
        assert_eq!(r.trades[0].exit_reason, ExitReason::StopLoss);
        c.open[2] = 101.0;
        c.close[2] = 104.0;
        c.high[2] = 106.0;
        c.low[2] = 100.5;
        tg.take[0] = 105.0;
        let r = run(&c, &[], &tg, &cfg(FillMode::NextOpen, 0.0, 0.01));
        assert_eq!(r.trades[0].exit_reason, ExitReason::TakeProfit);
        near(r.trades[0].exit_price, 105.0 * 0.99);
    }

    #[test]
    fn close_mode_stop_is_checked_on_the_close_after_entry() {
        let c = bars(&[100.0; 4], &[100.0, 96.0, 94.0, 94.0]);
        let mut tg = targets(&[1.0, 1.0, 1.0, 1.0]);
        tg.stop[0] = 95.0;
        let r = run(&c, &[], &tg, &cfg(FillMode::Close, 0.0, 0.0));
        assert_eq!(
            (r.trades[0].exit_bar, r.trades[0].exit_reason),
            (2, ExitReason::StopLoss)
        );
        near(r.trades[0].exit_price, 94.0);
    }

    #[test]
    fn funding_is_paid_by_longs_and_received_by_shorts() {
        let c = bars(&[100.0; 4], &[100.0; 4]);
        let funding = [0.5, 0.001, -0.002, 0.003];
        let r = run(
            &c,
            &funding,
            &targets(&[1.0, 1.0, 1.0, 1.0]),
            &cfg(FillMode::NextOpen, 0.0, 0.0),
        );
        // 10 coins from bar 1: pays 1 at bar 1, receives 2 at bar 2, pays 3 at bar 3.
        near(r.equity[1], 999.0);
        near(r.equity[2], 1001.0);
        near(r.equity[3], 998.0);
        near(r.trades[0].funding, -2.0);
        let r = run(
            &c,
            &funding,
            &targets(&[-1.0; 4]),
            &cfg(FillMode::NextOpen, 0.0, 0.0),
        );
        near(r.equity[3], 1002.0);
        let off = BacktestConfig {
            funding: false,
            ..cfg(FillMode::NextOpen, 0.0, 0.0)
        };
        let r = run(&c, &funding, &targets(&[1.0; 4]), &off);
        near(r.equity[3], 1000.0);
    }

    #[test]
    fn ruin_liquidates_and_stops_trading() {
        let c = bars(&[100.0, 100.0, 100.0, 100.0], &[100.0, 40.0, 100.0, 100.0]);
        let r = run(
            &c,
            &[],
            &targets(&[2.0, 2.0, 0.0, 2.0]),
            &cfg(FillMode::Close, 0.0, 0.0),
        );
        // 2x long: 20 coins bought with 1000 cash (cash -1000); at 40 equity = -200.
        assert_eq!(r.trades[0].exit_reason, ExitReason::Liquidation);
        near(r.equity[1], -200.0);
        assert_eq!(r.trades.len(), 1);
        near(r.equity[3], -200.0);
    }

    #[test]
    fn no_trades_means_flat_equity() {
        let c = bars(&[100.0, 120.0], &[120.0, 90.0]);
        let r = run(
            &c,
            &[0.01, 0.01],
            &targets(&[0.0, NAN]),
            &BacktestConfig::default(),
        );
        assert_eq!(r.equity, vec![10_000.0, 10_000.0]);
        assert!(r.trades.is_empty());
    }
}
