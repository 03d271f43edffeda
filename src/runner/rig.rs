//! What `live run` adds to the session loop (see [`super::driver`]): the signed client and
//! the executor set up and checked against the account, and between bars reconciliation, the
//! dead-man's switch and the kill switch's last steps on the exchange.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use rust_decimal::{prelude::ToPrimitive, Decimal};
use serde::Deserialize;

use crate::{
    clock::WallClock,
    exchange::hyperliquid::{
        adapter::{load_key, stream_fills, DbNonces, DryRun, ExecLimits, LiveExecutor},
        exchange::{ExchangeClient, ExchangeError, MemoryNonces, NonceStore},
        info::InfoClient,
        MAINNET_URL,
    },
    execution::{
        paper::{ExecutionClient as _, Intent, Phase, SubmitOrder},
        types::VenueRules,
        Order, OrderSide,
    },
    promotion::registry::{Registry, Status, Strategy},
    settings::{count, range, Invalid},
};

use super::journal::{self, ClosedPosition, Entry, JournalError, KillRow, Kind, Row, PORTFOLIO};
use super::{
    driver::{Notice, RunError, Trader},
    live::{reconcile, JournalLog},
    paper::{RunConfig, Session},
};

/// `[live]`: real orders on Hyperliquid. Absent from the built-in defaults on purpose: `live
/// run` refuses to start until a config file has this section. Only `capital` and
/// `strategies` have no default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// Journal account of the session.
    #[serde(default = "live_defaults::account")]
    pub account: String,
    /// Capital organism trades on the exchange account (at most the account's value).
    pub capital: f64,
    /// Strategy ids of the registry traded live (an explicit list; nothing is added by itself).
    pub strategies: Vec<String>,
    /// Coins traded (default: paper.coins).
    #[serde(default)]
    pub coins: Option<Vec<String>>,
    /// Refuse a strategy the paper lifecycle has not found eligible.
    #[serde(default = "live_defaults::yes")]
    pub require_paper_eligible: bool,
    #[serde(default = "live_defaults::store")]
    pub store: String,
    #[serde(default = "live_defaults::stop_file")]
    pub stop_file: String,
    #[serde(default = "live_defaults::warmup_bars")]
    pub warmup_bars: usize,
    /// File holding the private key (hex); empty: the environment's HYPERLIQUID_PRIVATE_KEY.
    #[serde(default)]
    pub key_file: String,
    /// The account an agent (API wallet) key trades for; empty: the key's own address.
    #[serde(default)]
    pub account_address: String,
    /// A vault (or sub-account) traded instead of the account.
    #[serde(default)]
    pub vault_address: String,
    /// Largest notional of one order, USD: larger orders are refused before they are signed.
    #[serde(default = "live_defaults::max_order_notional")]
    pub max_order_notional: f64,
    /// Limit price of the IOC orders, away from the reference price (fraction).
    #[serde(default = "live_defaults::max_slippage")]
    pub max_slippage: f64,
    /// Portfolio daily loss limit (fraction of the previous day's last equity).
    #[serde(default = "live_defaults::daily_loss")]
    pub daily_loss: f64,
    /// Portfolio drawdown limit (fraction of the peak).
    #[serde(default = "live_defaults::max_drawdown")]
    pub max_drawdown: f64,
    /// Cross leverage set on every coin at start.
    #[serde(default = "live_defaults::leverage")]
    pub leverage: u32,
    /// Seconds between reconciliations with the exchange.
    #[serde(default = "live_defaults::reconcile_secs")]
    pub reconcile_secs: f64,
    /// The dead-man's switch: open orders are cancelled this many seconds after the runner
    /// last refreshed it (0: off).
    #[serde(default = "live_defaults::dead_man_secs")]
    pub dead_man_secs: f64,
    /// Cancel open orders organism did not send (else they are only reported).
    #[serde(default)]
    pub cancel_unknown_orders: bool,
    /// Seconds an order request stays valid (its `expiresAfter`): after that an unanswered
    /// request can no longer execute, so it may be sent again.
    #[serde(default = "live_defaults::order_expiry_secs")]
    pub order_expiry_secs: f64,
}

mod live_defaults {
    pub fn account() -> String {
        "live".into()
    }
    pub fn yes() -> bool {
        true
    }
    pub fn store() -> String {
        "live/store".into()
    }
    pub fn stop_file() -> String {
        "live/STOP".into()
    }
    pub fn warmup_bars() -> usize {
        1000
    }
    pub fn max_order_notional() -> f64 {
        1000.0
    }
    pub fn max_slippage() -> f64 {
        0.005
    }
    pub fn daily_loss() -> f64 {
        0.03
    }
    pub fn max_drawdown() -> f64 {
        0.10
    }
    pub fn leverage() -> u32 {
        3
    }
    pub fn reconcile_secs() -> f64 {
        300.0
    }
    pub fn dead_man_secs() -> f64 {
        120.0
    }
    pub fn order_expiry_secs() -> f64 {
        15.0
    }
}

