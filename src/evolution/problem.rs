//! The problems evolved: the seed population over a universe of coins, and Workload B (the
//! 4-gene EMA crossover + ATR stop of BENCHMARKS.md) on one series.

use serde::{Deserialize, Serialize};

use super::{
    portfolio::{
        load_universe_panel, split_bounds, PanelSegment, PortfolioProblem, PortfolioRun,
        UniversePanel,
    },
    Evaluation, GenomeRef, Problem,
};
use crate::{
    backtest::{run, BacktestReport},
    bench::{cross_long_many, ema_cross_long_of, CrossPair, FastData, Series},
    execution::EngineConfig,
    fitness::Metrics,
    genome::{program::Program, GenomeError, SeedSpec},
    indicators::{atr, emas},
    market::{Market, Universe},
    seeds::{self, Prepared, SeedEntry},
};

/// Time split of the history: training, validation and holdout fractions of the time span.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub train: f64,
    pub validation: f64,
}

/// The three time segments of each coin.
#[derive(Debug)]
pub struct Segments {
    pub train: Vec<Market>,
    pub validation: Vec<Market>,
    /// The rest: `evolve` never reads it; only `backtest --segment holdout` (and later the
    /// promotion gauntlet) do.
    pub holdout: Vec<Market>,
    /// Start of the validation segment (UTC ms).
    pub validation_from: i64,
    /// Start of the holdout (UTC ms); `evolve` never reads data from here on.
    pub holdout_from: i64,
}

/// One of the three segments of a [`Split`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Train,
    Validation,
    Holdout,
}

impl std::str::FromStr for Segment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "train" | "training" => Ok(Self::Train),
            "validation" => Ok(Self::Validation),
            "holdout" => Ok(Self::Holdout),
            other => Err(format!(
                "`{other}` is not a segment: train, validation or holdout"
            )),
        }
    }
}

impl Segment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Validation => "validation",
            Self::Holdout => "holdout",
        }
    }
}

impl Segments {
    /// The markets of one segment.
    pub fn take(self, segment: Segment) -> Vec<Market> {
        match segment {
            Segment::Train => self.train,
            Segment::Validation => self.validation,
            Segment::Holdout => self.holdout,
        }
    }
}

impl Split {
    /// Where validation and the holdout start (UTC ms): `train` and `train + validation` of
    /// the universe's time span from its first bar.
    pub fn bounds(&self, u: &Universe) -> (i64, i64) {
        self.bounds_of(u.span())
    }

    /// Where validation and the holdout start on the time span `(first, last)` (UTC ms).
    pub fn bounds_of(&self, (first, last): (i64, i64)) -> (i64, i64) {
        let span = (last - first) as f64;
        (
            first + (span * self.train) as i64,
            first + (span * (self.train + self.validation)) as i64,
        )
    }

    /// Cuts every coin at the same timestamps: training is the first `train` of the universe's
    /// time span, validation the next `validation`, holdout the rest. Coins with no bars in a
    /// segment are left out of it.
    pub fn apply(&self, u: &Universe) -> Segments {
        let (first, last) = u.span();
        let (t1, t2) = self.bounds(u);
        let cut = |from: i64, to: i64| -> Vec<Market> {
            u.markets
                .iter()
                .filter_map(|m| m.between(from, to))
                .collect()
        };
        Segments {
            train: cut(first, t1),
            validation: cut(t1, t2),
            holdout: cut(t2, last + 1),
            validation_from: t1,
            holdout_from: t2,
        }
    }
}

/// How per-coin metrics become one objective vector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Aggregation {
    /// Weight of the worst coin: an objective is `(1−w)·mean + w·worst` over coins (worst =
    /// lowest Sharpe / consistency, highest drawdown / turnover). Rewards strategies that work
    /// on every coin rather than on one.
    pub worst_coin_weight: f64,
    /// Fewest trades per coin (mean over coins) for a feasible genome; fewer is infeasible,
    /// with violation `min_trades − mean trades`.
    pub min_trades: f64,
    /// Which Sharpe is the first objective.
    pub sharpe: SharpeObjective,
}

/// The Sharpe objective: the plain annualized Sharpe of the span, or the fold lower bound
/// ([`crate::fitness::fold_sharpe`]) that discounts luck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SharpeObjective {
    Plain,
    Folds,
    /// The probabilistic Sharpe ratio against zero ([`crate::fitness::psr_zero`]).
    Psr,
}

impl SharpeObjective {
    /// Its name in `evolution.sharpe_objective`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "sharpe",
            Self::Folds => "folds",
            Self::Psr => "psr",
        }
    }
}

impl std::str::FromStr for SharpeObjective {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sharpe" => Ok(Self::Plain),
            "folds" => Ok(Self::Folds),
            "psr" => Ok(Self::Psr),
            other => Err(format!(
                "`{other}` is not a Sharpe objective: sharpe, folds or psr"
            )),
        }
    }
}

