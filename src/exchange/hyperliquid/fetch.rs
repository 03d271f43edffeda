//! `organism data fetch`: a venue's candles and funding into the data layout
//! (`candles/<source>_<COIN>_<interval>.csv`, `funding/<source>_<COIN>.csv`), from any
//! [`Source`]: Hyperliquid's `/info` (source `hyperliquid`) or Binance's public REST
//! ([`crate::exchange::binance`], sources `binanceusdm` and `binancespot`).
//!
//! * Candles are paged in windows of at most the source's cap (Hyperliquid's `candleSnapshot`
//!   500 intervals, Binance 1,500 or 1,000), so every answer fits whatever order it returns
//!   them in. Hyperliquid keeps only the most recent 5,000 candles per coin and interval;
//!   longer history is built up by fetching regularly (Binance serves its whole history).
//! * Incremental: an existing file is read (and validated) and only bars after its last one
//!   are requested. Only closed bars are written (the forming bar is left for next time).
//! * Funding is paged (Hyperliquid's `fundingHistory`, 500 records an answer; Binance's
//!   `fundingRate`, 1,000) from just after the last stored record.
//! * Rows are merged in time order without duplicates; every file is written atomically
//!   (temporary file and rename), so an interrupted fetch leaves the previous file intact.
//! * Gaps in the result are counted and reported, never filled.
//! * Replies are checked before they are merged: rows outside the requested window or dated
//!   after now are rejected (and counted), bars must be plausible, funding rates fractions, and
//!   pagination must advance within a bounded number of pages, so a server that ignores
//!   `startTime` / `endTime` can neither corrupt a file nor make a fetch loop.

use std::{
    future::Future,
    path::{Path, PathBuf},
};

use super::{info::InfoClient, interval_ms, Candle, Funding, HlError};
use crate::market::{
    check_bar,
    csv::{candles_to_csv, funding_to_csv, load_candles, load_funding, write_atomic},
    jump, Candles, DataError, FundingSeries, GapReport,
};

/// Errors of a fetch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error(transparent)]
    Api(#[from] HlError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{0}")]
    Invalid(String),
    /// A venue other than Hyperliquid failed or answered what cannot be read.
    #[error("{0}")]
    Venue(String),
}

/// Where a fetch reads: a venue's public candles and funding.
pub trait Source: Sync {
    /// The source prefix of the file names (`hyperliquid`, `binanceusdm`, `binancespot`).
    fn prefix(&self) -> &'static str;
    /// Most bars one candle request returns.
    fn page_bars(&self) -> i64;
    /// Whether the venue has funding to fetch.
    fn has_funding(&self) -> bool;
    /// Hours between two funding records (for the page bound and the gaps).
    fn funding_hours(&self) -> i64;
    /// Most funding records one request returns.
    fn funding_page_rows(&self) -> i64;
    /// The bars of `coin` at `interval` opening in `[from, to]` (ms).
    fn candles(
        &self,
        coin: &str,
        interval: &str,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<Candle>, FetchError>> + Send;
    /// The funding records of `coin` from `from` up to `to` (ms).
    fn funding(
        &self,
        coin: &str,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<Funding>, FetchError>> + Send;
}

impl Source for InfoClient {
    fn prefix(&self) -> &'static str {
        "hyperliquid"
    }

    fn page_bars(&self) -> i64 {
        500
    }

    fn has_funding(&self) -> bool {
        true
    }

    fn funding_hours(&self) -> i64 {
        1
    }

    fn funding_page_rows(&self) -> i64 {
        500
    }

    async fn candles(
        &self,
        coin: &str,
        interval: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<Candle>, FetchError> {
        Ok(self.candle_snapshot(coin, interval, from, to).await?)
    }

    async fn funding(&self, coin: &str, from: i64, to: i64) -> Result<Vec<Funding>, FetchError> {
        Ok(self.funding_history(coin, from, Some(to)).await?)
    }
}

/// What to fetch.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub coins: Vec<String>,
    pub intervals: Vec<String>,
    /// History to request for files that do not exist yet.
    pub days: u32,
    /// Data directory.
    pub out: PathBuf,
    /// Now, ms (from the caller's clock).
    pub now_ms: i64,
    /// Also fetch funding.
    pub funding: bool,
}

/// What a fetch did for one file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    pub path: PathBuf,
    /// Rows before and after.
    pub before: usize,
    pub after: usize,
    /// Gaps in the whole file after the fetch.
    pub gaps: GapReport,
    /// Rows the server sent outside the requested window (before it, after it, or dated after
    /// now): not merged.
    pub rejected: usize,
}