impl LiveConfig {
    /// Checks every key; the journal account must differ from `paper_account`.
    ///
    /// # Errors
    /// [`Invalid`] naming the key.
    pub fn validate(&self, paper_account: &str) -> Result<(), Invalid> {
        if self.account.trim().is_empty() || self.account == paper_account {
            return Err(Invalid::new(
                "live.account",
                "must not be empty nor the paper account",
            ));
        }
        range("live.capital", self.capital, 10.0, 1e12)?;
        if self.strategies.is_empty() {
            return Err(Invalid::new(
                "live.strategies",
                "must list the strategy ids to trade live",
            ));
        }
        if let Some(c) = &self.coins {
            crate::market::types::coin_list(c).map_err(|m| Invalid::new("live.coins", m))?;
        }
        count("live.warmup_bars", self.warmup_bars, 1, 5000, "")?;
        range(
            "live.max_order_notional",
            self.max_order_notional,
            10.0,
            1e12,
        )?;
        range("live.max_slippage", self.max_slippage, 0.0001, 0.1)?;
        range("live.daily_loss", self.daily_loss, 0.001, 1.0)?;
        range("live.max_drawdown", self.max_drawdown, 0.001, 1.0)?;
        count("live.leverage", self.leverage as usize, 1, 50, "")?;
        range("live.reconcile_secs", self.reconcile_secs, 1.0, 86_400.0)?;
        if self.dead_man_secs != 0.0 {
            range("live.dead_man_secs", self.dead_man_secs, 10.0, 86_400.0)?;
        }
        range(
            "live.order_expiry_secs",
            self.order_expiry_secs,
            1.0,
            3600.0,
        )?;
        for (k, v) in [
            ("live.account_address", &self.account_address),
            ("live.vault_address", &self.vault_address),
        ] {
            if !v.is_empty() && crate::exchange::hyperliquid::signing::address_bytes(v).is_err() {
                return Err(Invalid::new(
                    k,
                    format!("`{v}` is not a 0x address of 40 hex digits"),
                ));
            }
        }
        Ok(())
    }
}

fn live_cfg(cfg: &RunConfig) -> Result<&LiveConfig, RunError> {
    cfg.live
        .as_ref()
        .ok_or_else(|| RunError::Refused("no [live] section in the config".into()))
}

/// The strategies of `live.strategies`, checked: in the registry, not retired and, unless
/// `live.require_paper_eligible = false`, found eligible by the paper lifecycle.
///
/// # Errors
/// [`RunError::Refused`] naming the strategy that may not trade live and why.
pub fn strategies(
    reg: &mut Registry,
    cfg: &RunConfig,
    paper_account: &str,
) -> Result<Vec<Strategy>, RunError> {
    let l = live_cfg(cfg)?;
    let mut out = Vec::new();
    for id in &l.strategies {
        let s = reg
            .get(id)
            .map_err(|e| RunError::Refused(format!("live.strategies: `{id}`: {e}")))?;
        if s.status == Status::Retired {
            return Err(RunError::Refused(format!(
                "live.strategies: {} is retired; it cannot trade live",
                s.id
            )));
        }
        if l.require_paper_eligible {
            let eligible = journal::of_kind(reg.connection(), paper_account, Kind::Lifecycle)?
                .iter()
                .any(|e| e.book == s.id && matches!(&e.row, Row::Lifecycle(l) if l.eligible));
            if !eligible {
                return Err(RunError::Refused(format!(
                    "live.strategies: {} has not been found eligible on paper (paper.min_days \
                     within tolerance); set live.require_paper_eligible = false to override",
                    s.id
                )));
            }
        }
        out.push(s);
    }
    Ok(out)
}

/// What `live run` adds to the paper loop.
pub struct LiveRig {
    pub executor: Arc<LiveExecutor>,
    client: Arc<ExchangeClient>,
    assets: BTreeMap<String, (u32, VenueRules)>,
    live: LiveConfig,
    account: String,
    dry_run: bool,
    last_reconcile: Mutex<Option<i64>>,
    last_dead_man: Mutex<Option<i64>>,
}

