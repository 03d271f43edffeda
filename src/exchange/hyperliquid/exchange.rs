//! The signed exchange client: `POST /exchange` (orders, cancels, modify, the dead-man's
//! switch, leverage, agent approval) and the account's state over `POST /info`
//! (`clearinghouseState`, `openOrders`, `orderStatus`, `userFills`, `userFillsByTime`,
//! `userFunding`).
//!
//! Every request is signed with a nonce strictly greater than the last one this signer used;
//! the last nonce is persisted (by the caller's [`NonceStore`]) before the request leaves. A
//! request to `/exchange` is sent once: a timeout leaves its outcome unknown
//! ([`ExchangeError::Unknown`]), and the caller must ask `orderStatus` by cloid before
//! anything is signed again. The exchange's error strings become [`RejectKind`]s.

use std::sync::Mutex;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    info::InfoClient,
    signing::{self, approve_agent_fields, EthSignature, SignError, Signer, APPROVE_AGENT},
    wire::{Action, CancelByCloidWire, CancelWire, Cloid, OidOrCloid, OrderWire},
    HlError,
};

/// Why the exchange refused an order or an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectKind {
    /// `Price must be divisible by tick size.` (or an invalid price)
    Tick,
    /// `Order has invalid size.`
    Size,
    /// `Order must have minimum value of $10.`
    MinNotional,
    /// `Insufficient margin to place order.`
    Margin,
    /// `Reduce only order would increase position.`
    ReduceOnly,
    /// `Post only order would have immediately matched...`
    PostOnlyWouldMatch,
    /// `Order could not immediately match against any resting orders.` (IOC)
    IocNoMatch,
    /// `Invalid TP/SL price.`
    TriggerPx,
    /// `No liquidity available for market order.`
    NoLiquidity,
    /// A nonce the exchange does not accept (reused, too low, out of its time window).
    Nonce,
    /// The signer is not the account or one of its agents.
    Signer,
    /// The order to cancel or modify is not open.
    NotOpen,
    /// Anything else.
    Other,
}

impl RejectKind {
    /// Classifies an error string of the exchange.
    pub fn of(message: &str) -> Self {
        let m = message.to_ascii_lowercase();
        if m.contains("tick size") || m.contains("invalid price") {
            RejectKind::Tick
        } else if m.contains("invalid size") {
            RejectKind::Size
        } else if m.contains("minimum value") {
            RejectKind::MinNotional
        } else if m.contains("insufficient margin") {
            RejectKind::Margin
        } else if m.contains("reduce only") {
            RejectKind::ReduceOnly
        } else if m.contains("post only") {
            RejectKind::PostOnlyWouldMatch
        } else if m.contains("could not immediately match") {
            RejectKind::IocNoMatch
        } else if m.contains("tp/sl price") {
            RejectKind::TriggerPx
        } else if m.contains("no liquidity") {
            RejectKind::NoLiquidity
        } else if m.contains("nonce") {
            RejectKind::Nonce
        } else if m.contains("does not exist") && m.contains("wallet") {
            RejectKind::Signer
        } else if m.contains("never placed")
            || m.contains("already canceled")
            || m.contains("already filled")
            || m.contains("cannot modify")
        {
            RejectKind::NotOpen
        } else {
            RejectKind::Other
        }
    }
}

/// Exchange-client errors: [`ExchangeError::retryable`] tells which may be tried again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The request never left (no connection): it may be sent again as it is.
    #[error("not sent: {0}")]
    NotSent(String),
    /// HTTP 429 or a 5xx answer before the action was processed: back off and retry.
    #[error("the exchange answered HTTP {status}: {body}")]
    Busy { status: u16, body: String },
    /// Sent, but no answer came: the exchange may have acted on it. Ask `orderStatus` by cloid
    /// before signing anything again.
    #[error("sent, but no answer: {0} (the outcome is unknown)")]
    Unknown(String),
    /// The exchange refused the action (not retryable as it is).
    #[error("rejected by the exchange: {message}")]
    Rejected { kind: RejectKind, message: String },
    /// The answer did not have the documented shape.
    #[error("unexpected answer from the exchange: {0}")]
    Malformed(String),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Info(#[from] HlError),
    /// The nonce could not be persisted: nothing was sent.
    #[error("the nonce could not be saved, nothing was sent: {0}")]
    Nonce(String),
}

