//! Point-in-time membership of a [`Panel`]'s coins: who may be traded at grid bar *t*, decided
//! from bars up to *t* only. A coin is a member at *t* when
//!
//! * it has a bar at *t* (it trades now),
//! * it has at least `min_history` bars up to *t*,
//! * no bar it had in the last day up to *t* is one the plausibility check doubts, and
//! * its trailing median daily notional volume (`close · volume` summed per UTC day, the median
//!   over the last `volume_days` UTC days complete at *t*'s close) is at least
//!   `min_volume_usd`;
//!
//! and, with `top = N`, the members are cut to the N of largest trailing volume (ties to the
//! coin first in the panel). Nothing after *t* decides anything: the look-ahead property test
//! changes every coin's data after *t* and compares.

use serde::{Deserialize, Serialize};

use super::panel::Panel;
use crate::settings::{count, range, Invalid};

/// One UTC day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Who may be traded (config `[universe]`, `--coins top:N`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MembershipRule {
    /// Bars a coin needs up to *t* (its own bars).
    pub min_history: usize,
    /// Smallest trailing median daily notional volume, in quote currency.
    pub min_volume_usd: f64,
    /// Complete UTC days the median volume is taken over.
    pub volume_days: usize,
    /// Keep only the N members of largest trailing volume.
    pub top: Option<usize>,
}

impl Default for MembershipRule {
    fn default() -> Self {
        Self {
            min_history: 120,
            min_volume_usd: 250_000.0,
            volume_days: 30,
            top: None,
        }
    }
}

impl MembershipRule {
    /// Checks every field; the error names its key (`universe.min_history`, `--coins` for
    /// `top`).
    ///
    /// # Errors
    /// A message naming the first bad field.
    pub fn validate(&self) -> Result<(), Invalid> {
        count("universe.min_history", self.min_history, 1, MAX_HISTORY, "")?;
        range("universe.min_volume_usd", self.min_volume_usd, 0.0, 1e15)?;
        count("universe.volume_days", self.volume_days, 1, 3650, "")?;
        if self.top == Some(0) {
            return Err(Invalid::new("--coins", "top:N needs N >= 1"));
        }
        Ok(())
    }
}

/// Most bars of history a membership rule may ask for.
pub const MAX_HISTORY: usize = 10_000_000;

/// `[universe]`: which coins of a many-coin universe a portfolio strategy may hold at each bar.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniverseConfig {
    pub min_history: usize,
    pub min_volume_usd: f64,
    pub volume_days: usize,
    /// Coins never held.
    pub exclude: Vec<String>,
}

impl UniverseConfig {
    /// The membership rule, with `top` coins by trailing volume when given.
    pub fn rule(&self, top: Option<usize>) -> MembershipRule {
        MembershipRule {
            min_history: self.min_history,
            min_volume_usd: self.min_volume_usd,
            volume_days: self.volume_days,
            top,
        }
    }

    /// Checks the rule's keys and the excluded coins' names.
    ///
    /// # Errors
    /// [`Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.rule(None).validate()?;
        for c in &self.exclude {
            super::types::Coin::new(c).map_err(|m| Invalid::new("universe.exclude", m))?;
        }
        Ok(())
    }
}

/// Daily notional volume per coin, computed once per panel; answers membership questions at
/// any grid bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    /// Per coin: the UTC days it has bars on, ascending, and the notional traded on each.
    days: Vec<Vec<i64>>,
    notional: Vec<Vec<f64>>,
    /// The grid's bar length, to know when a bar closes.
    interval: i64,
}

impl Membership {
    /// Sums every coin's `close · volume` per UTC day.
    pub fn new(panel: &Panel) -> Self {
        let mut days = Vec::with_capacity(panel.coins.len());
        let mut notional = Vec::with_capacity(panel.coins.len());
        for c in &panel.coins {
            let k = &c.market.candles;
            let (mut d, mut v): (Vec<i64>, Vec<f64>) = (Vec::new(), Vec::new());
            for i in 0..k.len() {
                let day = k.ts[i].div_euclid(DAY_MS);
                let x = k.close[i] * k.volume[i];
                if d.last() == Some(&day) {
                    *v.last_mut().expect("a day") += x;
                } else {
                    d.push(day);
                    v.push(x);
                }
            }
            days.push(d);
            notional.push(v);
        }
        Self {
            days,
            notional,
            interval: panel.interval_ms(),
        }
    }

    /// Coin `i`'s median daily notional over the last `n` UTC days complete at the close of
    /// grid bar `t` (days it has bars on); `None` before its first complete day.
    pub fn trailing_volume(&self, panel: &Panel, i: usize, t: usize, n: usize) -> Option<f64> {
        let closes = panel.ts[t] + self.interval;
        let days = &self.days[i];
        let known = days.partition_point(|&d| (d + 1) * DAY_MS <= closes);
        if known == 0 {
            return None;
        }
        let mut w = self.notional[i][known.saturating_sub(n)..known].to_vec();
        w.sort_by(f64::total_cmp);
        Some(median_sorted(&w))
    }

