//! The history a session hands its strategies: one coin's bars up to the bar being processed,
//! grown a bar at a time and shared with every book of the coin (no copy per book per bar).
//!
//! A [`History`] after [`History::advance`] to bar `ts` is exactly `Market::slice(0..k)` of
//! its source (the candle store, or the market a replay runs over), `k` the bars opening at or
//! before `ts`: the same candles, the same funding per bar (the last bar's funding summed over
//! one interval, as [`crate::market::FundingSeries::per_bar`] does for a history that ends
//! there) and the same Fear & Greed values. Growing by one bar costs a constant amount; a
//! source that does not extend what the history holds (another file, bars rewritten) rebuilds
//! it.

use std::sync::Arc;

use crate::market::{csv::FearGreed, Candles, FundingSeries, Market, HOUR_MS};

/// Each coin's history, keyed by coin: what a session's bar, kill switch and resume see.
pub type Histories = std::collections::BTreeMap<String, Arc<Market>>;

/// Where a source's Fear & Greed values come from.
#[derive(Debug, Clone, Copy)]
pub enum FearGreedSource<'a> {
    /// No index: the history has none.
    None,
    /// The daily index (a bar sees the value of the latest UTC day before its own).
    Daily(&'a FearGreed),
    /// Values already aligned to the source's bars.
    PerBar(&'a [f64]),
}

/// What a history grows from: a coin's whole stored record.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub coin: &'a str,
    pub candles: &'a Candles,
    pub funding: &'a FundingSeries,
    pub fear_greed: FearGreedSource<'a>,
}

impl<'a> Source<'a> {
    /// A market as a source (its own Fear & Greed values, aligned).
    pub fn of(m: &'a Market) -> Self {
        Source {
            coin: &m.coin,
            candles: &m.candles,
            funding: &m.funding,
            fear_greed: m
                .fear_greed
                .as_deref()
                .map_or(FearGreedSource::None, FearGreedSource::PerBar),
        }
    }

    fn fear_greed_at(&self, t: usize) -> Option<f64> {
        match self.fear_greed {
            FearGreedSource::None => None,
            FearGreedSource::PerBar(v) => Some(v.get(t).copied().unwrap_or(f64::NAN)),
            FearGreedSource::Daily(fg) => {
                let day = self.candles.ts[t].div_euclid(86_400_000);
                let j = fg.day.partition_point(|&d| d < day);
                Some(if j == 0 {
                    f64::NAN
                } else {
                    f64::from(fg.value[j - 1])
                })
            }
        }
    }
}

/// One coin's history so far (see the module documentation).
#[derive(Debug, Clone)]
pub struct History {
    market: Arc<Market>,
    /// The smallest difference between consecutive bars so far (the history's interval).
    min_step: Option<i64>,
}

impl History {
    /// An empty history of `coin`.
    pub fn new(coin: &str) -> Self {
        History {
            market: Arc::new(Market::new(
                coin,
                Candles::default(),
                FundingSeries::default(),
            )),
            min_step: None,
        }
    }

    /// The bars so far, shared.
    pub fn market(&self) -> &Arc<Market> {
        &self.market
    }

    /// Bars so far.
    pub fn len(&self) -> usize {
        self.market.candles.len()
    }

    /// Whether no bar is held yet.
    pub fn is_empty(&self) -> bool {
        self.market.candles.is_empty()
    }

    /// Grows the history to the source's bars opening at or before `ts` (every bar of the
    /// source for `i64::MAX`). Past bars are kept unless the source no longer starts with them,
    /// or the history already reaches past `ts`; then it is rebuilt from the source.
    pub fn advance(&mut self, src: Source<'_>, ts: i64) {
        let want = src.candles.ts.partition_point(|&t| t <= ts);
        let have = self.len();
        let fg_kind_matches = matches!(
            (&self.market.fear_greed, src.fear_greed),
            (None, FearGreedSource::None)
                | (
                    Some(_),
                    FearGreedSource::Daily(_) | FearGreedSource::PerBar(_)
                )
        );
        let extends = have <= want
            && fg_kind_matches
            && self.market.coin == src.coin
            && self.market.funding.ts.len() <= src.funding.ts.len()
            && (have == 0
                || (src.candles.ts[have - 1] == self.market.candles.ts[have - 1]
                    && src.candles.close[have - 1] == self.market.candles.close[have - 1]));
        if !extends {
            *self = History::new(src.coin);
            if !matches!(src.fear_greed, FearGreedSource::None) {
                Arc::make_mut(&mut self.market).fear_greed = Some(Vec::new());
            }
        }
        let have = self.len();
        if have == want && self.market.funding.ts.len() == src.funding.ts.len() {
            return;
        }
        let m = Arc::make_mut(&mut self.market);
        let f = &mut m.funding;
        let known = f.ts.len();
        f.ts.extend_from_slice(&src.funding.ts[known..]);
        f.rate.extend_from_slice(&src.funding.rate[known..]);
        let c = src.candles;
        for t in have..want {
            m.candles.push(
                c.ts[t],
                c.open[t],
                c.high[t],
                c.low[t],
                c.close[t],
                c.volume[t],
            );
            if t > 0 {
                let step = c.ts[t] - c.ts[t - 1];
                self.min_step = Some(self.min_step.map_or(step, |s| s.min(step)));
            }
            if let (Some(v), Some(x)) = (m.fear_greed.as_mut(), src.fear_greed_at(t)) {
                v.push(x);
            }
            m.funding_per_bar.push(0.0);
        }
        // Funding per bar: every bar but the last sums the events up to the next bar; the last
        // one, over one interval. Only the last two can have changed.
        let n = m.candles.len();
        let iv = self.min_step.unwrap_or(HOUR_MS);
        let from = have.min(n).saturating_sub(1);
        for t in from..n {
            let lo = m.candles.ts[t];
            let hi = if t + 1 < n {
                m.candles.ts[t + 1]
            } else {
                m.candles.ts[t] + iv
            };
            m.funding_per_bar[t] = bucket(&m.funding, lo, hi);
        }
    }
}

