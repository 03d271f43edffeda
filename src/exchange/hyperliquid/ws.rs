//! The WebSocket market feed: subscriptions to `candle`, `allMids`, `trades` and `l2Book`,
//! typed events, a `{"method":"ping"}` heartbeat well inside the server's 60-second idle
//! cut-off, and automatic reconnection with backoff and resubscription.
//!
//! Candles are delivered **closed, once each, in order**: a bar counts as closed when the first
//! update of a later bar arrives, or when its close time has passed on the feed's clock.
//! Missing bars — after a reconnect, or a bar the stream skipped — are backfilled through
//! `candleSnapshot` before later bars are delivered. Malformed messages are skipped, counted
//! and reported as [`FeedEvent::Malformed`]; they never stop the feed.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::{connect_async, tungstenite::Message};

use super::{
    info::InfoClient, interval_ms, parse_decimal, Book, Candle, WireBook, WireCandle, WireTrade,
};
use crate::clock::Clock;

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subscription {
    Candle {
        coin: String,
        interval: String,
    },
    AllMids,
    Trades {
        coin: String,
    },
    L2Book {
        coin: String,
    },
    /// The account's fills (signed-in data needs no signature: the address is public).
    UserFills {
        user: String,
    },
    /// The account's order status changes.
    OrderUpdates {
        user: String,
    },
}

impl Subscription {
    fn to_json(&self) -> Value {
        let sub = match self {
            Subscription::Candle { coin, interval } => {
                json!({"type": "candle", "coin": coin, "interval": interval})
            }
            Subscription::AllMids => json!({"type": "allMids"}),
            Subscription::Trades { coin } => json!({"type": "trades", "coin": coin}),
            Subscription::L2Book { coin } => json!({"type": "l2Book", "coin": coin}),
            Subscription::UserFills { user } => json!({"type": "userFills", "user": user}),
            Subscription::OrderUpdates { user } => json!({"type": "orderUpdates", "user": user}),
        };
        json!({"method": "subscribe", "subscription": sub})
    }
}

/// What the feed delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    /// A closed candle (each bar once, in order per coin and interval).
    Candle {
        coin: String,
        interval: String,
        candle: Candle,
    },
    Mids(BTreeMap<String, Decimal>),
    Trades(Vec<WireTrade>),
    Book(Book),
    /// Fills of a `userFills` subscription (a snapshot first on the real server).
    UserFills {
        user: String,
        snapshot: bool,
        fills: Vec<super::exchange::UserFill>,
    },
    /// Order status changes of an `orderUpdates` subscription.
    OrderUpdates(Vec<OrderUpdate>),
    /// The connection was re-established (count so far).
    Reconnected(u64),
    /// A message that could not be understood was skipped.
    Malformed(String),
}

/// One order status change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderUpdate {
    pub order: super::exchange::OpenOrder,
    pub status: String,
    pub status_timestamp: i64,
}

/// Feed settings.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// `wss://api.hyperliquid.xyz/ws` or a local test exchange's `ws://127.0.0.1:PORT/ws`.
    pub url: String,
    pub subscriptions: Vec<Subscription>,
    /// Heartbeat interval (the server closes idle connections after 60 s).
    pub ping_every: Duration,
    /// First reconnect delay; doubles up to `reconnect_max`.
    pub reconnect_base: Duration,
    pub reconnect_max: Duration,
    /// How often pending bars are checked against their close time.
    pub close_check_every: Duration,
    /// Per `(coin, interval)`: the open time of the last bar the consumer already has. Bars up
    /// to it are never delivered; bars after it that the stream does not send are backfilled
    /// before the first one it does (a restarted runner misses nothing).
    pub resume_from: BTreeMap<(String, String), i64>,
}

impl FeedConfig {
    /// Defaults for `url`: ping every 20 s, reconnect from 0.5 s up to 30 s.
    pub fn new(url: impl Into<String>, subscriptions: Vec<Subscription>) -> Self {
        Self {
            url: url.into(),
            subscriptions,
            ping_every: Duration::from_secs(20),
            reconnect_base: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            close_check_every: Duration::from_secs(1),
            resume_from: BTreeMap::new(),
        }
    }
}

/// The WebSocket URL of a REST base URL (`https://x` → `wss://x/ws`).
pub fn ws_url(base: &str) -> String {
    let b = base.trim_end_matches('/');
    if let Some(rest) = b.strip_prefix("https://") {
        format!("wss://{rest}/ws")
    } else if let Some(rest) = b.strip_prefix("http://") {
        format!("ws://{rest}/ws")
    } else {
        format!("{b}/ws")
    }
}

/// Counters of a running feed.
#[derive(Debug, Default)]
pub struct FeedStats {
    pub malformed: AtomicU64,
    pub reconnects: AtomicU64,
    pub backfilled: AtomicU64,
    pub pings: AtomicU64,
}

