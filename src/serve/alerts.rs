//! Alerts: what the sessions, the cycle and the pipeline journal, sent where traders already
//! look — a generic JSON webhook, Discord, Slack and Telegram.
//!
//! **The journal is the queue.** Every alertable event is a journal row: a session's start (and
//! a strategy joining it), fills, risk breaches, the kill switch, reconciliation halts, lifecycle
//! retirements and live eligibility, each strategy's daily check (the daily summary), the cycle's
//! steps, and the `notice` rows of a restart after a crash, a session's stop, a promotion's
//! result and a finished run. A sender — on a task of its own with its own connection, so a bar
//! never waits for it — reads each target's rows past its cursor (table `alert_cursor`), sends
//! them in order, several to a message when a backlog builds up, and moves the cursor.
//!
//! **Nothing twice, nothing lost.** Before a batch goes out its last row is recorded as the
//! target's `pending` batch with a lease: after a crash (or a failure) the very same batch is sent
//! again under the same idempotency key — the `Idempotency-Key` header and the webhook's `key`
//! field — so nothing is lost and a receiver that honours the key sees nothing twice. Discord,
//! Slack and Telegram do not: there a crash between a delivery and the cursor's commit repeats
//! that one message. A failed send (an error status, no answer within `alerts.timeout_secs`) is
//! retried with exponential backoff (2 s doubling, at most 5 min); a target gets at most
//! `alerts.max_per_minute` messages a minute. A target starts at the end of the journal the first
//! time it is configured (no history is replayed).

use std::{collections::BTreeMap, path::Path, time::Duration};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    clock::Clock,
    market::format_ts,
    runner::journal::{self, BreachRow, Entry, JournalError, KillRow, Kind, Row},
    settings::{count, range, Invalid},
};

/// `[alerts]`: where alerts go and which.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// A generic JSON webhook (empty: none).
    pub webhook_url: String,
    pub discord_webhook_url: String,
    pub slack_webhook_url: String,
    /// Telegram: the chat to send to (empty: none); the bot token comes from the environment
    /// variable `TELEGRAM_BOT_TOKEN`.
    pub telegram_chat_id: String,
    pub telegram_api_url: String,
    /// Which events: session, fill, breach, kill, reconcile, lifecycle, daily, cycle, restart,
    /// stop, promote, evolve.
    pub events: Vec<String>,
    pub max_per_minute: usize,
    pub timeout_secs: f64,
    /// Events sent in one message at most.
    pub batch: usize,
}

/// Every event an alert can be about.
pub const EVENTS: [&str; 12] = [
    "session",
    "fill",
    "breach",
    "kill",
    "reconcile",
    "lifecycle",
    "daily",
    "cycle",
    "restart",
    "stop",
    "promote",
    "evolve",
];

/// The environment variable holding the Telegram bot token.
pub const TELEGRAM_TOKEN_ENV: &str = "TELEGRAM_BOT_TOKEN";

impl AlertsConfig {
    /// Checks every key.
    ///
    /// # Errors
    /// [`Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), Invalid> {
        for e in &self.events {
            if !EVENTS.contains(&e.as_str()) {
                return Err(Invalid::new(
                    "alerts.events",
                    format!("unknown event `{e}`; one of {}", EVENTS.join(", ")),
                ));
            }
        }
        for (key, url) in [
            ("alerts.webhook_url", &self.webhook_url),
            ("alerts.discord_webhook_url", &self.discord_webhook_url),
            ("alerts.slack_webhook_url", &self.slack_webhook_url),
            ("alerts.telegram_api_url", &self.telegram_api_url),
        ] {
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Invalid::new(key, format!("`{url}` is not an http(s) URL")));
            }
        }
        count("alerts.max_per_minute", self.max_per_minute, 1, 600, "")?;
        count("alerts.batch", self.batch, 1, 100, "")?;
        range("alerts.timeout_secs", self.timeout_secs, 0.1, 600.0)
    }

    /// How long a command that ends gives its last alerts: twice `alerts.timeout_secs`, and a
    /// second.
    pub fn last_wait(&self) -> Duration {
        Duration::from_secs_f64(2.0 * self.timeout_secs + 1.0)
    }

    /// The targets configured: name, kind and where to.
    ///
    /// # Errors
    /// A message when Telegram is configured without its token in the environment.
    pub fn targets(&self) -> Result<Vec<Target>, String> {
        let mut t = Vec::new();
        let mut add = |name: &str, url: &str| {
            if !url.is_empty() {
                t.push(Target {
                    name: name.to_string(),
                    url: url.to_string(),
                });
            }
        };
        add("webhook", &self.webhook_url);
        add("discord", &self.discord_webhook_url);
        add("slack", &self.slack_webhook_url);
        if !self.telegram_chat_id.is_empty() {
            let token = std::env::var(TELEGRAM_TOKEN_ENV).map_err(|_| {
                format!(
                    "alerts.telegram_chat_id is set but {TELEGRAM_TOKEN_ENV} is not: the bot \
                     token comes from the environment"
                )
            })?;
            add(
                "telegram",
                &format!(
                    "{}/bot{token}/sendMessage",
                    self.telegram_api_url.trim_end_matches('/')
                ),
            );
        }
        Ok(t)
    }
}

