//! Finding and loading a universe of coins: a data directory (`candles/<source>_<COIN>_<interval>.csv`
//! and `funding/<source>_<COIN>.csv`), a bare candles folder, a single candle CSV, or the
//! built-in synthetic market.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::{
    csv::{load_candles, load_candles_lenient, load_funding_until},
    panel::Panel,
    synthetic::{self, SyntheticParams},
    timerange::TimeRange,
    DataError, FundingSeries, Market,
};

/// `[data]`: where the candles come from and which of them a command loads.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A data directory, a candles folder or one candle CSV; empty for the synthetic market.
    pub path: String,
    pub interval: String,
    pub source: String,
    /// `all`, `top:N` or coin names; empty keeps every coin.
    pub coins: Vec<String>,
    /// freqtrade-style `START-END`, read at load; empty (`None`) keeps every bar.
    #[serde(deserialize_with = "timerange")]
    pub timerange: Option<TimeRange>,
}

/// `data.timerange`: empty for none, else `START-END`.
fn timerange<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<TimeRange>, D::Error> {
    use serde::Deserialize as _;
    let t = String::deserialize(d)?;
    if t.trim().is_empty() {
        return Ok(None);
    }
    TimeRange::parse(&t)
        .map(Some)
        .map_err(|m| serde::de::Error::custom(m.trim_start_matches("--timerange ").to_string()))
}

impl DataConfig {
    /// Checks every key of the section.
    ///
    /// # Errors
    /// [`crate::settings::Invalid`] naming the first key refused.
    pub fn validate(&self) -> Result<(), crate::settings::Invalid> {
        use crate::settings::Invalid;
        if self.interval.trim().is_empty() {
            return Err(Invalid::new("data.interval", "must not be empty"));
        }
        if !self.coins.is_empty() {
            self.coins
                .join(",")
                .parse::<CoinPick>()
                .map_err(|m| Invalid::new("data.coins", m))?;
        }
        Ok(())
    }

