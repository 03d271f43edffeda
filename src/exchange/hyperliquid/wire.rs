//! The exchange endpoint's actions as the wire carries them (field names and order as the
//! official SDK sends them: the msgpack of these structs is what gets signed), client order
//! ids, and the price and size rules every order is rounded by before it is signed.

use rust_decimal::{prelude::ToPrimitive, Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::signing::keccak;

/// Orders below this notional (USD) are refused by the exchange.
pub const MIN_NOTIONAL: Decimal = Decimal::TEN;

/// A price or size as the wire writes it: at most 8 decimals, no trailing zeros, no exponent
/// (the SDK's `float_to_wire`). `None` when the value has more than 8 decimals.
pub fn to_wire(x: Decimal) -> Option<String> {
    if x.round_dp(8) != x {
        return None;
    }
    let n = x.normalize();
    Some(if n.is_zero() {
        "0".into()
    } else {
        n.to_string()
    })
}

/// A client order id: 16 bytes, written `0x` and 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cloid(pub [u8; 16]);

impl Cloid {
    /// The cloid of an intent: the first 16 bytes of keccak-256 of its parts joined by `|`.
    /// The same strategy, coin, bar and intent always give the same cloid, so an order retried
    /// after a timeout or a restart is recognised instead of placed twice.
    pub fn derive(parts: &[&str]) -> Self {
        let h = keccak(parts.join("|").as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&h[..16]);
        Self(b)
    }

    /// Parses `0x` and 32 hex digits.
    pub fn parse(s: &str) -> Option<Self> {
        let t = s.strip_prefix("0x")?;
        if t.len() != 32 {
            return None;
        }
        let mut b = [0u8; 16];
        for (i, x) in b.iter_mut().enumerate() {
            *x = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(b))
    }

    pub fn to_hex(&self) -> String {
        let h: String = self.0.iter().map(|x| format!("{x:02x}")).collect();
        format!("0x{h}")
    }
}

impl std::fmt::Display for Cloid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A perpetual's price and size rules: sizes have at most `sz_decimals` decimals; prices at
/// most 5 significant figures and at most `6 - sz_decimals` decimals (integers always pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub sz_decimals: u32,
}

impl Rules {
    fn price_decimals(&self) -> u32 {
        6u32.saturating_sub(self.sz_decimals)
    }

    /// `px` rounded (half away from zero) to 5 significant figures and the allowed decimals,
    /// as the SDK's market orders do.
    pub fn price(&self, px: Decimal) -> Decimal {
        if px.is_zero() {
            return px;
        }
        let digits = px.abs().trunc().to_string().trim_start_matches('0').len() as i64;
        // Decimals that keep 5 significant figures (prices below 1 keep more).
        let sig_dp = if digits == 0 {
            let lead = px.abs().to_f64().map_or(0.0, |v| -v.log10().floor()) as i64;
            (lead - 1 + 5).max(0)
        } else {
            (5 - digits).max(0)
        };
        let dp = sig_dp.min(i64::from(self.price_decimals())) as u32;
        let r = px.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
        if digits > 5 { r.trunc() } else { r }.normalize()
    }

    /// Whether `px` is a valid price (what the exchange checks).
    pub fn valid_price(&self, px: Decimal) -> bool {
        if px <= Decimal::ZERO {
            return false;
        }
        if px.fract().is_zero() {
            return true;
        }
        let n = px.normalize();
        if n.scale() > self.price_decimals() {
            return false;
        }
        let mantissa = n.mantissa().abs().to_string();
        mantissa.trim_start_matches('0').len() <= 5
    }

    /// `sz` rounded down to the lot (never more than asked).
    pub fn size(&self, sz: Decimal) -> Decimal {
        sz.round_dp_with_strategy(self.sz_decimals, RoundingStrategy::ToZero)
            .normalize()
    }

    /// Whether `sz` is a valid size.
    pub fn valid_size(&self, sz: Decimal) -> bool {
        sz > Decimal::ZERO && sz.normalize().scale() <= self.sz_decimals
    }
}

/// Time in force of a limit order: `Gtc`, `Ioc` or `Alo` (post only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tif {
    Gtc,
    Ioc,
    Alo,
}

/// Take-profit or stop-loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tpsl {
    Tp,
    Sl,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitWire {
    pub tif: Tif,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerWire {
    pub is_market: bool,
    pub trigger_px: String,
    pub tpsl: Tpsl,
}

/// `{"limit": {...}}` or `{"trigger": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTypeWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerWire>,
}

impl OrderTypeWire {
    pub fn limit(tif: Tif) -> Self {
        Self {
            limit: Some(LimitWire { tif }),
            trigger: None,
        }
    }

    pub fn trigger(trigger_px: String, is_market: bool, tpsl: Tpsl) -> Self {
        Self {
            limit: None,
            trigger: Some(TriggerWire {
                is_market,
                trigger_px,
                tpsl,
            }),
        }
    }
}