impl ExchangeError {
    /// Whether trying again later may succeed (connectivity, rate limits, server errors).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ExchangeError::NotSent(_) | ExchangeError::Busy { .. } | ExchangeError::Unknown(_)
        ) || matches!(self, ExchangeError::Info(HlError::Connectivity { .. }))
    }
}

/// The execution engine's view of an exchange error: whether the request left, whether its
/// outcome is known, the exchange's reason.
impl From<ExchangeError> for crate::execution::VenueError {
    fn from(e: ExchangeError) -> Self {
        use crate::execution::VenueError as V;
        match e {
            ExchangeError::NotSent(_) | ExchangeError::Sign(_) | ExchangeError::Nonce(_) => {
                V::NotSent(e.to_string())
            }
            ExchangeError::Busy { .. } => V::Busy(e.to_string()),
            ExchangeError::Rejected { message, .. } => V::Rejected { reason: message },
            ExchangeError::Unknown(_) | ExchangeError::Malformed(_) | ExchangeError::Info(_) => {
                V::Unknown(e.to_string())
            }
        }
    }
}

/// Where the last nonce of a signer is kept across restarts.
pub trait NonceStore: Send {
    /// The last nonce used (0 for none).
    fn last(&self) -> u64;
    /// Records `nonce` as used; must be durable when it returns.
    ///
    /// # Errors
    /// A message when it could not be recorded (the request is then not sent).
    fn save(&mut self, nonce: u64) -> Result<(), String>;
}

/// Nonces kept in memory only (tests, dry runs).
#[derive(Debug, Default)]
pub struct MemoryNonces(pub u64);

impl NonceStore for MemoryNonces {
    fn last(&self) -> u64 {
        self.0
    }
    fn save(&mut self, nonce: u64) -> Result<(), String> {
        self.0 = nonce;
        Ok(())
    }
}

/// A signature as the request body carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureWire {
    pub r: String,
    pub s: String,
    pub v: u8,
}

impl SignatureWire {
    pub fn of(sig: &EthSignature) -> Self {
        Self {
            r: sig.r_hex(),
            s: sig.s_hex(),
            v: sig.v,
        }
    }

    /// The signature back as bytes (the exchange's side).
    pub fn parse(&self) -> Option<EthSignature> {
        let word = |h: &str| -> Option<[u8; 32]> {
            let t = h.strip_prefix("0x")?;
            if t.is_empty() || t.len() > 64 {
                return None;
            }
            let padded = format!("{t:0>64}");
            let mut out = [0u8; 32];
            for (i, b) in out.iter_mut().enumerate() {
                *b = u8::from_str_radix(&padded[2 * i..2 * i + 2], 16).ok()?;
            }
            Some(out)
        };
        Some(EthSignature {
            r: word(&self.r)?,
            s: word(&self.s)?,
            v: self.v,
        })
    }
}

/// A signed request: exactly the body posted to `/exchange`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedRequest {
    pub action: Action,
    pub nonce: u64,
    pub signature: SignatureWire,
    #[serde(default)]
    pub vault_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after: Option<u64>,
}

/// What happened to one order of an `order` action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacedStatus {
    /// On the book (or a trigger waiting).
    Resting { oid: u64 },
    /// Filled at once (in whole or in part: `total_sz` of the order's size).
    Filled {
        oid: u64,
        total_sz: Decimal,
        avg_px: Decimal,
    },
    /// Refused.
    Rejected { kind: RejectKind, message: String },
}

/// The state of an order as `orderStatus` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderState {
    /// The exchange never saw this oid / cloid.
    Unknown,
    /// Known: its status (`open`, `filled`, `canceled`, `triggered`, `rejected`,
    /// `marginCanceled`, ...) and the order.
    Known { status: String, order: OpenOrder },
}

