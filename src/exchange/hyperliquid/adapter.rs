//! The Hyperliquid execution adapter: the [`LiveExecutor`] a live session's books send their
//! orders through (and keep their stops resting with), [`reconcile`] and the nonces kept in the
//! registry's database. What it sends and learns it records through an [`OrderLog`] (the
//! session's journal).
//!
//! **Idempotency.** Each order of a book has an intent name (bar, phase, number; see
//! [`crate::execution::paper`]) and a cloid derived from the book and the intent. Before an order
//! is signed, an `intent` row with its cloid is committed to the order log. A restart replays the
//! bar from the previous bar's journaled state, so the same decisions produce the same intents
//! and cloids: the executor finds the intent, asks `orderStatus` by cloid, and books the fills
//! the exchange reports instead of sending anything. An order whose request got no answer is
//! sent again only once `orderStatus` says the exchange never saw it *and* the first request
//! has expired (every request carries `expiresAfter`), so no order is ever placed twice.
//!
//! **Reconciliation** ([`reconcile`]) compares the exchange's positions, open orders and fills
//! with the books and the order log: a coin whose position disagrees is to be halted (the
//! session halts its books); orders organism did not send are reported (and cancelled by
//! config); fills the log does not know are reported.
//!
//! **Dry run.** With [`DryRun`], orders are signed exactly as they would be sent, printed as
//! one JSON line each, and filled as paper fills (the simulated venue's costs).

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use rusqlite::{Connection, OptionalExtension};
use rust_decimal::{prelude::ToPrimitive, Decimal};
use serde::{Deserialize, Serialize};

use crate::{
    clock::Clock,
    exchange::hyperliquid::{
        exchange::{ExchangeClient, ExchangeError, NonceStore, OrderState, PlacedStatus, UserFill},
        signing::{SignError, Signer},
        wire::{to_wire, Action, Cloid, OidOrCloid, OrderTypeWire, OrderWire, Tif, Tpsl},
    },
    execution::{
        paper::{ExecutionClient, FillEvent, Phase, Stops, SubmitOrder},
        types::VenueRules,
        Costs, ExitReason, Fill, OrderSide, Side, VenueError,
    },
    store::StoreError,
};

/// Where the adapter records what it sends and what it learns of each order, durably before it
/// goes on (the session's journal: `intent` and `ack` rows), and finds them again by cloid.
pub trait OrderLog: Send + Sync {
    /// Records `row` for `book` in bar `ts`.
    ///
    /// # Errors
    /// A message when it could not be recorded: nothing is sent after a failed intent.
    fn record(&self, book: &str, ts: i64, row: OrderRecord) -> Result<(), String>;
    /// The intents recorded for `cloid`, oldest first.
    ///
    /// # Errors
    /// A message when the log cannot be read.
    fn intents(&self, cloid: &str) -> Result<Vec<IntentRow>, String>;
    /// The answers recorded for `cloid`, oldest first.
    ///
    /// # Errors
    /// A message when the log cannot be read.
    fn acks(&self, cloid: &str) -> Result<Vec<AckRow>, String>;
}

/// One record of the order log.
#[derive(Debug, Clone)]
pub enum OrderRecord {
    Intent(IntentRow),
    Ack(AckRow),
}

impl From<IntentRow> for OrderRecord {
    fn from(r: IntentRow) -> Self {
        Self::Intent(r)
    }
}

impl From<AckRow> for OrderRecord {
    fn from(r: AckRow) -> Self {
        Self::Ack(r)
    }
}

/// Live: an order about to be signed, written before it is sent (its wire fields as sent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentRow {
    pub attempt: u32,
    pub buy: bool,
    pub cloid: String,
    pub coin_asset: u32,
    pub expires_ms: u64,
    pub px: String,
    pub reduce_only: bool,
    pub sz: String,
}

/// Live: what became of an intent (the exchange's answer, or `orderStatus` later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AckRow {
    Done {
        cloid: String,
        fee: Decimal,
        /// How it was learned (`filled`, `order status`, `dry run`, …).
        how: String,
        oid: u64,
        price: Decimal,
        qty: Decimal,
    },
    Rejected {
        cloid: String,
        rejected: String,
    },
}

/// Live: a reconciliation with the exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileRow {
    pub account_value: String,
    pub cancelled: usize,
    /// Coins halted.
    pub halted: Vec<String>,
    pub positions: std::collections::BTreeMap<String, PositionCheck>,
    pub unknown_fills: Vec<UnknownFill>,
    pub unknown_orders: Vec<UnknownOrder>,
}

/// A coin's position on the exchange and in the journal's books.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionCheck {
    pub exchange: String,
    pub journal: f64,
}

/// An exchange fill the journal does not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnknownFill {
    pub coin: String,
    pub oid: u64,
    pub px: String,
    pub side: String,
    pub sz: String,
    pub tid: u64,
    pub time: i64,
}

/// An open order organism did not send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnknownOrder {
    pub cloid: Option<String>,
    pub coin: String,
    pub limit_px: String,
    pub oid: u64,
    pub side: String,
    pub sz: String,
}

/// The environment variable a private key may come from.
pub const KEY_ENV: &str = "HYPERLIQUID_PRIVATE_KEY";

