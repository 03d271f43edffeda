//! `organism backtest`: one strategy on one coin, a metrics table (or JSON), optional trade and
//! equity files.

use std::{fmt::Write as _, path::PathBuf};

use anyhow::{bail, Context, Result};
use organism::{
    backtest::run as simulate,
    execution::FillMode,
    fitness::Metrics,
    market::csv::write_atomic,
    seeds::{self, Prepared},
};

use super::{format_ts, load_data, DataArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Coin to trade (default: backtest.coin, or the only coin of a single file).
    #[arg(long)]
    pub coin: Option<String>,
    /// Seed strategy to run (see `organism seeds`).
    #[arg(long, default_value = "ema_crossover")]
    pub seed: String,
    /// Set a gene, e.g. `--set period=30 --set stop_kind=atr` (repeatable; applied last).
    #[arg(long = "set", value_name = "GENE=VALUE")]
    pub set: Vec<String>,
    /// EMA crossover: fast EMA period (gene `fast`).
    #[arg(long)]
    pub fast: Option<String>,
    /// EMA crossover: slow EMA period (gene `slow`).
    #[arg(long)]
    pub slow: Option<String>,
    /// Long only: no short positions (gene `direction=long`).
    #[arg(long)]
    pub long_only: bool,
    /// Fixed stop at entry this many ATRs from the entry bar's close (genes `stop_kind=atr`,
    /// `stop_value`).
    #[arg(long, value_name = "MULT", allow_hyphen_values = true)]
    pub atr_stop: Option<String>,
    /// ATR period of the stop (gene `risk_atr_period`).
    #[arg(long, value_name = "P")]
    pub atr_period: Option<String>,
    /// Taker fee as a fraction (overrides costs.taker_fee).
    #[arg(long, allow_negative_numbers = true)]
    pub fee: Option<f64>,
    /// Slippage as a fraction (overrides costs.slippage).
    #[arg(long, allow_negative_numbers = true)]
    pub slippage: Option<f64>,
    /// Starting cash (overrides backtest.cash).
    #[arg(long, allow_negative_numbers = true)]
    pub cash: Option<f64>,
    /// next-open or close (overrides backtest.fill).
    #[arg(long, value_name = "next-open|close")]
    pub fill: Option<FillMode>,
    /// Print the metrics as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write the trade list as CSV.
    #[arg(long, value_name = "FILE")]
    pub trades: Option<PathBuf>,
    /// Write the equity curve as CSV.
    #[arg(long, value_name = "FILE")]
    pub equity: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let mut cfg = args.data.config()?;
    if let Some(f) = args.fee {
        cfg.costs.taker_fee = f;
    }
    if let Some(s) = args.slippage {
        cfg.costs.slippage = s;
    }
    if let Some(c) = args.cash {
        cfg.backtest.cash = c;
    }
    let mut bt = cfg.backtest_config();
    if let Some(f) = args.fill {
        bt.fill = f;
    }
    check_range("--fee", bt.fee, 0.0, 0.01)?;
    check_range("--slippage", bt.slippage, 0.0, 0.05)?;
    check_range("--cash", bt.cash, 1e-6, 1e15)?;
    let entry = seeds::find(&args.seed).map_err(anyhow::Error::msg)?;
    let spec = &entry.spec;
    let mut genome = spec.default_genome();
    let mut sets: Vec<(String, String)> = Vec::new();
    if (args.fast.is_some() || args.slow.is_some()) && spec.name != "ema_crossover" {
        bail!(
            "--fast and --slow belong to ema_crossover; use --set for seed {}",
            spec.name
        );
    }
    for (gene, v) in [
        ("fast", &args.fast),
        ("slow", &args.slow),
        ("risk_atr_period", &args.atr_period),
    ] {
        if let Some(v) = v {
            sets.push((gene.into(), v.clone()));
        }
    }
    if args.long_only {
        sets.push(("direction".into(), "long".into()));
    }
    if let Some(m) = &args.atr_stop {
        sets.push(("stop_kind".into(), "atr".into()));
        sets.push(("stop_value".into(), m.clone()));
    }
    for s in &args.set {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("--set {s}: expected GENE=VALUE"))?;
        sets.push((k.trim().into(), v.trim().into()));
    }
    for (k, v) in &sets {
        spec.set(&mut genome, k, v)?;
    }
    // Only the traded coin is loaded from a data directory.
    let dir_data = !cfg.data.path.is_empty() && std::path::Path::new(&cfg.data.path).is_dir();
    if dir_data || cfg.data.path.is_empty() {
        let coin = args
            .coin
            .clone()
            .unwrap_or_else(|| cfg.backtest.coin.clone());
        cfg.data.coins = vec![coin];
    }
    let universe = load_data(&cfg)?;
    let market: &organism::market::Market = match (&args.coin, universe.markets.len()) {
        (None, 1) => &universe.markets[0],
        (coin, _) => {
            let coin = coin.as_deref().unwrap_or(&cfg.backtest.coin);
            universe.market(coin).with_context(|| {
                format!(
                    "coin {coin} is not in {} (coins: {}); choose one with --coin",
                    universe.origin,
                    universe.coins().join(", ")
                )
            })?
        }
    };
    let prepared = Prepared::new(market.clone());
    let targets = entry.targets(&genome, &prepared);
    let c = &market.candles;
    let report = simulate(c, &market.funding_per_bar, &targets, &bt);
    let m = Metrics::compute(&report, &c.ts, c.bars_per_year());
    if let Some(path) = &args.trades {
        let mut s = String::from(
            "side,entry_time_ms,entry_price,exit_time_ms,exit_price,size,fees,funding,pnl,exit_reason\n",
        );
        for t in &report.trades {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{}",
                t.side.as_str(),
                t.entry_ts,
                t.entry_price,
                t.exit_ts,
                t.exit_price,
                t.size,
                t.fees,
                t.funding,
                t.pnl,
                t.exit_reason.as_str()
            );
        }
        write_atomic(path, s.as_bytes())?;
    }
    if let Some(path) = &args.equity {
        let mut s = String::from("timestamp_ms,equity\n");
        for (ts, v) in c.ts.iter().zip(&report.equity) {
            let _ = writeln!(s, "{ts},{v}");
        }
        write_atomic(path, s.as_bytes())?;
    }
    if args.json {
        outln!("{}", serde_json::to_string(&m)?);
        return Ok(());
    }
    let genes: Vec<String> = spec
        .genes
        .iter()
        .zip(&genome)
        .map(|(g, v)| format!("{}={}", g.name, g.format_short(*v)))
        .collect();
    outln!(
        "{} [{}], fill {}",
        spec.name,
        genes.join(" "),
        match bt.fill {
            FillMode::NextOpen => "next-open",
            FillMode::Close => "close",
        }
    );
    outln!(
        "{} on {}: {} bars, {} -> {} UTC",
        market.coin,
        universe.origin,
        c.len(),
        format_ts(c.ts[0]),
        format_ts(c.ts[c.len() - 1])
    );
    outln!(
        "costs: fee {:.4} %, slippage {:.4} %, funding {}, cash {}",
        bt.fee * 100.0,
        bt.slippage * 100.0,
        if bt.funding { "on" } else { "off" },
        bt.cash
    );
    outln!();
    let pct = |v: f64| format!("{:.2} %", v * 100.0);
    let rows = [
        ("total return", pct(m.total_return)),
        ("final equity", format!("{:.2}", m.final_equity)),
        ("sharpe", format!("{:.3}", m.sharpe)),
        ("sortino", format!("{:.3}", m.sortino)),
        ("max drawdown", pct(m.max_drawdown)),
        ("consistency", pct(m.consistency)),
        ("turnover", format!("{:.1} entries/yr", m.turnover)),
        ("trades", m.trades.to_string()),
        ("closed trades", m.closed_trades.to_string()),
        ("win rate", pct(m.win_rate)),
        ("profit factor", format!("{:.3}", m.profit_factor)),
        ("exposure", pct(m.exposure)),
    ];
    for (k, v) in rows {
        outln!("{k:<15}{v:>20}");
    }
    Ok(())
}

fn check_range(flag: &str, v: f64, lo: f64, hi: f64) -> Result<()> {
    if !(v.is_finite() && v >= lo && v <= hi) {
        bail!("{flag} {v} is out of range: must be in [{lo}, {hi}]");
    }
    Ok(())
}