    /// What to load, with `synthetic` for the market when there is no path.
    pub fn selection(&self, synthetic: &SyntheticParams) -> DataSelection {
        DataSelection {
            path: (!self.path.trim().is_empty()).then(|| PathBuf::from(&self.path)),
            interval: self.interval.clone(),
            source: self.source.clone(),
            coins: self.coins.clone(),
            timerange: self.timerange,
            synthetic: synthetic.clone(),
        }
    }
}

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
            if let Some(bad) = sel
                .coins
                .iter()
                .find(|c| !u.markets.iter().any(|m| m.coin.eq_ignore_ascii_case(c)))
            {
                return Err(DataError::Selection(format!(
                    "coin {bad} is not in the synthetic market (coins: {})",
                    sel.synthetic.coins.join(", ")
                )));
            }
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
    let (candles_dir, found) = discover(path, &sel.interval, &sel.source, &sel.coins)?;
    let mut u = Universe {
        markets: Vec::new(),
        origin: candles_dir.display().to_string(),
        notes: Vec::new(),
    };
    // One coin named alone is checked as strictly as ever; among several, one coin's bad file
    // or doubted bar never stops the rest.
    let strict = sel.coins.len() == 1 || found.len() == 1;
    for (coin, source, file) in found {
        let candles = if strict {
            load_candles(&file)?
        } else {
            match load_candles_lenient(&file) {
                Ok((c, doubts)) => match clean_stretch(c, &doubts, &coin, &file, &mut u.notes) {
                    Some(c) => c,
                    None => continue,
                },
                Err(e) => {
                    u.notes.push(format!("{coin}: left out: {e}"));
                    continue;
                }
            }
        };
        let funding_file = find_funding(&candles_dir, &source, &coin);
        let until = funding_until(&candles);
        let funding = load_optional_funding(funding_file.as_deref(), until, &coin, &mut u.notes)?;
        push_market(&mut u, coin, candles, funding);
    }
    if u.markets.is_empty() {
        return Err(DataError::Selection(format!(
            "{}: no coin could be loaded",
            candles_dir.display()
        )));
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

/// A candle file found: (coin, source, path).
type Found = (String, String, PathBuf);

/// The candle files of `path` (a data directory or a candles folder) with `interval`, from
/// `source` (any when empty) and of `coins` (all when empty), sorted by coin: (coin, source,
/// file). Returns the candles folder too.
///
/// # Errors
/// [`DataError`] when the folder cannot be read, no file matches, or a coin has files from two
/// sources and no source is chosen.
fn discover(
    path: &Path,
    interval: &str,
    source: &str,
    coins: &[String],
) -> Result<(PathBuf, Vec<Found>), DataError> {
    let candles_dir = if path.join("candles").is_dir() {
        path.join("candles")
    } else {
        path.to_path_buf()
    };
    let entries = fs::read_dir(&candles_dir).map_err(|source| DataError::Io {
        file: candles_dir.clone(),
        source,
    })?;
    let mut found: Vec<Found> = Vec::new();
    let mut seen_any = Vec::new();
    // Every coin of this source and interval, for naming the choices when one asked for is not
    // among them.
    let mut available: Vec<String> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((file_source, coin, file_interval)) = parse_name(&name) else {
            continue;
        };
        seen_any.push(name.clone());
        if file_interval != interval {
            continue;
        }
        if !source.is_empty() && file_source != source {
            continue;
        }
        available.push(coin.to_string());
        if !coins.is_empty() && !coins.iter().any(|c| c.eq_ignore_ascii_case(coin)) {
            continue;
        }
        found.push((coin.to_string(), file_source.to_string(), entry.path()));
    }
    found.sort();
    available.sort();
    available.dedup();
    let unknown: Vec<&String> = coins
        .iter()
        .filter(|c| !available.iter().any(|a| a.eq_ignore_ascii_case(c)))
        .collect();
    if !unknown.is_empty() && !available.is_empty() {
        return Err(DataError::Selection(format!(
            "{}: no {} {interval} candles for {} (coins: {})",
            candles_dir.display(),
            if source.is_empty() { "*" } else { source },
            unknown
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            available.join(", ")
        )));
    }
    if found.is_empty() {
        seen_any.sort();
        return Err(DataError::Selection(format!(
            "{}: no candle file matches source `{}`, interval `{}`{} (files are named \
             <source>_<COIN>_<interval>.csv; found: {})",
            candles_dir.display(),
            if source.is_empty() { "*" } else { source },
            interval,
            if coins.is_empty() {
                String::new()
            } else {
                format!(", coins {}", coins.join(","))
            },
            match seen_any.len() {
                0 => "none".to_string(),
                1..=12 => seen_any.join(", "),
                n => format!("{}, … and {} more", seen_any[..12].join(", "), n - 12),
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
    Ok((candles_dir, found))
}

/// The longest stretch of `c` that a doubted bar does not touch: each doubted bar and the day
/// after it are cut out, and a single-coin strategy trades what is left on one side of them
/// (one note per coin says what was kept).
fn clean_stretch(
    c: super::Candles,
    doubts: &[super::csv::Doubt],
    coin: &str,
    file: &Path,
    notes: &mut Vec<String>,
) -> Option<super::Candles> {
    if doubts.is_empty() {
        return Some(c);
    }
    let mut best = 0..0;
    let mut from = 0;
    for d in doubts {
        if d.bar > from && d.bar - from > best.len() {
            best = from..d.bar;
        }
        let until = c.ts[d.bar] + super::membership::DAY_MS;
        from = from.max(c.ts.partition_point(|&x| x < until));
    }
    if c.len() > from && c.len() - from > best.len() {
        best = from..c.len();
    }
    let kept = if best.is_empty() {
        String::from("no bar is left")
    } else {
        format!(
            "kept the {} bars from {} to {}",
            best.len(),
            super::format_ts(c.ts[best.start]),
            super::format_ts(c.ts[best.end - 1])
        )
    };
    notes.push(doubt_note(
        coin,
        doubts,
        file,
        &format!("{kept}, the longest stretch without one (a day after each left out too)"),
    ));
    (!best.is_empty()).then(|| c.slice(best))
}

/// The one note of a coin with doubted bars: how many, the first with its file and line, and
/// `then` (what was done about them).
fn doubt_note(coin: &str, doubts: &[super::csv::Doubt], file: &Path, then: &str) -> String {
    let first = doubts.first().map_or(String::new(), |d| {
        format!(
            " (first: {}: line {}: {})",
            file.display(),
            d.line,
            d.message
        )
    });
    format!(
        "{coin}: {} bar(s) the plausibility check doubts{first}; {then}",
        doubts.len()
    )
}

/// What `--coins` picks from a universe of many coins.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CoinPick {
    /// Every coin found, less [`NOT_CRYPTO`] and the exclusions.
    All,
    /// At each rebalance, the N members of largest trailing volume (point in time; loading
    /// keeps every coin, as [`CoinPick::All`]).
    Top(usize),
    /// These coins (case-insensitive), and only they.
    List(Vec<String>),
}

impl std::str::FromStr for CoinPick {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        if let Some(n) = s.strip_prefix("top:") {
            return match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Self::Top(n)),
                _ => Err(format!("`{s}`: top:N needs a whole number N of at least 1")),
            };
        }
        let coins: Vec<String> = s
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        if coins.is_empty() {
            return Err("no coin named (use all, top:N or A,B,C)".into());
        }
        super::types::coin_list(&coins)?;
        Ok(Self::List(coins))
    }
}

impl std::fmt::Display for CoinPick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Top(n) => write!(f, "top:{n}"),
            Self::List(c) => f.write_str(&c.join(",")),
        }
    }
}