/// Loads the signing key: from `key_file` when given (refused when group- or world-readable),
/// else from [`KEY_ENV`]. Error messages never contain the key.
///
/// # Errors
/// A message naming the file or the variable.
pub fn load_key(key_file: &str) -> Result<Signer, String> {
    let text = if key_file.is_empty() {
        std::env::var(KEY_ENV).map_err(|_| {
            format!("no key: set {KEY_ENV} or live.key_file (a file only you can read)")
        })?
    } else {
        let path = Path::new(key_file);
        let meta = std::fs::metadata(path).map_err(|e| format!("{key_file}: {e}"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{key_file}: the key file is readable by others (mode {mode:o}); \
                     run `chmod 600 {key_file}` first"
                ));
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        std::fs::read_to_string(path).map_err(|e| format!("{key_file}: {e}"))?
    };
    Signer::from_hex(text.trim()).map_err(|e| match e {
        SignError::BadKey | SignError::InvalidKey if key_file.is_empty() => {
            format!("{KEY_ENV}: {e}")
        }
        SignError::BadKey | SignError::InvalidKey => format!("{key_file}: {e}"),
        other => other.to_string(),
    })
}

/// Nonces kept in the journal's database (table `nonces`), one connection of its own.
pub struct DbNonces {
    conn: Connection,
    signer: String,
    last: u64,
}

impl DbNonces {
    /// The nonce store of `signer` in the database at `path`.
    ///
    /// # Errors
    /// [`StoreError`] when the database cannot be read.
    pub fn open(path: &Path, signer: &str) -> Result<Self, StoreError> {
        let conn = crate::store::open(path)?;
        let last = last_nonce(&conn, signer).map_err(|source| StoreError::Sql {
            file: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            conn,
            signer: signer.to_string(),
            last,
        })
    }
}

impl NonceStore for DbNonces {
    fn last(&self) -> u64 {
        self.last
    }
    fn save(&mut self, nonce: u64) -> Result<(), String> {
        save_nonce(&self.conn, &self.signer, nonce).map_err(|e| e.to_string())?;
        self.last = nonce;
        Ok(())
    }
}

/// The last nonce `signer` used (0 for none).
///
/// # Errors
/// The database's error.
fn last_nonce(conn: &Connection, signer: &str) -> Result<u64, rusqlite::Error> {
    let v: Option<i64> = conn
        .query_row(
            "SELECT last FROM nonces WHERE signer = ?1",
            rusqlite::params![signer],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.map_or(0, |x| x.max(0) as u64))
}

/// Records `nonce` as the last one `signer` used (durable when it returns).
///
/// # Errors
/// The database's error.
fn save_nonce(conn: &Connection, signer: &str, nonce: u64) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT INTO nonces (signer, last) VALUES (?1, ?2)
         ON CONFLICT(signer) DO UPDATE SET last = MAX(last, excluded.last)",
        rusqlite::params![signer, nonce as i64],
    )?;
    Ok(())
}

/// Limits and timings of the executor.
#[derive(Debug, Clone, Copy)]
pub struct ExecLimits {
    /// Largest notional of one order, USD.
    pub max_order_notional: f64,
    /// IOC limit price away from the reference (fraction).
    pub max_slippage: f64,
    /// How long a request stays valid (`expiresAfter`), ms.
    pub expiry_ms: u64,
    /// Attempts for requests that were not sent or were turned away (429, 5xx).
    pub attempts: u32,
    /// Wait between attempts.
    pub backoff: Duration,
}

/// Where a dry run prints the signed requests.
pub struct DryRun {
    pub out: Mutex<Box<dyn Write + Send>>,
    /// The costs of the simulated fills.
    pub costs: Costs,
}

/// Executes books' orders on Hyperliquid (see the module documentation).
pub struct LiveExecutor {
    client: Arc<ExchangeClient>,
    handle: tokio::runtime::Handle,
    log: Arc<dyn OrderLog>,
    assets: BTreeMap<String, (u32, VenueRules)>,
    limits: ExecLimits,
    clock: Arc<dyn Clock>,
    dry: Option<DryRun>,
    /// The account's streamed fills, when the session subscribed to them.
    events: Option<Arc<FillEvents>>,
}

/// What became of a resting order.
enum Resting {
    Filled(Done),
    Rests,
    /// Cancelled, rejected or unknown: its status.
    Gone(String),
}

/// What the exchange did with one intent.
#[derive(Debug, Clone, Default)]
struct Done {
    oid: u64,
    qty: Decimal,
    price: Decimal,
    fee: Decimal,
}

impl Done {
    /// `fills` of order `oid` summed (size, average price, fee); `None` for none.
    fn of<'a>(oid: u64, fills: impl Iterator<Item = &'a UserFill>) -> Option<Done> {
        let mine: Vec<&UserFill> = fills.collect();
        let qty: Decimal = mine.iter().map(|x| x.sz).sum();
        if qty.is_zero() {
            return None;
        }
        let value: Decimal = mine.iter().map(|x| x.sz * x.px).sum();
        Some(Done {
            oid,
            qty,
            price: (value / qty).round_dp(8),
            fee: mine.iter().map(|x| x.fee).sum(),
        })
    }
}

/// How long an order's fills may take to arrive on the stream before they are asked for.
pub const FILL_WAIT: Duration = Duration::from_secs(2);