/// Where alerts go: `webhook`, `discord`, `slack` or `telegram`, and its URL (Telegram's holds
/// the bot token: it is never logged or journaled).
#[derive(Clone, PartialEq)]
pub struct Target {
    pub name: String,
    url: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Alert errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("alerts: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("alerts: {0}")]
    Config(String),
}

/// One alert: which event, the journal row it comes from, and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub seq: i64,
    pub account: String,
    pub event: &'static str,
    pub text: String,
    pub body: Value,
}

/// The event and text of journal row `e` of `account`, when it is one an alert is about.
pub fn describe(account: &str, e: &Entry) -> Option<(&'static str, String)> {
    let at = format_ts(e.bar_ts);
    let book = &e.book;
    let out = match &e.row {
        Row::Session(s) => (
            "session",
            format!(
                "session of {} books, capital {:.2} (bar {at})",
                s.books.len(),
                s.capital.0
            ),
        ),
        Row::Fill(f) => (
            "fill",
            format!(
                "{book}: {} {} at {} (fee {:.4}) in bar {at}",
                if f.side.sign() > 0.0 { "buy" } else { "sell" },
                f.qty.0,
                f.price.0,
                f.fee.0
            ),
        ),
        Row::Breach(BreachRow::Book { reason, .. } | BreachRow::Portfolio { reason, .. }) => (
            "breach",
            format!("{book}: risk limit breached: {reason} (bar {at})"),
        ),
        Row::Kill(KillRow::Session { reason }) => (
            "kill",
            format!("kill switch: every position flattened ({reason})"),
        ),
        Row::Kill(KillRow::Exchange {
            cancelled_orders,
            closed_positions,
        }) => (
            "kill",
            format!(
                "kill switch on the exchange: {} orders cancelled, {} positions closed",
                cancelled_orders.len(),
                closed_positions.len()
            ),
        ),
        Row::Reconcile(r) if !r.halted.is_empty() || !r.unknown_fills.is_empty() => (
            "reconcile",
            format!(
                "reconciliation: halted {:?}; {} fills and {} orders organism did not make",
                r.halted,
                r.unknown_fills.len(),
                r.unknown_orders.len()
            ),
        ),
        Row::Lifecycle(l) if l.verdict == "ok" => (
            "daily",
            format!(
                "daily check of {book}: paper {:+.2} % over {:.1} days (replay {:+.2} %), Sharpe \
                 {:.2}",
                100.0 * l.paper_return.0,
                l.days,
                100.0 * l.replay_return.0,
                l.sharpe
            ),
        ),
        Row::Lifecycle(l) => ("lifecycle", format!("{book}: {} — {}", l.verdict, l.reason)),
        Row::Cycle(c) => (
            "cycle",
            format!(
                "cycle {}: {} {}{}",
                c.period,
                c.step,
                c.outcome,
                if c.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", c.detail)
                }
            ),
        ),
        Row::Notice(n) => (event_name(&n.event)?, n.text.clone()),
        _ => return None,
    };
    Some((out.0, format!("[{account}] {}", out.1)))
}

fn event_name(e: &str) -> Option<&'static str> {
    EVENTS.iter().copied().find(|x| *x == e)
}

/// The journal kinds alerts read.
const KINDS: [Kind; 8] = [
    Kind::Session,
    Kind::Fill,
    Kind::Breach,
    Kind::Kill,
    Kind::Reconcile,
    Kind::Lifecycle,
    Kind::Cycle,
    Kind::Notice,
];

