//! Walk-forward: does evolution find edges on this market at all?
//!
//! The span is cut into windows: window `k` trains on `[first + k·step, first + k·step + train)`
//! and is tested on the `test` that follows. In each training window a fresh evolution runs
//! exactly as `organism evolve` would — on the first part of the window, with the rest as its
//! validation segment (the run's `train_fraction : validation_fraction` proportions) — and its
//! first front is ranked by the usual score (`min(training, validation Sharpe)`). The `top`
//! feasible members are then traded, untouched, on the test window that follows.
//!
//! Figures, per window:
//!
//! - **in-sample Sharpe**: the annualized Sharpe of the selected members' equal-weight
//!   portfolio (every member on every coin, one share each, returns averaged per bar) over the
//!   evolution's training segment — what evolution fitted;
//! - **out-of-sample Sharpe**: the same portfolio over the test window;
//! - **buy & hold Sharpe**: the equal-weight coins held long over the test window (close to
//!   close, no costs): the drift a long-biased strategy earns without any skill.
//!
//! Overall: the **stitched out-of-sample Sharpe** of the test windows' portfolio returns laid end
//! to end, the mean in-sample Sharpe, and their ratio (out-of-sample / in-sample). A ratio near
//! 0 or below says that what evolution finds in-sample does not carry forward — on this market,
//! with these settings, its results are luck.
//!
//! The test window's targets are computed on the data from the training window's first bar to
//! the test window's last (indicators are causal, so the first test bar sees warm indicators and
//! nothing after itself); the backtest then runs over the test window alone, flat at its start.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::fitness::mean_by_time;

use super::{
    problem::{check_lengths, Aggregation, Figures, Scored, Segments, UniverseProblem},
    summary::{self, Ranked},
    Evolver, Settings,
};
use crate::{
    backtest::run,
    execution::EngineConfig,
    fitness::{self, Metrics},
    market::Market,
    seeds::{Prepared, SeedEntry},
};

/// Window lengths, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub train_ms: i64,
    pub test_ms: i64,
    pub step_ms: i64,
}

/// The time bounds of one window (UTC ms; each segment starts at its bound, inclusive, and
/// ends at the next, exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub train_from: i64,
    /// Where the window's evolution stops training and starts validating.
    pub validation_from: i64,
    pub test_from: i64,
    pub test_to: i64,
}

/// The windows of `plan` over `[first, end)`: only whole test windows. `inner_train` is the
/// share of each training window evolution trains on (the rest is its validation).
pub fn windows(first: i64, end: i64, plan: &Plan, inner_train: f64) -> Vec<Span> {
    let mut out = Vec::new();
    if plan.train_ms <= 0 || plan.test_ms <= 0 || plan.step_ms <= 0 {
        return out;
    }
    let mut from = first;
    while from + plan.train_ms + plan.test_ms <= end {
        let test_from = from + plan.train_ms;
        out.push(Span {
            train_from: from,
            validation_from: from + (plan.train_ms as f64 * inner_train).round() as i64,
            test_from,
            test_to: test_from + plan.test_ms,
        });
        from += plan.step_ms;
    }
    out
}

