//! Hyperliquid: typed messages of the public API, the REST info client ([`info`]), the
//! WebSocket feed ([`ws`]) and the history fetcher ([`fetch`]).
//!
//! Shapes follow the public API documentation (`POST /info` with a `type` field; WebSocket
//! `subscribe` / `ping`). Prices and sizes arrive as strings; they are parsed exactly, to
//! `Decimal` for anything that feeds orders and to `f64` for the simulator.

pub mod adapter;
pub mod exchange;
pub mod fetch;
pub mod info;
pub mod signing;
pub mod wire;
pub mod ws;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Mainnet REST base URL.
pub const MAINNET_URL: &str = "https://api.hyperliquid.xyz";
/// Testnet REST base URL.
pub const TESTNET_URL: &str = "https://api.hyperliquid-testnet.xyz";

/// Errors of the Hyperliquid client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HlError {
    /// Could not connect / the connection broke (worth retrying).
    #[error("connection to {url} failed: {message}")]
    Connectivity { url: String, message: String },
    /// The server answered with an error status.
    #[error("{url} answered HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    /// Still rate-limited or failing after every retry.
    #[error("{url}: gave up after {attempts} attempts; last answer HTTP {status}: {body}")]
    Exhausted {
        url: String,
        attempts: u32,
        status: u16,
        body: String,
    },
    /// The reply did not have the documented shape.
    #[error("{what}: unexpected reply: {message}")]
    Parse { what: String, message: String },
    #[error("invalid URL `{0}`")]
    Url(String),
}

/// Parses a decimal string exactly.
///
/// # Errors
/// [`HlError::Parse`] naming the field.
pub fn parse_decimal(field: &str, s: &str) -> Result<Decimal, HlError> {
    s.parse::<Decimal>().map_err(|e| HlError::Parse {
        what: field.into(),
        message: format!("`{s}` is not a decimal: {e}"),
    })
}

/// Parses a decimal string to `f64` (for the simulator).
///
/// # Errors
/// [`HlError::Parse`] naming the field.
pub fn parse_f64(field: &str, s: &str) -> Result<f64, HlError> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(HlError::Parse {
            what: field.into(),
            message: format!("`{s}` is not a number"),
        }),
    }
}

/// A candle as the API sends it (`candleSnapshot` items and `candle` WebSocket data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireCandle {
    /// Open time, ms.
    pub t: i64,
    /// Close time, ms.
    #[serde(rename = "T")]
    pub close_time: i64,
    /// Coin.
    pub s: String,
    /// Interval.
    pub i: String,
    pub o: String,
    pub c: String,
    pub h: String,
    pub l: String,
    pub v: String,
    /// Number of trades.
    pub n: u64,
}

/// A parsed candle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candle {
    pub t: i64,
    pub close_time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub trades: u64,
}

impl WireCandle {
    /// Parses the string fields.
    ///
    /// # Errors
    /// [`HlError::Parse`] naming the field.
    pub fn parse(&self) -> Result<Candle, HlError> {
        Ok(Candle {
            t: self.t,
            close_time: self.close_time,
            open: parse_f64("candle.o", &self.o)?,
            high: parse_f64("candle.h", &self.h)?,
            low: parse_f64("candle.l", &self.l)?,
            close: parse_f64("candle.c", &self.c)?,
            volume: parse_f64("candle.v", &self.v)?,
            trades: self.n,
        })
    }
}

/// One `fundingHistory` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireFunding {
    pub coin: String,
    pub funding_rate: String,
    pub premium: String,
    pub time: i64,
}

/// A parsed funding record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Funding {
    pub time: i64,
    pub rate: f64,
    pub premium: f64,
}

impl WireFunding {
    /// Parses the string fields.
    ///
    /// # Errors
    /// [`HlError::Parse`] naming the field.
    pub fn parse(&self) -> Result<Funding, HlError> {
        Ok(Funding {
            time: self.time,
            rate: parse_f64("fundingHistory.fundingRate", &self.funding_rate)?,
            premium: parse_f64("fundingHistory.premium", &self.premium)?,
        })
    }
}

/// One perp of `meta.universe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetMeta {
    pub name: String,
    pub sz_decimals: u32,
    pub max_leverage: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_isolated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_delisted: Option<bool>,
}

/// The `meta` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub universe: Vec<AssetMeta>,
}

