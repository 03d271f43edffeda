//! The portfolio problem (`evolve --mode portfolio`): the cross-sectional seeds' genomes, each
//! scored as one account over a universe of coins — the four objectives of its own equity
//! curve on the training segment of the universe, cut in time like a single-coin run's.
//!
//! A member is a seed index into the run's portfolio seeds and its genes (its own, then the
//! construction genes), exactly as a single-coin seed's genome; there are no programs. The
//! objectives: the Sharpe objective of the run ([`SharpeObjective`]: plain, fold lower bound
//! or PSR) of the portfolio's per-bar equity returns, the share of 30-day windows with a gain,
//! the maximum drawdown, and the notional traded per year as a multiple of average equity. A
//! genome is feasible when its account traded at least `evolution.min_trades` fills; fewer is a
//! violation of `min_trades − fills`.
//!
//! Training is the panel from the first bar; validation trades from its own first bar with the
//! training bars before it as warm-up (scores and membership see that past; the account holds
//! nothing until validation starts), so a long look-back is judged on every validation bar.
//! The holdout is never loaded here.

use serde::{Deserialize, Serialize};

use super::{
    problem::{Aggregation, Figures, Scored, SharpeObjective, Split},
    Evaluation, Problem,
};
use crate::{
    backtest::portfolio::{run as run_book, PortfolioReport},
    execution::{portfolio::Limits, EngineConfig},
    fitness::portfolio::{Diagnostics, PortfolioFigures},
    genome::{program::Program, SeedSpec},
    market::{
        membership::MembershipRule,
        panel::Panel,
        universe::{load_panel, CoinPick, DataSelection, PanelSelection},
        DataError,
    },
    seeds::portfolio::{PanelContext, PortfolioEntry, PortfolioGenome},
    strategy::portfolio::Rebalance,
};

/// What a portfolio run adds to its [`RunSpec`](super::checkpoint::RunSpec): which coins, who
/// may be held when, and the book's caps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortfolioRun {
    /// `--coins`: every coin, the top N by trailing volume at each rebalance, or a list.
    pub pick: CoinPick,
    /// Coins never loaded (config `universe.exclude` and `--exclude`).
    pub exclude: Vec<String>,
    /// Config `[universe]`, with `top` from `--coins top:N`.
    pub membership: MembershipRule,
    /// Config `[book]`.
    pub limits: Limits,
}

/// Where a portfolio strategy trades, as the registry keeps it: the data (folder, source,
/// interval, time range), the coins and who may be held when, the book's caps, and the
/// fingerprint of the data it was validated on. What `paper replay` rebuilds its universe from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UniverseDefinition {
    /// The data folder (`None`: the bundled synthetic market).
    pub path: Option<std::path::PathBuf>,
    pub source: String,
    pub interval: String,
    /// The run's `--timerange`, if it had one.
    pub timerange: Option<crate::market::timerange::TimeRange>,
    /// `--coins` (`all`, `top:N` or a list), as text.
    pub coins: String,
    pub exclude: Vec<String>,
    pub membership: MembershipRule,
    pub limits: Limits,
    /// The run's data fingerprint (hex).
    pub data_fingerprint: String,
}

impl UniverseDefinition {
    /// The universe of a portfolio run `pr` over `data`, validated on data of `fingerprint`.
    pub fn of(data: &DataSelection, pr: &PortfolioRun, fingerprint: u64) -> Self {
        Self {
            path: data.path.clone(),
            source: data.source.clone(),
            interval: data.interval.clone(),
            timerange: data.timerange,
            coins: pr.pick.to_string(),
            exclude: pr.exclude.clone(),
            membership: pr.membership,
            limits: pr.limits,
            data_fingerprint: format!("{fingerprint:016x}"),
        }
    }

