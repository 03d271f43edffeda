//! Statistics of a backtest's trade list: holding times, the best and worst trade, streaks,
//! long against short, and the costs paid (fees) and funding received, each with its sign said.

use serde::Serialize;

use crate::execution::{ExitReason, Side, Trade};

/// One side's closed trades.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct SideStats {
    pub trades: usize,
    /// Closed trades with a positive net P&L.
    pub wins: usize,
    /// Net P&L summed (after fees and funding).
    pub pnl: f64,
}

/// A trade picked out (the best or the worst): its net P&L, the P&L as a fraction of its entry
/// notional, and when it opened.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Extreme {
    pub pnl: f64,
    pub r#return: f64,
    pub entry_ts: i64,
    pub side: Side,
}

/// The statistics of a trade list. Only closed trades count, except in `fees_paid` and
/// `funding_received`, which include an open trade's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TradeStats {
    pub closed: usize,
    pub long: SideStats,
    pub short: SideStats,
    /// Hours from entry to exit: mean, median and longest (0 without closed trades).
    pub mean_hold_hours: f64,
    pub median_hold_hours: f64,
    pub max_hold_hours: f64,
    pub best: Option<Extreme>,
    pub worst: Option<Extreme>,
    /// Most closed trades in a row with a net loss / a net gain (in exit order).
    pub longest_losing_streak: usize,
    pub longest_winning_streak: usize,
    /// Fees paid, a cost (positive).
    pub fees_paid: f64,
    /// Funding received, net (negative when the positions paid more than they received).
    pub funding_received: f64,
}

impl TradeStats {
    /// The statistics of `trades` (as the engine lists them, in entry order).
    pub fn of(trades: &[Trade]) -> Self {
        let closed: Vec<&Trade> = trades
            .iter()
            .filter(|t| t.exit_reason != ExitReason::Open)
            .collect();
        let mut long = SideStats::default();
        let mut short = SideStats::default();
        for t in &closed {
            let s = match t.side {
                Side::Long => &mut long,
                Side::Short => &mut short,
            };
            s.trades += 1;
            s.wins += usize::from(t.pnl > 0.0);
            s.pnl += t.pnl;
        }
        let mut hours: Vec<f64> = closed.iter().map(|t| t.hours()).collect();
        hours.sort_by(f64::total_cmp);
        let (mean, median, max) = match hours.len() {
            0 => (0.0, 0.0, 0.0),
            n => (
                hours.iter().sum::<f64>() / n as f64,
                if n % 2 == 1 {
                    hours[n / 2]
                } else {
                    0.5 * (hours[n / 2 - 1] + hours[n / 2])
                },
                hours[n - 1],
            ),
        };
        let extreme = |t: &&Trade| Extreme {
            pnl: t.pnl,
            r#return: t.notional_return(),
            entry_ts: t.entry_ts,
            side: t.side,
        };
        // Ties go to the earlier trade.
        let best = closed
            .iter()
            .reduce(|a, b| if b.pnl > a.pnl { b } else { a })
            .map(extreme);
        let worst = closed
            .iter()
            .reduce(|a, b| if b.pnl < a.pnl { b } else { a })
            .map(extreme);
        let mut by_exit = closed.clone();
        by_exit.sort_by_key(|t| (t.exit_ts, t.entry_ts));
        let streak = |keep: fn(f64) -> bool| {
            let (mut run, mut most) = (0usize, 0usize);
            for t in &by_exit {
                run = if keep(t.pnl) { run + 1 } else { 0 };
                most = most.max(run);
            }
            most
        };
        TradeStats {
            closed: closed.len(),
            long,
            short,
            mean_hold_hours: mean,
            median_hold_hours: median,
            max_hold_hours: max,
            best,
            worst,
            longest_losing_streak: streak(|p| p < 0.0),
            longest_winning_streak: streak(|p| p > 0.0),
            fees_paid: trades.iter().map(|t| t.fees).sum(),
            funding_received: trades.iter().map(|t| t.funding).sum(),
        }
    }

