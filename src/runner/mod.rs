//! The bar-by-bar side of the pipeline: a persisted [`CandleStore`] of closed bars, a
//! [`StrategyRunner`] that, on each new closed bar, computes the strategy's newest target with the
//! code `backtest` uses and steps the [execution engine](crate::execution) with it, and the
//! [paper trading session](paper) built on both.
//!
//! The runner recomputes the seed over the whole stored history from its first bar, so recursive
//! indicators always see the same warm-up and the newest target is exactly the one the
//! whole-history backtest computes for that bar (seeds never look ahead). Indicator series are
//! recomputed per bar (cheap); the ML seeds' fitted models are kept across bars in a
//! [`ModelCache`], so a new bar refits only when the walk-forward schedule reaches a refit bar.

use std::{
    fs::{self, OpenOptions},
    io::Write as _,
    path::{Path, PathBuf},
    sync::Arc,
};

pub mod cycle;
pub mod drift;
pub mod driver;
pub mod feed;
pub mod history;
pub mod journal;
pub mod live;
pub mod paper;
pub mod portfolio;
pub mod rig;

use crate::{
    execution::{Bar, Engine, EngineConfig, Venue},
    market::{
        check_bar,
        csv::{load_candles, load_funding, timestamp_problem, CANDLE_HEADER, FUNDING_HEADER},
        types::{Coin, Interval},
        Candles, DataError, FundingSeries, Market,
    },
    seeds::{apply_regime_at, ml::ModelCache, Carry, Genome, Prepared, RawBar, Traded},
    strategy::{
        regime::{RegimeFilter, Sentiment, Volatility},
        Target,
    },
};

/// Candle-store errors; each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{file}: {message}")]
    Rejected { file: PathBuf, message: String },
}

/// The closed bars (and funding events) of one coin and interval, persisted as append-only CSV
/// files in the data layout: `<dir>/candles/store_<COIN>_<interval>.csv` and
/// `<dir>/funding/store_<COIN>.csv`. Every append is flushed to disk before it returns. A line
/// torn by a crash (no final newline) is cut off when the store is opened again, and a restart
/// continues from the same first bar.
#[derive(Debug)]
pub struct CandleStore {
    candle_file: PathBuf,
    funding_file: PathBuf,
    coin: Coin,
    interval: Interval,
    candles: Candles,
    funding: FundingSeries,
    /// What opening the store repaired (torn lines cut off).
    pub notes: Vec<String>,
}

/// Cuts a torn last line (a crash during an append) and returns a note, or `None`.
fn repair_tail(path: &Path) -> Result<Option<String>, DataError> {
    let io = |source| DataError::Io {
        file: path.to_path_buf(),
        source,
    };
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(None);
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let f = OpenOptions::new().write(true).open(path).map_err(io)?;
    f.set_len(keep as u64).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(Some(format!(
        "{}: cut off a torn last line ({} bytes) left by a crash",
        path.display(),
        bytes.len() - keep
    )))
}

/// The file at `path` as `load` reads it, or the empty default when the file is missing, has
/// no rows yet, or is empty (a crash between its creation and its first line, or a torn header
/// cut off: the next append writes the header).
fn or_empty<T: Default>(
    path: &Path,
    load: fn(&Path) -> Result<T, DataError>,
) -> Result<T, DataError> {
    if fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Ok(T::default());
    }
    match load(path) {
        Err(DataError::Empty { .. }) => Ok(T::default()),
        Err(DataError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(T::default())
        }
        other => other,
    }
}