    /// The portfolio run it describes.
    ///
    /// # Errors
    /// A message when `coins` is not `all`, `top:N` or a list.
    pub fn portfolio_run(&self) -> Result<PortfolioRun, String> {
        Ok(PortfolioRun {
            pick: self.coins.parse()?,
            exclude: self.exclude.clone(),
            membership: self.membership,
            limits: self.limits,
        })
    }

    /// One line: `<source> <interval> from <path>, coins <pick> (exclude …), membership …`.
    pub fn describe(&self) -> String {
        let m = &self.membership;
        format!(
            "{} {} bars from {}{}, --coins {}{}; members: {} bars of history, {} USD a day over \
             {} days{}; data fingerprint {}",
            if self.source.is_empty() {
                "any source"
            } else {
                &self.source
            },
            self.interval,
            self.path
                .as_ref()
                .map_or("the bundled synthetic market".into(), |p| p
                    .display()
                    .to_string()),
            self.timerange.map_or(String::new(), |t| format!(" ({t})")),
            self.coins,
            if self.exclude.is_empty() {
                String::new()
            } else {
                format!(" excluding {}", self.exclude.join(","))
            },
            m.min_history,
            m.min_volume_usd,
            m.volume_days,
            m.top
                .map_or(String::new(), |n| format!(", top {n} by volume")),
            self.data_fingerprint
        )
    }
}

/// A portfolio's universe on one grid, with what loading it found.
#[derive(Debug)]
pub struct UniversePanel {
    pub panel: Panel,
    /// Where the data came from, for messages.
    pub origin: String,
    /// One line per coin that needs one (left out, doubted bars, no funding).
    pub notes: Vec<String>,
    /// [`fingerprint`](super::checkpoint::fingerprint) of the coins' data.
    pub fingerprint: u64,
}

