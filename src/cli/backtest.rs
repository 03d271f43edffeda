//! `organism backtest`: one strategy on one coin, a metrics table (or JSON), optional trade and
//! equity files.

use std::{fmt::Write as _, path::PathBuf};

use anyhow::{bail, Context, Result};
use organism::{
    backtest::{run as simulate, FillMode},
    fitness::Metrics,
    market::csv::write_atomic,
    seeds::ema_crossover::EmaCrossover,
};

use super::{format_ts, load_data, DataArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Coin to trade (default: backtest.coin, or the only coin of a single file).
    #[arg(long)]
    pub coin: Option<String>,
    /// Fast EMA period of the built-in EMA crossover.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub fast: u32,
    /// Slow EMA period of the built-in EMA crossover.
    #[arg(long, default_value_t = 26, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub slow: u32,
    /// Go flat on a cross below instead of short.
    #[arg(long)]
    pub long_only: bool,
    /// Fixed stop at entry, this many ATRs from the entry bar's close.
    #[arg(long, value_name = "MULT", allow_negative_numbers = true)]
    pub atr_stop: Option<f64>,
    /// ATR period of the stop.
    #[arg(long, value_name = "P", default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub atr_period: u32,
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
    if let Some(m) = args.atr_stop {
        check_range("--atr-stop", m, 0.0, 1000.0)?;
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
    let market = match (&args.coin, universe.markets.len()) {
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
    let c = &market.candles;
    let strategy = EmaCrossover {
        fast: args.fast as usize,
        slow: args.slow as usize,
        long_only: args.long_only,
        atr_stop: args.atr_stop.map(|m| (m, args.atr_period as usize)),
    };
    let report = simulate(c, &market.funding_per_bar, &strategy.targets(c), &bt);
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
        println!("{}", serde_json::to_string(&m)?);
        return Ok(());
    }
    let side = if args.long_only {
        "long only"
    } else {
        "long/short"
    };
    let stop = match strategy.atr_stop {
        Some((mult, p)) => format!(", stop {mult} x ATR({p})"),
        None => String::new(),
    };
    println!(
        "EMA crossover {}/{} ({side}{stop}), fill {}",
        args.fast,
        args.slow,
        match bt.fill {
            FillMode::NextOpen => "next-open",
            FillMode::Close => "close",
        }
    );
    println!(
        "{} on {}: {} bars, {} -> {} UTC",
        market.coin,
        universe.origin,
        c.len(),
        format_ts(c.ts[0]),
        format_ts(c.ts[c.len() - 1])
    );
    println!(
        "costs: fee {:.4} %, slippage {:.4} %, funding {}, cash {}",
        bt.fee * 100.0,
        bt.slippage * 100.0,
        if bt.funding { "on" } else { "off" },
        bt.cash
    );
    println!();
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
        println!("{k:<15}{v:>20}");
    }
    Ok(())
}

fn check_range(flag: &str, v: f64, lo: f64, hi: f64) -> Result<()> {
    if !(v.is_finite() && v >= lo && v <= hi) {
        bail!("{flag} {v} is out of range: must be in [{lo}, {hi}]");
    }
    Ok(())
}
