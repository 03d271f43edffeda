//! Market data: candles as a struct of arrays, funding series, multi-coin universes.
//!
//! Loading (with validation) lives in [`csv`], directory discovery in [`universe`], and the
//! bundled synthetic market in [`synthetic`]. Nothing here computes signals or trades.

pub mod csv;
pub mod membership;
pub mod panel;
pub mod permute;
pub mod synthetic;
pub mod timerange;
pub mod types;
pub mod universe;

use std::path::PathBuf;

pub use universe::{load_universe, DataSelection, Universe};

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a 365-day year, the basis for annualization.
pub const YEAR_MS: i64 = 365 * 24 * HOUR_MS;

/// `YYYY-MM-DD HH:MM` (UTC) of a millisecond timestamp.
pub fn format_ts(ms: i64) -> String {
    let (y, m, d, hh, mm) = civil(ms);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}")
}

/// UTC calendar fields `(year, month, day, hour, minute)` of a millisecond timestamp
/// (proleptic Gregorian, Howard Hinnant's civil-from-days algorithm).
pub fn civil(ms: i64) -> (i64, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m as u32,
        d as u32,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
    )
}

/// Days since 1970-01-01 of a civil date (the inverse of [`civil`]'s date part).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Errors from reading or validating market data. Every variant names the file, and the line
/// where there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: cannot write: {source}")]
    Write {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: line 1: expected header `{expected}`, found `{found}`")]
    Header {
        file: PathBuf,
        expected: &'static str,
        found: String,
    },
    #[error("{file}: line {line}: {message}")]
    Row {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{file}: no data rows")]
    Empty { file: PathBuf },
    #[error("{0}")]
    Selection(String),
}

/// Hourly (or any interval) OHLCV candles as a struct of arrays.
///
/// `ts[i]` is the bar's **open** time in UTC milliseconds. Invariants (checked by the loader and
/// by [`Candles::validate`]): all columns have the same length, timestamps strictly increase,
/// prices are finite and positive, `low <= min(open, close)`, `high >= max(open, close)`,
/// volume is finite and non-negative.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candles {
    pub ts: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
}

impl Candles {
    /// An empty series with room for `n` bars.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            ts: Vec::with_capacity(n),
            open: Vec::with_capacity(n),
            high: Vec::with_capacity(n),
            low: Vec::with_capacity(n),
            close: Vec::with_capacity(n),
            volume: Vec::with_capacity(n),
        }
    }

    /// Number of bars.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// True when there are no bars.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Appends one bar (no validation; see [`Candles::validate`]).
    pub fn push(&mut self, ts: i64, open: f64, high: f64, low: f64, close: f64, volume: f64) {
        self.ts.push(ts);
        self.open.push(open);
        self.high.push(high);
        self.low.push(low);
        self.close.push(close);
        self.volume.push(volume);
    }

    /// The bars `range` as a new series.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Candles {
        Candles {
            ts: self.ts[range.clone()].to_vec(),
            open: self.open[range.clone()].to_vec(),
            high: self.high[range.clone()].to_vec(),
            low: self.low[range.clone()].to_vec(),
            close: self.close[range.clone()].to_vec(),
            volume: self.volume[range].to_vec(),
        }
    }

    /// The bar interval: the smallest difference between consecutive timestamps
    /// (`None` for fewer than two bars).
    pub fn interval_ms(&self) -> Option<i64> {
        self.ts.windows(2).map(|w| w[1] - w[0]).min()
    }

    /// Bars per 365-day year at this series' interval (8,760 for hourly bars; 8,760 when the
    /// interval cannot be determined).
    pub fn bars_per_year(&self) -> f64 {
        bars_per_year_at(self.interval_ms())
    }

    /// Gaps: places where the next bar is more than one interval away, and the number of bars
    /// missing there. Gaps are reported, never filled.
    pub fn gaps(&self) -> GapReport {
        let mut report = GapReport::default();
        let Some(iv) = self.interval_ms() else {
            return report;
        };
        if iv <= 0 {
            return report;
        }
        for w in self.ts.windows(2) {
            let d = w[1] - w[0];
            if d > iv {
                report.gaps += 1;
                report.missing_bars += (d / iv - 1) as usize;
            }
        }
        report
    }

    /// Checks the invariants listed on the type; the error names the first bad bar (0-based).
    pub fn validate(&self) -> Result<(), String> {
        let n = self.ts.len();
        let cols = [&self.open, &self.high, &self.low, &self.close, &self.volume];
        if cols.iter().any(|c| c.len() != n) {
            return Err("columns have different lengths".into());
        }
        for i in 0..n {
            if let Some(msg) = check_bar(
                self.open[i],
                self.high[i],
                self.low[i],
                self.close[i],
                self.volume[i],
            ) {
                return Err(format!("bar {i}: {msg}"));
            }
            if i > 0 && self.ts[i] <= self.ts[i - 1] {
                return Err(format!("bar {i}: timestamp not after the previous bar"));
            }
        }
        Ok(())
    }
}