/// Per-coin metrics aggregated into an evaluation.
pub fn aggregate(per_coin: &[Metrics], agg: &Aggregation) -> Evaluation {
    let n = per_coin.len().max(1) as f64;
    let w = agg.worst_coin_weight;
    let combine = |f: &dyn Fn(&Metrics) -> f64, higher_is_better: bool| {
        let mean = per_coin.iter().map(f).sum::<f64>() / n;
        let worst = per_coin.iter().map(f).fold(
            if higher_is_better {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            },
            |a, b| if higher_is_better { a.min(b) } else { a.max(b) },
        );
        if per_coin.is_empty() {
            0.0
        } else {
            (1.0 - w) * mean + w * worst
        }
    };
    let trades = per_coin.iter().map(|m| m.trades as f64).sum::<f64>() / n;
    let sharpe = match agg.sharpe {
        SharpeObjective::Plain => combine(&|m| m.sharpe, true),
        SharpeObjective::Folds => combine(&|m| m.fold_sharpe, true),
        SharpeObjective::Psr => combine(&|m| m.psr, true),
    };
    Evaluation::new(
        sharpe,
        combine(&|m| m.consistency, true),
        combine(&|m| m.max_drawdown, false),
        combine(&|m| m.turnover, false),
        (agg.min_trades - trades).max(0.0),
    )
}

/// What a genome did on one segment across coins: the four objectives exactly as evolution
/// scores them (the [`aggregate`] of the per-coin metrics), the mean total return over coins,
/// the trades over all coins, and whether the genome is feasible (enough trades).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    #[serde(deserialize_with = "crate::store::real")]
    pub sharpe: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub consistency: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub max_drawdown: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub turnover: f64,
    /// Mean over coins of `V[n−1]/cash − 1`.
    #[serde(deserialize_with = "crate::store::real")]
    pub total_return: f64,
    /// Entries summed over coins (a portfolio: its fills).
    pub trades: usize,
    pub feasible: bool,
    /// A portfolio member's rank IC, coins held and capacity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portfolio: Option<crate::fitness::portfolio::Diagnostics>,
}

impl Figures {
    /// The figures of per-coin metrics under `agg`.
    pub fn of(per_coin: &[Metrics], agg: &Aggregation) -> Self {
        let e = aggregate(per_coin, agg);
        let n = per_coin.len().max(1) as f64;
        Self {
            sharpe: e.sharpe(),
            consistency: e.consistency(),
            max_drawdown: e.drawdown(),
            turnover: e.turnover(),
            total_return: per_coin.iter().map(|m| m.total_return).sum::<f64>() / n,
            trades: per_coin.iter().map(|m| m.trades).sum(),
            feasible: e.feasible(),
            portfolio: None,
        }
    }
}

/// The seed population over the training segments of a universe.
pub struct UniverseProblem {
    pub entries: Vec<&'static SeedEntry>,
    pub train: Vec<Prepared>,
    pub validation: Vec<Prepared>,
    pub backtest: EngineConfig,
    pub aggregation: Aggregation,
    /// Applied to every strategy's targets (`--regime`).
    pub regime: Option<crate::strategy::regime::RegimeFilter>,
    /// The perturbed copies of `train` genomes are also scored on (none by default).
    pub worlds: Worlds,
}

/// A problem's perturbed worlds ([`super::worlds`]): their spec, the seed they were drawn
/// from, and the worlds.
#[derive(Default)]
pub struct Worlds {
    pub spec: super::worlds::WorldSpec,
    pub seed: u64,
    pub list: Vec<super::worlds::World>,
}

impl Worlds {
    /// The worlds of `spec` over training markets `train`, drawn from `seed`.
    pub fn build(train: &[Prepared], spec: super::worlds::WorldSpec, seed: u64) -> Self {
        Self {
            spec,
            seed,
            list: super::worlds::build(train, &spec, seed),
        }
    }
}

/// A problem whose members have [`Figures`] on training and validation (what
/// [`rank`](super::summary::rank) shows).
pub trait Scored: Problem {
    fn figures(
        &self,
        seed: u16,
        genes: &[f64],
        program: Option<&Program>,
        validation: bool,
    ) -> Figures;
}

impl Scored for UniverseProblem {
    /// The aggregated figures over the segment's coins.
    fn figures(
        &self,
        seed: u16,
        genes: &[f64],
        program: Option<&Program>,
        validation: bool,
    ) -> Figures {
        let markets = if validation {
            &self.validation
        } else {
            &self.train
        };
        Figures::of(
            &self.score(seed, genes, program, markets),
            &self.aggregation,
        )
    }
}

impl Scored for RunProblem {
    fn figures(
        &self,
        seed: u16,
        genes: &[f64],
        program: Option<&Program>,
        validation: bool,
    ) -> Figures {
        match self.route(seed) {
            Route::Coins(p) => p.figures(seed, genes, program, validation),
            Route::Portfolio(p, s) => p.figures(s, genes, None, validation),
        }
    }
}

