//! A paper trading session: several strategies on several coins, each a [`Book`] of its own
//! cash traded through a [`StrategyRunner`] over the [paper venue](PaperVenue), with the regime
//! filter, per-book and portfolio risk limits and a kill switch. Every bar's rows go to the
//! [journal](super::journal) in one transaction before the session moves on, and a
//! session is rebuilt from the journal after a crash.
//!
//! Bars are processed in time order across coins: bar `T` once every coin has delivered it (or
//! is known to have skipped it), so the portfolio is marked at one instant and two runs over
//! the same bars write the same journal whatever order the feed delivered them in.
//!
//! **Risk.** After each bar every book, then the portfolio, is marked at the close:
//! * daily loss: equity below the last close of the previous UTC day by more than
//!   `daily_loss` → flattened and paused until the next UTC day;
//! * drawdown: equity below its peak since the session (or the last resume) started by more
//!   than `max_drawdown` → flattened and paused until an operator resumes it;
//! * gross leverage: open notional over equity above `max_gross_leverage` → flattened and
//!   paused until the next UTC day.
//!
//! A portfolio breach flattens and pauses every book. Flattening closes at the bar's close with
//! the engine's slippage and fee (exit reason `risk`); a paused book's targets are flat. The
//! kill switch flattens every book at its coin's last close and pauses all until resumed.
//!
//! **Gaps.** A coin without bar `T` when the other coins have moved past it is a gap the feed
//! could not fill: that coin's books are flattened at their last close and paused for
//! `gap_pause_bars` bars after the gap, so they never trade across it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::journal::{
    self, book_key, BarRow, BookEquity, BreachRow, DecisionRow, Entry, EquityRow, FillRow,
    FundingRow, GapRow, JournalError, KillRow, Kind, LifecycleRow, LimitsRow, Money, OrderRow,
    PauseRow, PortfolioEquity, ResumeRow, Row, SessionBook, SessionRow, TradeRow, PORTFOLIO,
};
use super::{
    drift::{self, FillDrift},
    history::{Histories, History, Source},
    StrategyRunner,
};
use crate::{
    exchange::ExchangeConfig,
    execution::{
        paper::{PaperVenue, Phase, VenueEvent},
        Bar, Engine, EngineConfig, EngineState, SimulatedVenue, Trade, Venue as _,
    },
    market::{types::Interval, Market},
    seeds::Genome,
    settings::{count, range, Invalid},
    strategy::{
        regime::{RegimeConfig, RegimeFilter},
        Target,
    },
};

const DAY_MS: i64 = 86_400_000;

/// Risk limits of a book or of the portfolio, as fractions (`f64::INFINITY`: none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Open notional over equity.
    pub max_gross_leverage: f64,
    /// Loss since the last close of the previous UTC day, as a fraction of it.
    pub daily_loss: f64,
    /// Fall from the peak, as a fraction of it.
    pub max_drawdown: f64,
}

impl Limits {
    /// No limits.
    pub const NONE: Limits = Limits {
        max_gross_leverage: f64::INFINITY,
        daily_loss: f64::INFINITY,
        max_drawdown: f64::INFINITY,
    };

    /// As a session row records them.
    fn row(self) -> LimitsRow {
        let f = |x: f64| x.is_finite().then_some(x);
        LimitsRow {
            daily_loss: f(self.daily_loss),
            max_drawdown: f(self.max_drawdown),
            max_gross_leverage: f(self.max_gross_leverage),
        }
    }
}

/// `[paper]`: paper trading.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperConfig {
    pub account: String,
    pub capital: f64,
    pub reserve: f64,
    pub coins: Vec<String>,
    #[serde(deserialize_with = "crate::settings::named")]
    pub interval: Interval,
    pub store: String,
    pub warmup_bars: usize,
    pub stop_file: String,
    pub gap_pause_bars: i64,
    pub bar_wait_secs: f64,
    pub regime_policy: PolicySource,
    pub max_gross_leverage: f64,
    pub daily_loss: f64,
    pub max_drawdown: f64,
    pub portfolio_max_gross_leverage: f64,
    pub portfolio_daily_loss: f64,
    pub portfolio_max_drawdown: f64,
    pub min_days: f64,
    pub max_tracking: f64,
    pub min_sharpe_z: f64,
    pub max_fill_drift_bps: f64,
    pub min_drift_orders: usize,
}

impl PaperConfig {
    /// `[live]` laid over this section: the journal account, capital, coins, store, stop file,
    /// warm-up and portfolio loss limits live trading runs with (the session reads `[paper]`).
    pub fn with_live(&self, l: &super::rig::LiveConfig) -> Self {
        let mut p = self.clone();
        p.account = l.account.clone();
        p.capital = l.capital;
        if let Some(coins) = &l.coins {
            p.coins = coins.clone();
        }
        p.store = l.store.clone();
        p.stop_file = l.stop_file.clone();
        p.warmup_bars = l.warmup_bars;
        p.portfolio_daily_loss = l.daily_loss;
        p.portfolio_max_drawdown = l.max_drawdown;
        p
    }

    /// Checks every key.
    ///
    /// # Errors
    /// [`Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.account.trim().is_empty() {
            return Err(Invalid::new("paper.account", "must not be empty"));
        }
        range("paper.capital", self.capital, 1.0, 1e15)?;
        range("paper.reserve", self.reserve, 0.0, 0.95)?;
        crate::market::types::coin_list(&self.coins).map_err(|m| Invalid::new("paper.coins", m))?;
        count("paper.warmup_bars", self.warmup_bars, 1, 5000, "")?;
        if !(0..=10_000).contains(&self.gap_pause_bars) {
            return Err(Invalid::new(
                "paper.gap_pause_bars",
                format!(
                    "{} is out of range: must be in [0, 10000]",
                    self.gap_pause_bars
                ),
            ));
        }
        range("paper.bar_wait_secs", self.bar_wait_secs, 0.1, 86_400.0)?;
        range(
            "paper.max_gross_leverage",
            self.max_gross_leverage,
            0.1,
            100.0,
        )?;
        range("paper.daily_loss", self.daily_loss, 0.001, 1.0)?;
        range("paper.max_drawdown", self.max_drawdown, 0.001, 1.0)?;
        range(
            "paper.portfolio_max_gross_leverage",
            self.portfolio_max_gross_leverage,
            0.1,
            100.0,
        )?;
        range(
            "paper.portfolio_daily_loss",
            self.portfolio_daily_loss,
            0.001,
            1.0,
        )?;
        range(
            "paper.portfolio_max_drawdown",
            self.portfolio_max_drawdown,
            0.001,
            1.0,
        )?;
        range("paper.min_days", self.min_days, 0.0, 3650.0)?;
        range("paper.max_tracking", self.max_tracking, 0.0, 1.0)?;
        range("paper.min_sharpe_z", self.min_sharpe_z, -100.0, 0.0)?;
        range(
            "paper.max_fill_drift_bps",
            self.max_fill_drift_bps,
            0.0,
            10_000.0,
        )?;
        count(
            "paper.min_drift_orders",
            self.min_drift_orders,
            1,
            1_000_000,
            "",
        )
    }
}