/// Checks one bar's prices and volume; `None` when it is consistent.
/// A price more than this factor away from its neighbours (a wick against its body, a bar
/// against the previous close) is reported as a data error.
pub const IMPLAUSIBLE: f64 = 10.0;

/// A number for messages: one decimal for ordinary magnitudes, scientific notation for huge or
/// tiny ones (`1e300`, not 301 digits).
pub(crate) fn short_num(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e9 || v.abs() < 1e-4) {
        format!("{v:.3e}")
    } else if v.fract() == 0.0 {
        format!("{v}")
    } else {
        format!("{}", (v * 1e6).round() / 1e6)
    }
}

/// A bar that opens more than [`IMPLAUSIBLE`] times away from the previous close: what the
/// plausibility check says of it.
pub(crate) fn jump(prev_close: f64, open: f64) -> Option<String> {
    let ratio = (open / prev_close).max(prev_close / open);
    (ratio > IMPLAUSIBLE).then(|| {
        format!(
            "implausible bar: open {} is {}x away from the previous close {}",
            short_num(open),
            short_num(ratio),
            short_num(prev_close)
        )
    })
}

pub(crate) fn check_bar(open: f64, high: f64, low: f64, close: f64, volume: f64) -> Option<String> {
    check_shape(open, high, low, close, volume).or_else(|| implausible(open, high, low, close))
}

/// [`check_bar`] without the plausibility check: positive prices, a non-negative volume, and a
/// high and low around the body.
pub(crate) fn check_shape(
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
) -> Option<String> {
    for (name, v) in [
        ("open", open),
        ("high", high),
        ("low", low),
        ("close", close),
    ] {
        if !v.is_finite() || v <= 0.0 {
            return Some(format!("{name} must be a positive number, got {v}"));
        }
    }
    if !volume.is_finite() || volume < 0.0 {
        return Some(format!(
            "volume must be a non-negative number, got {volume}"
        ));
    }
    if high < open.max(close) {
        return Some(format!(
            "high {high} is below max(open, close) = {}",
            open.max(close)
        ));
    }
    if low > open.min(close) {
        return Some(format!(
            "low {low} is above min(open, close) = {}",
            open.min(close)
        ));
    }
    None
}

/// A wick ten times away from the body is a data error, not a market move: what the check
/// found, or `None`.
pub(crate) fn implausible(open: f64, high: f64, low: f64, close: f64) -> Option<String> {
    if high > IMPLAUSIBLE * open.max(close) || low < open.min(close) / IMPLAUSIBLE {
        let (ratio, which) = if high > IMPLAUSIBLE * open.max(close) {
            (high / open.max(close), "high")
        } else {
            (open.min(close) / low, "low")
        };
        return Some(format!(
            "implausible bar: the {which} is {}x away from the body (open {}, close {})",
            short_num(ratio),
            short_num(open),
            short_num(close)
        ));
    }
    None
}

