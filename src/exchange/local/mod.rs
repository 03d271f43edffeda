//! A local test exchange that speaks Hyperliquid's public protocol: `POST /info`
//! (`meta`, `metaAndAssetCtxs`, `candleSnapshot`, `fundingHistory`, `allMids`, `l2Book`) and
//! the WebSocket at `/ws` (`subscribe` to `candle`, `allMids`, `trades`, `l2Book`, `userFills`,
//! `orderUpdates`; `ping`), plus alternative.me's `GET /fng/` for the Fear & Greed index, and the
//! trading side ([`trading`]): signed `POST /exchange` and the account queries of `/info`.
//!
//! It serves candles from the built-in synthetic market on a simulated clock: [`LocalExchange::advance`]
//! moves time one base interval (1h) forward and streams the new bar to WebSocket subscribers
//! (two updates per bar: its first trade, then its final values). Only closed bars and the
//! current one are served, at most 500 per `candleSnapshot` and only the most recent 5,000.
//!
//! Faults can be injected ([`Faults`]): HTTP error statuses for the next requests, a delay,
//! malformed JSON replies, dropped WebSocket connections, malformed WebSocket messages and
//! bars skipped on the stream. Tests start it on 127.0.0.1 with an ephemeral port;
//! `organism testnet-local` runs it for manual use.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    net::SocketAddr,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    extract::{
        ws::{Message, WebSocket, WebSocketUpgrade},
        State,
    },
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::market::{synthetic, Candles, Market, HOUR_MS};

pub mod trading;

use rust_decimal::Decimal;
use trading::{Prices, Trading, TradingFaults, TradingSeen};

/// Faults to inject; all default to none.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Status codes to answer on the next `/info` requests, in order (e.g. `[429, 500]`).
    pub fail_next: VecDeque<u16>,
    /// `Retry-After` seconds sent with 429 answers.
    pub retry_after: Option<u32>,
    /// Delay before every `/info` answer.
    pub delay: Duration,
    /// Number of next `/info` answers that are malformed JSON.
    pub malformed_next: usize,
    /// Number of next `/info` answers that are a long HTML error page with status 200.
    pub garbage_next: usize,
    /// The next `/info` answer is a JSON array padded to this many bytes.
    pub huge_next: Option<usize>,
    /// `candleSnapshot` and `fundingHistory` ignore `endTime` and the clock: they answer from
    /// `startTime` on, future rows included (a server that does not honour the window).
    pub ignore_end: bool,
    /// Rows dated after now appended to every `candleSnapshot` and `fundingHistory` answer.
    pub future_rows: usize,
    /// `fundingHistory` answers 500 made-up records this far apart from `startTime` on (never
    /// past now): a server whose pages never run out.
    pub funding_step_ms: Option<i64>,
    /// `candleSnapshot` answers prices multiplied by this (plausible bars, far from the
    /// market's).
    pub price_scale: Option<f64>,
    /// `fundingHistory` answers its records newest first.
    pub funding_newest_first: bool,
    /// Every `/info` answer is sent one byte at a time, this far apart (it never completes in
    /// any useful time: `[` and 10,000 spaces before the rest).
    pub drip: Option<Duration>,
    /// Close a WebSocket connection after this many messages sent on it...
    pub ws_drop_after: Option<usize>,
    /// ...for this many connections (each dropped one counts down).
    pub ws_drops: usize,
    /// Send a malformed WebSocket message before every n-th regular one.
    pub ws_malformed_every: Option<usize>,
    /// Open times of bars never sent on the WebSocket (they stay available over REST).
    pub ws_skip_bars: BTreeSet<i64>,
    /// Close a WebSocket that sends nothing for this long (the real server: 60 s).
    pub ws_idle_timeout: Option<Duration>,
}

/// Counters of what the exchange saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Every `/info` request body, in order.
    pub info_requests: Vec<Value>,
    /// WebSocket connections accepted.
    pub ws_connections: usize,
    /// Pings received.
    pub pings: usize,
}

struct Series {
    interval: String,
    iv: i64,
    candles: Candles,
}

