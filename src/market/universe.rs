//! Finding and loading a universe of coins: a data directory (`candles/<source>_<COIN>_<interval>.csv`
//! and `funding/<source>_<COIN>.csv`), a bare candles folder, a single candle CSV, or the
//! built-in synthetic market.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::{
    csv::{load_candles, load_funding},
    synthetic::{self, SyntheticParams},
    timerange::TimeRange,
    DataError, FundingSeries, Market,
};

/// What to load.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataSelection {
    /// A data directory, a candles folder or one candle CSV; `None` for the synthetic market.
    pub path: Option<PathBuf>,
    /// Candle interval in file names, e.g. `1h`.
    pub interval: String,
    /// Source prefix in file names (e.g. `hyperliquid`); empty accepts any single source.
    pub source: String,
    /// Coins to keep; empty keeps all.
    pub coins: Vec<String>,
    /// Bars to keep; `None` keeps all.
    pub timerange: Option<TimeRange>,
    /// Parameters of the synthetic market, used when `path` is `None`.
    pub synthetic: SyntheticParams,
}

/// The coins a run trades, sorted by coin name, plus notes about the data (gaps, missing
/// funding) for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Universe {
    pub markets: Vec<Market>,
    /// Where the data came from, for messages.
    pub origin: String,
    /// Things the user should know about the data (gaps, missing funding). Said once each.
    pub notes: Vec<String>,
}

impl Universe {
    /// The market of `coin` (case-insensitive).
    pub fn market(&self, coin: &str) -> Option<&Market> {
        self.markets
            .iter()
            .find(|m| m.coin.eq_ignore_ascii_case(coin))
    }

    /// The first and the last bar open time over all coins (0, 0 when there are none).
    pub fn span(&self) -> (i64, i64) {
        let first = self
            .markets
            .iter()
            .filter_map(|m| m.candles.ts.first().copied())
            .min()
            .unwrap_or(0);
        let last = self
            .markets
            .iter()
            .filter_map(|m| m.candles.ts.last().copied())
            .max()
            .unwrap_or(0);
        (first, last)
    }

    /// The coin names in order.
    pub fn coins(&self) -> Vec<&str> {
        self.markets.iter().map(|m| m.coin.as_str()).collect()
    }
}

/// Splits `<source>_<COIN>_<interval>.csv` into its parts.
fn parse_name(file_name: &str) -> Option<(&str, &str, &str)> {
    let stem = file_name.strip_suffix(".csv")?;
    let mut parts = stem.splitn(3, '_');
    let source = parts.next()?;
    let coin = parts.next()?;
    let interval = parts.next()?;
    (!source.is_empty() && !coin.is_empty() && !interval.is_empty() && !interval.contains('_'))
        .then_some((source, coin, interval))
}

/// Loads the selection, cut to its time range.
///
/// # Errors
/// [`DataError`] for a missing path, no matching candle files, a coin present in several
/// sources without a source chosen, any file that fails validation, or a time range that holds
/// no bar.
pub fn load_universe(sel: &DataSelection) -> Result<Universe, DataError> {
    let mut u = load_all(sel)?;
    let Some(range) = sel.timerange else {
        return Ok(u);
    };
    let (first, last) = u.span();
    u.markets = u
        .markets
        .into_iter()
        .filter_map(|m| {
            let r = range.bars(&m.candles);
            (!r.is_empty()).then(|| m.slice(r))
        })
        .collect();
    if u.markets.is_empty() {
        let (y0, m0, d0, _, _) = super::civil(first);
        let (y1, m1, d1, _, _) = super::civil(last);
        return Err(DataError::Selection(format!(
            "{}: no bar in timerange {range} (the data spans {y0:04}{m0:02}{d0:02}-{y1:04}{m1:02}{d1:02})",
            u.origin
        )));
    }
    u.origin = format!("{} [{range}]", u.origin);
    Ok(u)
}

/// The Fear & Greed file a data folder may hold (`date,value`, see [`super::csv::load_fear_greed`]).
pub const FEAR_GREED_FILE: &str = "fear_greed.csv";