/// Which regime policy a strategy trades with (`paper.regime_policy`): the one promote suggested
/// from its validation figures, or the config's `[regime]` actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicySource {
    Suggested,
    Config,
}

/// Why and until when a book is paused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    pub reason: String,
    /// Bar at whose close it started.
    pub since_ts: i64,
    /// First bar (open time) it may trade again; `None`: until an operator resumes it.
    pub until_ts: Option<i64>,
}

/// The risk manager's memory of one book or of the portfolio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskState {
    /// Highest equity since the start or the last resume.
    pub peak: f64,
    /// UTC day (days since the epoch) of the last mark.
    pub day: i64,
    /// Equity at the last close of the previous day.
    pub day_start: f64,
    /// Equity at the last mark.
    pub last: f64,
    pub pause: Option<Pause>,
}

impl RiskState {
    /// `amount` of new capital: the marks it raises are not a gain.
    fn deposit(&mut self, amount: f64) {
        self.peak += amount;
        self.day_start += amount;
        self.last += amount;
    }

    fn new(equity: f64, day: i64) -> Self {
        Self {
            peak: equity,
            day,
            day_start: equity,
            last: equity,
            pause: None,
        }
    }

    /// Marks `equity` at a close at `close_ms` with open notional `gross`; the breach, if any
    /// (reason, first bar it may trade again).
    fn mark(
        &mut self,
        close_ms: i64,
        equity: f64,
        gross: f64,
        limits: &Limits,
    ) -> Option<(String, Option<i64>)> {
        // The bar closing at midnight belongs to the day it traded in.
        let day = (close_ms - 1).div_euclid(DAY_MS);
        if day != self.day {
            self.day = day;
            self.day_start = self.last;
        }
        self.last = equity;
        self.peak = self.peak.max(equity);
        let next_day = Some((day + 1) * DAY_MS);
        let pct = |x: f64| format!("{:.2} %", 100.0 * x);
        let daily = 1.0 - equity / self.day_start;
        let drawdown = 1.0 - equity / self.peak;
        let leverage = if equity > 0.0 {
            gross / equity
        } else {
            f64::INFINITY
        };
        if daily > limits.daily_loss {
            Some((
                format!(
                    "daily loss {} is over the limit {}",
                    pct(daily),
                    pct(limits.daily_loss)
                ),
                next_day,
            ))
        } else if drawdown > limits.max_drawdown {
            Some((
                format!(
                    "drawdown {} is over the limit {}",
                    pct(drawdown),
                    pct(limits.max_drawdown)
                ),
                None,
            ))
        } else if leverage > limits.max_gross_leverage {
            Some((
                format!(
                    "gross leverage {leverage:.2} is over the limit {:.2}",
                    limits.max_gross_leverage
                ),
                next_day,
            ))
        } else {
            None
        }
    }
}

/// One strategy on one coin with its cash.
#[derive(Debug, Clone)]
pub struct BookSpec {
    /// Registry id of the strategy.
    pub strategy: String,
    pub coin: String,
    pub genome: Genome,
    pub regime: Option<RegimeFilter>,
    pub cash: f64,
    /// The strategy's validation Sharpe (annualized), what its paper Sharpe is held to.
    pub validation_sharpe: Option<f64>,
}

impl BookSpec {
    /// Its journal book, `strategy/coin` ([`book_key`]).
    pub fn key(&self) -> String {
        book_key(&self.strategy, &self.coin)
    }
}

/// The config sections a paper or live session reads (built from the whole config at the CLI
/// edge; live, `[paper]` has `[live]` laid over it, see [`PaperConfig::with_live`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// `[costs]` and `[backtest]`.
    pub engine: EngineConfig,
    pub regime: RegimeConfig,
    pub paper: PaperConfig,
    pub exchange: ExchangeConfig,
    pub live: Option<super::rig::LiveConfig>,
}

/// Settings of a session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionConfig {
    pub engine: EngineConfig,
    pub book_limits: Limits,
    pub portfolio_limits: Limits,
    /// Bar interval, ms.
    pub interval_ms: i64,
    /// Bars a book stays paused after a gap.
    pub gap_pause_bars: i64,
    pub lifecycle: Lifecycle,
}

/// When a strategy is retired or eligible for live (checked at the end of each UTC day).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// Days on paper, within tolerance, before a strategy is eligible for live.
    pub min_days: f64,
    /// Most the paper equity return may stray from the replay's (the same bars, the same
    /// targets, no risk interventions) while no intervention explains it.
    pub max_tracking: f64,
    /// Lowest z of the paper Sharpe against the validation Sharpe (after `min_days`).
    pub min_sharpe_z: f64,
    /// Most the fills' slippage may exceed the model's (notional-weighted mean, basis points),
    /// judged once a strategy has sent `min_drift_orders` orders.
    pub max_fill_drift_bps: f64,
    pub min_drift_orders: usize,
}

impl Lifecycle {
    /// Never retires, never eligible.
    pub const NONE: Lifecycle = Lifecycle {
        min_days: f64::INFINITY,
        max_tracking: f64::INFINITY,
        min_sharpe_z: f64::NEG_INFINITY,
        max_fill_drift_bps: f64::INFINITY,
        min_drift_orders: usize::MAX,
    };
}

impl SessionConfig {
    /// The settings of `[paper]`, with the engine of `[costs]` and `[backtest]`.
    pub fn of(cfg: &RunConfig) -> Self {
        let p = &cfg.paper;
        SessionConfig {
            engine: cfg.engine,
            book_limits: Limits {
                max_gross_leverage: p.max_gross_leverage,
                daily_loss: p.daily_loss,
                max_drawdown: p.max_drawdown,
            },
            portfolio_limits: Limits {
                max_gross_leverage: p.portfolio_max_gross_leverage,
                daily_loss: p.portfolio_daily_loss,
                max_drawdown: p.portfolio_max_drawdown,
            },
            interval_ms: p.interval.ms(),
            gap_pause_bars: p.gap_pause_bars,
            lifecycle: Lifecycle {
                min_days: p.min_days,
                max_tracking: p.max_tracking,
                min_sharpe_z: p.min_sharpe_z,
                max_fill_drift_bps: p.max_fill_drift_bps,
                min_drift_orders: p.min_drift_orders,
            },
        }
    }
}