/// Appends one line (after the header, for a new file) and syncs it to disk.
fn append_line(path: &Path, header: &str, line: &str) -> Result<(), DataError> {
    let io = |source| DataError::Write {
        file: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    let mut text = String::new();
    if f.metadata().map_err(io)?.len() == 0 {
        text.push_str(header);
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_data().map_err(io)
}

impl CandleStore {
    /// Opens (or starts) the store of `coin` at `interval` under `dir`, validating what is there.
    ///
    /// # Errors
    /// [`StoreError`] naming the file and line of a bad row, or a bar off the interval's grid.
    pub fn open(dir: &Path, coin: &Coin, interval: Interval) -> Result<Self, StoreError> {
        let candle_file = dir
            .join("candles")
            .join(format!("store_{coin}_{interval}.csv"));
        let funding_file = dir.join("funding").join(format!("store_{coin}.csv"));
        let mut notes = Vec::new();
        for f in [&candle_file, &funding_file] {
            if let Some(note) = repair_tail(f)? {
                tracing::warn!(file = %f.display(), "{note}");
                notes.push(note);
            }
        }
        let candles = or_empty(&candle_file, load_candles)?;
        let funding = or_empty(&funding_file, load_funding)?;
        let iv = interval.ms();
        if let Some(i) = (1..candles.len()).find(|&i| (candles.ts[i] - candles.ts[0]) % iv != 0) {
            return Err(StoreError::Rejected {
                file: candle_file,
                message: format!(
                    "bar {} at {} is off the {interval} grid of the first bar",
                    i + 1,
                    candles.ts[i]
                ),
            });
        }
        Ok(Self {
            candle_file,
            funding_file,
            coin: coin.clone(),
            interval,
            candles,
            funding,
            notes,
        })
    }

    /// The candle file.
    pub fn path(&self) -> &Path {
        &self.candle_file
    }

    /// Bars stored.
    pub fn len(&self) -> usize {
        self.candles.len()
    }

    /// True when no bar is stored.
    pub fn is_empty(&self) -> bool {
        self.candles.is_empty()
    }

    /// The stored bars.
    pub fn candles(&self) -> &Candles {
        &self.candles
    }

    /// The candle file.
    pub fn file(&self) -> &Path {
        &self.candle_file
    }

    /// Appends one closed bar. It must be later than the last stored bar and on its interval
    /// grid; returns the number of bars missing before it (0 when it follows at once).
    ///
    /// # Errors
    /// [`StoreError::Rejected`] for a bar out of order, off the grid or inconsistent
    /// (high/low/prices), leaving the store unchanged; [`StoreError::Data`] on a write failure.
    #[allow(clippy::too_many_arguments)]
    pub fn append_bar(
        &mut self,
        ts: i64,
        open: f64,
        high: f64,
        low: f64,
        close: f64,
        volume: f64,
    ) -> Result<usize, StoreError> {
        let reject = |message: String| StoreError::Rejected {
            file: self.candle_file.clone(),
            message,
        };
        // Never a row the loader would refuse on reading the store back.
        if let Some(m) = timestamp_problem(ts, true) {
            return Err(reject(m));
        }
        let iv = self.interval.ms();
        let missing = match self.candles.ts.last() {
            Some(&last) if ts <= last => {
                return Err(reject(format!(
                    "bar {ts} is not after the last stored bar {last}"
                )))
            }
            Some(&last) if (ts - last) % iv != 0 => {
                return Err(reject(format!(
                    "bar {ts} is off the {} grid of the stored bars",
                    self.interval
                )))
            }
            Some(&last) => ((ts - last) / iv - 1) as usize,
            None => 0,
        };
        if let Some(msg) = check_bar(open, high, low, close, volume) {
            return Err(reject(format!("bar {ts}: {msg}")));
        }
        append_line(
            &self.candle_file,
            CANDLE_HEADER,
            &format!("{ts},{open},{high},{low},{close},{volume}"),
        )?;
        self.candles.push(ts, open, high, low, close, volume);
        Ok(missing)
    }

    /// Appends one funding event (rate per funding interval).
    ///
    /// # Errors
    /// [`StoreError::Rejected`] for an event not after the last one or a rate that is not a
    /// finite fraction below 1 in magnitude; [`StoreError::Data`] on a write failure.
    pub fn append_funding(&mut self, ts: i64, rate: f64) -> Result<(), StoreError> {
        let reject = |message: String| StoreError::Rejected {
            file: self.funding_file.clone(),
            message,
        };
        if let Some(m) = timestamp_problem(ts, false) {
            return Err(reject(m));
        }
        if let Some(&last) = self.funding.ts.last() {
            if ts <= last {
                return Err(reject(format!(
                    "funding event {ts} is not after the last one {last}"
                )));
            }
        }
        if !(rate.is_finite() && rate.abs() < 1.0) {
            return Err(reject(format!(
                "funding rate {rate} is not a fraction below 1"
            )));
        }
        append_line(&self.funding_file, FUNDING_HEADER, &format!("{ts},{rate}"))?;
        self.funding.ts.push(ts);
        self.funding.rate.push(rate);
        Ok(())
    }

    /// The coin.
    pub fn coin(&self) -> &str {
        self.coin.as_str()
    }

    /// The stored funding events.
    pub fn funding(&self) -> &FundingSeries {
        &self.funding
    }

    /// Time of the last stored funding event.
    pub fn last_funding_ts(&self) -> Option<i64> {
        self.funding.ts.last().copied()
    }

    /// The stored history as a market (funding aligned to the bars).
    pub fn market(&self) -> Market {
        Market::new(
            self.coin.as_str(),
            self.candles.clone(),
            self.funding.clone(),
        )
    }
}

/// One strategy (a seed with its genome, or a program) traded bar by bar through an engine,
/// with an optional regime filter.
pub struct StrategyRunner<V: Venue> {
    strategy: Traded,
    engine: Engine<V>,
    models: Arc<ModelCache>,
    /// The indicator lines and their states after the last decision's history.
    carry: Option<Carry>,
    /// A seed's raw position after bar `b` (`(b, position)`), two bars before the newest
    /// decided: final, since a longer history revises only its last bar's funding.
    state: Option<(usize, f64)>,
    /// Bars of the history already stepped (or skipped as warm-up).
    stepped: usize,
}

/// What one new bar produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The target computed at the bar's close.
    pub target: Target,
    /// Equity after the bar.
    pub equity: f64,
}

/// The strategy's newest target and how the regime filter changed it.
pub struct Decision {
    /// The strategy's own target at the newest bar.
    pub raw: Target,
    /// After the regime filter (the raw target without one).
    pub target: Target,
    /// The newest bar's regimes (`None` when not known yet or without a filter).
    pub volatility: Option<Volatility>,
    pub sentiment: Option<Sentiment>,
    /// Whether the strategy was stepped over the new bar alone, from the state it carried
    /// (otherwise it ran over the whole history).
    pub stepped_alone: bool,
}

impl<V: Venue> StrategyRunner<V> {
    /// A runner of `genome` (genes in bounds), trading through `venue` with `cfg`'s rules.
    pub fn new(genome: Genome, cfg: &EngineConfig, venue: V) -> Self {
        Self::with_engine(genome, Engine::new(cfg, venue))
    }

    /// A runner over an engine already set up (a restored one, see [`Engine::restore`]).
    pub fn with_engine(genome: Genome, engine: Engine<V>) -> Self {
        Self {
            strategy: Traded {
                genome,
                regime: None,
            },
            engine,
            models: Arc::default(),
            carry: None,
            state: None,
            stepped: 0,
        }
    }

    /// The same runner with `filter` applied to every target.
    pub fn with_regime(mut self, filter: Option<RegimeFilter>) -> Self {
        self.strategy.regime = filter;
        self
    }

    /// The same runner with the first `bars` of the history taken as already stepped: warm-up
    /// bars that indicators see but that are not traded, or bars stepped before a restart.
    pub fn after(mut self, bars: usize) -> Self {
        self.stepped = bars;
        self
    }

    /// Takes the first `bars` of the history as stepped without trading them (bars a gap made
    /// the runner skip; see [`StrategyRunner::after`]).
    pub fn skip_to(&mut self, bars: usize) {
        self.stepped = bars;
    }

    /// Bars of the history stepped (or skipped).
    pub fn stepped(&self) -> usize {
        self.stepped
    }

    /// The traded genome.
    pub fn genome(&self) -> &Genome {
        &self.strategy.genome
    }

    /// The engine (trades, position, venue).
    pub fn engine(&self) -> &Engine<V> {
        &self.engine
    }

    /// The engine, for the risk manager's interventions and to drain its venue.
    pub fn engine_mut(&mut self) -> &mut Engine<V> {
        &mut self.engine
    }

    /// Ends the run: trades (an open position marked at the last close) and bars in market.
    pub fn finish(self, history: &Candles) -> (Vec<crate::execution::Trade>, usize) {
        self.engine.finish(history.ts.last().copied().unwrap_or(0))
    }

    /// The target at the newest bar of `history` (every bar from the first one the strategy
    /// sees): what the strategy over the whole history gives there, the regime filter applied
    /// as `backtest --regime` applies it.
    ///
    /// When `history` is the last one grown by a bar, the indicator lines, the regimes and the
    /// ML features continue from their states ([`Prepared::resume`]) and a seed
    /// ([`Genome::next`]) steps the last two bars from its state before them: a cost that
    /// does not grow with the history. Otherwise (the first bar, a gap, a rebuilt history, a
    /// program) the strategy runs over the whole history (fitted models reused).
    ///
    /// # Panics
    /// When `history` is empty.
    pub fn newest(&mut self, history: &Arc<Market>) -> Decision {
        let data = Prepared::resume(Arc::clone(history), self.models.clone(), self.carry.take());
        let t = history.candles.len() - 1;
        let genome = &self.strategy.genome;
        let stepped = match self.state {
            Some((b, s)) if data.resumed() && b + 2 == t => {
                genome.next(&data, t - 1, s).and_then(|before| {
                    Some((before.position, genome.next(&data, t, before.position)?))
                })
            }
            _ => None,
        };
        let stepped_alone = stepped.is_some();
        let (before, bar) = match stepped {
            Some((before, bar)) => (Some(before), bar),
            None => {
                let raw = genome.signals(&data);
                (
                    t.checked_sub(1).map(|u| raw.position[u]),
                    RawBar::of(&raw, t),
                )
            }
        };
        self.state = before.map(|s| (t - 1, s));
        let raw = genome.risk_at(&data, t, bar);
        let (target, regimes) = apply_regime_at(self.strategy.regime.as_ref(), &data, t, raw);
        self.carry = data.into_carry();
        Decision {
            raw,
            target,
            volatility: regimes.as_ref().and_then(|r| r.volatility[t]),
            sentiment: regimes.as_ref().and_then(|r| r.sentiment[t]),
            stepped_alone,
        }
    }

    /// Steps the engine through the newest bar of `history` with `target` as the target
    /// computed at its close; returns the equity after the bar.
    ///
    /// # Panics
    /// When the history did not grow by exactly one bar since the last step (the runner must
    /// see every bar).
    pub fn step(&mut self, history: &Market, target: Target) -> f64 {
        let n = history.candles.len();
        assert_eq!(n, self.stepped + 1, "the runner must step every stored bar");
        let t = n - 1;
        tracing::debug!(
            bar = t,
            ts = history.candles.ts[t],
            position = target.position,
            "new target"
        );
        let equity = self.engine.step_bar(
            Bar::of(&history.candles, t),
            history.funding_per_bar[t],
            target,
        );
        self.stepped = n;
        equity
    }

    /// Live: the newest bar of `history` is over and its orders leave now (see
    /// [`Engine::step_closed`]; the next bar opens at `next_ts`). Returns the equity marked at
    /// the close.
    ///
    /// # Panics
    /// As [`StrategyRunner::step`].
    pub fn step_live(&mut self, history: &Market, target: Target, next_ts: i64) -> f64 {
        let n = history.candles.len();
        assert_eq!(n, self.stepped + 1, "the runner must step every stored bar");
        let t = n - 1;
        let equity = self.engine.step_closed(
            Bar::of(&history.candles, t),
            history.funding_per_bar[t],
            target,
            next_ts,
        );
        self.stepped = n;
        equity
    }

    /// The newest target of `history` and the engine stepped with it. Returns `None` when the
    /// newest bar was already stepped.
    ///
    /// # Panics
    /// As [`StrategyRunner::step`].
    pub fn on_bar(&mut self, history: &Arc<Market>) -> Option<Step> {
        if history.candles.len() == self.stepped {
            return None;
        }
        let target = self.newest(history).target;
        let equity = self.step(history, target);
        Some(Step { target, equity })
    }
}