struct Inner {
    now: Arc<AtomicI64>,
    series: BTreeMap<(String, String), Series>,
    funding: BTreeMap<String, Vec<(i64, f64)>>,
    faults: Mutex<Faults>,
    seen: Mutex<Seen>,
    ticks: broadcast::Sender<i64>,
    trading: Mutex<Trading>,
    /// Account events for the WebSocket: (channel, user, data).
    events: broadcast::Sender<trading::Event>,
}

impl Prices for Inner {
    fn coins(&self) -> Vec<(String, u32)> {
        self.funding
            .keys()
            .map(|c| (c.clone(), sz_decimals(c)))
            .collect()
    }
    fn bar(&self, coin: &str, now: i64) -> Option<(i64, f64, f64, f64, f64)> {
        let s = self.series.get(&(coin.to_string(), "1h".to_string()))?;
        let i = current_index(s, now)?;
        let c = &s.candles;
        Some((c.ts[i], c.open[i], c.high[i], c.low[i], c.close[i]))
    }
    fn bars_between(&self, coin: &str, after: i64, upto: i64) -> Vec<(i64, f64, f64, f64, f64)> {
        let Some(s) = self.series.get(&(coin.to_string(), "1h".to_string())) else {
            return Vec::new();
        };
        let c = &s.candles;
        let a = c.ts.partition_point(|&t| t + s.iv <= after);
        let b = c.ts.partition_point(|&t| t + s.iv <= upto);
        (a..b)
            .map(|i| (c.ts[i], c.open[i], c.high[i], c.low[i], c.close[i]))
            .collect()
    }
    fn funding_between(&self, coin: &str, after: i64, upto: i64) -> Vec<(i64, f64)> {
        self.funding
            .get(coin)
            .map(|f| {
                f.iter()
                    .filter(|(t, _)| *t > after && *t <= upto)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Size decimals of the local exchange's coins (BTC 5, others 2).
fn sz_decimals(coin: &str) -> u32 {
    if coin == "BTC" {
        5
    } else {
        2
    }
}

fn wall_ms() -> u64 {
    crate::exchange::hyperliquid::exchange::now_ms()
}

impl Inner {
    fn trading(&self) -> std::sync::MutexGuard<'_, Trading> {
        match self.trading.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        }
    }

    /// Sends the account events the last request produced to WebSocket subscribers.
    fn flush_events(&self, t: &mut Trading) {
        for e in t.events.drain(..) {
            let _ = self.events.send(e);
        }
    }
}

/// A running local exchange.
#[derive(Clone)]
pub struct LocalExchange {
    inner: Arc<Inner>,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Most recent candles the exchange keeps per coin and interval (as Hyperliquid).
pub const MAX_CANDLES_KEPT: usize = 5000;
/// Most candles per `candleSnapshot` answer.
pub const MAX_CANDLES_PER_REPLY: usize = 500;
/// Most records per `fundingHistory` answer.
pub const MAX_FUNDING_PER_REPLY: usize = 500;

fn aggregate(h: &Candles, k: usize) -> Candles {
    let mut out = Candles::default();
    let mut i = 0;
    while i + k <= h.len() {
        let hi = h.high[i..i + k].iter().copied().fold(f64::MIN, f64::max);
        let lo = h.low[i..i + k].iter().copied().fold(f64::MAX, f64::min);
        let v: f64 = h.volume[i..i + k].iter().sum();
        out.push(h.ts[i], h.open[i], hi, lo, h.close[i + k - 1], v);
        i += k;
    }
    out
}

impl LocalExchange {
    /// Starts on `addr` (port 0 for an ephemeral port) with the synthetic market of `params`
    /// (its `start_ms` places the history), serving 1h and 4h candles; the simulated clock
    /// starts at `now_ms`.
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub async fn start(
        addr: SocketAddr,
        params: &synthetic::SyntheticParams,
        now_ms: i64,
    ) -> std::io::Result<LocalExchange> {
        let u = synthetic::generate(params);
        let mut series = BTreeMap::new();
        let mut funding = BTreeMap::new();
        for m in &u.markets {
            let Market { coin, candles, .. } = m;
            series.insert(
                (coin.clone(), "1h".to_string()),
                Series {
                    interval: "1h".into(),
                    iv: HOUR_MS,
                    candles: candles.clone(),
                },
            );
            series.insert(
                (coin.clone(), "4h".to_string()),
                Series {
                    interval: "4h".into(),
                    iv: 4 * HOUR_MS,
                    candles: aggregate(candles, 4),
                },
            );
            // Hyperliquid stamps funding a few milliseconds after the hour.
            let f: Vec<(i64, f64)> = m
                .funding
                .ts
                .iter()
                .zip(&m.funding.rate)
                .map(|(&t, &r)| (t + 37, r))
                .collect();
            funding.insert(coin.clone(), f);
        }
        let now = Arc::new(AtomicI64::new(now_ms));
        let (ticks, _) = broadcast::channel(4096);
        let (events, _) = broadcast::channel(4096);
        let inner = Arc::new(Inner {
            now,
            series,
            funding,
            faults: Mutex::new(Faults::default()),
            seen: Mutex::new(Seen::default()),
            ticks,
            trading: Mutex::new(Trading::new()),
            events,
        });
        let app = Router::new()
            .route("/info", post(info))
            .route("/exchange", post(exchange))
            .route("/ws", get(ws_upgrade))
            .route("/fng/", get(fear_greed))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(LocalExchange { inner, addr })
    }

    /// `http://127.0.0.1:PORT`
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/ws`
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The simulated clock (ms), shared: read it through [`crate::clock::SimClock`].
    pub fn clock(&self) -> Arc<AtomicI64> {
        self.inner.now.clone()
    }

    /// Simulated now, ms.
    pub fn now(&self) -> i64 {
        self.inner.now.load(Ordering::SeqCst)
    }

    /// Moves the clock one hour forward and streams the new bars.
    pub fn advance(&self) {
        let now = self.inner.now.fetch_add(HOUR_MS, Ordering::SeqCst) + HOUR_MS;
        let _ = self.inner.ticks.send(now);
    }

    /// Moves the clock forward to `ms` (never back) and streams the bars that closed.
    pub fn set_now(&self, ms: i64) {
        let before = self.inner.now.fetch_max(ms, Ordering::SeqCst);
        if ms > before {
            let _ = self.inner.ticks.send(ms);
        }
    }

    /// Changes the injected faults.
    pub fn set_faults(&self, f: impl FnOnce(&mut Faults)) {
        if let Ok(mut faults) = self.inner.faults.lock() {
            f(&mut faults);
        }
    }

    /// What the exchange has seen so far.
    pub fn seen(&self) -> Seen {
        self.inner
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Credits `usd` to the account `user` (creating it).
    pub fn fund(&self, user: &str, usd: Decimal) {
        self.inner.trading().fund(user, usd);
    }

    /// Makes `vault` an account with `usd`, led by `leader` (who signs for it).
    pub fn add_vault(&self, vault: &str, leader: &str, usd: Decimal) {
        self.inner.trading().add_vault(vault, leader, usd);
    }

    /// Changes the injected faults of `/exchange`.
    pub fn set_trading_faults(&self, f: impl FnOnce(&mut TradingFaults)) {
        f(&mut self.inner.trading().faults);
    }

    /// What `/exchange` has seen.
    pub fn trading_seen(&self) -> TradingSeen {
        self.inner.trading().seen.clone()
    }

    /// The signed position of `user` in `coin`.
    pub fn position(&self, user: &str, coin: &str) -> Decimal {
        self.inner.trading().position(user, coin)
    }

    /// Every fill of `user`, oldest first.
    pub fn fills(&self, user: &str) -> Vec<Value> {
        self.inner.trading().fills(user)
    }

    /// The stored candles of `coin` at `interval` (all of history, including the future).
    pub fn candles(&self, coin: &str, interval: &str) -> Option<Candles> {
        self.inner
            .series
            .get(&(coin.to_string(), interval.to_string()))
            .map(|s| s.candles.clone())
    }
}

fn wire_candle(coin: &str, s: &Series, i: usize) -> Value {
    let c = &s.candles;
    json!({"t": c.ts[i], "T": c.ts[i] + s.iv - 1, "s": coin, "i": s.interval,
        "o": c.open[i].to_string(), "c": c.close[i].to_string(), "h": c.high[i].to_string(),
        "l": c.low[i].to_string(), "v": c.volume[i].to_string(), "n": 10 + i % 50})
}

/// Index range of bars visible at `now`: opened at or before now, the most recent 5,000.
fn visible(s: &Series, now: i64) -> std::ops::Range<usize> {
    let end = s.candles.ts.partition_point(|&t| t <= now);
    end.saturating_sub(MAX_CANDLES_KEPT)..end
}

fn current_index(s: &Series, now: i64) -> Option<usize> {
    let r = visible(s, now);
    (r.end > 0).then(|| r.end - 1)
}

fn bad_request(msg: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("Failed to deserialize the JSON body: {msg}"),
    )
        .into_response()
}

async fn info(State(st): State<Arc<Inner>>, body: String) -> Response {
    // This request's faults: the standing ones, and the one-shot ones taken off their queues.
    let (f, fail, malformed, garbage, huge) = {
        let mut f = match st.faults.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        let take = |n: &mut usize| {
            let hit = *n > 0;
            *n = n.saturating_sub(1);
            hit
        };
        let fail = f.fail_next.pop_front();
        let malformed = take(&mut f.malformed_next);
        let garbage = take(&mut f.garbage_next);
        let huge = f.huge_next.take();
        (f.clone(), fail, malformed, garbage, huge)
    };
    let (delay, retry_after, ignore_end, future_rows, step) = (
        f.delay,
        f.retry_after,
        f.ignore_end,
        f.future_rows,
        f.funding_step_ms,
    );
    if let Some(every) = f.drip {
        let bytes: Vec<u8> = std::iter::once(b'[')
            .chain(std::iter::repeat_n(b' ', 10_000))
            .chain(std::iter::once(b']'))
            .collect();
        let stream = futures_util::stream::unfold(0usize, move |i| {
            let b = bytes.get(i).copied();
            async move {
                tokio::time::sleep(every).await;
                b.map(|b| (Ok::<_, std::convert::Infallible>(vec![b]), i + 1))
            }
        });
        return (StatusCode::OK, axum::body::Body::from_stream(stream)).into_response();
    }
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    if let Ok(mut seen) = st.seen.lock() {
        seen.info_requests
            .push(parsed.clone().unwrap_or(Value::Null));
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(code) = fail {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, format!("injected {code}")).into_response();
        if code == 429 {
            if let Some(s) = retry_after {
                if let Ok(v) = s.to_string().parse() {
                    resp.headers_mut().insert("retry-after", v);
                }
            }
        }
        return resp;
    }
    if malformed {
        return (StatusCode::OK, "{\"universe\": [oops").into_response();
    }
    if garbage {
        let page = format!(
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
            "<p>upstream error</p>\n".repeat(500)
        );
        return (StatusCode::OK, page).into_response();
    }
    if let Some(n) = huge {
        let mut body = String::with_capacity(n + 2);
        body.push('[');
        body.push_str(&" ".repeat(n));
        body.push(']');
        return (StatusCode::OK, body).into_response();
    }
    let Some(req) = parsed else {
        return bad_request("body is not JSON");
    };
    let now = st.now.load(Ordering::SeqCst);
    {
        let mut t = st.trading();
        if let Some(v) = t.info(&*st, &req, now, wall_ms()) {
            st.flush_events(&mut t);
            return Json(v).into_response();
        }
    }
    let coins: Vec<String> = st.funding.keys().cloned().collect();
    match req.get("type").and_then(Value::as_str) {
        Some("meta") => Json(meta(&coins)).into_response(),
        Some("metaAndAssetCtxs") => {
            let ctxs: Vec<Value> = coins
                .iter()
                .map(|c| {
                    let s = &st.series[&(c.clone(), "1h".to_string())];
                    let px = current_index(s, now).map_or(0.0, |i| s.candles.close[i]);
                    json!({"funding": "0.0000125", "openInterest": "1000.0", "prevDayPx": px.to_string(),
                        "dayNtlVlm": "1000000.0", "premium": "0.0", "oraclePx": px.to_string(),
                        "markPx": px.to_string(), "midPx": px.to_string(),
                        "impactPxs": [px.to_string(), px.to_string()]})
                })
                .collect();
            Json(json!([meta(&coins), ctxs])).into_response()
        }
        Some("allMids") => Json(mids(&st, now)).into_response(),
        Some("l2Book") => {
            let Some(coin) = req.get("coin").and_then(Value::as_str) else {
                return bad_request("missing field `coin`");
            };
            match book(&st, coin, now) {
                Some(b) => Json(b).into_response(),
                None => Json(Value::Null).into_response(),
            }
        }
        Some("candleSnapshot") => {
            let r = &req["req"];
            let (Some(coin), Some(interval), Some(start)) = (
                r.get("coin").and_then(Value::as_str),
                r.get("interval").and_then(Value::as_str),
                r.get("startTime").and_then(Value::as_i64),
            ) else {
                return bad_request("missing field in `req`");
            };
            let end = r.get("endTime").and_then(Value::as_i64).unwrap_or(now);
            let Some(s) = st.series.get(&(coin.to_string(), interval.to_string())) else {
                return Json(json!([])).into_response();
            };
            let mut out: Vec<Value> = if ignore_end {
                (0..s.candles.len())
                    .filter(|&i| s.candles.ts[i] >= start)
                    .take(MAX_CANDLES_PER_REPLY)
                    .map(|i| wire_candle(coin, s, i))
                    .collect()
            } else {
                visible(s, now)
                    .filter(|&i| s.candles.ts[i] >= start && s.candles.ts[i] <= end)
                    .take(MAX_CANDLES_PER_REPLY)
                    .map(|i| wire_candle(coin, s, i))
                    .collect()
            };
            let first_future = s.candles.ts.partition_point(|&t| t <= now);
            out.extend(
                (first_future..s.candles.len())
                    .take(future_rows)
                    .map(|i| wire_candle(coin, s, i)),
            );
            if let Some(k) = f.price_scale {
                for c in &mut out {
                    for key in ["o", "h", "l", "c"] {
                        let px: f64 = c[key].as_str().and_then(|x| x.parse().ok()).unwrap_or(0.0);
                        c[key] = json!((px * k).to_string());
                    }
                }
            }
            Json(Value::Array(out)).into_response()
        }
        Some("fundingHistory") => {
            let (Some(coin), Some(start)) = (
                req.get("coin").and_then(Value::as_str),
                req.get("startTime").and_then(Value::as_i64),
            ) else {
                return bad_request("missing field `coin` or `startTime`");
            };
            let end = if ignore_end {
                i64::MAX
            } else {
                req.get("endTime")
                    .and_then(Value::as_i64)
                    .unwrap_or(now)
                    .min(now)
            };
            let row = |&(t, r): &(i64, f64)| json!({"coin": coin, "fundingRate": r.to_string(), "premium": "0.0", "time": t});
            if let Some(step) = step {
                let out: Vec<Value> = (0..MAX_FUNDING_PER_REPLY as i64)
                    .map(|k| start + k * step.max(1))
                    .take_while(|&t| t <= now)
                    .map(|t| row(&(t, 0.00001)))
                    .collect();
                return Json(Value::Array(out)).into_response();
            }
            let mut out: Vec<Value> = st
                .funding
                .get(coin)
                .map(|f| {
                    f.iter()
                        .filter(|(t, _)| *t >= start && *t <= end)
                        .take(MAX_FUNDING_PER_REPLY)
                        .map(row)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(f) = st.funding.get(coin) {
                let first_future = f.partition_point(|&(t, _)| t <= now);
                out.extend(f[first_future..].iter().take(future_rows).map(row));
            }
            if f.funding_newest_first {
                out.reverse();
            }
            Json(Value::Array(out)).into_response()
        }
        _ => bad_request("unknown variant of `type`"),
    }
}

async fn exchange(State(st): State<Arc<Inner>>, body: String) -> Response {
    let (answer, hang) = {
        let mut t = st.trading();
        if let Some(code) = t.take_fail() {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, format!("injected {code}")).into_response();
        }
        let Ok(v) = serde_json::from_str::<Value>(&body) else {
            return bad_request("body is not JSON");
        };
        let now = st.now.load(Ordering::SeqCst);
        let answer = t.exchange(&*st, &v, now, wall_ms());
        st.flush_events(&mut t);
        (answer, t.take_hang(&v))
    };
    if let Some(h) = hang {
        tokio::time::sleep(h).await;
    }
    Json(answer).into_response()
}

fn meta(coins: &[String]) -> Value {
    let universe: Vec<Value> = coins
        .iter()
        .map(|c| json!({"name": c, "szDecimals": sz_decimals(c), "maxLeverage": 20}))
        .collect();
    json!({"universe": universe})
}

fn mids(st: &Inner, now: i64) -> Value {
    let mut m = serde_json::Map::new();
    for ((coin, iv), s) in &st.series {
        if iv == "1h" {
            // The price the trading side matches at: the current bar's open.
            if let Some(i) = current_index(s, now) {
                m.insert(coin.clone(), Value::String(s.candles.open[i].to_string()));
            }
        }
    }
    Value::Object(m)
}

fn book(st: &Inner, coin: &str, now: i64) -> Option<Value> {
    let s = st.series.get(&(coin.to_string(), "1h".to_string()))?;
    let px = s.candles.open[current_index(s, now)?];
    let lvl = |p: f64, n: u64| json!({"px": format!("{p:.2}"), "sz": "1.5", "n": n});
    Some(json!({"coin": coin, "time": now,
        "levels": [[lvl(px * 0.9999, 3), lvl(px * 0.9998, 5)], [lvl(px * 1.0001, 2), lvl(px * 1.0002, 4)]]}))
}

async fn fear_greed(State(st): State<Arc<Inner>>) -> Response {
    // Newest first, as alternative.me: one value per day up to the simulated now.
    let now = st.now.load(Ordering::SeqCst);
    let today = now.div_euclid(86_400_000);
    let data: Vec<Value> = (0..400)
        .map(|k| {
            let day = today - k;
            let value = 50 + ((day * 37) % 41 - 20);
            json!({"value": value.to_string(), "value_classification": "Neutral",
                "timestamp": (day * 86_400).to_string()})
        })
        .collect();
    Json(json!({"name": "Fear and Greed Index", "data": data, "metadata": {"error": null}}))
        .into_response()
}

async fn ws_upgrade(State(st): State<Arc<Inner>>, ws: WebSocketUpgrade) -> Response {
    if let Ok(mut seen) = st.seen.lock() {
        seen.ws_connections += 1;
    }
    ws.on_upgrade(move |socket| ws_session(st, socket))
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Sub {
    Candle(String, String),
    AllMids,
    Trades(String),
    Book(String),
    UserFills(String),
    OrderUpdates(String),
}

fn parse_sub(v: &Value) -> Option<Sub> {
    let s = v.get("subscription")?;
    let coin = || s.get("coin").and_then(Value::as_str).map(String::from);
    match s.get("type")?.as_str()? {
        "candle" => Some(Sub::Candle(
            coin()?,
            s.get("interval")?.as_str()?.to_string(),
        )),
        "allMids" => Some(Sub::AllMids),
        "trades" => Some(Sub::Trades(coin()?)),
        "l2Book" => Some(Sub::Book(coin()?)),
        "userFills" => Some(Sub::UserFills(
            s.get("user")?.as_str()?.to_ascii_lowercase(),
        )),
        "orderUpdates" => Some(Sub::OrderUpdates(
            s.get("user")?.as_str()?.to_ascii_lowercase(),
        )),
        _ => None,
    }
}

async fn ws_session(st: Arc<Inner>, mut socket: WebSocket) {
    let mut ticks = st.ticks.subscribe();
    let mut events = st.events.subscribe();
    let mut subs: BTreeSet<Sub> = BTreeSet::new();
    let mut sent = 0usize;
    let faults = match st.faults.lock() {
        Ok(mut f) => {
            let mut mine = f.clone();
            if f.ws_drops > 0 {
                f.ws_drops -= 1;
            } else {
                mine.ws_drop_after = None;
            }
            mine
        }
        Err(_) => Faults::default(),
    };
    let idle = faults.ws_idle_timeout.unwrap_or(Duration::from_secs(60));
    let mut last_heard = tokio::time::Instant::now();
    // Sends one message, applying the drop and malformed faults; false when the session ends.
    async fn send(socket: &mut WebSocket, sent: &mut usize, faults: &Faults, text: String) -> bool {
        if let Some(k) = faults.ws_malformed_every {
            if k > 0
                && *sent % k == k - 1
                && socket
                    .send(Message::Text(
                        "{\"channel\": \"candle\", \"data\": {\"t\": oops".into(),
                    ))
                    .await
                    .is_err()
            {
                return false;
            }
        }
        if socket.send(Message::Text(text)).await.is_err() {
            return false;
        }
        *sent += 1;
        !matches!(faults.ws_drop_after, Some(n) if *sent >= n)
    }
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let Some(Ok(msg)) = msg else { return };
                last_heard = tokio::time::Instant::now();
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                match v.get("method").and_then(Value::as_str) {
                    Some("ping") => {
                        if let Ok(mut seen) = st.seen.lock() { seen.pings += 1; }
                        if !send(&mut socket, &mut sent, &faults, json!({"channel": "pong"}).to_string()).await { return; }
                    }
                    Some("subscribe") => {
                        if let Some(sub) = parse_sub(&v) {
                            subs.insert(sub);
                            let reply = json!({"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": v["subscription"].clone()}});
                            if !send(&mut socket, &mut sent, &faults, reply.to_string()).await { return; }
                        }
                    }
                    _ => {}
                }
            }
            ev = events.recv() => {
                let (channel, user, data) = match ev {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                let wanted = match channel.as_str() {
                    "userFills" => subs.contains(&Sub::UserFills(user.clone())),
                    "orderUpdates" => subs.contains(&Sub::OrderUpdates(user.clone())),
                    _ => false,
                };
                if !wanted {
                    continue;
                }
                let msg = if channel == "userFills" {
                    json!({"channel": "userFills", "data": {"user": user, "fills": [data]}})
                } else {
                    json!({"channel": "orderUpdates", "data": data})
                };
                if !send(&mut socket, &mut sent, &faults, msg.to_string()).await {
                    let _ = socket.close().await;
                    return;
                }
            }
            tick = ticks.recv() => {
                let now = match tick {
                    Ok(now) => now,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                let skip = st.faults.lock().map(|f| f.ws_skip_bars.clone()).unwrap_or_default();
                for sub in subs.clone() {
                    let msgs: Vec<Value> = match &sub {
                        Sub::Candle(coin, interval) => {
                            let Some(s) = st.series.get(&(coin.clone(), interval.clone())) else { continue };
                            let Some(i) = current_index(s, now) else { continue };
                            if skip.contains(&s.candles.ts[i]) {
                                continue;
                            }
                            // A new bar: its first trade, then its values so far (the final ones
                            // here, since the simulated clock jumps whole hours).
                            let mut first = wire_candle(coin, s, i);
                            let o = s.candles.open[i].to_string();
                            for k in ["c", "h", "l"] {
                                first[k] = Value::String(o.clone());
                            }
                            first["v"] = Value::String("0.001".into());
                            first["n"] = json!(1);
                            vec![json!({"channel": "candle", "data": first}),
                                 json!({"channel": "candle", "data": wire_candle(coin, s, i)})]
                        }
                        Sub::AllMids => vec![json!({"channel": "allMids", "data": {"mids": mids(&st, now)}})],
                        Sub::Trades(coin) => {
                            let Some(s) = st.series.get(&(coin.clone(), "1h".to_string())) else { continue };
                            let Some(i) = current_index(s, now) else { continue };
                            vec![json!({"channel": "trades", "data": [{"coin": coin, "side": "B",
                                "px": s.candles.close[i].to_string(), "sz": "0.1", "time": now, "hash": "0x0", "tid": i}]})]
                        }
                        Sub::Book(coin) => match book(&st, coin, now) {
                            Some(b) => vec![json!({"channel": "l2Book", "data": b})],
                            None => continue,
                        },
                        Sub::UserFills(_) | Sub::OrderUpdates(_) => continue,
                    };
                    for m in msgs {
                        if !send(&mut socket, &mut sent, &faults, m.to_string()).await {
                            let _ = socket.close().await;
                            return;
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(last_heard + idle) => {
                let _ = socket.close().await;
                return;
            }
        }
    }
}
