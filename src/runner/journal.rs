//! The paper / live journal: every decision, order, fill, funding payment, trade, risk event
//! and equity snapshot, as rows of the registry's SQLite database (WAL, `synchronous=FULL`).
//!
//! A runner writes the rows of one bar in **one transaction, before** it moves its in-memory
//! books on, so after a crash the journal holds each bar either completely or not at all. The
//! last `equity` row of each book carries the book's whole state (engine, venue, risk), which
//! is what a restarted runner continues from.
//!
//! Each row is a typed [`Row`], one struct per [`Kind`] (the session, a bar, a decision, an
//! order, …). Its encoding, the `body` column, is the row's JSON with every object's keys in
//! sorted order ([`crate::store::sorted_json`]) — what every release since the journal began
//! wrote, so a journal of an older release reads, and writes back, byte for byte — and it is
//! read back by the row's `kind`; a row that does not read as its kind is refused naming its
//! `seq`. Money is written as decimal strings ([`Money`]): the shortest decimal that reads back
//! as the simulator's `f64`, so a journal compares exactly with a backtest; amounts from the
//! exchange stay its `Decimal`s. A book is named `strategy/coin` ([`book_key`]), a coin for its
//! bars, a strategy for its lifecycle checks, [`PORTFOLIO`] for the session's own rows; the name
//! is only written and matched, never taken apart.
//! Bodies hold nothing that depends on when they were written (that is the `written_ms`
//! column), so two runs over the same bars give identical journals.

use rusqlite::{params, Connection, OptionalExtension};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::exchange::hyperliquid::adapter::{
    AckRow, IntentRow, PositionCheck, ReconcileRow, UnknownFill, UnknownOrder,
};