/// Most orders whose streamed fills are kept.
const FILLS_KEPT: usize = 10_000;

/// The account's fills as the exchange streams them (WebSocket `userFills`), by order: an
/// order's fills come back as events, so the executor needs no request (weight 20, the
/// account's last 2,000 fills) to learn an order's price and fee.
#[derive(Debug, Default)]
pub struct FillEvents {
    /// Order id → trade id → fill.
    by_order: Mutex<BTreeMap<u64, BTreeMap<u64, UserFill>>>,
    arrived: std::sync::Condvar,
}

impl FillEvents {
    /// Takes fills the stream delivered (a snapshot's or new ones; each trade once).
    pub fn push(&self, fills: Vec<UserFill>) {
        let Ok(mut g) = self.by_order.lock() else {
            return;
        };
        for x in fills {
            g.entry(x.oid).or_default().insert(x.tid, x);
        }
        while g.len() > FILLS_KEPT {
            g.pop_first();
        }
        self.arrived.notify_all();
    }

    /// The fills of order `oid` once they add up to `qty`, waiting at most `wait`.
    pub fn wait_for(&self, oid: u64, qty: Decimal, wait: Duration) -> Option<Vec<UserFill>> {
        let all_in = |g: &BTreeMap<u64, BTreeMap<u64, UserFill>>| {
            g.get(&oid)
                .is_some_and(|f| f.values().map(|x| x.sz).sum::<Decimal>() >= qty)
        };
        let g = self.by_order.lock().ok()?;
        let (g, _) = self
            .arrived
            .wait_timeout_while(g, wait, |g| !all_in(g))
            .ok()?;
        all_in(&g).then(|| g[&oid].values().cloned().collect())
    }
}

/// Streams the fills of `account` from the exchange at `url` (its WebSocket) into the events
/// an executor takes them from ([`LiveExecutor::with_fill_events`]), on a task of the current
/// runtime for as long as it runs.
pub fn stream_fills(
    url: &str,
    info: Arc<super::info::InfoClient>,
    account: &str,
    clock: Arc<dyn Clock>,
) -> Arc<FillEvents> {
    use super::ws::{self, FeedConfig, FeedEvent, Subscription};
    let events = Arc::new(FillEvents::default());
    let subs = vec![Subscription::UserFills {
        user: account.to_string(),
    }];
    let mut feed = ws::spawn(FeedConfig::new(ws::ws_url(url), subs), info, clock);
    let into = events.clone();
    tokio::spawn(async move {
        while let Some(ev) = feed.events.recv().await {
            if let FeedEvent::UserFills { fills, .. } = ev {
                into.push(fills);
            }
        }
    });
    events
}

fn d(x: f64) -> Decimal {
    crate::execution::types::decimal(x)
}

fn f(x: Decimal) -> f64 {
    x.to_f64().unwrap_or(f64::NAN)
}

impl LiveExecutor {
    /// An executor recording into `log`, with the exchange's assets (`coin → (asset index,
    /// rules)`).
    pub fn new(
        client: Arc<ExchangeClient>,
        handle: tokio::runtime::Handle,
        log: Arc<dyn OrderLog>,
        assets: BTreeMap<String, (u32, VenueRules)>,
        limits: ExecLimits,
        clock: Arc<dyn Clock>,
        dry: Option<DryRun>,
    ) -> Self {
        Self {
            client,
            handle,
            log,
            assets,
            limits,
            clock,
            dry,
            events: None,
        }
    }

    /// Takes orders' fills from `events` as they are streamed ([`stream_fills`]) rather than
    /// asking for the account's fills after each order.
    pub fn with_fill_events(mut self, events: Arc<FillEvents>) -> Self {
        self.events = Some(events);
        self
    }

    /// Waits for `fut`. The session steps live books on threads of their own (outside the
    /// runtime), which wait here without holding a runtime worker; called from a runtime
    /// thread, the wait is moved off it first.
    fn block<F: std::future::Future>(&self, fut: F) -> F::Output {
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::block_in_place(|| self.handle.block_on(fut))
        } else {
            self.handle.block_on(fut)
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_ms().max(0) as u64
    }

    /// Records one row. An error is the venue's: nothing is sent after a failed intent row,
    /// and after a failed answer row the book cannot know what it booked.
    fn write(
        &self,
        book: &str,
        ts: i64,
        row: impl Into<OrderRecord>,
        fail: fn(String) -> VenueError,
    ) -> Result<(), VenueError> {
        self.log
            .record(book, ts, row.into())
            .map_err(|e| fail(format!("journal: {e}")))
    }

    fn intents(&self, cloid: &Cloid) -> Result<Vec<IntentRow>, VenueError> {
        self.log
            .intents(&cloid.to_hex())
            .map_err(|e| VenueError::NotSent(format!("journal: {e}")))
    }

    fn acks(&self, cloid: &Cloid) -> Result<Vec<AckRow>, VenueError> {
        self.log
            .acks(&cloid.to_hex())
            .map_err(|e| VenueError::NotSent(format!("journal: {e}")))
    }