/// The regime filter a strategy trades with: none unless `enabled`; with
/// `paper.regime_policy = "suggested"` the policy promote derived from the strategy's
/// validation figures (`figures.regime_policy` in the registry), else the `[regime]` actions.
///
/// # Errors
/// A message naming the config key or the registry field that is wrong.
pub fn regime_of(
    cfg: &RunConfig,
    enabled: bool,
    s: Option<&crate::promotion::registry::Strategy>,
) -> Result<Option<RegimeFilter>, String> {
    if !enabled {
        return Ok(None);
    }
    let mut r = cfg.regime.clone();
    r.enabled = true;
    let Some(mut f) = r.filter() else {
        return Ok(None);
    };
    if let Some(s) = s.filter(|_| cfg.paper.regime_policy == PolicySource::Suggested) {
        if let Some(p) = s.figures.regime_policy {
            f.policy = p;
        }
    }
    Ok(Some(f))
}

/// The books of `strategies` under `cfg`: every strategy on every `paper.coins`, with its
/// registry weight of `paper.capital` less `paper.reserve` (equal shares when no strategy has
/// a weight) split equally across the coins. Returns the books and the capital no book holds.
///
/// # Errors
/// A message naming the strategy whose genome or regime policy cannot be read.
pub fn book_specs(
    strategies: &[crate::promotion::registry::Strategy],
    cfg: &RunConfig,
) -> Result<(Vec<BookSpec>, f64), String> {
    let p = &cfg.paper;
    let total_w: f64 = strategies.iter().map(|s| s.weight.max(0.0)).sum();
    let n = strategies.len() as f64;
    let mut specs = Vec::new();
    for s in strategies {
        let w = if total_w > 0.0 {
            s.weight.max(0.0)
        } else {
            1.0 / n
        };
        let origin = format!("registry strategy {}", s.id);
        let genome = Genome::from_toml(&s.genome, &origin)?.single_coin(&origin)?;
        let regime = regime_of(cfg, cfg.regime.enabled, Some(s))?;
        let validation_sharpe = s.figures.validation.map(|f| f.sharpe);
        for coin in &p.coins {
            specs.push(BookSpec {
                strategy: s.id.clone(),
                coin: coin.clone(),
                genome: genome.clone(),
                regime,
                cash: p.capital * (1.0 - p.reserve) * w / p.coins.len() as f64,
                validation_sharpe,
            });
        }
    }
    let reserve = p.capital - specs.iter().map(|b| b.cash).sum::<f64>();
    Ok((specs, reserve))
}

/// A book's state as the journal keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookState {
    pub stepped: usize,
    pub engine: EngineState,
    pub venue: PaperVenue,
    pub risk: RiskState,
    pub shadow: EngineState,
    pub shadow_venue: SimulatedVenue,
    /// Risk interventions (breaches, gaps, the kill switch) since the book started.
    pub interventions: usize,
}

/// The portfolio's state as the journal keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortfolioState {
    pub risk: RiskState,
    pub trackers: BTreeMap<String, Tracker>,
    /// Capital no book holds.
    pub reserve: f64,
    pub killed: bool,
}

/// One strategy on one coin, traded.
pub struct Book {
    pub spec: BookSpec,
    runner: StrategyRunner<PaperVenue>,
    risk: RiskState,
    /// The replay of the same bars: the strategy's targets with no risk intervention, over the
    /// simulated venue (what its backtest expects).
    shadow: Engine<SimulatedVenue>,
    interventions: usize,
}

/// A strategy's paper record across its coins, for the lifecycle checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracker {
    /// Open time of the last bar before the record starts (the last warm-up bar); set at the
    /// first mark when the session had no warm-up.
    pub start_ts: Option<i64>,
    pub start_equity: f64,
    pub last_equity: f64,
    /// Bars and the sums of their returns and squared returns.
    pub bars: usize,
    pub sum: f64,
    pub sum2: f64,
    pub eligible: bool,
    pub retired: Option<String>,
    /// Its fills against the model's ([`super::drift`]).
    #[serde(default, skip_serializing_if = "FillDrift::is_empty")]
    pub fills: FillDrift,
}

impl Tracker {
    fn new(ts: Option<i64>, equity: f64) -> Self {
        Self {
            start_ts: ts,
            start_equity: equity,
            last_equity: equity,
            bars: 0,
            sum: 0.0,
            sum2: 0.0,
            eligible: false,
            retired: None,
            fills: FillDrift::default(),
        }
    }

    /// Annualized Sharpe of the returns so far (0 without dispersion).
    fn sharpe(&self, bars_per_year: f64) -> f64 {
        let n = self.bars as f64;
        if self.bars < 2 {
            return 0.0;
        }
        let mean = self.sum / n;
        let var = (self.sum2 - n * mean * mean) / (n - 1.0);
        if var > 0.0 {
            mean / var.sqrt() * bars_per_year.sqrt()
        } else {
            0.0
        }
    }
}

impl Book {
    fn key(&self) -> String {
        self.spec.key()
    }

    fn engine(&self) -> &Engine<PaperVenue> {
        self.runner.engine()
    }

    /// Equity marked at `close`.
    fn equity(&self, close: f64) -> f64 {
        self.engine().equity_at(close)
    }

    /// What the book holds, for the journal and `paper status`.
    fn snapshot(&self, close: f64) -> EquityRow {
        let e = self.engine();
        let state = BookState {
            stepped: self.runner.stepped(),
            engine: e.state(),
            venue: e.venue().clone(),
            risk: self.risk.clone(),
            shadow: self.shadow.state(),
            shadow_venue: self.shadow.venue().clone(),
            interventions: self.interventions,
        };
        EquityRow::Book(Box::new(BookEquity {
            cash: Money(e.venue().balance()),
            close: Money(close),
            equity: Money(self.equity(close)),
            paused: self.risk.pause.as_ref().map(|p| p.reason.clone()),
            position: Money(e.signed_size()),
            replay_equity: Money(self.shadow.equity_at(close)),
            state,
        }))
    }

    /// The venue's events and the closed trades since the last call, as rows.
    fn drain(&mut self, bar_ts: i64, out: &mut Vec<Entry>) {
        let key = self.key();
        let events = self.runner.engine_mut().venue_mut().drain();
        for ev in events {
            let row: Row = match ev {
                VenueEvent::Order { id, order } => OrderRow {
                    id,
                    qty: Money(order.qty),
                    reference_price: Money(order.price),
                    side: order.side,
                    order_type: "market".into(),
                }
                .into(),
                VenueEvent::Fill { id, fill } => FillRow {
                    fee: Money(fill.fee),
                    id,
                    notional: Money(fill.qty * fill.price),
                    price: Money(fill.price),
                    qty: Money(fill.qty),
                    side: fill.side,
                }
                .into(),
                VenueEvent::Funding { amount } => FundingRow {
                    amount: Money(amount),
                }
                .into(),
            };
            out.push(Entry::new(key.clone(), bar_ts, row));
        }
        for t in self.runner.engine_mut().take_trades() {
            out.push(Entry::new(key.clone(), bar_ts, TradeRow::from(&t)));
        }
    }
}

