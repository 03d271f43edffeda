//! `organism backtest --portfolio SEED` (or `--genome FILE` of a portfolio seed): one account
//! across a universe of coins — load the panel, the seed's rebalances, the portfolio book, the
//! figures — then print them (or JSON), and write the equity curve and the HTML report.

use anyhow::{bail, Context, Result};
use organism::{
    backtest::{
        equity_csv,
        portfolio::{run as run_book, PortfolioReport},
    },
    fitness::portfolio::{monthly_rank_ic, MonthlyIc, PortfolioFigures},
    market::{
        csv::write_atomic,
        panel::Panel,
        timerange::TimeRange,
        universe::{CoinPick, PanelSelection},
    },
    promotion::report::portfolio_report,
    seeds::portfolio::PortfolioGenome,
};

use super::{backtest::Args, format_ts};

/// The genome: `--portfolio SEED` with `--set`, or a genome file.
fn genome(args: &Args) -> Result<(PortfolioGenome, String)> {
    let (mut g, label) = match (&args.portfolio, &args.genome) {
        (Some(name), _) => (
            PortfolioGenome::of(name, &[]).map_err(anyhow::Error::msg)?,
            String::new(),
        ),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            (
                PortfolioGenome::from_toml(&text, &path.display().to_string())
                    .map_err(anyhow::Error::msg)?,
                format!("genome {}", path.display()),
            )
        }
        (None, None) => bail!("--portfolio SEED or --genome FILE is needed"),
    };
    for s in &args.set {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("--set {s}: expected GENE=VALUE"))?;
        g.entry.spec.set(&mut g.genes, k.trim(), v.trim())?;
    }
    Ok((g, label))
}

pub fn run(args: &Args) -> Result<()> {
    if args.coin.is_some() || args.segment.is_some() || args.regime || args.trades.is_some() {
        bail!(
            "--coin, --segment, --regime and --trades belong to single-coin strategies; a \
             portfolio takes --coins all, top:N or A,B,C"
        );
    }
    let (g, label) = genome(args)?;
    let cfg = args.data.config()?;
    let mut bt = cfg.backtest_config();
    super::backtest::cost_flags(args, &mut bt)?;
    let Some(path) = cfg.data_selection().path else {
        bail!(
            "a portfolio needs a universe of coins on disk: --data DIR (e.g. ../shared/universe) \
             or data.path"
        );
    };
    let pick: CoinPick = match &args.coins {
        Some(list) => list
            .join(",")
            .parse()
            .map_err(|m| anyhow::anyhow!("--coins: {m}"))?,
        None => CoinPick::All,
    };
    let timerange = match (&args.timerange, cfg.data.timerange.trim()) {
        (Some(t), _) => Some(TimeRange::parse(t).map_err(anyhow::Error::msg)?),
        (None, "") => None,
        (None, t) => Some(TimeRange::parse(t).map_err(anyhow::Error::msg)?),
    };
    let mut exclude = cfg.universe.exclude.clone();
    exclude.extend(args.exclude.iter().map(|c| c.trim().to_string()));
    let sel = PanelSelection {
        path,
        source: cfg.data.source.clone(),
        interval: cfg.data.interval.clone(),
        pick: pick.clone(),
        exclude,
        timerange,
        keep_not_crypto: false,
    };
    let loaded = super::load_panel(&sel)?;
    super::say_notes(&loaded.notes);
    let panel = &loaded.panel;
    let top = match pick {
        CoinPick::Top(n) => Some(n),
        _ => None,
    };
    let rule = cfg.universe.rule(top);
    rule.validate().map_err(anyhow::Error::msg)?;
    let schedule = g.schedule(panel, &rule);
    let report = run_book(panel, &schedule, &bt, &cfg.book);
    let figures = PortfolioFigures::of(&report, &panel.ts, panel.bars_per_year());
    let (monthly_ic, mean_ic) = monthly_rank_ic(panel, &schedule);
    let contributions = contributions(panel, &report);

    if let Some(f) = &args.equity {
        write_atomic(f, equity_csv(&panel.ts, &report.equity).as_bytes())?;
    }
    if let Some(f) = &args.report {
        let html = portfolio_report(
            &format!("{} on {}", g.entry.spec.name, loaded.origin),
            &g.describe(),
            panel,
            &report,
            &figures,
            &monthly_ic,
        );
        write_atomic(f, html.as_bytes())?;
    }
    if args.json {
        outln!(
            "{}",
            serde_json::json!({
                "seed": g.entry.spec.name,
                "genome": g.to_toml(),
                "universe": loaded.origin,
                "coins": pick.to_string(),
                "coins_loaded": panel.coins.len(),
                "coins_traded": contributions.len(),
                "first_ts": panel.ts.first(),
                "last_ts": panel.ts.last(),
                "figures": figures,
                "rank_ic": mean_ic,
                "monthly_rank_ic": monthly_ic,
                "contributions": contributions,
            })
        );
        return Ok(());
    }
    print_text(
        &g,
        &label,
        &loaded.origin,
        panel,
        &pick,
        &contributions,
        &figures,
        mean_ic,
        &monthly_ic,
    );
    if let Some(f) = &args.report {
        eprintln!("report: {}", f.display());
    }
    Ok(())
}

