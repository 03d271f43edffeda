//! `organism paper run | replay | status | stop | resume`: paper trading of the promoted
//! strategies (see `organism::runner::paper`).

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{bail, Context, Result};
use organism::{
    backtest::{equity_csv, trades_csv},
    clock::{Clock, WallClock},
    config::Config,
    exchange::hyperliquid::{
        info::{InfoClient, RetryPolicy},
        ws::{self, FeedConfig, FeedEvent, Subscription},
    },
    execution::journal::{self, Kind, PORTFOLIO},
    market::{
        csv::{fear_greed_to_csv, load_fear_greed, write_atomic},
        timerange::TimeRange,
        types::Coin,
        types::Interval,
        universe::FEAR_GREED_FILE,
        Market,
    },
    promotion::registry::{Registry, Status},
    runner::{
        paper::{
            book_specs, regime_of, replay, BookSpec, Lifecycle, Limits, Session, SessionConfig,
        },
        CandleStore,
    },
    seeds::Genome,
};
use serde_json::{json, Value};

use super::{format_ts, load_config, load_data, DataArgs};

#[derive(clap::Subcommand, Debug)]
pub enum PaperCommand {
    /// Trade the promoted strategies on live market data (the WebSocket feed, backfilled over
    /// REST) with simulated fills, journaling every bar; after a crash it continues from the
    /// journal and processes the bars it missed.
    Run(RunArgs),
    /// Replay stored history through the paper session, one bar at a time: the trades, fills
    /// and equity are those of `backtest` over the same span.
    Replay(Box<ReplayArgs>),
    /// Strategies, positions, PnL, regime, limits and the last bar of the paper session.
    Status(StatusArgs),
    /// The kill switch: the running session flattens everything and stops.
    Stop(ControlArgs),
    /// Lift the pauses (risk breaches, kill switch) of one strategy or of all.
    Resume(ControlArgs),
}

/// Paper trading, or live trading (the same session and loop, orders sent to Hyperliquid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Paper,
    Live { dry_run: bool },
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Paper => "paper",
            Mode::Live { .. } => "live",
        }
    }
}

/// The config live trading runs with: `[live]` laid over `[paper]` (journal account, capital,
/// coins, store, stop file, warm-up, portfolio loss limits); the session code reads `[paper]`.
///
/// # Errors
/// When the config has no `[live]` section.
pub fn live_overlay(cfg: &Config, file: Option<&std::path::Path>) -> Result<Config> {
    let Some(l) = cfg.live.clone() else {
        bail!(
            "{}: no [live] section; live trading needs one (see the README: capital, strategies, \
             limits), written on purpose",
            file.map_or("the built-in config".to_string(), |f| f
                .display()
                .to_string())
        );
    };
    let mut c = cfg.clone();
    let p = &mut c.paper;
    p.account = l.account.clone();
    p.capital = l.capital;
    if let Some(coins) = &l.coins {
        p.coins = coins.clone();
    }
    p.store = l.store.clone();
    p.stop_file = l.stop_file.clone();
    p.warmup_bars = l.warmup_bars;
    p.portfolio_daily_loss = l.daily_loss;
    p.portfolio_max_drawdown = l.max_drawdown;
    Ok(c)
}

/// Where the registry and the config are.
#[derive(clap::Args, Debug, Clone)]
pub struct Where {
    /// Config file laid over the built-in defaults ([paper], promotion.registry).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The registry and journal (default: promotion.registry).
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,
}

impl Where {
    fn load_mode(&self, mode: Mode) -> Result<(Config, PathBuf)> {
        let (cfg, reg) = self.load()?;
        match mode {
            Mode::Paper => Ok((cfg, reg)),
            Mode::Live { dry_run } => {
                let mut c = live_overlay(&cfg, self.config.as_deref())?;
                if dry_run {
                    // A dry run journals apart from the real session.
                    c.paper.account.push_str("-dry-run");
                }
                Ok((c, reg))
            }
        }
    }

    fn open_existing_mode(&self, mode: Mode) -> Result<(Config, Registry)> {
        let (cfg, _) = self.load_mode(mode)?;
        let (_, reg) = self.open_existing()?;
        Ok((cfg, reg))
    }

    fn load(&self) -> Result<(Config, PathBuf)> {
        let cfg = load_config(self.config.as_deref())?;
        let reg = self
            .registry
            .clone()
            .unwrap_or_else(|| PathBuf::from(&cfg.promotion.registry));
        Ok((cfg, reg))
    }