/// Loads a portfolio's universe: from a folder of candle files through
/// [`load_panel`](crate::market::universe::load_panel) (lenient: a file that does not load is
/// left out with a note), or the synthetic market when `data.path` is `None`; `pr` picks and
/// excludes coins, `data.timerange` cuts the bars. `progress` is called with (files done,
/// files).
///
/// # Errors
/// [`DataError`] when nothing matching loads or the selection names a coin that is not there.
pub fn load_universe_panel(
    data: &DataSelection,
    pr: &PortfolioRun,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<UniversePanel, DataError> {
    let (markets, origin, notes, doubted) = match &data.path {
        Some(path) => {
            let loaded = load_panel(
                &PanelSelection {
                    path: path.clone(),
                    source: data.source.clone(),
                    interval: data.interval.clone(),
                    pick: pr.pick.clone(),
                    exclude: pr.exclude.clone(),
                    timerange: data.timerange,
                    keep_not_crypto: false,
                },
                progress,
            )?;
            let doubted: Vec<Vec<usize>> = loaded
                .panel
                .coins
                .iter()
                .map(|c| c.doubted.clone())
                .collect();
            let markets = loaded.panel.coins.into_iter().map(|c| c.market).collect();
            (markets, loaded.origin, loaded.notes, doubted)
        }
        None => {
            let mut data = data.clone();
            data.coins = match &pr.pick {
                CoinPick::List(c) => c.clone(),
                _ => Vec::new(),
            };
            let u = crate::market::load_universe(&data)?;
            let markets: Vec<_> = u
                .markets
                .into_iter()
                .filter(|m| !pr.exclude.iter().any(|x| x.eq_ignore_ascii_case(&m.coin)))
                .collect();
            let doubted = vec![Vec::new(); markets.len()];
            (markets, u.origin, u.notes, doubted)
        }
    };
    let fingerprint = super::checkpoint::fingerprint(&markets);
    let mut panel = Panel::new(markets);
    for (c, d) in panel.coins.iter_mut().zip(doubted) {
        c.doubted = d;
    }
    if panel.is_empty() {
        return Err(DataError::Selection(format!("{origin}: no bars")));
    }
    Ok(UniversePanel {
        panel,
        origin,
        notes,
        fingerprint,
    })
}

/// Where a run's split puts validation and the holdout on `panel`'s time span (UTC ms): the
/// same fractions of the span as a single-coin run's.
pub fn split_bounds(panel: &Panel, split: &Split) -> (i64, i64) {
    split.bounds_of((panel.ts[0], panel.ts[panel.len() - 1]))
}

/// One time segment of the universe, with what every genome's schedule shares. The panel may
/// begin before the segment (`start` > 0): the bars before are warm-up — scores and membership
/// see them, the account trades from `start` on and the figures are of the segment alone.
#[derive(Debug, Clone)]
pub struct PanelSegment {
    pub panel: Panel,
    pub context: PanelContext,
    /// The segment's first grid bar.
    pub start: usize,
}

impl PanelSegment {
    /// The segment starting at grid bar `start` of `panel`, keeping the members of `rule`.
    pub fn new(panel: Panel, start: usize, rule: MembershipRule) -> Self {
        let context = PanelContext::keeping(&panel, rule);
        Self {
            panel,
            context,
            start,
        }
    }

    /// The segment's grid times.
    pub fn ts(&self) -> &[i64] {
        &self.panel.ts[self.start..]
    }
}

/// The portfolio seeds over the training segment of a universe.
pub struct PortfolioProblem {
    pub entries: Vec<&'static PortfolioEntry>,
    pub train: PanelSegment,
    pub validation: PanelSegment,
    pub backtest: EngineConfig,
    pub membership: MembershipRule,
    pub limits: Limits,
    /// The Sharpe objective and `min_trades`; the worst-coin weight does not apply (one
    /// account).
    pub aggregation: Aggregation,
}

/// One genome's backtest on one segment: its rebalances, the book's report and the figures.
pub struct PortfolioRunResult {
    pub schedule: Vec<Rebalance>,
    pub report: PortfolioReport,
    pub figures: PortfolioFigures,
}

impl PortfolioProblem {
    /// A null copy of the problem ([`RunProblem::null_copy`](super::problem::RunProblem::null_copy)):
    /// each segment's own bars return-permuted together (correlation kept, time structure
    /// lost), then each bar's moves dealt out among the coins; warm-up bars and doubted bars
    /// kept.
    pub fn null_copy(&self, rng: &mut rand_chacha::ChaCha8Rng) -> Self {
        let mut copy = |seg: &PanelSegment| {
            let keep = |markets: Vec<crate::market::Market>| {
                let mut panel = crate::market::panel::Panel::new(markets);
                for (c, o) in panel.coins.iter_mut().zip(&seg.panel.coins) {
                    c.doubted.clone_from(&o.doubted);
                }
                panel
            };
            let permuted = keep(crate::market::permute::permute_panel_from(
                &seg.panel, seg.start, rng,
            ));
            let shuffled = keep(crate::market::permute::shuffle_cross_section_from(
                &permuted, seg.start, rng,
            ));
            PanelSegment::new(shuffled, seg.start, self.membership)
        };
        let train = copy(&self.train);
        let validation = copy(&self.validation);
        Self {
            entries: self.entries.clone(),
            train,
            validation,
            backtest: self.backtest,
            membership: self.membership,
            limits: self.limits,
            aggregation: self.aggregation,
        }
    }

    /// The genome of seed index `seed` with `genes`.
    pub fn genome(&self, seed: u16, genes: &[f64]) -> PortfolioGenome {
        PortfolioGenome {
            entry: self.entries[seed as usize],
            genes: genes.to_vec(),
        }
    }

    /// The backtest of one genome on `seg`: rebalances from its start, the report and figures
    /// of its bars.
    pub fn backtest(&self, seed: u16, genes: &[f64], seg: &PanelSegment) -> PortfolioRunResult {
        self.book(self.schedule(seed, genes, seg), seg)
    }

    /// One genome's rebalances on `seg`, from its start.
    pub fn schedule(&self, seed: u16, genes: &[f64], seg: &PanelSegment) -> Vec<Rebalance> {
        let g = self.genome(seed, genes);
        let p = &seg.panel;
        let scores = g.scores(p);
        g.schedule_from(p, &seg.context, &self.membership, &scores, seg.start)
    }

    /// The book of `schedule` on `seg` under the run's costs and caps: the report and figures
    /// of the segment's bars.
    pub fn book(&self, schedule: Vec<Rebalance>, seg: &PanelSegment) -> PortfolioRunResult {
        self.book_with(schedule, seg, &self.backtest)
    }

    /// [`Self::book`] under the engine `cfg` (other costs) instead of the run's.
    pub fn book_with(
        &self,
        schedule: Vec<Rebalance>,
        seg: &PanelSegment,
        cfg: &EngineConfig,
    ) -> PortfolioRunResult {
        let p = &seg.panel;
        let report = run_book(p, &schedule, cfg, &self.limits).since(seg.start);
        let figures = PortfolioFigures::of(&report, seg.ts(), p.bars_per_year());
        PortfolioRunResult {
            schedule,
            report,
            figures,
        }
    }

    /// The [`Figures`] of a backtest on `seg`, with `sharpe` as the Sharpe objective, and the
    /// portfolio diagnostics.
    pub fn figures_of(
        &self,
        r: &PortfolioRunResult,
        seg: &PanelSegment,
        sharpe: SharpeObjective,
    ) -> Figures {
        let e = evaluation(&r.figures, sharpe, self.aggregation.min_trades);
        Figures {
            sharpe: e.sharpe(),
            consistency: e.consistency(),
            max_drawdown: e.drawdown(),
            turnover: e.turnover(),
            total_return: r.figures.total_return,
            trades: r.figures.fills,
            feasible: e.feasible(),
            portfolio: Some(Diagnostics::of(&seg.panel, &r.schedule, &r.report)),
        }
    }

    /// The evaluation of backtest figures under the run's Sharpe objective and `min_trades`.
    pub fn evaluation(&self, f: &PortfolioFigures) -> Evaluation {
        evaluation(f, self.aggregation.sharpe, self.aggregation.min_trades)
    }

    /// The evaluation on the validation segment.
    pub fn validate(&self, seed: u16, genes: &[f64]) -> Evaluation {
        self.evaluation(&self.backtest(seed, genes, &self.validation).figures)
    }
}

impl Scored for PortfolioProblem {
    /// The account's figures on the segment, with the portfolio diagnostics.
    fn figures(
        &self,
        seed: u16,
        genes: &[f64],
        _program: Option<&Program>,
        validation: bool,
    ) -> Figures {
        let seg = if validation {
            &self.validation
        } else {
            &self.train
        };
        let r = self.backtest(seed, genes, seg);
        self.figures_of(&r, seg, self.aggregation.sharpe)
    }
}

/// The evaluation of backtest figures under Sharpe objective `sharpe` and `min_trades` fills.
fn evaluation(f: &PortfolioFigures, sharpe: SharpeObjective, min_trades: f64) -> Evaluation {
    let s = match sharpe {
        SharpeObjective::Plain => f.sharpe,
        SharpeObjective::Folds => f.fold_sharpe,
        SharpeObjective::Psr => f.psr,
    };
    Evaluation::new(
        s,
        f.consistency,
        f.max_drawdown,
        f.turnover,
        (min_trades - f.fills as f64).max(0.0),
    )
}

impl Problem for PortfolioProblem {
    fn specs(&self) -> Vec<&SeedSpec> {
        self.entries.iter().map(|e| &e.spec).collect()
    }
    fn evaluate(&self, seed: u16, genes: &[f64], _program: Option<&Program>) -> Evaluation {
        self.evaluation(&self.backtest(seed, genes, &self.train).figures)
    }
}