/// The venue (API base URL) the session of `account` trades on, and since when; `None` before
/// its first run (or for a session journaled before venues were recorded).
///
/// # Errors
/// [`JournalError::Sql`].
pub fn venue_of(conn: &Connection, account: &str) -> Result<Option<(String, i64)>, JournalError> {
    Ok(conn
        .query_row(
            "SELECT url, since_ms FROM venues WHERE account = ?1",
            params![account],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Records `url` as the venue of `account` (kept if one is recorded already).
///
/// # Errors
/// [`JournalError::Sql`].
pub fn set_venue(
    conn: &Connection,
    account: &str,
    url: &str,
    at_ms: i64,
) -> Result<(), JournalError> {
    conn.execute(
        "INSERT INTO venues (account, url, since_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(account) DO NOTHING",
        params![account, url, at_ms],
    )?;
    Ok(())
}

/// The rows of `kind` of `account` whose body has `field` = `value` (e.g. the intent of a
/// cloid), in order.
///
/// # Errors
/// As [`entries`].
pub fn with_field(
    conn: &Connection,
    account: &str,
    kind: Kind,
    field: &str,
    value: &str,
) -> Result<Vec<Entry>, JournalError> {
    let path = format!("$.{field}");
    Ok(select(
        conn,
        account,
        " AND kind = ?2 AND json_extract(body, ?3) = ?4",
        &[kind.as_str(), &path, value],
        "seq",
    )?
    .into_iter()
    .map(|x| x.1)
    .collect())
}

/// The book name of portfolio-wide rows.
pub const PORTFOLIO: &str = "*";

/// What a journal row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A session started: its books, capital and limits.
    Session,
    /// A closed bar of a coin, as received.
    Bar,
    /// A strategy's target at a bar's close, with the regime and risk adjustments.
    Decision,
    Order,
    Fill,
    Funding,
    /// A round trip closed.
    Trade,
    /// A book's (or the portfolio's) marked equity and state after a bar.
    Equity,
    /// A risk limit was breached: what was flattened and paused.
    Breach,
    Pause,
    Resume,
    /// The kill switch flattened everything.
    Kill,
    /// Bars missing from the feed: the book paused instead of trading across them.
    Gap,
    /// A lifecycle check: tracking against the replay, rolling Sharpe, eligibility, retirement.
    Lifecycle,
    /// Live: an order about to be sent (its cloid), written before it is sent.
    Intent,
    /// Live: what the exchange answered to an intent (or what `orderStatus` later said).
    Ack,
    /// Live: a reconciliation with the exchange and what it found.
    Reconcile,
    /// A step of the improvement cycle (`organism cycle`) and how it ended.
    Cycle,
    /// Live: a funding payment the exchange booked on the account (`userFunding`).
    VenueFunding,
    /// Something to tell the operator (and alerts): a restart, a stop, a promotion's result, a
    /// finished run.
    Notice,
}

impl Kind {
    pub const ALL: [Kind; 20] = [
        Kind::Session,
        Kind::Bar,
        Kind::Decision,
        Kind::Order,
        Kind::Fill,
        Kind::Funding,
        Kind::Trade,
        Kind::Equity,
        Kind::Breach,
        Kind::Pause,
        Kind::Resume,
        Kind::Kill,
        Kind::Gap,
        Kind::Lifecycle,
        Kind::Intent,
        Kind::Ack,
        Kind::Reconcile,
        Kind::Cycle,
        Kind::VenueFunding,
        Kind::Notice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::Bar => "bar",
            Kind::Decision => "decision",
            Kind::Order => "order",
            Kind::Fill => "fill",
            Kind::Funding => "funding",
            Kind::Trade => "trade",
            Kind::Equity => "equity",
            Kind::Breach => "breach",
            Kind::Pause => "pause",
            Kind::Resume => "resume",
            Kind::Kill => "kill",
            Kind::Gap => "gap",
            Kind::Lifecycle => "lifecycle",
            Kind::Intent => "intent",
            Kind::Ack => "ack",
            Kind::Reconcile => "reconcile",
            Kind::Cycle => "cycle",
            Kind::VenueFunding => "venue-funding",
            Kind::Notice => "notice",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The book of a strategy on a coin: `strategy/coin` (the `book` column's encoding; neither a
/// registry id nor a coin contains `/`).
pub fn book_key(strategy: &str, coin: &str) -> String {
    format!("{strategy}/{coin}")
}

/// One row.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `strategy/coin` ([`book_key`]), a coin for bars, a strategy for lifecycle checks, or
    /// [`PORTFOLIO`].
    pub book: String,
    /// Open time of the bar it belongs to.
    pub bar_ts: i64,
    pub row: Row,
}

/// Two rows are the same when they are written the same.
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.book == other.book
            && self.bar_ts == other.bar_ts
            && self.kind() == other.kind()
            && self.body() == other.body()
    }
}

impl Entry {
    pub fn new(book: impl Into<String>, bar_ts: i64, row: impl Into<Row>) -> Self {
        Self {
            book: book.into(),
            bar_ts,
            row: row.into(),
        }
    }

    pub fn kind(&self) -> Kind {
        self.row.kind()
    }

    /// The row as it is stored (JSON), for display and inspection.
    pub fn body(&self) -> Value {
        serde_json::to_value(&self.row).unwrap_or(Value::Null)
    }
}

/// A money amount of the simulator (`f64`), written as the shortest decimal string that reads
/// back as the same `f64` ([`decimal`]; `0` for a non-finite value, which the engine never
/// books), so a journal compares exactly with a backtest.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Money(pub f64);

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&decimal(self.0).normalize().to_string())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = String::deserialize(d)?;
        t.parse::<f64>()
            .map(Money)
            .map_err(|_| serde::de::Error::custom(format!("`{t}` is not a decimal amount")))
    }
}

/// A session's start: its books, capital, costs and limits (book [`PORTFOLIO`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRow {
    pub book_limits: LimitsRow,
    pub books: Vec<SessionBook>,
    pub capital: Money,
    pub fee: f64,
    /// The fill model (`next-open`, …).
    pub fill: String,
    pub funding: bool,
    pub portfolio_limits: LimitsRow,
    /// Capital no book holds.
    pub reserve: Money,
    pub slippage: f64,
}