/// Session errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("journal of `{account}`, book {book}: {message}")]
    State {
        account: String,
        book: String,
        message: String,
    },
}

/// A paper trading session (see the module documentation).
pub struct Session {
    account: String,
    cfg: SessionConfig,
    books: Vec<Book>,
    portfolio: RiskState,
    reserve: f64,
    killed: bool,
    /// Open time of the last bar processed.
    last_ts: Option<i64>,
    trackers: BTreeMap<String, Tracker>,
    /// Orders go to an exchange (live): bars are stepped with [`StrategyRunner::step_live`].
    live: bool,
}

fn book_engine(cfg: &EngineConfig, cash: f64) -> EngineConfig {
    let mut c = *cfg;
    c.cash = cash;
    c
}

fn fresh_book(spec: BookSpec, cfg: &EngineConfig, stepped: usize, day: i64) -> Book {
    let c = book_engine(cfg, spec.cash);
    Book {
        runner: StrategyRunner::new(
            spec.genome.clone(),
            &c,
            PaperVenue::new(c.costs(), spec.cash),
        )
        .with_regime(spec.regime)
        .after(stepped),
        risk: RiskState::new(spec.cash, day),
        shadow: Engine::simulated(&c),
        interventions: 0,
        spec,
    }
}

/// A tracker per strategy of `books` missing from `trackers`, starting at `ts`.
fn add_trackers(trackers: &mut BTreeMap<String, Tracker>, books: &[Book], ts: Option<i64>) {
    let mut equity: BTreeMap<&str, f64> = BTreeMap::new();
    for b in books {
        *equity.entry(b.spec.strategy.as_str()).or_default() += b.spec.cash;
    }
    for (k, e) in equity {
        trackers
            .entry(k.to_string())
            .or_insert_with(|| Tracker::new(ts, e));
    }
}

impl Session {
    /// A new session of `specs` whose coins' histories so far (`warmup`, keyed by coin) are
    /// only warm-up: trading starts with the next bar. `reserve` is capital no book holds.
    /// Returns the session and its first rows (to journal before anything else).
    pub fn start(
        account: &str,
        cfg: SessionConfig,
        specs: Vec<BookSpec>,
        reserve: f64,
        warmup: &Histories,
    ) -> (Session, Vec<Entry>) {
        // Warm-up ends at the last bar every coin has; later bars are traded.
        let last_ts = warmup
            .values()
            .filter_map(|m| m.candles.ts.last().copied())
            .min();
        let day = last_ts.map_or(0, |t| (t + cfg.interval_ms - 1).div_euclid(DAY_MS));
        let books: Vec<Book> = specs
            .into_iter()
            .map(|spec| {
                let stepped = warmup.get(&spec.coin).map_or(0, |m| {
                    m.candles
                        .ts
                        .partition_point(|&t| last_ts.is_some_and(|l| t <= l))
                });
                fresh_book(spec, &cfg.engine, stepped, day)
            })
            .collect();
        let mut trackers = BTreeMap::new();
        add_trackers(&mut trackers, &books, last_ts);
        let capital = reserve + books.iter().map(|b| b.spec.cash).sum::<f64>();
        let s = Session {
            account: account.to_string(),
            cfg,
            portfolio: RiskState::new(capital, day),
            books,
            reserve,
            killed: false,
            last_ts,
            trackers,
            live: false,
        };
        let ts = last_ts.unwrap_or(0);
        let mut rows = vec![Entry::new(PORTFOLIO, ts, s.session_row())];
        // Each coin's close at the end of the warm-up.
        let closes: BTreeMap<String, f64> = warmup
            .iter()
            .filter_map(|(c, m)| {
                let k = m.candles.ts.partition_point(|&t| t <= ts);
                (k > 0).then(|| (c.clone(), m.candles.close[k - 1]))
            })
            .collect();
        s.snapshots(ts, &closes, &mut rows);
        (s, rows)
    }

    /// The session of `account` as its journal left it, with `specs` as its books (a book the
    /// journal does not know starts fresh after the history it has now), or `None` when the
    /// journal has no session of `account`.
    ///
    /// # Errors
    /// [`SessionError`] when a stored state cannot be read or does not fit the history.
    pub fn restore(
        conn: &rusqlite::Connection,
        account: &str,
        cfg: SessionConfig,
        specs: Vec<BookSpec>,
        histories: &Histories,
    ) -> Result<Option<Session>, SessionError> {
        let Some(p) = journal::latest(conn, account, PORTFOLIO, Kind::Equity)? else {
            return Ok(None);
        };
        let bad = |book: &str, message: String| SessionError::State {
            account: account.to_string(),
            book: book.to_string(),
            message,
        };
        let Row::Equity(EquityRow::Portfolio(PortfolioEquity { state: ps, .. })) = p.row else {
            return Err(bad(
                PORTFOLIO,
                "the last equity row is not the portfolio's".into(),
            ));
        };
        let last_ts = p.bar_ts;
        let mut books = Vec::new();
        for spec in specs {
            let key = spec.key();
            let history_len = histories
                .get(&spec.coin)
                .map_or(0, |m| m.candles.ts.partition_point(|&t| t <= last_ts));
            let book = match journal::latest(conn, account, &key, Kind::Equity)? {
                Some(e) => {
                    let Row::Equity(EquityRow::Book(b)) = e.row else {
                        return Err(bad(&key, "the last equity row is not a book's".into()));
                    };
                    let st = b.state;
                    if st.stepped > history_len {
                        return Err(bad(
                            &key,
                            format!(
                                "the journal has stepped {} bars of {} but the candle store has only {history_len} up to {last_ts}",
                                st.stepped, spec.coin
                            ),
                        ));
                    }
                    let c = book_engine(&cfg.engine, spec.cash);
                    let engine = Engine::restore(&c, st.venue, &st.engine);
                    Book {
                        runner: StrategyRunner::with_engine(spec.genome.clone(), engine)
                            .with_regime(spec.regime)
                            .after(st.stepped),
                        risk: st.risk,
                        shadow: Engine::restore(&c, st.shadow_venue, &st.shadow),
                        interventions: st.interventions,
                        spec,
                    }
                }
                None => {
                    let day = (last_ts + cfg.interval_ms - 1).div_euclid(DAY_MS);
                    fresh_book(spec, &cfg.engine, history_len, day)
                }
            };
            books.push(book);
        }
        let mut trackers = ps.trackers;
        add_trackers(&mut trackers, &books, Some(last_ts));
        Ok(Some(Session {
            trackers,
            account: account.to_string(),
            cfg,
            books,
            portfolio: ps.risk,
            reserve: ps.reserve,
            killed: ps.killed,
            last_ts: Some(last_ts),
            live: false,
        }))
    }

