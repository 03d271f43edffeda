//! Binance's public market data for `organism data fetch --exchange binance | binance-spot`:
//! USD-M perpetual klines and funding (`/fapi/v1/klines`, `/fapi/v1/fundingRate`) and spot
//! klines (`/api/v3/klines`), in the data layout under the sources `binanceusdm` and
//! `binancespot` (the names `../shared/universe` uses). A coin `BTC` is the symbol `BTCUSDT`.
//! Nothing here signs or trades: these endpoints need no key.

use std::time::Duration;

use serde_json::Value;

use super::hyperliquid::{
    fetch::{FetchError, Source},
    info::Timeouts,
    Candle, Funding,
};

/// Which Binance market.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    /// USD-M perpetual futures (USDT-margined), with funding.
    UsdM,
    /// Spot against USDT, without funding.
    Spot,
}

impl Market {
    /// The public REST base of the market.
    pub fn default_url(self) -> &'static str {
        match self {
            Market::UsdM => "https://fapi.binance.com",
            Market::Spot => "https://api.binance.com",
        }
    }

    fn klines_path(self) -> &'static str {
        match self {
            Market::UsdM => "/fapi/v1/klines",
            Market::Spot => "/api/v3/klines",
        }
    }
}

/// A client of one Binance market's public endpoints, with retries on 429, 418 and 5xx (after
/// `Retry-After` when the server gives one) and the config's time limits.
#[derive(Debug)]
pub struct BinanceClient {
    http: reqwest::Client,
    base: String,
    market: Market,
    timeouts: Timeouts,
}

/// Attempts per request before a fault is an error.
const ATTEMPTS: u32 = 5;

impl BinanceClient {
    /// A client of `market` at `base_url` (its public API, or a local stand-in).
    ///
    /// # Errors
    /// [`FetchError::Venue`] for a URL that is not http(s).
    pub fn new(market: Market, base_url: &str, timeouts: Timeouts) -> Result<Self, FetchError> {
        let base = base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(FetchError::Venue(format!("{base_url}: not an http(s) URL")));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .build()
            .map_err(|e| FetchError::Venue(format!("{base}: {e}")))?;
        Ok(Self {
            http,
            base,
            market,
            timeouts,
        })
    }

    /// GETs `path?query` and parses the JSON answer, its retries within the request deadline.
    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, FetchError> {
        let url = format!("{}{path}", self.base);
        tokio::time::timeout(self.timeouts.total, self.get_within(&url, query))
            .await
            .unwrap_or_else(|_| {
                Err(FetchError::Venue(format!(
                    "{url}: {}",
                    self.timeouts.past_deadline()
                )))
            })
    }

    async fn get_within(&self, url: &str, query: &[(&str, String)]) -> Result<Value, FetchError> {
        let url = url.to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let fault = match self.http.get(&url).query(query).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let wait = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<f64>().ok());
                    let body = resp.text().await.unwrap_or_default();
                    if status == 200 {
                        return serde_json::from_str(&body).map_err(|e| {
                            FetchError::Venue(format!(
                                "{url}: the answer is not JSON ({e}): {}",
                                snippet(&body)
                            ))
                        });
                    }
                    if !(status == 429 || status == 418 || status >= 500) {
                        return Err(FetchError::Venue(format!(
                            "{url}: HTTP {status}: {}",
                            snippet(&body)
                        )));
                    }
                    (format!("HTTP {status}: {}", snippet(&body)), wait)
                }
                Err(e) => (format!("{e}"), None),
            };
            if attempt >= ATTEMPTS {
                return Err(FetchError::Venue(format!(
                    "{url}: {} (after {ATTEMPTS} attempts)",
                    fault.0
                )));
            }
            let backoff = 0.5 * 2f64.powi(attempt as i32 - 1);
            let secs = fault.1.unwrap_or(backoff).clamp(0.0, 60.0);
            tracing::warn!("{url}: {}; trying again in {secs} s", fault.0);
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        }
    }
}

/// At most 200 characters of an answer, for a message.
fn snippet(body: &str) -> String {
    body.chars().take(200).collect()
}

/// A field of a kline row as a number (Binance writes prices as strings).
fn number(row: &[Value], i: usize, what: &str) -> Result<f64, FetchError> {
    let v = row
        .get(i)
        .ok_or_else(|| FetchError::Venue(format!("a kline row has no field {i} ({what})")))?;
    let x = match v {
        Value::String(s) => s.parse::<f64>().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    x.ok_or_else(|| FetchError::Venue(format!("kline field {what}: {v} is not a number")))
}

impl Source for BinanceClient {
    fn prefix(&self) -> &'static str {
        match self.market {
            Market::UsdM => "binanceusdm",
            Market::Spot => "binancespot",
        }
    }

    fn page_bars(&self) -> i64 {
        match self.market {
            Market::UsdM => 1500,
            Market::Spot => 1000,
        }
    }

    fn has_funding(&self) -> bool {
        self.market == Market::UsdM
    }

    fn funding_hours(&self) -> i64 {
        8
    }

    fn funding_page_rows(&self) -> i64 {
        1000
    }

    async fn candles(
        &self,
        coin: &str,
        interval: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<Candle>, FetchError> {
        let v = self
            .get(
                self.market.klines_path(),
                &[
                    ("symbol", format!("{coin}USDT")),
                    ("interval", interval.to_string()),
                    ("startTime", from.to_string()),
                    ("endTime", to.to_string()),
                    ("limit", self.page_bars().to_string()),
                ],
            )
            .await?;
        let rows = v.as_array().ok_or_else(|| {
            FetchError::Venue(format!(
                "{coin}USDT klines: the answer is not a list: {}",
                snippet(&v.to_string())
            ))
        })?;
        rows.iter()
            .map(|r| {
                let r = r.as_array().ok_or_else(|| {
                    FetchError::Venue(format!("{coin}USDT klines: a row is not a list: {r}"))
                })?;
                let t = r.first().and_then(Value::as_i64).ok_or_else(|| {
                    FetchError::Venue(format!("{coin}USDT klines: a row has no open time"))
                })?;
                Ok(Candle {
                    t,
                    close_time: r.get(6).and_then(Value::as_i64).unwrap_or(t),
                    open: number(r, 1, "open")?,
                    high: number(r, 2, "high")?,
                    low: number(r, 3, "low")?,
                    close: number(r, 4, "close")?,
                    volume: number(r, 5, "volume")?,
                    trades: r.get(8).and_then(Value::as_u64).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn funding(&self, coin: &str, from: i64, to: i64) -> Result<Vec<Funding>, FetchError> {
        let v = self
            .get(
                "/fapi/v1/fundingRate",
                &[
                    ("symbol", format!("{coin}USDT")),
                    ("startTime", from.to_string()),
                    ("endTime", to.to_string()),
                    ("limit", self.funding_page_rows().to_string()),
                ],
            )
            .await?;
        let rows = v.as_array().ok_or_else(|| {
            FetchError::Venue(format!("{coin}USDT funding: the answer is not a list"))
        })?;
        rows.iter()
            .map(|r| {
                let time = r["fundingTime"].as_i64();
                let rate = match &r["fundingRate"] {
                    Value::String(s) => s.parse::<f64>().ok(),
                    Value::Number(n) => n.as_f64(),
                    _ => None,
                };
                match (time, rate) {
                    (Some(time), Some(rate)) => Ok(Funding {
                        time,
                        rate,
                        premium: 0.0,
                    }),
                    _ => Err(FetchError::Venue(format!(
                        "{coin}USDT funding: a row without fundingTime and fundingRate: {r}"
                    ))),
                }
            })
            .collect()
    }
}