/// One book of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionBook {
    /// `strategy/coin` ([`book_key`]).
    pub book: String,
    pub cash: Money,
    /// Whether it trades behind the regime filter.
    pub regime: bool,
    /// Bars of history it was warmed up on.
    pub warmup_bars: usize,
}

/// Risk limits as a session records them (`None`: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LimitsRow {
    pub daily_loss: Option<f64>,
    pub max_drawdown: Option<f64>,
    pub max_gross_leverage: Option<f64>,
}

/// A closed bar of a coin, as received (book: the coin).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BarRow {
    pub close: Money,
    #[serde(deserialize_with = "crate::store::real")]
    pub funding_rate: f64,
    pub high: Money,
    pub low: Money,
    pub open: Money,
    pub volume: Money,
}

/// A target as journaled (a NaN position is flat, written 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TargetRow {
    pub position: f64,
    pub stop: Option<f64>,
    pub take: Option<f64>,
}

impl From<&crate::strategy::Target> for TargetRow {
    fn from(t: &crate::strategy::Target) -> Self {
        Self {
            position: if t.position.is_nan() { 0.0 } else { t.position },
            stop: t.stop,
            take: t.take,
        }
    }
}

/// A strategy's target at a bar's close: raw, after the regime filter, and traded (flat when
/// paused), with the bar's regimes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionRow {
    pub paused: bool,
    pub raw: TargetRow,
    pub regime_target: TargetRow,
    pub sentiment: Option<String>,
    pub target: TargetRow,
    pub volatility: Option<String>,
}

/// An order the engine placed (market, at the reference price).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderRow {
    pub id: u64,
    pub qty: Money,
    pub reference_price: Money,
    pub side: crate::execution::OrderSide,
    /// Always `market`.
    #[serde(rename = "type")]
    pub order_type: String,
}

/// A fill of an order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FillRow {
    pub fee: Money,
    pub id: u64,
    pub notional: Money,
    pub price: Money,
    pub qty: Money,
    pub side: crate::execution::OrderSide,
}

/// A funding payment (negative when paid).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FundingRow {
    pub amount: Money,
}

/// A closed round trip: every field of [`crate::execution::Trade`], money as decimals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TradeRow {
    pub entry_bar: usize,
    pub entry_price: Money,
    pub entry_ts: i64,
    pub exit_bar: usize,
    pub exit_price: Money,
    pub exit_reason: crate::execution::ExitReason,
    pub exit_ts: i64,
    pub fees: Money,
    pub funding: Money,
    pub pnl: Money,
    pub side: crate::execution::Side,
    pub size: Money,
}

impl From<&crate::execution::Trade> for TradeRow {
    fn from(t: &crate::execution::Trade) -> Self {
        Self {
            entry_bar: t.entry_bar,
            entry_price: Money(t.entry_price),
            entry_ts: t.entry_ts,
            exit_bar: t.exit_bar,
            exit_price: Money(t.exit_price),
            exit_reason: t.exit_reason,
            exit_ts: t.exit_ts,
            fees: Money(t.fees),
            funding: Money(t.funding),
            pnl: Money(t.pnl),
            side: t.side,
            size: Money(t.size),
        }
    }
}

impl TradeRow {
    /// The trade.
    pub fn trade(&self) -> crate::execution::Trade {
        crate::execution::Trade {
            side: self.side,
            entry_bar: self.entry_bar,
            entry_ts: self.entry_ts,
            entry_price: self.entry_price.0,
            exit_bar: self.exit_bar,
            exit_ts: self.exit_ts,
            exit_price: self.exit_price.0,
            size: self.size.0,
            fees: self.fees.0,
            funding: self.funding.0,
            pnl: self.pnl.0,
            exit_reason: self.exit_reason,
        }
    }
}

