//! `organism paper run | replay | status | stop | resume`: paper trading of the promoted
//! strategies (see `organism::runner::paper`).

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{bail, Result};
use organism::{
    backtest::{equity_csv, trades_csv},
    clock::{Clock, WallClock},
    config::Config,
    market::{csv::write_atomic, timerange::TimeRange},
    promotion::registry::Registry,
    runner::journal::{self, Action, BreachRow, EquityRow, Kind, LifecycleRow, Row, PORTFOLIO},
    runner::{
        driver::{self, Mode, Notice},
        feed::{self, RunSetup},
        paper::{regime_of, replay, BookSpec, Lifecycle, Limits, SessionConfig},
    },
    seeds::Genome,
    serve::alerts,
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
    c.paper = c.paper.with_live(&l);
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

    pub(crate) fn open_existing(&self) -> Result<(Config, Registry)> {
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

impl ReplayArgs {
    /// `--from` / `--to` as a time range (`None` when neither is given).
    pub fn timerange(&self) -> Result<Option<TimeRange>> {
        if self.from.is_none() && self.to.is_none() {
            return Ok(None);
        }
        let text = format!(
            "{}-{}",
            self.from.as_deref().unwrap_or(""),
            self.to.as_deref().unwrap_or("")
        );
        TimeRange::parse(&text)
            .map(Some)
            .map_err(|m| anyhow::anyhow!("--from/--to: {}", m.trim_start_matches("--timerange ")))
    }

    /// `--cash`, held to `backtest.cash`'s range.
    pub fn cash(&self) -> Result<Option<f64>> {
        if let Some(c) = self.cash {
            // Held to backtest.cash's range.
            Config::load_with(
                None,
                &[organism::config::Flag::new("--cash", "backtest.cash", c)],
            )?;
        }
        Ok(self.cash)
    }
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
        PaperCommand::Stop(a) => control(a, Action::Stop, Mode::Paper),
        PaperCommand::Resume(a) => control(a, Action::Resume, Mode::Paper),
    }
}

fn now_ms() -> i64 {
    WallClock.now_ms()
}

fn run_replay(a: ReplayArgs) -> Result<()> {
    let cfg = a.data.config()?;
    a.cash()?;
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
            let origin = format!("registry strategy {}", s.id);
            let g = Genome::from_toml(&s.genome, &origin).map_err(anyhow::Error::msg)?;
            (g, Some(s.clone()), s.id)
        }
        (None, Some(f)) => (super::runs::read_genome(f)?, None, f.display().to_string()),
        (None, None) => bail!("give --strategy ID or --genome FILE"),
    };
    if let Genome::Portfolio(g) = &genome {
        return super::portfolio::replay(&a, &cfg, g, strategy.as_ref(), &label);
    }
    let genome = genome.single_coin(&label).map_err(anyhow::Error::msg)?;
    let mut sel = cfg.data_selection();
    let coin = a.coin.clone().unwrap_or_else(|| cfg.backtest.coin.clone());
    sel.coins = vec![coin.clone()];
    if let Some(t) = a.timerange()? {
        sel.timerange = Some(t);
    }
    let universe = load_data(&sel)?;
    let Some(market) = universe
        .markets
        .iter()
        .find(|m| m.coin.eq_ignore_ascii_case(&coin))
    else {
        bail!("coin {coin} is not in {}", universe.origin);
    };
    let run = cfg.run();
    let mut scfg = SessionConfig::of(&run);
    if let Some(c) = a.cash()? {
        scfg.engine.cash = c;
    }
    // A replay is the backtest through the paper session: no risk limits.
    scfg.book_limits = Limits::NONE;
    scfg.portfolio_limits = Limits::NONE;
    scfg.lifecycle = Lifecycle::NONE;
    if let Some(iv) = market.candles.interval_ms() {
        scfg.interval_ms = iv;
    }
    let regime = regime_of(&run, a.regime || cfg.regime.enabled, strategy.as_ref())
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
        None => organism::store::open_in_memory()?,
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