/// Progress callback events.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A page of `n` rows arrived for `what`.
    Page { what: String, rows: usize },
}

fn candle_path(out: &Path, source: &str, coin: &str, interval: &str) -> PathBuf {
    out.join("candles")
        .join(format!("{source}_{coin}_{interval}.csv"))
}

fn funding_path(out: &Path, source: &str, coin: &str) -> PathBuf {
    out.join("funding").join(format!("{source}_{coin}.csv"))
}

/// Runs the fetch; returns one report per file written.
///
/// # Errors
/// [`FetchError`]: an API failure (after retries), an existing file that does not validate, or
/// a bad request (unknown interval). Files written before the failure stay written.
pub async fn fetch<S: Source>(
    client: &S,
    req: &FetchRequest,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Vec<FileReport>, FetchError> {
    // A coin name becomes part of a file name: only a real one is joined into a path.
    for coin in &req.coins {
        crate::market::types::Coin::new(coin)
            .map_err(|m| FetchError::Invalid(format!("--coins: {m}")))?;
    }
    let mut reports = Vec::new();
    for coin in &req.coins {
        for interval in &req.intervals {
            reports.push(fetch_candles(client, req, coin, interval, progress).await?);
        }
        if req.funding && client.has_funding() {
            reports.push(fetch_funding(client, req, coin, progress).await?);
        }
    }
    Ok(reports)
}

async fn fetch_candles<S: Source>(
    client: &S,
    req: &FetchRequest,
    coin: &str,
    interval: &str,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<FileReport, FetchError> {
    let iv = interval_ms(interval).ok_or_else(|| {
        FetchError::Invalid(format!(
            "unknown interval `{interval}` (1m 3m 5m 15m 30m 1h 2h 4h 8h 12h 1d 3d 1w)"
        ))
    })?;
    let path = candle_path(&req.out, client.prefix(), coin, interval);
    let mut candles = if path.is_file() {
        load_candles(&path)?
    } else {
        Candles::default()
    };
    let before = candles.len();
    let mut cursor = match candles.ts.last() {
        Some(&last) => last + iv,
        None => (req.now_ms - i64::from(req.days) * 86_400_000).div_euclid(iv) * iv,
    };
    // Only closed bars: open time + interval <= now.
    let last_closed = (req.now_ms - iv).div_euclid(iv) * iv;
    let mut rejected = 0;
    while cursor <= last_closed {
        let window_end = (cursor + (client.page_bars() - 1) * iv).min(last_closed);
        let mut page = client.candles(coin, interval, cursor, window_end).await?;
        page.sort_by_key(|c| c.t);
        progress(Progress::Page {
            what: format!("{coin} {interval}"),
            rows: page.len(),
        });
        for c in page {
            let newest = candles.ts.last().copied();
            if c.t < cursor || c.t > window_end {
                rejected += 1; // outside the window asked for (or a bar not closed yet)
                continue;
            }
            if newest.is_some_and(|n| c.t <= n) {
                continue; // a duplicate in the same answer
            }
            // Each bar as the loader will check it, its join to the one before included: a page
            // the loader would refuse is refused here, before anything is written.
            let doubt = check_bar(c.open, c.high, c.low, c.close, c.volume)
                .or_else(|| jump(*candles.close.last()?, c.open));
            if let Some(msg) = doubt {
                return Err(FetchError::Invalid(format!(
                    "{coin} {interval} bar at {}: {msg}; the page is refused and {} is left as \
                     it was (fetch again later; if the market really moved so, move the file \
                     aside)",
                    c.t,
                    path.display()
                )));
            }
            candles.push(c.t, c.open, c.high, c.low, c.close, c.volume);
        }
        cursor = window_end + iv;
    }
    if candles.len() > before || !path.is_file() {
        if candles.is_empty() {
            return Err(FetchError::Invalid(format!(
                "{coin} {interval}: the exchange returned no candles (is {coin} listed?)"
            )));
        }
        write_atomic(&path, candles_to_csv(&candles).as_bytes())?;
    }
    Ok(FileReport {
        path,
        before,
        after: candles.len(),
        gaps: candles.gaps(),
        rejected,
    })
}

/// A funding record's rate is a fraction per period (what the loader requires).
fn check_rate(coin: &str, r: &Funding) -> Result<(), FetchError> {
    if r.rate.is_finite() && r.rate.abs() < 1.0 {
        Ok(())
    } else {
        Err(FetchError::Invalid(format!(
            "{coin} funding at {}: rate {}",
            r.time, r.rate
        )))
    }
}

/// Most holes in a stored funding series asked for again per fetch.
const MAX_HOLES: usize = 20;

/// Asks again for the records missing between stored ones more than a period (and ten
/// minutes) apart, from `since` on (the fetch's window), and merges what comes: a hole an
/// earlier fetch left (a page served out of order, a record dropped) is filled once the
/// exchange serves it. Returns the records rejected (outside the hole asked for).
async fn refill_holes<S: Source>(
    client: &S,
    coin: &str,
    f: &mut FundingSeries,
    period: i64,
    since: i64,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<usize, FetchError> {
    let holes: Vec<(i64, i64)> =
        f.ts.windows(2)
            .filter(|w| w[1] - w[0] > period + 600_000 && w[1] > since)
            .map(|w| (w[0], w[1]))
            .take(MAX_HOLES)
            .collect();
    let mut found: Vec<(i64, f64)> = Vec::new();
    let mut rejected = 0;
    for (a, b) in holes {
        let mut page = client.funding(coin, a + 1, b - 1).await?;
        page.sort_by_key(|r| r.time);
        progress(Progress::Page {
            what: format!("{coin} funding (a hole)"),
            rows: page.len(),
        });
        for r in page {
            if r.time <= a || r.time >= b {
                rejected += 1;
                continue;
            }
            check_rate(coin, &r)?;
            if found.last().is_none_or(|l| l.0 < r.time) {
                found.push((r.time, r.rate));
            }
        }
    }
    if !found.is_empty() {
        let mut all: Vec<(i64, f64)> = f.ts.iter().copied().zip(f.rate.iter().copied()).collect();
        all.extend(found);
        all.sort_by_key(|x| x.0);
        all.dedup_by_key(|x| x.0);
        f.ts = all.iter().map(|x| x.0).collect();
        f.rate = all.iter().map(|x| x.1).collect();
    }
    Ok(rejected)
}

async fn fetch_funding<S: Source>(
    client: &S,
    req: &FetchRequest,
    coin: &str,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<FileReport, FetchError> {
    let path = funding_path(&req.out, client.prefix(), coin);
    let mut f = if path.is_file() {
        load_funding(&path)?
    } else {
        FundingSeries::default()
    };
    let before = f.ts.len();
    let period = client.funding_hours() * 3_600_000;
    let since = req.now_ms - i64::from(req.days) * 86_400_000;
    let mut rejected = refill_holes(client, coin, &mut f, period, since, progress).await?;
    let mut cursor = match f.ts.last() {
        Some(&last) => last + 1,
        None => since,
    };
    // At most one record per funding period up to now, a page's worth per page, so this many
    // pages are enough; more means the server is not paging as asked. (Binance funds some
    // coins every 4 h rather than 8: twice the records, hence the factor 2 there.)
    let per_page = client.funding_page_rows() * period / if period > 3_600_000 { 2 } else { 1 };
    let max_pages = ((req.now_ms - cursor).max(0) / per_page + 3) as usize;
    let mut pages = 0;
    loop {
        pages += 1;
        if pages > max_pages {
            return Err(FetchError::Invalid(format!(
                "{coin} funding: the server kept sending new records after {max_pages} pages, \
                 more than funding up to now can fill; it does not page as asked"
            )));
        }
        let mut page = client.funding(coin, cursor, req.now_ms).await?;
        // In time order whatever order the server sent (newest first, shuffled): a record
        // out of order must not hide the ones before it.
        page.sort_by_key(|r| r.time);
        progress(Progress::Page {
            what: format!("{coin} funding"),
            rows: page.len(),
        });
        let mut advanced = false;
        for r in page {
            if r.time < cursor || r.time > req.now_ms {
                rejected += 1; // before the window asked for, or dated in the future
                continue;
            }
            if f.ts.last().is_some_and(|&l| r.time <= l) {
                continue; // a duplicate or out of order in the same answer
            }
            check_rate(coin, &r)?;
            f.ts.push(r.time);
            f.rate.push(r.rate);
            advanced = true;
        }
        match f.ts.last() {
            Some(&last) if advanced => cursor = last + 1,
            _ => break,
        }
    }
    if f.ts.len() > before || (!path.is_file() && !f.ts.is_empty()) {
        write_atomic(&path, funding_to_csv(&f).as_bytes())?;
    }
    let gaps = {
        // Funding gaps: consecutive records more than a period (plus slack) apart.
        let mut g = GapReport::default();
        for w in f.ts.windows(2) {
            let d = w[1] - w[0];
            if d > period + 600_000 {
                g.gaps += 1;
                g.missing_bars += ((d + period / 2) / period - 1) as usize;
            }
        }
        g
    };
    Ok(FileReport {
        path,
        before,
        after: f.ts.len(),
        gaps,
        rejected,
    })
}