/// An order on the book (`openOrders`, `orderStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenOrder {
    pub coin: String,
    /// `B` (bid, buy) or `A` (ask, sell).
    pub side: String,
    pub limit_px: Decimal,
    pub sz: Decimal,
    pub oid: u64,
    pub timestamp: i64,
    #[serde(default)]
    pub orig_sz: Option<Decimal>,
    #[serde(default)]
    pub cloid: Option<String>,
}

/// One fill of the account (`userFills`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserFill {
    pub coin: String,
    pub px: Decimal,
    pub sz: Decimal,
    pub side: String,
    pub time: i64,
    pub start_position: Decimal,
    pub dir: String,
    pub closed_pnl: Decimal,
    pub hash: String,
    pub oid: u64,
    pub crossed: bool,
    pub fee: Decimal,
    pub tid: u64,
    #[serde(default)]
    pub cloid: Option<String>,
}

impl UserFill {
    /// Signed size: positive for a buy.
    pub fn signed_sz(&self) -> Decimal {
        if self.side == "B" {
            self.sz
        } else {
            -self.sz
        }
    }
}

/// A position of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPosition {
    pub coin: String,
    /// Signed size in coins.
    pub szi: Decimal,
    pub entry_px: Option<Decimal>,
}

/// `clearinghouseState`, the parts organism uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub account_value: Decimal,
    pub withdrawable: Decimal,
    pub positions: Vec<AccountPosition>,
    pub time: i64,
}

impl AccountState {
    /// The signed position in `coin` (0 when none).
    pub fn position(&self, coin: &str) -> Decimal {
        self.positions
            .iter()
            .find(|p| p.coin == coin)
            .map_or(Decimal::ZERO, |p| p.szi)
    }
}

/// One funding payment of the account (`userFunding`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingPayment {
    pub time: i64,
    pub coin: String,
    /// Paid (negative) or received (positive), USDC.
    pub usdc: Decimal,
    pub szi: Decimal,
    pub rate: Decimal,
}

fn field<'a>(v: &'a Value, path: &str) -> Result<&'a Value, ExchangeError> {
    v.get(path)
        .ok_or_else(|| ExchangeError::Malformed(format!("no field `{path}` in {v}")))
}

fn dec(v: &Value, name: &str) -> Result<Decimal, ExchangeError> {
    let s = field(v, name)?
        .as_str()
        .ok_or_else(|| ExchangeError::Malformed(format!("`{name}` is not a string")))?;
    s.parse()
        .map_err(|_| ExchangeError::Malformed(format!("`{name}` = `{s}` is not a decimal")))
}

/// The signed exchange client of one account.
pub struct ExchangeClient {
    info: std::sync::Arc<InfoClient>,
    signer: Signer,
    /// The account traded (the user whose state is read): the vault when trading a vault.
    account: String,
    vault: Option<String>,
    mainnet: bool,
    nonces: Mutex<Box<dyn NonceStore>>,
}

impl std::fmt::Debug for ExchangeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeClient")
            .field("signer", &self.signer)
            .field("account", &self.account)
            .field("vault", &self.vault)
            .field("mainnet", &self.mainnet)
            .finish_non_exhaustive()
    }
}

/// Wall-clock milliseconds.
pub fn now_ms() -> u64 {
    use crate::clock::Clock as _;
    crate::clock::WallClock.now_ms().max(0) as u64
}

impl ExchangeClient {
    /// A client that signs with `signer` for `account` (the signer's own address, or the
    /// account that approved it as an agent), for a vault when `vault` is set. `mainnet` picks
    /// the phantom agent's source (`a` / `b`); it must match the exchange's network.
    pub fn new(
        info: std::sync::Arc<InfoClient>,
        signer: Signer,
        account: Option<String>,
        vault: Option<String>,
        mainnet: bool,
        nonces: Box<dyn NonceStore>,
    ) -> Self {
        let account = vault
            .clone()
            .or(account)
            .unwrap_or_else(|| signer.address())
            .to_ascii_lowercase();
        Self {
            info,
            signer,
            account,
            vault: vault.map(|v| v.to_ascii_lowercase()),
            mainnet,
            nonces: Mutex::new(nonces),
        }
    }