/// Parses a length such as `180d`, `12h`, `8w` or `90m` (minutes) into milliseconds.
///
/// # Errors
/// A message naming the text when it is not a positive whole number with one of those units.
pub fn parse_length(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let unit = t.chars().last().unwrap_or(' ');
    let ms = match unit {
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        'w' => 7 * 86_400_000,
        _ => {
            return Err(format!(
                "`{text}` is not a length: a whole number and a unit, m, h, d or w (e.g. 180d)"
            ))
        }
    };
    let n: i64 = t[..t.len() - 1]
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{text}` is not a length: a positive whole number comes first"))?;
    Ok(n * ms)
}

/// How each window's evolution runs.
pub struct Setup<'a> {
    pub entries: Vec<&'static SeedEntry>,
    pub settings: Settings,
    pub aggregation: Aggregation,
    pub backtest: EngineConfig,
    /// Last generation of each window's evolution.
    pub generations: u32,
    /// RNG seed of window 0; window `k` uses `seed + k`.
    pub seed: u64,
    /// Members traded on each test window.
    pub top: usize,
    /// Called once per fresh evaluation (progress).
    pub tick: &'a (dyn Fn() + Sync),
    /// Applied to every strategy's targets, in training and test windows alike.
    pub regime: Option<crate::strategy::regime::RegimeFilter>,
    /// The perturbed worlds each window's genomes are also scored on (drawn from the window's
    /// seed).
    pub worlds: super::worlds::WorldSpec,
    /// Each window's run on islands ([`super::islands`]), when set.
    pub islands: Option<super::islands::IslandSpec>,
}

/// One selected member and its figures (aggregated over coins as evolution scores them).
#[derive(Debug, Clone, Serialize)]
pub struct Selected {
    pub id: String,
    pub seed: String,
    pub program: Option<String>,
    pub genes: BTreeMap<String, String>,
    pub train_sharpe: f64,
    pub validation_sharpe: f64,
    pub test_sharpe: f64,
    pub test_trades: usize,
    /// A portfolio member's test Sharpe standard error (Lo) and rank IC on the test window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_sharpe_se: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_rank_ic: Option<fitness::portfolio::RankIc>,
}

/// What one window found and how it fared.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub index: usize,
    #[serde(flatten)]
    pub span: Span,
    pub selected: Vec<Selected>,
    /// Feasible members of the final first front.
    pub front_feasible: usize,
    pub in_sample_sharpe: f64,
    pub out_of_sample_sharpe: f64,
    pub buy_hold_sharpe: f64,
    /// Test-window portfolio: bar times and returns (flat when nothing was selected).
    #[serde(skip)]
    pub ts: Vec<i64>,
    #[serde(skip)]
    pub returns: Vec<f64>,
    #[serde(skip)]
    pub buy_hold: Vec<f64>,
}

/// The walk-forward verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub windows: usize,
    /// Annualized Sharpe of the test windows' portfolio returns laid end to end.
    pub stitched_oos_sharpe: f64,
    /// Mean of the windows' in-sample Sharpe.
    pub mean_in_sample_sharpe: f64,
    /// `stitched_oos_sharpe / mean_in_sample_sharpe` (`NaN` when the latter is not positive).
    pub oos_is_ratio: f64,
    /// Windows whose out-of-sample Sharpe is above 0.
    pub positive_windows: usize,
    /// Stitched Sharpe of buy & hold over the same test windows.
    pub stitched_buy_hold_sharpe: f64,
    /// Total return of the stitched out-of-sample portfolio (compounded).
    pub oos_total_return: f64,
}

/// Why a window cannot run.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(
        "the data spans {have_days:.1} days, fewer than one window needs ({need_days:.1}: \
         --train plus --test); use more data or shorter windows"
    )]
    TooShort { have_days: f64, need_days: f64 },
    #[error("window {index}: {message}")]
    Window { index: usize, message: String },
}

/// Close-to-close returns of holding `m` long (the first bar from its open).
fn hold_returns(m: &Market) -> Vec<f64> {
    let c = &m.candles;
    (0..c.len())
        .map(|i| {
            let prev = if i == 0 { c.open[0] } else { c.close[i - 1] };
            if prev > 0.0 {
                c.close[i] / prev - 1.0
            } else {
                0.0
            }
        })
        .collect()
}

/// Window `index`'s evolution on `problem`, as `organism evolve` would run it: its first front
/// ranked, feasible members only, and how many of the front were feasible.
fn evolve_window<P: Scored>(problem: &P, index: usize, setup: &Setup<'_>) -> (Vec<Ranked>, usize) {
    let evolver = Evolver::new(problem, setup.settings.clone());
    let seed = setup.seed.wrapping_add(index as u64);
    let state = match &setup.islands {
        Some(spec) => {
            super::islands::evolve_in_memory(&evolver, spec, seed, setup.generations, setup.tick)
        }
        None => {
            let mut state = evolver.init(seed, setup.tick);
            while state.generation < setup.generations {
                evolver.step(&mut state, setup.tick);
            }
            state
        }
    };
    let front: Vec<&super::Member> = state.population.iter().filter(|m| m.rank == 0).collect();
    let mut ranked: Vec<Ranked> = summary::rank(problem, &front);
    ranked.retain(|r| r.train.feasible);
    let feasible = ranked.len();
    (ranked, feasible)
}

/// Runs window `index` of `span` over `markets` (whole coins; each is cut here).
///
/// # Errors
/// [`WalkError::Window`] when a segment is too short for the run.
pub fn run_window(
    markets: &[Market],
    index: usize,
    span: Span,
    setup: &Setup<'_>,
) -> Result<Window, WalkError> {
    let err = |message: String| WalkError::Window { index, message };
    let mut seg = Segments {
        train: markets
            .iter()
            .filter_map(|m| m.between(span.train_from, span.validation_from))
            .collect(),
        validation: markets
            .iter()
            .filter_map(|m| m.between(span.validation_from, span.test_from))
            .collect(),
        holdout: Vec::new(),
        validation_from: span.validation_from,
        holdout_from: span.test_from,
    };
    // Coins too young for this window are not traded in it (what was left out is not reported
    // per window: it changes as the windows roll).
    seg.drop_short(&setup.entries);
    check_lengths(&seg, &setup.entries, "the training window").map_err(|e| err(e.to_string()))?;
    let problem = UniverseProblem::new(
        setup.entries.clone(),
        seg,
        setup.backtest,
        setup.aggregation,
        setup.regime,
        (setup.worlds, setup.seed.wrapping_add(index as u64)),
    );
    let (ranked, front_feasible) = evolve_window(&problem, index, setup);
    let chosen: Vec<&Ranked> = ranked.iter().take(setup.top).collect();

    // In-sample: the chosen members' portfolio on the training segment.
    let mut is_series = Vec::new();
    for r in &chosen {
        let reports = problem.backtests(r.seed_index, &r.genes, r.program.as_ref(), &problem.train);
        for (p, (rep, _)) in problem.train.iter().zip(reports) {
            is_series.push((
                p.market.candles.ts.clone(),
                fitness::returns(&rep.equity, rep.cash),
            ));
        }
    }
    let bars_per_year = problem.train[0].market.candles.bars_per_year();
    let (_, is_returns) = mean_by_time(&is_series);
    let in_sample_sharpe = if chosen.is_empty() {
        f64::NAN
    } else {
        fitness::sharpe(&is_returns, bars_per_year)
    };

    // Out of sample: targets on [train_from, test_to), traded on the test window only.
    let wide: Vec<Prepared> = markets
        .iter()
        .filter_map(|m| m.between(span.train_from, span.test_to))
        .filter(|m| m.candles.ts.last().is_some_and(|&t| t >= span.test_from))
        .map(Prepared::new)
        .collect();
    let tests: Vec<(usize, Market)> = wide
        .iter()
        .map(|p| {
            let a = p.market.candles.ts.partition_point(|&t| t < span.test_from);
            (a, p.market.slice(a..p.market.candles.len()))
        })
        .collect();
    let mut oos_series = Vec::new();
    let mut selected = Vec::new();
    for r in &chosen {
        let mut per_coin: Vec<Metrics> = Vec::new();
        for (p, (a, test)) in wide.iter().zip(&tests) {
            let targets = problem
                .targets(r.seed_index, &r.genes, r.program.as_ref(), p)
                .slice(*a..p.market.candles.len());
            let rep = run(
                &test.candles,
                &test.funding_per_bar,
                &targets,
                &setup.backtest,
            );
            per_coin.push(Metrics::compute(
                &rep,
                &test.candles.ts,
                test.candles.bars_per_year(),
            ));
            oos_series.push((
                test.candles.ts.clone(),
                fitness::returns(&rep.equity, rep.cash),
            ));
        }
        let fig = Figures::of(&per_coin, &setup.aggregation);
        selected.push(Selected {
            id: r.id.clone(),
            seed: r.seed.clone(),
            program: r.program_text.clone(),
            genes: r.gene_text.clone(),
            train_sharpe: r.train.sharpe,
            validation_sharpe: r.validation.sharpe,
            test_sharpe: fig.sharpe,
            test_trades: fig.trades,
            test_sharpe_se: None,
            test_rank_ic: None,
        });
    }
    let hold: Vec<(Vec<i64>, Vec<f64>)> = tests
        .iter()
        .map(|(_, m)| (m.candles.ts.clone(), hold_returns(m)))
        .collect();
    let (ts, buy_hold) = mean_by_time(&hold);
    let returns = if chosen.is_empty() {
        vec![0.0; ts.len()]
    } else {
        let (oos_ts, r) = mean_by_time(&oos_series);
        debug_assert_eq!(oos_ts, ts);
        r
    };
    Ok(Window {
        index,
        span,
        selected,
        front_feasible,
        in_sample_sharpe,
        out_of_sample_sharpe: fitness::sharpe(&returns, bars_per_year),
        buy_hold_sharpe: fitness::sharpe(&buy_hold, bars_per_year),
        ts,
        returns,
        buy_hold,
    })
}

/// What a portfolio walk-forward's windows evolve over: the portfolio seeds, who may be held
/// and the book's caps.
pub struct PortfolioWalk {
    pub entries: Vec<&'static crate::seeds::portfolio::PortfolioEntry>,
    pub membership: crate::market::membership::MembershipRule,
    pub limits: crate::execution::portfolio::Limits,
}

/// Runs window `index` of `span` for portfolio strategies over `panel` (the whole universe):
/// evolution as `evolve --mode portfolio` on the training window (validation with the bars
/// before it as warm-up), then the `top` feasible members traded as they are on the test
/// window, scores and membership seeing the training window's bars before it. The window's
/// portfolio is the selected members' accounts, returns averaged per bar; buy & hold is the
/// equal-weight coins of the test window held long.
///
/// # Errors
/// [`WalkError::Window`] when a segment is too short for the run.
pub fn run_portfolio_window(
    panel: &crate::market::panel::Panel,
    index: usize,
    span: Span,
    setup: &Setup<'_>,
    walk: &PortfolioWalk,
) -> Result<Window, WalkError> {
    use super::portfolio::{PanelSegment, PortfolioProblem};
    let err = |message: String| WalkError::Window { index, message };
    let segment = |to: i64, from: i64| {
        let p = panel.between(span.train_from, to);
        let start = p.ts.partition_point(|&t| t < from);
        (p, start)
    };
    let (train, _) = segment(span.validation_from, span.train_from);
    let (validation, v_start) = segment(span.test_from, span.validation_from);
    let (test, t_start) = segment(span.test_to, span.test_from);
    for (name, bars) in [
        ("training", train.len()),
        ("validation", validation.len() - v_start),
        ("test", test.len() - t_start),
    ] {
        if bars < super::problem::MIN_SEGMENT_BARS {
            return Err(err(format!(
                "the {name} part has {bars} bars, fewer than {}; use longer windows",
                super::problem::MIN_SEGMENT_BARS
            )));
        }
    }
    let rule = walk.membership;
    let problem = PortfolioProblem {
        entries: walk.entries.clone(),
        train: PanelSegment::new(train, 0, rule),
        validation: PanelSegment::new(validation, v_start, rule),
        backtest: setup.backtest,
        membership: rule,
        limits: walk.limits,
        aggregation: setup.aggregation,
    };
    let (ranked, front_feasible) = evolve_window(&problem, index, setup);
    let chosen: Vec<&Ranked> = ranked.iter().take(setup.top).collect();
    let bars_per_year = panel.bars_per_year();
    let returns_of =
        |r: &crate::backtest::portfolio::PortfolioReport| fitness::returns(&r.equity, r.cash);
    let mean = |series: Vec<Vec<f64>>, n: usize| -> Vec<f64> {
        let mut m = vec![0.0; n];
        for s in &series {
            for (a, b) in m.iter_mut().zip(s) {
                *a += b / series.len() as f64;
            }
        }
        m
    };
    let is_returns = mean(
        chosen
            .iter()
            .map(|r| {
                returns_of(
                    &problem
                        .backtest(r.seed_index, &r.genes, &problem.train)
                        .report,
                )
            })
            .collect(),
        problem.train.panel.len(),
    );
    let in_sample_sharpe = if chosen.is_empty() {
        f64::NAN
    } else {
        fitness::sharpe(&is_returns, bars_per_year)
    };
    let test = PanelSegment::new(test, t_start, rule);
    let n_test = test.panel.len() - t_start;
    let mut selected = Vec::new();
    let mut oos = Vec::new();
    for r in &chosen {
        let run = problem.backtest(r.seed_index, &r.genes, &test);
        let d = fitness::portfolio::Diagnostics::of(&test.panel, &run.schedule, &run.report);
        oos.push(returns_of(&run.report));
        selected.push(Selected {
            id: r.id.clone(),
            seed: r.seed.clone(),
            program: None,
            genes: r.gene_text.clone(),
            train_sharpe: r.train.sharpe,
            validation_sharpe: r.validation.sharpe,
            test_sharpe: run.figures.sharpe,
            test_trades: run.figures.fills,
            test_sharpe_se: Some(run.figures.sharpe_se),
            test_rank_ic: Some(d.rank_ic),
        });
    }
    let returns = mean(oos, n_test);
    let hold: Vec<(Vec<i64>, Vec<f64>)> = test
        .panel
        .coins
        .iter()
        .filter_map(|c| {
            let m = c.market.between(span.test_from, span.test_to)?;
            Some((m.candles.ts.clone(), hold_returns(&m)))
        })
        .collect();
    let (hold_ts, hold_mean) = mean_by_time(&hold);
    // Buy & hold on the test grid (a bar where no coin trades earns 0).
    let ts = test.ts().to_vec();
    let buy_hold: Vec<f64> = ts
        .iter()
        .map(|t| hold_ts.binary_search(t).map_or(0.0, |i| hold_mean[i]))
        .collect();
    Ok(Window {
        index,
        span,
        selected,
        front_feasible,
        in_sample_sharpe,
        out_of_sample_sharpe: fitness::sharpe(&returns, bars_per_year),
        buy_hold_sharpe: fitness::sharpe(&buy_hold, bars_per_year),
        ts,
        returns,
        buy_hold,
    })
}

/// The overall figures of finished windows; `bars_per_year` annualizes the stitched Sharpe.
pub fn summarize(windows: &[Window], bars_per_year: f64) -> Summary {
    let returns: Vec<f64> = windows
        .iter()
        .flat_map(|w| w.returns.iter().copied())
        .collect();
    let hold: Vec<f64> = windows
        .iter()
        .flat_map(|w| w.buy_hold.iter().copied())
        .collect();
    let is: Vec<f64> = windows
        .iter()
        .map(|w| w.in_sample_sharpe)
        .filter(|s| s.is_finite())
        .collect();
    let mean_is = if is.is_empty() {
        f64::NAN
    } else {
        is.iter().sum::<f64>() / is.len() as f64
    };
    let oos = fitness::sharpe(&returns, bars_per_year);
    Summary {
        windows: windows.len(),
        stitched_oos_sharpe: oos,
        mean_in_sample_sharpe: mean_is,
        oos_is_ratio: if mean_is > 0.0 {
            oos / mean_is
        } else {
            f64::NAN
        },
        positive_windows: windows
            .iter()
            .filter(|w| w.out_of_sample_sharpe > 0.0)
            .count(),
        stitched_buy_hold_sharpe: fitness::sharpe(&hold, bars_per_year),
        oos_total_return: returns.iter().fold(1.0, |v, r| v * (1.0 + r)) - 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn lengths_parse() {
        assert_eq!(parse_length("180d"), Ok(180 * DAY));
        assert_eq!(parse_length("12h"), Ok(12 * 3_600_000));
        assert_eq!(parse_length("2w"), Ok(14 * DAY));
        assert_eq!(parse_length("90m"), Ok(90 * 60_000));
        assert!(parse_length("180").unwrap_err().contains("`180`"));
        assert!(parse_length("0d").is_err());
        assert!(parse_length("-3d").is_err());
        assert!(parse_length("d").is_err());
    }

    #[test]
    fn windows_by_hand() {
        // 600 days, train 180, test 60, step 60: windows start at 0, 60, …, 360 (360 + 240 =
        // 600 still fits; 420 + 240 does not): 7 windows. Inner training share 0.75.
        let plan = Plan {
            train_ms: 180 * DAY,
            test_ms: 60 * DAY,
            step_ms: 60 * DAY,
        };
        let w = windows(0, 600 * DAY, &plan, 0.75);
        assert_eq!(w.len(), 7);
        assert_eq!(
            w[0],
            Span {
                train_from: 0,
                validation_from: 135 * DAY,
                test_from: 180 * DAY,
                test_to: 240 * DAY
            }
        );
        assert_eq!(w[6].train_from, 360 * DAY);
        assert_eq!(w[6].test_to, 600 * DAY);
        // Test windows tile the span after the first training window without overlap.
        for p in w.windows(2) {
            assert_eq!(p[0].test_to, p[1].test_from);
        }
        assert!(windows(0, 239 * DAY, &plan, 0.75).is_empty());
    }

    #[test]
    fn portfolio_returns_average_per_bar() {
        let (ts, r) = mean_by_time(&[
            (vec![1, 2, 3], vec![0.01, 0.02, 0.03]),
            (vec![2, 3, 4], vec![0.04, -0.02, 0.05]),
        ]);
        assert_eq!(ts, vec![1, 2, 3, 4]);
        let want = [0.01, 0.03, 0.005, 0.05];
        for (g, w) in r.iter().zip(want) {
            assert!((g - w).abs() < 1e-15);
        }
    }
}
