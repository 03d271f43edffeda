//! The whole-history backtest: a loop that feeds every bar of a history and the strategy's
//! targets into the [execution engine](crate::execution), whose module documentation states the
//! semantics (fills, costs, stops, funding, liquidation). Pure and synchronous:
//! `run(candles, funding, targets, config) -> BacktestReport`, no clock, no I/O.
//!
//! A position still open at the last bar is not closed; it is reported with exit reason `open`,
//! marked at the last close.

pub mod portfolio;

use crate::{
    execution::{Engine, EngineConfig, ExitReason, Trade},
    market::Candles,
    strategy::Targets,
};

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

/// The trade list as CSV (what `backtest --trades` and `paper replay --trades` write): one row
/// per trade, prices and money as the shortest decimals that read back exactly.
pub fn trades_csv(trades: &[Trade]) -> String {
    use std::fmt::Write as _;
    let mut s = String::from(
        "side,entry_time_ms,entry_price,exit_time_ms,exit_price,size,fees,funding,pnl,exit_reason\n",
    );
    for t in trades {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{}",
            t.side.as_str(),
            t.entry_ts,
            t.entry_price,
            t.exit_ts,
            t.exit_price,
            t.size,
            t.fees,
            t.funding,
            t.pnl,
            t.exit_reason.as_str()
        );
    }
    s
}

/// The equity curve as CSV (`timestamp_ms,equity`), one row per bar.
pub fn equity_csv(ts: &[i64], equity: &[f64]) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("timestamp_ms,equity\n");
    for (ts, v) in ts.iter().zip(equity) {
        let _ = writeln!(s, "{ts},{v}");
    }
    s
}