/// What a run evolves: single-coin strategies over each coin, portfolio strategies over the
/// universe as one account, or both in one population (`--mode mixed` with portfolio seeds).
// One per run, never in a collection: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum RunProblem {
    Coins(UniverseProblem),
    Portfolio(PortfolioProblem),
    /// Seed indices: the single-coin seeds, the programs' index, then the portfolio seeds.
    Mixed(UniverseProblem, PortfolioProblem),
}

/// Which problem scores a seed index, and its index there.
enum Route<'a> {
    Coins(&'a UniverseProblem),
    Portfolio(&'a PortfolioProblem, u16),
}

impl RunProblem {
    fn route(&self, seed: u16) -> Route<'_> {
        match self {
            Self::Coins(p) => Route::Coins(p),
            Self::Portfolio(p) => Route::Portfolio(p, seed),
            Self::Mixed(c, p) => match (seed as usize).checked_sub(c.entries.len() + 1) {
                Some(j) => Route::Portfolio(p, j as u16),
                None => Route::Coins(c),
            },
        }
    }

    /// The single-coin problem, when the run has one.
    pub fn coins(&self) -> Option<&UniverseProblem> {
        match self {
            Self::Coins(p) | Self::Mixed(p, _) => Some(p),
            Self::Portfolio(_) => None,
        }
    }

    /// The portfolio problem, when the run has one.
    pub fn portfolio(&self) -> Option<&PortfolioProblem> {
        match self {
            Self::Coins(_) => None,
            Self::Portfolio(p) | Self::Mixed(_, p) => Some(p),
        }
    }

    /// The evaluation on the validation segment.
    pub fn validate(&self, seed: u16, genes: &[f64], program: Option<&Program>) -> Evaluation {
        match self.route(seed) {
            Route::Coins(p) => p.validate(seed, genes, program),
            Route::Portfolio(p, s) => p.validate(s, genes),
        }
    }

    /// The run's seeds by index (what a member's encoding means).
    pub fn seed_set(&self) -> super::SeedSet {
        match self {
            Self::Coins(p) => super::SeedSet::Coins(p.entries.clone()),
            Self::Portfolio(p) => super::SeedSet::Portfolio(p.entries.clone()),
            Self::Mixed(c, p) => super::SeedSet::Mixed(c.entries.clone(), p.entries.clone()),
        }
    }

    /// The seeds' names, in seed-index order (the programs' index left out).
    pub fn seed_names(&self) -> Vec<&str> {
        let coins = self
            .coins()
            .into_iter()
            .flat_map(|p| p.entries.iter().map(|e| e.spec.name.as_str()));
        let portfolio = self
            .portfolio()
            .into_iter()
            .flat_map(|p| p.entries.iter().map(|e| e.spec.name.as_str()));
        coins.chain(portfolio).collect()
    }

    /// Null copy `k` of the run's data, for the null searches (`evolution.null_searches`):
    /// every coin's training and validation returns permuted (bar order lost, each coin's
    /// moves kept), and for portfolio strategies each bar's moves also dealt out among the
    /// coins (which coin made them lost), from stream `k` of `seed` (the run's).
    pub fn null_copy(&self, seed: u64, k: usize) -> RunProblem {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ SEARCH_NULL_STREAM);
        rng.set_stream(k as u64);
        let mut coins = |p: &UniverseProblem| {
            let mut copy = |ms: &[Prepared]| -> Vec<Prepared> {
                ms.iter()
                    .map(|m| {
                        Prepared::new(crate::market::permute::permute_market(&m.market, &mut rng))
                    })
                    .collect()
            };
            let train = copy(&p.train);
            let validation = copy(&p.validation);
            UniverseProblem {
                entries: p.entries.clone(),
                worlds: Worlds::build(&train, p.worlds.spec, p.worlds.seed),
                train,
                validation,
                backtest: p.backtest,
                aggregation: p.aggregation,
                regime: p.regime,
            }
        };
        match self {
            Self::Coins(c) => Self::Coins(coins(c)),
            Self::Portfolio(p) => Self::Portfolio(p.null_copy(&mut rng)),
            Self::Mixed(c, p) => {
                let c = coins(c);
                Self::Mixed(c, p.null_copy(&mut rng))
            }
        }
    }

    /// Coins in the training segment, and the training bars of the first (a portfolio: of
    /// the grid).
    pub fn training_shape(&self) -> (usize, usize) {
        match self {
            Self::Coins(p) | Self::Mixed(p, _) => (
                p.train.len(),
                p.train.first().map_or(0, |m| m.market.candles.len()),
            ),
            Self::Portfolio(p) => (p.train.panel.coins.len(), p.train.panel.len()),
        }
    }
}