    /// `(label, value)` rows for tables, each sign said in words.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let side = |s: &SideStats| {
            if s.trades == 0 {
                "none".to_string()
            } else {
                format!(
                    "{} trades, {:.1} % won, net {:+.2}",
                    s.trades,
                    100.0 * s.wins as f64 / s.trades as f64,
                    s.pnl
                )
            }
        };
        let pick = |e: &Option<Extreme>| match e {
            Some(e) => format!(
                "{:+.2} ({:+.2} % of its notional, {} from {})",
                e.pnl,
                100.0 * e.r#return,
                e.side.as_str(),
                crate::market::format_ts(e.entry_ts)
            ),
            None => "-".into(),
        };
        vec![
            ("long", side(&self.long)),
            ("short", side(&self.short)),
            (
                "holding time",
                format!(
                    "mean {}, median {}, longest {}",
                    hours(self.mean_hold_hours),
                    hours(self.median_hold_hours),
                    hours(self.max_hold_hours)
                ),
            ),
            ("best trade", pick(&self.best)),
            ("worst trade", pick(&self.worst)),
            (
                "streaks",
                format!(
                    "longest losing {}, longest winning {} (closed trades in a row)",
                    self.longest_losing_streak, self.longest_winning_streak
                ),
            ),
            ("fees paid", format!("{:.2}", self.fees_paid)),
            (
                "funding",
                format!(
                    "{:+.2} ({} net; + received, − paid)",
                    self.funding_received,
                    if self.funding_received < 0.0 {
                        "paid"
                    } else {
                        "received"
                    }
                ),
            ),
        ]
    }
}

/// Hours as hours below two days, else days.
fn hours(h: f64) -> String {
    if h < 48.0 {
        format!("{h:.1} h")
    } else {
        format!("{:.1} d", h / 24.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn trade(side: Side, entry_h: i64, exit_h: i64, pnl: f64, reason: ExitReason) -> Trade {
        Trade {
            side,
            entry_bar: entry_h as usize,
            entry_ts: entry_h * H,
            entry_price: 100.0,
            exit_bar: exit_h as usize,
            exit_ts: exit_h * H,
            exit_price: 100.0,
            size: 2.0,
            fees: 0.5,
            funding: -0.25,
            pnl,
            exit_reason: reason,
        }
    }

    #[test]
    fn statistics_by_hand() {
        use ExitReason::{Open, Signal, StopLoss};
        let t = [
            trade(Side::Long, 0, 4, 10.0, Signal),    // 4 h, win
            trade(Side::Short, 4, 6, -3.0, StopLoss), // 2 h, loss
            trade(Side::Long, 6, 16, -5.0, Signal),   // 10 h, loss
            trade(Side::Short, 16, 17, -1.0, Signal), // 1 h, loss
            trade(Side::Long, 17, 20, 2.0, Signal),   // 3 h, win
            trade(Side::Long, 20, 30, 40.0, Open),    // open: only its costs count
        ];
        let s = TradeStats::of(&t);
        assert_eq!(s.closed, 5);
        assert_eq!(
            s.long,
            SideStats {
                trades: 3,
                wins: 2,
                pnl: 7.0
            }
        );
        assert_eq!(
            s.short,
            SideStats {
                trades: 2,
                wins: 0,
                pnl: -4.0
            }
        );
        // Hours 1, 2, 3, 4, 10.
        assert_eq!(s.mean_hold_hours, 4.0);
        assert_eq!(s.median_hold_hours, 3.0);
        assert_eq!(s.max_hold_hours, 10.0);
        let best = s.best.unwrap();
        assert_eq!((best.pnl, best.r#return, best.entry_ts), (10.0, 0.05, 0));
        let worst = s.worst.unwrap();
        assert_eq!(
            (worst.pnl, worst.r#return, worst.entry_ts),
            (-5.0, -0.025, 6 * H)
        );
        assert_eq!(s.longest_losing_streak, 3);
        assert_eq!(s.longest_winning_streak, 1);
        assert_eq!(s.fees_paid, 3.0);
        assert_eq!(s.funding_received, -1.5);
        let rows = s.rows();
        assert_eq!(
            rows[7],
            (
                "funding",
                "-1.50 (paid net; + received, − paid)".to_string()
            )
        );
        assert_eq!(rows[2].1, "mean 4.0 h, median 3.0 h, longest 10.0 h");
    }

    #[test]
    fn no_trades_no_statistics() {
        let s = TradeStats::of(&[]);
        assert_eq!(s.closed, 0);
        assert_eq!(s.best, None);
        assert_eq!((s.longest_losing_streak, s.mean_hold_hours), (0, 0.0));
        assert_eq!(s.rows()[0].1, "none");
    }
}
