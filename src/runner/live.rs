//! Live trading: the paper session's books linked to Hyperliquid through the execution adapter
//! ([`crate::exchange::hyperliquid::adapter`]), which records its orders in the session's
//! journal ([`JournalLog`]); and reconciliation applied to the session.

use std::{collections::BTreeSet, path::Path, sync::Mutex};

use rusqlite::Connection;

use crate::{
    clock::Clock,
    exchange::hyperliquid::{
        adapter::{self, AckRow, IntentRow, OrderLog, OrderRecord, Reconciliation},
        exchange::{ExchangeClient, ExchangeError},
    },
    execution::types::VenueRules,
};

use super::journal::{self, Entry, JournalError, Kind, Row, PORTFOLIO};
use super::paper::Session;

/// The adapter's order log in the journal of `account`: `intent` and `ack` rows, committed
/// one at a time (one connection of its own).
pub struct JournalLog {
    conn: Mutex<Connection>,
    account: String,
    clock: std::sync::Arc<dyn Clock>,
}

impl JournalLog {
    /// The log of journal `account` in the database at `db`.
    ///
    /// # Errors
    /// [`JournalError`] when the database cannot be opened.
    pub fn open(
        db: &Path,
        account: &str,
        clock: std::sync::Arc<dyn Clock>,
    ) -> Result<Self, JournalError> {
        Ok(Self {
            conn: Mutex::new(crate::store::open(db)?),
            account: account.to_string(),
            clock,
        })
    }

    /// The rows of `kind` recorded for `cloid`, as `pick` reads them.
    fn rows<T>(
        &self,
        kind: Kind,
        cloid: &str,
        pick: fn(Row) -> Option<T>,
    ) -> Result<Vec<T>, String> {
        let conn = self.conn.lock().map_err(|_| "lock poisoned".to_string())?;
        Ok(
            journal::with_field(&conn, &self.account, kind, "cloid", cloid)
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter_map(|e| pick(e.row))
                .collect(),
        )
    }
}

impl OrderLog for JournalLog {
    fn record(&self, book: &str, ts: i64, row: OrderRecord) -> Result<(), String> {
        let row: Row = match row {
            OrderRecord::Intent(i) => i.into(),
            OrderRecord::Ack(a) => a.into(),
        };
        let mut conn = self.conn.lock().map_err(|_| "lock poisoned".to_string())?;
        journal::append(
            &mut conn,
            &self.account,
            &[Entry::new(book, ts, row)],
            self.clock.now_ms(),
        )
        .map_err(|e| e.to_string())
    }

    fn intents(&self, cloid: &str) -> Result<Vec<IntentRow>, String> {
        self.rows(Kind::Intent, cloid, |r| match r {
            Row::Intent(i) => Some(i),
            _ => None,
        })
    }

    fn acks(&self, cloid: &str) -> Result<Vec<AckRow>, String> {
        self.rows(Kind::Ack, cloid, |r| match r {
            Row::Ack(a) => Some(a),
            _ => None,
        })
    }
}

/// The funding payments the exchange booked on the account's `coins` since the last one
/// journaled (from the session's first bar when none is), as rows to journal: what the drift
/// ledger sets against the funding the books booked.
///
/// # Errors
/// [`ExchangeError`] when the exchange or the journal cannot be read.
pub async fn venue_funding(
    client: &ExchangeClient,
    conn: &Connection,
    account: &str,
    coins: &BTreeSet<String>,
) -> Result<Vec<Entry>, ExchangeError> {
    let read = |kind: Kind| {
        journal::of_kind(conn, account, kind)
            .map_err(|e| ExchangeError::Malformed(format!("journal: {e}")))
    };
    let since = match read(Kind::VenueFunding)?.last() {
        Some(e) => e.bar_ts + 1,
        None => read(Kind::Session)?.first().map_or(0, |e| e.bar_ts),
    };
    let mut paid = client.user_funding(since).await?;
    paid.retain(|p| p.time >= since && coins.contains(&p.coin));
    paid.sort_by(|a, b| (a.time, &a.coin).cmp(&(b.time, &b.coin)));
    Ok(paid
        .into_iter()
        .map(|p| {
            Entry::new(
                p.coin.clone(),
                p.time,
                journal::VenueFundingRow {
                    rate: p.rate.normalize(),
                    szi: p.szi.normalize(),
                    time: p.time,
                    usdc: p.usdc.normalize(),
                },
            )
        })
        .collect())
}

/// Reconciles `session` (journal `account` in `conn`) with the exchange
/// ([`adapter::reconcile`]): the coins whose position disagrees are halted. Returns what was
/// found and the rows to journal.
///
/// # Errors
/// [`ExchangeError`] when the exchange or the journal cannot be read.
pub async fn reconcile(
    client: &ExchangeClient,
    session: &mut Session,
    conn: &Connection,
    account: &str,
    assets: &std::collections::BTreeMap<String, (u32, VenueRules)>,
    cancel_unknown: bool,
) -> Result<(Reconciliation, Vec<Entry>), ExchangeError> {
    let read = |kind: Kind| {
        journal::of_kind(conn, account, kind)
            .map_err(|e| ExchangeError::Malformed(format!("journal: {e}")))
    };
    let known_cloids: BTreeSet<String> = read(Kind::Intent)?
        .into_iter()
        .filter_map(|e| match e.row {
            Row::Intent(i) => Some(i.cloid),
            _ => None,
        })
        .collect();
    let known_oids: BTreeSet<u64> = read(Kind::Ack)?
        .into_iter()
        .filter_map(|e| match e.row {
            Row::Ack(AckRow::Done { oid, .. }) => Some(oid),
            _ => None,
        })
        .collect();
    let r = adapter::reconcile(
        client,
        &session.net_positions(),
        &known_cloids,
        &known_oids,
        assets,
        cancel_unknown,
    )
    .await?;
    let mut rows = Vec::new();
    for (coin, reason) in &r.halted {
        rows.extend(session.halt(coin, reason));
    }
    let ts = session.last_ts().unwrap_or(0);
    rows.push(Entry::new(PORTFOLIO, ts, r.row.clone()));
    Ok((r, rows))
}