impl Problem for RunProblem {
    fn specs(&self) -> Vec<&SeedSpec> {
        let mut v = self.coins().map(Problem::specs).unwrap_or_default();
        v.extend(self.portfolio().map(Problem::specs).unwrap_or_default());
        v
    }
    fn program_seed(&self) -> Option<u16> {
        self.coins().and_then(Problem::program_seed)
    }
    fn sentiment(&self) -> bool {
        self.coins().is_some_and(Problem::sentiment)
    }
    fn evaluate(&self, seed: u16, genes: &[f64], program: Option<&Program>) -> Evaluation {
        match self.route(seed) {
            Route::Coins(p) => p.evaluate(seed, genes, program),
            Route::Portfolio(p, s) => p.evaluate(s, genes, program),
        }
    }
}

/// Seed of the null searches' copies (XORed with the run's seed).
const SEARCH_NULL_STREAM: u64 = 0x7365_6172_6368_0001;

/// A run's problem built from its [`RunSpec`](super::checkpoint::RunSpec), with what was learnt
/// loading its data.
pub struct LoadedRun {
    pub problem: RunProblem,
    /// [`fingerprint`](super::checkpoint::fingerprint) of the data.
    pub fingerprint: u64,
    pub validation_from: i64,
    pub holdout_from: i64,
    /// Where the data came from, for messages.
    pub origin: String,
    /// Notes about the data (gaps, missing funding), for the user.
    pub notes: Vec<String>,
    /// Segments too short for a seed's default look-back (see [`check_lengths`]): worth saying
    /// when a run starts.
    pub warnings: Vec<String>,
}

/// Why a run's problem could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemError {
    #[error("loading market data: {0}")]
    Data(#[from] crate::market::DataError),
    #[error("{0}")]
    Seeds(String),
    #[error("no coin has bars in the training part of {0}")]
    NoTraining(String),
    #[error("{0}")]
    TooShort(String),
}

/// Fewest bars the training and the validation segment of every coin must hold.
pub const MIN_SEGMENT_BARS: usize = 50;

impl Segments {
    /// In a universe of several coins, leaves out of a segment every coin too young for it: fewer
    /// than [`MIN_SEGMENT_BARS`] bars there, or (in training) no more bars than the longest
    /// default look-back of `entries` — a coin too young is simply not traded yet. Returns one
    /// note per coin left out. A segment of one coin, or one where every coin is too short, is
    /// left alone, for [`check_lengths`] to refuse as before.
    pub fn drop_short(&mut self, entries: &[&SeedEntry]) -> Vec<String> {
        let lookback = entries
            .iter()
            .filter_map(|e| e.spec.longest_lookback(&e.spec.default_genome()))
            .map(|(_, p)| p)
            .max()
            .unwrap_or(0);
        let mut notes = Vec::new();
        for (name, markets) in [
            ("training", &mut self.train),
            ("validation", &mut self.validation),
        ] {
            let need = if name == "training" {
                MIN_SEGMENT_BARS.max(lookback + 1)
            } else {
                MIN_SEGMENT_BARS
            };
            let long_enough = markets.iter().filter(|m| m.candles.len() >= need).count();
            if markets.len() < 2 || long_enough == 0 {
                continue;
            }
            markets.retain(|m| {
                let n = m.candles.len();
                if n < need {
                    notes.push(format!(
                        "{}: left out of the {name} segment: {n} bars there, it needs {need}",
                        m.coin
                    ));
                }
                n >= need
            });
        }
        notes
    }
}

/// Checks that the segments can hold the run: at least [`MIN_SEGMENT_BARS`] per coin in training
/// and validation, and training longer than every seed's longest default look-back period.
/// Returns notes for a validation segment shorter than a seed's default look-back (that seed
/// cannot be judged out of sample at its defaults).
///
/// # Errors
/// A message naming the segment, the coin, its bars and the minimum.
pub fn check_lengths(
    seg: &Segments,
    entries: &[&SeedEntry],
    origin: &str,
) -> Result<Vec<String>, ProblemError> {
    let mut notes = Vec::new();
    for (name, markets) in [("training", &seg.train), ("validation", &seg.validation)] {
        let Some(shortest) = markets.iter().min_by_key(|m| m.candles.len()) else {
            return Err(ProblemError::TooShort(format!(
                "{origin}: the {name} segment has no bars; use more data or change \
                 evolution.train_fraction / validation_fraction"
            )));
        };
        let n = shortest.candles.len();
        if n < MIN_SEGMENT_BARS {
            return Err(ProblemError::TooShort(format!(
                "{origin}: {}: the {name} segment has {n} bars, fewer than the minimum of \
                 {MIN_SEGMENT_BARS}; use more data or change the split \
                 (evolution.train_fraction / validation_fraction)",
                shortest.coin
            )));
        }
        for e in entries {
            let Some((gene, period)) = e.spec.longest_lookback(&e.spec.default_genome()) else {
                continue;
            };
            if n > period {
                continue;
            }
            let msg = format!(
                "the {name} segment has {n} bars ({}), but seed {} looks back {period} bars \
                 ({gene} at its default) and needs at least {}",
                shortest.coin,
                e.spec.name,
                period + 1
            );
            if name == "training" {
                return Err(ProblemError::TooShort(format!(
                    "{origin}: {msg}; use more data or leave the seed out (--seeds)"
                )));
            }
            notes.push(format!(
                "{msg}: it cannot be judged out of sample at its defaults"
            ));
        }
    }
    Ok(notes)
}

