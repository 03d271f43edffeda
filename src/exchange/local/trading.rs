//! The local exchange's trading side: `POST /exchange` and the account queries of `/info`.
//!
//! Requests are checked as Hyperliquid checks them: the signer is recovered from the
//! signature (L1 actions: the phantom agent of the action hash, source `b` since this is a
//! test network; `approveAgent`: the user-signed EIP-712 message) and must be a funded
//! account, an agent the account approved, or the leader of the vault traded. Nonces are per
//! signer: never reused, above the lowest of the signer's 100 highest, and within two days
//! before and one day after the exchange's wall clock.
//!
//! Orders are matched against a synthetic book one tick-rounded 0.01 % either side of the
//! current bar's open (the clock moves in whole bars: the bar that just opened has traded at
//! its open, the rest of it lies ahead), with unlimited depth: IOC and GTC orders
//! that cross fill at once at the touch (taker fee 0.045 %); GTC orders that do not cross
//! rest; ALO orders that would cross are refused. Resting orders and triggers are settled
//! against each later bar's range (resting orders at their limit, maker fee 0.015 %; triggers
//! as market orders at the touch of their trigger price, or of the bar's open when it opened
//! beyond it, taker fee), and funding is paid on positions at each funding time, lazily,
//! whenever a request arrives. Prices, sizes and the $10 minimum are checked with the
//! exchange's error strings. Money is `Decimal`; the account's cash moves by
//! `-signed size × price - fee` per fill and by each funding payment, and its value is cash
//! plus positions marked at the current mid.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rust_decimal::{prelude::FromPrimitive, Decimal, RoundingStrategy};
use serde_json::{json, Value};

use crate::exchange::hyperliquid::{
    exchange::SignedRequest,
    signing::{
        action_hash, approve_agent_fields, phantom_agent_digest, recover, user_signed_digest,
        APPROVE_AGENT,
    },
    wire::{Action, OidOrCloid, OrderWire, Tif, Tpsl},
};
use crate::execution::types::VenueRules;

/// Money (fees, funding, PnL) is kept to 6 decimals, halves away from zero.
const MONEY: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// Taker fee of the local exchange (Hyperliquid's base tier).
pub const TAKER_FEE: Decimal = Decimal::from_parts(45, 0, 0, false, 5);
/// Maker fee.
pub const MAKER_FEE: Decimal = Decimal::from_parts(15, 0, 0, false, 5);
/// Half the synthetic spread, as a fraction of the price.
const HALF_SPREAD: Decimal = Decimal::from_parts(1, 0, 0, false, 4);
/// Nonces kept per signer.
const NONCES_KEPT: usize = 100;
const DAY_MS: u64 = 86_400_000;

/// Faults of the `/exchange` endpoint.
#[derive(Debug, Default, Clone)]
pub struct TradingFaults {
    /// Status codes answered to the next `/exchange` requests without acting on them.
    pub fail_next: VecDeque<u16>,
    /// The next this many `order` requests are acted on, then answered only after `hang` (a
    /// client with a shorter read timeout sees no answer: accept-then-time-out).
    pub hang_next: usize,
    pub hang: std::time::Duration,
    /// The next this many taker orders fill only half their size (the rest is cancelled for
    /// IOC, rests for GTC).
    pub partial_next: usize,
    /// The next orders are refused with these messages.
    pub reject_next: VecDeque<String>,
    /// Extra adverse slippage of every taker fill, as a fraction of the price (a market worse
    /// than the model assumes): a buy fills this much above the touch (a triggered stop above
    /// its trigger), a sell below, never beyond the order's limit.
    pub extra_slippage: Decimal,
    /// Every `order` request is acted on, then answered this much later.
    pub latency: std::time::Duration,
}

impl TradingFaults {
    /// `px` made worse by [`Self::extra_slippage`] for a buy (`is_buy`) or a sell, kept within
    /// `limit` when given.
    fn slipped(&self, px: Decimal, is_buy: bool, limit: Option<Decimal>) -> Decimal {
        if self.extra_slippage.is_zero() {
            return px;
        }
        let worse = if is_buy {
            px * (Decimal::ONE + self.extra_slippage)
        } else {
            px * (Decimal::ONE - self.extra_slippage)
        }
        .round_dp(8);
        match limit {
            Some(l) if is_buy => worse.min(l),
            Some(l) => worse.max(l),
            None => worse,
        }
    }
}

#[derive(Debug, Clone)]
struct Trigger {
    px: Decimal,
    is_market: bool,
    tpsl: Tpsl,
}

#[derive(Debug, Clone)]
struct Resting {
    oid: u64,
    coin: String,
    is_buy: bool,
    limit_px: Decimal,
    sz: Decimal,
    orig_sz: Decimal,
    reduce_only: bool,
    cloid: Option<String>,
    timestamp: i64,
    tif: Option<Tif>,
    trigger: Option<Trigger>,
}

