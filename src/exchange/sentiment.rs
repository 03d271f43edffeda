//! The alternative.me Crypto Fear & Greed index (`GET {base}/fng/?limit=0&format=json`), for the
//! market-regime filter. Written as `date,value` CSV (UTC day, 0–100), oldest first.

use std::time::Duration;

use serde::Deserialize;

use super::hyperliquid::HlError;
use crate::market::civil;

/// Default base URL of the index.
pub const ALTERNATIVE_ME_URL: &str = "https://api.alternative.me";

#[derive(Deserialize)]
struct Reply {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    value: String,
    timestamp: String,
}

/// Fetches the whole index: `(YYYY-MM-DD, value)` pairs, oldest first, one per day.
///
/// # Errors
/// [`HlError`] for connection failures, an error status or a reply of another shape.
pub async fn fetch_fear_greed(base_url: &str) -> Result<Vec<(String, u8)>, HlError> {
    let url = format!(
        "{}/fng/?limit=0&format=json",
        base_url.trim_end_matches('/')
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| HlError::Connectivity {
            url: url.clone(),
            message: e.to_string(),
        })?;
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| HlError::Connectivity {
            url: url.clone(),
            message: e.to_string(),
        })?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    if status != 200 {
        return Err(HlError::Http {
            url,
            status,
            body: text,
        });
    }
    let reply: Reply = serde_json::from_str(&text).map_err(|e| HlError::Parse {
        what: "fear & greed".into(),
        message: e.to_string(),
    })?;
    let mut out: Vec<(String, u8)> = reply
        .data
        .iter()
        .map(|it| {
            let secs: i64 = it.timestamp.parse().map_err(|_| HlError::Parse {
                what: "fear & greed timestamp".into(),
                message: format!("`{}` is not a number of seconds", it.timestamp),
            })?;
            let value: u8 =
                it.value
                    .parse()
                    .ok()
                    .filter(|v| *v <= 100)
                    .ok_or_else(|| HlError::Parse {
                        what: "fear & greed value".into(),
                        message: format!("`{}` is not 0-100", it.value),
                    })?;
            let (y, m, d, _, _) = civil(secs * 1000);
            Ok((format!("{y:04}-{m:02}-{d:02}"), value))
        })
        .collect::<Result<_, HlError>>()?;
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}