/// One order: asset, is buy, price, size, reduce only, type, cloid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderWire {
    pub a: u32,
    pub b: bool,
    pub p: String,
    pub s: String,
    pub r: bool,
    pub t: OrderTypeWire,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<String>,
}

/// Cancel by exchange order id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelWire {
    pub a: u32,
    pub o: u64,
}

/// Cancel by client order id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelByCloidWire {
    pub asset: u32,
    pub cloid: String,
}

/// An exchange order id or a cloid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OidOrCloid {
    Oid(u64),
    Cloid(String),
}

/// The actions organism sends (the `type` tag first, then the fields in wire order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Action {
    Order {
        orders: Vec<OrderWire>,
        grouping: String,
    },
    Cancel {
        cancels: Vec<CancelWire>,
    },
    CancelByCloid {
        cancels: Vec<CancelByCloidWire>,
    },
    Modify {
        oid: OidOrCloid,
        order: OrderWire,
    },
    /// Cancels every open order at `time` (ms); without `time` a scheduled cancel is removed.
    ScheduleCancel {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time: Option<u64>,
    },
    #[serde(rename_all = "camelCase")]
    UpdateLeverage {
        asset: u32,
        is_cross: bool,
        leverage: u32,
    },
    /// A user-signed action: the account approves an agent wallet.
    #[serde(rename_all = "camelCase")]
    ApproveAgent {
        signature_chain_id: String,
        hyperliquid_chain: String,
        agent_address: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_name: Option<String>,
        nonce: u64,
    },
}

impl Action {
    /// The action's `type` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Order { .. } => "order",
            Action::Cancel { .. } => "cancel",
            Action::CancelByCloid { .. } => "cancelByCloid",
            Action::Modify { .. } => "modify",
            Action::ScheduleCancel { .. } => "scheduleCancel",
            Action::UpdateLeverage { .. } => "updateLeverage",
            Action::ApproveAgent { .. } => "approveAgent",
        }
    }

    /// Orders, ungrouped.
    pub fn orders(orders: Vec<OrderWire>) -> Self {
        Action::Order {
            orders,
            grouping: "na".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn wire_numbers_are_written_as_the_sdk_writes_them() {
        assert_eq!(to_wire(d("100")).unwrap(), "100");
        assert_eq!(to_wire(d("1670.10")).unwrap(), "1670.1");
        assert_eq!(to_wire(d("0.0147")).unwrap(), "0.0147");
        assert_eq!(to_wire(d("-0.0")).unwrap(), "0");
        assert_eq!(to_wire(d("0.00001231")).unwrap(), "0.00001231");
        assert!(to_wire(d("0.000012312")).is_none());
    }

    #[test]
    fn prices_keep_five_significant_figures_and_the_decimals_allowed() {
        // ETH: 4 size decimals, so prices have at most 2 decimals.
        let eth = Rules { sz_decimals: 4 };
        assert_eq!(eth.price(d("1891.4321")), d("1891.4"));
        assert_eq!(eth.price(d("1891.45")), d("1891.5"));
        assert_eq!(eth.price(d("12.34567")), d("12.35"));
        assert_eq!(eth.price(d("123456.7")), d("123457"));
        // BTC: 5 size decimals, 1 price decimal.
        let btc = Rules { sz_decimals: 5 };
        assert_eq!(btc.price(d("0.123456")), d("0.1"));
        // A coin with 0 size decimals: up to 6 price decimals, 5 significant figures.
        let small = Rules { sz_decimals: 0 };
        assert_eq!(small.price(d("0.0123456")), d("0.012346"));
        assert!(eth.valid_price(d("1891.4")));
        assert!(eth.valid_price(d("123457")));
        assert!(!eth.valid_price(d("1891.41")));
        assert!(!eth.valid_price(d("12.345")));
        assert!(!eth.valid_price(d("0")));
        assert_eq!(eth.size(d("0.123456")), d("0.1234"));
        assert!(eth.valid_size(d("0.1234")));
        assert!(!eth.valid_size(d("0.12345")));
    }

    #[test]
    fn cloids_are_stable_and_round_trip() {
        let a = Cloid::derive(&["s1", "ETH", "1700000000000", "0"]);
        assert_eq!(a, Cloid::derive(&["s1", "ETH", "1700000000000", "0"]));
        assert_ne!(a, Cloid::derive(&["s1", "ETH", "1700000000000", "1"]));
        assert_eq!(Cloid::parse(&a.to_hex()), Some(a));
        assert_eq!(a.to_hex().len(), 34);
        assert_eq!(
            Cloid::parse("0x00000000000000000000000000000001")
                .unwrap()
                .0[15],
            1
        );
        assert!(Cloid::parse("0x01").is_none());
    }

    #[test]
    fn actions_carry_the_type_tag_first() {
        let a = Action::ScheduleCancel { time: Some(5) };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"type":"scheduleCancel","time":5}"#
        );
        let back: Action = serde_json::from_str(r#"{"type":"scheduleCancel"}"#).unwrap();
        assert_eq!(back, Action::ScheduleCancel { time: None });
    }
}