impl Resting {
    fn wire(&self) -> Value {
        let mut o = json!({"coin": self.coin, "side": if self.is_buy { "B" } else { "A" },
            "limitPx": self.limit_px.normalize().to_string(), "sz": self.sz.normalize().to_string(),
            "oid": self.oid, "timestamp": self.timestamp,
            "origSz": self.orig_sz.normalize().to_string(), "reduceOnly": self.reduce_only,
            "isTrigger": self.trigger.is_some(),
            "triggerPx": self.trigger.as_ref().map_or("0.0".to_string(), |t| t.px.normalize().to_string()),
            "orderType": match (&self.trigger, self.tif) {
                (Some(t), _) => format!("{} {}", if t.is_market { "Stop Market" } else { "Stop Limit" },
                    if t.tpsl == Tpsl::Tp { "(tp)" } else { "(sl)" }),
                _ => "Limit".to_string(),
            },
            "tif": self.tif.map(|t| format!("{t:?}"))});
        if let Some(c) = &self.cloid {
            o["cloid"] = json!(c);
        }
        o
    }
}

#[derive(Debug, Clone, Default)]
struct Position {
    szi: Decimal,
    entry_px: Decimal,
}

#[derive(Debug, Default)]
struct Account {
    cash: Decimal,
    positions: BTreeMap<String, Position>,
    open: Vec<Resting>,
    /// Every order ever accepted: its last state and status.
    orders: BTreeMap<u64, (Resting, String, i64)>,
    cloids: BTreeMap<String, u64>,
    fills: Vec<Value>,
    funding: Vec<Value>,
    leverage: BTreeMap<String, u32>,
    schedule_cancel: Option<u64>,
}

/// The market the trading side sees: coins with their size decimals and prices by time.
pub trait Prices {
    /// Coins in asset order, with their size decimals.
    fn coins(&self) -> Vec<(String, u32)>;
    /// The current bar of `coin` at `now`: (open time, open, high, low, close).
    fn bar(&self, coin: &str, now: i64) -> Option<(i64, f64, f64, f64, f64)>;
    /// Bars of `coin` that closed in `(after, upto]` (whose whole range lies before `upto`).
    fn bars_between(&self, coin: &str, after: i64, upto: i64) -> Vec<(i64, f64, f64, f64, f64)>;
    /// Funding events of `coin` in `(after, upto]`: (time, rate).
    fn funding_between(&self, coin: &str, after: i64, upto: i64) -> Vec<(i64, f64)>;
}

/// What the exchange saw on `/exchange`.
#[derive(Debug, Default, Clone)]
pub struct TradingSeen {
    /// Every request body, in order (as received).
    pub requests: Vec<Value>,
    /// Cloids of the orders accepted (placed), in order.
    pub placed_cloids: Vec<String>,
    /// Orders accepted.
    pub orders_placed: usize,
}

/// Events for the WebSocket: (channel, user, data).
pub type Event = (String, String, Value);

/// The trading state.
#[derive(Debug, Default)]
pub struct Trading {
    accounts: BTreeMap<String, Account>,
    /// agent → user.
    agents: BTreeMap<String, String>,
    /// vault → leader.
    vaults: BTreeMap<String, String>,
    nonces: BTreeMap<String, BTreeSet<u64>>,
    next_oid: u64,
    next_tid: u64,
    settled_to: Option<i64>,
    pub faults: TradingFaults,
    pub seen: TradingSeen,
    pub events: Vec<Event>,
}

fn d(x: f64) -> Decimal {
    Decimal::from_f64(x).unwrap_or_default()
}

fn s(x: Decimal) -> String {
    let n = x.normalize();
    if n.is_zero() {
        "0.0".into()
    } else {
        n.to_string()
    }
}

fn sign(x: Decimal) -> i8 {
    if x.is_zero() {
        0
    } else if x.is_sign_negative() {
        -1
    } else {
        1
    }
}

