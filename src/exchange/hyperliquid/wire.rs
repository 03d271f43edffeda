//! The exchange endpoint's actions as the wire carries them (field names and order as the
//! official SDK sends them: the msgpack of these structs is what gets signed) and client order
//! ids. Prices and sizes are rounded by [`crate::execution::types::VenueRules`] before they
//! are written here.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::signing::keccak;

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