/// Each coin's P&L, fees, slippage and funding, largest P&L first.
fn contributions(panel: &Panel, report: &PortfolioReport) -> Vec<serde_json::Value> {
    report
        .by_pnl()
        .iter()
        .map(|&(i, pnl)| {
            let c = &report.coins[i];
            serde_json::json!({"coin": panel.coins[i].market.coin, "pnl": pnl, "fees": c.fees,
                "slippage": c.slippage, "funding": c.funding, "traded": c.traded, "fills": c.fills})
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn print_text(
    g: &PortfolioGenome,
    label: &str,
    origin: &str,
    panel: &Panel,
    pick: &CoinPick,
    rows: &[serde_json::Value],
    f: &PortfolioFigures,
    mean_ic: Option<f64>,
    monthly_ic: &[MonthlyIc],
) {
    let day = |ms: i64| format_ts(ms)[..10].to_string();
    outln!(
        "{}{} on {origin}: --coins {pick}, {} coins loaded, {} bars {} .. {}",
        g.entry.spec.name,
        if label.is_empty() {
            String::new()
        } else {
            format!(" ({label})")
        },
        panel.coins.len(),
        f.bars,
        day(panel.ts[0]),
        day(panel.ts[panel.len() - 1])
    );
    outln!("  {}", g.describe());
    outln!(
        "sharpe         {:>8.2} ± {:.2} (standard error, Lo)   P(sharpe > 0) {:.2}",
        f.sharpe,
        f.sharpe_se,
        f.psr
    );
    outln!(
        "total return   {:>8.1} %   cagr {:.1} %   max drawdown {:.1} %   final equity {:.2}",
        100.0 * f.total_return,
        100.0 * f.cagr,
        100.0 * f.max_drawdown,
        f.final_equity
    );
    outln!(
        "turnover       {:>8.1} × equity a year   cost drag {:.2} % a year   funding {:+.2} % a year",
        f.turnover,
        100.0 * f.cost_drag,
        100.0 * f.funding
    );
    outln!(
        "held           {:>8.1} coins on average   gross {:.2}   net {:+.2}   {} rebalances, {} fills, {} delisted",
        f.avg_held,
        f.avg_gross,
        f.avg_net,
        f.rebalances,
        f.fills,
        f.delisted
    );
    match mean_ic {
        Some(ic) => {
            let positive = monthly_ic.iter().filter(|m| m.ic > 0.0).count();
            outln!(
                "rank IC        {:>8.4} (mean over rebalances; {} of {} months positive)",
                ic,
                positive,
                monthly_ic.len()
            )
        }
        None => outln!("rank IC               - (no rebalance had three members)"),
    }
    let show = |title: &str, it: &mut dyn Iterator<Item = &serde_json::Value>| {
        let line: Vec<String> = it
            .map(|r| {
                format!(
                    "{} {:+.0}",
                    r["coin"].as_str().unwrap_or("?"),
                    r["pnl"].as_f64().unwrap_or(0.0)
                )
            })
            .collect();
        if !line.is_empty() {
            outln!("{title:<14} {}", line.join(", "));
        }
    };
    show("best coins", &mut rows.iter().take(5));
    show("worst coins", &mut rows.iter().rev().take(5));
    if f.sharpe - 2.0 * f.sharpe_se <= 0.0 {
        outln!(
            "The Sharpe is within two standard errors of zero: this backtest alone does not show \
             an edge."
        );
    }
}