    /// The fills of exchange order `oid`, summed (size, average price, fee), asked for.
    fn fills_of(&self, oid: u64) -> Result<Option<Done>, ExchangeError> {
        let fills = self.block(self.client.user_fills())?;
        Ok(Done::of(oid, fills.iter().filter(|x| x.oid == oid)))
    }

    /// The fills of `oid`, which filled `qty`: as the stream delivers them (waiting up to
    /// [`FILL_WAIT`]), else asked for.
    fn filled(&self, oid: u64, qty: Decimal) -> Result<Option<Done>, ExchangeError> {
        if let Some(events) = &self.events {
            if let Some(fills) = events.wait_for(oid, qty, FILL_WAIT) {
                return Ok(Done::of(oid, fills.iter()));
            }
            tracing::debug!(oid, "fill not streamed within {FILL_WAIT:?}; asking for it");
        }
        self.fills_of(oid)
    }

    /// Asks the exchange what became of `cloid`: `Some(done)` when it knows the order (filled
    /// in part or in whole; a zero fill when it had none), `None` when it never saw it.
    fn status(&self, cloid: &Cloid, resting: bool) -> Result<Option<Done>, ExchangeError> {
        match self.block(self.client.order_status(&OidOrCloid::Cloid(cloid.to_hex())))? {
            OrderState::Unknown => Ok(None),
            OrderState::Known { status, order } if resting && status == "open" => Ok(Some(Done {
                oid: order.oid,
                ..Done::default()
            })),
            OrderState::Known { status, order } => {
                if status == "open" {
                    // An IOC never rests; if it does, it is cancelled before it is booked.
                    let asset = self.assets.get(&order.coin).map_or(0, |a| a.0);
                    let _ = self.block(self.client.cancel_by_cloid(asset, cloid));
                }
                Ok(Some(self.fills_of(order.oid)?.unwrap_or(Done {
                    oid: order.oid,
                    ..Done::default()
                })))
            }
        }
    }

    /// Asks `orderStatus(cloid)` until the exchange knows the order (its fills) or, not
    /// knowing it, the request that carried it has expired (`None`: it can never execute).
    /// Nothing is signed again before this returns.
    fn resolve(&self, book: &str, cloid: &Cloid, expires: u64, resting: bool) -> Option<Done> {
        loop {
            match self.status(cloid, resting) {
                Ok(Some(done)) => return Some(done),
                Ok(None) if self.now() > expires + 1000 => return None,
                Ok(None) => std::thread::sleep(Duration::from_millis(
                    (expires + 1100).saturating_sub(self.now()).clamp(50, 2000),
                )),
                Err(e) => {
                    tracing::warn!(
                        book,
                        cloid = cloid.to_hex(),
                        "order status unknown, asking again: {e}"
                    );
                    std::thread::sleep(self.limits.backoff);
                }
            }
        }
    }

