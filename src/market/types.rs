//! Domain types shared from the market stage on: [`TimestampMs`], [`Coin`] and [`Interval`]
//! (Hyperliquid's candle interval names).

use serde::{Deserialize, Serialize};

/// The first coin of `coins` named twice (letter case aside): a coin listed twice would be
/// loaded, traded and counted twice.
pub fn duplicate(coins: &[String]) -> Option<&str> {
    let mut seen = std::collections::BTreeSet::new();
    coins
        .iter()
        .map(|c| c.trim())
        .find(|c| !seen.insert(c.to_ascii_uppercase()))
}

/// A list of coins as a setting names them: at least one, each a coin name ([`Coin::new`]),
/// none twice ([`duplicate`]).
///
/// # Errors
/// The first problem, as a message.
pub fn coin_list(coins: &[String]) -> Result<(), String> {
    if coins.is_empty() || coins.iter().any(|c| c.trim().is_empty()) {
        return Err("must list at least one coin, none empty".into());
    }
    for c in coins {
        Coin::new(c)?;
    }
    match duplicate(coins) {
        Some(twice) => Err(format!("`{twice}` is listed twice")),
        None => Ok(()),
    }
}

/// A UTC timestamp in milliseconds (a candle's open time, a fill's time).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct TimestampMs(pub i64);

impl TimestampMs {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for TimestampMs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A coin name as the venue spells it (`BTC`, `ETH`, `kPEPE`): non-empty, letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Coin(String);

impl Coin {
    /// Checks the name.
    ///
    /// # Errors
    /// A message for an empty name or one with other characters than ASCII letters and digits.
    pub fn new(name: &str) -> Result<Self, String> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "`{name}` is not a coin name (letters and digits only)"
            ));
        }
        Ok(Self(name.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Coin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A candle interval, named as in Hyperliquid's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Interval {
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "3m")]
    M3,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "30m")]
    M30,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "2h")]
    H2,
    #[serde(rename = "4h")]
    H4,
    #[serde(rename = "8h")]
    H8,
    #[serde(rename = "12h")]
    H12,
    #[serde(rename = "1d")]
    D1,
    #[serde(rename = "3d")]
    D3,
    #[serde(rename = "1w")]
    W1,
}

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 13] = [
        Interval::M1,
        Interval::M3,
        Interval::M5,
        Interval::M15,
        Interval::M30,
        Interval::H1,
        Interval::H2,
        Interval::H4,
        Interval::H8,
        Interval::H12,
        Interval::D1,
        Interval::D3,
        Interval::W1,
    ];

    /// The API's name (`1h`).
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M3 => "3m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::M30 => "30m",
            Interval::H1 => "1h",
            Interval::H2 => "2h",
            Interval::H4 => "4h",
            Interval::H8 => "8h",
            Interval::H12 => "12h",
            Interval::D1 => "1d",
            Interval::D3 => "3d",
            Interval::W1 => "1w",
        }
    }

    /// Length in milliseconds.
    pub fn ms(self) -> i64 {
        const M: i64 = 60_000;
        match self {
            Interval::M1 => M,
            Interval::M3 => 3 * M,
            Interval::M5 => 5 * M,
            Interval::M15 => 15 * M,
            Interval::M30 => 30 * M,
            Interval::H1 => 60 * M,
            Interval::H2 => 120 * M,
            Interval::H4 => 240 * M,
            Interval::H8 => 480 * M,
            Interval::H12 => 720 * M,
            Interval::D1 => 1440 * M,
            Interval::D3 => 3 * 1440 * M,
            Interval::W1 => 7 * 1440 * M,
        }
    }
}

impl std::str::FromStr for Interval {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Interval::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown interval `{s}` (intervals: {})",
                    Interval::ALL.map(Interval::as_str).join(", ")
                )
            })
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_trip_their_api_names() {
        for i in Interval::ALL {
            assert_eq!(i.as_str().parse::<Interval>(), Ok(i));
            assert_eq!(serde_json::to_string(&i).unwrap(), format!("\"{i}\""));
        }
        assert_eq!(Interval::H1.ms(), 3_600_000);
        assert_eq!(Interval::W1.ms(), 604_800_000);
        assert!("7h"
            .parse::<Interval>()
            .unwrap_err()
            .contains("unknown interval `7h`"));
        assert!(Coin::new("kPEPE").is_ok());
        assert!(Coin::new("BTC/USD").is_err());
        assert!(Coin::new("").is_err());
    }
}