fn ok(kind: &str, statuses: Vec<Value>) -> Value {
    json!({"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}})
}

fn err(message: impl Into<String>) -> Value {
    json!({"status": "err", "response": message.into()})
}

fn default_ok() -> Value {
    json!({"status": "ok", "response": {"type": "default"}})
}

impl Trading {
    pub fn new() -> Self {
        Self {
            next_oid: 1000,
            next_tid: 1,
            ..Self::default()
        }
    }

    /// Credits `usd` to `user`, creating the account.
    pub fn fund(&mut self, user: &str, usd: Decimal) {
        self.accounts
            .entry(user.to_ascii_lowercase())
            .or_default()
            .cash += usd;
    }

    /// Makes `vault` an account led by `leader`.
    pub fn add_vault(&mut self, vault: &str, leader: &str, usd: Decimal) {
        self.fund(vault, usd);
        self.vaults
            .insert(vault.to_ascii_lowercase(), leader.to_ascii_lowercase());
    }

    fn rules(p: &dyn Prices, coin: &str) -> VenueRules {
        let sz_decimals = p
            .coins()
            .into_iter()
            .find(|(c, _)| c == coin)
            .map_or(2, |(_, s)| s);
        VenueRules::hyperliquid_perp(sz_decimals)
    }

    /// The price orders meet: the current bar's open (the clock moves in whole bars, so the
    /// bar that just opened has traded at its open; the rest of it lies ahead).
    fn mid(p: &dyn Prices, coin: &str, now: i64) -> Option<Decimal> {
        p.bar(coin, now)
            .and_then(|b| Self::rules(p, coin).price(b.1).ok())
            .map(|x| x.get())
    }

    fn touch(p: &dyn Prices, coin: &str, now: i64) -> Option<(Decimal, Decimal)> {
        let mid = Self::mid(p, coin, now)?;
        let r = Self::rules(p, coin);
        Some((
            r.price_decimal(mid * (Decimal::ONE - HALF_SPREAD))
                .ok()?
                .get(),
            r.price_decimal(mid * (Decimal::ONE + HALF_SPREAD))
                .ok()?
                .get(),
        ))
    }

    /// Settles resting orders, triggers, funding and the dead-man's switch up to `now` (bar
    /// time) and `wall` (the wall clock, for scheduled cancels).
    pub fn settle(&mut self, p: &dyn Prices, now: i64, wall: u64) {
        let after = *self.settled_to.get_or_insert(now);
        for acc in self.accounts.values_mut() {
            if acc.schedule_cancel.is_some_and(|t| t <= wall) {
                acc.schedule_cancel = None;
                for o in std::mem::take(&mut acc.open) {
                    if let Some(e) = acc.orders.get_mut(&o.oid) {
                        e.1 = "scheduledCancel".into();
                        e.2 = now;
                    }
                }
            }
        }
        if now <= after {
            return;
        }
        self.settled_to = Some(now);
        for (coin, _) in p.coins() {
            // In time order: each funding payment when it is due (on the open of its bar), each
            // bar's range once the bar has closed.
            let bars = p.bars_between(&coin, after, now);
            let funding = p.funding_between(&coin, after, now);
            let mut due = funding.iter().peekable();
            for (ts, o, h, l, _c) in bars {
                while let Some((ft, rate)) = due.next_if(|(t, _)| *t < ts + 3_600_000) {
                    self.pay_at(p, &coin, *ft, *rate);
                }
                self.match_range(p, &coin, ts, d(o), d(h), d(l));
            }
            for (ft, rate) in due {
                self.pay_at(p, &coin, *ft, *rate);
            }
        }
    }

    /// Funding at `time` on the open of the bar it falls in.
    fn pay_at(&mut self, p: &dyn Prices, coin: &str, time: i64, rate: f64) {
        if let Some((_, open, ..)) = p.bar(coin, time) {
            self.pay_funding(coin, time, d(open), d(rate));
        }
    }

    fn pay_funding(&mut self, coin: &str, time: i64, px: Decimal, rate: Decimal) {
        let mut events = Vec::new();
        for (user, acc) in &mut self.accounts {
            let Some(pos) = acc.positions.get(coin) else {
                continue;
            };
            if pos.szi.is_zero() {
                continue;
            }
            let usdc = (-pos.szi * px * rate).round_dp_with_strategy(6, MONEY);
            acc.cash += usdc;
            let row = json!({"time": time, "hash": format!("0x{:064x}", time),
                "delta": {"type": "funding", "coin": coin, "usdc": s(usdc), "szi": s(pos.szi),
                    "fundingRate": s(rate), "nSamples": null}});
            acc.funding.push(row.clone());
            events.push(("userFundings".to_string(), user.clone(), row));
        }
        self.events.extend(events);
    }

    fn match_range(
        &mut self,
        p: &dyn Prices,
        coin: &str,
        ts: i64,
        bar_open: Decimal,
        high: Decimal,
        low: Decimal,
    ) {
        let users: Vec<String> = self.accounts.keys().cloned().collect();
        for user in users {
            let open = match self.accounts.get_mut(&user) {
                Some(a) => std::mem::take(&mut a.open),
                None => continue,
            };
            let mut keep = Vec::new();
            for o in open {
                if o.coin != coin {
                    keep.push(o);
                    continue;
                }
                let hit = match &o.trigger {
                    Some(t) => {
                        // A stop-loss sells below / buys above its price; a take-profit the reverse.
                        let above =
                            matches!((t.tpsl, o.is_buy), (Tpsl::Sl, true) | (Tpsl::Tp, false));
                        if above {
                            high >= t.px
                        } else {
                            low <= t.px
                        }
                    }
                    None => {
                        if o.is_buy {
                            low <= o.limit_px
                        } else {
                            high >= o.limit_px
                        }
                    }
                };
                if !hit {
                    keep.push(o);
                    continue;
                }
                let (px, fee) = match &o.trigger {
                    Some(t) => (
                        self.faults.slipped(
                            Self::triggered_at(p, coin, t, o.is_buy, bar_open),
                            o.is_buy,
                            Some(o.limit_px),
                        ),
                        TAKER_FEE,
                    ),
                    None => (o.limit_px, MAKER_FEE),
                };
                let mut sz = o.sz;
                if o.reduce_only {
                    let pos = self.accounts[&user]
                        .positions
                        .get(coin)
                        .map_or(Decimal::ZERO, |p| p.szi);
                    let reducing = if o.is_buy {
                        (-pos).max(Decimal::ZERO)
                    } else {
                        pos.max(Decimal::ZERO)
                    };
                    sz = sz.min(reducing);
                }
                let status = if sz.is_zero() { "canceled" } else { "filled" };
                if !sz.is_zero() {
                    self.book_fill(p, &user, &o, sz, px, fee, ts + 1, o.trigger.is_some());
                }
                self.set_status(&user, &o, status, ts + 1);
            }
            if let Some(a) = self.accounts.get_mut(&user) {
                a.open = keep;
            }
        }
    }

    /// Where a triggered market order fills: at its trigger price, or at the bar's open when
    /// the bar opened beyond it, met at the touch (the half spread against it).
    fn triggered_at(
        p: &dyn Prices,
        coin: &str,
        t: &Trigger,
        is_buy: bool,
        open: Decimal,
    ) -> Decimal {
        let above = matches!((t.tpsl, is_buy), (Tpsl::Sl, true) | (Tpsl::Tp, false));
        let at = if above {
            t.px.max(open)
        } else {
            t.px.min(open)
        };
        let touch = if is_buy {
            at * (Decimal::ONE + HALF_SPREAD)
        } else {
            at * (Decimal::ONE - HALF_SPREAD)
        };
        Self::rules(p, coin)
            .price_decimal(touch)
            .map_or(at, |x| x.get())
    }

    fn set_status(&mut self, user: &str, o: &Resting, status: &str, ts: i64) {
        if let Some(a) = self.accounts.get_mut(user) {
            a.orders.insert(o.oid, (o.clone(), status.to_string(), ts));
        }
        self.events.push((
            "orderUpdates".into(),
            user.to_string(),
            json!([{"order": o.wire(), "status": status, "statusTimestamp": ts}]),
        ));
    }

    /// Books a fill of `sz` of `o` at `px` into the account; returns nothing.
    #[allow(clippy::too_many_arguments)]
    fn book_fill(
        &mut self,
        p: &dyn Prices,
        user: &str,
        o: &Resting,
        sz: Decimal,
        px: Decimal,
        fee_rate: Decimal,
        time: i64,
        crossed: bool,
    ) {
        let _ = p;
        let tid = self.next_tid;
        self.next_tid += 1;
        let Some(acc) = self.accounts.get_mut(user) else {
            return;
        };
        let signed = if o.is_buy { sz } else { -sz };
        let fee = (sz * px * fee_rate).round_dp_with_strategy(6, MONEY);
        let pos = acc.positions.entry(o.coin.clone()).or_default();
        let start = pos.szi;
        // Realized PnL of the part that reduces the position.
        let reduces = (start.is_sign_positive() && signed.is_sign_negative() && !start.is_zero())
            || (start.is_sign_negative() && signed.is_sign_positive() && !start.is_zero());
        let closed = if reduces {
            sz.min(start.abs())
        } else {
            Decimal::ZERO
        };
        let closed_pnl = if start > Decimal::ZERO {
            closed * (px - pos.entry_px)
        } else {
            closed * (pos.entry_px - px)
        };
        let end = start + signed;
        if end.is_zero() {
            pos.entry_px = Decimal::ZERO;
        } else if start.is_zero() || sign(start) != sign(end) {
            pos.entry_px = px;
        } else if end.abs() > start.abs() {
            pos.entry_px = (pos.entry_px * start.abs() + px * sz) / end.abs();
        }
        pos.szi = end;
        acc.cash -= signed * px + fee;
        let dir = match () {
            _ if start.is_zero() => {
                if o.is_buy {
                    "Open Long"
                } else {
                    "Open Short"
                }
            }
            _ if end.is_zero() => {
                if o.is_buy {
                    "Close Short"
                } else {
                    "Close Long"
                }
            }
            _ if sign(start) != sign(end) => {
                if o.is_buy {
                    "Short > Long"
                } else {
                    "Long > Short"
                }
            }
            _ if end.abs() > start.abs() => {
                if o.is_buy {
                    "Open Long"
                } else {
                    "Open Short"
                }
            }
            _ => {
                if o.is_buy {
                    "Close Short"
                } else {
                    "Close Long"
                }
            }
        };
        let mut f = json!({"coin": o.coin, "px": s(px), "sz": s(sz), "side": if o.is_buy { "B" } else { "A" },
            "time": time, "startPosition": s(start), "dir": dir, "closedPnl": s(closed_pnl.round_dp_with_strategy(6, MONEY)),
            "hash": format!("0x{tid:064x}"), "oid": o.oid, "crossed": crossed, "fee": s(fee), "tid": tid,
            "feeToken": "USDC"});
        if let Some(c) = &o.cloid {
            f["cloid"] = json!(c);
        }
        acc.fills.push(f.clone());
        self.events.push(("userFills".into(), user.to_string(), f));
    }

    /// Who signed `req` and for which account; checks and records the nonce.
    fn authorize(&mut self, req: &SignedRequest, wall: u64) -> Result<String, String> {
        let sig = req
            .signature
            .parse()
            .ok_or_else(|| "Invalid signature.".to_string())?;
        let (signer, account) = match &req.action {
            Action::ApproveAgent {
                signature_chain_id,
                hyperliquid_chain,
                agent_address,
                agent_name,
                nonce,
            } => {
                let chain = u64::from_str_radix(signature_chain_id.trim_start_matches("0x"), 16)
                    .map_err(|_| "Invalid signatureChainId.".to_string())?;
                let fields = approve_agent_fields(
                    hyperliquid_chain == "Mainnet",
                    agent_address,
                    agent_name.as_deref().unwrap_or(""),
                    *nonce,
                );
                let digest =
                    user_signed_digest(APPROVE_AGENT, &fields, chain).map_err(|e| e.to_string())?;
                let signer =
                    recover(&digest, &sig).map_err(|_| "Invalid signature.".to_string())?;
                if hyperliquid_chain != "Testnet" {
                    return Err(format!("User or API Wallet {signer} does not exist."));
                }
                if !self.accounts.contains_key(&signer) {
                    return Err(format!("User or API Wallet {signer} does not exist."));
                }
                (signer.clone(), signer)
            }
            action => {
                let h = action_hash(
                    action,
                    req.vault_address.as_deref(),
                    req.nonce,
                    req.expires_after,
                )
                .map_err(|e| e.to_string())?;
                let signer = recover(&phantom_agent_digest(&h, false), &sig)
                    .map_err(|_| "Invalid signature.".to_string())?;
                let user =
                    if self.accounts.contains_key(&signer) && !self.vaults.contains_key(&signer) {
                        signer.clone()
                    } else if let Some(u) = self.agents.get(&signer) {
                        u.clone()
                    } else {
                        return Err(format!("User or API Wallet {signer} does not exist."));
                    };
                let account = match &req.vault_address {
                    Some(v) => {
                        let v = v.to_ascii_lowercase();
                        if self.vaults.get(&v) != Some(&user) {
                            return Err(format!("Vault {v} is not led by {user}."));
                        }
                        v
                    }
                    None => user,
                };
                (signer, account)
            }
        };
        if let Some(e) = req.expires_after {
            if e < wall {
                return Err(format!("Action expired at {e}."));
            }
        }
        let set = self.nonces.entry(signer).or_default();
        let n = req.nonce;
        if set.contains(&n) {
            return Err(format!("Invalid nonce: duplicate nonce {n}."));
        }
        if set.len() >= NONCES_KEPT && set.first().is_some_and(|&m| n <= m) {
            return Err(format!(
                "Invalid nonce: {n} is lower than every nonce kept."
            ));
        }
        if n + 2 * DAY_MS < wall || n > wall + DAY_MS {
            return Err(format!(
                "Invalid nonce: {n} is outside the time window of {wall}."
            ));
        }
        set.insert(n);
        while set.len() > NONCES_KEPT {
            set.pop_first();
        }
        Ok(account)
    }

    /// Acts on a `/exchange` request body; returns the JSON answer.
    pub fn exchange(&mut self, p: &dyn Prices, body: &Value, now: i64, wall: u64) -> Value {
        self.seen.requests.push(body.clone());
        let req: SignedRequest = match serde_json::from_value(body.clone()) {
            Ok(r) => r,
            Err(e) => {
                return err(format!(
                    "Failed to deserialize the JSON body into the target type: {e}"
                ))
            }
        };
        self.settle(p, now, wall);
        let account = match self.authorize(&req, wall) {
            Ok(a) => a,
            Err(e) => return err(e),
        };
        match req.action {
            Action::Order { orders, .. } => {
                let statuses = orders
                    .iter()
                    .map(|o| self.place(p, &account, o, now))
                    .collect();
                ok("order", statuses)
            }
            Action::Cancel { cancels } => {
                let st = cancels
                    .iter()
                    .map(|c| self.cancel(&account, |o| o.oid == c.o, c.a, now))
                    .collect();
                ok("cancel", st)
            }
            Action::CancelByCloid { cancels } => {
                let st = cancels
                    .iter()
                    .map(|c| {
                        let cl = c.cloid.to_ascii_lowercase();
                        self.cancel(
                            &account,
                            |o| o.cloid.as_deref() == Some(cl.as_str()),
                            c.asset,
                            now,
                        )
                    })
                    .collect();
                ok("cancel", st)
            }
            Action::Modify { oid, order } => {
                let found = match &oid {
                    OidOrCloid::Oid(x) => self.accounts[&account].open.iter().any(|o| o.oid == *x),
                    OidOrCloid::Cloid(c) => self.accounts[&account]
                        .open
                        .iter()
                        .any(|o| o.cloid.as_deref() == Some(c.to_ascii_lowercase().as_str())),
                };
                if !found {
                    return err("Cannot modify canceled or filled order");
                }
                let _ = self.cancel(
                    &account,
                    |o| match &oid {
                        OidOrCloid::Oid(x) => o.oid == *x,
                        OidOrCloid::Cloid(c) => {
                            o.cloid.as_deref() == Some(c.to_ascii_lowercase().as_str())
                        }
                    },
                    order.a,
                    now,
                );
                let st = self.place(p, &account, &order, now);
                match st.get("error").and_then(Value::as_str) {
                    Some(e) => err(e.to_string()),
                    None => default_ok(),
                }
            }
            Action::ScheduleCancel { time } => {
                if let Some(t) = time {
                    if t < wall + 5_000 {
                        return err(
                            "Scheduled cancel time too early, must be at least 5 seconds from now.",
                        );
                    }
                }
                if let Some(a) = self.accounts.get_mut(&account) {
                    a.schedule_cancel = time;
                }
                default_ok()
            }
            Action::UpdateLeverage {
                asset, leverage, ..
            } => {
                let coins = p.coins();
                let Some((coin, _)) = coins.get(asset as usize) else {
                    return err(format!("Invalid asset {asset}."));
                };
                if !(1..=20).contains(&leverage) {
                    return err("Invalid leverage value.");
                }
                if let Some(a) = self.accounts.get_mut(&account) {
                    a.leverage.insert(coin.clone(), leverage);
                }
                default_ok()
            }
            Action::ApproveAgent { agent_address, .. } => {
                self.agents
                    .insert(agent_address.to_ascii_lowercase(), account);
                default_ok()
            }
        }
    }

    fn cancel(
        &mut self,
        user: &str,
        pick: impl Fn(&Resting) -> bool,
        asset: u32,
        now: i64,
    ) -> Value {
        let Some(acc) = self.accounts.get_mut(user) else {
            return json!({"error": format!("Order was never placed, already canceled, or filled. asset={asset}")});
        };
        match acc.open.iter().position(pick) {
            Some(i) => {
                let o = acc.open.remove(i);
                self.set_status(user, &o, "canceled", now);
                json!("success")
            }
            None => {
                json!({"error": format!("Order was never placed, already canceled, or filled. asset={asset}")})
            }
        }
    }

    fn place(&mut self, p: &dyn Prices, user: &str, w: &OrderWire, now: i64) -> Value {
        let coins = p.coins();
        let a = w.a;
        let Some((coin, sz_decimals)) = coins.get(a as usize).cloned() else {
            return json!({"error": format!("Invalid asset {a}.")});
        };
        if let Some(m) = self.faults.reject_next.pop_front() {
            return json!({"error": m});
        }
        let rules = VenueRules::hyperliquid_perp(sz_decimals);
        let (Ok(px), Ok(sz)) = (w.p.parse::<Decimal>(), w.s.parse::<Decimal>()) else {
            return json!({"error": format!("Order has invalid price. asset={a}")});
        };
        if !rules.is_valid_price(px) {
            return json!({"error": format!("Price must be divisible by tick size. asset={a}")});
        }
        if !rules.is_valid_qty(sz) {
            return json!({"error": format!("Order has invalid size. asset={a}")});
        }
        let Some((bid, ask)) = Self::touch(p, &coin, now) else {
            return json!({"error": format!("No liquidity available for market order. asset={a}")});
        };
        let trigger = match &w.t.trigger {
            Some(t) => match t.trigger_px.parse::<Decimal>() {
                Ok(x) if rules.is_valid_price(x) => Some(Trigger {
                    px: x,
                    is_market: t.is_market,
                    tpsl: t.tpsl,
                }),
                _ => return json!({"error": format!("Invalid TP/SL price. asset={a}")}),
            },
            None => None,
        };
        let tif = w.t.limit.as_ref().map(|l| l.tif);
        if trigger.is_none() && tif.is_none() {
            return json!({"error": format!("Invalid order type. asset={a}")});
        }
        let ref_px = trigger.as_ref().map_or(px, |t| t.px);
        if !w.r && sz * ref_px < rules.min_notional {
            return json!({"error": format!("Order must have minimum value of $10. asset={a}")});
        }
        let acc = self.accounts.get(user).expect("authorized accounts exist");
        let pos = acc.positions.get(&coin).map_or(Decimal::ZERO, |p| p.szi);
        let signed = if w.b { sz } else { -sz };
        if w.r && (pos.is_zero() || sign(pos) == sign(signed)) {
            return json!({"error": format!("Reduce only order would increase position. asset={a}")});
        }
        // Margin: the gross notional after the order, at each coin's leverage, within the value.
        if !w.r && (pos + signed).abs() > pos.abs() {
            let mut need = Decimal::ZERO;
            for (c, _) in &coins {
                let q = acc.positions.get(c).map_or(Decimal::ZERO, |p| p.szi)
                    + if *c == coin { signed } else { Decimal::ZERO };
                let m = Self::mid(p, c, now).unwrap_or_default();
                need += q.abs() * m / Decimal::from(*acc.leverage.get(c).unwrap_or(&20));
            }
            if need > self.value_of(p, user, now) {
                return json!({"error": format!("Insufficient margin to place order. asset={a}")});
            }
        }
        let crosses = if w.b { px >= ask } else { px <= bid };
        if tif == Some(Tif::Alo) && crosses {
            return json!({"error": format!("Post only order would have immediately matched, bbo was {}@{}. asset={a}", s(bid), s(ask))});
        }
        if tif == Some(Tif::Ioc) && !crosses {
            return json!({"error": format!("Order could not immediately match against any resting orders. asset={a}")});
        }
        let oid = self.next_oid;
        self.next_oid += 1;
        let cloid = w.c.as_ref().map(|c| c.to_ascii_lowercase());
        let mut o = Resting {
            oid,
            coin: coin.clone(),
            is_buy: w.b,
            limit_px: px,
            sz,
            orig_sz: sz,
            reduce_only: w.r,
            cloid: cloid.clone(),
            timestamp: now,
            tif,
            trigger,
        };
        self.seen.orders_placed += 1;
        if let Some(c) = &cloid {
            self.seen.placed_cloids.push(c.clone());
            if let Some(acc) = self.accounts.get_mut(user) {
                acc.cloids.insert(c.clone(), oid);
            }
        }
        if o.trigger.is_some() || !crosses {
            self.set_status(user, &o, "open", now);
            if let Some(acc) = self.accounts.get_mut(user) {
                acc.open.push(o);
            }
            return json!({"resting": {"oid": oid}});
        }
        // Taker: fills at the touch, reduce-only clipped to the position.
        let mut fill = sz;
        if w.r {
            fill = fill.min(pos.abs());
        }
        if self.faults.partial_next > 0 {
            self.faults.partial_next -= 1;
            if let Ok(half) = rules.qty_decimal(fill / Decimal::TWO) {
                fill = half.get();
            }
        }
        let at = self
            .faults
            .slipped(if w.b { ask } else { bid }, w.b, Some(px));
        self.book_fill(p, user, &o, fill, at, TAKER_FEE, now, true);
        o.sz = sz - fill;
        if o.sz.is_zero() || tif == Some(Tif::Ioc) {
            let mut done = o.clone();
            done.sz = Decimal::ZERO;
            self.set_status(
                user,
                &done,
                if o.sz.is_zero() { "filled" } else { "canceled" },
                now,
            );
        } else {
            self.set_status(user, &o, "open", now);
            if let Some(acc) = self.accounts.get_mut(user) {
                acc.open.push(o);
            }
        }
        json!({"filled": {"totalSz": s(fill), "avgPx": s(at), "oid": oid}})
    }

    fn value_of(&self, p: &dyn Prices, user: &str, now: i64) -> Decimal {
        let Some(acc) = self.accounts.get(user) else {
            return Decimal::ZERO;
        };
        acc.cash
            + acc
                .positions
                .iter()
                .map(|(c, q)| q.szi * Self::mid(p, c, now).unwrap_or(q.entry_px))
                .sum::<Decimal>()
    }

    /// Answers the account queries of `/info`; `None` for other types.
    pub fn info(&mut self, p: &dyn Prices, req: &Value, now: i64, wall: u64) -> Option<Value> {
        let kind = req.get("type")?.as_str()?;
        if !matches!(
            kind,
            "clearinghouseState"
                | "openOrders"
                | "frontendOpenOrders"
                | "orderStatus"
                | "userFills"
                | "userFillsByTime"
                | "userFunding"
        ) {
            return None;
        }
        self.settle(p, now, wall);
        let user = req
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let empty = Account::default();
        let acc = self.accounts.get(&user).unwrap_or(&empty);
        Some(match kind {
            "clearinghouseState" => {
                let mut ntl = Decimal::ZERO;
                let positions: Vec<Value> = acc
                    .positions
                    .iter()
                    .filter(|(_, q)| !q.szi.is_zero())
                    .map(|(c, q)| {
                        let m = Self::mid(p, c, now).unwrap_or(q.entry_px);
                        ntl += q.szi.abs() * m;
                        let lev = *acc.leverage.get(c).unwrap_or(&20);
                        json!({"type": "oneWay", "position": {"coin": c, "szi": s(q.szi), "entryPx": s(q.entry_px),
                            "positionValue": s((q.szi.abs() * m).round_dp_with_strategy(6, MONEY)),
                            "unrealizedPnl": s((q.szi * (m - q.entry_px)).round_dp_with_strategy(6, MONEY)),
                            "returnOnEquity": "0.0", "liquidationPx": null,
                            "leverage": {"type": "cross", "value": lev},
                            "marginUsed": s((q.szi.abs() * m / Decimal::from(lev)).round_dp_with_strategy(6, MONEY)),
                            "maxLeverage": 20}})
                    })
                    .collect();
                let value = self
                    .value_of(p, &user, now)
                    .round_dp_with_strategy(6, MONEY);
                let summary = json!({"accountValue": s(value), "totalNtlPos": s(ntl.round_dp_with_strategy(6, MONEY)),
                    "totalRawUsd": s(acc.cash.round_dp_with_strategy(6, MONEY)), "totalMarginUsed": "0.0"});
                json!({"assetPositions": positions, "marginSummary": summary.clone(),
                    "crossMarginSummary": summary, "crossMaintenanceMarginUsed": "0.0",
                    "withdrawable": s(value), "time": now})
            }
            "openOrders" | "frontendOpenOrders" => {
                Value::Array(acc.open.iter().map(Resting::wire).collect())
            }
            "orderStatus" => {
                let oid = match req.get("oid") {
                    Some(Value::Number(n)) => n.as_u64(),
                    Some(Value::String(c)) => acc.cloids.get(&c.to_ascii_lowercase()).copied(),
                    _ => None,
                };
                match oid.and_then(|o| acc.orders.get(&o)) {
                    Some((o, status, ts)) => json!({"status": "order",
                        "order": {"order": o.wire(), "status": status, "statusTimestamp": ts}}),
                    None => json!({"status": "unknownOid"}),
                }
            }
            "userFills" => Value::Array(acc.fills.iter().rev().take(2000).cloned().collect()),
            "userFillsByTime" => {
                let start = req.get("startTime").and_then(Value::as_i64).unwrap_or(0);
                let end = req
                    .get("endTime")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::MAX);
                Value::Array(
                    acc.fills
                        .iter()
                        .filter(|f| f["time"].as_i64().is_some_and(|t| t >= start && t <= end))
                        .take(2000)
                        .cloned()
                        .collect(),
                )
            }
            _ => {
                let start = req.get("startTime").and_then(Value::as_i64).unwrap_or(0);
                Value::Array(
                    acc.funding
                        .iter()
                        .filter(|f| f["time"].as_i64().is_some_and(|t| t >= start))
                        .take(500)
                        .cloned()
                        .collect(),
                )
            }
        })
    }

    /// How long the `/exchange` request `body` (acted on) waits before it is answered: a hang
    /// and the latency, for orders.
    pub fn take_hang(&mut self, body: &Value) -> Option<std::time::Duration> {
        let order = body.pointer("/action/type").and_then(Value::as_str) == Some("order");
        if !order {
            return None;
        }
        if self.faults.hang_next > 0 {
            self.faults.hang_next -= 1;
            return Some(self.faults.hang + self.faults.latency);
        }
        (!self.faults.latency.is_zero()).then_some(self.faults.latency)
    }

    /// An injected status for the next `/exchange` request.
    pub fn take_fail(&mut self) -> Option<u16> {
        self.faults.fail_next.pop_front()
    }

    /// The signed position of `user` in `coin`.
    pub fn position(&self, user: &str, coin: &str) -> Decimal {
        self.accounts
            .get(&user.to_ascii_lowercase())
            .and_then(|a| a.positions.get(coin))
            .map_or(Decimal::ZERO, |p| p.szi)
    }

    /// The fills of `user`, oldest first.
    pub fn fills(&self, user: &str) -> Vec<Value> {
        self.accounts
            .get(&user.to_ascii_lowercase())
            .map(|a| a.fills.clone())
            .unwrap_or_default()
    }
}