/// One asset context of `metaAndAssetCtxs` (strings as sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireAssetCtx {
    pub funding: String,
    pub open_interest: String,
    pub prev_day_px: String,
    pub day_ntl_vlm: String,
    pub premium: Option<String>,
    pub oracle_px: String,
    pub mark_px: String,
    pub mid_px: Option<String>,
    #[serde(default)]
    pub impact_pxs: Option<Vec<String>>,
}

/// A parsed asset context: prices as `Decimal` (they feed orders), funding as `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetCtx {
    pub coin: String,
    pub sz_decimals: u32,
    pub max_leverage: u32,
    pub mark_px: Decimal,
    pub oracle_px: Decimal,
    pub mid_px: Option<Decimal>,
    pub funding: f64,
    pub open_interest: f64,
}

/// One side level of an order book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireLevel {
    pub px: String,
    pub sz: String,
    pub n: u64,
}

/// The `l2Book` reply and WebSocket data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireBook {
    pub coin: String,
    pub time: i64,
    /// `[bids, asks]`.
    pub levels: Vec<Vec<WireLevel>>,
}

/// A parsed book level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    pub px: Decimal,
    pub sz: Decimal,
    pub orders: u64,
}

/// A parsed order book.
#[derive(Debug, Clone, PartialEq)]
pub struct Book {
    pub coin: String,
    pub time: i64,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

impl WireBook {
    /// Parses prices and sizes to `Decimal`.
    ///
    /// # Errors
    /// [`HlError::Parse`] for a bad number or not exactly two sides.
    pub fn parse(&self) -> Result<Book, HlError> {
        if self.levels.len() != 2 {
            return Err(HlError::Parse {
                what: "l2Book.levels".into(),
                message: format!("expected [bids, asks], got {} sides", self.levels.len()),
            });
        }
        let side = |v: &Vec<WireLevel>| -> Result<Vec<Level>, HlError> {
            v.iter()
                .map(|l| {
                    Ok(Level {
                        px: parse_decimal("l2Book.px", &l.px)?,
                        sz: parse_decimal("l2Book.sz", &l.sz)?,
                        orders: l.n,
                    })
                })
                .collect()
        };
        Ok(Book {
            coin: self.coin.clone(),
            time: self.time,
            bids: side(&self.levels[0])?,
            asks: side(&self.levels[1])?,
        })
    }
}

/// One trade of the `trades` WebSocket channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTrade {
    pub coin: String,
    /// `B` (buy) or `A` (sell).
    pub side: String,
    pub px: String,
    pub sz: String,
    pub time: i64,
    #[serde(default)]
    pub hash: String,
    #[serde(default)]
    pub tid: u64,
}

/// Interval length in milliseconds for a Hyperliquid interval name.
pub fn interval_ms(interval: &str) -> Option<i64> {
    interval
        .parse::<crate::market::types::Interval>()
        .ok()
        .map(crate::market::types::Interval::ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_shapes_parse() {
        let c: WireCandle = serde_json::from_str(
            r#"{"t":1681923600000,"T":1681927199999,"s":"BTC","i":"1h","o":"29295.0","c":"29258.0","h":"29309.0","l":"29250.0","v":"0.98639","n":189}"#,
        )
        .unwrap();
        let p = c.parse().unwrap();
        assert_eq!(
            (p.t, p.close_time, p.trades),
            (1681923600000, 1681927199999, 189)
        );
        assert_eq!((p.open, p.close, p.volume), (29295.0, 29258.0, 0.98639));
        let f: WireFunding = serde_json::from_str(
            r#"{"coin":"ETH","fundingRate":"-0.00022196","premium":"-0.00052196","time":1683849600076}"#,
        )
        .unwrap();
        assert_eq!(f.parse().unwrap().rate, -0.00022196);
        let b: WireBook = serde_json::from_str(
            r#"{"coin":"BTC","time":1754450974231,"levels":[[{"px":"113377.0","sz":"7.6699","n":17}],[{"px":"113397.0","sz":"0.11543","n":3}]]}"#,
        )
        .unwrap();
        let book = b.parse().unwrap();
        assert_eq!(book.bids[0].px, "113377.0".parse::<Decimal>().unwrap());
        assert_eq!(book.asks[0].sz.to_string(), "0.11543");
        let bad = WireCandle {
            o: "abc".into(),
            ..c
        };
        assert!(bad.parse().unwrap_err().to_string().contains("candle.o"));
        assert_eq!(interval_ms("1h"), Some(3_600_000));
        assert_eq!(interval_ms("7h"), None);
    }
}
