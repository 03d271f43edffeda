//! `organism backtest`: one strategy (a seed with genes, a genome file, or a member of a run)
//! on one or more coins, a metrics table (or JSON), optional trade and equity files and an
//! HTML report.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use organism::{
    backtest::{equity_csv, trades_csv, BacktestReport},
    evolution::problem::{backtest_targets, Figures, Segment},
    execution::FillMode,
    fitness::{
        monthly_returns,
        regime::{figures_by_regime, RegimeFigure},
        trades::TradeStats,
        Metrics,
    },
    genome::SeedSpec,
    market::{csv::write_atomic, timerange::TimeRange, Market},
    promotion::report::{backtest_report, CoinBacktest},
    seeds::{self, Prepared},
    strategy::regime::RegimeFilter,
};

use super::{
    format_ts, load_data,
    runs::{parse_program_text, seed_spec, Genome},
    DataArgs,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Coin to trade (default: backtest.coin, or the only coin of a single file; a member's
    /// run: all its coins).
    #[arg(long, conflicts_with = "coins")]
    pub coin: Option<String>,
    /// Several coins, comma-separated, or `all`: one row per coin plus the cross-coin
    /// aggregate that evolve scores.
    #[arg(long, value_delimiter = ',')]
    pub coins: Option<Vec<String>>,
    /// A portfolio (cross-sectional) seed over a universe of coins (see `organism seeds`):
    /// one account across --coins all, top:N or a list, from --data (README: "Portfolio
    /// strategies").
    #[arg(long, value_name = "SEED", conflicts_with_all = ["strategy", "member", "program", "program_file", "genome", "coin", "segment", "regime", "trades", "fast", "slow", "long_only", "atr_stop", "atr_period"])]
    pub portfolio: Option<String>,
    /// Coins a portfolio never holds, comma-separated (added to universe.exclude).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub exclude: Vec<String>,
    /// Seed strategy to run (see `organism seeds`; `--seed` is accepted too).
    #[arg(long, alias = "seed", value_name = "NAME", conflicts_with_all = ["genome", "member", "program", "program_file"])]
    pub strategy: Option<String>,
    /// A strategy program, e.g. '(program (enter-long (gt close (ema 50))) (exit-long (lt close
    /// (ema 50))))'; `--set` sets its risk genes.
    #[arg(long, value_name = "EXPR", conflicts_with_all = ["genome", "member", "program_file"])]
    pub program: Option<String>,
    /// A file holding a strategy program.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["genome", "member"])]
    pub program_file: Option<PathBuf>,
    /// A genome file (TOML, as `organism runs export` writes it).
    #[arg(long, value_name = "FILE", conflicts_with = "member")]
    pub genome: Option<PathBuf>,
    /// A member of a run, `populations/gen42.bin:ID` or `populations/front.csv:ID` (a bare ID
    /// looks in the newest checkpoint of evolution.out). Runs on the run's data, coins and costs
    /// unless --data, --coin(s) or cost flags say otherwise.
    #[arg(long, value_name = "FILE:ID")]
    pub member: Option<String>,
    /// Only bars in this span, freqtrade's format: 20250101-20250601, 20250101- or -20250601
    /// (start inclusive, end exclusive, UTC).
    #[arg(long, value_name = "START-END", allow_hyphen_values = true)]
    pub timerange: Option<String>,
    /// Only one segment of the split evolve uses (the run's split for a member, else
    /// [evolution] train_fraction / validation_fraction).
    #[arg(long, value_name = "train|validation|holdout")]
    pub segment: Option<Segment>,
    /// Write an HTML report (price with trades, equity, drawdown, monthly returns).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
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
    /// Notional of a full-size position as a multiple of equity, 1 to 50 (overrides
    /// backtest.leverage).
    #[arg(long, value_name = "X")]
    pub leverage: Option<f64>,
    /// Maintenance margin as a fraction of notional, 0 to 0.5 (overrides
    /// backtest.maintenance_margin).
    #[arg(long, value_name = "FRACTION")]
    pub maintenance_margin: Option<f64>,
    /// Print the metrics as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Apply the regime filter ([regime] in the config) and report the Sharpe of the bars each
    /// regime decided (a member of a run evolved with --regime gets its run's filter anyway).
    #[arg(long)]
    pub regime: bool,
    /// Write the trade list as CSV.
    #[arg(long, value_name = "FILE")]
    pub trades: Option<PathBuf>,
    /// Write the equity curve as CSV.
    #[arg(long, value_name = "FILE")]
    pub equity: Option<PathBuf>,
}

/// The strategy to run (a seed, or a program with the risk genes), its genes, and the run it
/// came from.
struct Chosen {
    g: Genome,
    /// The seed's spec, or the program's risk genes.
    spec: &'static SeedSpec,
    label: String,
    run: Option<organism::evolution::checkpoint::RunSpec>,
}

impl Chosen {
    fn new(g: Genome, label: String) -> Result<Self> {
        Ok(Self {
            spec: g.spec()?,
            g,
            label,
            run: None,
        })
    }

    /// The longest look-back in bars, and what uses it.
    fn lookback(&self) -> Option<(String, usize)> {
        let own = self
            .spec
            .longest_lookback(self.g.genes())
            .map(|(g, p)| (g.to_string(), p));
        let prog = self.g.program().map(|p| {
            let n = p
                .roots
                .iter()
                .flatten()
                .map(|r| r.longest_period(&seed_spec))
                .max()
                .unwrap_or(0);
            ("a period of the program".to_string(), n)
        });
        own.into_iter().chain(prog).max_by_key(|(_, p)| *p)
    }
}

fn choose(args: &Args) -> Result<Chosen> {
    let program_text = match (&args.program, &args.program_file) {
        (Some(t), _) => Some(("--program".to_string(), t.clone())),
        (None, Some(f)) => Some((
            f.display().to_string(),
            std::fs::read_to_string(f).with_context(|| format!("{}: cannot read", f.display()))?,
        )),
        (None, None) => None,
    };
    let mut c = if let Some((origin, text)) = program_text {
        let program = parse_program_text(&text, &origin)?;
        let spec = seeds::program::risk_spec()?;
        let g = Genome::Program {
            program,
            genes: spec.default_genome(),
        };
        Chosen::new(g, String::new())?
    } else if let Some(m) = &args.member {
        let m = super::runs::resolve_member(m)?;
        let label = format!("member {} of {}", m.id, m.origin);
        Chosen {
            run: m.run,
            ..Chosen::new(m.genome, label)?
        }
    } else if let Some(path) = &args.genome {
        let g = super::runs::read_genome(path)?;
        Chosen::new(g, format!("genome {}", path.display()))?
    } else if let Some(name) = &args.portfolio {
        let g = seeds::portfolio::PortfolioGenome::of(name, &[]).map_err(anyhow::Error::msg)?;
        Chosen::new(Genome::Portfolio(g), String::new())?
    } else {
        let name = args.strategy.as_deref().unwrap_or("ema_crossover");
        let entry = seeds::find(name).map_err(anyhow::Error::msg)?;
        Chosen::new(
            Genome::seed(entry, entry.spec.default_genome()),
            String::new(),
        )?
    };
    let spec = c.spec;
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
        spec.set(c.g.genes_mut(), k, v)?;
    }
    if !sets.is_empty() && !c.label.is_empty() {
        c.label.push_str(" with --set changes");
    }
    Ok(c)
}