    /// Sends one IOC order under `cloid` and returns what filled, or with `resting` one that
    /// rests (a trigger order: what filled at once, nothing when it rests); idempotent: see the
    /// module documentation.
    fn once(
        &self,
        book: &str,
        ts: i64,
        cloid: &Cloid,
        wire: OrderWire,
        resting: bool,
    ) -> Result<Done, VenueError> {
        let hex = cloid.to_hex();
        let rejected = |reason: String| VenueError::Rejected { reason };
        let conn_err = VenueError::from;
        // Already answered (a replay after a restart): book what the exchange said.
        if let Some(a) = self.acks(cloid)?.pop() {
            match a {
                AckRow::Rejected { rejected: m, .. } => return Err(rejected(m)),
                AckRow::Done {
                    oid,
                    qty,
                    price,
                    fee,
                    ..
                } => {
                    return Ok(Done {
                        oid,
                        qty,
                        price,
                        fee,
                    })
                }
            }
        }
        // Sent before but not answered: ask before anything is signed again.
        if let Some(intent) = self.intents(cloid)?.pop() {
            let expires = intent.expires_ms;
            if let Some(done) = self.resolve(book, cloid, expires, resting) {
                return self.ack(book, ts, cloid, &done, "order status");
            }
            tracing::info!(book, cloid = hex, "an earlier request for this order never reached the exchange and has expired; sending it");
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let expires = self.now() + self.limits.expiry_ms;
            self.write(
                book,
                ts,
                IntentRow {
                    attempt,
                    buy: wire.b,
                    cloid: hex.clone(),
                    coin_asset: wire.a,
                    expires_ms: expires,
                    px: wire.p.clone(),
                    reduce_only: wire.r,
                    sz: wire.s.clone(),
                },
                VenueError::NotSent,
            )?;
            let req = self
                .client
                .sign_expiring(Action::orders(vec![wire.clone()]), Some(expires))
                .map_err(conn_err)?;
            if let Some(dry) = &self.dry {
                return self.dry_fill(dry, book, ts, cloid, &req, &wire);
            }
            match self.block(self.client.send(&req)) {
                Ok(resp) => {
                    let statuses = match ExchangeClient::placed(&resp) {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!(book, cloid = hex, "{e}; asking the exchange");
                            return match self.resolve(book, cloid, expires, resting) {
                                Some(done) => self.ack(
                                    book,
                                    ts,
                                    cloid,
                                    &done,
                                    "order status after a bad answer",
                                ),
                                None => Err(conn_err(e)),
                            };
                        }
                    };
                    return match statuses.into_iter().next() {
                        Some(PlacedStatus::Filled {
                            oid,
                            total_sz,
                            avg_px,
                        }) => {
                            let done = match self.filled(oid, total_sz) {
                                Ok(Some(x)) => x,
                                // The fill list lags: the answer's size and price; the fee is
                                // not known yet (reconciliation reports the fill).
                                _ => {
                                    tracing::warn!(
                                        book,
                                        oid,
                                        "the fill is not in userFills yet; booked without its fee"
                                    );
                                    Done {
                                        oid,
                                        qty: total_sz,
                                        price: avg_px,
                                        fee: Decimal::ZERO,
                                    }
                                }
                            };
                            self.ack(book, ts, cloid, &done, "filled")
                        }
                        Some(PlacedStatus::Resting { oid }) if resting => {
                            let done = Done {
                                oid,
                                ..Done::default()
                            };
                            self.ack(book, ts, cloid, &done, "resting")
                        }
                        Some(PlacedStatus::Resting { .. }) => {
                            match self.status(cloid, false).map_err(conn_err)? {
                                Some(done) => self.ack(book, ts, cloid, &done, "rested; cancelled"),
                                None => Err(VenueError::Unknown(
                                    "an IOC order rested and vanished".into(),
                                )),
                            }
                        }
                        Some(PlacedStatus::Rejected { message, .. }) => {
                            self.refused(book, ts, cloid, message)
                        }
                        None => Err(VenueError::Unknown("empty answer".into())),
                    };
                }
                Err(ExchangeError::Rejected { message, .. }) => {
                    return self.refused(book, ts, cloid, message);
                }
                Err(e @ ExchangeError::Unknown(_)) | Err(e @ ExchangeError::Busy { .. }) => {
                    // It may have been acted on: find out before anything is signed again.
                    tracing::warn!(book, cloid = hex, "{e}; asking the exchange");
                    if let Some(done) = self.resolve(book, cloid, expires, resting) {
                        return self.ack(book, ts, cloid, &done, "order status after no answer");
                    }
                }
                Err(e @ ExchangeError::NotSent(_)) => {
                    tracing::warn!(book, cloid = hex, "{e}");
                    std::thread::sleep(self.limits.backoff);
                }
                Err(e) => return Err(conn_err(e)),
            }
            if attempt >= self.limits.attempts {
                return Err(VenueError::NotSent(format!(
                    "order {hex} not placed after {attempt} attempts"
                )));
            }
        }
    }

    /// Journals the exchange's refusal of `cloid` and returns it as the venue's error.
    fn refused(
        &self,
        book: &str,
        ts: i64,
        cloid: &Cloid,
        message: String,
    ) -> Result<Done, VenueError> {
        self.write(
            book,
            ts,
            AckRow::Rejected {
                cloid: cloid.to_hex(),
                rejected: message.clone(),
            },
            VenueError::Unknown,
        )?;
        Err(VenueError::Rejected { reason: message })
    }

    fn ack(
        &self,
        book: &str,
        ts: i64,
        cloid: &Cloid,
        done: &Done,
        how: &str,
    ) -> Result<Done, VenueError> {
        self.write(
            book,
            ts,
            AckRow::Done {
                cloid: cloid.to_hex(),
                fee: done.fee.normalize(),
                how: how.into(),
                oid: done.oid,
                price: done.price.normalize(),
                qty: done.qty.normalize(),
            },
            VenueError::Unknown,
        )?;
        Ok(done.clone())
    }

    /// The resting orders of `stops`: why each would close the position, its kind, level and
    /// cloid (`book`, the intent and `sl` / `tp`).
    fn stop_orders(book: &str, stops: &Stops) -> Vec<(ExitReason, Tpsl, f64, Cloid)> {
        [
            (ExitReason::StopLoss, Tpsl::Sl, stops.stop, "sl"),
            (ExitReason::TakeProfit, Tpsl::Tp, stops.take, "tp"),
        ]
        .into_iter()
        .filter_map(|(why, kind, level, tag)| {
            let name = format!("{}|{tag}", stops.intent);
            level.map(|l| (why, kind, l, Cloid::derive(&[book, &name])))
        })
        .collect()
    }

    /// What became of resting order `cloid`: its fill when it has filled (from the journal when
    /// it was booked before, a replay; else from the exchange, then journaled), or whether it
    /// still rests.
    fn stop_done(&self, book: &str, ts: i64, cloid: &Cloid) -> Result<Resting, VenueError> {
        if let Some(AckRow::Done {
            oid,
            qty,
            price,
            fee,
            ..
        }) = self.acks(cloid)?.pop()
        {
            if !qty.is_zero() {
                return Ok(Resting::Filled(Done {
                    oid,
                    qty,
                    price,
                    fee,
                }));
            }
        }
        let state = self
            .block(self.client.order_status(&OidOrCloid::Cloid(cloid.to_hex())))
            .map_err(VenueError::from)?;
        let OrderState::Known { status, order } = state else {
            return Ok(Resting::Gone("unknown to the exchange".into()));
        };
        match status.as_str() {
            "open" => return Ok(Resting::Rests),
            "filled" | "triggered" => {}
            other => return Ok(Resting::Gone(other.to_string())),
        }
        let Some(done) = self.fills_of(order.oid).map_err(VenueError::from)? else {
            // Triggered, its fill not listed yet: asked again at the next bar.
            return Ok(Resting::Rests);
        };
        self.ack(book, ts, cloid, &done, "resting order filled")
            .map(Resting::Filled)
    }

    /// The first of `stops` that filled, as the position's exit; the others are withdrawn.
    fn stop_exit(
        &self,
        book: &str,
        coin: &str,
        stops: &Stops,
        orders: &[(ExitReason, Tpsl, f64, Cloid)],
    ) -> Result<Option<(ExitReason, u64, Fill)>, VenueError> {
        let mut gone = Vec::new();
        for (why, _, _, cloid) in orders {
            let done = match self.stop_done(book, stops.intent.ts, cloid)? {
                Resting::Filled(done) => done,
                Resting::Rests => continue,
                Resting::Gone(status) => {
                    gone.push(status);
                    continue;
                }
            };
            for (_, _, _, other) in orders.iter().filter(|o| &o.3 != cloid) {
                self.withdraw(book, coin, other);
            }
            return Ok(Some((
                *why,
                done.oid,
                Fill {
                    side: stops.side.closing(),
                    qty: f(done.qty),
                    price: f(done.price),
                    fee: f(done.fee),
                },
            )));
        }
        if gone.len() == orders.len() {
            // Cancelled by someone else or by the dead-man's switch: nothing protects the
            // position on the exchange, so the session watches the range again.
            return Err(VenueError::Rejected {
                reason: format!(
                    "the resting stops are no longer on the exchange ({}); the session watches \
                     each bar's range for them",
                    gone.join(", ")
                ),
            });
        }
        Ok(None)
    }

    /// Cancels resting order `cloid`; one already filled or gone cannot be, which is fine.
    fn withdraw(&self, book: &str, coin: &str, cloid: &Cloid) {
        let Some(&(asset, _)) = self.assets.get(coin) else {
            return;
        };
        if let Err(e) = self.block(self.client.cancel_by_cloid(asset, cloid)) {
            tracing::debug!(book, cloid = cloid.to_hex(), "cancel: {e}");
        }
    }

    fn dry_fill(
        &self,
        dry: &DryRun,
        book: &str,
        ts: i64,
        cloid: &Cloid,
        req: &crate::exchange::hyperliquid::exchange::SignedRequest,
        wire: &OrderWire,
    ) -> Result<Done, VenueError> {
        if let Ok(mut out) = dry.out.lock() {
            let line = serde_json::to_string(req).unwrap_or_default();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        let qty: Decimal = wire.s.parse().unwrap_or_default();
        let reference: f64 = wire.p.parse::<f64>().unwrap_or(f64::NAN)
            / if wire.b {
                1.0 + self.limits.max_slippage
            } else {
                1.0 - self.limits.max_slippage
            };
        let side = if wire.b {
            OrderSide::Buy
        } else {
            OrderSide::Sell
        };
        let px = dry.costs.fill_price(side, reference);
        let done = Done {
            oid: 0,
            qty,
            price: d(px),
            fee: d(dry.costs.fee(f(qty) * px)),
        };
        self.ack(book, ts, cloid, &done, "dry run")
    }
}