/// A book's or the portfolio's marked equity and whole state after a bar: what a restarted
/// session continues from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EquityRow {
    Book(Box<BookEquity>),
    Portfolio(PortfolioEquity),
}

/// A book's equity row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookEquity {
    pub cash: Money,
    pub close: Money,
    pub equity: Money,
    /// Why it is paused, if it is.
    pub paused: Option<String>,
    /// Signed size in coins.
    pub position: Money,
    /// The equity of the replay of the same bars without risk interventions.
    pub replay_equity: Money,
    pub state: super::paper::BookState,
}

/// The portfolio's equity row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortfolioEquity {
    pub equity: Money,
    /// Open notional.
    pub gross: Money,
    pub killed: bool,
    pub state: super::paper::PortfolioState,
}

/// A risk limit breached: a book flattened (and paused), or the portfolio's limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BreachRow {
    Book { flattened: bool, reason: String },
    Portfolio { equity: Money, reason: String },
}

/// A book paused, until a bar or until resumed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PauseRow {
    pub reason: String,
    pub until_ts: Option<i64>,
}

/// A book trading again (`was`: the reason of the pause an operator ended).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResumeRow {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<String>,
}

/// The kill switch: the session's (every book flattened and stopped) or, live, what it did on
/// the exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KillRow {
    Session {
        reason: String,
    },
    Exchange {
        /// The open orders cancelled (exchange order ids).
        cancelled_orders: Vec<u64>,
        closed_positions: Vec<ClosedPosition>,
    },
}

/// A position the kill switch found on the exchange and closed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClosedPosition {
    pub coin: String,
    pub filled: f64,
    pub oid: u64,
    pub size: String,
}

/// Bars missing from the feed: the book flattened (if it held anything) and paused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GapRow {
    pub flattened: bool,
    pub reason: String,
    pub until_ts: i64,
}

/// A strategy's lifecycle check (book: the strategy): tracking against the replay, its paper
/// Sharpe against validation, eligibility for live, retirement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifecycleRow {
    #[serde(deserialize_with = "crate::store::real")]
    pub days: f64,
    pub eligible: bool,
    /// The fills' slippage beyond the model's so far (notional-weighted mean, bps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill_drift_bps: Option<f64>,
    pub interventions: usize,
    pub paper_return: Money,
    pub reason: String,
    pub replay_return: Money,
    #[serde(deserialize_with = "crate::store::real")]
    pub sharpe: f64,
    pub tracking: Money,
    pub validation_sharpe: Option<f64>,
    /// `ok`, `eligible` or `retire`.
    pub verdict: String,
    /// Standard errors of the paper Sharpe from the validation Sharpe.
    pub z: Option<f64>,
}

/// Live: a funding payment of the account as the exchange booked it (book: the coin; bar: the
/// payment's time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VenueFundingRow {
    pub rate: rust_decimal::Decimal,
    /// The position it was paid on.
    pub szi: rust_decimal::Decimal,
    pub time: i64,
    /// Received (positive) or paid (negative), USDC.
    pub usdc: rust_decimal::Decimal,
}

/// Something to tell the operator: `event` (`restart`, `stop`, `promote`, `evolve`) and what
/// happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoticeRow {
    pub event: String,
    pub text: String,
}

/// A step of the improvement cycle (book: the period, e.g. `2026-12-07`; bar: its start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CycleRow {
    pub period: String,
    /// `fetch`, `evolve`, `promote`, `paper`, `retire`, or `done` once every step is.
    pub step: String,
    /// `ok` or `failed`.
    pub outcome: String,
    pub detail: String,
}