/// A target's cursor: the last journal row handled, the batch being sent (its last row), when
/// its lease ends, failed attempts and the earliest next attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cursor {
    seq: i64,
    pending: Option<i64>,
    lease_ms: i64,
    attempts: u32,
    next_ms: i64,
}

/// How long a sender owns a batch it is sending (past the longest request).
fn lease_ms(cfg: &AlertsConfig) -> i64 {
    (cfg.timeout_secs * 1000.0) as i64 * 2 + 10_000
}

/// Starts every configured target's cursor at the end of the journal (kept where it is once
/// started): call before journaling what should be alerted.
///
/// # Errors
/// [`AlertError::Sql`].
pub fn register(conn: &Connection, targets: &[Target]) -> Result<(), AlertError> {
    for t in targets {
        conn.execute(
            "INSERT INTO alert_cursor (target, seq) VALUES (?1, (SELECT COALESCE(MAX(seq), 0) FROM journal))
             ON CONFLICT(target) DO NOTHING",
            params![t.name],
        )?;
    }
    Ok(())
}

fn cursor(conn: &Connection, target: &str) -> Result<Option<Cursor>, AlertError> {
    Ok(conn
        .query_row(
            "SELECT seq, pending, lease_ms, attempts, next_ms FROM alert_cursor WHERE target = ?1",
            params![target],
            |r| {
                Ok(Cursor {
                    seq: r.get(0)?,
                    pending: r.get(1)?,
                    lease_ms: r.get(2)?,
                    attempts: r.get(3)?,
                    next_ms: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// The alerts among the rows after `after` up to `upto` (or the next `batch` alertable rows).
fn batch_rows(
    conn: &Connection,
    cfg: &AlertsConfig,
    after: i64,
    upto: Option<i64>,
) -> Result<(Vec<Alert>, Option<i64>), AlertError> {
    let mut out = Vec::new();
    let mut last = None;
    for (seq, account, e) in journal::across_accounts(conn, after, upto, &KINDS, cfg.batch)? {
        last = Some(seq);
        if let Some((event, text)) = describe(&account, &e) {
            if cfg.events.iter().any(|x| x == event) {
                out.push(Alert {
                    seq,
                    account,
                    event,
                    text,
                    body: e.body(),
                });
            }
        }
    }
    Ok((out, last.or(upto)))
}

/// What one message to `target` carries.
pub fn payload(target: &str, key: &str, alerts: &[Alert], chat_id: &str) -> Value {
    let text = alerts
        .iter()
        .map(|a| a.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    match target {
        "discord" => json!({ "content": text }),
        "slack" => json!({ "text": text }),
        "telegram" => json!({ "chat_id": chat_id, "text": text }),
        _ => json!({
            "key": key,
            "events": alerts.iter().map(|a| json!({
                "seq": a.seq, "account": a.account, "event": a.event, "text": a.text,
                "row": a.body,
            })).collect::<Vec<_>>(),
        }),
    }
}

/// A sender's memory between rounds: each target's recent sends (for the rate limit).
#[derive(Debug, Default)]
pub struct Sender {
    sent: BTreeMap<String, Vec<i64>>,
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Round {
    /// Messages delivered, and failed attempts.
    pub sent: usize,
    pub failed: usize,
    /// Alerts delivered.
    pub alerts: usize,
}

impl Sender {
    /// One round over `targets`: for each that is due and within its rate, its pending batch
    /// or the next one, sent once. Returns what it did.
    ///
    /// # Errors
    /// [`AlertError`] when the database cannot be read or written (a failed send is not one).
    pub async fn round(
        &mut self,
        conn: &mut Connection,
        cfg: &AlertsConfig,
        targets: &[Target],
        http: &reqwest::Client,
        clock: &dyn Clock,
    ) -> Result<Round, AlertError> {
        let mut round = Round::default();
        for t in targets {
            let now = clock.now_ms();
            let Some(c) = cursor(conn, &t.name)? else {
                continue;
            };
            // Waiting out a backoff, or a batch another sender is sending.
            if c.next_ms > now || c.lease_ms > now {
                continue;
            }
            let recent = self.sent.entry(t.name.clone()).or_default();
            recent.retain(|&x| x > now - 60_000);
            if recent.len() >= cfg.max_per_minute {
                continue;
            }
            let (alerts, last) = batch_rows(conn, cfg, c.seq, c.pending)?;
            let Some(last) = last else {
                continue;
            };
            if alerts.is_empty() {
                // Only rows no alert is about: past them.
                conn.execute(
                    "UPDATE alert_cursor SET seq = ?2, pending = NULL, attempts = 0 \
                     WHERE target = ?1 AND seq = ?3",
                    params![t.name, last, c.seq],
                )?;
                continue;
            }
            // The batch, leased before it goes out: after a crash it is sent again as it was.
            let claimed = conn.execute(
                "UPDATE alert_cursor SET pending = ?2, lease_ms = ?3 \
                 WHERE target = ?1 AND seq = ?4 AND lease_ms <= ?5",
                params![t.name, last, now + lease_ms(cfg), c.seq, now],
            )?;
            if claimed == 0 {
                continue;
            }
            let key = format!("{}:{}-{}", t.name, c.seq + 1, last);
            let body = payload(&t.name, &key, &alerts, &cfg.telegram_chat_id);
            let sent = http
                .post(&t.url)
                .header("Idempotency-Key", &key)
                .timeout(Duration::from_secs_f64(cfg.timeout_secs))
                .json(&body)
                .send()
                .await;
            let ok = match sent {
                Ok(r) if r.status().is_success() => true,
                Ok(r) => {
                    tracing::warn!(target = t.name, status = %r.status(), "alert not accepted; retried later");
                    false
                }
                Err(e) => {
                    tracing::warn!(
                        target = t.name,
                        "alert not sent ({}); retried later",
                        e.without_url()
                    );
                    false
                }
            };
            recent.push(now);
            // Each update only moves the cursor this round read (another sender may have taken
            // the batch over once the lease ran out, and moved on).
            if ok {
                conn.execute(
                    "UPDATE alert_cursor SET seq = ?2, pending = NULL, lease_ms = 0, attempts = 0, \
                     next_ms = 0 WHERE target = ?1 AND seq = ?3",
                    params![t.name, last, c.seq],
                )?;
                round.sent += 1;
                round.alerts += alerts.len();
            } else {
                let attempts = c.attempts + 1;
                let backoff = (2_000i64 << attempts.min(8).saturating_sub(1)).min(300_000);
                conn.execute(
                    "UPDATE alert_cursor SET attempts = ?2, next_ms = ?3, lease_ms = 0 \
                     WHERE target = ?1 AND seq = ?4",
                    params![t.name, attempts, clock.now_ms() + backoff, c.seq],
                )?;
                round.failed += 1;
            }
        }
        Ok(round)
    }
}

/// Sends alerts from the database at `db` until `stop` says so, a round a second; then rounds
/// until nothing more goes (or the rate limit stops it: the rest go with the next sender).
/// Errors are logged, never fatal: the session goes on without alerts.
pub async fn run(
    db: std::path::PathBuf,
    cfg: AlertsConfig,
    targets: Vec<Target>,
    clock: std::sync::Arc<dyn Clock>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut conn = match crate::store::open(&db) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("alerts: {e}; none sent");
            return;
        }
    };
    let http = reqwest::Client::new();
    let mut sender = Sender::default();
    loop {
        let stopping = *stop.borrow();
        let round = sender
            .round(&mut conn, &cfg, &targets, &http, clock.as_ref())
            .await;
        if let Err(e) = &round {
            tracing::warn!("alerts: {e}");
        }
        if stopping && round.map_or(true, |r| r.sent == 0) {
            return;
        }
        if stopping {
            continue;
        }
        let mut s = stop.clone();
        let _ = tokio::time::timeout(Duration::from_secs(1), s.changed()).await;
    }
}

/// Sends what is due now, round after round, for at most `deadline` (a one-shot command's
/// last act; what is left goes with the next sender).
///
/// # Errors
/// [`AlertError`] when the database cannot be read or written.
pub async fn flush(
    db: &Path,
    cfg: &AlertsConfig,
    targets: &[Target],
    clock: &dyn Clock,
    deadline: Duration,
) -> Result<usize, AlertError> {
    let mut conn = crate::store::open(db).map_err(JournalError::from)?;
    let http = reqwest::Client::new();
    let mut sender = Sender::default();
    let work = async {
        let mut total = 0;
        loop {
            let r = sender.round(&mut conn, cfg, targets, &http, clock).await?;
            total += r.alerts;
            if r.sent == 0 {
                return Ok::<_, AlertError>(total);
            }
        }
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("alerts: not all sent within {deadline:?}; the rest go later");
            Ok(0)
        }
    }
}
