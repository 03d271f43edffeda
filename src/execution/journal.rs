//! The paper / live journal: every decision, order, fill, funding payment, trade, risk event
//! and equity snapshot, as rows of the registry's SQLite database (WAL, `synchronous=FULL`).
//!
//! A runner writes the rows of one bar in **one transaction, before** it moves its in-memory
//! books on, so after a crash the journal holds each bar either completely or not at all. The
//! last `equity` row of each book carries the book's whole state (engine, venue, risk), which
//! is what a restarted runner continues from.
//!
//! Money in bodies is written as decimal strings ([`money`]): the shortest decimal that reads
//! back as the simulator's `f64`, so a journal compares exactly with a backtest.
//! Bodies hold nothing that depends on when they were written (that is the `written_ms`
//! column), so two runs over the same bars give identical journals.

use rusqlite::{params, Connection, OptionalExtension};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// The last nonce `signer` used (0 for none).
///
/// # Errors
/// [`JournalError::Sql`].
pub fn last_nonce(conn: &Connection, signer: &str) -> Result<u64, JournalError> {
    let v: Option<i64> = conn
        .query_row(
            "SELECT last FROM nonces WHERE signer = ?1",
            params![signer],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.map_or(0, |x| x.max(0) as u64))
}

/// Records `nonce` as the last one `signer` used (durable when it returns).
///
/// # Errors
/// [`JournalError::Sql`].
pub fn save_nonce(conn: &Connection, signer: &str, nonce: u64) -> Result<(), JournalError> {
    conn.execute(
        "INSERT INTO nonces (signer, last) VALUES (?1, ?2)
         ON CONFLICT(signer) DO UPDATE SET last = MAX(last, excluded.last)",
        params![signer, nonce as i64],
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
}

impl Kind {
    pub const ALL: [Kind; 17] = [
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
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// `strategy/coin`, a coin for bars, or [`PORTFOLIO`].
    pub book: String,
    /// Open time of the bar it belongs to.
    pub bar_ts: i64,
    pub kind: Kind,
    pub body: Value,
}

impl Entry {
    pub fn new(book: impl Into<String>, bar_ts: i64, kind: Kind, body: Value) -> Self {
        Self {
            book: book.into(),
            bar_ts,
            kind,
            body,
        }
    }
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

/// The shortest decimal that reads back as `x` (`0` for a non-finite value, which the engine
/// never books).
pub fn decimal(x: f64) -> Decimal {
    use rust_decimal::prelude::FromPrimitive;
    if !x.is_finite() {
        return Decimal::ZERO;
    }
    Decimal::from_str_exact(&format!("{x}"))
        .ok()
        .or_else(|| Decimal::from_f64(x))
        .unwrap_or(Decimal::ZERO)
}

/// `x` as a decimal string for a journal body (see [`decimal`]).
pub fn money(x: f64) -> Value {
    Value::String(decimal(x).normalize().to_string())
}

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
    let body = serde_json::from_str(body).map_err(|e| corrupt(format!("body: {e}")))?;
    Ok(Entry {
        book,
        bar_ts,
        kind,
        body,
    })
}

/// Rows of `account` matching `filter` (SQL over `book` and `kind`, parameters from `?2`),
/// in `order`.
fn select(
    conn: &Connection,
    account: &str,
    filter: &str,
    args: &[&str],
    order: &str,
) -> Result<Vec<(i64, Entry)>, JournalError> {
    let mut st = conn.prepare(&format!(
        "SELECT seq, book, bar_ts, kind, body FROM journal WHERE account = ?1{filter} ORDER BY {order}"
    ))?;
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&account];
    values.extend(args.iter().map(|a| a as &dyn rusqlite::ToSql));
    let rows = st.query_map(values.as_slice(), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (seq, book, ts, kind, body) = r?;
        out.push((seq, row(seq, book, ts, &kind, &body)?));
    }
    Ok(out)
}

/// Every row of `account`, in order (`seq`, entry).
///
/// # Errors
/// [`JournalError`] on a database error or a row this build cannot read.
pub fn entries(conn: &Connection, account: &str) -> Result<Vec<(i64, Entry)>, JournalError> {
    select(conn, account, "", &[], "seq")
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

/// An operator's request to a running session.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    pub id: i64,
    /// `stop` (the kill switch) or `resume`.
    pub action: String,
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
    action: &str,
    book: Option<&str>,
    reason: &str,
    at_ms: i64,
) -> Result<(), JournalError> {
    conn.execute(
        "INSERT INTO paper_control (account, action, book, reason, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account, action, book, reason, at_ms],
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
        Ok(Control {
            id: r.get(0)?,
            action: r.get(1)?,
            book: r.get(2)?,
            reason: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
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
            st.execute(params![
                account,
                e.book,
                e.bar_ts,
                e.kind.as_str(),
                e.body.to_string(),
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
    use serde_json::json;

    fn db() -> Connection {
        crate::store::open_in_memory().unwrap()
    }

    #[test]
    fn rows_come_back_in_order_and_money_is_exact() {
        let mut c = db();
        let e1 = Entry::new(
            "a/BTC",
            3_600_000,
            Kind::Fill,
            json!({"price": money(0.1 + 0.2)}),
        );
        let e2 = Entry::new(
            PORTFOLIO,
            3_600_000,
            Kind::Equity,
            json!({"equity": money(1e4)}),
        );
        append(&mut c, "paper", &[e1.clone(), e2.clone()], 5).unwrap();
        append(&mut c, "other", std::slice::from_ref(&e1), 6).unwrap();
        let got: Vec<Entry> = entries(&c, "paper")
            .unwrap()
            .into_iter()
            .map(|x| x.1)
            .collect();
        assert_eq!(got, vec![e1.clone(), e2.clone()]);
        // 0.1 + 0.2 = 0.30000000000000004 in f64: written as such, not as 0.3.
        assert_eq!(got[0].body["price"], "0.30000000000000004");
        assert_eq!(got[1].body["equity"], "10000");
        assert_eq!(latest(&c, "paper", "a/BTC", Kind::Fill).unwrap(), Some(e1));
        assert_eq!(latest(&c, "paper", "a/BTC", Kind::Equity).unwrap(), None);
        assert_eq!(of_kind(&c, "paper", Kind::Equity).unwrap(), vec![e2]);
    }

    #[test]
    fn control_requests_are_acted_on_once() {
        let mut c = db();
        request(&c, "paper", "stop", None, "operator", 1).unwrap();
        let p = pending(&c, "paper").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].action, "stop");
        let e = Entry::new(PORTFOLIO, 0, Kind::Kill, json!({}));
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