pub fn control(a: ControlArgs, action: Action, mode: Mode) -> Result<()> {
    let (cfg, reg) = a.at.open_existing_mode(mode)?;
    if action == Action::Stop && a.strategy.is_some() {
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
        Action::Stop => outln!(
            "kill switch filed for account `{}`: the running session flattens everything and stops \
             (a session that is not running does it when it starts)",
            cfg.paper.account
        ),
        Action::Resume => outln!(
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
    let dry_run = matches!(mode, Mode::Live { dry_run: true });
    let Some(last) = journal::latest(conn, &account, PORTFOLIO, Kind::Equity)? else {
        // A live account with no session of its own may have a dry run's.
        let dry = format!("{account}-dry-run");
        let has_dry = matches!(mode, Mode::Live { dry_run: false })
            && journal::latest(conn, &dry, PORTFOLIO, Kind::Equity)?.is_some();
        if a.json {
            outln!(
                "{}",
                json!({"account": account, "session": null, "dry_run_session": has_dry.then_some(dry)})
            );
        } else {
            outln!(
                "no {} session in account `{account}` yet; start one with `organism {} run{}`",
                mode.name(),
                mode.name(),
                if dry_run { " --dry-run" } else { "" }
            );
            if has_dry {
                outln!("a dry run's session is in account `{dry}`: organism live status --dry-run");
            }
        }
        return Ok(());
    };
    let last_bar_ms = last.bar_ts;
    let Row::Equity(EquityRow::Portfolio(p)) = last.row else {
        bail!("journal of `{account}`: its last portfolio equity row is a book's");
    };
    let venue = journal::venue_of(conn, &account)?;
    let session = match journal::latest(conn, &account, PORTFOLIO, Kind::Session)?.map(|e| e.row) {
        Some(Row::Session(s)) => Some(s),
        _ => None,
    };
    let capital = session.as_ref().map_or(f64::NAN, |s| s.capital.0);
    let books: Vec<String> = session
        .as_ref()
        .map(|s| s.books.iter().map(|b| b.book.clone()).collect())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for b in &books {
        let eq = match journal::latest(conn, &account, b, Kind::Equity)?.map(|e| e.row) {
            Some(Row::Equity(EquityRow::Book(e))) => Some(e),
            _ => None,
        };
        let dec = match journal::latest(conn, &account, b, Kind::Decision)?.map(|e| e.row) {
            Some(Row::Decision(d)) => Some(d),
            _ => None,
        };
        rows.push(json!({
            "book": b,
            "equity": eq.as_ref().map(|e| e.equity),
            "position": eq.as_ref().map(|e| e.position),
            "close": eq.as_ref().map(|e| e.close),
            "paused": eq.as_ref().map(|e| e.paused.clone()),
            "peak": eq.as_ref().map(|e| e.state.risk.peak),
            "volatility": dec.as_ref().map(|d| d.volatility.clone()),
            "sentiment": dec.as_ref().map(|d| d.sentiment.clone()),
            "target": dec.as_ref().map(|d| d.target.position),
        }));
    }
    let equity = p.equity.0;
    // Each strategy's latest lifecycle check (the rows of a strategy's book, in strategy order).
    let mut latest_check: BTreeMap<String, (i64, LifecycleRow)> = BTreeMap::new();
    for e in journal::of_kind(conn, &account, Kind::Lifecycle)? {
        if let Row::Lifecycle(l) = e.row {
            latest_check.insert(e.book, (e.bar_ts, l));
        }
    }
    let lifecycle: Vec<Value> = latest_check
        .into_iter()
        .map(|(st, (at_ms, check))| json!({"strategy": st, "at_ms": at_ms, "check": check}))
        .collect();
    let pending = journal::pending(conn, &account)?;
    let breaches = journal::of_kind(conn, &account, Kind::Breach)?;
    let last_breach = breaches.last().map(|b| match &b.row {
        Row::Breach(BreachRow::Book { reason, .. } | BreachRow::Portfolio { reason, .. }) => {
            json!(reason)
        }
        _ => Value::Null,
    });
    if a.json {
        outln!(
            "{}",
            json!({
                "account": account, "dry_run": dry_run, "venue": venue.as_ref().map(|v| v.0.clone()),
                "last_bar_ms": last_bar_ms, "equity": p.equity,
                "capital": session.as_ref().map(|s| s.capital),
                "gross": p.gross, "killed": p.killed,
                "portfolio_paused": p.state.risk.pause,
                "book_limits": session.as_ref().map(|s| s.book_limits),
                "portfolio_limits": session.as_ref().map(|s| s.portfolio_limits),
                "books": rows, "lifecycle": lifecycle, "breaches": breaches.len(), "last_breach": last_breach,
                "pending_requests": pending.iter().map(|c| json!({"action": c.action.as_str(), "book": c.book, "reason": c.reason})).collect::<Vec<_>>(),
            })
        );
        return Ok(());
    }
    outln!(
        "{}{} account `{account}`{}: last bar {} | equity {} ({:+.2} % on {}) | gross {}{}",
        mode.name(),
        if dry_run { " DRY RUN" } else { "" },
        venue
            .as_ref()
            .map_or(String::new(), |v| format!(" on {}", v.0)),
        format_ts(last_bar_ms),
        journal::decimal(equity).round_dp(2),
        100.0 * (equity / capital - 1.0),
        journal::decimal(capital).round_dp(2),
        format!("{:.2}", p.gross.0),
        if p.killed {
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
            c.action.as_str(),
            c.book.as_deref().unwrap_or("all"),
            c.reason
        );
    }
    Ok(())
}

/// `paper run`, and `live run` with `mode` live: the same session and loop
/// ([`organism::runner::feed::run`]).
pub fn run_session(a: RunArgs, mode: Mode) -> Result<()> {
    let (cfg, reg_path) = a.at.load_mode(mode)?;
    if !reg_path.exists() {
        bail!(
            "{}: no registry yet; `organism promote` creates it",
            reg_path.display()
        );
    }
    let mut reg = Registry::open(&reg_path)?;
    let paper_account = match mode {
        Mode::Paper => cfg.paper.account.clone(),
        Mode::Live { .. } => a.at.load()?.0.paper.account,
    };
    let run = cfg.run();
    let strategies = driver::strategies(&mut reg, &reg_path, mode, &run, &paper_account)?;
    let url = cfg.exchange.api_url(a.api_url.as_deref());
    // Even with -q: what is about to trade, where and with what money.
    eprintln!("{}", banner(mode, &cfg, &reg_path, &strategies, &url));
    let quiet = a.quiet;
    let mut report = |n: Notice| match n {
        Notice::Bar(line) if !quiet => eprintln!("{line}"),
        Notice::Bar(_) => {}
        Notice::Say(line) => outln!("{line}"),
        Notice::Note(line) => eprintln!("{line}"),
    };
    let mut setup = RunSetup {
        mode,
        cfg: &run,
        reg,
        reg_path: &reg_path,
        strategies,
        url: &url,
        until_ts: a.until_ts,
    };
    let targets = cfg.alerts.targets().map_err(anyhow::Error::msg)?;
    let rt = super::data::runtime()?;
    if targets.is_empty() {
        rt.block_on(feed::run(setup, &mut report))?;
        return Ok(());
    }
    // Alerts from the journal, on a task of their own; a last round once the session ends.
    alerts::register(setup.reg.connection(), &targets)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sender = rt.spawn(alerts::run(
        reg_path.clone(),
        cfg.alerts.clone(),
        targets,
        std::sync::Arc::new(WallClock),
        stopped,
    ));
    let outcome = rt.block_on(feed::run(setup, &mut report));
    let _ = stop.send(true);
    let wait = cfg.alerts.last_wait();
    if rt
        .block_on(async { tokio::time::timeout(wait, sender).await })
        .is_err()
    {
        eprintln!("alerts: the last ones were not all sent; the next run sends them");
    }
    outcome?;
    Ok(())
}

/// What a session is about to do, before it starts: the mode (DRY RUN, real money), the
/// strategies, coins and capital, the venue, where the journal and the candles are, and how to
/// stop it.
fn banner(
    mode: Mode,
    cfg: &Config,
    reg_path: &std::path::Path,
    strategies: &[organism::promotion::registry::Strategy],
    url: &str,
) -> String {
    let p = &cfg.paper;
    let m = mode.name();
    let what = match mode {
        Mode::Paper => "paper session (simulated fills, no orders sent)".to_string(),
        Mode::Live { dry_run: true } => {
            "live DRY RUN (orders signed and printed on stdout, never sent; filled as paper)".into()
        }
        Mode::Live { dry_run: false } => match organism::runner::driver::venue_url(url) {
            organism::exchange::hyperliquid::MAINNET_URL => {
                "LIVE session: real orders with real money on Hyperliquid mainnet".into()
            }
            organism::exchange::hyperliquid::TESTNET_URL => {
                "LIVE session: real orders on Hyperliquid's testnet (test funds)".into()
            }
            other => format!("LIVE session: real orders sent to {other} (not Hyperliquid)"),
        },
    };
    let names: Vec<String> = strategies
        .iter()
        .map(|s| format!("{} ({})", s.id, s.name))
        .collect();
    format!(
        "{what}\n  strategies: {} — {}\n  coins: {} on {} bars; capital {} USD{}\n  venue: {}\n  \
         journal: account `{}` in {}; candles in {}\n  Ctrl-C stops after the bar under way (the \
         next `organism {m} run` continues); `organism {m} stop` flattens everything and stops",
        names.len(),
        names.join(", "),
        p.coins.join(", "),
        p.interval,
        journal::decimal(p.capital).round_dp(2),
        super::leverage_text(&cfg.backtest_config()),
        organism::runner::driver::venue_url(url),
        p.account,
        reg_path.display(),
        organism::runner::driver::venue_store(std::path::Path::new(&p.store), url).display(),
    )
}