    fn open_existing(&self) -> Result<(Config, Registry)> {
        let (cfg, path) = self.load()?;
        if !path.exists() {
            bail!(
                "{}: no registry yet; `organism promote` creates it",
                path.display()
            );
        }
        Ok((cfg, Registry::open(&path)?))
    }
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub at: Where,
    /// Hyperliquid API base URL (default: HYPERLIQUID_API_URL, then exchange.api_url), e.g. a
    /// local test exchange's http://127.0.0.1:8787.
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// Stop after processing the bar that opens at this time (UTC ms): for tests and bounded runs.
    #[arg(long, value_name = "MS")]
    pub until_ts: Option<i64>,
    /// No status line (logs only).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// A strategy of the registry (id or unique prefix).
    #[arg(
        long,
        value_name = "ID",
        required_unless_present = "genome",
        conflicts_with = "genome"
    )]
    pub strategy: Option<String>,
    /// A genome file instead (TOML, as `organism runs export` writes it).
    #[arg(long, value_name = "FILE")]
    pub genome: Option<PathBuf>,
    /// The registry (default: promotion.registry).
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,
    /// First bar (UTC date YYYYMMDD, inclusive; default: the data's first).
    #[arg(long, value_name = "YYYYMMDD")]
    pub from: Option<String>,
    /// End (UTC date YYYYMMDD, exclusive; default: after the data's last bar).
    #[arg(long, value_name = "YYYYMMDD")]
    pub to: Option<String>,
    /// Coin (default: backtest.coin).
    #[arg(long)]
    pub coin: Option<String>,
    /// Starting cash (default: backtest.cash).
    #[arg(long)]
    pub cash: Option<f64>,
    /// Apply the regime filter: the strategy's suggested policy (with --strategy and
    /// paper.regime_policy = "suggested"), else the [regime] actions.
    #[arg(long)]
    pub regime: bool,
    /// Keep the journal in this database (default: in memory, discarded).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Write the trade list as CSV (the format of `backtest --trades`).
    #[arg(long, value_name = "FILE")]
    pub trades: Option<PathBuf>,
    /// Write the equity curve as CSV (the format of `backtest --equity`).
    #[arg(long, value_name = "FILE")]
    pub equity: Option<PathBuf>,
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub at: Where,
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ControlArgs {
    #[command(flatten)]
    pub at: Where,
    /// Only this strategy (id or `id/COIN`; resume only).
    #[arg(long, value_name = "ID")]
    pub strategy: Option<String>,
    /// Why (recorded in the journal).
    #[arg(long, default_value = "operator")]
    pub reason: String,
}

pub fn run(cmd: PaperCommand) -> Result<()> {
    match cmd {
        PaperCommand::Run(a) => run_session(a, Mode::Paper),
        PaperCommand::Replay(a) => run_replay(*a),
        PaperCommand::Status(a) => status(a, Mode::Paper),
        PaperCommand::Stop(a) => control(a, "stop", Mode::Paper),
        PaperCommand::Resume(a) => control(a, "resume", Mode::Paper),
    }
}

fn now_ms() -> i64 {
    WallClock.now_ms()
}