/// A running feed: receive events from `events`.
pub struct Feed {
    pub events: mpsc::Receiver<FeedEvent>,
    pub stats: Arc<FeedStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Feed {
    /// Stops the feed.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Per candle stream: the last delivered bar and the bar being formed.
struct Stream {
    coin: String,
    interval: String,
    iv: i64,
    last: Option<i64>,
    pending: Option<Candle>,
}

struct Ctx {
    tx: mpsc::Sender<FeedEvent>,
    stats: Arc<FeedStats>,
    info: Arc<InfoClient>,
    clock: Arc<dyn Clock>,
}

impl Ctx {
    async fn send(&self, e: FeedEvent) -> bool {
        self.tx.send(e).await.is_ok()
    }

    async fn malformed(&self, what: String) -> bool {
        self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        self.send(FeedEvent::Malformed(what)).await
    }

    async fn deliver(&self, s: &mut Stream, c: Candle) -> bool {
        if s.last.is_some_and(|l| c.t <= l) {
            return true;
        }
        s.last = Some(c.t);
        self.send(FeedEvent::Candle {
            coin: s.coin.clone(),
            interval: s.interval.clone(),
            candle: c,
        })
        .await
    }

    /// Delivers every closed bar before `until` (exclusive) not yet delivered: the pending bar
    /// and, where bars are missing, bars fetched through `candleSnapshot`.
    async fn close_before(&self, s: &mut Stream, until: i64) -> bool {
        let pending = s.pending.filter(|p| p.t < until);
        if pending.is_some() {
            s.pending = None;
        }
        let first_missing = s.last.map(|l| l + s.iv);
        let upto = pending.map_or(until, |p| p.t);
        if let Some(from) = first_missing {
            if from < upto && !self.backfill(s, from, upto - s.iv).await {
                return false;
            }
        }
        if let Some(p) = pending {
            if !self.deliver(s, p).await {
                return false;
            }
        }
        // Bars between the pending one and `until` that the stream never sent.
        if let Some(l) = s.last {
            if l + s.iv < until && !self.backfill(s, l + s.iv, until - s.iv).await {
                return false;
            }
        }
        true
    }

    /// Fetches bars opened in `[from, to]` and delivers the closed ones in order.
    async fn backfill(&self, s: &mut Stream, from: i64, to: i64) -> bool {
        let now = self.clock.now_ms();
        match self
            .info
            .candle_snapshot(&s.coin, &s.interval, from, to)
            .await
        {
            Ok(mut bars) => {
                bars.sort_by_key(|c| c.t);
                for c in bars {
                    if c.t >= from && c.t <= to && c.t + s.iv <= now.max(to + s.iv) {
                        self.stats.backfilled.fetch_add(1, Ordering::Relaxed);
                        if !self.deliver(s, c).await {
                            return false;
                        }
                    }
                }
                true
            }
            Err(e) => {
                self.malformed(format!("backfill of {} {} failed: {e}", s.coin, s.interval))
                    .await
            }
        }
    }

    async fn on_candle(&self, streams: &mut [Stream], c: WireCandle) -> bool {
        let Some(s) = streams
            .iter_mut()
            .find(|s| s.coin == c.s && s.interval == c.i)
        else {
            return true;
        };
        let candle = match c.parse() {
            Ok(x) => x,
            Err(e) => return self.malformed(e.to_string()).await,
        };
        if s.last.is_some_and(|l| candle.t <= l) {
            return true; // a late update of a bar already delivered
        }
        if !self.close_before(s, candle.t).await {
            return false;
        }
        s.pending = Some(candle);
        true
    }

    async fn on_text(&self, streams: &mut [Stream], text: &str) -> bool {
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return self
                    .malformed(format!("not JSON ({e}): {}", short(text)))
                    .await
            }
        };
        let channel = v.get("channel").and_then(Value::as_str).unwrap_or("");
        let data = v.get("data").cloned().unwrap_or(Value::Null);
        match channel {
            "candle" => match serde_json::from_value::<WireCandle>(data) {
                Ok(c) => self.on_candle(streams, c).await,
                Err(e) => self.malformed(format!("candle: {e}")).await,
            },
            "allMids" => {
                let mids = data.get("mids").cloned().unwrap_or(Value::Null);
                match serde_json::from_value::<BTreeMap<String, String>>(mids) {
                    Ok(m) => {
                        let parsed: Result<BTreeMap<String, Decimal>, super::HlError> = m
                            .iter()
                            .map(|(k, x)| Ok((k.clone(), parse_decimal("allMids", x)?)))
                            .collect();
                        match parsed {
                            Ok(p) => self.send(FeedEvent::Mids(p)).await,
                            Err(e) => self.malformed(e.to_string()).await,
                        }
                    }
                    Err(e) => self.malformed(format!("allMids: {e}")).await,
                }
            }
            "trades" => match serde_json::from_value::<Vec<WireTrade>>(data) {
                Ok(t) => self.send(FeedEvent::Trades(t)).await,
                Err(e) => self.malformed(format!("trades: {e}")).await,
            },
            "l2Book" => match serde_json::from_value::<WireBook>(data)
                .map_err(|e| e.to_string())
                .and_then(|b| b.parse().map_err(|e| e.to_string()))
            {
                Ok(b) => self.send(FeedEvent::Book(b)).await,
                Err(e) => self.malformed(format!("l2Book: {e}")).await,
            },
            "userFills" => {
                #[derive(serde::Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Msg {
                    user: String,
                    #[serde(default)]
                    is_snapshot: bool,
                    fills: Vec<super::exchange::UserFill>,
                }
                match serde_json::from_value::<Msg>(data) {
                    Ok(m) => {
                        self.send(FeedEvent::UserFills {
                            user: m.user,
                            snapshot: m.is_snapshot,
                            fills: m.fills,
                        })
                        .await
                    }
                    Err(e) => self.malformed(format!("userFills: {e}")).await,
                }
            }
            "orderUpdates" => match serde_json::from_value::<Vec<OrderUpdate>>(data) {
                Ok(u) => self.send(FeedEvent::OrderUpdates(u)).await,
                Err(e) => self.malformed(format!("orderUpdates: {e}")).await,
            },
            "pong" | "subscriptionResponse" => true,
            "error" => {
                self.malformed(format!("server error: {}", short(text)))
                    .await
            }
            _ => self.malformed(format!("unknown channel `{channel}`")).await,
        }
    }

    /// Delivers pending bars whose close time has passed.
    async fn close_by_time(&self, streams: &mut [Stream]) -> bool {
        let now = self.clock.now_ms();
        for s in streams.iter_mut() {
            if let Some(p) = s.pending {
                if now > p.close_time {
                    s.pending = None;
                    if !self.close_before(s, p.t).await || !self.deliver(s, p).await {
                        return false;
                    }
                }
            }
        }
        true
    }
}