/// The funding events in `[lo, hi)`, summed in order from zero (as `per_bar` sums them).
fn bucket(f: &FundingSeries, lo: i64, hi: i64) -> f64 {
    let a = f.ts.partition_point(|&t| t < lo);
    let b = f.ts.partition_point(|&t| t < hi);
    let mut s = 0.0;
    for &r in &f.rate[a..b.max(a)] {
        s += r;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hourly bars with a gap and a 30-minute step, funding events inside, between and after
    /// bars, and a Fear & Greed index with a missing day.
    fn market() -> (Market, FearGreed) {
        let h = HOUR_MS;
        let day = 86_400_000;
        let t0 = 19_723 * day;
        let ts = [
            t0,
            t0 + h,
            t0 + 2 * h,
            t0 + 5 * h,
            t0 + 6 * h,
            t0 + day,
            t0 + day + 30 * 60_000,
            t0 + 3 * day,
        ];
        let mut c = Candles::default();
        for (i, &t) in ts.iter().enumerate() {
            let x = 100.0 + i as f64;
            c.push(t, x, x + 1.0, x - 1.0, x + 0.5, 10.0 * x);
        }
        let mut f = FundingSeries::default();
        for (k, &t) in [
            t0 - h,
            t0,
            t0 + h / 2,
            t0 + 3 * h,
            t0 + 4 * h,
            t0 + 6 * h + 10,
            t0 + 7 * h,
            t0 + day + 45 * 60_000,
            t0 + 3 * day + h,
        ]
        .iter()
        .enumerate()
        {
            f.ts.push(t);
            f.rate.push(1e-4 * (k as f64 + 1.0));
        }
        let fg = FearGreed {
            day: vec![19_722, 19_723, 19_725],
            value: vec![40, 55, 70],
        };
        (Market::new("BTC", c, f), fg)
    }

    #[test]
    fn a_history_grown_bar_by_bar_is_the_slice_of_its_source_at_every_bar() {
        let (m, fg) = market();
        let m = m.with_fear_greed(&fg);
        let mut h = History::new("BTC");
        for k in 1..=m.candles.len() {
            h.advance(Source::of(&m), m.candles.ts[k - 1]);
            assert_eq!(**h.market(), m.slice(0..k), "after {k} bars");
        }
        // The daily index as the source gives the same values.
        let plain = Market::new("BTC", m.candles.clone(), m.funding.clone());
        let mut d = History::new("BTC");
        for k in 1..=m.candles.len() {
            let src = Source {
                fear_greed: FearGreedSource::Daily(&fg),
                ..Source::of(&plain)
            };
            d.advance(src, m.candles.ts[k - 1]);
            assert_eq!(**d.market(), m.slice(0..k), "daily index, after {k} bars");
        }
    }

    #[test]
    fn the_funding_of_the_last_bar_spans_one_interval_and_grows_to_the_next_bar() {
        let (m, _) = market();
        let mut h = History::new("BTC");
        // Bar 2 (t0 + 2h) is the last: it sums [t0 + 2h, t0 + 3h), which holds no event; the
        // event at t0 + 3h waits for bar 3.
        h.advance(Source::of(&m), m.candles.ts[2]);
        assert_eq!(h.market().funding_per_bar, vec![2e-4 + 3e-4, 0.0, 0.0]);
        // With bar 3 (t0 + 5h) bar 2 spans the gap: the events at t0 + 3h and t0 + 4h.
        h.advance(Source::of(&m), m.candles.ts[3]);
        assert_eq!(h.market().funding_per_bar[2], 4e-4 + 5e-4);
        assert_eq!(h.market().funding_per_bar[3], 0.0);
    }

    #[test]
    fn a_source_that_does_not_extend_the_history_rebuilds_it() {
        let (m, _) = market();
        let mut h = History::new("BTC");
        h.advance(Source::of(&m), i64::MAX);
        assert_eq!(h.len(), 8);
        // Back in time: the history is the shorter slice.
        h.advance(Source::of(&m), m.candles.ts[3]);
        assert_eq!(**h.market(), m.slice(0..4));
        // Another record (a close rewritten) is read afresh.
        let mut other = m.clone();
        other.candles.close[3] = 1.0;
        let other = Market::new("BTC", other.candles, other.funding);
        h.advance(Source::of(&other), m.candles.ts[5]);
        assert_eq!(**h.market(), other.slice(0..6));
        // Nothing new: the same shared market, not a copy.
        let before = Arc::as_ptr(h.market());
        h.advance(Source::of(&other), m.candles.ts[5]);
        assert_eq!(Arc::as_ptr(h.market()), before);
    }
}