/// Metals and stablecoin instruments, not crypto: `--coins all` and `top:N` leave them out
/// (naming one in a list trades it).
pub const NOT_CRYPTO: &[&str] = &[
    "XAU", "XAUT", "XAG", "PAXG", "USD1", "USDC", "USDT", "USDE", "FDUSD", "TUSD", "BUSD", "DAI",
    "PYUSD", "EURC", "EUR",
];

/// What a portfolio backtest loads: many coins of one source and interval.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelSelection {
    /// A data directory or a candles folder.
    pub path: PathBuf,
    /// Source prefix in file names; empty accepts any single source.
    pub source: String,
    /// Candle interval in file names.
    pub interval: String,
    pub pick: CoinPick,
    /// Coins left out (case-insensitive).
    pub exclude: Vec<String>,
    /// Bars to keep; `None` keeps all.
    pub timerange: Option<TimeRange>,
    /// Keep [`NOT_CRYPTO`] instruments with [`CoinPick::All`] and [`CoinPick::Top`] too
    /// (`data coverage` lists every file).
    pub keep_not_crypto: bool,
}

/// A panel and what loading it found, for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedPanel {
    pub panel: Panel,
    /// Where the data came from, for messages.
    pub origin: String,
    /// One line per coin that needs one (left out, doubted bars, no funding), and the
    /// exclusions.
    pub notes: Vec<String>,
}

/// Loads many coins onto one grid ([`Panel`]). One coin never fails the whole: a file that does
/// not load is left out with a note naming it; a bar the plausibility check doubts is kept and
/// counted (one note per coin) and [membership](super::membership) keeps the coin out of
/// trading after it; a coin too young for anything is simply not a member yet. `progress` is
/// called with (files done, files) as they load.
///
/// # Errors
/// [`DataError`] when the folder has no matching file, no coin loads, or the time range holds
/// no bar.
pub fn load_panel(
    sel: &PanelSelection,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<LoadedPanel, DataError> {
    let named = match &sel.pick {
        CoinPick::List(c) => c.clone(),
        _ => Vec::new(),
    };
    let (candles_dir, mut found) = discover(&sel.path, &sel.interval, &sel.source, &named)?;
    let mut notes = Vec::new();
    let is = |list: &[&str], coin: &str| list.iter().any(|x| x.eq_ignore_ascii_case(coin));
    let mut dropped: Vec<String> = Vec::new();
    found.retain(|(coin, _, _)| {
        let excluded = sel.exclude.iter().any(|x| x.eq_ignore_ascii_case(coin))
            || (named.is_empty() && !sel.keep_not_crypto && is(NOT_CRYPTO, coin));
        if excluded {
            dropped.push(coin.clone());
        }
        !excluded
    });
    if !dropped.is_empty() {
        notes.push(format!(
            "left out by --exclude or as metals / stablecoins: {}",
            dropped.join(", ")
        ));
    }
    let total = found.len();
    let mut markets = Vec::with_capacity(total);
    let mut doubts = Vec::with_capacity(total);
    for (done, (coin, source, file)) in found.into_iter().enumerate() {
        progress(done, total);
        let (candles, doubted) = match load_candles_lenient(&file) {
            Ok(x) => x,
            Err(e) => {
                notes.push(format!("{coin}: left out: {e}"));
                continue;
            }
        };
        if !doubted.is_empty() {
            notes.push(doubt_note(
                &coin,
                &doubted,
                &file,
                "not traded for a day after each",
            ));
        }
        let funding = match find_funding(&candles_dir, &source, &coin) {
            Some(f) => match load_funding_until(&f, funding_until(&candles)) {
                Ok(x) => x,
                Err(e) => {
                    notes.push(format!("{coin}: funding not used ({e}); it counts as zero"));
                    FundingSeries::default()
                }
            },
            None => FundingSeries::default(),
        };
        let mut market = Market::new(coin, candles, funding);
        let mut bars: Vec<usize> = doubted.iter().map(|d| d.bar).collect();
        if let Some(range) = sel.timerange {
            let r = range.bars(&market.candles);
            if r.is_empty() {
                continue;
            }
            market = market.slice(r.clone());
            bars = bars
                .into_iter()
                .filter(|b| r.contains(b))
                .map(|b| b - r.start)
                .collect();
        }
        markets.push(market);
        doubts.push(bars);
    }
    progress(total, total);
    let without_funding: Vec<&str> = markets
        .iter()
        .filter(|m| m.funding.ts.is_empty())
        .map(|m| m.coin.as_str())
        .collect();
    if !without_funding.is_empty() && without_funding.len() < markets.len() {
        notes.push(format!(
            "no funding file (funding counts as zero): {}",
            without_funding.join(", ")
        ));
    } else if !markets.is_empty() && without_funding.len() == markets.len() {
        notes.push("no funding files: funding counts as zero".into());
    }
    let origin = format!(
        "{} ({} {}{})",
        candles_dir.display(),
        if sel.source.is_empty() {
            "*"
        } else {
            &sel.source
        },
        sel.interval,
        sel.timerange.map(|r| format!(" [{r}]")).unwrap_or_default()
    );
    if markets.is_empty() {
        return Err(DataError::Selection(format!(
            "{origin}: no coin could be loaded{}",
            if sel.timerange.is_some() {
                " with a bar in the time range"
            } else {
                ""
            }
        )));
    }
    let mut panel = Panel::new(markets);
    for (c, d) in panel.coins.iter_mut().zip(doubts) {
        c.doubted = d;
    }
    Ok(LoadedPanel {
        panel,
        origin,
        notes,
    })
}

/// What one coin's data covers (`data coverage`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CoinCoverage {
    pub coin: String,
    /// Open time of its first and last bar, UTC ms.
    pub first_ms: i64,
    pub last_ms: i64,
    pub bars: usize,
    /// Places where bars are missing, and how many are.
    pub gaps: usize,
    pub missing_bars: usize,
    /// Funding events, and the first and last (UTC ms; `None` without funding).
    pub funding_events: usize,
    pub funding_first_ms: Option<i64>,
    pub funding_last_ms: Option<i64>,
    /// Share of the candle span (first open to last close) that the funding series spans.
    pub funding_coverage: f64,
    /// Median daily notional volume (`close · volume` per UTC day) over its history.
    pub median_daily_volume: Option<f64>,
    /// Bars the plausibility check doubts.
    pub doubted: usize,
}