/// The Fear & Greed file of data folder `path`: in it, in its candles folder, or beside that.
pub fn fear_greed_file(path: &Path) -> Option<PathBuf> {
    let candles_dir = if path.join("candles").is_dir() {
        path.join("candles")
    } else {
        path.to_path_buf()
    };
    [
        path.join(FEAR_GREED_FILE),
        candles_dir.join(FEAR_GREED_FILE),
        candles_dir.join("..").join(FEAR_GREED_FILE),
    ]
    .into_iter()
    .find(|f| f.is_file())
}

fn load_all(sel: &DataSelection) -> Result<Universe, DataError> {
    let Some(path) = &sel.path else {
        let mut u = synthetic::generate(&sel.synthetic);
        if !sel.coins.is_empty() {
            u.markets
                .retain(|m| sel.coins.iter().any(|c| c.eq_ignore_ascii_case(&m.coin)));
            if u.markets.is_empty() {
                return Err(DataError::Selection(format!(
                    "none of the coins {:?} is in the synthetic market ({})",
                    sel.coins,
                    sel.synthetic.coins.join(", ")
                )));
            }
        }
        return Ok(u);
    };
    if path.is_file() {
        return load_single_file(path);
    }
    if !path.is_dir() {
        return Err(DataError::Selection(format!(
            "{}: no such file or directory",
            path.display()
        )));
    }
    let candles_dir = if path.join("candles").is_dir() {
        path.join("candles")
    } else {
        path.clone()
    };
    let entries = fs::read_dir(&candles_dir).map_err(|source| DataError::Io {
        file: candles_dir.clone(),
        source,
    })?;
    let mut found: Vec<(String, String, PathBuf)> = Vec::new(); // (coin, source, path)
    let mut seen_any = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((source, coin, interval)) = parse_name(&name) else {
            continue;
        };
        seen_any.push(name.clone());
        if interval != sel.interval {
            continue;
        }
        if !sel.source.is_empty() && source != sel.source {
            continue;
        }
        if !sel.coins.is_empty() && !sel.coins.iter().any(|c| c.eq_ignore_ascii_case(coin)) {
            continue;
        }
        found.push((coin.to_string(), source.to_string(), entry.path()));
    }
    found.sort();
    if found.is_empty() {
        seen_any.sort();
        return Err(DataError::Selection(format!(
            "{}: no candle file matches source `{}`, interval `{}`{} (files are named \
             <source>_<COIN>_<interval>.csv; found: {})",
            candles_dir.display(),
            if sel.source.is_empty() {
                "*"
            } else {
                &sel.source
            },
            sel.interval,
            if sel.coins.is_empty() {
                String::new()
            } else {
                format!(", coins {}", sel.coins.join(","))
            },
            if seen_any.is_empty() {
                "none".to_string()
            } else {
                seen_any.join(", ")
            }
        )));
    }
    for w in found.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(DataError::Selection(format!(
                "{}: coin {} has files from sources `{}` and `{}`; choose one with --source \
                 or data.source",
                candles_dir.display(),
                w[0].0,
                w[0].1,
                w[1].1
            )));
        }
    }
    let mut u = Universe {
        markets: Vec::new(),
        origin: candles_dir.display().to_string(),
        notes: Vec::new(),
    };
    for (coin, source, file) in found {
        let candles = load_candles(&file)?;
        let funding_file = find_funding(&candles_dir, &source, &coin);
        let funding = load_optional_funding(funding_file.as_deref(), &coin, &mut u.notes)?;
        push_market(&mut u, coin, candles, funding);
    }
    if let Some(f) = fear_greed_file(path) {
        let fg = super::csv::load_fear_greed(&f)?;
        u.markets = u
            .markets
            .into_iter()
            .map(|m| m.with_fear_greed(&fg))
            .collect();
        u.notes.push(format!(
            "Fear & Greed index from {} ({} days)",
            f.display(),
            fg.day.len()
        ));
    }
    Ok(u)
}

/// The funding file of `source`/`coin` for candles in `candles_dir`: in `candles_dir/funding`
/// or, in the data layout, `candles_dir/../funding`.
fn find_funding(candles_dir: &Path, source: &str, coin: &str) -> Option<PathBuf> {
    let name = format!("{source}_{coin}.csv");
    [
        Some(candles_dir.join("funding")),
        candles_dir.parent().map(|p| p.join("funding")),
    ]
    .into_iter()
    .flatten()
    .map(|d| d.join(&name))
    .find(|p| p.is_file())
}

