//! Time ranges in freqtrade's `--timerange` format: `START-END`, either end optional, each a
//! date `YYYYMMDD` (00:00 UTC) or a Unix timestamp in seconds (10 digits). The start is
//! inclusive and the end exclusive: `20250101-20250601` keeps the bars that open from
//! 2025-01-01 00:00 up to, not including, 2025-06-01 00:00 UTC.

use serde::{Deserialize, Serialize};

use super::{civil, days_from_civil, Candles};

const DAY_MS: i64 = 86_400_000;

/// A half-open span of bar open times in UTC milliseconds; `None` ends are unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeRange {
    /// First open time kept (inclusive).
    pub start_ms: Option<i64>,
    /// First open time no longer kept (exclusive).
    pub end_ms: Option<i64>,
}

fn parse_end(text: &str, whole: &str) -> Result<Option<i64>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "--timerange {whole}: `{text}` is not a date YYYYMMDD or a Unix time in seconds"
        ));
    }
    match text.len() {
        8 => {
            let y: i64 = text[..4]
                .parse()
                .map_err(|_| format!("--timerange {whole}: bad year"))?;
            let m: u32 = text[4..6]
                .parse()
                .map_err(|_| format!("--timerange {whole}: bad month"))?;
            let d: u32 = text[6..]
                .parse()
                .map_err(|_| format!("--timerange {whole}: bad day"))?;
            let ms = days_from_civil(y, m, d) * DAY_MS;
            // A date that does not exist (20250230) does not come back the same.
            let (y2, m2, d2, _, _) = civil(ms);
            if !(1..=12).contains(&m) || (y2, m2, d2) != (y, m, d) {
                return Err(format!(
                    "--timerange {whole}: {text} is not a calendar date"
                ));
            }
            Ok(Some(ms))
        }
        10 => text
            .parse::<i64>()
            .map(|s| Some(s * 1000))
            .map_err(|_| format!("--timerange {whole}: bad Unix time {text}")),
        _ => Err(format!(
            "--timerange {whole}: `{text}` is not a date YYYYMMDD (8 digits) or a Unix time in \
             seconds (10 digits)"
        )),
    }
}

impl TimeRange {
    /// Parses `START-END` (see the module documentation).
    ///
    /// # Errors
    /// A message naming the part that is not a date or a Unix time, or an empty range.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let Some((a, b)) = t.split_once('-') else {
            return Err(format!(
                "--timerange {t}: expected START-END, e.g. 20250101-20250601, 20250101- or -20250601"
            ));
        };
        let r = Self {
            start_ms: parse_end(a, t)?,
            end_ms: parse_end(b, t)?,
        };
        if let (Some(s), Some(e)) = (r.start_ms, r.end_ms) {
            if e <= s {
                return Err(format!("--timerange {t}: the end is not after the start"));
            }
        }
        if r.start_ms.is_none() && r.end_ms.is_none() {
            return Err(format!("--timerange {t}: give a start, an end or both"));
        }
        Ok(r)
    }

    /// Whether a bar opening at `ts` is inside.
    pub fn contains(&self, ts: i64) -> bool {
        self.start_ms.is_none_or(|s| ts >= s) && self.end_ms.is_none_or(|e| ts < e)
    }

    /// The index range of `candles` inside (empty when none is).
    pub fn bars(&self, candles: &Candles) -> std::ops::Range<usize> {
        let ts = &candles.ts;
        let a = self.start_ms.map_or(0, |s| ts.partition_point(|&t| t < s));
        let b = self
            .end_ms
            .map_or(ts.len(), |e| ts.partition_point(|&t| t < e));
        a..b.max(a)
    }
}

impl std::fmt::Display for TimeRange {
    /// Back in the `YYYYMMDD-YYYYMMDD` form (times that are not midnight as Unix seconds).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let end = |v: Option<i64>| match v {
            None => String::new(),
            Some(ms) if ms.rem_euclid(DAY_MS) == 0 => {
                let (y, m, d, _, _) = civil(ms);
                format!("{y:04}{m:02}{d:02}")
            }
            Some(ms) => (ms.div_euclid(1000)).to_string(),
        };
        write!(f, "{}-{}", end(self.start_ms), end(self.end_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freqtrade_forms_parse() {
        // 2025-01-01 00:00 UTC = 1735689600 s; 2025-06-01 = 1748736000 s.
        let r = TimeRange::parse("20250101-20250601").unwrap();
        assert_eq!(r.start_ms, Some(1_735_689_600_000));
        assert_eq!(r.end_ms, Some(1_748_736_000_000));
        assert_eq!(r.to_string(), "20250101-20250601");
        let r = TimeRange::parse("20250101-").unwrap();
        assert_eq!((r.start_ms, r.end_ms), (Some(1_735_689_600_000), None));
        let r = TimeRange::parse("-20250601").unwrap();
        assert_eq!((r.start_ms, r.end_ms), (None, Some(1_748_736_000_000)));
        let r = TimeRange::parse("1527595200-1527618600").unwrap();
        assert_eq!(r.start_ms, Some(1_527_595_200_000));
        assert_eq!(r.to_string(), "1527595200-1527618600");
        assert!(r.contains(1_527_595_200_000));
        assert!(!r.contains(1_527_618_600_000));
    }

    #[test]
    fn bad_ranges_are_named() {
        for (text, part) in [
            ("2025-01-01", "not a date"),
            ("20250230-", "not a calendar date"),
            ("20251301-", "not a calendar date"),
            ("20250601-20250101", "not after the start"),
            ("-", "give a start"),
            ("20250101", "expected START-END"),
            ("2025010-", "8 digits"),
        ] {
            let e = TimeRange::parse(text).unwrap_err();
            assert!(e.contains(part), "{text}: {e}");
        }
    }

    #[test]
    fn bars_are_cut_half_open() {
        let mut c = Candles::default();
        for i in 0..10i64 {
            c.push(i * DAY_MS, 1.0, 1.0, 1.0, 1.0, 1.0);
        }
        let r = TimeRange {
            start_ms: Some(2 * DAY_MS),
            end_ms: Some(5 * DAY_MS),
        };
        assert_eq!(r.bars(&c), 2..5);
        let r = TimeRange {
            start_ms: Some(20 * DAY_MS),
            end_ms: None,
        };
        assert!(r.bars(&c).is_empty());
    }
}
