//! A panel: the coins of a universe on one time grid. The grid is the union of every coin's bar
//! times; each coin keeps its own columns (a [`Market`], struct of arrays) from its first bar to
//! its last, and a bar it does not have is absent — never filled.

use super::Market;

/// No bar of the coin at this grid time.
const NONE: u32 = u32::MAX;

/// One coin of a panel.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelCoin {
    /// Its own bars, funding and funding per bar.
    pub market: Market,
    /// Grid index of its first bar.
    pub first: usize,
    /// Grid index of its last bar.
    pub last: usize,
    /// For each grid bar from `first` to `last`, the index of its own bar there (`NONE` where
    /// it has none).
    rows: Vec<u32>,
    /// Its own bars the plausibility check doubts, ascending (the coin is not a member for a
    /// while after each).
    pub doubted: Vec<usize>,
}

impl PanelCoin {
    /// The index of its own bar at grid bar `t`, if it has one.
    #[inline]
    pub fn bar(&self, t: usize) -> Option<usize> {
        if t < self.first || t > self.last {
            return None;
        }
        let r = self.rows[t - self.first];
        (r != NONE).then_some(r as usize)
    }

    /// Its last own bar at or before grid bar `t` (the latest bar known at `t`).
    pub fn bar_at_or_before(&self, t: usize) -> Option<usize> {
        if t < self.first {
            return None;
        }
        let t = t.min(self.last);
        (self.first..=t).rev().find_map(|u| self.bar(u))
    }
}

/// Coins on one grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Bar open times of the grid, ascending.
    pub ts: Vec<i64>,
    /// The coins, in the order they were given.
    pub coins: Vec<PanelCoin>,
}

impl Panel {
    /// Puts `markets` on one grid: the union of their bar times.
    pub fn new(markets: Vec<Market>) -> Self {
        let mut ts: Vec<i64> = markets
            .iter()
            .flat_map(|m| m.candles.ts.iter().copied())
            .collect();
        ts.sort_unstable();
        ts.dedup();
        let coins = markets
            .into_iter()
            .filter(|m| !m.candles.is_empty())
            .map(|market| {
                let own = &market.candles.ts;
                let first = ts.partition_point(|&x| x < own[0]);
                let last = ts.partition_point(|&x| x < own[own.len() - 1]);
                let mut rows = vec![NONE; last - first + 1];
                let mut g = first;
                for (i, &x) in own.iter().enumerate() {
                    while ts[g] < x {
                        g += 1;
                    }
                    rows[g - first] = i as u32;
                }
                PanelCoin {
                    market,
                    first,
                    last,
                    rows,
                    doubted: Vec::new(),
                }
            })
            .collect();
        Self { ts, coins }
    }

    /// The bars opening in `[from, to)` (UTC ms) of every coin that has any, on their own grid;
    /// doubted bars stay doubted.
    pub fn between(&self, from: i64, to: i64) -> Panel {
        let mut doubted = Vec::new();
        let markets = self
            .coins
            .iter()
            .filter_map(|c| {
                let m = c.market.between(from, to)?;
                let a = c.market.candles.ts.partition_point(|&t| t < from);
                doubted.push(
                    c.doubted
                        .iter()
                        .filter(|&&d| d >= a && d - a < m.candles.len())
                        .map(|&d| d - a)
                        .collect::<Vec<_>>(),
                );
                Some(m)
            })
            .collect();
        let mut p = Panel::new(markets);
        for (c, d) in p.coins.iter_mut().zip(doubted) {
            c.doubted = d;
        }
        p
    }

    /// Grid bars.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// True when the grid has no bar.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// The coin names in order.
    pub fn names(&self) -> Vec<&str> {
        self.coins.iter().map(|c| c.market.coin.as_str()).collect()
    }

    /// The grid's bar length: its smallest step (an hour when it has one bar).
    pub fn interval_ms(&self) -> i64 {
        self.ts
            .windows(2)
            .map(|w| w[1] - w[0])
            .min()
            .unwrap_or(super::HOUR_MS)
    }

    /// Bars per year of the grid.
    pub fn bars_per_year(&self) -> f64 {
        bars_per_year(self.interval_ms())
    }
}

/// Bars per year of bars `interval` ms long (a 365-day year).
pub fn bars_per_year(interval: i64) -> f64 {
    365.0 * 24.0 * super::HOUR_MS as f64 / interval as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::{Candles, FundingSeries, HOUR_MS};

    fn market(coin: &str, hours: &[i64]) -> Market {
        let mut c = Candles::default();
        for &h in hours {
            c.push(h * HOUR_MS, 1.0, 1.0, 1.0, 1.0, 1.0);
        }
        Market::new(coin, c, FundingSeries::default())
    }

    #[test]
    fn the_grid_is_the_union_and_gaps_stay_absent() {
        let p = Panel::new(vec![
            market("A", &[0, 1, 2, 3, 4, 5]),
            market("B", &[2, 3, 5, 6]),
            market("C", &[7, 8]),
        ]);
        assert_eq!(p.ts, (0..9).map(|h| h * HOUR_MS).collect::<Vec<_>>());
        let b = &p.coins[1];
        assert_eq!((b.first, b.last), (2, 6));
        let at: Vec<Option<usize>> = (0..9).map(|t| b.bar(t)).collect();
        assert_eq!(
            at,
            vec![
                None,
                None,
                Some(0),
                Some(1),
                None,
                Some(2),
                Some(3),
                None,
                None
            ]
        );
        assert_eq!(b.bar_at_or_before(4), Some(1));
        assert_eq!(b.bar_at_or_before(8), Some(3));
        assert_eq!(b.bar_at_or_before(1), None);
        assert_eq!((p.coins[2].first, p.coins[2].last), (7, 8));
        assert_eq!(p.bars_per_year(), 8760.0);
    }
}