/// Runs one backtest: every bar through the [execution engine](crate::execution) over a
/// simulated venue. `funding_per_bar` is the funding rate summed per bar (may be empty for no
/// funding); `targets` must have one entry per bar.
///
/// # Panics
/// When `targets` or a non-empty `funding_per_bar` does not have one entry per bar.
pub fn run(
    candles: &Candles,
    funding_per_bar: &[f64],
    targets: &Targets,
    cfg: &EngineConfig,
) -> BacktestReport {
    let n = candles.len();
    assert_eq!(targets.len(), n, "targets must have one entry per bar");
    assert!(
        funding_per_bar.is_empty() || funding_per_bar.len() == n,
        "funding must be empty or have one entry per bar"
    );
    let mut engine = Engine::simulated(cfg);
    let mut equity = Vec::with_capacity(n);
    for t in 0..n {
        let rate = if funding_per_bar.is_empty() {
            0.0
        } else {
            funding_per_bar[t]
        };
        equity.push(engine.step_history(candles, t, rate, targets));
    }
    let last_ts = candles.ts.last().copied().unwrap_or(0);
    let (trades, bars_in_market) = engine.finish(last_ts);
    BacktestReport {
        equity,
        trades,
        bars_in_market,
        cash: cfg.cash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::{FillMode, Side};

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
        let mut t = Targets::flat(pos.len());
        t.position.copy_from_slice(pos);
        t
    }

    fn cfg(fill: FillMode, fee: f64, slippage: f64) -> EngineConfig {
        EngineConfig {
            fill,
            fee,
            slippage,
            cash: 1000.0,
            funding: true,
            ..EngineConfig::default()
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
    fn short_intrabar_stop_wins_over_take_profit_and_blocks_reentry() {
        let mut c = bars(&[100.0; 5], &[100.0; 5]);
        // Bar 2 touches both the stop (105) and the take-profit (90): the stop counts.
        c.high[2] = 106.0;
        c.low[2] = 89.0;
        let mut tg = targets(&[-1.0; 5]);
        tg.stop[0] = 105.0;
        tg.take[0] = 90.0;
        let r = run(&c, &[], &tg, &cfg(FillMode::NextOpen, 0.0, 0.0));
        // Short 1000/100 = 10 coins at bar 1's open; covered at 105: -50.
        assert_eq!(
            r.trades.len(),
            1,
            "no re-entry while the target stays short"
        );
        let t = &r.trades[0];
        assert_eq!(t.side, Side::Short);
        assert_eq!(
            (t.entry_bar, t.exit_bar, t.exit_reason),
            (1, 2, ExitReason::StopLoss)
        );
        near(t.exit_price, 105.0);
        near(t.pnl, -50.0);
        near(r.equity[4], 950.0);
    }

    #[test]
    fn short_take_profit_gapped_through_fills_at_the_open() {
        let mut c = bars(&[100.0, 100.0, 88.0, 88.0], &[100.0, 100.0, 87.0, 87.0]);
        c.high[2] = 89.0;
        let mut tg = targets(&[-1.0; 4]);
        tg.take[0] = 90.0;
        let r = run(&c, &[], &tg, &cfg(FillMode::NextOpen, 0.0, 0.01));
        // Sell 1000/99 coins at 100*0.99 = 99; the bar opens at 88, below the take-profit: buy
        // back at the open with slippage, 88*1.01 = 88.88.
        let size = 1000.0 / 99.0;
        let t = &r.trades[0];
        assert_eq!((t.exit_bar, t.exit_reason), (2, ExitReason::TakeProfit));
        near(t.exit_price, 88.88);
        near(t.pnl, size * (99.0 - 88.88));
        near(r.equity[2], 1000.0 + size * (99.0 - 88.88));
    }

    #[test]
    fn a_stop_already_crossed_at_the_entry_open_exits_at_that_open() {
        // Long signalled at bar 0 with a stop at 95; bar 1 opens at 94, below it.
        let c = bars(&[100.0, 94.0, 96.0, 97.0], &[100.0, 96.0, 97.0, 98.0]);
        let mut tg = targets(&[1.0, 1.0, 1.0, 0.0]);
        tg.stop[0] = 95.0;
        let r = run(&c, &[], &tg, &cfg(FillMode::NextOpen, 0.001, 0.0));
        assert_eq!(r.trades.len(), 1);
        let t = &r.trades[0];
        assert_eq!(
            (t.entry_bar, t.exit_bar, t.exit_reason),
            (1, 1, ExitReason::StopLoss)
        );
        near(t.entry_price, 94.0);
        near(t.exit_price, 94.0);
        // All in at 94 net of the fee, out at 94 less the fee: only the fees are lost.
        let cash = 1000.0 / 1.001 * 0.999;
        near(r.equity[1], cash);
        near(r.equity[3], cash);
        near(t.pnl, cash - 1000.0);
        assert_eq!(r.bars_in_market, 0);
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
        let off = EngineConfig {
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
    fn leverage_multiplies_the_notional_and_the_maintenance_margin_liquidates() {
        // Close fills, no costs: 3x of a target of 0.5 buys 1.5 x 1000 / 100 = 15 coins.
        let c = bars(
            &[100.0, 100.0, 100.0, 100.0, 100.0],
            &[100.0, 110.0, 80.0, 90.0, 90.0],
        );
        let lev = EngineConfig {
            leverage: 3.0,
            ..cfg(FillMode::Close, 0.0, 0.0)
        };
        let r = run(&c, &[], &targets(&[0.5, 0.5, 0.5, 0.5, 0.0]), &lev);
        assert_eq!(r.trades[0].size, 15.0);
        // Equity 1000 + 15 (close - 100): 1150, 700, 850, then sold at 90: 850.
        for (i, want) in [1000.0, 1150.0, 700.0, 850.0, 850.0].iter().enumerate() {
            near(r.equity[i], *want);
        }
        // A maintenance margin of 5 % of notional: at the close of 80 the notional is 1200
        // and the margin 60; equity 700 stays above. At leverage 16 (8x equity with the
        // target 0.5: 80 coins) equity is 1000 + 80 (80 - 100) = -600 at that close: liquidated.
        let eight = EngineConfig {
            leverage: 16.0,
            maintenance_margin: 0.05,
            ..cfg(FillMode::Close, 0.0, 0.0)
        };
        let r = run(&c, &[], &targets(&[0.5, 0.5, 0.5, 0.5, 0.0]), &eight);
        assert_eq!(r.trades[0].size, 80.0);
        assert_eq!(r.trades[0].exit_reason, ExitReason::Liquidation);
        assert_eq!(r.trades[0].exit_bar, 2);
        near(r.equity[2], -600.0);
        assert_eq!(r.trades.len(), 1);
        // 4x (20 coins): at 80 equity is 1000 + 20 (80 - 100) = 600 against a margin of
        // 0.05 x 20 x 80 = 80, kept; with a margin of 0.4 (640) it is liquidated there.
        let four = |m: f64| EngineConfig {
            leverage: 4.0,
            maintenance_margin: m,
            ..cfg(FillMode::Close, 0.0, 0.0)
        };
        let kept = run(&c, &[], &targets(&[0.5, 0.5, 0.5, 0.5, 0.0]), &four(0.05));
        assert_eq!(kept.trades[0].exit_reason, ExitReason::Signal);
        near(kept.equity[4], 1000.0 + 20.0 * (90.0 - 100.0));
        let gone = run(&c, &[], &targets(&[0.5, 0.5, 0.5, 0.5, 0.0]), &four(0.4));
        assert_eq!(gone.trades[0].exit_reason, ExitReason::Liquidation);
        near(gone.equity[4], 600.0);
    }

    #[test]
    fn no_trades_means_flat_equity() {
        let c = bars(&[100.0, 120.0], &[120.0, 90.0]);
        let r = run(
            &c,
            &[0.01, 0.01],
            &targets(&[0.0, NAN]),
            &EngineConfig::default(),
        );
        assert_eq!(r.equity, vec![10_000.0, 10_000.0]);
        assert!(r.trades.is_empty());
    }
}
