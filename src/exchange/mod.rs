//! Exchange connectivity. Only this module, `execution` and `cli` use tokio.
//!
//! * [`hyperliquid`]: the Hyperliquid REST info client, the WebSocket market feed and the
//!   history fetcher behind `organism data fetch`.
//! * [`local`]: a local test exchange speaking the same protocol, with fault injection, for
//!   tests and for `organism testnet-local`.
//! * [`sentiment`]: the alternative.me Fear & Greed index.

pub mod binance;
pub mod hyperliquid;
pub mod local;
pub mod sentiment;

use serde::Deserialize;

/// `[exchange]`: where the exchange and the sentiment index are, and how long to wait for them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    pub api_url: String,
    pub sentiment_url: String,
    pub connect_timeout_secs: f64,
    pub read_timeout_secs: f64,
    pub request_deadline_secs: f64,
    pub weight_per_minute: f64,
}

impl ExchangeConfig {
    /// The time limits of exchange requests.
    pub fn timeouts(&self) -> hyperliquid::info::Timeouts {
        hyperliquid::info::Timeouts {
            connect: std::time::Duration::from_secs_f64(self.connect_timeout_secs),
            read: std::time::Duration::from_secs_f64(self.read_timeout_secs),
            total: std::time::Duration::from_secs_f64(self.request_deadline_secs),
        }
    }

    /// The Hyperliquid base URL: `flag`, else `HYPERLIQUID_API_URL`, else `api_url`.
    pub fn api_url(&self, flag: Option<&str>) -> String {
        flag.map(String::from)
            .or_else(|| {
                std::env::var("HYPERLIQUID_API_URL")
                    .ok()
                    .filter(|v| !v.is_empty())
            })
            .unwrap_or_else(|| self.api_url.clone())
    }

    /// Checks the URLs, the timeouts and the request weight.
    ///
    /// # Errors
    /// [`crate::settings::Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), crate::settings::Invalid> {
        use crate::settings::{range, Invalid};
        for (key, url) in [
            ("exchange.api_url", &self.api_url),
            ("exchange.sentiment_url", &self.sentiment_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Invalid::new(key, format!("`{url}` is not an http(s) URL")));
            }
        }
        range(
            "exchange.connect_timeout_secs",
            self.connect_timeout_secs,
            0.1,
            600.0,
        )?;
        range(
            "exchange.read_timeout_secs",
            self.read_timeout_secs,
            0.1,
            600.0,
        )?;
        range(
            "exchange.request_deadline_secs",
            self.request_deadline_secs,
            1.0,
            3600.0,
        )?;
        range(
            "exchange.weight_per_minute",
            self.weight_per_minute,
            1.0,
            1e7,
        )
    }
}