    /// Coin `i`'s median daily notional over its whole history (its first and last days left
    /// out, as they may be partial, when it has more than two); `None` without bars.
    pub fn median_daily(&self, i: usize) -> Option<f64> {
        let v = &self.notional[i];
        let mut w = if v.len() > 2 {
            v[1..v.len() - 1].to_vec()
        } else {
            v.clone()
        };
        if w.is_empty() {
            return None;
        }
        w.sort_by(f64::total_cmp);
        Some(median_sorted(&w))
    }

    /// The members at grid bar `t`, in panel order.
    pub fn members(&self, panel: &Panel, rule: &MembershipRule, t: usize) -> Vec<usize> {
        let ts = panel.ts[t];
        let mut ranked: Vec<(usize, f64)> = Vec::new();
        for (i, c) in panel.coins.iter().enumerate() {
            let Some(b) = c.bar(t) else { continue };
            if b + 1 < rule.min_history {
                continue;
            }
            let own = &c.market.candles.ts;
            // A doubted bar within the last day up to t (none after t is looked at).
            let upto = c.doubted.partition_point(|&d| d <= b);
            if c.doubted[..upto]
                .last()
                .is_some_and(|&d| ts < own[d] + DAY_MS)
            {
                continue;
            }
            let volume = self
                .trailing_volume(panel, i, t, rule.volume_days)
                .unwrap_or(0.0);
            if rule.min_volume_usd > 0.0 && volume < rule.min_volume_usd {
                continue;
            }
            ranked.push((i, volume));
        }
        if let Some(n) = rule.top {
            if ranked.len() > n {
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                ranked.truncate(n);
                ranked.sort_by_key(|x| x.0);
            }
        }
        ranked.into_iter().map(|x| x.0).collect()
    }
}

/// The median of a sorted, non-empty slice (the mean of the middle two for an even length).
pub fn median_sorted(w: &[f64]) -> f64 {
    let m = w.len();
    if m % 2 == 1 {
        w[m / 2]
    } else {
        (w[m / 2 - 1] + w[m / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::{Candles, FundingSeries, Market, HOUR_MS};

    /// A 6-hourly coin from `start` (in bars) with `n` bars, price `p` and volume `v` per bar.
    fn coin(name: &str, start: i64, n: i64, p: f64, v: f64) -> Market {
        let mut c = Candles::default();
        for i in start..start + n {
            c.push(i * 6 * HOUR_MS, p, p, p, p, v);
        }
        Market::new(name, c, FundingSeries::default())
    }

    #[test]
    fn history_volume_doubts_and_top_n_by_hand() {
        // Four bars a day. A: from day 0, $400 a bar ($1,600 a day). B: from day 2, $1,000 a
        // bar. C: from day 0, $100 a bar ($400 a day).
        let mut panel = Panel::new(vec![
            coin("A", 0, 40, 10.0, 40.0),
            coin("B", 8, 32, 100.0, 10.0),
            coin("C", 0, 40, 1.0, 100.0),
        ]);
        let m = Membership::new(&panel);
        // At grid bar 3 (day 0's last bar) day 0 is complete at its close: A's median 1,600.
        assert_eq!(m.trailing_volume(&panel, 0, 3, 30), Some(1600.0));
        assert_eq!(m.trailing_volume(&panel, 0, 2, 30), None);
        // B at grid bar 9 (its 2nd bar): no complete day yet.
        assert_eq!(m.trailing_volume(&panel, 1, 9, 30), None);
        assert_eq!(m.trailing_volume(&panel, 1, 11, 30), Some(4000.0));
        let rule = MembershipRule {
            min_history: 8,
            min_volume_usd: 1000.0,
            volume_days: 30,
            top: None,
        };
        // Bar 7: A has 8 bars and $1,600 a day; B not listed; C too little volume.
        assert_eq!(m.members(&panel, &rule, 7), vec![0]);
        // Bar 15: B has 8 bars (from bar 8) and $4,000 a day.
        assert_eq!(m.members(&panel, &rule, 15), vec![0, 1]);
        assert_eq!(m.members(&panel, &rule, 14), vec![0]);
        // Top 1: B has the larger volume.
        let top1 = MembershipRule {
            top: Some(1),
            ..rule
        };
        assert_eq!(m.members(&panel, &top1, 15), vec![1]);
        // A doubted bar of A at grid bar 20 keeps A out for a day: bars 20..=23.
        panel.coins[0].doubted = vec![20];
        assert_eq!(m.members(&panel, &rule, 19), vec![0, 1]);
        for t in 20..24 {
            assert_eq!(m.members(&panel, &rule, t), vec![1], "bar {t}");
        }
        assert_eq!(m.members(&panel, &rule, 24), vec![0, 1]);
    }
}