macro_rules! rows {
    ($($kind:ident($t:ty)),* $(,)?) => {
        /// One journal row's content, by kind. Stored in the `body` column as JSON with its
        /// keys sorted ([`crate::store::sorted_json`]), the encoding every release wrote;
        /// read back by the row's `kind`.
        #[derive(Debug, Clone, Serialize)]
        #[serde(untagged)]
        pub enum Row {
            $($kind($t),)*
        }

        impl Row {
            pub fn kind(&self) -> Kind {
                match self {
                    $(Self::$kind(_) => Kind::$kind,)*
                }
            }

            /// The row of `kind` written as `body`.
            fn decode(kind: Kind, body: &str) -> serde_json::Result<Self> {
                Ok(match kind {
                    $(Kind::$kind => Self::$kind(serde_json::from_str(body)?),)*
                })
            }
        }

        $(impl From<$t> for Row {
            fn from(r: $t) -> Self {
                Self::$kind(r)
            }
        })*
    };
}

rows! {
    Session(SessionRow),
    Bar(BarRow),
    Decision(DecisionRow),
    Order(OrderRow),
    Fill(FillRow),
    Funding(FundingRow),
    Trade(TradeRow),
    Equity(EquityRow),
    Breach(BreachRow),
    Pause(PauseRow),
    Resume(ResumeRow),
    Kill(KillRow),
    Gap(GapRow),
    Lifecycle(LifecycleRow),
    Intent(IntentRow),
    Ack(AckRow),
    Reconcile(ReconcileRow),
    Cycle(CycleRow),
    VenueFunding(VenueFundingRow),
    Notice(NoticeRow),
}

/// Journal errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    #[error("journal: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("journal row {seq}: {message}")]
    Corrupt { seq: i64, message: String },
}

pub use crate::execution::types::decimal;

/// Appends `entries` of `account` in one transaction.
///
/// # Errors
/// [`JournalError::Sql`] when the database refuses; nothing is written then.
pub fn append(
    conn: &mut Connection,
    account: &str,
    entries: &[Entry],
    written_ms: i64,
) -> Result<(), JournalError> {
    append_acting_on(conn, account, entries, &[], written_ms)
}

fn row(seq: i64, book: String, bar_ts: i64, kind: &str, body: &str) -> Result<Entry, JournalError> {
    let corrupt = |message: String| JournalError::Corrupt { seq, message };
    let kind = Kind::parse(kind).ok_or_else(|| corrupt(format!("unknown kind `{kind}`")))?;
    let row = Row::decode(kind, body)
        .map_err(|e| corrupt(format!("{} row does not read: {e}", kind.as_str())))?;
    Ok(Entry { book, bar_ts, row })
}

/// A row with where it stands: its `seq`, when it was written and its account.
struct Stored {
    seq: i64,
    written_ms: i64,
    account: String,
    entry: Entry,
}

/// The rows matching `filter` (SQL over the columns, its parameters `args`), in `order`.
fn query(
    conn: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
    order: &str,
) -> Result<Vec<Stored>, JournalError> {
    let mut st = conn.prepare(&format!(
        "SELECT seq, written_ms, account, book, bar_ts, kind, body FROM journal WHERE {filter} ORDER BY {order}"
    ))?;
    let rows = st.query_map(args, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (seq, written_ms, account, book, ts, kind, body) = r?;
        out.push(Stored {
            seq,
            written_ms,
            account,
            entry: row(seq, book, ts, &kind, &body)?,
        });
    }
    Ok(out)
}

/// Rows of `account` matching `filter` (SQL over `book` and `kind`, parameters from `?2`),
/// in `order`, each with its `seq` and `written_ms`.
fn select_written(
    conn: &Connection,
    account: &str,
    filter: &str,
    args: &[&str],
    order: &str,
) -> Result<Vec<(i64, i64, Entry)>, JournalError> {
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&account];
    values.extend(args.iter().map(|a| a as &dyn rusqlite::ToSql));
    Ok(
        query(conn, &format!("account = ?1{filter}"), &values, order)?
            .into_iter()
            .map(|s| (s.seq, s.written_ms, s.entry))
            .collect(),
    )
}