/// Sets up the signed client and the executor; checks the coins, the account's value and
/// sets the leverage (not in a dry run).
///
/// # Errors
/// [`RunError`] when the key, the exchange's metadata or the account refuse, or a coin is not
/// a perpetual there.
pub async fn rig(
    cfg: &RunConfig,
    registry: &Path,
    url: &str,
    info: Arc<InfoClient>,
    dry_run: bool,
) -> Result<LiveRig, RunError> {
    let l = live_cfg(cfg)?.clone();
    let signer = load_key(&l.key_file).map_err(RunError::Refused)?;
    let signer_address = signer.address();
    let nonces: Box<dyn NonceStore> = if dry_run {
        Box::new(MemoryNonces::default())
    } else {
        Box::new(DbNonces::open(registry, &signer_address).map_err(JournalError::from)?)
    };
    let mainnet = url.trim_end_matches('/') == MAINNET_URL;
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let client = Arc::new(ExchangeClient::new(
        info.clone(),
        signer,
        opt(&l.account_address),
        opt(&l.vault_address),
        mainnet,
        nonces,
    ));
    let meta = info.meta().await.map_err(|source| RunError::Fetch {
        context: format!("reading the perpetuals of {url}"),
        source,
    })?;
    let mut assets = BTreeMap::new();
    for coin in &cfg.paper.coins {
        let Some(i) = meta.universe.iter().position(|a| &a.name == coin) else {
            return Err(RunError::Refused(format!(
                "live.coins: {coin} is not a perpetual on {url}"
            )));
        };
        let rules = VenueRules::hyperliquid_perp(meta.universe[i].sz_decimals);
        assets.insert(coin.clone(), (i as u32, rules));
    }
    tracing::info!(
        account = client.account(),
        signer = signer_address,
        network = if mainnet {
            "mainnet"
        } else {
            "testnet or local"
        },
        dry_run,
        "live trading"
    );
    if !dry_run {
        let state = client.account_state().await?;
        let capital = journal::decimal(l.capital);
        if state.account_value < capital {
            return Err(RunError::Refused(format!(
                "live.capital is {} but the account {} is worth {} on {url}",
                l.capital,
                client.account(),
                state.account_value
            )));
        }
        for (coin, (asset, _)) in &assets {
            client
                .update_leverage(*asset, true, l.leverage)
                .await
                .map_err(|e| RunError::Refused(format!("setting the leverage of {coin}: {e}")))?;
        }
    }
    let limits = ExecLimits {
        max_order_notional: l.max_order_notional,
        max_slippage: l.max_slippage,
        expiry_ms: (l.order_expiry_secs * 1000.0) as u64,
        attempts: 5,
        backoff: Duration::from_millis(500),
    };
    let dry = dry_run.then(|| DryRun {
        out: Mutex::new(Box::new(std::io::stdout())),
        costs: cfg.engine.costs(),
    });
    let log = JournalLog::open(registry, &cfg.paper.account, Arc::new(WallClock))?;
    let mut executor = LiveExecutor::new(
        client.clone(),
        tokio::runtime::Handle::current(),
        Arc::new(log),
        assets.clone(),
        limits,
        Arc::new(WallClock),
        dry,
    );
    if !dry_run {
        // Orders' fills come back on the account's stream.
        let events = stream_fills(url, info.clone(), client.account(), Arc::new(WallClock));
        executor = executor.with_fill_events(events);
    }
    let executor = Arc::new(executor);
    Ok(LiveRig {
        executor,
        client,
        assets,
        live: l,
        account: cfg.paper.account.clone(),
        dry_run,
        last_reconcile: Mutex::new(None),
        last_dead_man: Mutex::new(None),
    })
}

/// Whether `every` has passed since `at` (then `at` becomes now); true the first time.
fn due(at: &Mutex<Option<i64>>, every: Duration) -> bool {
    use crate::clock::Clock as _;
    let now = WallClock.now_ms();
    let mut g = match at.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if g.is_some_and(|t| now - t < every.as_millis() as i64) {
        return false;
    }
    *g = Some(now);
    true
}