impl ExecutionClient for LiveExecutor {
    fn submit_order(
        &self,
        cmd: &SubmitOrder<'_>,
        on_fill: &mut dyn FnMut(FillEvent),
    ) -> Result<(), VenueError> {
        let (book, coin, intent, order) = (cmd.book, cmd.coin, &cmd.intent, &cmd.order);
        let ts = intent.ts;
        let kill = intent.phase == Phase::Kill;
        let Some(&(asset, rules)) = self.assets.get(coin) else {
            return Err(VenueError::NotSent(format!(
                "{coin} is not traded on this exchange"
            )));
        };
        let notional = order.qty * order.price;
        if notional > self.limits.max_order_notional && !kill {
            let m = format!(
                "order of {notional:.2} USD over live.max_order_notional = {}; not sent",
                self.limits.max_order_notional
            );
            tracing::warn!(book, "{m}");
            return Err(VenueError::NotSent(m));
        }
        let buy = order.side == OrderSide::Buy;
        let slip = if buy {
            1.0 + self.limits.max_slippage
        } else {
            1.0 - self.limits.max_slippage
        };
        let limit = rules
            .price(order.price * slip)
            .map_err(|e| VenueError::NotSent(e.to_string()))?
            .get();
        let want = rules
            .qty(order.qty)
            .map_err(|e| VenueError::NotSent(e.to_string()))?
            .get();
        let min_notional = rules.min_notional;
        // Reduce-only for the kill switch when the order reduces the account's position.
        let reduce_only = kill
            && self.dry.is_none()
            && self
                .block(self.client.account_state())
                .map(|s| {
                    let p = s.position(coin);
                    (buy && p < Decimal::ZERO) || (!buy && p > Decimal::ZERO)
                })
                .unwrap_or(false);
        // (A kill-phase order is sent whatever its size.)
        if !kill && want * limit < min_notional {
            let m = format!("order of {want} {coin} is under the exchange's $10 minimum; not sent");
            return Err(VenueError::NotSent(m));
        }
        // The order, and its remainder up to twice if it filled in part; each one's fill is
        // reported as it comes back.
        let mut filled = Decimal::ZERO;
        for round in 0..3 {
            let left = want - filled;
            if left <= Decimal::ZERO || (round > 0 && left * limit < min_notional && !reduce_only) {
                break;
            }
            let name = if round == 0 {
                intent.to_string()
            } else {
                format!("{intent}|rest{round}")
            };
            let cloid = Cloid::derive(&[book, &name]);
            let wire = OrderWire {
                a: asset,
                b: buy,
                p: to_wire(limit).unwrap_or_default(),
                s: to_wire(left).unwrap_or_default(),
                r: reduce_only,
                t: OrderTypeWire::limit(Tif::Ioc),
                c: Some(cloid.to_hex()),
            };
            let done = match self.once(book, ts, &cloid, wire, false) {
                Ok(x) => x,
                Err(e) if round == 0 => return Err(e),
                Err(_) => break,
            };
            if done.qty.is_zero() {
                break;
            }
            filled += done.qty;
            on_fill(FillEvent {
                id: done.oid,
                fill: Fill {
                    side: order.side,
                    qty: f(done.qty),
                    price: f(done.price),
                    fee: f(done.fee),
                },
            });
        }
        if filled.is_zero() {
            return Err(VenueError::Rejected {
                reason: "nothing filled".into(),
            });
        }
        Ok(())
    }