fn short(s: &str) -> String {
    s.chars().take(120).collect()
}

/// Starts the feed. `info` serves backfills; `clock` decides when a bar's close time has passed.
pub fn spawn(cfg: FeedConfig, info: Arc<InfoClient>, clock: Arc<dyn Clock>) -> Feed {
    let (tx, rx) = mpsc::channel(1024);
    let stats = Arc::new(FeedStats::default());
    let ctx = Ctx {
        tx,
        stats: stats.clone(),
        info,
        clock,
    };
    let task = tokio::spawn(run(cfg, ctx));
    Feed {
        events: rx,
        stats,
        task,
    }
}

async fn run(cfg: FeedConfig, ctx: Ctx) {
    let mut streams: Vec<Stream> = cfg
        .subscriptions
        .iter()
        .filter_map(|s| match s {
            Subscription::Candle { coin, interval } => Some(Stream {
                coin: coin.clone(),
                interval: interval.clone(),
                iv: interval_ms(interval)?,
                last: cfg
                    .resume_from
                    .get(&(coin.clone(), interval.clone()))
                    .copied(),
                pending: None,
            }),
            _ => None,
        })
        .collect();
    let mut failures: u32 = 0;
    let mut connected_before = false;
    loop {
        if ctx.tx.is_closed() {
            return;
        }
        let conn = connect_async(cfg.url.as_str()).await;
        let Ok((ws, _)) = conn else {
            failures += 1;
            let d = cfg.reconnect_base.as_secs_f64() * 2f64.powi(failures.min(16) as i32 - 1);
            tokio::time::sleep(Duration::from_secs_f64(
                d.min(cfg.reconnect_max.as_secs_f64()),
            ))
            .await;
            continue;
        };
        failures = 0;
        let (mut sink, mut source) = ws.split();
        let mut ok = true;
        for s in &cfg.subscriptions {
            if sink
                .send(Message::Text(s.to_json().to_string()))
                .await
                .is_err()
            {
                ok = false;
                break;
            }
        }
        if ok && connected_before {
            let n = ctx.stats.reconnects.fetch_add(1, Ordering::Relaxed) + 1;
            if !ctx.send(FeedEvent::Reconnected(n)).await {
                return;
            }
            // The bar that was forming may have missed updates while the connection was down:
            // it is fetched over REST once it has closed instead. Then deliver what closed
            // while we were away.
            let now = ctx.clock.now_ms();
            for s in streams.iter_mut() {
                s.pending = None;
                let current = now.div_euclid(s.iv) * s.iv;
                if s.last.is_some() && !ctx.close_before(s, current).await {
                    return;
                }
            }
        }
        connected_before = true;
        let mut ping = tokio::time::interval(cfg.ping_every);
        ping.tick().await;
        let mut close_check = tokio::time::interval(cfg.close_check_every);
        while ok {
            tokio::select! {
                msg = source.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        if !ctx.on_text(&mut streams, &t).await { return; }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        if !ctx.malformed("binary message".into()).await { return; }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => ok = false,
                    Some(Ok(_)) => {}
                },
                _ = ping.tick() => {
                    ctx.stats.pings.fetch_add(1, Ordering::Relaxed);
                    if sink.send(Message::Text(json!({"method": "ping"}).to_string())).await.is_err() {
                        ok = false;
                    }
                }
                _ = close_check.tick() => {
                    if !ctx.close_by_time(&mut streams).await { return; }
                }
            }
        }
        tokio::time::sleep(cfg.reconnect_base).await;
    }
}