    /// The account whose orders and state these are.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The signer's address (an agent's when trading through one).
    pub fn signer_address(&self) -> String {
        self.signer.address()
    }

    pub fn info(&self) -> &InfoClient {
        &self.info
    }

    /// The next nonce: the wall clock in ms, or one more than the last, whichever is larger;
    /// saved before it is used.
    fn next_nonce(&self) -> Result<u64, ExchangeError> {
        let mut n = self
            .nonces
            .lock()
            .map_err(|_| ExchangeError::Nonce("nonce store poisoned".into()))?;
        let nonce = now_ms().max(n.last() + 1);
        n.save(nonce).map_err(ExchangeError::Nonce)?;
        Ok(nonce)
    }

    /// Signs `action` with a fresh nonce: the exact body to post.
    ///
    /// # Errors
    /// [`ExchangeError::Sign`], [`ExchangeError::Nonce`].
    pub fn sign(&self, action: Action) -> Result<SignedRequest, ExchangeError> {
        self.sign_expiring(action, None)
    }

    /// Signs `action` valid until `expires_after` (ms): after that the exchange refuses it, so
    /// a request that got no answer can be known to be dead.
    ///
    /// # Errors
    /// As [`ExchangeClient::sign`].
    pub fn sign_expiring(
        &self,
        action: Action,
        expires_after: Option<u64>,
    ) -> Result<SignedRequest, ExchangeError> {
        let nonce = self.next_nonce()?;
        let sig = self.signer.sign_l1_action(
            &action,
            self.vault.as_deref(),
            nonce,
            expires_after,
            self.mainnet,
        )?;
        Ok(SignedRequest {
            action,
            nonce,
            signature: SignatureWire::of(&sig),
            vault_address: self.vault.clone(),
            expires_after,
        })
    }