/// One coin's result.
struct CoinResult {
    market: Market,
    report: BacktestReport,
    metrics: Metrics,
    /// With a regime filter: `(regime, bars, Sharpe)` of the bars each regime decided.
    regimes: Option<Vec<RegimeFigure>>,
}

/// The regime filter's policy and, per coin, the Sharpe of the bars each regime decided.
fn print_regimes(results: &[CoinResult], filter: Option<&RegimeFilter>) {
    let Some(f) = filter else {
        return;
    };
    let v = &f.volatility;
    let p = &f.policy;
    outln!();
    outln!(
        "regime filter: volatility of {} bars ranked over {} (low < {}, high > {}): {} / {} / {}; \
         sentiment extreme fear / fear / greed / extreme greed: {} / {} / {} / {}",
        v.vol_window,
        v.lookback,
        v.low_quantile,
        v.high_quantile,
        p.volatility[0],
        p.volatility[1],
        p.volatility[2],
        p.sentiment[0],
        p.sentiment[1],
        p.sentiment[2],
        p.sentiment[3]
    );
    for r in results {
        let Some(g) = &r.regimes else { continue };
        let parts: Vec<String> = g
            .iter()
            .map(|f| format!("{} {:.2} ({} bars)", f.regime, f.sharpe, f.bars))
            .collect();
        outln!(
            "{}: Sharpe of the bars each regime decided: {}",
            r.market.coin,
            if parts.is_empty() {
                "no regime known yet (too few bars)".to_string()
            } else {
                parts.join(", ")
            }
        );
    }
}