/// Loads the run's data, splits it and prepares the training and validation segments.
///
/// # Errors
/// [`ProblemError`] for data that does not load, an unknown seed, or an empty training segment.
pub fn load_run(run: &super::checkpoint::RunSpec) -> Result<LoadedRun, ProblemError> {
    let (coin_names, xs_names) = run.seed_kinds();
    match &run.portfolio {
        Some(pr) if run.settings.mode == super::Mode::Portfolio => {
            load_portfolio_run(run, pr, &xs_names)
        }
        // A mixed run with portfolio seeds: both problems, on the same data.
        Some(pr) => {
            let c = load_coin_run(run, &coin_names)?;
            let p = load_portfolio_run(run, pr, &xs_names)?;
            let (RunProblem::Coins(coins), RunProblem::Portfolio(portfolio)) =
                (c.problem, p.problem)
            else {
                unreachable!("the loaders return their own kinds")
            };
            let mut notes = c.notes;
            for n in p.notes {
                if !notes.contains(&n) {
                    notes.push(n);
                }
            }
            let mut warnings = c.warnings;
            warnings.extend(p.warnings);
            let mut both = c.fingerprint.to_le_bytes().to_vec();
            both.extend(p.fingerprint.to_le_bytes());
            Ok(LoadedRun {
                problem: RunProblem::Mixed(coins, portfolio),
                fingerprint: super::checkpoint::fnv1a(&both),
                validation_from: c.validation_from,
                holdout_from: c.holdout_from,
                origin: c.origin,
                notes,
                warnings,
            })
        }
        None => load_coin_run(run, &coin_names),
    }
}

/// A single-coin run's universe, split, with seeds `names`.
fn load_coin_run(
    run: &super::checkpoint::RunSpec,
    names: &[String],
) -> Result<LoadedRun, ProblemError> {
    let u = crate::market::load_universe(&run.data)?;
    let fingerprint = super::checkpoint::fingerprint(&u.markets);
    let mut seg = run.split.apply(&u);
    if seg.train.is_empty() {
        return Err(ProblemError::NoTraining(u.origin));
    }
    let entries = crate::seeds::select(names).map_err(ProblemError::Seeds)?;
    let mut notes = u.notes;
    notes.extend(seg.drop_short(&entries));
    let warnings = check_lengths(&seg, &entries, &u.origin)?;
    let (validation_from, holdout_from) = (seg.validation_from, seg.holdout_from);
    Ok(LoadedRun {
        problem: RunProblem::Coins(UniverseProblem::new(
            entries,
            seg,
            run.backtest,
            run.aggregation,
            run.regime,
            (run.worlds, run.seed),
        )),
        fingerprint,
        validation_from,
        holdout_from,
        origin: u.origin,
        notes,
        warnings,
    })
}

