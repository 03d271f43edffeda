//! The REST info client: `POST {base}/info` with a JSON body whose `type` names the request.
//!
//! Requests go through a client-side token bucket holding the API's weight budget (1,200 per
//! minute per IP; `l2Book` and `allMids` weigh 2, other info requests 20, plus 1 per 60 candles
//! and 1 per 20 funding records returned). HTTP 429 and 5xx answers and broken connections are
//! retried with exponential backoff and jitter, a bounded number of times (a `Retry-After`
//! header is honoured); any other error status surfaces with the response body.

use std::{collections::BTreeMap, sync::Mutex, time::Duration};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{
    parse_decimal, parse_f64, AssetCtx, Book, Candle, Funding, HlError, Meta, WireAssetCtx,
    WireBook, WireCandle, WireFunding,
};

/// The API's weight budget per minute and IP.
pub const WEIGHT_PER_MINUTE: f64 = 1200.0;

/// A token bucket of request weight: `capacity` tokens, refilled continuously over a minute.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A full bucket of `per_minute` weight.
    pub fn new(per_minute: f64) -> Self {
        Self {
            capacity: per_minute,
            state: Mutex::new((per_minute, Instant::now())),
        }
    }

    fn refill(&self, s: &mut (f64, Instant)) {
        let now = Instant::now();
        let dt = now.duration_since(s.1).as_secs_f64();
        s.0 = (s.0 + dt * self.capacity / 60.0).min(self.capacity);
        s.1 = now;
    }

    /// Waits until `weight` tokens are available and takes them.
    pub async fn acquire(&self, weight: f64) {
        loop {
            let wait = {
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                self.refill(&mut s);
                if s.0 >= weight.min(self.capacity) {
                    s.0 -= weight;
                    return;
                }
                (weight.min(self.capacity) - s.0) * 60.0 / self.capacity
            };
            tokio::time::sleep(Duration::from_secs_f64(wait.max(0.001))).await;
        }
    }

    /// Takes `weight` more tokens without waiting (weight charged after a reply, e.g. per item
    /// returned); the balance may go negative and later requests wait for it.
    pub fn charge(&self, weight: f64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut s);
        s.0 -= weight;
    }

    /// Tokens available now.
    pub fn available(&self) -> f64 {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut s);
        s.0
    }
}

/// Retry policy for 429, 5xx and connection failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all (the first try included).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub base_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(16),
        }
    }
}

/// Time limits of every request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// To establish the connection.
    pub connect: Duration,
    /// Between two reads of the answer (a server that stops sending).
    pub read: Duration,
    /// For a whole request, its retries included (a server that drips its answer).
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
            total: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// What a request that ran past [`Timeouts::total`] says.
    pub fn past_deadline(&self) -> String {
        format!(
            "no complete answer within the request deadline of {} s \
             (exchange.request_deadline_secs)",
            self.total.as_secs_f64()
        )
    }
}

/// Largest answer read; a longer one is refused as a bad reply (the real API's largest answers,
/// 5,000 candles, are under 1 MiB).
pub const MAX_REPLY_BYTES: usize = 16 << 20;

/// The info client.
#[derive(Debug)]
pub struct InfoClient {
    http: reqwest::Client,
    base: String,
    limiter: RateLimiter,
    retry: RetryPolicy,
    timeouts: Timeouts,
    jitter: Mutex<ChaCha8Rng>,
}

/// What went wrong with a request that got no answer, in words: a timeout, a refused or failed
/// connection, or a broken transfer.
fn describe(e: &reqwest::Error, t: &Timeouts) -> String {
    use std::error::Error as _;
    let mut root = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        root = s.to_string();
        src = s.source();
    }
    if e.is_timeout() {
        if e.is_connect() {
            format!(
                "timed out connecting after {} s (exchange.connect_timeout_secs)",
                t.connect.as_secs_f64()
            )
        } else {
            format!(
                "timed out waiting for the answer after {} s (exchange.read_timeout_secs)",
                t.read.as_secs_f64()
            )
        }
    } else if e.is_connect() {
        format!("could not connect ({root})")
    } else {
        format!("the transfer failed ({root})")
    }
}

impl InfoClient {
    /// A client for `base_url` (e.g. `https://api.hyperliquid.xyz` or a local test exchange).
    ///
    /// # Errors
    /// [`HlError::Url`] for a URL that is not http(s).
    pub fn new(base_url: &str) -> Result<Self, HlError> {
        Self::with_policy(base_url, RetryPolicy::default(), WEIGHT_PER_MINUTE)
    }

    /// A client with an explicit retry policy and weight budget.
    ///
    /// # Errors
    /// [`HlError::Url`] for a URL that is not http(s).
    pub fn with_policy(
        base_url: &str,
        retry: RetryPolicy,
        weight_per_minute: f64,
    ) -> Result<Self, HlError> {
        Self::with_timeouts(base_url, retry, weight_per_minute, Timeouts::default())
    }