fn coin_json(r: &CoinResult) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(r.metrics)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("coin".into(), r.market.coin.clone().into());
        o.insert("bars".into(), r.market.candles.len().into());
        o.insert("buy_hold".into(), serde_json::to_value(buy_hold(r))?);
        o.insert(
            "trade_stats".into(),
            serde_json::to_value(TradeStats::of(&r.report.trades))?,
        );
        if let Some(g) = &r.regimes {
            o.insert("regimes".into(), serde_json::to_value(g)?);
        }
        o.insert(
            "monthly_returns".into(),
            serde_json::to_value(monthly_returns(
                &r.report.equity,
                &r.market.candles.ts,
                r.report.cash,
            ))?,
        );
    }
    Ok(v)
}

pub fn run(args: Args) -> Result<()> {
    let chosen = choose(&args)?;
    if let Genome::Portfolio(g) = &chosen.g {
        return super::portfolio::run(&args, g, &chosen.label, chosen.run.as_ref());
    }
    if !args.exclude.is_empty() {
        bail!("--exclude belongs to a portfolio (--portfolio SEED)");
    }
    let from_run = chosen.run.is_some();
    let cfg = args.data.config()?;
    let (mut sel, mut bt, split, aggregation) = match &chosen.run {
        // A member runs on its run's data, costs and split unless told otherwise.
        Some(run)
            if args.data.data.is_none()
                && args.data.config.is_none()
                && args.data.source.is_none()
                && args.data.interval.is_none() =>
        {
            (run.data.clone(), run.backtest, run.split, run.aggregation)
        }
        Some(run) => (
            cfg.data_selection(),
            cfg.backtest_config(),
            run.split,
            run.aggregation,
        ),
        None => (
            cfg.data_selection(),
            cfg.backtest_config(),
            cfg.evolution.split(),
            cfg.evolution.aggregation(),
        ),
    };
    cost_flags(&args, &mut bt)?;
    if let Some(t) = &args.timerange {
        sel.timerange = Some(TimeRange::parse(t).map_err(anyhow::Error::msg)?);
    }
    // Which coins: --coins, --coin, a member's run's coins, or backtest.coin.
    let wanted: Option<Vec<String>> = match (&args.coins, &args.coin) {
        (Some(list), _) if list.iter().any(|c| c.eq_ignore_ascii_case("all")) => None,
        (Some(list), _) => Some(list.iter().map(|c| c.trim().to_string()).collect()),
        (None, Some(c)) => Some(vec![c.clone()]),
        (None, None) if from_run => None,
        (None, None) => {
            let single_file = sel.path.as_ref().is_some_and(|p| p.is_file());
            (!single_file).then(|| vec![cfg.backtest.coin.clone()])
        }
    };
    // The split is over the whole universe evolve saw; without a segment only the wanted
    // coins are loaded.
    if args.segment.is_none() {
        if let Some(w) = &wanted {
            sel.coins = w.clone();
        }
    }
    let universe = load_data(&sel)?;
    let seg = split.apply(&universe);
    let boundaries = vec![
        (seg.validation_from, "validation".to_string()),
        (seg.holdout_from, "holdout".to_string()),
    ];
    const HOLDOUT_WARNING: &str = "warning: reading the holdout. It is meant to be looked at \
        once, at the end; every look that changes a decision makes it less of a test.";
    let mut markets: Vec<Market> = match args.segment {
        // A member of a run without a segment or a time range: training and validation, the
        // holdout left unread.
        None if from_run && args.timerange.is_none() => {
            let (first, _) = universe.span();
            super::say_notes(&[format!(
                "a member of a run: training and validation only, up to {} (the holdout is left \
                 unread; --segment holdout reads it)",
                format_ts(seg.holdout_from)
            )]);
            universe
                .markets
                .iter()
                .filter_map(|m| m.between(first, seg.holdout_from))
                .collect()
        }
        None => {
            let reads = universe
                .markets
                .iter()
                .any(|m| m.candles.ts.last().is_some_and(|&t| t >= seg.holdout_from));
            if from_run && reads {
                eprintln!("{HOLDOUT_WARNING}");
            }
            universe.markets.clone()
        }
        Some(s) => {
            if s == Segment::Holdout {
                eprintln!("{HOLDOUT_WARNING}");
            }
            seg.take(s)
        }
    };
    if let Some(w) = &wanted {
        for c in w {
            if !markets.iter().any(|m| m.coin.eq_ignore_ascii_case(c)) {
                bail!(
                    "coin {c} is not in {}{} (coins: {}); choose with --coin or --coins",
                    universe.origin,
                    args.segment
                        .map(|s| format!(", segment {}", s.as_str()))
                        .unwrap_or_default(),
                    markets
                        .iter()
                        .map(|m| m.coin.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        markets.retain(|m| w.iter().any(|c| c.eq_ignore_ascii_case(&m.coin)));
    }
    if markets.is_empty() {
        bail!("no coin has bars in the chosen span of {}", universe.origin);
    }
    if let Some((gene, period)) = chosen.lookback() {
        // Among several coins, one too young for the strategy is simply not traded yet; a coin
        // named alone is refused as before.
        let named_alone = wanted.as_ref().is_some_and(|w| w.len() == 1) || markets.len() == 1;
        if !named_alone && markets.iter().any(|m| m.candles.len() > period) {
            let young: Vec<String> = markets
                .iter()
                .filter(|m| m.candles.len() <= period)
                .map(|m| format!("{} ({} bars)", m.coin, m.candles.len()))
                .collect();
            if !young.is_empty() {
                super::say_notes(&[format!(
                    "left out, too young for {} (it looks back {period} bars, {gene}): {}",
                    chosen.spec.name,
                    young.join(", ")
                )]);
            }
            markets.retain(|m| m.candles.len() > period);
        }
        for m in &markets {
            if m.candles.len() <= period {
                bail!(
                    "{}: {} bars{} are too few for {}: it looks back {period} bars ({gene}) and \
                     needs at least {}",
                    m.coin,
                    m.candles.len(),
                    args.segment
                        .map(|s| format!(" in the {} segment", s.as_str()))
                        .unwrap_or_default(),
                    chosen.spec.name,
                    period + 1
                );
            }
        }
    }
    let reads_sentiment = chosen
        .g
        .program()
        .is_some_and(|p| p.roots.iter().flatten().any(|r| r.uses_sentiment()));
    if reads_sentiment {
        if let Some(m) = markets.iter().find(|m| m.fear_greed.is_none()) {
            bail!(
                "the program reads fear-greed, but the data of {} has no Fear & Greed index \
                 (put fear_greed.csv beside the candles: organism data fetch-sentiment --out DIR/fear_greed.csv)",
                m.coin
            );
        }
    }
    if markets.len() > 1 && (args.trades.is_some() || args.equity.is_some()) {
        bail!("--trades and --equity write one coin's files; choose one coin with --coin");
    }
    let regime = match &chosen.run {
        _ if args.regime => {
            let mut c = cfg.clone();
            c.regime.enabled = true;
            c.regime.filter()
        }
        Some(run) if run.regime.is_some() && args.data.config.is_none() => run.regime,
        _ => cfg.regime.filter(),
    };
    let results: Vec<CoinResult> = {
        use rayon::prelude::*;
        markets
            .into_par_iter()
            .map(|market| {
                let prepared = Prepared::new(market);
                let mut targets = chosen.g.targets(&prepared);
                let regimes = seeds::apply_regime(regime.as_ref(), &prepared, &mut targets);
                let (report, metrics) = backtest_targets(&targets, &prepared, &bt);
                let regimes = regimes.map(|r| {
                    figures_by_regime(
                        &r,
                        &organism::fitness::returns(&report.equity, report.cash),
                        prepared.market.candles.bars_per_year(),
                    )
                });
                CoinResult {
                    market: std::sync::Arc::unwrap_or_clone(prepared.market),
                    report,
                    metrics,
                    regimes,
                }
            })
            .collect()
    };
    for r in &results {
        let m = &r.metrics;
        finite(
            &format!("{} on {}", chosen.label, r.market.coin),
            &[
                ("final equity", m.final_equity),
                ("total return", m.total_return),
                ("max drawdown", m.max_drawdown),
            ],
        )?;
    }
    let aggregate = Figures::of(
        &results.iter().map(|r| r.metrics).collect::<Vec<_>>(),
        &aggregation,
    );
    if let Some(path) = &args.trades {
        let r = &results[0];
        write_atomic(path, trades_csv(&r.report.trades).as_bytes())?;
    }
    if let Some(path) = &args.equity {
        let r = &results[0];
        write_atomic(
            path,
            equity_csv(&r.market.candles.ts, &r.report.equity).as_bytes(),
        )?;
    }
    let spec = chosen.spec;
    let genes = organism::evolution::summary::genes_line(spec, chosen.g.genes(), true);
    let span = args
        .segment
        .map(|s| format!(", segment {}", s.as_str()))
        .unwrap_or_default();
    let intro = [
        format!(
            "{}{} [{}], fill {}",
            spec.name,
            match (chosen.g.program_line(), chosen.label.is_empty()) {
                (Some(p), true) => format!(" {p}"),
                (Some(p), false) => format!(" {p} ({})", chosen.label),
                (None, true) => String::new(),
                (None, false) => format!(" ({})", chosen.label),
            },
            genes,
            bt.fill.as_str()
        ),
        format!("data: {}{span}", universe.origin),
        format!(
            "costs: fee {:.4} %, slippage {:.4} %, funding {}, cash {}{}",
            bt.fee * 100.0,
            bt.slippage * 100.0,
            if bt.funding { "on" } else { "off" },
            bt.cash,
            super::leverage_text(&bt)
        ),
    ];
    if let Some(path) = &args.report {
        let coins: Vec<CoinBacktest<'_>> = results
            .iter()
            .map(|r| CoinBacktest {
                coin: &r.market.coin,
                candles: &r.market.candles,
                report: &r.report,
                metrics: &r.metrics,
            })
            .collect();
        let html = backtest_report(
            &format!("organism backtest: {}", spec.name),
            &intro,
            &coins,
            &boundaries,
            Some((
                &aggregate,
                &aggregate_note(&aggregation, aggregate.feasible),
            )),
        );
        write_atomic(path, html.as_bytes())?;
        if !super::quiet() {
            eprintln!("wrote {}", path.display());
        }
    }
    if args.json {
        if results.len() == 1 {
            outln!("{}", coin_json(&results[0])?);
        } else {
            let coins = results.iter().map(coin_json).collect::<Result<Vec<_>>>()?;
            outln!(
                "{}",
                serde_json::json!({"coins": coins, "aggregate": aggregate,
                    "aggregation": aggregation})
            );
        }
        return Ok(());
    }
    outln!("{}", intro[0]);
    if results.len() == 1 {
        let r = &results[0];
        let c = &r.market.candles;
        outln!(
            "{} on {}{span}: {} bars, {} -> {} UTC",
            r.market.coin,
            universe.origin,
            c.len(),
            format_ts(c.ts[0]),
            format_ts(c.ts[c.len() - 1])
        );
        outln!("{}", intro[2]);
        outln!();
        print_metrics(&r.metrics);
        let b = buy_hold(r);
        outln!(
            "{:<15}{:>20}",
            "buy & hold",
            format!(
                "{:+.2}% (Sharpe {:.3}, max drawdown {:.2}%)",
                b.total_return * 100.0,
                b.sharpe,
                b.max_drawdown * 100.0
            )
        );
        outln!("               (the coin itself over the same bars, bought at the first close: no costs, no funding)");
        outln!();
        outln!("trades");
        for (k, v) in TradeStats::of(&r.report.trades).rows() {
            outln!("  {k:<13}{v}");
        }
        outln!();
        print_months(r);
        print_regimes(&results, regime.as_ref());
        return Ok(());
    }
    outln!("{}", intro[1]);
    outln!("{}", intro[2]);
    outln!();
    outln!(
        "{:<10} {:>6} {:>9} {:>8} {:>7} {:>7} {:>7} {:>6} {:>7} {:>6} {:>8}",
        "coin",
        "bars",
        "return",
        "CAGR",
        "sharpe",
        "calmar",
        "mdd",
        "trades",
        "win",
        "cons",
        "turn/y"
    );
    for r in &results {
        let m = &r.metrics;
        outln!(
            "{:<10} {:>6} {:>8.2}% {:>7.2}% {:>7.3} {:>7.3} {:>6.2}% {:>6} {:>6.1}% {:>5.0}% {:>8.1}",
            r.market.coin,
            r.market.candles.len(),
            m.total_return * 100.0,
            m.cagr * 100.0,
            m.sharpe,
            m.calmar,
            m.max_drawdown * 100.0,
            m.trades,
            m.win_rate * 100.0,
            m.consistency * 100.0,
            m.turnover
        );
    }
    let a = &aggregate;
    outln!(
        "{:<10} {:>6} {:>8.2}% {:>8} {:>7.3} {:>7} {:>6.2}% {:>6} {:>7} {:>5.0}% {:>8.1}",
        "aggregate",
        "",
        a.total_return * 100.0,
        "",
        a.sharpe,
        "",
        a.max_drawdown * 100.0,
        a.trades,
        "",
        a.consistency * 100.0,
        a.turnover
    );
    outln!();
    outln!("{}", aggregate_note(&aggregation, a.feasible));
    let held: Vec<String> = results
        .iter()
        .map(|r| {
            let b = buy_hold(r);
            format!(
                "{} {:+.1}% (Sharpe {:.2})",
                r.market.coin,
                b.total_return * 100.0,
                b.sharpe
            )
        })
        .collect();
    outln!(
        "buy & hold over the same bars (each coin bought at its first close; no costs, no funding): {}",
        held.join(", ")
    );
    print_regimes(&results, regime.as_ref());
    Ok(())
}

/// How the aggregate row is made, and whether evolve could score it.
fn aggregate_note(
    aggregation: &organism::evolution::problem::Aggregation,
    feasible: bool,
) -> String {
    format!(
        "aggregate = what evolve scores: (1-w)*mean + w*worst coin with w = {} (Sharpe, consistency, \
         drawdown, turnover); return is the mean, trades the sum{}",
        aggregation.worst_coin_weight,
        if feasible {
            String::new()
        } else {
            format!(
                "; INFEASIBLE for evolve: fewer than {} trades per coin",
                aggregation.min_trades
            )
        }
    )
}

/// Buy & hold of a result's coin over its bars.
fn buy_hold(r: &CoinResult) -> organism::fitness::BuyHold {
    let c = &r.market.candles;
    organism::fitness::BuyHold::of(&c.close, c.bars_per_year())
}

fn print_metrics(m: &Metrics) {
    for (k, v) in m.rows() {
        outln!("{k:<15}{v:>20}");
    }
    outln!("exits          {}", m.exits.describe());
}

/// Monthly returns: one row per year, twelve columns.
fn print_months(r: &CoinResult) {
    let months = monthly_returns(&r.report.equity, &r.market.candles.ts, r.report.cash);
    if months.is_empty() {
        return;
    }
    outln!(
        "monthly returns (%)  {}",
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            .map(|m| format!("{m:>6}"))
            .join("")
    );
    let mut year = months[0].year;
    let mut line = [None; 12];
    let flush = |year: i64, line: &[Option<f64>; 12]| {
        let cells: String = line
            .iter()
            .map(|c| c.map_or(format!("{:>6}", "."), |v| format!("{:>6.1}", v * 100.0)))
            .collect();
        outln!("{year:<20} {cells}");
    };
    for m in &months {
        if m.year != year {
            flush(year, &line);
            line = [None; 12];
            year = m.year;
        }
        line[(m.month - 1) as usize] = Some(m.r#return);
    }
    flush(year, &line);
}

/// A backtest's figure that is not a number is an error naming it, never a `null` in the output
/// with exit 0.
pub(super) fn finite(what: &str, figures: &[(&str, f64)]) -> Result<()> {
    if let Some((name, v)) = figures.iter().find(|x| !x.1.is_finite()) {
        bail!(
            "{what}: the backtest's {name} is {v}, not a number: its prices or settings are out \
             of the range the engine computes in (check the data's prices and the costs)"
        );
    }
    Ok(())
}

/// The cost flags (`--fee`, `--slippage`, `--cash`, `--fill`, `--leverage`,
/// `--maintenance-margin`) laid over `bt` (the config's costs or a run's), each held to its
/// config key's type and range (one check, the config's).
pub(super) fn cost_flags(args: &Args, bt: &mut organism::execution::EngineConfig) -> Result<()> {
    use organism::config::Flag;
    let mut flags = Vec::new();
    for (flag, key, v) in [
        ("--fee", "costs.taker_fee", args.fee),
        ("--slippage", "costs.slippage", args.slippage),
        ("--cash", "backtest.cash", args.cash),
        ("--leverage", "backtest.leverage", args.leverage),
        (
            "--maintenance-margin",
            "backtest.maintenance_margin",
            args.maintenance_margin,
        ),
    ] {
        if let Some(v) = v {
            flags.push(Flag::new(flag, key, v));
        }
    }
    if let Some(f) = args.fill {
        flags.push(Flag::new("--fill", "backtest.fill", f.as_str()));
    }
    if flags.is_empty() {
        return Ok(());
    }
    organism::config::Config::load_with(None, &flags)?;
    bt.fee = args.fee.unwrap_or(bt.fee);
    bt.slippage = args.slippage.unwrap_or(bt.slippage);
    bt.cash = args.cash.unwrap_or(bt.cash);
    bt.fill = args.fill.unwrap_or(bt.fill);
    bt.leverage = args.leverage.unwrap_or(bt.leverage);
    bt.maintenance_margin = args.maintenance_margin.unwrap_or(bt.maintenance_margin);
    // A run's own maintenance margin or leverage may meet the other flag.
    if bt.leverage * bt.maintenance_margin >= 1.0 {
        bail!(
            "--leverage {} with a maintenance margin of {} liquidates every position as it opens \
             (their product must stay below 1)",
            bt.leverage,
            bt.maintenance_margin
        );
    }
    Ok(())
}