/// The rows of every account after `after` (up to `upto`, else at most `limit` of them) whose
/// kind is one of `kinds`, in order: `(seq, account, entry)`.
///
/// # Errors
/// As [`entries`].
pub fn across_accounts(
    conn: &Connection,
    after: i64,
    upto: Option<i64>,
    kinds: &[Kind],
    limit: usize,
) -> Result<Vec<(i64, String, Entry)>, JournalError> {
    let kinds = kinds
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(",");
    let limit = if upto.is_some() { -1 } else { limit as i64 };
    let upto = upto.unwrap_or(i64::MAX);
    Ok(query(
        conn,
        &format!("seq > ?1 AND seq <= ?2 AND kind IN ({kinds})"),
        &[&after, &upto],
        &format!("seq LIMIT {limit}"),
    )?
    .into_iter()
    .map(|s| (s.seq, s.account, s.entry))
    .collect())
}

/// As [`select_written`], without the write times.
fn select(
    conn: &Connection,
    account: &str,
    filter: &str,
    args: &[&str],
    order: &str,
) -> Result<Vec<(i64, Entry)>, JournalError> {
    Ok(select_written(conn, account, filter, args, order)?
        .into_iter()
        .map(|(seq, _, e)| (seq, e))
        .collect())
}

/// Every row of `account`, in order (`seq`, entry).
///
/// # Errors
/// [`JournalError`] on a database error or a row this build cannot read.
pub fn entries(conn: &Connection, account: &str) -> Result<Vec<(i64, Entry)>, JournalError> {
    select(conn, account, "", &[], "seq")
}

/// Every row of `account` with the wall-clock time it was written, in order (`seq`,
/// `written_ms`, entry).
///
/// # Errors
/// As [`entries`].
pub fn entries_written(
    conn: &Connection,
    account: &str,
) -> Result<Vec<(i64, i64, Entry)>, JournalError> {
    select_written(conn, account, "", &[], "seq")
}

/// The last row of `account`.
///
/// # Errors
/// As [`entries`].
pub fn last(conn: &Connection, account: &str) -> Result<Option<Entry>, JournalError> {
    Ok(select(conn, account, "", &[], "seq DESC LIMIT 1")?
        .pop()
        .map(|x| x.1))
}

/// The latest row of `kind` for `book` of `account`.
///
/// # Errors
/// As [`entries`].
pub fn latest(
    conn: &Connection,
    account: &str,
    book: &str,
    kind: Kind,
) -> Result<Option<Entry>, JournalError> {
    let mut found = select(
        conn,
        account,
        " AND book = ?2 AND kind = ?3",
        &[book, kind.as_str()],
        "seq DESC LIMIT 1",
    )?;
    Ok(found.pop().map(|x| x.1))
}

/// Rows of `kind` of `account` (all books), in order.
///
/// # Errors
/// As [`entries`].
pub fn of_kind(conn: &Connection, account: &str, kind: Kind) -> Result<Vec<Entry>, JournalError> {
    Ok(
        select(conn, account, " AND kind = ?2", &[kind.as_str()], "seq")?
            .into_iter()
            .map(|x| x.1)
            .collect(),
    )
}

/// Rows of `book` of `account` whose kind is one of `kinds`, in order.
///
/// # Errors
/// As [`entries`].
pub fn of_book(
    conn: &Connection,
    account: &str,
    book: &str,
    kinds: &[Kind],
) -> Result<Vec<Entry>, JournalError> {
    let places: Vec<String> = (0..kinds.len()).map(|i| format!("?{}", i + 3)).collect();
    let mut args = vec![book];
    args.extend(kinds.iter().map(|k| k.as_str()));
    let filter = format!(" AND book = ?2 AND kind IN ({})", places.join(", "));
    Ok(select(conn, account, &filter, &args, "seq")?
        .into_iter()
        .map(|x| x.1)
        .collect())
}

/// What an operator asks of a running session (the `action` column: `stop`, `resume`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The kill switch: every book flattened, the session stopped.
    Stop,
    /// Trading again (one strategy's books, or every book).
    Resume,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Resume => "resume",
        }
    }
}

