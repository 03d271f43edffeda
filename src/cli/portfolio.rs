//! `organism backtest --portfolio SEED` (or `--genome FILE` / `--member` of a portfolio seed): one account
//! across a universe of coins — load the panel, the seed's rebalances, the portfolio book, the
//! figures — then print them (or JSON), and write the equity curve and the HTML report. And
//! `organism paper replay` of a portfolio strategy: the same book driven bar by bar.

use anyhow::{bail, Result};
use organism::{
    backtest::{
        equity_csv,
        portfolio::{run as run_book, PortfolioReport},
    },
    evolution::{
        checkpoint::RunSpec,
        portfolio::{split_bounds, PortfolioRun},
    },
    fitness::portfolio::{monthly_rank_ic, MonthlyIc, PortfolioFigures},
    market::{csv::write_atomic, panel::Panel, timerange::TimeRange, universe::CoinPick},
    promotion::report::portfolio_report,
    seeds::portfolio::PortfolioGenome,
};
use organism::{
    evolution::portfolio::UniverseDefinition, promotion::registry::Strategy,
    runner::portfolio::PortfolioRunner,
};

use super::{backtest::Args, format_ts};

/// A portfolio genome (`--portfolio SEED`, `--genome FILE` or `--member`, with `--set`
/// applied) over its universe: a member's run's data, coins, membership, book and costs unless
/// flags say otherwise, up to the run's holdout unless `--timerange` reaches it; else the
/// configured data and `[universe]`, `[book]`.
pub fn run(
    args: &Args,
    g: &PortfolioGenome,
    label: &str,
    member_run: Option<&RunSpec>,
) -> Result<()> {
    if args.coin.is_some() || args.segment.is_some() || args.regime || args.trades.is_some() {
        bail!(
            "--coin, --segment, --regime and --trades belong to single-coin strategies; a \
             portfolio takes --coins all, top:N or A,B,C"
        );
    }
    let cfg = args.data.config()?;
    let pick: Option<CoinPick> = match &args.coins {
        Some(list) => Some(
            list.join(",")
                .parse()
                .map_err(|m| anyhow::anyhow!("--coins: {m}"))?,
        ),
        None => None,
    };
    let timerange = match (&args.timerange, cfg.data.timerange) {
        (Some(t), _) => Some(TimeRange::parse(t).map_err(anyhow::Error::msg)?),
        (None, _) if member_run.is_some() => None,
        (None, t) => t,
    };
    // A member's run decides data, universe, book and costs, unless a flag or --config does.
    let from_run = member_run.filter(|_| args.data.config.is_none());
    let (mut data, mut universe, mut bt) = match (member_run, from_run) {
        (Some(run), Some(_)) => {
            let mut data = run.data.clone();
            if let Some(d) = &args.data.data {
                data.path = Some(d.clone());
            }
            if let Some(s) = &args.data.source {
                data.source = s.clone();
            }
            if let Some(i) = &args.data.interval {
                data.interval = i.clone();
            }
            let Some(p) = run.portfolio.clone() else {
                bail!("the member's run is not a portfolio run");
            };
            (data, p, run.backtest)
        }
        _ => {
            let top = match pick {
                Some(CoinPick::Top(n)) => Some(n),
                _ => None,
            };
            (
                cfg.data_selection(),
                PortfolioRun {
                    pick: CoinPick::All,
                    exclude: cfg.universe.exclude.clone(),
                    membership: cfg.universe.rule(top),
                    limits: cfg.book,
                },
                cfg.backtest_config(),
            )
        }
    };
    if let Some(p) = pick {
        if let CoinPick::Top(n) = p {
            universe.membership.top = Some(n);
        }
        universe.pick = p;
    }
    universe
        .exclude
        .extend(args.exclude.iter().map(|c| c.trim().to_string()));
    universe.membership.validate().map_err(anyhow::Error::msg)?;
    super::backtest::cost_flags(args, &mut bt)?;
    data.timerange = timerange;
    let loaded = super::load_universe_panel(&data, &universe)?;
    super::say_notes(&loaded.notes);
    let mut panel = loaded.panel;
    let mut origin = loaded.origin;
    // A member without --timerange: training and validation; the holdout stays unread.
    if let (Some(run), None) = (member_run, timerange) {
        let (_, holdout_from) = split_bounds(&panel, &run.split);
        panel = panel.between(panel.ts[0], holdout_from);
        if !super::quiet() && !args.json {
            eprintln!(
                "a member of a run: training and validation only, up to {} (the holdout is left \
                 unread; --timerange reaching it reads it)",
                format_ts(holdout_from)
            );
        }
        origin = format!("{origin}, training and validation");
    } else if let (Some(run), Some(_)) = (member_run, timerange) {
        // Where the run's holdout starts, on the data without the time range.
        let mut all = data.clone();
        all.timerange = None;
        if let Ok(full) =
            organism::evolution::portfolio::load_universe_panel(&all, &universe, &mut |_, _| {})
        {
            let (_, holdout_from) = split_bounds(&full.panel, &run.split);
            if panel.ts.last().is_some_and(|&t| t >= holdout_from) {
                eprintln!(
                    "warning: this time range reaches the run's holdout (from {} UTC): every \
                     look at it makes the promotion gauntlet's last test less of a test",
                    format_ts(holdout_from)
                );
            }
        }
    }
    let panel = &panel;
    let pick = universe.pick.clone();
    let rule = universe.membership;
    let loaded_origin = origin;
    let schedule = g.schedule(panel, &rule);
    let report = run_book(panel, &schedule, &bt, &universe.limits);
    let figures = figures_of(label, &report, panel)?;
    let (monthly_ic, mean_ic) = monthly_rank_ic(panel, &schedule);
    let contributions = contributions(panel, &report);

    if let Some(f) = &args.equity {
        write_atomic(f, equity_csv(&panel.ts, &report.equity).as_bytes())?;
    }
    if let Some(f) = &args.report {
        let html = portfolio_report(
            &format!("{} on {}", g.entry.spec.name, loaded_origin),
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
                "genome": organism::seeds::Genome::Portfolio(g.clone()).to_toml()?,
                "universe": loaded_origin,
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
        g,
        label,
        &loaded_origin,
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
        "turnover       {:>8.1} × equity a year   cost drag {:.2} % a year   funding {:+.2} % a year (+ received, − paid)",
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

/// `paper replay` of a portfolio strategy: its universe (a registry strategy's own definition;
/// a genome file's from the config's `[universe]` and `[book]`) over stored bars, each grid bar
/// decided from the bars up to it alone ([`PortfolioRunner`]) and booked by the backtest's own
/// stepper, under the config's costs. The equity curve (`--equity`) is the one `backtest
/// --genome` writes over the same bars; `--from`/`--to` cut the bars.
pub fn replay(
    a: &super::paper::ReplayArgs,
    cfg: &organism::config::Config,
    g: &PortfolioGenome,
    strategy: Option<&Strategy>,
    label: &str,
) -> Result<()> {
    if a.coin.is_some() || a.regime || a.journal.is_some() || a.trades.is_some() {
        bail!(
            "{label}: a portfolio strategy trades its universe: --coin, --regime, --journal and \
             --trades belong to single-coin strategies"
        );
    }
    let def: Option<UniverseDefinition> = strategy.and_then(|s| s.universe.clone());
    let mut data = cfg.data_selection();
    let universe = match &def {
        Some(d) => {
            // The data it was validated on, unless --data / --source / --interval say otherwise.
            if a.data.data.is_none() {
                data.path.clone_from(&d.path);
            }
            if a.data.source.is_none() {
                data.source.clone_from(&d.source);
            }
            if a.data.interval.is_none() {
                data.interval.clone_from(&d.interval);
            }
            d.portfolio_run()
                .map_err(|m| anyhow::anyhow!("{label}: the universe's coins: {m}"))?
        }
        None => PortfolioRun {
            pick: CoinPick::All,
            exclude: cfg.universe.exclude.clone(),
            membership: cfg.universe.rule(None),
            limits: cfg.book,
        },
    };
    data.timerange = match a.timerange()? {
        Some(t) => Some(t),
        None => def.as_ref().and_then(|d| d.timerange),
    };
    let mut engine = cfg.backtest_config();
    if let Some(c) = a.cash()? {
        engine.cash = c;
    }
    let loaded = super::load_universe_panel(&data, &universe)?;
    super::say_notes(&loaded.notes);
    let panel = &loaded.panel;
    let same_data = def
        .as_ref()
        .map(|d| d.data_fingerprint == format!("{:016x}", loaded.fingerprint));
    if same_data == Some(false) && !super::quiet() && !a.json {
        eprintln!(
            "note: these bars are not the data {label} was validated on (fingerprint {}, now \
             {:016x})",
            def.as_ref().map_or("", |d| d.data_fingerprint.as_str()),
            loaded.fingerprint
        );
    }
    let mut runner = PortfolioRunner::new(
        g.clone(),
        universe.membership,
        universe.limits,
        panel,
        &engine,
    );
    while runner.step(panel).is_some() {}
    let report = runner.finish();
    let figures = figures_of(label, &report, panel)?;
    if let Some(f) = &a.equity {
        write_atomic(f, equity_csv(&panel.ts, &report.equity).as_bytes())?;
    }
    let day = |ms: i64| format_ts(ms)[..10].to_string();
    if a.json {
        outln!(
            "{}",
            serde_json::json!({
                "strategy": label,
                "seed": g.entry.spec.name,
                "universe": loaded.origin,
                "coins": universe.pick.to_string(),
                "coins_loaded": panel.coins.len(),
                "bars": panel.len(),
                "from_ms": panel.ts.first(),
                "to_ms": panel.ts.last(),
                "validated_on_these_bars": same_data,
                "rebalances": report.rebalances,
                "fills": figures.fills,
                "costs": report.costs(),
                "funding": report.funding(),
                "final_equity": figures.final_equity,
                "figures": figures,
            })
        );
        return Ok(());
    }
    outln!(
        "paper replay of {label} ({}) on {}: --coins {}, {} coins, {} bars {} .. {}: {} \
         rebalances, {} fills, costs {:.2} paid, funding {:+.2} (+ received, − paid), final equity {:.2} ({:+.2} %), \
         Sharpe {:.2} ± {:.2}",
        g.entry.spec.name,
        loaded.origin,
        universe.pick,
        panel.coins.len(),
        panel.len(),
        day(panel.ts[0]),
        day(panel.ts[panel.len() - 1]),
        report.rebalances,
        figures.fills,
        report.costs(),
        report.funding(),
        figures.final_equity,
        100.0 * figures.total_return,
        figures.sharpe,
        figures.sharpe_se
    );
    Ok(())
}

/// The figures of a portfolio backtest; one that is not a number is an error naming it.
fn figures_of(
    label: &str,
    report: &organism::backtest::portfolio::PortfolioReport,
    panel: &Panel,
) -> Result<PortfolioFigures> {
    let f = PortfolioFigures::of(report, &panel.ts, panel.bars_per_year());
    super::backtest::finite(
        label,
        &[
            ("final equity", f.final_equity),
            ("total return", f.total_return),
            ("max drawdown", f.max_drawdown),
        ],
    )?;
    Ok(f)
}