    /// The session's books, capital (the reserve and the books' cash), costs and limits.
    fn session_row(&self) -> SessionRow {
        SessionRow {
            book_limits: self.cfg.book_limits.row(),
            books: self
                .books
                .iter()
                .map(|b| SessionBook {
                    book: b.key(),
                    cash: Money(b.spec.cash),
                    regime: b.spec.regime.is_some(),
                    warmup_bars: b.runner.stepped(),
                })
                .collect(),
            capital: Money(self.reserve + self.books.iter().map(|b| b.spec.cash).sum::<f64>()),
            fee: self.cfg.engine.fee,
            fill: self.cfg.engine.fill.as_str().into(),
            funding: self.cfg.engine.funding,
            portfolio_limits: self.cfg.portfolio_limits.row(),
            reserve: Money(self.reserve),
            slippage: self.cfg.engine.slippage,
        }
    }

    /// The strategies it trades.
    pub fn strategies(&self) -> std::collections::BTreeSet<&str> {
        self.books
            .iter()
            .map(|b| b.spec.strategy.as_str())
            .collect()
    }

    /// Paper: adds a fresh book for each of `specs` (strategies promoted while the session
    /// runs), trading from the next bar after the history it has now (`histories`, processed
    /// bars only), as a restart would start a book the journal does not know. Its cash comes
    /// from the reserve while that lasts; the rest is new paper capital, a deposit the
    /// portfolio's risk limits do not count as a gain. Returns the rows (the session's new
    /// composition), to journal with the next bar's.
    pub fn adopt(&mut self, specs: Vec<BookSpec>, histories: &Histories) -> Vec<Entry> {
        // Live books trade only the strategies `[live]` names.
        if specs.is_empty() || self.live {
            return Vec::new();
        }
        let last_ts = self.last_ts.unwrap_or(i64::MIN);
        let day = self
            .last_ts
            .map_or(0, |t| (t + self.cfg.interval_ms - 1).div_euclid(DAY_MS));
        let wanted: f64 = specs.iter().map(|s| s.cash).sum();
        let from_reserve = wanted.min(self.reserve.max(0.0));
        self.reserve -= from_reserve;
        self.portfolio.deposit(wanted - from_reserve);
        for spec in specs {
            let stepped = histories
                .get(&spec.coin)
                .map_or(0, |m| m.candles.ts.partition_point(|&t| t <= last_ts));
            self.books
                .push(fresh_book(spec, &self.cfg.engine, stepped, day));
        }
        add_trackers(&mut self.trackers, &self.books, self.last_ts);
        vec![Entry::new(
            PORTFOLIO,
            self.last_ts.unwrap_or(0),
            self.session_row(),
        )]
    }

    /// Sends every book's orders through `executor` from now on (live trading): each book's
    /// venue books the exchange's fills instead of simulating them.
    pub fn link(&mut self, executor: std::sync::Arc<dyn crate::execution::paper::ExecutionClient>) {
        for b in &mut self.books {
            let link = crate::execution::paper::Link {
                executor: executor.clone(),
                book: b.key(),
                coin: b.spec.coin.clone(),
            };
            b.runner.engine_mut().venue_mut().link(link);
        }
        self.live = true;
    }

    /// Each coin's net position over the books (what the exchange should hold).
    pub fn net_positions(&self) -> BTreeMap<String, f64> {
        let mut out: BTreeMap<String, f64> = BTreeMap::new();
        for b in &self.books {
            *out.entry(b.spec.coin.clone()).or_default() += b.engine().signed_size();
        }
        out
    }

    /// Halts the books of `coin` (paused until resumed) with `reason`, without trading: what
    /// reconciliation does when the exchange disagrees with the journal. Returns the rows.
    pub fn halt(&mut self, coin: &str, reason: &str) -> Vec<Entry> {
        let ts = self.last_ts.unwrap_or(0);
        let mut rows = Vec::new();
        for b in self.books.iter_mut().filter(|b| b.spec.coin == coin) {
            if b.risk.pause.as_ref().is_some_and(|p| p.reason == reason) {
                continue;
            }
            pause(b, &mut rows, ts, reason.to_string(), None);
        }
        rows
    }

    /// The journal account.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Open time of the last bar processed.
    pub fn last_ts(&self) -> Option<i64> {
        self.last_ts
    }

    /// Whether the kill switch has stopped the session.
    pub fn killed(&self) -> bool {
        self.killed
    }

    /// The books.
    pub fn books(&self) -> &[Book] {
        &self.books
    }