/// A portfolio run's universe ([`load_universe_panel`]), split in time as a single-coin run's.
fn load_portfolio_run(
    run: &super::checkpoint::RunSpec,
    pr: &PortfolioRun,
    names: &[String],
) -> Result<LoadedRun, ProblemError> {
    let entries = names
        .iter()
        .map(|n| crate::seeds::portfolio::find_portfolio(n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ProblemError::Seeds)?;
    let UniversePanel {
        panel,
        origin,
        notes,
        fingerprint,
    } = load_universe_panel(&run.data, pr, &mut |_, _| {})?;
    let first = panel.ts[0];
    let (t1, t2) = split_bounds(&panel, &run.split);
    // Training from the first bar; validation trades from t1 with the training bars before it
    // as warm-up (the past, so no look-ahead), so a long look-back is judged on every
    // validation bar.
    let train = panel.between(first, t1);
    let validation = panel.between(first, t2);
    let start = validation.ts.partition_point(|&t| t < t1);
    for (name, bars) in [
        ("training", train.len()),
        ("validation", validation.len() - start),
    ] {
        if bars < MIN_SEGMENT_BARS {
            return Err(ProblemError::TooShort(format!(
                "{origin}: the {name} segment has {bars} bars, fewer than the minimum of \
                 {MIN_SEGMENT_BARS}; use more data or change the split \
                 (evolution.train_fraction / validation_fraction)"
            )));
        }
    }
    let mut warnings = Vec::new();
    for e in &entries {
        if let Some((gene, period)) = e.spec.longest_lookback(&e.spec.default_genome()) {
            if train.len() <= period {
                warnings.push(format!(
                    "the training segment has {} bars, but seed {} looks back {period} bars \
                     ({gene} at its default): it trades only once it has them",
                    train.len(),
                    e.spec.name
                ));
            }
        }
    }
    Ok(LoadedRun {
        problem: RunProblem::Portfolio(PortfolioProblem {
            entries,
            train: PanelSegment::new(train, 0, pr.membership),
            validation: PanelSegment::new(validation, start, pr.membership),
            backtest: run.backtest,
            membership: pr.membership,
            limits: pr.limits,
            aggregation: run.aggregation,
        }),
        fingerprint,
        validation_from: t1,
        holdout_from: t2,
        origin,
        notes,
        warnings,
    })
}

/// A portfolio run's holdout: its whole universe, the holdout's bars the segment and every bar
/// before them warm-up (as validation has training before it).
///
/// # Errors
/// [`ProblemError`] for data that does not load, a run that is not a portfolio run, or a
/// holdout without bars (an empty segment is returned as one with no bars after `start`).
pub fn load_portfolio_holdout(
    run: &super::checkpoint::RunSpec,
) -> Result<PanelSegment, ProblemError> {
    let Some(pr) = &run.portfolio else {
        return Err(ProblemError::Seeds("not a portfolio run".into()));
    };
    let loaded = load_universe_panel(&run.data, pr, &mut |_, _| {})?;
    let (_, t2) = split_bounds(&loaded.panel, &run.split);
    let start = loaded.panel.ts.partition_point(|&t| t < t2);
    Ok(PanelSegment::new(loaded.panel, start, pr.membership))
}

/// The backtest of per-bar targets on a prepared market, with its metrics: what evolution
/// scores and what `organism backtest` prints.
pub fn backtest_targets(
    targets: &crate::strategy::Targets,
    p: &Prepared,
    cfg: &EngineConfig,
) -> (BacktestReport, Metrics) {
    let m = &p.market;
    let r = run(&m.candles, &m.funding_per_bar, targets, cfg);
    let metrics = Metrics::compute(&r, &m.candles.ts, m.candles.bars_per_year());
    (r, metrics)
}

/// [`backtest_targets`] of one genome of `entry`.
pub fn backtest_on(
    entry: &SeedEntry,
    genes: &[f64],
    p: &Prepared,
    cfg: &EngineConfig,
) -> (BacktestReport, Metrics) {
    backtest_targets(&entry.targets(genes, p), p, cfg)
}

impl UniverseProblem {
    /// The problem over `seg`'s training and validation markets, with the perturbed worlds of
    /// `worlds` (spec, seed) drawn from its training markets.
    pub fn new(
        entries: Vec<&'static SeedEntry>,
        seg: Segments,
        backtest: EngineConfig,
        aggregation: Aggregation,
        regime: Option<crate::strategy::regime::RegimeFilter>,
        (worlds, seed): (super::worlds::WorldSpec, u64),
    ) -> Self {
        let train: Vec<Prepared> = seg.train.into_iter().map(Prepared::new).collect();
        Self {
            entries,
            worlds: Worlds::build(&train, worlds, seed),
            train,
            validation: seg.validation.into_iter().map(Prepared::new).collect(),
            backtest,
            aggregation,
            regime,
        }
    }

    /// The backtest of one genome (or, with `program`, one program with risk genes `genes`) on
    /// each of `markets`, with its metrics.
    pub fn backtests(
        &self,
        seed: u16,
        genes: &[f64],
        program: Option<&Program>,
        markets: &[Prepared],
    ) -> Vec<(BacktestReport, Metrics)> {
        markets
            .iter()
            .map(|p| backtest_targets(&self.targets(seed, genes, program, p), p, &self.backtest))
            .collect()
    }

    /// The per-bar targets of one genome (or program with risk genes `genes`) on `p`, through
    /// the run's regime filter if it has one.
    pub fn targets(
        &self,
        seed: u16,
        genes: &[f64],
        program: Option<&Program>,
        p: &Prepared,
    ) -> crate::strategy::Targets {
        // The member's own encoding, read in place (no genome is built on this hot path).
        let mut t = match program {
            Some(prog) => seeds::program::targets(prog, genes, p),
            None => self.entries[seed as usize].targets(genes, p),
        };
        seeds::apply_regime(self.regime.as_ref(), p, &mut t);
        t
    }

    fn score(
        &self,
        seed: u16,
        genes: &[f64],
        program: Option<&Program>,
        markets: &[Prepared],
    ) -> Vec<Metrics> {
        self.backtests(seed, genes, program, markets)
            .into_iter()
            .map(|(_, m)| m)
            .collect()
    }

    /// The evaluation on the validation segment (same aggregation).
    pub fn validate(&self, seed: u16, genes: &[f64], program: Option<&Program>) -> Evaluation {
        aggregate(
            &self.score(seed, genes, program, &self.validation),
            &self.aggregation,
        )
    }

    /// The name of a member's strategy: its seed's name, or `program`.
    pub fn name(&self, seed: u16) -> &str {
        self.entries
            .get(seed as usize)
            .map_or(PROGRAM_NAME, |e| e.spec.name.as_str())
    }
}

/// The name under which programs appear among the seeds (in checkpoints' specs and tables).
pub use crate::seeds::PROGRAM as PROGRAM_NAME;

impl Problem for UniverseProblem {
    /// The seeds' specs, then the programs' risk genes.
    fn specs(&self) -> Vec<&SeedSpec> {
        let mut v: Vec<&SeedSpec> = self.entries.iter().map(|e| &e.spec).collect();
        if let Ok(risk) = seeds::program::risk_spec() {
            v.push(risk);
        }
        v
    }
    fn program_seed(&self) -> Option<u16> {
        seeds::program::risk_spec()
            .ok()
            .map(|_| self.entries.len() as u16)
    }
    fn sentiment(&self) -> bool {
        !self.train.is_empty() && self.train.iter().all(|p| p.market.fear_greed.is_some())
    }
    /// On the training markets; with perturbed worlds, each objective at the worlds' quantile
    /// ([`super::worlds::combine`]).
    fn evaluate(&self, seed: u16, genes: &[f64], program: Option<&Program>) -> Evaluation {
        let real = aggregate(
            &self.score(seed, genes, program, &self.train),
            &self.aggregation,
        );
        if self.worlds.list.is_empty() {
            return real;
        }
        let mut all = Vec::with_capacity(1 + self.worlds.list.len());
        all.push(real);
        for w in &self.worlds.list {
            let cfg = self.backtest.costs_scaled(w.cost);
            let metrics: Vec<Metrics> = w
                .markets
                .iter()
                .map(|p| {
                    let t = self.targets(seed, genes, program, p);
                    backtest_targets(&t.delayed(super::worlds::DELAY), p, &cfg).1
                })
                .collect();
            all.push(aggregate(&metrics, &self.aggregation));
        }
        super::worlds::combine(&all, self.worlds.spec.quantile)
    }
}

/// Workload B's NSGA-II settings (BENCHMARKS.md): population 256, SBX crossover with
/// probability 0.9 and η 20, polynomial mutation with η 20 and per-gene probability 0.25.
pub fn workload_b_settings() -> super::Settings {
    super::Settings::params(256, 0.9, 20.0, 20.0, 0.25)
}

/// Gene spec of the Workload B genome (`seeds/workload_b.toml`; a benchmark genome, not a seed).
pub const WORKLOAD_B_SPEC: &str = include_str!("../../seeds/workload_b.toml");

/// Workload B: the long-only EMA crossover with a fixed ATR stop, close fills, on one series,
/// every EMA (2..=200) and ATR (5..=50) computed once up front.
pub struct WorkloadB {
    spec: SeedSpec,
    data: FastData,
    emas: Vec<Series>,
    atrs: Vec<Vec<f64>>,
}

impl WorkloadB {
    /// Prepares the series.
    ///
    /// # Errors
    /// Only if the built-in gene spec is broken.
    pub fn new(market: &Market, cfg: &EngineConfig) -> Result<Self, GenomeError> {
        let spec = SeedSpec::parse("seeds/workload_b.toml", WORKLOAD_B_SPEC, &[])?;
        let c = &market.candles;
        let max_period = |name: &str| spec.index(name).map_or(1, |i| spec.genes[i].max as usize);
        let p_ema = max_period("fast").max(max_period("slow"));
        let p_atr = max_period("atr_period");
        use rayon::prelude::*;
        let periods: Vec<usize> = (0..=p_ema).map(|p| p.max(1)).collect();
        let emas = periods
            .par_chunks(4)
            .flat_map_iter(|four| emas(&c.close, four).into_iter().map(Series::new))
            .collect();
        let atrs = (0..=p_atr)
            .into_par_iter()
            .map(|p| atr(&c.high, &c.low, &c.close, p.max(1)))
            .collect();
        Ok(Self {
            spec,
            data: FastData::new(c, cfg),
            emas,
            atrs,
        })
    }

    /// The fast-path metrics of one genome.
    pub fn metrics(&self, genes: &[f64]) -> crate::bench::FastMetrics {
        let (fast, slow, stop) = self.pair(genes);
        ema_cross_long_of(&self.data, fast, slow, stop)
    }

    /// A genome's EMAs and stop.
    fn pair(&self, genes: &[f64]) -> CrossPair<'_> {
        let g = self.spec.view(genes);
        (
            &self.emas[g.period("fast")],
            &self.emas[g.period("slow")],
            Some((&self.atrs[g.period("atr_period")], g.float("atr_stop_mult"))),
        )
    }
}