/// Per coin of `loaded`, what its data covers.
pub fn coverage(loaded: &LoadedPanel) -> Vec<CoinCoverage> {
    let panel = &loaded.panel;
    let m = super::membership::Membership::new(panel);
    let interval = panel.interval_ms();
    panel
        .coins
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let k = &c.market.candles;
            let f = &c.market.funding;
            let gaps = k.gaps();
            let (first, last) = (k.ts[0], k.ts[k.len() - 1]);
            let span = (last + interval - first) as f64;
            let covered = match (f.ts.first(), f.ts.last()) {
                (Some(&a), Some(&b)) => {
                    let step =
                        f.ts.windows(2)
                            .map(|w| w[1] - w[0])
                            .filter(|d| *d > 0)
                            .min();
                    let end = b + step.unwrap_or(super::HOUR_MS);
                    ((end.min(last + interval) - a.max(first)).max(0) as f64 / span).min(1.0)
                }
                _ => 0.0,
            };
            CoinCoverage {
                coin: c.market.coin.clone(),
                first_ms: first,
                last_ms: last,
                bars: k.len(),
                gaps: gaps.gaps,
                missing_bars: gaps.missing_bars,
                funding_events: f.ts.len(),
                funding_first_ms: f.ts.first().copied(),
                funding_last_ms: f.ts.last().copied(),
                funding_coverage: covered,
                median_daily_volume: m.median_daily(i),
                doubted: c.doubted.len(),
            }
        })
        .collect()
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
    let until = funding_until(&candles);
    let funding = load_optional_funding(funding_file.as_deref(), until, &coin, &mut u.notes)?;
    push_market(&mut u, coin, candles, funding);
    Ok(u)
}

/// The last funding time the candles can go with: [`FUNDING_SLACK_DAYS`] past their last bar
/// (a delisted coin's funding may run on a little after its last candle; a row years ahead is
/// a broken file).
fn funding_until(candles: &super::Candles) -> Option<i64> {
    candles
        .ts
        .last()
        .map(|&t| t + FUNDING_SLACK_DAYS * super::membership::DAY_MS)
}

/// Days past the candles' last bar a funding row may be dated.
pub const FUNDING_SLACK_DAYS: i64 = 45;

fn load_optional_funding(
    file: Option<&Path>,
    until: Option<i64>,
    coin: &str,
    notes: &mut Vec<String>,
) -> Result<FundingSeries, DataError> {
    match file {
        Some(f) => load_funding_until(f, until),
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