    /// Posts a signed request once and returns the `response` of an `ok` answer.
    ///
    /// # Errors
    /// [`ExchangeError`]: not sent, busy (429 / 5xx), unknown outcome (no answer), rejected
    /// (`status: err`), malformed.
    pub async fn send(&self, req: &SignedRequest) -> Result<Value, ExchangeError> {
        let body =
            serde_json::to_value(req).map_err(|e| ExchangeError::Malformed(e.to_string()))?;
        let (status, text) = match self.info.post_exchange(&body).await {
            Ok(x) => x,
            Err((false, m)) => return Err(ExchangeError::NotSent(m)),
            Err((true, m)) => return Err(ExchangeError::Unknown(m)),
        };
        if status == 429 || status >= 500 {
            return Err(ExchangeError::Busy {
                status,
                body: text.chars().take(300).collect(),
            });
        }
        let v: Value = serde_json::from_str(&text).map_err(|_| {
            ExchangeError::Malformed(format!(
                "HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            ))
        })?;
        match v.get("status").and_then(Value::as_str) {
            Some("ok") => Ok(v.get("response").cloned().unwrap_or(Value::Null)),
            Some("err") => {
                let message = v
                    .get("response")
                    .and_then(Value::as_str)
                    .unwrap_or("(no message)")
                    .to_string();
                Err(ExchangeError::Rejected {
                    kind: RejectKind::of(&message),
                    message,
                })
            }
            _ => Err(ExchangeError::Malformed(format!("HTTP {status}: {v}"))),
        }
    }

    /// The statuses of an `order` action's answer.
    ///
    /// # Errors
    /// [`ExchangeError::Malformed`].
    pub fn placed(response: &Value) -> Result<Vec<PlacedStatus>, ExchangeError> {
        let statuses = response
            .pointer("/data/statuses")
            .and_then(Value::as_array)
            .ok_or_else(|| ExchangeError::Malformed(format!("no statuses in {response}")))?;
        statuses
            .iter()
            .map(|s| {
                if let Some(r) = s.get("resting") {
                    Ok(PlacedStatus::Resting {
                        oid: field(r, "oid")?.as_u64().unwrap_or(0),
                    })
                } else if let Some(f) = s.get("filled") {
                    Ok(PlacedStatus::Filled {
                        oid: field(f, "oid")?.as_u64().unwrap_or(0),
                        total_sz: dec(f, "totalSz")?,
                        avg_px: dec(f, "avgPx")?,
                    })
                } else if let Some(e) = s.get("error").and_then(Value::as_str) {
                    Ok(PlacedStatus::Rejected {
                        kind: RejectKind::of(e),
                        message: e.to_string(),
                    })
                } else {
                    Err(ExchangeError::Malformed(format!("order status {s}")))
                }
            })
            .collect()
    }

    /// Signs and sends orders; one status per order.
    ///
    /// # Errors
    /// As [`ExchangeClient::send`].
    pub async fn place(&self, orders: Vec<OrderWire>) -> Result<Vec<PlacedStatus>, ExchangeError> {
        let req = self.sign(Action::orders(orders))?;
        Self::placed(&self.send(&req).await?)
    }

    /// Per-item results of a cancel or modify answer: `Ok` for `success`.
    fn results(response: &Value) -> Result<Vec<Result<(), String>>, ExchangeError> {
        let statuses = response
            .pointer("/data/statuses")
            .and_then(Value::as_array)
            .ok_or_else(|| ExchangeError::Malformed(format!("no statuses in {response}")))?;
        Ok(statuses
            .iter()
            .map(|s| match s {
                Value::String(x) if x == "success" => Ok(()),
                _ => Err(s
                    .get("error")
                    .and_then(Value::as_str)
                    .map_or_else(|| s.to_string(), String::from)),
            })
            .collect())
    }

    /// Cancels by exchange order id.
    ///
    /// # Errors
    /// As [`ExchangeClient::send`]; [`ExchangeError::Rejected`] for an order not open.
    pub async fn cancel(&self, asset: u32, oid: u64) -> Result<(), ExchangeError> {
        let req = self.sign(Action::Cancel {
            cancels: vec![CancelWire { a: asset, o: oid }],
        })?;
        first(Self::results(&self.send(&req).await?)?)
    }

    /// Cancels by cloid.
    ///
    /// # Errors
    /// As [`ExchangeClient::cancel`].
    pub async fn cancel_by_cloid(&self, asset: u32, cloid: &Cloid) -> Result<(), ExchangeError> {
        let req = self.sign(Action::CancelByCloid {
            cancels: vec![CancelByCloidWire {
                asset,
                cloid: cloid.to_hex(),
            }],
        })?;
        first(Self::results(&self.send(&req).await?)?)
    }

    /// Replaces an open order (by oid or cloid) with `order`.
    ///
    /// # Errors
    /// As [`ExchangeClient::cancel`].
    pub async fn modify(&self, oid: OidOrCloid, order: OrderWire) -> Result<(), ExchangeError> {
        let req = self.sign(Action::Modify { oid, order })?;
        self.send(&req).await.map(|_| ())
    }

    /// The dead-man's switch: every open order is cancelled at `time` (ms) unless this is
    /// called again before; `None` removes it.
    ///
    /// # Errors
    /// As [`ExchangeClient::send`].
    pub async fn schedule_cancel(&self, time: Option<u64>) -> Result<(), ExchangeError> {
        let req = self.sign(Action::ScheduleCancel { time })?;
        self.send(&req).await.map(|_| ())
    }

    /// Sets the leverage of an asset (cross or isolated).
    ///
    /// # Errors
    /// As [`ExchangeClient::send`].
    pub async fn update_leverage(
        &self,
        asset: u32,
        is_cross: bool,
        leverage: u32,
    ) -> Result<(), ExchangeError> {
        let req = self.sign(Action::UpdateLeverage {
            asset,
            is_cross,
            leverage,
        })?;
        self.send(&req).await.map(|_| ())
    }

    /// Approves `agent` to sign for this account (signed by the account's own key).
    ///
    /// # Errors
    /// As [`ExchangeClient::send`].
    pub async fn approve_agent(&self, agent: &str, name: &str) -> Result<(), ExchangeError> {
        let nonce = self.next_nonce()?;
        let agent = agent.to_ascii_lowercase();
        let sig = self.signer.sign_user_action(
            APPROVE_AGENT,
            &approve_agent_fields(self.mainnet, &agent, name, nonce),
        )?;
        let req = SignedRequest {
            action: Action::ApproveAgent {
                signature_chain_id: format!("{:#x}", signing::SIGNATURE_CHAIN_ID),
                hyperliquid_chain: signing::hyperliquid_chain(self.mainnet).into(),
                agent_address: agent,
                agent_name: (!name.is_empty()).then(|| name.to_string()),
                nonce,
            },
            nonce,
            signature: SignatureWire::of(&sig),
            vault_address: None,
            expires_after: None,
        };
        self.send(&req).await.map(|_| ())
    }

    /// `clearinghouseState` of the account.
    ///
    /// # Errors
    /// [`ExchangeError::Info`], [`ExchangeError::Malformed`].
    pub async fn account_state(&self) -> Result<AccountState, ExchangeError> {
        let v: Value = self
            .info
            .query(
                json!({"type": "clearinghouseState", "user": self.account}),
                2.0,
            )
            .await?;
        let summary = field(&v, "marginSummary")?;
        let positions = field(&v, "assetPositions")?
            .as_array()
            .ok_or_else(|| ExchangeError::Malformed("`assetPositions` is not a list".into()))?
            .iter()
            .map(|p| {
                let p = field(p, "position")?;
                Ok(AccountPosition {
                    coin: field(p, "coin")?.as_str().unwrap_or_default().to_string(),
                    szi: dec(p, "szi")?,
                    entry_px: dec(p, "entryPx").ok(),
                })
            })
            .collect::<Result<Vec<_>, ExchangeError>>()?;
        Ok(AccountState {
            account_value: dec(summary, "accountValue")?,
            withdrawable: dec(&v, "withdrawable")?,
            positions,
            time: field(&v, "time")?.as_i64().unwrap_or(0),
        })
    }

    /// `openOrders` of the account.
    ///
    /// # Errors
    /// [`ExchangeError::Info`].
    pub async fn open_orders(&self) -> Result<Vec<OpenOrder>, ExchangeError> {
        Ok(self
            .info
            .query(json!({"type": "openOrders", "user": self.account}), 20.0)
            .await?)
    }

    /// `orderStatus` by oid or cloid.
    ///
    /// # Errors
    /// [`ExchangeError::Info`], [`ExchangeError::Malformed`].
    pub async fn order_status(&self, id: &OidOrCloid) -> Result<OrderState, ExchangeError> {
        let v: Value = self
            .info
            .query(
                json!({"type": "orderStatus", "user": self.account, "oid": id}),
                2.0,
            )
            .await?;
        match field(&v, "status")?.as_str() {
            Some("unknownOid") => Ok(OrderState::Unknown),
            Some("order") => {
                let o = field(&v, "order")?;
                let order: OpenOrder = serde_json::from_value(field(o, "order")?.clone())
                    .map_err(|e| ExchangeError::Malformed(format!("orderStatus order: {e}")))?;
                Ok(OrderState::Known {
                    status: field(o, "status")?.as_str().unwrap_or_default().to_string(),
                    order,
                })
            }
            _ => Err(ExchangeError::Malformed(format!("orderStatus: {v}"))),
        }
    }

    /// `userFills`: the account's most recent fills (newest first, at most 2,000).
    ///
    /// # Errors
    /// [`ExchangeError::Info`].
    pub async fn user_fills(&self) -> Result<Vec<UserFill>, ExchangeError> {
        Ok(self
            .info
            .query(json!({"type": "userFills", "user": self.account}), 20.0)
            .await?)
    }

    /// `userFillsByTime` from `start` (ms) to `end` (default now), oldest first.
    ///
    /// # Errors
    /// [`ExchangeError::Info`].
    pub async fn user_fills_by_time(
        &self,
        start: i64,
        end: Option<i64>,
    ) -> Result<Vec<UserFill>, ExchangeError> {
        let mut body = json!({"type": "userFillsByTime", "user": self.account, "startTime": start});
        if let Some(e) = end {
            body["endTime"] = json!(e);
        }
        Ok(self.info.query(body, 20.0).await?)
    }

    /// `userFunding` from `start` (ms).
    ///
    /// # Errors
    /// [`ExchangeError::Info`], [`ExchangeError::Malformed`].
    pub async fn user_funding(&self, start: i64) -> Result<Vec<FundingPayment>, ExchangeError> {
        let v: Vec<Value> = self
            .info
            .query(
                json!({"type": "userFunding", "user": self.account, "startTime": start}),
                20.0,
            )
            .await?;
        v.iter()
            .map(|r| {
                let d = field(r, "delta")?;
                Ok(FundingPayment {
                    time: field(r, "time")?.as_i64().unwrap_or(0),
                    coin: field(d, "coin")?.as_str().unwrap_or_default().to_string(),
                    usdc: dec(d, "usdc")?,
                    szi: dec(d, "szi")?,
                    rate: dec(d, "fundingRate")?,
                })
            })
            .collect()
    }
}

fn first(r: Vec<Result<(), String>>) -> Result<(), ExchangeError> {
    match r.into_iter().next() {
        Some(Ok(())) => Ok(()),
        Some(Err(message)) => Err(ExchangeError::Rejected {
            kind: RejectKind::of(&message),
            message,
        }),
        None => Err(ExchangeError::Malformed("no status".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exchange_error_strings_are_typed() {
        let cases = [
            (
                "Price must be divisible by tick size. asset=1",
                RejectKind::Tick,
            ),
            (
                "Order must have minimum value of $10. asset=1",
                RejectKind::MinNotional,
            ),
            (
                "Insufficient margin to place order. asset=0",
                RejectKind::Margin,
            ),
            (
                "Reduce only order would increase position. asset=4",
                RejectKind::ReduceOnly,
            ),
            (
                "Post only order would have immediately matched, bbo was 1891.3@1891.5. asset=1",
                RejectKind::PostOnlyWouldMatch,
            ),
            (
                "Order could not immediately match against any resting orders. asset=1",
                RejectKind::IocNoMatch,
            ),
            ("Invalid TP/SL price. asset=1", RejectKind::TriggerPx),
            (
                "User or API Wallet 0x0000000000000000000000000000000000000001 does not exist.",
                RejectKind::Signer,
            ),
            ("something new", RejectKind::Other),
        ];
        for (m, k) in cases {
            assert_eq!(RejectKind::of(m), k, "{m}");
        }
        assert!(ExchangeError::Unknown("x".into()).retryable());
        assert!(!ExchangeError::Rejected {
            kind: RejectKind::Margin,
            message: "m".into()
        }
        .retryable());
    }

    #[test]
    fn order_answers_are_parsed() {
        let v: Value = serde_json::from_str(
            r#"{"type":"order","data":{"statuses":[{"resting":{"oid":77738308}},
            {"filled":{"totalSz":"0.02","avgPx":"1891.4","oid":77747314}},
            {"error":"Order must have minimum value of $10."}]}}"#,
        )
        .unwrap();
        let s = ExchangeClient::placed(&v).unwrap();
        assert_eq!(s[0], PlacedStatus::Resting { oid: 77738308 });
        assert_eq!(
            s[1],
            PlacedStatus::Filled {
                oid: 77747314,
                total_sz: "0.02".parse().unwrap(),
                avg_px: "1891.4".parse().unwrap()
            }
        );
        assert!(matches!(
            s[2],
            PlacedStatus::Rejected {
                kind: RejectKind::MinNotional,
                ..
            }
        ));
    }

    #[test]
    fn signatures_round_trip_through_the_wire() {
        let w =
            Signer::from_hex("0x0123456789012345678901234567890123456789012345678901234567890123")
                .unwrap();
        let sig = w.sign_digest(&[7u8; 32]).unwrap();
        assert_eq!(SignatureWire::of(&sig).parse().unwrap(), sig);
    }
}