/// Gaps found in a candle series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GapReport {
    /// Places where consecutive bars are more than one interval apart.
    pub gaps: usize,
    /// Bars absent at those places.
    pub missing_bars: usize,
}

/// A funding-rate series: `rate[i]` is the fraction paid per funding interval at `ts[i]`
/// (positive: longs pay shorts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FundingSeries {
    pub ts: Vec<i64>,
    pub rate: Vec<f64>,
}

impl FundingSeries {
    /// Sums the funding events falling inside each bar: event `e` belongs to bar `t` when
    /// `ts[t] <= e.ts < ts[t+1]` (the last bar spans one interval). Events before the first
    /// bar or after the last are ignored; bars without events get 0.
    pub fn per_bar(&self, candles: &Candles) -> Vec<f64> {
        let n = candles.len();
        let mut out = vec![0.0; n];
        if n == 0 {
            return out;
        }
        let iv = candles.interval_ms().unwrap_or(HOUR_MS);
        let end = candles.ts[n - 1] + iv;
        let mut bar = 0usize;
        for (&ets, &rate) in self.ts.iter().zip(&self.rate) {
            if ets < candles.ts[0] || ets >= end {
                continue;
            }
            while bar + 1 < n && candles.ts[bar + 1] <= ets {
                bar += 1;
            }
            out[bar] += rate;
        }
        out
    }
}

/// One coin's market: candles, its funding series and the funding aligned to bars.
#[derive(Debug, Clone, PartialEq)]
pub struct Market {
    pub coin: String,
    pub candles: Candles,
    pub funding: FundingSeries,
    /// Funding rate summed per bar (see [`FundingSeries::per_bar`]).
    pub funding_per_bar: Vec<f64>,
    /// The Fear & Greed index usable at each bar, when the data has it: the value of the latest
    /// UTC day before the bar's day (a day's value is known only once the day is over), `NaN`
    /// before the index starts.
    pub fear_greed: Option<Vec<f64>>,
}

impl Market {
    /// Builds a market and aligns its funding to the bars.
    pub fn new(coin: impl Into<String>, candles: Candles, funding: FundingSeries) -> Self {
        let funding_per_bar = funding.per_bar(&candles);
        Self {
            coin: coin.into(),
            candles,
            funding,
            funding_per_bar,
            fear_greed: None,
        }
    }

    /// The same market with the daily Fear & Greed index aligned to its bars (see
    /// [`Market::fear_greed`]).
    pub fn with_fear_greed(mut self, fg: &csv::FearGreed) -> Self {
        let mut out = Vec::with_capacity(self.candles.len());
        let mut j = 0usize;
        let mut value = f64::NAN;
        for &t in &self.candles.ts {
            let day = t.div_euclid(86_400_000);
            while j < fg.day.len() && fg.day[j] < day {
                value = f64::from(fg.value[j]);
                j += 1;
            }
            out.push(value);
        }
        self.fear_greed = Some(out);
        self
    }

    /// The bars opening in `[from, to)` (UTC ms), as [`Market::slice`]; `None` when there are
    /// none.
    pub fn between(&self, from: i64, to: i64) -> Option<Self> {
        let ts = &self.candles.ts;
        let a = ts.partition_point(|&t| t < from);
        let b = ts.partition_point(|&t| t < to);
        (b > a).then(|| self.slice(a..b))
    }

    /// Bars `range` of this market (candles, their funding and their Fear & Greed values).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        let mut m = Market::new(
            self.coin.clone(),
            self.candles.slice(range.clone()),
            self.funding.clone(),
        );
        m.fear_greed = self.fear_greed.as_ref().map(|v| v[range].to_vec());
        m
    }
}