    fn place_stops(&self, book: &str, coin: &str, stops: &Stops) -> Result<(), VenueError> {
        let Some(&(asset, rules)) = self.assets.get(coin) else {
            return Err(VenueError::NotSent(format!(
                "{coin} is not traded on this exchange"
            )));
        };
        let buy = stops.side == Side::Short;
        let size = rules
            .qty(stops.qty)
            .map_err(|e| VenueError::NotSent(e.to_string()))?
            .get();
        for (_, kind, level, cloid) in Self::stop_orders(book, stops) {
            let trigger = rules
                .price(level)
                .map_err(|e| VenueError::NotSent(e.to_string()))?
                .get();
            // The worst price the triggered market order accepts.
            let slip = if buy {
                1.0 + self.limits.max_slippage
            } else {
                1.0 - self.limits.max_slippage
            };
            let limit = rules
                .price(level * slip)
                .map_err(|e| VenueError::NotSent(e.to_string()))?
                .get();
            if size * trigger < rules.min_notional {
                return Err(VenueError::NotSent(format!(
                    "a stop of {size} {coin} is under the exchange's $10 minimum"
                )));
            }
            let wire = OrderWire {
                a: asset,
                b: buy,
                p: to_wire(limit).unwrap_or_default(),
                s: to_wire(size).unwrap_or_default(),
                r: true,
                t: OrderTypeWire::trigger(to_wire(trigger).unwrap_or_default(), true, kind),
                c: Some(cloid.to_hex()),
            };
            if let Some(dry) = &self.dry {
                // Signed and printed as it would be sent; the session watches the range.
                let expires = self.now() + self.limits.expiry_ms;
                let req = self
                    .client
                    .sign_expiring(Action::orders(vec![wire]), Some(expires))
                    .map_err(VenueError::from)?;
                if let Ok(mut out) = dry.out.lock() {
                    let _ = writeln!(out, "{}", serde_json::to_string(&req).unwrap_or_default());
                    let _ = out.flush();
                }
                continue;
            }
            self.once(book, stops.intent.ts, &cloid, wire, true)?;
        }
        if self.dry.is_some() {
            return Err(VenueError::NotSent("a dry run rests no orders".into()));
        }
        Ok(())
    }

    fn stop_fill(
        &self,
        book: &str,
        coin: &str,
        stops: &Stops,
    ) -> Result<Option<(ExitReason, u64, Fill)>, VenueError> {
        self.stop_exit(book, coin, stops, &Self::stop_orders(book, stops))
    }

    fn cancel_stops(
        &self,
        book: &str,
        coin: &str,
        stops: &Stops,
    ) -> Result<Option<(ExitReason, u64, Fill)>, VenueError> {
        let orders = Self::stop_orders(book, stops);
        for (_, _, _, cloid) in &orders {
            self.withdraw(book, coin, cloid);
        }
        // One may have filled before it could be cancelled; gone is what was asked.
        match self.stop_exit(book, coin, stops, &orders) {
            Err(VenueError::Rejected { .. }) => Ok(None),
            other => other,
        }
    }
}

/// What a reconciliation found.
#[derive(Debug)]
pub struct Reconciliation {
    /// Coins whose position disagrees, with the reason: their books are to be halted.
    pub halted: Vec<(String, String)>,
    /// Open orders organism did not send.
    pub unknown_orders: usize,
    /// Of them, cancelled.
    pub cancelled: usize,
    /// Exchange fills the order log does not know.
    pub unknown_fills: usize,
    /// The row to journal.
    pub row: ReconcileRow,
}