    /// Processes bar `ts`: `histories` holds each coin's bars up to and including `ts` (a coin
    /// whose last bar is earlier skipped `ts`: a gap). Returns the rows to journal, in one
    /// transaction, before the next bar.
    ///
    /// # Panics
    /// When `ts` is not after the last bar processed.
    pub fn on_bar(&mut self, ts: i64, histories: &Histories) -> Vec<Entry> {
        assert!(
            self.last_ts.is_none_or(|l| ts > l),
            "bars are processed once each, in order"
        );
        let mut rows = Vec::new();
        for (coin, m) in histories {
            let c = &m.candles;
            if c.ts.last() == Some(&ts) {
                let t = c.len() - 1;
                rows.push(Entry::new(
                    coin.clone(),
                    ts,
                    BarRow {
                        close: Money(c.close[t]),
                        funding_rate: m.funding_per_bar[t],
                        high: Money(c.high[t]),
                        low: Money(c.low[t]),
                        open: Money(c.open[t]),
                        volume: Money(c.volume[t]),
                    },
                ));
            }
        }
        let close_ms = ts + self.cfg.interval_ms;
        let gap_until = ts + (1 + self.cfg.gap_pause_bars) * self.cfg.interval_ms;
        let (live, killed) = (self.live, self.killed);
        let (interval_ms, book_limits) = (self.cfg.interval_ms, self.cfg.book_limits);
        let step = |b: &mut Book| -> Vec<Entry> {
            let mut rows = Vec::new();
            let key = b.key();
            let Some(m) = histories.get(&b.spec.coin) else {
                return rows;
            };
            if live {
                b.runner.engine_mut().venue_mut().begin(ts, Phase::Bar);
            }
            let n = m.candles.len();
            if m.candles.ts.last() != Some(&ts) {
                // The coin skipped this bar: flatten at the last close, pause past the gap.
                if n > 0 && b.runner.stepped() == n && m.candles.ts[n - 1] < ts {
                    let reason = format!(
                        "bar {ts} of {} is missing and could not be backfilled",
                        b.spec.coin
                    );
                    gap(
                        b,
                        Bar::of(&m.candles, n - 1),
                        ts,
                        reason,
                        gap_until,
                        &mut rows,
                    );
                }
                return rows;
            }
            if n > b.runner.stepped() + 1 {
                // Bars this book never stepped: as a gap, it does not trade across them.
                let reason = format!(
                    "{} bars of {} before {ts} were never stepped",
                    n - 1 - b.runner.stepped(),
                    b.spec.coin
                );
                gap(
                    b,
                    Bar::of(&m.candles, n - 2),
                    ts,
                    reason,
                    gap_until,
                    &mut rows,
                );
                b.runner.skip_to(n - 1);
            }
            if let Some(p) = &b.risk.pause {
                if p.until_ts.is_some_and(|u| u <= ts) && !killed {
                    let reason = p.reason.clone();
                    b.risk.pause = None;
                    rows.push(Entry::new(
                        key.clone(),
                        ts,
                        ResumeRow {
                            reason: format!("the pause ({reason}) is over"),
                            was: None,
                        },
                    ));
                }
            }
            let d = b.runner.newest(m);
            let paused = b.risk.pause.is_some() || killed;
            let traded = if paused { Target::FLAT } else { d.target };
            rows.push(Entry::new(
                key.clone(),
                ts,
                DecisionRow {
                    paused,
                    raw: (&d.raw).into(),
                    regime_target: (&d.target).into(),
                    sentiment: d.sentiment.map(|s| s.as_str().into()),
                    target: (&traded).into(),
                    volatility: d.volatility.map(|v| v.as_str().into()),
                },
            ));
            let equity = if live {
                b.runner.step_live(m, traded, ts + interval_ms)
            } else {
                b.runner.step(m, traded)
            };
            b.shadow.step_bar(
                Bar::of(&m.candles, n - 1),
                m.funding_per_bar[n - 1],
                d.target,
            );
            let _ = b.shadow.take_trades();
            b.drain(ts, &mut rows);
            let close = m.candles.close[n - 1];
            let gross = b.engine().signed_size().abs() * close;
            if let Some((reason, until)) = b.risk.mark(close_ms, equity, gross, &book_limits) {
                if b.risk.pause.is_none() {
                    breach(b, Bar::of(&m.candles, n - 1), ts, &reason, until, &mut rows);
                }
            }
            rows
        };
        rows.extend(each_book(&mut self.books, live, step));
        // The portfolio, marked at this close.
        let closes = last_closes(histories);
        let (equity, gross) = self.portfolio_marks(&closes);
        if let Some((reason, until)) =
            self.portfolio
                .mark(close_ms, equity, gross, &self.cfg.portfolio_limits)
        {
            if self.portfolio.pause.is_none() {
                rows.push(Entry::new(
                    PORTFOLIO,
                    ts,
                    BreachRow::Portfolio {
                        equity: Money(equity),
                        reason: format!("portfolio: {reason}"),
                    },
                ));
                self.portfolio.pause = Some(Pause {
                    reason: reason.clone(),
                    since_ts: ts,
                    until_ts: until,
                });
                let flatten = |b: &mut Book| -> Vec<Entry> {
                    let mut rows = Vec::new();
                    if let Some(m) = histories
                        .get(&b.spec.coin)
                        .filter(|m| !m.candles.is_empty())
                    {
                        let last = Bar::of(&m.candles, m.candles.len() - 1);
                        breach(
                            b,
                            last,
                            ts,
                            &format!("portfolio: {reason}"),
                            until,
                            &mut rows,
                        );
                    }
                    rows
                };
                rows.extend(each_book(&mut self.books, self.live, flatten));
            }
        } else if self
            .portfolio
            .pause
            .as_ref()
            .is_some_and(|p| p.until_ts.is_some_and(|u| u <= ts + self.cfg.interval_ms))
        {
            self.portfolio.pause = None;
        }
        self.last_ts = Some(ts);
        self.fill_drift(&rows);
        self.lifecycle(ts, &closes, histories, &mut rows);
        self.snapshots(ts, &closes, &mut rows);
        rows
    }

    /// Adds the orders in `rows` to their strategies' fill drift.
    fn fill_drift(&mut self, rows: &[Entry]) {
        // Most bars send no order: nothing to look up then.
        if !rows.iter().any(|e| e.kind() == Kind::Order) {
            return;
        }
        let costs = self.cfg.engine.costs();
        let mut orders = drift::Orders::default();
        for e in rows {
            orders.push(e, costs);
        }
        let strategy: BTreeMap<String, &str> = self
            .books
            .iter()
            .map(|b| (b.key(), b.spec.strategy.as_str()))
            .collect();
        for o in orders.finish() {
            if let Some(t) = strategy
                .get(&o.book)
                .and_then(|s| self.trackers.get_mut(*s))
            {
                t.fills.add(&o);
            }
        }
    }

