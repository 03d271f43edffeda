//! `organism walkforward`: evolution on rolling training windows, its selected members traded on
//! the window after each; the library does the work (`evolution::walkforward`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use organism::{
    evolution::{
        portfolio::split_bounds,
        walkforward::{self, parse_length, Plan, PortfolioWalk, Setup, Window},
    },
    market::csv::write_atomic,
    seeds,
};

use super::{format_ts, load_data, DataArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Length of each training window: a whole number and m, h, d or w.
    #[arg(long, default_value = "180d", value_name = "LENGTH")]
    pub train: String,
    /// Length of each test window.
    #[arg(long, default_value = "60d", value_name = "LENGTH")]
    pub test: String,
    /// How far each window moves on (default: the test length, so test windows tile).
    #[arg(long, value_name = "LENGTH")]
    pub step: Option<String>,
    /// Members of each window's run traded on its test window (the top by the ranking score).
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub top: usize,
    #[command(flatten)]
    pub evolution: super::EvolutionArgs,
    /// Also walk over the holdout (the split's last segment, which is otherwise left sealed
    /// for the promotion gauntlet).
    #[arg(long)]
    pub include_holdout: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also write an HTML report (stitched out-of-sample equity, windows).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
}

fn length(flag: &str, text: &str) -> Result<i64> {
    parse_length(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

pub fn run(args: Args) -> Result<()> {
    let cfg = args.data.config_with(args.evolution.flags()?)?;
    if args.top == 0 {
        bail!("--top must be at least 1");
    }
    let train_ms = length("--train", &args.train)?;
    let test_ms = length("--test", &args.test)?;
    let step_ms = match &args.step {
        Some(s) => length("--step", s)?,
        None => test_ms,
    };
    let plan = Plan {
        train_ms,
        test_ms,
        step_ms,
    };
    let generations = cfg.evolution.generations;
    let portfolio = cfg.evolution.settings().mode == organism::evolution::Mode::Portfolio;
    if portfolio && cfg.evolution.worlds > 0 {
        bail!(
            "evolution.worlds = {}: perturbed worlds score single-coin strategies; a portfolio \
             walk-forward cannot use them yet (set evolution.worlds = 0)",
            cfg.evolution.worlds
        );
    }
    // A portfolio walk: the universe on one grid, the portfolio seeds, [universe] and [book].
    let (entries, universe, walk) = if portfolio {
        let mut data = cfg.data_selection();
        let run = super::portfolio_universe(&cfg, &mut data)?;
        let loaded = super::load_universe_panel(&data, &run)?;
        super::say_notes(&loaded.notes);
        let walk = PortfolioWalk {
            entries: super::portfolio_seeds(&cfg)?,
            membership: run.membership,
            limits: run.limits,
        };
        let markets = Vec::new();
        let u = organism::market::Universe {
            markets,
            origin: loaded.origin.clone(),
            notes: Vec::new(),
        };
        (Vec::new(), u, Some((walk, loaded.panel)))
    } else {
        if let Some(x) = cfg
            .evolution
            .seeds
            .iter()
            .find(|n| seeds::portfolio::is_portfolio_seed(n))
        {
            bail!(
                "--seeds {x}: walkforward runs portfolio seeds with --mode portfolio only (not \
                 beside single-coin seeds)"
            );
        }
        let entries = seeds::select(&cfg.evolution.seeds).map_err(anyhow::Error::msg)?;
        (entries, load_data(&cfg.data_selection())?, None)
    };
    let (first, last) = match &walk {
        Some((_, p)) => (p.ts[0], p.ts[p.len() - 1]),
        None => universe.span(),
    };
    let split = cfg.evolution.split();
    let holdout_from = match &walk {
        Some((_, p)) => split_bounds(p, &split).1,
        None => split.bounds(&universe).1,
    };
    let end = if args.include_holdout {
        last + 1
    } else {
        holdout_from
    };
    let inner = split.train / (split.train + split.validation);
    let spans = walkforward::windows(first, end, &plan, inner);
    if spans.is_empty() {
        return Err(walkforward::WalkError::TooShort {
            have_days: (end - first) as f64 / 86_400_000.0,
            need_days: (train_ms + test_ms) as f64 / 86_400_000.0,
        })
        .with_context(|| {
            format!(
                "{}{}",
                universe.origin,
                if args.include_holdout {
                    ""
                } else {
                    " (without the holdout; --include-holdout uses it)"
                }
            )
        });
    }
    // What the walk reads: the folder, source and interval, and the coins.
    let data_label = {
        let sel = cfg.data_selection();
        let place = if sel.path.is_some() {
            super::runs::data_label(&sel)
        } else {
            universe.origin.clone()
        };
        let coins: Vec<&str> = match &walk {
            Some((_, p)) => p.coins.iter().map(|c| c.market.coin.as_str()).collect(),
            None => universe.markets.iter().map(|m| m.coin.as_str()).collect(),
        };
        let listed = if coins.len() <= 8 {
            format!(": {}", coins.join(", "))
        } else {
            String::new()
        };
        format!(
            "{place}, {} coin{}{listed}",
            coins.len(),
            if coins.len() == 1 { "" } else { "s" }
        )
    };
    let talk = !super::quiet() && !args.json;
    let settings = format!(
        "{} windows; train {} (evolution fits the first {:.0} %, validates on the rest), test {}, \
         step {}; top {} members of each run; {} generations x {}; mode {}, algorithm {}, Sharpe \
         objective {}",
        spans.len(),
        args.train,
        inner * 100.0,
        args.test,
        args.step.as_deref().unwrap_or(&args.test),
        args.top,
        generations,
        cfg.evolution.population,
        cfg.evolution.mode.as_str(),
        cfg.evolution.algorithm.as_str(),
        cfg.evolution.sharpe_objective.as_str(),
    );
    if talk {
        outln!("walk-forward on {data_label}: {settings}");
        if !args.include_holdout {
            outln!(
                "the holdout (from {} UTC) is not read; --include-holdout walks over it too",
                format_ts(holdout_from)
            );
        }
        outln!(
            "{:>3}  {:<16} {:<16} {:<16} {:>9} {:>9} {:>9}  selected",
            "win",
            "train from",
            "test from",
            "test to",
            "IS sharpe",
            "OOS",
            "B&H"
        );
    }
    let bar = if talk && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} window {msg} | {pos} evaluations | {per_sec}")
        {
            b.set_style(style);
        }
        b
    } else {
        ProgressBar::hidden()
    };
    let tick = || bar.inc(1);
    let setup = Setup {
        entries,
        settings: cfg.evolution.settings(),
        aggregation: cfg.evolution.aggregation(),
        backtest: cfg.backtest_config(),
        generations,
        seed: cfg.evolution.seed,
        top: args.top,
        tick: &tick,
        regime: cfg.regime.filter(),
        worlds: cfg.evolution.world_spec(),
        islands: cfg.evolution.island_spec(),
    };
    let mut done: Vec<Window> = Vec::with_capacity(spans.len());
    for (k, span) in spans.iter().enumerate() {
        bar.set_message(format!("{}/{}", k + 1, spans.len()));
        let w = match &walk {
            Some((walk, panel)) => {
                walkforward::run_portfolio_window(panel, k, *span, &setup, walk)?
            }
            None => walkforward::run_window(&universe.markets, k, *span, &setup)?,
        };
        if talk {
            bar.suspend(|| print_window(&w));
        }
        done.push(w);
    }
    bar.finish_and_clear();
    let bars_per_year = match &walk {
        Some((_, p)) => p.bars_per_year(),
        None => universe
            .markets
            .first()
            .map_or(8760.0, |m| m.candles.bars_per_year()),
    };
    let summary = walkforward::summarize(&done, bars_per_year);
    let verdict = verdict(&summary);
    if args.json {
        let v = serde_json::json!({
            "data": data_label,
            "plan": plan,
            "generations": generations,
            "population": cfg.evolution.population,
            "mode": cfg.evolution.mode.as_str(),
            "algorithm": cfg.evolution.algorithm.as_str(),
            "sharpe_objective": cfg.evolution.sharpe_objective.as_str(),
            "top": args.top,
            "include_holdout": args.include_holdout,
            "windows": done,
            "summary": summary,
            "verdict": verdict,
        });
        outln!("{v}");
    } else {
        outln!(
            "stitched out-of-sample Sharpe {:.2} over {} windows (total return {:.1} %; buy & hold \
             {:.2}); mean in-sample Sharpe {:.2}; ratio out-of-sample / in-sample {}; {} of {} \
             windows positive",
            summary.stitched_oos_sharpe,
            summary.windows,
            summary.oos_total_return * 100.0,
            summary.stitched_buy_hold_sharpe,
            summary.mean_in_sample_sharpe,
            if summary.oos_is_ratio.is_finite() {
                format!("{:.2}", summary.oos_is_ratio)
            } else {
                "n/a".into()
            },
            summary.positive_windows,
            summary.windows
        );
        outln!("{verdict}");
    }
    if let Some(file) = &args.report {
        let intro = vec![
            format!("data: {data_label}"),
            settings.clone(),
            verdict.clone(),
        ];
        let html = organism::promotion::report::walkforward_report(
            "organism walk-forward",
            &intro,
            &done,
            &summary,
        );
        write_atomic(file, html.as_bytes())
            .with_context(|| format!("writing the report {}", file.display()))?;
        if talk {
            outln!("wrote {}", file.display());
        }
    }
    Ok(())
}