/// Reconciles the exchange with the books (see the module documentation): `held` is each
/// coin's net position over the books, `known_cloids` the cloids of every intent the log holds
/// and `known_oids` the orders it has answers for; `assets` gives each coin's asset index and
/// rules.
///
/// # Errors
/// [`ExchangeError`] when the exchange cannot be asked.
pub async fn reconcile(
    client: &ExchangeClient,
    held: &BTreeMap<String, f64>,
    known_cloids: &BTreeSet<String>,
    known_oids: &BTreeSet<u64>,
    assets: &BTreeMap<String, (u32, VenueRules)>,
    cancel_unknown: bool,
) -> Result<Reconciliation, ExchangeError> {
    let state = client.account_state().await?;
    let mut halted = Vec::new();
    let mut positions = BTreeMap::new();
    for (coin, &held) in held {
        let on_exchange = state.position(coin);
        let lot = assets.get(coin).map_or(2, |a| a.1.sz_decimals);
        let tolerance = 0.5 * 10f64.powi(-(lot as i32));
        positions.insert(
            coin.clone(),
            PositionCheck {
                exchange: on_exchange.to_string(),
                journal: held,
            },
        );
        if (f(on_exchange) - held).abs() > tolerance {
            let reason = format!(
                "reconcile: the exchange holds {on_exchange} {coin} but the journal's books hold {held}; \
                 {coin} is halted until the difference is resolved and `organism live resume` is run"
            );
            tracing::error!("{reason}");
            halted.push((coin.clone(), reason));
        }
    }
    let (mut unknown, mut cancelled) = (Vec::new(), 0);
    for o in client.open_orders().await? {
        if o.cloid.as_ref().is_some_and(|c| known_cloids.contains(c)) {
            continue;
        }
        unknown.push(UnknownOrder {
            cloid: o.cloid.clone(),
            coin: o.coin.clone(),
            limit_px: o.limit_px.to_string(),
            oid: o.oid,
            side: o.side.clone(),
            sz: o.sz.to_string(),
        });
        if cancel_unknown {
            if let Some(&(asset, _)) = assets.get(&o.coin) {
                if client.cancel(asset, o.oid).await.is_ok() {
                    cancelled += 1;
                }
            }
        }
    }
    let mut fills = Vec::new();
    for x in client.user_fills().await? {
        if !known_oids.contains(&x.oid) && assets.contains_key(&x.coin) {
            fills.push(UnknownFill {
                coin: x.coin.clone(),
                oid: x.oid,
                px: x.px.to_string(),
                side: x.side.clone(),
                sz: x.sz.to_string(),
                tid: x.tid,
                time: x.time,
            });
        }
    }
    Ok(Reconciliation {
        unknown_orders: unknown.len(),
        cancelled,
        unknown_fills: fills.len(),
        row: ReconcileRow {
            account_value: state.account_value.to_string(),
            cancelled,
            halted: halted
                .iter()
                .map(|h: &(String, String)| h.0.clone())
                .collect(),
            positions,
            unknown_fills: fills,
            unknown_orders: unknown,
        },
        halted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::paper::Intent;

    #[test]
    fn a_key_file_others_can_read_is_refused_and_errors_never_show_the_key() {
        let dir = std::env::temp_dir().join(format!("organism-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key");
        let key = "0x0123456789012345678901234567890123456789012345678901234567890123";
        std::fs::write(&file, format!("{key}\n")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = load_key(file.to_str().unwrap()).unwrap_err();
            assert!(e.contains("readable by others (mode 644)"), "{e}");
            assert!(e.contains("chmod 600"), "{e}");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let s = load_key(file.to_str().unwrap()).unwrap();
        assert_eq!(s.address(), Signer::from_hex(key).unwrap().address());
        std::fs::write(&file, "0xsecretbutbroken").unwrap();
        let e = load_key(file.to_str().unwrap()).unwrap_err();
        assert!(!e.contains("secretbutbroken"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The names a restart derives its cloids from are those release ba5d92a journaled: the
    /// cloids of its live session's intents (`tests/data/store_ba5d92a`, book
    /// `ema_crossover_40_cd364e10/BTC`) come out of the typed intents unchanged.
    #[test]
    fn cloids_of_a_journal_written_before_typed_intents_are_derived_again() {
        let book = "ema_crossover_40_cd364e10/BTC";
        let cloid = |i: Intent| Cloid::derive(&[book, &i.to_string()]).to_hex();
        assert_eq!(
            cloid(Intent::new(1_796_644_800_000, Phase::Bar, 0)),
            "0x941c9af047b84b98fa8e1f7d47276677"
        );
        assert_eq!(
            cloid(Intent::new(1_796_659_200_000, Phase::Bar, 0)),
            "0x2a2a9851cc6a241225034888b64b805b"
        );
        assert_eq!(
            cloid(Intent::new(1_796_677_200_000, Phase::Bar, 0)),
            "0xff828ffed4fbdd583d453194d9895d9c"
        );
        assert_eq!(
            Intent::new(5, Phase::Kill, 2).to_string(),
            "kill|5|2",
            "the kill switch's orders"
        );
        let residue = Intent {
            residue: Some(Decimal::new(-15, 1)),
            ..Intent::new(5, Phase::Kill, 0)
        };
        assert_eq!(residue.to_string(), "kill|5|residue -1.5");
        // A venue that has not begun a bar keeps its phase as the empty string it always had.
        assert_eq!(
            serde_json::to_string(&Intent::default()).unwrap(),
            r#"{"ts":0,"phase":"","seq":0}"#
        );
    }
}