fn run_replay(a: ReplayArgs) -> Result<()> {
    let cfg = a.data.config()?;
    let (genome, strategy, label) = match (&a.strategy, &a.genome) {
        (Some(id), _) => {
            let path = a
                .registry
                .clone()
                .unwrap_or_else(|| PathBuf::from(&cfg.promotion.registry));
            if !path.exists() {
                bail!(
                    "{}: no registry yet; `organism promote` creates it",
                    path.display()
                );
            }
            let reg = Registry::open(&path)?;
            let s = reg.get(id)?;
            let g = Genome::from_toml(&s.genome, &format!("registry strategy {}", s.id))
                .map_err(anyhow::Error::msg)?;
            (g, Some(s.clone()), s.id)
        }
        (None, Some(f)) => (super::runs::read_genome(f)?, None, f.display().to_string()),
        (None, None) => bail!("give --strategy ID or --genome FILE"),
    };
    let mut sel = cfg.data_selection();
    let coin = a.coin.clone().unwrap_or_else(|| cfg.backtest.coin.clone());
    sel.coins = vec![coin.clone()];
    if a.from.is_some() || a.to.is_some() {
        let text = format!(
            "{}-{}",
            a.from.as_deref().unwrap_or(""),
            a.to.as_deref().unwrap_or("")
        );
        sel.timerange = Some(TimeRange::parse(&text).map_err(|m| {
            anyhow::anyhow!("--from/--to: {}", m.trim_start_matches("--timerange "))
        })?);
    }
    let universe = load_data(&sel)?;
    let Some(market) = universe
        .markets
        .iter()
        .find(|m| m.coin.eq_ignore_ascii_case(&coin))
    else {
        bail!("coin {coin} is not in {}", universe.origin);
    };
    let mut scfg = SessionConfig::of(&cfg);
    if let Some(c) = a.cash {
        if !(c.is_finite() && c > 0.0) {
            bail!("--cash {c}: must be a positive amount");
        }
        scfg.engine.cash = c;
    }
    // A replay is the backtest through the paper session: no risk limits.
    scfg.book_limits = Limits::NONE;
    scfg.portfolio_limits = Limits::NONE;
    scfg.lifecycle = Lifecycle::NONE;
    if let Some(iv) = market.candles.interval_ms() {
        scfg.interval_ms = iv;
    }
    let regime = regime_of(&cfg, a.regime || cfg.regime.enabled, strategy.as_ref())
        .map_err(anyhow::Error::msg)?;
    let spec = BookSpec {
        strategy: strategy.as_ref().map_or("replay".into(), |s| s.id.clone()),
        coin: market.coin.clone(),
        genome,
        regime,
        cash: scfg.engine.cash,
        validation_sharpe: None,
    };
    let mut conn = match &a.journal {
        Some(p) => Registry::open(p)?.into_connection(),
        None => {
            let c = rusqlite::Connection::open_in_memory()?;
            c.execute_batch(journal::SCHEMA)?;
            c
        }
    };
    let account = format!("replay-{}", now_ms());
    let r = replay(&mut conn, &account, scfg, spec, market, now_ms())?;
    if let Some(p) = &a.trades {
        write_atomic(p, trades_csv(&r.trades).as_bytes())?;
    }
    if let Some(p) = &a.equity {
        write_atomic(p, equity_csv(&market.candles.ts, &r.equity).as_bytes())?;
    }
    let last = r.equity.last().copied().unwrap_or(scfg.engine.cash);
    let closed = r
        .trades
        .iter()
        .filter(|t| t.exit_reason != organism::execution::ExitReason::Open)
        .count();
    if a.json {
        let v = json!({
            "strategy": label, "coin": market.coin, "bars": market.candles.len(),
            "from_ms": market.candles.ts.first(), "to_ms": market.candles.ts.last(),
            "trades": r.trades.len(), "closed_trades": closed, "fills": r.fills,
            "fees": r.fees.normalize().to_string(), "funding": r.funding.normalize().to_string(),
            "final_equity": journal::decimal(last).normalize().to_string(),
            "bars_in_market": r.bars_in_market, "account": a.journal.as_ref().map(|_| account.clone()),
        });
        outln!("{v}");
    } else {
        outln!(
            "paper replay of {label} on {} ({} bars, {} to {}): {} trades ({} closed), {} fills, \
             fees {}, funding {}, final equity {} ({:+.2} %)",
            market.coin,
            market.candles.len(),
            format_ts(market.candles.ts[0]),
            format_ts(*market.candles.ts.last().unwrap_or(&0)),
            r.trades.len(),
            closed,
            r.fills,
            r.fees.round_dp(2),
            r.funding.round_dp(2),
            journal::decimal(last).round_dp(2),
            100.0 * (last / scfg.engine.cash - 1.0)
        );
        if let Some(p) = &a.journal {
            outln!("journal: {} (account {account})", p.display());
        }
    }
    Ok(())
}

pub fn control(a: ControlArgs, action: &str, mode: Mode) -> Result<()> {
    let (cfg, reg) = a.at.open_existing_mode(mode)?;
    if action == "stop" && a.strategy.is_some() {
        bail!("the kill switch stops every strategy; --strategy is for resume");
    }
    journal::request(
        &reg.into_connection(),
        &cfg.paper.account,
        action,
        a.strategy.as_deref(),
        &a.reason,
        now_ms(),
    )?;
    match action {
        "stop" => outln!(
            "kill switch filed for account `{}`: the running session flattens everything and stops \
             (a session that is not running does it when it starts)",
            cfg.paper.account
        ),
        _ => outln!(
            "resume of {} filed for account `{}`; the session applies it within a second, or when it next starts",
            a.strategy.as_deref().unwrap_or("every strategy"),
            cfg.paper.account
        ),
    }
    Ok(())
}