impl LiveRig {
    /// Between bars: reconciliation every `live.reconcile_secs` (the first at once) and the
    /// dead-man's switch refreshed every third of `live.dead_man_secs`. Returns rows to journal;
    /// a failure is logged and tried again later.
    pub async fn tend(&self, trader: &mut Trader, report: &mut dyn FnMut(Notice)) -> Vec<Entry> {
        let mut rows = Vec::new();
        if self.dry_run {
            return rows;
        }
        if self.live.dead_man_secs > 0.0
            && due(
                &self.last_dead_man,
                Duration::from_secs_f64(self.live.dead_man_secs / 3.0),
            )
        {
            let at = crate::exchange::hyperliquid::exchange::now_ms()
                + (self.live.dead_man_secs * 1000.0) as u64;
            if let Err(e) = self.client.schedule_cancel(Some(at)).await {
                tracing::warn!("dead-man's switch not refreshed: {e}");
            }
        }
        if due(
            &self.last_reconcile,
            Duration::from_secs_f64(self.live.reconcile_secs),
        ) {
            let (session, conn) = trader.session_and_journal();
            match reconcile(
                &self.client,
                session,
                conn,
                &self.account,
                &self.assets,
                self.live.cancel_unknown_orders,
            )
            .await
            {
                Ok((r, found)) => {
                    for (_, reason) in &r.halted {
                        report(Notice::Say(reason.clone()));
                    }
                    if r.unknown_orders > 0 || r.unknown_fills > 0 {
                        tracing::warn!(
                            unknown_orders = r.unknown_orders,
                            cancelled = r.cancelled,
                            unknown_fills = r.unknown_fills,
                            "reconciliation found orders or fills organism did not make (see the journal's reconcile row)"
                        );
                    }
                    rows.extend(found);
                }
                Err(e) => tracing::warn!("reconciliation failed, retried later: {e}"),
            }
            // The exchange's funding payments, for the drift ledger.
            let (session, conn) = trader.session_and_journal();
            let coins = session.net_positions().into_keys().collect();
            match super::live::venue_funding(&self.client, conn, &self.account, &coins).await {
                Ok(paid) => rows.extend(paid),
                Err(e) => tracing::warn!("funding payments not read, asked again later: {e}"),
            }
        }
        rows
    }

    /// The kill switch's last steps: every open order of the traded coins cancelled, then
    /// whatever position the account still holds in them (the books are flat by now) closed
    /// through the executor, as a kill-phase order of the portfolio: reduce-only, journaled,
    /// and asked for by cloid before it is sent, so a repeated kill sends it once.
    pub async fn cancel_all(&self, session: &Session) -> Vec<Entry> {
        if self.dry_run {
            return Vec::new();
        }
        let ts = session.last_ts().unwrap_or(0);
        let mut cancelled = Vec::new();
        match self.client.open_orders().await {
            Ok(orders) => {
                for o in orders {
                    if let Some(&(asset, _)) = self.assets.get(&o.coin) {
                        match self.client.cancel(asset, o.oid).await {
                            Ok(()) => cancelled.push(o.oid),
                            Err(e) => tracing::warn!(oid = o.oid, "cancel failed: {e}"),
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("kill switch: open orders unknown: {e}"),
        }
        let mut closed = Vec::new();
        let state = self.client.account_state().await;
        let mids = self
            .client
            .info()
            .all_mids()
            .await
            .map_err(ExchangeError::from);
        match (state, mids) {
            (Ok(state), Ok(mids)) => {
                for coin in self.assets.keys() {
                    let held = state.position(coin);
                    let Some(mid) = mids.get(coin).copied() else {
                        continue;
                    };
                    if held.is_zero() {
                        continue;
                    }
                    // Through the executor: journaled intent, cloid asked for first, reduce-only.
                    let order = Order {
                        side: if held < Decimal::ZERO {
                            OrderSide::Buy
                        } else {
                            OrderSide::Sell
                        },
                        qty: held.abs().to_f64().unwrap_or(0.0),
                        price: mid.to_f64().unwrap_or(f64::NAN),
                    };
                    let intent = Intent {
                        residue: Some(held),
                        ..Intent::new(ts, Phase::Kill, 0)
                    };
                    let cmd = SubmitOrder {
                        book: PORTFOLIO,
                        coin,
                        number: 0,
                        intent,
                        order,
                    };
                    let (mut oid, mut filled) = (None, 0.0);
                    let sent = self.executor.submit_order(&cmd, &mut |ev| {
                        oid.get_or_insert(ev.id);
                        filled += ev.fill.qty;
                    });
                    match sent {
                        Ok(()) => closed.push(ClosedPosition {
                            coin: coin.clone(),
                            filled,
                            oid: oid.unwrap_or(0),
                            size: held.to_string(),
                        }),
                        Err(e) => {
                            tracing::error!(coin, "kill switch: {held} {coin} not closed: {e}")
                        }
                    }
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!("kill switch: the account's positions are unknown: {e}")
            }
        }
        vec![Entry::new(
            PORTFOLIO,
            session.last_ts().unwrap_or(0),
            KillRow::Exchange {
                cancelled_orders: cancelled,
                closed_positions: closed,
            },
        )]
    }
}