/// Bars per 365-day year at `interval` ms a bar ([`Candles::bars_per_year`]; 8,760 when the
/// interval is unknown or not positive).
pub fn bars_per_year_at(interval: Option<i64>) -> f64 {
    match interval {
        Some(iv) if iv > 0 => YEAR_MS as f64 / iv as f64,
        _ => 8760.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candles(ts: &[i64]) -> Candles {
        let mut c = Candles::default();
        for &t in ts {
            c.push(t, 10.0, 11.0, 9.0, 10.0, 1.0);
        }
        c
    }

    #[test]
    fn timestamps_format_as_utc() {
        assert_eq!(format_ts(0), "1970-01-01 00:00");
        assert_eq!(format_ts(1_704_067_200_000), "2024-01-01 00:00");
        assert_eq!(format_ts(1_725_447_600_000), "2024-09-04 11:00");
        assert_eq!(format_ts(951_782_400_000), "2000-02-29 00:00");
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0));
        assert_eq!(civil(951_782_400_000 + 3_660_000), (2000, 2, 29, 1, 1));
        assert_eq!(civil(-86_400_000), (1969, 12, 31, 0, 0));
        for days in [-1000, 0, 11_016, 19_723, 20_000] {
            let (y, m, d, _, _) = civil(days * 86_400_000);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn fear_greed_is_known_from_the_next_day_on() {
        let day = 86_400_000;
        // 2024-01-01 is day 19723. Bars: day 1 at 00:00 and 23:00, day 2 at 00:00, day 4 at
        // 12:00 (day 3 missing from the index: day 2's value is the latest known).
        let d1 = 19_723 * day;
        let c = candles(&[d1, d1 + 23 * HOUR_MS, d1 + day, d1 + 3 * day + 12 * HOUR_MS]);
        let fg = csv::FearGreed {
            day: vec![19_723, 19_724, 19_726],
            value: vec![10, 20, 40],
        };
        let m = Market::new("T", c, FundingSeries::default()).with_fear_greed(&fg);
        let v = m.fear_greed.as_ref().unwrap();
        assert!(
            v[0].is_nan() && v[1].is_nan(),
            "day 1's value is not known on day 1"
        );
        assert_eq!((v[2], v[3]), (10.0, 20.0));
        let s = m.slice(2..4);
        assert_eq!(s.fear_greed, Some(vec![10.0, 20.0]));
        assert_eq!(s.candles.ts, vec![d1 + day, d1 + 3 * day + 12 * HOUR_MS]);
    }

    #[test]
    fn gaps_are_counted_with_missing_bars() {
        let h = HOUR_MS;
        let c = candles(&[0, h, 2 * h, 5 * h, 6 * h, 8 * h]);
        assert_eq!(
            c.gaps(),
            GapReport {
                gaps: 2,
                missing_bars: 3
            }
        );
        assert_eq!(c.interval_ms(), Some(h));
        assert_eq!(c.bars_per_year(), 8760.0);
    }

    #[test]
    fn funding_is_summed_into_the_bar_that_contains_it() {
        let h = HOUR_MS;
        let c = candles(&[4 * h, 8 * h, 12 * h]);
        let f = FundingSeries {
            ts: vec![0, 4 * h, 5 * h, 7 * h, 8 * h, 15 * h, 16 * h],
            rate: vec![9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        // bar 0 = [4h, 8h): 1+2+3; bar 1 = [8h, 12h): 4; bar 2 = [12h, 16h): 5; 0h and 16h outside.
        assert_eq!(f.per_bar(&c), vec![6.0, 4.0, 5.0]);
    }

    #[test]
    fn validate_names_the_bad_bar() {
        let mut c = candles(&[0, 1, 2]);
        c.high[1] = 9.5;
        let err = c.validate().unwrap_err();
        assert!(err.starts_with("bar 1: high 9.5"), "{err}");
        let mut c = candles(&[0, 2, 2]);
        assert!(c.validate().unwrap_err().contains("bar 2: timestamp"));
        c.ts[2] = 3;
        c.close[0] = -1.0;
        assert!(c.validate().unwrap_err().contains("bar 0: close"));
    }
}