pub fn status(a: StatusArgs, mode: Mode) -> Result<()> {
    let (cfg, mut reg) = a.at.open_existing_mode(mode)?;
    let account = cfg.paper.account.clone();
    let conn = reg.connection();
    let Some(p) = journal::latest(conn, &account, PORTFOLIO, Kind::Equity)? else {
        if a.json {
            outln!("{}", json!({"account": account, "session": null}));
        } else {
            outln!(
                "no {} session in account `{account}` yet; start one with `organism {} run`",
                mode.name(),
                mode.name()
            );
        }
        return Ok(());
    };
    let session = journal::latest(conn, &account, PORTFOLIO, Kind::Session)?;
    let capital: f64 = session
        .as_ref()
        .and_then(|s| s.body["capital"].as_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    let books: Vec<String> = session
        .as_ref()
        .and_then(|s| s.body["books"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|b| b["book"].as_str().map(String::from))
        .collect();
    let mut rows = Vec::new();
    for b in &books {
        let eq = journal::latest(conn, &account, b, Kind::Equity)?;
        let dec = journal::latest(conn, &account, b, Kind::Decision)?;
        rows.push(json!({
            "book": b,
            "equity": eq.as_ref().map(|e| e.body["equity"].clone()),
            "position": eq.as_ref().map(|e| e.body["position"].clone()),
            "close": eq.as_ref().map(|e| e.body["close"].clone()),
            "paused": eq.as_ref().map(|e| e.body["paused"].clone()),
            "peak": eq.as_ref().map(|e| e.body["state"]["risk"]["peak"].clone()),
            "volatility": dec.as_ref().map(|d| d.body["volatility"].clone()),
            "sentiment": dec.as_ref().map(|d| d.body["sentiment"].clone()),
            "target": dec.as_ref().map(|d| d.body["target"]["position"].clone()),
        }));
    }
    let equity: f64 = p.body["equity"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    let mut strategies: Vec<String> = books
        .iter()
        .filter_map(|b| b.rsplit_once('/').map(|x| x.0.to_string()))
        .collect();
    strategies.dedup();
    let mut lifecycle = Vec::new();
    for st in &strategies {
        if let Some(l) = journal::latest(conn, &account, st, Kind::Lifecycle)? {
            lifecycle.push(json!({"strategy": st, "at_ms": l.bar_ts, "check": l.body}));
        }
    }
    let pending = journal::pending(conn, &account)?;
    let breaches = journal::of_kind(conn, &account, Kind::Breach)?;
    let last_breach = breaches.last().map(|b| b.body["reason"].clone());
    if a.json {
        outln!(
            "{}",
            json!({
                "account": account, "last_bar_ms": p.bar_ts, "equity": p.body["equity"],
                "capital": session.as_ref().map(|s| s.body["capital"].clone()),
                "gross": p.body["gross"], "killed": p.body["killed"],
                "portfolio_paused": p.body["state"]["risk"]["pause"],
                "book_limits": session.as_ref().map(|s| s.body["book_limits"].clone()),
                "portfolio_limits": session.as_ref().map(|s| s.body["portfolio_limits"].clone()),
                "books": rows, "lifecycle": lifecycle, "breaches": breaches.len(), "last_breach": last_breach,
                "pending_requests": pending.iter().map(|c| json!({"action": c.action, "book": c.book, "reason": c.reason})).collect::<Vec<_>>(),
            })
        );
        return Ok(());
    }
    outln!(
        "{} account `{account}`: last bar {} | equity {} ({:+.2} % on {}) | gross {}{}",
        mode.name(),
        format_ts(p.bar_ts),
        journal::decimal(equity).round_dp(2),
        100.0 * (equity / capital - 1.0),
        journal::decimal(capital).round_dp(2),
        p.body["gross"]
            .as_str()
            .and_then(|g| g.parse::<f64>().ok())
            .map_or("?".into(), |g| format!("{:.2}", g)),
        if p.body["killed"] == Value::Bool(true) {
            " | STOPPED by the kill switch (organism paper resume)"
        } else {
            ""
        }
    );
    outln!(
        "{:<40} {:>12} {:>12} {:>10} {:>8} {:>8}  {}",
        "strategy/coin",
        "equity",
        "position",
        "target",
        "vol",
        "sent.",
        "state"
    );
    for r in &rows {
        let s = |v: &Value| -> String {
            match v {
                Value::String(x) => x.clone(),
                Value::Null => "-".into(),
                other => other.to_string(),
            }
        };
        let eq: f64 = r["equity"]
            .as_str()
            .and_then(|x| x.parse().ok())
            .unwrap_or(f64::NAN);
        outln!(
            "{:<40} {:>12} {:>12} {:>10} {:>8} {:>8}  {}",
            s(&r["book"]),
            journal::decimal(eq).round_dp(2),
            r["position"]
                .as_str()
                .and_then(|x| x.parse::<f64>().ok())
                .map_or("-".into(), |x| format!("{x:.6}")),
            r["target"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.3}")),
            s(&r["volatility"]),
            s(&r["sentiment"]),
            match &r["paused"] {
                Value::String(x) => format!("paused: {x}"),
                _ => "trading".into(),
            }
        );
    }
    let pct = |v: &Value| {
        v.as_str()
            .and_then(|x| x.parse::<f64>().ok())
            .map_or("?".into(), |x| format!("{:+.2} %", 100.0 * x))
    };
    for l in &lifecycle {
        let c = &l["check"];
        outln!(
            "{}: {:.1} days on {}, return {} (replay {}), Sharpe {:.2} vs validation {}{}",
            l["strategy"].as_str().unwrap_or("?"),
            c["days"].as_f64().unwrap_or(0.0),
            mode.name(),
            pct(&c["paper_return"]),
            pct(&c["replay_return"]),
            c["sharpe"].as_f64().unwrap_or(0.0),
            c["validation_sharpe"]
                .as_f64()
                .map_or("-".into(), |v| format!("{v:.2}")),
            match c["verdict"].as_str() {
                Some("retire") => format!(" | RETIRED: {}", c["reason"].as_str().unwrap_or("")),
                _ if c["eligible"] == Value::Bool(true) => " | eligible for live".into(),
                _ => String::new(),
            }
        );
    }
    if let Some(b) = last_breach {
        outln!("risk breaches so far: {} (last: {})", breaches.len(), b);
    }
    for c in pending {
        outln!(
            "pending request: {} {} ({})",
            c.action,
            c.book.as_deref().unwrap_or("all"),
            c.reason
        );
    }
    Ok(())
}

/// Every bar the exchange has closed after `after` (open time) for `coin`, oldest first: pages
/// of `candleSnapshot` until nothing newer comes; the newest bar returned is the one still
/// forming and is left out.
async fn closed_bars_after(
    info: &InfoClient,
    coin: &str,
    interval: &str,
    iv: i64,
    after: i64,
) -> Result<Vec<organism::exchange::hyperliquid::Candle>> {
    let mut out: Vec<organism::exchange::hyperliquid::Candle> = Vec::new();
    let mut start = after + iv;
    loop {
        let mut page = info
            .candle_snapshot(coin, interval, start, i64::MAX / 4)
            .await
            .with_context(|| {
                format!(
                    "fetching {coin} {interval} candles from {}",
                    format_ts(start)
                )
            })?;
        page.sort_by_key(|c| c.t);
        page.retain(|c| c.t >= start && (c.t - after) % iv == 0);
        let Some(last) = page.last().map(|c| c.t) else {
            break;
        };
        out.extend(page);
        start = last + iv;
    }
    out.pop();
    Ok(out)
}

/// Appends `bars` to `store` with the funding events of their hours (fetched once).
async fn store_bars(
    info: &InfoClient,
    store: &mut CandleStore,
    coin: &str,
    iv: i64,
    bars: &[organism::exchange::hyperliquid::Candle],
) -> Result<()> {
    let (Some(first), Some(last)) = (bars.first(), bars.last()) else {
        return Ok(());
    };
    let mut funding = Vec::new();
    let mut from = first.t;
    let end = last.t + iv - 1;
    loop {
        let page = match info.funding_history(coin, from, Some(end)).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(
                    coin,
                    "funding history unavailable ({e}); these bars carry no funding"
                );
                break;
            }
        };
        let Some(newest) = page.iter().map(|f| f.time).max() else {
            break;
        };
        funding.extend(page.into_iter().filter(|f| f.time >= from && f.time <= end));
        if newest >= end || newest < from {
            break;
        }
        from = newest + 1;
    }
    funding.sort_by_key(|f| f.time);
    funding.dedup_by_key(|f| f.time);
    let mut k = 0;
    for c in bars {
        if store.candles().ts.last().is_some_and(|&l| c.t <= l) {
            continue;
        }
        while k < funding.len() && funding[k].time < c.t + iv {
            let f = funding[k];
            let after_last = store_last_funding(store).is_none_or(|l| f.time > l);
            if f.time >= c.t && after_last {
                store.append_funding(f.time, f.rate)?;
            }
            k += 1;
        }
        let missing = store.append_bar(c.t, c.open, c.high, c.low, c.close, c.volume)?;
        if missing > 0 {
            tracing::warn!(
                coin,
                missing,
                "bars before {} could not be had",
                format_ts(c.t)
            );
        }
    }
    Ok(())
}

fn store_last_funding(store: &CandleStore) -> Option<i64> {
    store.market().funding.ts.last().copied()
}

/// Each coin's stored bars up to and including `ts`.
fn histories_upto(stores: &BTreeMap<String, CandleStore>, ts: i64) -> BTreeMap<String, Market> {
    let fg = stores
        .values()
        .next()
        .and_then(|s| s.file().parent()?.parent().map(|d| d.join(FEAR_GREED_FILE)))
        .filter(|f| f.exists())
        .and_then(|f| match load_fear_greed(&f) {
            Ok(fg) => Some(fg),
            Err(e) => {
                tracing::warn!("{e}; no sentiment regime for this bar");
                None
            }
        });
    stores
        .iter()
        .map(|(c, s)| {
            let mut m = s.market();
            if let Some(fg) = &fg {
                m = m.with_fear_greed(fg);
            }
            let k = m.candles.ts.partition_point(|&t| t <= ts);
            let h = if k == m.candles.len() {
                m
            } else {
                m.slice(0..k)
            };
            (c.clone(), h)
        })
        .collect()
}

/// Writes the live Fear & Greed index into the store folder (kept as it was when the index
/// cannot be had).
async fn refresh_fear_greed(url: &str, dir: &std::path::Path) {
    match organism::exchange::sentiment::fetch_fear_greed(url).await {
        Ok(rows) => {
            let path = dir.join(FEAR_GREED_FILE);
            if let Err(e) = write_atomic(&path, fear_greed_to_csv(&rows).as_bytes()) {
                tracing::warn!("{}: {e}", path.display());
            }
        }
        Err(e) => tracing::warn!("Fear & Greed index unavailable ({e}); keeping the stored one"),
    }
}

/// Where the session stands, one line.
fn status_line(session: &Session, rows: &[journal::Entry]) -> String {
    let p = rows
        .iter()
        .rev()
        .find(|e| e.book == PORTFOLIO && e.kind == Kind::Equity);
    let eq = p.and_then(|e| e.body["equity"].as_str()).unwrap_or("?");
    let fills = rows.iter().filter(|e| e.kind == Kind::Fill).count();
    let paused = session
        .books()
        .iter()
        .filter(|b| {
            rows.iter().rev().any(|e| {
                e.kind == Kind::Equity && e.book == b.spec.key() && !e.body["paused"].is_null()
            })
        })
        .count();
    let eqd: f64 = eq.parse().unwrap_or(f64::NAN);
    format!(
        "bar {} | equity {} | {} books, {} paused | {} fills{}",
        format_ts(session.last_ts().unwrap_or(0)),
        journal::decimal(eqd).round_dp(2),
        session.books().len(),
        paused,
        fills,
        if session.killed() { " | STOPPED" } else { "" }
    )
}

/// `paper run`, and `live run` with `mode` live: the same session and loop.
pub fn run_session(a: RunArgs, mode: Mode) -> Result<()> {
    let (cfg, reg_path) = a.at.load_mode(mode)?;
    if !reg_path.exists() {
        bail!(
            "{}: no registry yet; `organism promote` creates it",
            reg_path.display()
        );
    }
    let mut reg = Registry::open(&reg_path)?;
    let scfg = SessionConfig::of(&cfg);
    let p = cfg.paper.clone();
    let account = p.account.clone();
    let iv = scfg.interval_ms;
    let interval: Interval = p
        .interval
        .parse()
        .map_err(|m: String| anyhow::anyhow!("paper.interval: {m}"))?;
    let strategies = match mode {
        Mode::Paper => {
            let mut v = reg.list(Some(Status::Paper))?;
            v.extend(reg.list(Some(Status::Promoted))?);
            v.sort_by(|x, y| x.id.cmp(&y.id));
            if v.is_empty() {
                bail!(
                    "{}: no promoted strategy to trade; `organism promote` admits them",
                    reg_path.display()
                );
            }
            v
        }
        Mode::Live { .. } => {
            let paper_account = a.at.load()?.0.paper.account;
            super::live::strategies(&mut reg, &cfg, &paper_account)?
        }
    };
    let (specs, reserve) = book_specs(&strategies, &cfg).map_err(anyhow::Error::msg)?;
    for s in strategies
        .iter()
        .filter(|s| s.status == Status::Promoted && mode == Mode::Paper)
    {
        reg.set_status(
            &s.id,
            Status::Paper,
            &format!("paper trading in account `{account}`"),
            now_ms(),
        )?;
    }
    let url = cfg.api_url(a.api_url.as_deref());
    let (weight_per_minute, timeouts) = (cfg.exchange.weight_per_minute, cfg.timeouts());
    let (cfg_regime_on, sentiment_url) = (cfg.regime.enabled, cfg.exchange.sentiment_url.clone());
    let store_dir = PathBuf::from(&p.store);
    let stop_file = PathBuf::from(&p.stop_file);
    super::data::runtime()?.block_on(async move {
        let info = std::sync::Arc::new(InfoClient::with_timeouts(
            &url,
            RetryPolicy::default(),
            weight_per_minute,
            timeouts,
        )?);
        let rig = match mode {
            Mode::Live { dry_run } => Some(super::live::rig(&cfg, &reg_path, &url, info.clone(), dry_run).await?),
            Mode::Paper => None,
        };
        let mut stores = BTreeMap::new();
        for c in &p.coins {
            let coin = Coin::new(c).map_err(anyhow::Error::msg)?;
            let s = CandleStore::open(&store_dir, &coin, interval)?;
            for note in &s.notes {
                tracing::warn!("{note}");
            }
            stores.insert(c.clone(), s);
        }
        // The sentiment regime reads the index of the day before each bar; it is refreshed at
        // the start and once a UTC day.
        let sentiment = cfg_regime_on.then(|| sentiment_url.clone());
        let mut fg_day = None;
        if let Some(u) = &sentiment {
            refresh_fear_greed(u, &store_dir).await;
            fg_day = Some(now_ms().div_euclid(86_400_000));
        }
        let everything = |stores: &BTreeMap<String, CandleStore>| histories_upto(stores, i64::MAX);
        let restored = Session::restore(reg.connection(), &account, scfg, specs.clone(), &everything(&stores))?;
        let mut session = match restored {
            Some(s) => {
                tracing::info!(account, "continuing the session from the journal at bar {}", format_ts(s.last_ts().unwrap_or(0)));
                s
            }
            None => {
                for (coin, store) in stores.iter_mut() {
                    // A warm-up cut short by a crash is completed up to the exchange's last
                    // closed bar before the session starts.
                    let bars = match store.candles().ts.last() {
                        Some(&last) => closed_bars_after(&info, coin, &p.interval, iv, last).await?,
                        None => {
                            let after = now_ms() - (p.warmup_bars as i64 + 2) * iv;
                            let after = after.div_euclid(iv) * iv;
                            let bars = closed_bars_after(&info, coin, &p.interval, iv, after).await?;
                            let keep = bars.len().saturating_sub(p.warmup_bars);
                            bars[keep..].to_vec()
                        }
                    };
                    store_bars(&info, store, coin, iv, &bars).await?;
                }
                let (s, rows) = Session::start(&account, scfg, specs, reserve, &everything(&stores));
                journal::append(reg.connection(), &account, &rows, now_ms())?;
                tracing::info!(account, books = s.books().len(), "paper session started after {} warm-up bars", p.warmup_bars);
                s
            }
        };
        if let Some(r) = &rig {
            session.link(r.executor.clone());
        }
        sync_registry(&mut reg, &session, mode)?;
        // Bars closed while the runner was away.
        for (coin, store) in stores.iter_mut() {
            let after = store.candles().ts.last().copied().unwrap_or(now_ms());
            let bars = closed_bars_after(&info, coin, &p.interval, iv, after).await?;
            store_bars(&info, store, coin, iv, &bars).await?;
        }
        let subs: Vec<Subscription> = p
            .coins
            .iter()
            .map(|c| Subscription::Candle { coin: c.clone(), interval: p.interval.clone() })
            .collect();
        let mut fc = FeedConfig::new(ws::ws_url(&url), subs);
        fc.resume_from = stores
            .iter()
            .filter_map(|(c, s)| s.candles().ts.last().map(|&t| ((c.clone(), p.interval.clone()), t)))
            .collect();
        let mut feed = ws::spawn(fc, info.clone(), std::sync::Arc::new(WallClock));
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut waiting_since: Option<(i64, i64)> = None;
        let wait_ms = p.bar_wait_secs * 1000.0;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let done = |s: &Session| a.until_ts.is_some_and(|u| s.last_ts().is_some_and(|l| l >= u));
        loop {
            // Every bar that all coins have (or that waited long enough), in time order.
            loop {
                if done(&session) {
                    break;
                }
                let last = session.last_ts().unwrap_or(i64::MIN);
                let next = stores
                    .values()
                    .filter_map(|s| {
                        let ts = &s.candles().ts;
                        ts.get(ts.partition_point(|&t| t <= last)).copied()
                    })
                    .min();
                let Some(next) = next else { break };
                let lagging = stores.values().any(|s| s.candles().ts.last().is_none_or(|&l| l < next));
                if lagging {
                    let since = match waiting_since {
                        Some((t, at)) if t == next => at,
                        _ => {
                            waiting_since = Some((next, now_ms()));
                            now_ms()
                        }
                    };
                    if ((now_ms() - since) as f64) < wait_ms {
                        break;
                    }
                }
                if let Some(u) = &sentiment {
                    let day = now_ms().div_euclid(86_400_000);
                    if fg_day != Some(day) {
                        refresh_fear_greed(u, &store_dir).await;
                        fg_day = Some(day);
                    }
                }
                let h = histories_upto(&stores, next);
                let rows = session.on_bar(next, &h);
                journal::append(reg.connection(), &account, &rows, now_ms())?;
                sync_registry(&mut reg, &session, mode)?;
                if !a.quiet {
                    eprintln!("{}", status_line(&session, &rows));
                }
            }
            if let Some(r) = &rig {
                // Reconciliation (first once the bars missed are processed) and the dead-man's switch.
                let rows = r.tend(&mut session, reg.connection()).await?;
                if !rows.is_empty() {
                    journal::append(reg.connection(), &account, &rows, now_ms())?;
                }
            }
            if done(&session) {
                tracing::info!(account, "reached --until-ts; stopping");
                break;
            }
            // The kill switch and resume requests.
            let mut requests = journal::pending(reg.connection(), &account)?;
            if stop_file.exists() {
                requests.push(journal::Control {
                    id: -1,
                    action: "stop".into(),
                    book: None,
                    reason: format!("stop file {}", stop_file.display()),
                });
            }
            let mut stop = false;
            for r in requests {
                let h = everything_processed(&stores, &session);
                let rows = if r.action == "stop" {
                    stop = true;
                    let mut rows = session.kill(&r.reason, &h);
                    if let Some(live) = &rig {
                        rows.extend(live.cancel_all(&session).await);
                    }
                    rows
                } else {
                    session.resume(r.book.as_deref(), &r.reason, &h)
                };
                let done_ids: Vec<i64> = [r.id].into_iter().filter(|&i| i >= 0).collect();
                journal::append_acting_on(reg.connection(), &account, &rows, &done_ids, now_ms())?;
                if r.id < 0 {
                    std::fs::remove_file(&stop_file).with_context(|| format!("{}: cannot remove after acting on it", stop_file.display()))?;
                }
                if stop {
                    break;
                }
            }
            if stop {
                outln!(
                    "kill switch: every position flattened; the session is stopped (organism {m} resume, then {m} run, to trade again)",
                    m = mode.name()
                );
                break;
            }
            tokio::select! {
                ev = feed.events.recv() => match ev {
                    Some(FeedEvent::Candle { coin, candle, .. }) => {
                        if session.last_ts().is_some_and(|l| candle.t <= l) {
                            tracing::warn!(coin, "bar {} arrived after the session moved past it; dropped", format_ts(candle.t));
                        } else if let Some(store) = stores.get_mut(&coin) {
                            store_bars(&info, store, &coin, iv, &[candle]).await?;
                        }
                    }
                    Some(FeedEvent::Malformed(m)) => tracing::warn!("feed: skipped a message: {m}"),
                    Some(FeedEvent::Reconnected(n)) => tracing::info!("feed reconnected ({n} so far)"),
                    Some(_) => {}
                    None => bail!("the market feed stopped"),
                },
                _ = tick.tick() => {}
                _ = &mut ctrl_c => {
                    tracing::info!("interrupted; the journal holds every processed bar");
                    break;
                }
            }
        }
        feed.stop();
        Ok(())
    })
}

/// Retires in the registry the strategies the session's lifecycle retired (again after a
/// crash between the journal and the registry: the journal decides).
fn sync_registry(reg: &mut Registry, session: &Session, mode: Mode) -> Result<()> {
    for (id, reason) in session.retired() {
        if reg.get(&id)?.status != Status::Retired {
            reg.set_status(
                &id,
                Status::Retired,
                &format!("{}: {reason}", mode.name()),
                now_ms(),
            )?;
            tracing::warn!(strategy = id, "retired: {reason}");
            outln!("retired {id}: {reason}");
        }
    }
    Ok(())
}

/// Each coin's bars up to the last one the session processed.
fn everything_processed(
    stores: &BTreeMap<String, CandleStore>,
    s: &Session,
) -> BTreeMap<String, Market> {
    histories_upto(stores, s.last_ts().unwrap_or(i64::MIN))
}
