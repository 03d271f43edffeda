//! The paper / live session loop, its sync half: one [`Trader`] (a [`Session`] with its candle
//! stores, the histories it hands the strategies and its journal) that takes the session's
//! events — closed bars with their funding, the clock, control requests. [`super::feed::run`]
//! feeds it from Hyperliquid's WebSocket feed and REST backfill and, live, tends the exchange
//! between bars (`paper run`, `live run`); `paper replay` drives a session over stored bars with
//! [`super::paper::replay`].

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use crate::{
    clock::{Clock, WallClock},
    exchange::hyperliquid::{exchange::ExchangeError, Candle, Funding, HlError},
    market::{
        csv::{load_fear_greed, FearGreed},
        format_ts,
        types::{Coin, Interval},
        universe::FEAR_GREED_FILE,
    },
    promotion::registry::{Registry, RegistryError, Status, Strategy},
    runner::journal::{self, Control, Entry, EquityRow, JournalError, Kind, Row},
};

use super::{
    history::{FearGreedSource, Histories, History, Source},
    paper::{Session, SessionError},
    rig::{self},
    CandleStore, StoreError,
};

/// Paper trading, or live trading (the same session and loop, orders sent to Hyperliquid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Paper,
    Live { dry_run: bool },
}

impl Mode {
    /// `paper` or `live`, as the commands say it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Paper => "paper",
            Mode::Live { .. } => "live",
        }
    }
}

/// What the loop has to say to the person running it.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Where the session stands after a bar, one line (the status line).
    Bar(String),
    /// Something the user must see: a retirement, a reconciliation halt, the kill switch.
    Say(String),
    /// How the session ended when it did not end by itself (Ctrl-C), for stderr.
    Note(String),
}

/// Errors of the session loop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// A request to the exchange failed.
    #[error("{context}")]
    Fetch {
        context: String,
        #[source]
        source: HlError,
    },
    /// The session cannot start or go on as set up (the message says why and what to do).
    #[error("{0}")]
    Refused(String),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

pub(super) fn now_ms() -> i64 {
    WallClock.now_ms()
}