fn load_single_file(path: &Path) -> Result<Universe, DataError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (coin, funding_file) = match parse_name(&name) {
        Some((source, coin, _)) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            (coin.to_string(), find_funding(dir, source, coin))
        }
        None => (name.strip_suffix(".csv").unwrap_or(&name).to_string(), None),
    };
    let candles = load_candles(path)?;
    let mut u = Universe {
        markets: Vec::new(),
        origin: path.display().to_string(),
        notes: Vec::new(),
    };
    let funding = load_optional_funding(funding_file.as_deref(), &coin, &mut u.notes)?;
    push_market(&mut u, coin, candles, funding);
    Ok(u)
}

fn load_optional_funding(
    file: Option<&Path>,
    coin: &str,
    notes: &mut Vec<String>,
) -> Result<FundingSeries, DataError> {
    match file {
        Some(f) => load_funding(f),
        None => {
            notes.push(format!(
                "{coin}: no funding file found; funding counts as zero"
            ));
            Ok(FundingSeries::default())
        }
    }
}

fn push_market(u: &mut Universe, coin: String, candles: super::Candles, funding: FundingSeries) {
    let gaps = candles.gaps();
    if gaps.gaps > 0 {
        u.notes.push(format!(
            "{coin}: {} gap(s) in the candles, {} bar(s) missing (not filled)",
            gaps.gaps, gaps.missing_bars
        ));
    }
    if let Some(note) = funding_coverage(&funding, &candles) {
        u.notes.push(format!("{coin}: {note}"));
    }
    u.markets.push(Market::new(coin, candles, funding));
}

/// A note when the funding series does not cover the candles. The funding interval (the
/// smallest gap between funding times: 1 h on Hyperliquid, 8 h on Binance) is allowed at each
/// end: 8-hourly funding that ends at 16:00 covers candles that end at 23:00.
fn funding_coverage(f: &FundingSeries, c: &super::Candles) -> Option<String> {
    let (Some(&first), Some(&last)) = (f.ts.first(), f.ts.last()) else {
        return None;
    };
    let iv =
        f.ts.windows(2)
            .map(|w| w[1] - w[0])
            .filter(|&d| d > 0)
            .min()
            .unwrap_or(super::HOUR_MS);
    let (c0, c1) = (c.ts[0], c.ts[c.len() - 1]);
    let late = first >= c0 + iv;
    let early = last + iv <= c1;
    let day = |ms: i64| {
        let (y, m, d, hh, mm) = super::civil(ms);
        format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}")
    };
    match (late, early) {
        (false, false) => None,
        _ => Some(format!(
            "funding ({} to {} UTC, every {} h) covers only part of the candles ({} to {} UTC); \
             bars outside it pay no funding",
            day(first),
            day(last),
            iv / super::HOUR_MS,
            day(c0),
            day(c1)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funding_coverage_allows_one_funding_interval() {
        let h = super::super::HOUR_MS;
        let mut c = super::super::Candles::default();
        for i in 0..48 {
            c.push(i * h, 1.0, 1.0, 1.0, 1.0, 1.0);
        }
        // 8-hourly at 00, 08, 16 for two days: ends 16:00, candles end 23:00. Complete.
        let every8 = FundingSeries {
            ts: (0..6).map(|i| i * 8 * h).collect(),
            rate: vec![0.0; 6],
        };
        assert_eq!(funding_coverage(&every8, &c), None);
        // Hourly funding that stops 10 hours early is not.
        let hourly = FundingSeries {
            ts: (0..38).map(|i| i * h).collect(),
            rate: vec![0.0; 38],
        };
        let note = funding_coverage(&hourly, &c).unwrap();
        assert!(note.contains("every 1 h"), "{note}");
        // 8-hourly that starts a day late is not.
        let late = FundingSeries {
            ts: (3..6).map(|i| i * 8 * h).collect(),
            rate: vec![0.0; 3],
        };
        assert!(funding_coverage(&late, &c).is_some());
    }

    #[test]
    fn file_names_are_parsed() {
        assert_eq!(
            parse_name("hyperliquid_BTC_1h.csv"),
            Some(("hyperliquid", "BTC", "1h"))
        );
        assert_eq!(parse_name("synth_1h_4y_seed42.csv"), None);
        assert_eq!(parse_name("BTC.csv"), None);
        assert_eq!(parse_name("a_b_c.txt"), None);
    }
}