    /// The strategies' records after bar `ts` and, at the end of a UTC day, the lifecycle
    /// checks: retire (flattened and paused for good; the caller retires it in the registry)
    /// or eligible for live.
    fn lifecycle(
        &mut self,
        ts: i64,
        closes: &BTreeMap<String, f64>,
        histories: &Histories,
        rows: &mut Vec<Entry>,
    ) {
        let iv = self.cfg.interval_ms;
        let close_ms = ts + iv;
        let bars_per_year = 365.0 * DAY_MS as f64 / iv as f64;
        let lc = self.cfg.lifecycle;
        // Per strategy: paper equity, replay equity, interventions, validation Sharpe.
        let mut marks: BTreeMap<String, (f64, f64, usize, Option<f64>)> = BTreeMap::new();
        for b in &self.books {
            let close = closes.get(&b.spec.coin).copied().unwrap_or(f64::NAN);
            let (p, r) = if close.is_finite() {
                (b.equity(close), b.shadow.equity_at(close))
            } else {
                (b.engine().venue().balance(), b.shadow.venue().balance())
            };
            let e = marks.entry(b.spec.strategy.clone()).or_insert((
                0.0,
                0.0,
                0,
                b.spec.validation_sharpe,
            ));
            e.0 += p;
            e.1 += r;
            e.2 += b.interventions;
        }
        let mut retire = Vec::new();
        for (id, (paper, replay, interventions, validation)) in marks {
            let Some(t) = self.trackers.get_mut(&id) else {
                continue;
            };
            if t.retired.is_some() {
                continue;
            }
            let start = *t.start_ts.get_or_insert(ts - iv);
            if t.last_equity > 0.0 {
                let r = paper / t.last_equity - 1.0;
                t.bars += 1;
                t.sum += r;
                t.sum2 += r * r;
            }
            t.last_equity = paper;
            if close_ms % DAY_MS != 0 {
                continue;
            }
            let days = (close_ms - start - iv) as f64 / DAY_MS as f64;
            let paper_ret = paper / t.start_equity - 1.0;
            let replay_ret = replay / t.start_equity - 1.0;
            let tracking = paper_ret - replay_ret;
            let sharpe = t.sharpe(bars_per_year);
            // Lo (2002): the standard error of a Sharpe estimate over T bars is, per bar,
            // sqrt((1 + SR²/2) / T); annualized here.
            let z = validation.filter(|_| t.bars >= 2).map(|v| {
                let per_bar = v / bars_per_year.sqrt();
                let se =
                    ((1.0 + per_bar * per_bar / 2.0) / t.bars as f64).sqrt() * bars_per_year.sqrt();
                (sharpe - v) / se
            });
            let pct = |x: f64| format!("{:.2} %", 100.0 * x);
            let fill_drift = t.fills.bps();
            let (verdict, reason) = if interventions == 0 && tracking.abs() > lc.max_tracking {
                (
                    "retire",
                    format!(
                        "paper return {} strays {} from the replay of the same bars ({}), over {}",
                        pct(paper_ret),
                        pct(tracking.abs()),
                        pct(replay_ret),
                        pct(lc.max_tracking)
                    ),
                )
            } else if t.fills.orders >= lc.min_drift_orders
                && fill_drift.is_some_and(|d| d > lc.max_fill_drift_bps)
            {
                (
                    "retire",
                    format!(
                        "its fills slipped {:.1} bps beyond the model's over {} orders (limit {} \
                         bps): the costs it was promoted on do not hold",
                        fill_drift.unwrap_or(f64::NAN),
                        t.fills.orders,
                        lc.max_fill_drift_bps
                    ),
                )
            } else if days >= lc.min_days && z.is_some_and(|z| z < lc.min_sharpe_z) {
                (
                    "retire",
                    format!(
                        "paper Sharpe {sharpe:.2} over {days:.1} days is {:.1} standard errors \
                         below the validation Sharpe {:.2} (limit {})",
                        -z.unwrap_or(0.0),
                        validation.unwrap_or(f64::NAN),
                        lc.min_sharpe_z
                    ),
                )
            } else if days >= lc.min_days && !t.eligible {
                t.eligible = true;
                (
                    "eligible",
                    format!(
                        "{days:.1} days on paper within tolerance: eligible for live (which \
                         still needs an explicit command)"
                    ),
                )
            } else {
                ("ok", String::new())
            };
            rows.push(Entry::new(
                id.clone(),
                ts,
                LifecycleRow {
                    days,
                    eligible: t.eligible,
                    fill_drift_bps: fill_drift,
                    interventions,
                    paper_return: Money(paper_ret),
                    reason: reason.clone(),
                    replay_return: Money(replay_ret),
                    sharpe,
                    tracking: Money(tracking),
                    validation_sharpe: validation,
                    verdict: verdict.into(),
                    z,
                },
            ));
            if verdict == "retire" {
                t.retired = Some(reason.clone());
                retire.push((id, reason));
            }
        }
        for (id, reason) in retire {
            for b in self.books.iter_mut().filter(|b| b.spec.strategy == id) {
                if let Some(m) = histories
                    .get(&b.spec.coin)
                    .filter(|m| !m.candles.is_empty())
                {
                    let last = Bar::of(&m.candles, m.candles.len() - 1);
                    b.runner.engine_mut().flatten(last, last.close);
                    b.drain(ts, rows);
                }
                pause(b, rows, ts, format!("retired: {reason}"), None);
            }
        }
    }

    /// The strategies the lifecycle retired, with the reason (for the registry).
    pub fn retired(&self) -> Vec<(String, String)> {
        self.trackers
            .iter()
            .filter_map(|(id, t)| t.retired.clone().map(|r| (id.clone(), r)))
            .collect()
    }