/// A venue's API base URL without a trailing slash, so `…xyz/` and `…xyz` are one venue.
pub fn venue_url(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// The candle store of a session on the venue at `url`: `store` itself for Hyperliquid's
/// mainnet, a subfolder named after the venue for any other (`testnet`, or host and port of
/// a local exchange such as `127.0.0.1-8787`), so bars of one venue never reach another's
/// session.
pub fn venue_store(store: &Path, url: &str) -> PathBuf {
    let url = venue_url(url);
    if url == crate::exchange::hyperliquid::MAINNET_URL {
        return store.to_path_buf();
    }
    if url == crate::exchange::hyperliquid::TESTNET_URL {
        return store.join("testnet");
    }
    let host = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = host.split('/').next().unwrap_or(host);
    let label: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    store.join(if label.trim_matches(['.', '-']).is_empty() {
        "venue".to_string()
    } else {
        label
    })
}

/// The strategies a session of `mode` trades: on paper every promoted strategy and every one
/// already on paper (by id); live those of `live.strategies`, checked (see
/// [`rig::strategies`]).
///
/// # Errors
/// [`RunError::Refused`] when there is none to trade, or a live strategy may not trade.
pub fn strategies(
    reg: &mut Registry,
    reg_path: &Path,
    mode: Mode,
    cfg: &super::paper::RunConfig,
    paper_account: &str,
) -> Result<Vec<Strategy>, RunError> {
    match mode {
        Mode::Paper => {
            let mut v = reg.list(Some(Status::Paper))?;
            v.extend(reg.list(Some(Status::Promoted))?);
            v.sort_by(|x, y| x.id.cmp(&y.id));
            if v.is_empty() {
                return Err(RunError::Refused(format!(
                    "{}: no promoted strategy to trade; `organism promote` admits them",
                    reg_path.display()
                )));
            }
            Ok(v)
        }
        Mode::Live { .. } => rig::strategies(reg, cfg, paper_account),
    }
}

/// A session with its stores, histories and journal: the sync half of the loop.
pub struct Trader {
    mode: Mode,
    reg: Registry,
    session: Session,
    pub(super) stores: BTreeMap<String, CandleStore>,
    histories: BTreeMap<String, History>,
    fear_greed: Option<FearGreed>,
    store_dir: PathBuf,
    stop_file: PathBuf,
    wait_ms: f64,
    /// The bar waited for (every coin but some has it) and since when.
    waiting_since: Option<(i64, i64)>,
    /// Paper: the config new strategies' books are drawn up with, when the session takes the
    /// strategies promoted while it runs; the strategies it could not take (said once).
    adopting: Option<super::paper::RunConfig>,
    refused: std::collections::BTreeSet<String>,
}

/// Opens the candle store of every coin (the notes of a repaired file are logged).
///
/// # Errors
/// [`RunError`] naming the coin or the file.
pub fn open_stores(
    dir: &Path,
    coins: &[String],
    interval: Interval,
) -> Result<BTreeMap<String, CandleStore>, RunError> {
    let mut stores = BTreeMap::new();
    for c in coins {
        let coin = Coin::new(c).map_err(RunError::Refused)?;
        let s = CandleStore::open(dir, &coin, interval)?;
        for note in &s.notes {
            tracing::warn!("{note}");
        }
        stores.insert(c.clone(), s);
    }
    Ok(stores)
}

/// The Fear & Greed index stored beside the candle stores, when there is one that reads.
pub(super) fn stored_fear_greed(dir: &Path) -> Option<FearGreed> {
    let f = dir.join(FEAR_GREED_FILE);
    if !f.exists() {
        return None;
    }
    match load_fear_greed(&f) {
        Ok(fg) => Some(fg),
        Err(e) => {
            tracing::warn!("{e}; no sentiment regime for this bar");
            None
        }
    }
}

/// Appends `bars` to `store` with the funding events of their hours (`funding`, sorted, those
/// after the store's last event and inside a new bar's hour are kept); bars the store already
/// has are skipped.
///
/// # Errors
/// [`StoreError`] when the store refuses a row.
pub fn store_bars(
    store: &mut CandleStore,
    coin: &str,
    iv: i64,
    bars: &[Candle],
    funding: &[Funding],
) -> Result<(), StoreError> {
    let mut k = 0;
    for c in bars {
        if store.candles().ts.last().is_some_and(|&l| c.t <= l) {
            continue;
        }
        while k < funding.len() && funding[k].time < c.t + iv {
            let f = funding[k];
            let after_last = store.last_funding_ts().is_none_or(|l| f.time > l);
            if f.time >= c.t && after_last {
                store.append_funding(f.time, f.rate)?;
            }
            k += 1;
        }
        let missing = store.append_bar(c.t, c.open, c.high, c.low, c.close, c.volume)?;
        if missing > 0 {
            tracing::warn!(
                coin,
                missing,
                "bars before {} could not be had",
                format_ts(c.t)
            );
        }
    }
    Ok(())
}

impl Trader {
    /// The trader of a session over `stores` (with the stored Fear & Greed index
    /// `fear_greed`), journaling into the registry's database.
    pub fn new(
        mode: Mode,
        reg: Registry,
        session: Session,
        stores: BTreeMap<String, CandleStore>,
        fear_greed: Option<FearGreed>,
        (cfg, store_dir): (&super::paper::PaperConfig, PathBuf),
    ) -> Self {
        Trader {
            mode,
            reg,
            session,
            stores,
            histories: BTreeMap::new(),
            fear_greed,
            store_dir,
            stop_file: PathBuf::from(&cfg.stop_file),
            wait_ms: cfg.bar_wait_secs * 1000.0,
            waiting_since: None,
            adopting: None,
            refused: std::collections::BTreeSet::new(),
        }
    }

    /// Paper: the strategies promoted while the session runs (`organism promote`, `organism
    /// cycle`) join it at its next bar, their books drawn up under `cfg` as at the start.
    pub fn adopting(mut self, cfg: super::paper::RunConfig) -> Self {
        self.adopting = Some(cfg);
        self
    }

    /// The rows of the strategies the registry has promoted (or put on paper) that the session
    /// does not trade yet, now joining it: fresh books after the bars processed so far.
    fn adopt_promoted(&mut self, report: &mut dyn FnMut(Notice)) -> Result<Vec<Entry>, RunError> {
        let Some(cfg) = &self.adopting else {
            return Ok(Vec::new());
        };
        let mut listed = self.reg.list(Some(Status::Promoted))?;
        listed.extend(self.reg.list(Some(Status::Paper))?);
        listed.sort_by(|x, y| x.id.cmp(&y.id));
        let have = self.session.strategies();
        let mut new = Vec::new();
        for s in listed {
            if have.contains(s.id.as_str()) || self.refused.contains(&s.id) {
                continue;
            }
            // One that cannot be drawn up is said once and left out; the others join.
            if let Err(e) = super::paper::book_specs(std::slice::from_ref(&s), cfg) {
                report(Notice::Say(format!(
                    "{} cannot join the session: {e}",
                    s.id
                )));
                self.refused.insert(s.id.clone());
                continue;
            }
            new.push(s);
        }
        drop(have);
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let (specs, _) = super::paper::book_specs(&new, cfg).map_err(RunError::Refused)?;
        let h = self.processed();
        let rows = self.session.adopt(specs, &h);
        drop(h);
        let account = self.session.account().to_string();
        for s in &new {
            if s.status == Status::Promoted {
                self.reg.set_status(
                    &s.id,
                    Status::Paper,
                    &format!("paper trading in account `{account}` (joined at its next bar)"),
                    now_ms(),
                )?;
            }
            report(Notice::Say(format!(
                "{} joins the session at its next bar",
                s.id
            )));
        }
        Ok(rows)
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session, for the live rig (linking, reconciliation).
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The session and the journal's database, together (reconciliation halts books and reads
    /// the journal).
    pub fn session_and_journal(&mut self) -> (&mut Session, &rusqlite::Connection) {
        (&mut self.session, self.reg.connection())
    }

    /// Reads the stored Fear & Greed index again (after a refresh); the histories are rebuilt
    /// with it.
    pub fn reload_fear_greed(&mut self) {
        self.fear_greed = stored_fear_greed(&self.store_dir);
        self.histories.clear();
    }

    /// Each coin's stored bars up to and including `ts`, shared with the strategies.
    pub fn histories_upto(&mut self, ts: i64) -> Histories {
        histories_upto(
            &self.stores,
            self.fear_greed.as_ref(),
            &mut self.histories,
            ts,
        )
    }

    fn processed(&mut self) -> Histories {
        let last = self.session.last_ts().unwrap_or(i64::MIN);
        self.histories_upto(last)
    }

    /// Journals `rows` (one transaction).
    ///
    /// # Errors
    /// [`JournalError`] when the write fails.
    pub fn journal(&mut self, rows: &[Entry]) -> Result<(), JournalError> {
        if rows.is_empty() {
            return Ok(());
        }
        let account = self.session.account().to_string();
        journal::append(self.reg.connection(), &account, rows, now_ms())
    }

    /// Processes, in time order, every bar that all coins have, or that waited
    /// `paper.bar_wait_secs` for the coins without it (at `now_ms`), stopping after
    /// `until_ts`: each bar's rows journaled before the next, the registry kept in step.
    /// Returns the bars processed.
    ///
    /// # Errors
    /// [`RunError`] when the journal or the registry refuses a write.
    pub fn process_ready(
        &mut self,
        now_ms: i64,
        until_ts: Option<i64>,
        report: &mut dyn FnMut(Notice),
    ) -> Result<usize, RunError> {
        let mut done = 0;
        loop {
            if self.reached(until_ts) {
                break;
            }
            let last = self.session.last_ts().unwrap_or(i64::MIN);
            let next = self
                .stores
                .values()
                .filter_map(|s| {
                    let ts = &s.candles().ts;
                    ts.get(ts.partition_point(|&t| t <= last)).copied()
                })
                .min();
            let Some(next) = next else { break };
            let lagging = self
                .stores
                .values()
                .any(|s| s.candles().ts.last().is_none_or(|&l| l < next));
            if lagging {
                let since = match self.waiting_since {
                    Some((t, at)) if t == next => at,
                    _ => {
                        self.waiting_since = Some((next, now_ms));
                        now_ms
                    }
                };
                if ((now_ms - since) as f64) < self.wait_ms {
                    break;
                }
            }
            let mut rows = self.adopt_promoted(report)?;
            let h = self.histories_upto(next);
            rows.extend(self.session.on_bar(next, &h));
            drop(h);
            self.journal(&rows)?;
            self.sync_registry(report)?;
            report(Notice::Bar(status_line(&self.session, &rows)));
            done += 1;
        }
        Ok(done)
    }

    /// Whether the session has processed the bar opening at `until_ts`.
    pub fn reached(&self, until_ts: Option<i64>) -> bool {
        until_ts.is_some_and(|u| self.session.last_ts().is_some_and(|l| l >= u))
    }

    /// The control requests waiting: the journal's, then the stop file (id −1).
    ///
    /// # Errors
    /// [`JournalError`] when the journal cannot be read.
    pub fn requests(&mut self) -> Result<Vec<Control>, JournalError> {
        let account = self.session.account().to_string();
        let mut requests = journal::pending(self.reg.connection(), &account)?;
        if self.stop_file.exists() {
            requests.push(Control {
                id: -1,
                action: journal::Action::Stop,
                book: None,
                reason: format!("stop file {}", self.stop_file.display()),
            });
        }
        Ok(requests)
    }

    /// Acts on request `r` (the kill switch flattens every book; resume lifts pauses) and
    /// returns the rows, not yet journaled (live adds the exchange's side of a stop).
    pub fn act(&mut self, r: &Control) -> Vec<Entry> {
        let h = self.processed();
        if r.action == journal::Action::Stop {
            self.session.kill(&r.reason, &h)
        } else {
            self.session.resume(r.book.as_deref(), &r.reason, &h)
        }
    }

    /// Journals what acting on `r` wrote, with `r` marked done in the same transaction (a
    /// stop file is removed after).
    ///
    /// # Errors
    /// [`RunError`] when the journal refuses the write or the stop file cannot be removed.
    pub fn acted(&mut self, r: &Control, rows: &[Entry]) -> Result<(), RunError> {
        let done_ids: Vec<i64> = [r.id].into_iter().filter(|&i| i >= 0).collect();
        let account = self.session.account().to_string();
        journal::append_acting_on(self.reg.connection(), &account, rows, &done_ids, now_ms())?;
        if r.id < 0 {
            std::fs::remove_file(&self.stop_file).map_err(|e| RunError::File {
                path: self.stop_file.clone(),
                message: format!("cannot remove after acting on it: {e}"),
            })?;
        }
        Ok(())
    }

    /// Retires in the registry the strategies the session's lifecycle retired (again after a
    /// crash between the journal and the registry: the journal decides).
    ///
    /// # Errors
    /// [`RegistryError`] when the registry cannot be read or written.
    pub fn sync_registry(&mut self, report: &mut dyn FnMut(Notice)) -> Result<(), RegistryError> {
        for (id, reason) in self.session.retired() {
            if self.reg.get(&id)?.status != Status::Retired {
                self.reg.set_status(
                    &id,
                    Status::Retired,
                    &format!("{}: {reason}", self.mode.name()),
                    now_ms(),
                )?;
                tracing::warn!(strategy = id, "retired: {reason}");
                report(Notice::Say(format!("retired {id}: {reason}")));
            }
        }
        Ok(())
    }
}

/// Each coin's stored bars up to and including `ts` (with the stored Fear & Greed index), the
/// coin's [`History`] grown to it.
pub(super) fn histories_upto(
    stores: &BTreeMap<String, CandleStore>,
    fear_greed: Option<&FearGreed>,
    histories: &mut BTreeMap<String, History>,
    ts: i64,
) -> Histories {
    stores
        .iter()
        .map(|(c, s)| {
            let src = Source {
                coin: s.coin(),
                candles: s.candles(),
                funding: s.funding(),
                fear_greed: fear_greed.map_or(FearGreedSource::None, FearGreedSource::Daily),
            };
            let h = histories
                .entry(c.clone())
                .or_insert_with(|| History::new(s.coin()));
            h.advance(src, ts);
            (c.clone(), h.market().clone())
        })
        .collect()
}

/// Where the session stands, one line.
pub fn status_line(session: &Session, rows: &[Entry]) -> String {
    let eqd = rows
        .iter()
        .rev()
        .find_map(|e| match &e.row {
            Row::Equity(EquityRow::Portfolio(p)) => Some(p.equity.0),
            _ => None,
        })
        .unwrap_or(f64::NAN);
    let fills = rows.iter().filter(|e| e.kind() == Kind::Fill).count();
    let paused = session
        .books()
        .iter()
        .filter(|b| {
            rows.iter().rev().any(|e| {
                e.book == b.spec.key()
                    && matches!(&e.row, Row::Equity(EquityRow::Book(q)) if q.paused.is_some())
            })
        })
        .count();
    format!(
        "bar {} | equity {} | {} books, {} paused | {} fills{}",
        format_ts(session.last_ts().unwrap_or(0)),
        journal::decimal(eqd).round_dp(2),
        session.books().len(),
        paused,
        fills,
        if session.killed() { " | STOPPED" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::venue_store;
    use std::path::Path;

    #[test]
    fn each_venue_has_its_own_candle_store() {
        let s = Path::new("paper/store");
        assert_eq!(venue_store(s, "https://api.hyperliquid.xyz"), s);
        assert_eq!(venue_store(s, "https://api.hyperliquid.xyz/"), s);
        assert_eq!(
            venue_store(s, "https://api.hyperliquid-testnet.xyz"),
            Path::new("paper/store/testnet")
        );
        assert_eq!(
            venue_store(s, "http://127.0.0.1:8787"),
            Path::new("paper/store/127.0.0.1-8787")
        );
        assert_eq!(
            venue_store(s, "http://[::1]:9000/api"),
            Path::new("paper/store/---1--9000")
        );
        assert_eq!(venue_store(s, ""), Path::new("paper/store/venue"));
    }
}
