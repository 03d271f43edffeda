//! `organism live run | status | stop | resume`: the paper session and loop with real orders on
//! Hyperliquid (see `organism::runner::live`).

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use organism::{
    clock::WallClock,
    config::{Config, LiveConfig},
    exchange::hyperliquid::{
        exchange::{ExchangeClient, ExchangeError, MemoryNonces, NonceStore},
        info::InfoClient,
        MAINNET_URL,
    },
    execution::{
        journal::{self, Entry, Kind, PORTFOLIO},
        paper::Executor as _,
        types::VenueRules,
        Costs, Order, OrderSide,
    },
    promotion::registry::{Registry, Status, Strategy},
    runner::{
        live::{load_key, reconcile, DbNonces, DryRun, ExecLimits, LiveExecutor},
        paper::Session,
    },
};
use rust_decimal::{prelude::ToPrimitive, Decimal};
use serde_json::json;

use super::paper::{control, run_session, status, ControlArgs, Mode, RunArgs, StatusArgs};

#[derive(clap::Subcommand, Debug)]
pub enum LiveCommand {
    /// Trade the strategies of `live.strategies` with real orders on Hyperliquid: the paper
    /// session's code (signals, engine, risk limits, journal) with the exchange as the venue.
    /// Needs a [live] config section and --i-understand-this-trades-real-money (or --dry-run).
    Run(LiveRunArgs),
    /// Positions, PnL, limits and the last bar of the live session.
    Status(StatusArgs),
    /// The kill switch: the running session cancels every order, flattens every position with
    /// reduce-only IOC orders and stops.
    Stop(ControlArgs),
    /// Lift the pauses (risk breaches, reconciliation halts, kill switch) of one strategy or of all.
    Resume(ControlArgs),
}

#[derive(clap::Args, Debug)]
pub struct LiveRunArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Acknowledge that this sends real orders with real money at risk.
    #[arg(long)]
    pub i_understand_this_trades_real_money: bool,
    /// Do everything but send: print each signed request (action, nonce, signature, vault) as
    /// one JSON line on stdout and fill it as paper would.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(cmd: LiveCommand) -> Result<()> {
    match cmd {
        LiveCommand::Run(a) => {
            if !a.dry_run && !a.i_understand_this_trades_real_money {
                bail!(
                    "live run sends real orders: pass --i-understand-this-trades-real-money to \
                     accept the risk (or --dry-run to see the signed orders without sending them)"
                );
            }
            run_session(a.run, Mode::Live { dry_run: a.dry_run })
        }
        LiveCommand::Status(a) => status(a, Mode::Live { dry_run: false }),
        LiveCommand::Stop(a) => control(a, "stop", Mode::Live { dry_run: false }),
        LiveCommand::Resume(a) => control(a, "resume", Mode::Live { dry_run: false }),
    }
}

fn live_cfg(cfg: &Config) -> Result<&LiveConfig> {
    cfg.live.as_ref().context("no [live] section in the config")
}

/// The strategies of `live.strategies`, checked: in the registry, not retired and, unless
/// `live.require_paper_eligible = false`, found eligible by the paper lifecycle.
pub fn strategies(reg: &mut Registry, cfg: &Config, paper_account: &str) -> Result<Vec<Strategy>> {
    let l = live_cfg(cfg)?;
    let mut out = Vec::new();
    for id in &l.strategies {
        let s = reg
            .get(id)
            .with_context(|| format!("live.strategies: `{id}`"))?;
        if s.status == Status::Retired {
            bail!("live.strategies: {} is retired; it cannot trade live", s.id);
        }
        if l.require_paper_eligible {
            let eligible = journal::of_kind(reg.connection(), paper_account, Kind::Lifecycle)?
                .iter()
                .any(|e| e.book == s.id && e.body["eligible"] == json!(true));
            if !eligible {
                bail!(
                    "live.strategies: {} has not been found eligible on paper (paper.min_days \
                     within tolerance); set live.require_paper_eligible = false to override",
                    s.id
                );
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
pub async fn rig(
    cfg: &Config,
    registry: &Path,
    url: &str,
    info: Arc<InfoClient>,
    dry_run: bool,
) -> Result<LiveRig> {
    let l = live_cfg(cfg)?.clone();
    let signer = load_key(&l.key_file).map_err(anyhow::Error::msg)?;
    let signer_address = signer.address();
    let nonces: Box<dyn NonceStore> = if dry_run {
        Box::new(MemoryNonces::default())
    } else {
        Box::new(DbNonces::open(registry, &signer_address)?)
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
    let meta = info.meta().await?;
    let mut assets = BTreeMap::new();
    for coin in &cfg.paper.coins {
        let Some(i) = meta.universe.iter().position(|a| &a.name == coin) else {
            bail!("live.coins: {coin} is not a perpetual on {url}");
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
        let capital = organism::execution::journal::decimal(l.capital);
        if state.account_value < capital {
            bail!(
                "live.capital is {} but the account {} is worth {} on {url}",
                l.capital,
                client.account(),
                state.account_value
            );
        }
        for (coin, (asset, _)) in &assets {
            client
                .update_leverage(*asset, true, l.leverage)
                .await
                .with_context(|| format!("setting the leverage of {coin}"))?;
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
        costs: Costs {
            fee: cfg.costs.taker_fee,
            slippage: cfg.costs.slippage,
        },
    });
    let executor = Arc::new(LiveExecutor::new(
        client.clone(),
        tokio::runtime::Handle::current(),
        registry,
        &cfg.paper.account,
        assets.clone(),
        limits,
        Arc::new(WallClock),
        dry,
    )?);
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
    use organism::clock::Clock as _;
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
    /// dead-man's switch refreshed every third of `live.dead_man_secs`. Returns rows to journal.
    pub async fn tend(
        &self,
        session: &mut Session,
        conn: &rusqlite::Connection,
    ) -> Result<Vec<Entry>> {
        let mut rows = Vec::new();
        if self.dry_run {
            return Ok(rows);
        }
        if self.live.dead_man_secs > 0.0
            && due(
                &self.last_dead_man,
                Duration::from_secs_f64(self.live.dead_man_secs / 3.0),
            )
        {
            let at = organism::exchange::hyperliquid::exchange::now_ms()
                + (self.live.dead_man_secs * 1000.0) as u64;
            if let Err(e) = self.client.schedule_cancel(Some(at)).await {
                tracing::warn!("dead-man's switch not refreshed: {e}");
            }
        }
        if due(
            &self.last_reconcile,
            Duration::from_secs_f64(self.live.reconcile_secs),
        ) {
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
                Ok(r) => {
                    for (_, reason) in &r.halted {
                        outln!("{reason}");
                    }
                    if r.unknown_orders > 0 || r.unknown_fills > 0 {
                        tracing::warn!(
                            unknown_orders = r.unknown_orders,
                            cancelled = r.cancelled,
                            unknown_fills = r.unknown_fills,
                            "reconciliation found orders or fills organism did not make (see the journal's reconcile row)"
                        );
                    }
                    rows.extend(r.rows);
                }
                Err(e) => tracing::warn!("reconciliation failed, retried later: {e}"),
            }
        }
        Ok(rows)
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
                    let intent = format!("kill|{ts}|residue {held}");
                    match self.executor.execute(PORTFOLIO, coin, &intent, &order) {
                        Ok((oid, fill)) => closed
                            .push(json!({"coin": coin, "size": held.to_string(),
                            "oid": oid, "filled": fill.qty})),
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
            Kind::Kill,
            json!({"cancelled_orders": cancelled, "closed_positions": closed}),
        )]
    }
}