    /// A client with an explicit retry policy, weight budget and time limits.
    ///
    /// # Errors
    /// [`HlError::Url`] for a URL that is not http(s).
    pub fn with_timeouts(
        base_url: &str,
        retry: RetryPolicy,
        weight_per_minute: f64,
        timeouts: Timeouts,
    ) -> Result<Self, HlError> {
        let base = base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(HlError::Url(base_url.into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .build()
            .map_err(|e| HlError::Connectivity {
                url: base.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            http,
            base,
            limiter: RateLimiter::new(weight_per_minute),
            retry,
            timeouts,
            jitter: Mutex::new(ChaCha8Rng::seed_from_u64(u64::from(std::process::id()))),
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The rate limiter (for inspection).
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.retry.base_delay.as_secs_f64() * 2f64.powi(attempt as i32 - 1);
        let capped = exp.min(self.retry.max_delay.as_secs_f64());
        let f: f64 = self
            .jitter
            .lock()
            .map(|mut r| r.gen_range(0.5..=1.0))
            .unwrap_or(1.0);
        Duration::from_secs_f64(capped * f)
    }

    /// Posts `body` to `/info` and returns the JSON reply, with rate limiting and retries.
    ///
    /// # Errors
    /// [`HlError`]: connectivity after all retries, an error status with its body, or a reply
    /// that is not JSON.
    pub async fn post(&self, body: &Value, weight: f64) -> Result<Value, HlError> {
        let url = format!("{}/info", self.base);
        match tokio::time::timeout(self.timeouts.total, self.post_within(&url, body, weight)).await
        {
            Ok(r) => r,
            Err(_) => Err(HlError::Connectivity {
                url,
                message: self.timeouts.past_deadline(),
            }),
        }
    }

    /// [`InfoClient::post`] without its deadline.
    async fn post_within(&self, url: &str, body: &Value, weight: f64) -> Result<Value, HlError> {
        let url = url.to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire(weight).await;
            let what = body
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("info")
                .to_string();
            let sent = match self.http.post(&url).json(body).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<f64>().ok());
                    read_capped(resp)
                        .await
                        .map(|text| (status, text, retry_after))
                }
                Err(e) => Err(Some(e)),
            };
            let (status, text, retry_after) = match sent {
                Ok(t) => t,
                Err(None) => {
                    return Err(HlError::Parse {
                        what,
                        message: format!(
                            "the answer is larger than {} MiB; refused",
                            MAX_REPLY_BYTES >> 20
                        ),
                    })
                }
                Err(Some(e)) => {
                    if attempt >= self.retry.max_attempts {
                        return Err(HlError::Connectivity {
                            url,
                            message: format!(
                                "{} (after {attempt} attempts)",
                                describe(&e, &self.timeouts)
                            ),
                        });
                    }
                    tokio::time::sleep(self.backoff(attempt)).await;
                    continue;
                }
            };
            if status == 200 {
                return serde_json::from_str(&text).map_err(|e| HlError::Parse {
                    what,
                    message: format!("not JSON ({e}): {}", summarize(&text)),
                });
            }
            let retryable = status == 429 || status >= 500;
            if !retryable {
                return Err(HlError::Http {
                    url,
                    status,
                    body: truncate(&text),
                });
            }
            if attempt >= self.retry.max_attempts {
                return Err(HlError::Exhausted {
                    url,
                    attempts: attempt,
                    status,
                    body: truncate(&text),
                });
            }
            let wait = match retry_after {
                Some(s) if s >= 0.0 => {
                    Duration::from_secs_f64(s.min(self.retry.max_delay.as_secs_f64()))
                }
                _ => self.backoff(attempt),
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Posts a signed request to `/exchange` once (never retried here: whether a request
    /// that got no answer reached the exchange is for the caller to find out). Returns the
    /// status and the body, or `Err((sent, message))` when no answer came; `sent` is false
    /// only when the connection was never established (the request cannot have arrived).
    pub async fn post_exchange(&self, body: &Value) -> Result<(u16, String), (bool, String)> {
        let url = format!("{}/exchange", self.base);
        self.limiter.acquire(1.0).await;
        let send = async {
            match self.http.post(&url).json(body).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match read_capped(resp).await {
                        Ok(text) => Ok((status, text)),
                        Err(Some(e)) => Err((true, describe(&e, &self.timeouts))),
                        Err(None) => Err((true, "the answer is too large".into())),
                    }
                }
                Err(e) => Err((!e.is_connect(), describe(&e, &self.timeouts))),
            }
        };
        // Past the deadline the request may have arrived: the caller asks what became of it.
        tokio::time::timeout(self.timeouts.total, send)
            .await
            .unwrap_or_else(|_| Err((true, self.timeouts.past_deadline())))
    }

    /// Posts an info request (with the retries of [`InfoClient::post`]) and decodes the reply.
    ///
    /// # Errors
    /// As [`InfoClient::post`], and [`HlError::Parse`] for a reply of another shape.
    pub async fn query<T: DeserializeOwned>(&self, body: Value, weight: f64) -> Result<T, HlError> {
        let what = body
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("info")
            .to_string();
        self.typed(&what, body, weight).await
    }

    async fn typed<T: DeserializeOwned>(
        &self,
        what: &str,
        body: Value,
        weight: f64,
    ) -> Result<T, HlError> {
        let v = self.post(&body, weight).await?;
        serde_json::from_value(v).map_err(|e| HlError::Parse {
            what: what.into(),
            message: e.to_string(),
        })
    }

    /// `meta`: the perp universe.
    ///
    /// # Errors
    /// See [`InfoClient::post`].
    pub async fn meta(&self) -> Result<Meta, HlError> {
        self.typed("meta", json!({"type": "meta"}), 20.0).await
    }

    /// `metaAndAssetCtxs`: universe with mark price, funding and open interest per coin.
    ///
    /// # Errors
    /// See [`InfoClient::post`].
    pub async fn meta_and_asset_ctxs(&self) -> Result<Vec<AssetCtx>, HlError> {
        let (meta, ctxs): (Meta, Vec<WireAssetCtx>) = self
            .typed(
                "metaAndAssetCtxs",
                json!({"type": "metaAndAssetCtxs"}),
                20.0,
            )
            .await?;
        if meta.universe.len() != ctxs.len() {
            return Err(HlError::Parse {
                what: "metaAndAssetCtxs".into(),
                message: format!("{} assets but {} contexts", meta.universe.len(), ctxs.len()),
            });
        }
        meta.universe
            .iter()
            .zip(ctxs)
            .map(|(a, c)| {
                Ok(AssetCtx {
                    coin: a.name.clone(),
                    sz_decimals: a.sz_decimals,
                    max_leverage: a.max_leverage,
                    mark_px: parse_decimal("markPx", &c.mark_px)?,
                    oracle_px: parse_decimal("oraclePx", &c.oracle_px)?,
                    mid_px: c
                        .mid_px
                        .as_deref()
                        .map(|m| parse_decimal("midPx", m))
                        .transpose()?,
                    funding: parse_f64("funding", &c.funding)?,
                    open_interest: parse_f64("openInterest", &c.open_interest)?,
                })
            })
            .collect()
    }

    /// `candleSnapshot` for `[start, end]` (ms). The API returns at most 500 candles per call.
    ///
    /// # Errors
    /// See [`InfoClient::post`].
    pub async fn candle_snapshot(
        &self,
        coin: &str,
        interval: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<Candle>, HlError> {
        let body = json!({"type": "candleSnapshot",
            "req": {"coin": coin, "interval": interval, "startTime": start, "endTime": end}});
        let wire: Vec<WireCandle> = self.typed("candleSnapshot", body, 20.0).await?;
        self.limiter.charge((wire.len() / 60) as f64);
        wire.iter().map(WireCandle::parse).collect()
    }

    /// `fundingHistory` from `start` (ms) to `end` (ms, or now). At most 500 records per call.
    ///
    /// # Errors
    /// See [`InfoClient::post`].
    pub async fn funding_history(
        &self,
        coin: &str,
        start: i64,
        end: Option<i64>,
    ) -> Result<Vec<Funding>, HlError> {
        let mut body = json!({"type": "fundingHistory", "coin": coin, "startTime": start});
        if let Some(e) = end {
            body["endTime"] = json!(e);
        }
        let wire: Vec<WireFunding> = self.typed("fundingHistory", body, 20.0).await?;
        self.limiter.charge((wire.len() / 20) as f64);
        wire.iter().map(WireFunding::parse).collect()
    }

    /// `allMids`: mid price of every coin.
    ///
    /// # Errors
    /// See [`InfoClient::post`].
    pub async fn all_mids(&self) -> Result<BTreeMap<String, Decimal>, HlError> {
        let raw: BTreeMap<String, String> = self
            .typed("allMids", json!({"type": "allMids"}), 2.0)
            .await?;
        raw.iter()
            .map(|(k, v)| Ok((k.clone(), parse_decimal("allMids", v)?)))
            .collect()
    }

    /// `l2Book`: the order book of `coin`.
    ///
    /// # Errors
    /// See [`InfoClient::post`].
    pub async fn l2_book(&self, coin: &str) -> Result<Book, HlError> {
        let wire: WireBook = self
            .typed("l2Book", json!({"type": "l2Book", "coin": coin}), 2.0)
            .await?;
        wire.parse()
    }
}

/// Reads an answer's body, refusing one longer than [`MAX_REPLY_BYTES`] (`Err(None)`).
async fn read_capped(mut resp: reqwest::Response) -> Result<String, Option<reqwest::Error>> {
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_REPLY_BYTES as u64)
    {
        return Err(None);
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Some)? {
        if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A body for an error message: its size and its first 200 characters on one line, never the
/// whole thing.
fn summarize(s: &str) -> String {
    let one_line: String = s
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.len() > one_line.len() {
        format!("{} bytes starting `{}...`", s.len(), one_line.trim())
    } else {
        format!("`{}`", one_line.trim())
    }
}

fn truncate(s: &str) -> String {
    if s.len() > 500 {
        let mut end = 500;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_string()
    }
}