    /// The strategies eligible for live.
    pub fn eligible(&self) -> Vec<String> {
        self.trackers
            .iter()
            .filter(|(_, t)| t.eligible && t.retired.is_none())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The kill switch: every book flattened at its coin's last close and paused until resumed.
    pub fn kill(&mut self, reason: &str, histories: &Histories) -> Vec<Entry> {
        let ts = self.last_ts.unwrap_or(0);
        let mut rows = vec![Entry::new(
            PORTFOLIO,
            ts,
            KillRow::Session {
                reason: reason.into(),
            },
        )];
        self.killed = true;
        let live = self.live;
        let flatten = |b: &mut Book| -> Vec<Entry> {
            let mut rows = Vec::new();
            let Some(m) = histories.get(&b.spec.coin) else {
                return rows;
            };
            let n = b.runner.stepped().min(m.candles.len());
            if n == 0 {
                return rows;
            }
            let last = Bar::of(&m.candles, n - 1);
            if live {
                b.runner.engine_mut().venue_mut().begin(ts, Phase::Kill);
            }
            b.runner.engine_mut().flatten(last, last.close);
            b.drain(ts, &mut rows);
            pause(b, &mut rows, ts, format!("kill switch: {reason}"), None);
            rows
        };
        rows.extend(each_book(&mut self.books, live, flatten));
        self.snapshots(ts, &last_closes(histories), &mut rows);
        rows
    }

    /// Lifts the pauses of `book` (every book for `None`) and the kill switch; peaks and day
    /// starts are reset to the current equity. Returns the rows to journal.
    pub fn resume(
        &mut self,
        book: Option<&str>,
        reason: &str,
        histories: &Histories,
    ) -> Vec<Entry> {
        let ts = self.last_ts.unwrap_or(0);
        let closes = last_closes(histories);
        let mut rows = Vec::new();
        if book.is_none() {
            self.killed = false;
            self.portfolio.pause = None;
            let (equity, _) = self.portfolio_marks(&closes);
            self.portfolio.peak = equity;
            self.portfolio.day_start = equity;
        }
        for b in &mut self.books {
            let key = b.key();
            if book.is_some_and(|k| k != key && k != b.spec.strategy) {
                continue;
            }
            // Retirement is final.
            if self
                .trackers
                .get(&b.spec.strategy)
                .is_some_and(|t| t.retired.is_some())
            {
                continue;
            }
            if let Some(p) = b.risk.pause.take() {
                let close = closes.get(&b.spec.coin).copied().unwrap_or(f64::NAN);
                let equity = b.equity(close);
                if equity.is_finite() {
                    b.risk.peak = equity;
                    b.risk.day_start = equity;
                }
                rows.push(Entry::new(
                    key,
                    ts,
                    ResumeRow {
                        reason: reason.into(),
                        was: Some(p.reason),
                    },
                ));
            }
        }
        self.snapshots(ts, &closes, &mut rows);
        rows
    }

    /// Portfolio equity (reserve plus every book) and open notional at `closes`.
    fn portfolio_marks(&self, closes: &BTreeMap<String, f64>) -> (f64, f64) {
        let mut equity = self.reserve;
        let mut gross = 0.0;
        for b in &self.books {
            let close = closes.get(&b.spec.coin).copied().unwrap_or(f64::NAN);
            if close.is_finite() {
                equity += b.equity(close);
                gross += b.engine().signed_size().abs() * close;
            } else {
                equity += b.engine().venue().balance();
            }
        }
        (equity, gross)
    }

    /// Equity rows: every book's and the portfolio's state.
    fn snapshots(&self, ts: i64, closes: &BTreeMap<String, f64>, rows: &mut Vec<Entry>) {
        for b in &self.books {
            let close = closes.get(&b.spec.coin).copied().unwrap_or(0.0);
            rows.push(Entry::new(b.key(), ts, b.snapshot(close)));
        }
        let (equity, gross) = self.portfolio_marks(closes);
        let state = PortfolioState {
            risk: self.portfolio.clone(),
            trackers: self.trackers.clone(),
            reserve: self.reserve,
            killed: self.killed,
        };
        rows.push(Entry::new(
            PORTFOLIO,
            ts,
            EquityRow::Portfolio(PortfolioEquity {
                equity: Money(equity),
                gross: Money(gross),
                killed: self.killed,
                state,
            }),
        ));
    }
}

/// Each coin's last close.
fn last_closes(histories: &Histories) -> BTreeMap<String, f64> {
    histories
        .iter()
        .filter_map(|(c, m)| m.candles.close.last().map(|&x| (c.clone(), x)))
        .collect()
}

/// Most books whose orders are in flight at once.
const MAX_IN_FLIGHT: usize = 64;

/// Runs `step` on every book and returns their rows in book order (the journal is the same
/// either way). Live, each book runs on a thread of its own, so the orders of different books
/// are in flight at once and a slow order delays only its own book; a simulated book never
/// waits, so paper sessions and replays step on this thread.
fn each_book<F>(books: &mut [Book], live: bool, step: F) -> Vec<Entry>
where
    F: Fn(&mut Book) -> Vec<Entry> + Sync,
{
    if !live || books.len() < 2 {
        return books.iter_mut().flat_map(&step).collect();
    }
    let step = &step;
    let mut rows = Vec::new();
    for chunk in books.chunks_mut(MAX_IN_FLIGHT) {
        std::thread::scope(|s| {
            let running: Vec<_> = chunk.iter_mut().map(|b| s.spawn(move || step(b))).collect();
            for r in running {
                rows.extend(r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
        });
    }
    rows
}

fn pause(b: &mut Book, rows: &mut Vec<Entry>, ts: i64, reason: String, until: Option<i64>) {
    b.interventions += 1;
    rows.push(Entry::new(
        b.key(),
        ts,
        PauseRow {
            reason: reason.clone(),
            until_ts: until,
        },
    ));
    b.risk.pause = Some(Pause {
        reason,
        since_ts: ts,
        until_ts: until,
    });
}

/// A gap: the book flattened at `last`'s close (the last bar it has) and paused until `until`.
fn gap(b: &mut Book, last: Bar, ts: i64, reason: String, until: i64, rows: &mut Vec<Entry>) {
    let held = b.engine().signed_size() != 0.0;
    b.runner.engine_mut().flatten(last, last.close);
    b.drain(ts, rows);
    rows.push(Entry::new(
        b.key(),
        ts,
        GapRow {
            flattened: held,
            reason: reason.clone(),
            until_ts: until,
        },
    ));
    pause(b, rows, ts, reason, Some(until));
}

/// A breach: the book flattened at `bar`'s close and paused.
fn breach(
    b: &mut Book,
    bar: Bar,
    ts: i64,
    reason: &str,
    until: Option<i64>,
    rows: &mut Vec<Entry>,
) {
    let held = b.engine().signed_size() != 0.0;
    b.runner.engine_mut().flatten(bar, bar.close);
    rows.push(Entry::new(
        b.key(),
        ts,
        BreachRow::Book {
            flattened: held,
            reason: reason.into(),
        },
    ));
    b.drain(ts, rows);
    pause(b, rows, ts, reason.to_string(), until);
}

/// What a replay booked, read back from its journal.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// Equity after each bar.
    pub equity: Vec<f64>,
    /// Trades in entry order; a position still open at the end is the last, reason `open`.
    pub trades: Vec<Trade>,
    pub bars_in_market: usize,
    /// Fill rows journaled.
    pub fills: usize,
    /// Sum of the fills' fees and of the funding rows, exact decimals.
    pub fees: rust_decimal::Decimal,
    pub funding: rust_decimal::Decimal,
}

/// Replays every bar of `market`, from its first, through a session of the one book `spec`
/// (the session's limits apply), journaling each bar into `conn` as `account`; then reads the
/// equity, trades, fills and funding back from the journal.
///
/// # Errors
/// [`SessionError`] when the journal refuses a write or a row cannot be read back.
pub fn replay(
    conn: &mut rusqlite::Connection,
    account: &str,
    cfg: SessionConfig,
    spec: BookSpec,
    market: &Market,
    written_ms: i64,
) -> Result<Replay, SessionError> {
    let key = spec.key();
    let coin = spec.coin.clone();
    let (mut session, rows) = Session::start(account, cfg, vec![spec], 0.0, &BTreeMap::new());
    journal::append(conn, account, &rows, written_ms)?;
    let mut history = History::new(&market.coin);
    let mut histories = Histories::new();
    for &ts in &market.candles.ts {
        // The session's strategies hold the history only while they decide.
        histories.clear();
        history.advance(Source::of(market), ts);
        histories.insert(coin.clone(), history.market().clone());
        let rows = session.on_bar(ts, &histories);
        journal::append(conn, account, &rows, written_ms)?;
    }
    let bad = |message: String| SessionError::State {
        account: account.to_string(),
        book: key.clone(),
        message,
    };
    let mut out = Replay {
        equity: Vec::with_capacity(market.candles.len()),
        trades: Vec::new(),
        bars_in_market: 0,
        fills: 0,
        fees: rust_decimal::Decimal::ZERO,
        funding: rust_decimal::Decimal::ZERO,
    };
    let mut seen_first = false;
    let kinds = [Kind::Equity, Kind::Trade, Kind::Fill, Kind::Funding];
    for e in journal::of_book(conn, account, &key, &kinds)? {
        match e.row {
            // The first snapshot is the session's start, before any bar.
            Row::Equity(_) if !seen_first => seen_first = true,
            Row::Equity(EquityRow::Book(b)) => out.equity.push(b.equity.0),
            Row::Equity(EquityRow::Portfolio(_)) => {
                return Err(bad("a book's equity row is the portfolio's".into()))
            }
            Row::Trade(t) => out.trades.push(t.trade()),
            Row::Fill(f) => {
                out.fills += 1;
                out.fees += journal::decimal(f.fee.0).normalize();
            }
            Row::Funding(f) => out.funding += journal::decimal(f.amount.0).normalize(),
            _ => {}
        }
    }
    if let Some(b) = session.books.pop() {
        let (open, in_market) = b.runner.finish(&market.candles);
        out.trades.extend(open);
        out.bars_in_market = in_market;
    }
    Ok(out)
}