fn print_window(w: &Window) {
    let sel = if w.selected.is_empty() {
        format!(
            "none ({} feasible in the first front): flat",
            w.front_feasible
        )
    } else {
        w.selected
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    outln!(
        "{:>3}  {:<16} {:<16} {:<16} {:>9.2} {:>9.2} {:>9.2}  {sel}",
        w.index,
        format_ts(w.span.train_from),
        format_ts(w.span.test_from),
        format_ts(w.span.test_to),
        w.in_sample_sharpe,
        w.out_of_sample_sharpe,
        w.buy_hold_sharpe
    );
    for s in &w.selected {
        if let (Some(se), Some(ic)) = (s.test_sharpe_se, &s.test_rank_ic) {
            outln!(
                "{:>5}{} {}: training Sharpe {:.2}, validation {:.2}; test {:.2} ± {:.2}, rank IC {}",
                "",
                s.id,
                s.seed,
                s.train_sharpe,
                s.validation_sharpe,
                s.test_sharpe,
                se,
                super::runs::ic_text(ic)
            );
        }
    }
}

/// One plain sentence on what the figures say. Buy and hold is context, not a bar to clear:
/// over a few test windows its Sharpe is mostly noise, and long-short strategies do not earn it.
fn verdict(s: &walkforward::Summary) -> String {
    let oos = s.stitched_oos_sharpe;
    if !oos.is_finite() || oos <= 0.0 {
        "verdict: what evolution found in-sample did not carry forward: the stitched \
         out-of-sample Sharpe is not positive. On this market and with these settings, treat its \
         results as luck."
            .into()
    } else if s.oos_is_ratio.is_finite() && s.oos_is_ratio < 0.25 {
        format!(
            "verdict: out-of-sample Sharpe is positive but keeps only {:.0} % of the in-sample \
             figure: most of what evolution finds here is fitted noise.",
            s.oos_is_ratio * 100.0
        )
    } else {
        format!(
            "verdict: the selected members kept {:.0} % of their in-sample Sharpe out of sample \
             (buy & hold made {:.2} over the same windows). That is evidence the search works on \
             this market, not proof that any one strategy will; a Sharpe over {} test windows \
             has a wide error.",
            s.oos_is_ratio * 100.0,
            s.stitched_buy_hold_sharpe,
            s.windows
        )
    }
}