/// An operator's request to a running session.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    pub id: i64,
    pub action: Action,
    /// The book to resume (`None`: every book).
    pub book: Option<String>,
    pub reason: String,
}

/// Files a request (`paper stop`, `paper resume`).
///
/// # Errors
/// [`JournalError::Sql`].
pub fn request(
    conn: &Connection,
    account: &str,
    action: Action,
    book: Option<&str>,
    reason: &str,
    at_ms: i64,
) -> Result<(), JournalError> {
    conn.execute(
        "INSERT INTO paper_control (account, action, book, reason, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account, action.as_str(), book, reason, at_ms],
    )?;
    Ok(())
}

/// Requests not yet acted on, oldest first.
///
/// # Errors
/// [`JournalError::Sql`].
pub fn pending(conn: &Connection, account: &str) -> Result<Vec<Control>, JournalError> {
    let mut st = conn.prepare(
        "SELECT id, action, book, reason FROM paper_control
         WHERE account = ?1 AND done_ms IS NULL ORDER BY id",
    )?;
    let rows = st.query_map(params![account], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get(2)?,
            r.get(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (id, action, book, reason) = r?;
        let action = match action.as_str() {
            "stop" => Action::Stop,
            "resume" => Action::Resume,
            other => {
                return Err(JournalError::Corrupt {
                    seq: id,
                    message: format!("control request {id}: unknown action `{other}`"),
                })
            }
        };
        out.push(Control {
            id,
            action,
            book,
            reason,
        });
    }
    Ok(out)
}

/// Appends `entries` and marks the requests `done` in the same transaction.
///
/// # Errors
/// As [`append`].
pub fn append_acting_on(
    conn: &mut Connection,
    account: &str,
    entries: &[Entry],
    done: &[i64],
    written_ms: i64,
) -> Result<(), JournalError> {
    let tx = conn.transaction()?;
    for id in done {
        tx.execute(
            "UPDATE paper_control SET done_ms = ?1 WHERE id = ?2",
            params![written_ms, id],
        )?;
    }
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO journal (account, book, bar_ts, kind, body, written_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for e in entries {
            let body = crate::store::sorted_json(&e.row).map_err(|err| JournalError::Corrupt {
                seq: 0,
                message: format!("a {} row cannot be written: {err}", e.kind().as_str()),
            })?;
            st.execute(params![
                account,
                e.book,
                e.bar_ts,
                e.kind().as_str(),
                body,
                written_ms
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        crate::store::open_in_memory().unwrap()
    }

    #[test]
    fn rows_come_back_in_order_and_money_is_exact() {
        let mut c = db();
        let e1 = Entry::new(
            "a/BTC",
            3_600_000,
            FillRow {
                fee: Money(0.5),
                id: 3,
                notional: Money(3.0),
                price: Money(0.1 + 0.2),
                qty: Money(10.0),
                side: crate::execution::OrderSide::Buy,
            },
        );
        let e2 = Entry::new(PORTFOLIO, 3_600_000, FundingRow { amount: Money(1e4) });
        append(&mut c, "paper", &[e1.clone(), e2.clone()], 5).unwrap();
        append(&mut c, "other", std::slice::from_ref(&e1), 6).unwrap();
        let got: Vec<Entry> = entries(&c, "paper")
            .unwrap()
            .into_iter()
            .map(|x| x.1)
            .collect();
        assert_eq!(got, vec![e1.clone(), e2.clone()]);
        // 0.1 + 0.2 = 0.30000000000000004 in f64: written as such, not as 0.3, and read back
        // as the same f64.
        let body: String = c
            .query_row("SELECT body FROM journal WHERE seq = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            body,
            r#"{"fee":"0.5","id":3,"notional":"3","price":"0.30000000000000004","qty":"10","side":"buy"}"#
        );
        let Row::Fill(f) = &got[0].row else {
            panic!("{:?}", got[0])
        };
        assert_eq!(f.price.0, 0.1 + 0.2);
        assert_eq!(got[1].body()["amount"], "10000");
        assert_eq!(latest(&c, "paper", "a/BTC", Kind::Fill).unwrap(), Some(e1));
        assert_eq!(latest(&c, "paper", "a/BTC", Kind::Funding).unwrap(), None);
        assert_eq!(of_kind(&c, "paper", Kind::Funding).unwrap(), vec![e2]);
    }

    /// Every row of the journal release ba5d92a wrote (`tests/data/store_ba5d92a`: a paper
    /// session with a kill switch and a resume, a live dry run and a live session with orders)
    /// reads as its typed row and writes back byte for byte; so does a lifecycle check of that
    /// release (copied from one of its journals).
    #[test]
    fn the_journal_of_release_ba5d92a_reads_and_writes_back_the_same() {
        let file = std::path::Path::new("tests/data/store_ba5d92a/registry.db");
        let c =
            Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let mut st = c
            .prepare("SELECT seq, book, bar_ts, kind, body FROM journal ORDER BY seq")
            .unwrap();
        let rows: Vec<(i64, String, i64, String, String)> = st
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut kinds = std::collections::BTreeSet::new();
        let lifecycle = r#"{"days":0.875,"eligible":false,"interventions":0,"paper_return":"0","reason":"","replay_return":"0","sharpe":0.0,"tracking":"0","validation_sharpe":2.9446742980697636,"verdict":"ok","z":-0.1441409615054077}"#;
        let extra = (
            0,
            "donchian_breakout_40_4169dc92".to_string(),
            1_796_684_400_000,
            "lifecycle".to_string(),
            lifecycle.to_string(),
        );
        for (seq, book, ts, kind, body) in rows.iter().cloned().chain([extra]) {
            let e = row(seq, book, ts, &kind, &body).unwrap();
            assert_eq!(e.kind().as_str(), kind);
            assert_eq!(
                crate::store::sorted_json(&e.row).unwrap(),
                body,
                "row {seq}"
            );
            kinds.insert(kind);
        }
        assert_eq!(rows.len(), 256);
        // Every kind but a gap and a book's breach, which that session did not meet.
        assert_eq!(kinds.len(), 15, "{kinds:?}");
    }

    #[test]
    fn a_row_that_does_not_read_as_its_kind_is_named() {
        let c = db();
        c.execute(
            "INSERT INTO journal (account, book, bar_ts, kind, body, written_ms) VALUES ('p', 'b', 0, 'funding', '{\"amount\":\"x1\"}', 0)",
            [],
        )
        .unwrap();
        let e = entries(&c, "p").unwrap_err().to_string();
        assert_eq!(
            e,
            "journal row 1: funding row does not read: `x1` is not a decimal amount at line 1 column 15"
        );
    }

    #[test]
    fn control_requests_are_acted_on_once() {
        let mut c = db();
        request(&c, "paper", Action::Stop, None, "operator", 1).unwrap();
        let p = pending(&c, "paper").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].action, Action::Stop);
        let e = Entry::new(
            PORTFOLIO,
            0,
            KillRow::Session {
                reason: "operator".into(),
            },
        );
        append_acting_on(&mut c, "paper", &[e], &[p[0].id], 2).unwrap();
        assert!(pending(&c, "paper").unwrap().is_empty());
        assert_eq!(entries(&c, "paper").unwrap().len(), 1);
    }

    #[test]
    fn a_row_this_build_cannot_read_is_named() {
        let c = db();
        c.execute(
            "INSERT INTO journal (account, book, bar_ts, kind, body, written_ms) VALUES ('p', 'b', 0, 'nonsense', '{}', 0)",
            [],
        )
        .unwrap();
        let e = entries(&c, "p").unwrap_err().to_string();
        assert_eq!(e, "journal row 1: unknown kind `nonsense`");
    }
}