impl Problem for WorkloadB {
    fn specs(&self) -> Vec<&SeedSpec> {
        vec![&self.spec]
    }
    fn evaluate(&self, _seed: u16, genes: &[f64], _program: Option<&Program>) -> Evaluation {
        let m = self.metrics(genes);
        Evaluation::new(m.sharpe, m.consistency, m.max_drawdown, m.turnover, 0.0)
    }
    /// A generation's genomes together: their crossings found a block of bars at a time for all
    /// of them ([`cross_long_many`]), so each EMA's block is read from memory once.
    fn evaluate_all(&self, genomes: &[GenomeRef], done: &(dyn Fn() + Sync)) -> Vec<Evaluation> {
        let pairs: Vec<CrossPair> = genomes
            .iter()
            .map(|&(_, genes, _)| self.pair(genes))
            .collect();
        cross_long_many(&self.data, &pairs, done)
            .into_iter()
            .map(|m| Evaluation::new(m.sharpe, m.consistency, m.max_drawdown, m.turnover, 0.0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coin(name: &str, bars: usize) -> Market {
        let mut c = crate::market::Candles::default();
        for i in 0..bars as i64 {
            c.push(i * crate::market::HOUR_MS, 1.0, 1.0, 1.0, 1.0, 1.0);
        }
        Market::new(name, c, crate::market::FundingSeries::default())
    }

    #[test]
    fn coins_too_young_for_a_segment_are_left_out_of_it_unless_alone() {
        // ema_crossover looks back 26 bars at its defaults: training needs max(50, 27) bars.
        let entries = crate::seeds::select(&["ema_crossover".to_string()]).unwrap();
        let mut seg = Segments {
            train: vec![coin("A", 200), coin("B", 49), coin("C", 50)],
            validation: vec![coin("A", 60), coin("B", 10)],
            holdout: Vec::new(),
            validation_from: 0,
            holdout_from: 0,
        };
        let notes = seg.drop_short(&entries);
        let names = |v: &[Market]| v.iter().map(|m| m.coin.clone()).collect::<Vec<_>>();
        assert_eq!(names(&seg.train), vec!["A", "C"]);
        assert_eq!(names(&seg.validation), vec!["A"]);
        assert_eq!(
            notes,
            vec![
                "B: left out of the training segment: 49 bars there, it needs 50",
                "B: left out of the validation segment: 10 bars there, it needs 50"
            ]
        );
        assert!(check_lengths(&seg, &entries, "x").is_ok());
        // One coin alone, or every coin short: left for check_lengths to refuse.
        let mut alone = Segments {
            train: vec![coin("B", 49)],
            validation: vec![coin("B", 60)],
            holdout: Vec::new(),
            validation_from: 0,
            holdout_from: 0,
        };
        assert!(alone.drop_short(&entries).is_empty());
        let e = check_lengths(&alone, &entries, "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("B: the training segment has 49 bars"), "{e}");
    }

    fn metrics(sharpe: f64, trades: usize) -> Metrics {
        Metrics {
            total_return: 0.0,
            sharpe,
            // A lower bound below the plain figure, to tell the two objectives apart.
            fold_sharpe: sharpe - 1.0,
            psr: 0.5,
            sortino: 0.0,
            max_drawdown: sharpe.abs() / 10.0,
            consistency: 0.5,
            turnover: trades as f64,
            trades,
            closed_trades: trades,
            final_equity: 1.0,
            win_rate: 0.0,
            profit_factor: 0.0,
            exposure: 0.0,
            cagr: 0.0,
            calmar: 0.0,
            avg_trade: 0.0,
            exits: crate::fitness::ExitCounts::default(),
        }
    }

    #[test]
    fn aggregation_penalizes_the_worst_coin() {
        let mut agg = Aggregation {
            worst_coin_weight: 0.5,
            min_trades: 10.0,
            sharpe: SharpeObjective::Plain,
        };
        let e = aggregate(
            &[metrics(2.0, 20), metrics(1.0, 10), metrics(-0.5, 0)],
            &agg,
        );
        // Sharpe: mean 2.5/3, worst -0.5 -> 0.5*0.8333 + 0.5*(-0.5) = 0.16667.
        assert!((e.sharpe() - (0.5 * 2.5 / 3.0 - 0.25)).abs() < 1e-12);
        // Drawdown (higher is worse): mean 0.35/3, worst 0.2.
        assert!((e.drawdown() - (0.5 * 0.35 / 3.0 + 0.1)).abs() < 1e-12);
        // Mean trades 10 -> feasible.
        assert_eq!(e.violation, 0.0);
        let e = aggregate(&[metrics(2.0, 4), metrics(1.0, 2)], &agg);
        assert_eq!(e.violation, 7.0);
        // The fold objective aggregates the fold lower bounds the same way.
        agg.sharpe = SharpeObjective::Folds;
        let e = aggregate(&[metrics(2.0, 20), metrics(1.0, 10)], &agg);
        assert!((e.sharpe() - (0.5 * 0.5 + 0.5 * 0.0)).abs() < 1e-12);
    }
}
